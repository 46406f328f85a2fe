// Owns operator (non-keyed) state: list state per subtask, redistributed on restore by even split
// (Flink's getListState) or by union (getUnionListState), and broadcast state — a map replicated to
// every subtask, writable on the broadcast side only (the other side gets a read-only view that
// throws on writes).
//
// Snapshot (one per subtask), msgpack:
//   { format: 'sluice.operator', version,
//     lists:     [{ name, mode: 'split' | 'union', elements: [plain...] }],
//     broadcast: [{ name, entries: [[plain(k), plain(v)], ...] }] }

import type { ErrorContext } from '../core/errors.ts';
import { stateKeyOf } from '../runtime/keyed-state.ts';
import { ListStateDescriptor, MapStateDescriptor, type ListState, type StateCodec } from './descriptors.ts';
import { CorruptSnapshotError, StateAccessError } from './errors.ts';
import { decodePlain, encodePlain, SNAPSHOT_VERSION } from './snapshot-codec.ts';

const OPERATOR_FORMAT = 'sluice.operator';

/** How a list state is redistributed when parallelism changes. */
export type ListRedistribution = 'split' | 'union';

/** Broadcast state as the non-broadcast side sees it: reads only. */
export interface ReadOnlyBroadcastState<K, V> {
  get(key: K): V | undefined;
  contains(key: K): boolean;
  entries(): IterableIterator<[K, V]>;
  keys(): IterableIterator<K>;
  values(): IterableIterator<V>;
  isEmpty(): boolean;
  readonly size: number;
}

/** Broadcast state on the broadcast side: every subtask applies the same writes, so all hold the same map. */
export interface BroadcastState<K, V> extends ReadOnlyBroadcastState<K, V> {
  put(key: K, value: V): void;
  putAll(entries: Iterable<readonly [K, V]> | Map<K, V>): void;
  remove(key: K): void;
  clear(): void;
}

/** Options of an {@link OperatorStateBackend}. */
export interface OperatorStateBackendOptions {
  operator?: string;
  subtask?: number;
}

interface ListSnap {
  name: string;
  mode: ListRedistribution;
  elements: unknown[];
}
interface BroadcastSnap {
  name: string;
  entries: unknown[][];
}

const identity: StateCodec<any> = { toPlain: (v) => v, fromPlain: (p) => p };

/**
 * Operator state of one subtask.
 *
 * Cost: list state is a JS array; broadcast state a Map keyed by the engine's key equality. A snapshot
 * is O(elements); restore of split lists concatenates the old subtasks' lists in subtask order and
 * hands subtask `i` of `p` the contiguous slice `[⌊i·n/p⌋, ⌊(i+1)·n/p⌋)`.
 *
 * @example
 * const ops = new OperatorStateBackend();
 * const offsets = ops.getListState(new ListStateDescriptor<number>('offsets'));
 * offsets.update([42]);
 * const snap = ops.snapshot();
 * // after rescaling to 3 subtasks, subtask 1:
 * const restored = new OperatorStateBackend();
 * restored.restore([snap], 1, 3);
 */
export class OperatorStateBackend {
  readonly context: ErrorContext;
  private readonly lists = new Map<string, { d: ListStateDescriptor<any>; mode: ListRedistribution; values: unknown[]; handle: ListState<unknown> }>();
  private readonly broadcasts = new Map<string, BroadcastMap>();
  private readonly pendingLists = new Map<string, ListSnap>();
  private readonly pendingBroadcast = new Map<string, BroadcastSnap>();

  constructor(opts: OperatorStateBackendOptions = {}) {
    this.context = { operator: opts.operator, subtask: opts.subtask };
  }

  /** List state redistributed by even split on restore (each element goes to exactly one subtask). */
  getListState<T>(d: ListStateDescriptor<T>): ListState<T> {
    return this.list(d, 'split');
  }

  /** List state redistributed by union on restore (every subtask receives every element). */
  getUnionListState<T>(d: ListStateDescriptor<T>): ListState<T> {
    return this.list(d, 'union');
  }

  private list<T>(d: ListStateDescriptor<T>, mode: ListRedistribution): ListState<T> {
    if (!(d instanceof ListStateDescriptor)) throw new TypeError('operator list state needs a ListStateDescriptor');
    if (d.ttl) throw new StateAccessError(`operator state '${d.name}' cannot have a TTL (TTL is for keyed state)`, this.context);
    const have = this.lists.get(d.name);
    if (have) {
      if (have.mode !== mode) throw new StateAccessError(`operator list state '${d.name}' is registered with ${have.mode} redistribution, requested with ${mode}`, this.context);
      return have.handle as ListState<T>;
    }
    if (this.broadcasts.has(d.name)) throw new StateAccessError(`operator state '${d.name}' is registered as broadcast state`, this.context);
    const codec = (d.codec ?? identity) as StateCodec<unknown>;
    let values: unknown[] = [];
    const p = this.pendingLists.get(d.name);
    if (p) {
      if (p.mode !== mode) throw new StateAccessError(`operator list state '${d.name}' was restored with ${p.mode} redistribution, requested with ${mode}`, this.context);
      values = p.elements.map((x) => codec.fromPlain(x));
      this.pendingLists.delete(d.name);
    }
    const rec = { d, mode, values, handle: null as unknown as ListState<unknown> };
    rec.handle = {
      get: () => rec.values.slice(),
      add: (v) => void rec.values.push(v),
      addAll: (vs) => void rec.values.push(...vs),
      update: (vs) => void (rec.values = Array.from(vs)),
      clear: () => void (rec.values = []),
    };
    this.lists.set(d.name, rec);
    return rec.handle as ListState<T>;
  }

  /** Broadcast state, writable: for the broadcast side (`processBroadcastElement`). */
  getBroadcastState<K, V>(d: MapStateDescriptor<K, V>): BroadcastState<K, V> {
    return this.broadcast(d);
  }

  /**
   * Broadcast state, read-only: for the non-broadcast side (`processElement`). Writing through it
   * throws {@link StateAccessError} — the non-broadcast side sees different elements on each
   * subtask, so a write there would make the replicas diverge.
   */
  getReadOnlyBroadcastState<K, V>(d: MapStateDescriptor<K, V>): ReadOnlyBroadcastState<K, V> {
    return new ReadOnlyBroadcastView(this.broadcast(d), this.context);
  }

  private broadcast<K, V>(d: MapStateDescriptor<K, V>): BroadcastMap<K, V> {
    if (!(d instanceof MapStateDescriptor)) throw new TypeError('broadcast state needs a MapStateDescriptor');
    if (d.ttl) throw new StateAccessError(`broadcast state '${d.name}' cannot have a TTL`, this.context);
    const have = this.broadcasts.get(d.name);
    if (have) return have as BroadcastMap<K, V>;
    if (this.lists.has(d.name)) throw new StateAccessError(`operator state '${d.name}' is registered as list state`, this.context);
    const m = new BroadcastMap<K, V>(d);
    const p = this.pendingBroadcast.get(d.name);
    if (p) {
      const kc = (d.keyCodec ?? identity) as StateCodec<K>;
      const vc = (d.codec ?? identity) as StateCodec<V>;
      for (const e of p.entries) m.put(kc.fromPlain(e[0]), vc.fromPlain(e[1]));
      this.pendingBroadcast.delete(d.name);
    }
    this.broadcasts.set(d.name, m as BroadcastMap);
    return m;
  }

  /** Serializable bytes of this subtask's operator state. */
  snapshot(): Uint8Array {
    const lists: ListSnap[] = [];
    for (const [name, r] of this.lists) {
      const c = (r.d.codec ?? identity) as StateCodec<unknown>;
      lists.push({ name, mode: r.mode, elements: r.values.map((v) => c.toPlain(v)) });
    }
    for (const p of this.pendingLists.values()) lists.push(p);
    const broadcast: BroadcastSnap[] = [];
    for (const [name, m] of this.broadcasts) broadcast.push({ name, entries: m.plainEntries() });
    for (const p of this.pendingBroadcast.values()) broadcast.push(p);
    return encodePlain({ format: OPERATOR_FORMAT, version: SNAPSHOT_VERSION, lists, broadcast }, 'operator state', this.context);
  }

  /**
   * Restores subtask `subtaskIndex` of `parallelism` from the snapshots of every old subtask (in
   * old subtask order): split lists are divided evenly, union lists given whole, broadcast state
   * copied from one old subtask (they are all equal). Call before registering states.
   */
  restore(snapshots: readonly Uint8Array[], subtaskIndex: number, parallelism: number): void {
    if (!(parallelism >= 1 && subtaskIndex >= 0 && subtaskIndex < parallelism)) throw new RangeError(`subtask ${subtaskIndex} of ${parallelism} is not a valid subtask`);
    if (this.lists.size || this.broadcasts.size) throw new StateAccessError('restore operator state before registering any state', this.context);
    const decoded = snapshots.map((b, i) => this.read(b, i));
    const merged = new Map<string, ListSnap>();
    for (const s of decoded) {
      for (const l of s.lists) {
        const m = merged.get(l.name);
        if (!m) merged.set(l.name, { name: l.name, mode: l.mode, elements: l.elements.slice() });
        else if (m.mode !== l.mode) throw new CorruptSnapshotError(`operator list state '${l.name}' has both ${m.mode} and ${l.mode} redistribution`, this.context);
        else m.elements.push(...l.elements);
      }
    }
    for (const l of merged.values()) {
      if (l.mode === 'split') {
        const n = l.elements.length;
        l.elements = l.elements.slice(Math.floor((subtaskIndex * n) / parallelism), Math.floor(((subtaskIndex + 1) * n) / parallelism));
      }
      this.pendingLists.set(l.name, l);
    }
    if (decoded.length) {
      const from = decoded[subtaskIndex % decoded.length]!;
      for (const b of from.broadcast) this.pendingBroadcast.set(b.name, b);
    }
  }

  private read(bytes: Uint8Array, i: number): { lists: ListSnap[]; broadcast: BroadcastSnap[] } {
    const s = decodePlain(bytes, `operator snapshot ${i}`, this.context) as { format?: unknown; version?: unknown; lists?: unknown; broadcast?: unknown } | null;
    if (!s || typeof s !== 'object' || s.format !== OPERATOR_FORMAT) throw new CorruptSnapshotError(`snapshot ${i} is not an operator-state snapshot`, this.context);
    if (s.version !== SNAPSHOT_VERSION) throw new CorruptSnapshotError(`operator snapshot version ${String(s.version)} is not supported`, this.context);
    if (!Array.isArray(s.lists) || !Array.isArray(s.broadcast)) throw new CorruptSnapshotError(`operator snapshot ${i} lacks lists or broadcast`, this.context);
    for (const l of s.lists as ListSnap[]) {
      if (!l || typeof l.name !== 'string' || (l.mode !== 'split' && l.mode !== 'union') || !Array.isArray(l.elements)) throw new CorruptSnapshotError(`operator snapshot ${i} has a malformed list`, this.context);
    }
    for (const b of s.broadcast as BroadcastSnap[]) {
      if (!b || typeof b.name !== 'string' || !Array.isArray(b.entries) || !b.entries.every((e) => Array.isArray(e) && e.length === 2)) {
        throw new CorruptSnapshotError(`operator snapshot ${i} has a malformed broadcast state`, this.context);
      }
    }
    return s as { lists: ListSnap[]; broadcast: BroadcastSnap[] };
  }
}

/** The writable broadcast map: Map keyed by the engine's key equality. */
class BroadcastMap<K = unknown, V = unknown> implements BroadcastState<K, V> {
  private readonly m = new Map<unknown, [K, V]>();
  constructor(private readonly d: MapStateDescriptor<K, V>) {}
  get(key: K): V | undefined {
    return this.m.get(stateKeyOf(key))?.[1];
  }
  contains(key: K): boolean {
    return this.m.has(stateKeyOf(key));
  }
  put(key: K, value: V): void {
    this.m.set(stateKeyOf(key), [key, value]);
  }
  putAll(entries: Iterable<readonly [K, V]> | Map<K, V>): void {
    for (const [k, v] of entries) this.put(k, v);
  }
  remove(key: K): void {
    this.m.delete(stateKeyOf(key));
  }
  clear(): void {
    this.m.clear();
  }
  *entries(): IterableIterator<[K, V]> {
    for (const [k, v] of this.m.values()) yield [k, v];
  }
  *keys(): IterableIterator<K> {
    for (const e of this.m.values()) yield e[0];
  }
  *values(): IterableIterator<V> {
    for (const e of this.m.values()) yield e[1];
  }
  isEmpty(): boolean {
    return this.m.size === 0;
  }
  get size(): number {
    return this.m.size;
  }
  plainEntries(): unknown[][] {
    const kc = (this.d.keyCodec ?? identity) as StateCodec<K>;
    const vc = (this.d.codec ?? identity) as StateCodec<V>;
    return [...this.m.values()].map(([k, v]) => [kc.toPlain(k), vc.toPlain(v)]);
  }
}

/** Read-only view of broadcast state; the write methods exist only to refuse (JS callers ignore types). */
class ReadOnlyBroadcastView<K, V> implements ReadOnlyBroadcastState<K, V> {
  constructor(
    private readonly inner: BroadcastMap<K, V>,
    private readonly ctx: ErrorContext,
  ) {}
  get(key: K): V | undefined {
    return this.inner.get(key);
  }
  contains(key: K): boolean {
    return this.inner.contains(key);
  }
  entries(): IterableIterator<[K, V]> {
    return this.inner.entries();
  }
  keys(): IterableIterator<K> {
    return this.inner.keys();
  }
  values(): IterableIterator<V> {
    return this.inner.values();
  }
  isEmpty(): boolean {
    return this.inner.isEmpty();
  }
  get size(): number {
    return this.inner.size;
  }
  put(): never {
    return this.refuse('put');
  }
  putAll(): never {
    return this.refuse('putAll');
  }
  remove(): never {
    return this.refuse('remove');
  }
  clear(): never {
    return this.refuse('clear');
  }
  private refuse(op: string): never {
    throw new StateAccessError(`broadcast state is read-only on the non-broadcast side (${op} refused); write it in processBroadcastElement`, this.ctx);
  }
}
