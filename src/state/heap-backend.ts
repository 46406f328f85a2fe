// Owns the heap keyed-state backend: every kind of keyed state over arbitrary JS values, scoped by
// key group from the start, with TTL, snapshots of any key-group range and restore from snapshots
// of any parallelism (rescaling).
//
// Storage, per registered state (Flink's StateTable with one map per key group):
//
//   table.groups[keyGroup - range.start] : Map<stateKeyOf(key), Entry>
//   Entry = { key, value, ts }           ts = last access (ms of the backend clock) when TTL is on
//     value / reducing / aggregating: value = the value / accumulator
//     list: value = T[]            (TTL: Array<{ v, ts }>, elements expire one by one)
//     map:  value = Map<stateKeyOf(userKey), { k, v, ts }>
//
// Snapshot payload of one key group: msgpack [[stateIndex, entries], ...] where an entry is
//   value-like: [key, plain(value), ts | null]
//   list:       [key, [plain(e)...], [ts...] | null]
//   map:        [key, [[plain(k), plain(v), ts | null], ...]]

import type { AnyEncodeError } from '../core/any-codec.ts';
import { previewValue, type ErrorContext } from '../core/errors.ts';
import { hashJsKey, keyGroupOf } from '../core/hash.ts';
import { stateKeyOf } from '../runtime/keyed-state.ts';
import {
  type AggregatingState,
  type AggregatingStateDescriptor,
  type HandleOf,
  type ListState,
  type ListStateDescriptor,
  type MapState,
  type MapStateDescriptor,
  type ReducingState,
  type ReducingStateDescriptor,
  type StateCodec,
  StateDescriptor,
  type StateKind,
  type ValueState,
  type ValueStateDescriptor,
} from './descriptors.ts';
import { CorruptSnapshotError, StateAccessError, StateSerializationError } from './errors.ts';
import { KeyGroupRange } from './key-groups.ts';
import { decodePlain, encodePlain, readKeyedSnapshot, SNAPSHOT_VERSION, type StateMeta } from './snapshot-codec.ts';
import type { StateClock, StateTtlConfig } from './ttl.ts';

/** Options of a keyed state backend. */
export interface KeyedStateBackendOptions {
  /** The job's max parallelism = number of key groups. */
  maxParallelism: number;
  /** Key groups this subtask owns. Default: all of them. */
  keyGroupRange?: KeyGroupRange;
  /** Clock for TTL timestamps. Default `Date.now`. */
  clock?: StateClock;
  /** Operator and subtask named in errors. */
  operator?: string;
  subtask?: number;
}

/**
 * What the runtime and operators need from a keyed state backend. Handles read and write the state
 * of the current key, set with `setCurrentKey` before each record (or timer).
 */
export interface KeyedStateBackend {
  readonly maxParallelism: number;
  readonly keyGroupRange: KeyGroupRange;
  /**
   * Sets the key the handles act on. `keyGroup` may be passed when the caller computed it already
   * (the keyed exchange did); otherwise it is derived with `hashJsKey`.
   */
  setCurrentKey(key: unknown, keyGroup?: number): void;
  getCurrentKey(): unknown;
  /** Key group of the current key, or -1 when none is set. */
  readonly currentKeyGroup: number;
  /** The handle of a state, registering it on first use (the same handle for the same name). */
  getState<D extends StateDescriptor<any, any>>(descriptor: D): HandleOf<D>;
  /** Keys that have state in `stateName` (key groups ascending). */
  keys(stateName: string): IterableIterator<unknown>;
  /** Serializable bytes of the state of the key groups in `range` (default: all this backend owns). */
  snapshot(range?: KeyGroupRange): Uint8Array;
  /** Adds, from each snapshot (of any parallelism), the key groups this backend owns. */
  restore(snapshots: Iterable<Uint8Array>): void;
  /** Drops all state. */
  dispose(): void;
}

interface Entry {
  key: unknown;
  value: any;
  ts: number;
}
interface TtlElem {
  v: unknown;
  ts: number;
}
interface MapEntry {
  k: unknown;
  v: unknown;
  ts: number;
}

const HEAP_FORMAT = 'sluice.keyed.heap';

/** Per-state storage: one map per owned key group. Cost: two hash-map lookups per access. */
class StateTable {
  readonly groups: (Map<unknown, Entry> | undefined)[];
  count = 0;
  // incremental TTL cleanup cursor
  private cursorGroup = 0;
  private cursorIter: Iterator<[unknown, Entry]> | null = null;

  constructor(
    readonly descriptor: StateDescriptor<any, any>,
    readonly range: KeyGroupRange,
  ) {
    this.groups = new Array(range.size).fill(undefined);
  }
  get name(): string {
    return this.descriptor.name;
  }
  get kind(): StateKind {
    return this.descriptor.kind;
  }
  get ttl(): StateTtlConfig | undefined {
    return this.descriptor.ttl;
  }

  get(kgIdx: number, sk: unknown): Entry | undefined {
    return this.groups[kgIdx]?.get(sk);
  }
  put(kgIdx: number, sk: unknown, key: unknown, value: unknown, ts: number): Entry {
    let g = this.groups[kgIdx];
    if (g === undefined) this.groups[kgIdx] = g = new Map();
    let e = g.get(sk);
    if (e === undefined) {
      g.set(sk, (e = { key, value, ts }));
      this.count++;
    } else {
      e.value = value;
      e.ts = ts;
    }
    return e;
  }
  delete(kgIdx: number, sk: unknown): void {
    const g = this.groups[kgIdx];
    if (g !== undefined && g.delete(sk)) this.count--;
  }

  /** Inspects up to `n` entries after the cursor and removes what has expired. */
  cleanupStep(n: number, now: number): void {
    const ttl = this.ttl!;
    const G = this.groups.length;
    if (G === 0) return;
    let visitedGroups = 0;
    while (n > 0 && visitedGroups <= G) {
      if (this.cursorIter === null) {
        const g = this.groups[this.cursorGroup];
        if (g === undefined || g.size === 0) {
          this.cursorGroup = (this.cursorGroup + 1) % G;
          visitedGroups++;
          continue;
        }
        this.cursorIter = g.entries();
      }
      const r = this.cursorIter.next();
      if (r.done) {
        this.cursorIter = null;
        this.cursorGroup = (this.cursorGroup + 1) % G;
        visitedGroups++;
        continue;
      }
      n--;
      const [sk, e] = r.value;
      if (purgeExpired(this.kind, e, ttl, now)) this.delete(this.cursorGroup, sk);
    }
  }
}

/** Removes expired parts of an entry; answers whether the whole entry is now empty/expired. */
function purgeExpired(kind: StateKind, e: Entry, ttl: StateTtlConfig, now: number): boolean {
  if (kind === 'list') {
    const arr = e.value as TtlElem[];
    const kept = arr.filter((x) => !ttl.isExpired(x.ts, now));
    if (kept.length !== arr.length) e.value = kept;
    return kept.length === 0;
  }
  if (kind === 'map') {
    const m = e.value as Map<unknown, MapEntry>;
    for (const [sk, me] of m) if (ttl.isExpired(me.ts, now)) m.delete(sk);
    return m.size === 0;
  }
  return ttl.isExpired(e.ts, now);
}

type Pending = { meta: StateMeta; groups: Map<number, unknown[]> };

/**
 * Keyed state on the JS heap, for arbitrary JS values. Values are kept by reference (a value read
 * and then mutated changes the state without `update`, as in Flink's heap backend); snapshots encode
 * them with MessagePack (or the descriptor's codec).
 *
 * Cost: `setCurrentKey` hashes the key once; each access is two hash-map lookups; memory grows with
 * keys × states (no budget: the binary backend is the budgeted one). Snapshot O(entries in range).
 *
 * @example
 * const backend = new HeapKeyedStateBackend({ maxParallelism: 128 });
 * const count = backend.getState(new ValueStateDescriptor<number>('count'));
 * backend.setCurrentKey('a');
 * count.update((count.value() ?? 0) + 1);
 * const bytes = backend.snapshot();
 */
export class HeapKeyedStateBackend implements KeyedStateBackend {
  readonly maxParallelism: number;
  readonly keyGroupRange: KeyGroupRange;
  readonly clock: StateClock;
  readonly context: ErrorContext;
  private readonly tables = new Map<string, StateTable>();
  private readonly handles = new Map<string, unknown>();
  private readonly pending = new Map<string, Pending>();
  /** @internal current key, its map key and key-group index (−1: none) */
  curKey: unknown = undefined;
  curSk: unknown = undefined;
  curIdx = -1;

  constructor(opts: KeyedStateBackendOptions) {
    const m = opts.maxParallelism;
    if (!(Number.isInteger(m) && m >= 1)) throw new RangeError(`maxParallelism must be a positive integer, got ${m}`);
    this.maxParallelism = m;
    this.keyGroupRange = opts.keyGroupRange ?? KeyGroupRange.all(m);
    if (this.keyGroupRange.end > m) throw new RangeError(`${this.keyGroupRange} exceeds maxParallelism ${m}`);
    this.clock = opts.clock ?? Date.now;
    this.context = { operator: opts.operator, subtask: opts.subtask };
  }

  setCurrentKey(key: unknown, keyGroup?: number): void {
    const kg = keyGroup ?? keyGroupOf(hashJsKey(key), this.maxParallelism);
    if (!this.keyGroupRange.contains(kg)) {
      throw new StateAccessError(`key ${String(key)} is in key group ${kg}, outside this backend's ${this.keyGroupRange}`, this.context);
    }
    this.curKey = key;
    this.curSk = stateKeyOf(key);
    this.curIdx = kg - this.keyGroupRange.start;
  }

  getCurrentKey(): unknown {
    return this.curKey;
  }

  get currentKeyGroup(): number {
    return this.curIdx < 0 ? -1 : this.curIdx + this.keyGroupRange.start;
  }

  /** @internal the current key-group index, or an error when no key is set */
  idx(): number {
    if (this.curIdx < 0) throw new StateAccessError('keyed state accessed with no current key (setCurrentKey first; keyed state needs a keyed stream)', this.context);
    return this.curIdx;
  }

  getState<D extends StateDescriptor<any, any>>(descriptor: D): HandleOf<D> {
    if (!(descriptor instanceof StateDescriptor)) throw new TypeError('getState needs a state descriptor');
    const existing = this.tables.get(descriptor.name);
    if (existing) {
      if (existing.kind !== descriptor.kind) {
        throw new StateAccessError(`state '${descriptor.name}' is registered as ${existing.kind} state, requested as ${descriptor.kind}`, this.context);
      }
      return this.handles.get(descriptor.name) as HandleOf<D>;
    }
    const table = new StateTable(descriptor, this.keyGroupRange);
    const p = this.pending.get(descriptor.name);
    if (p) {
      if (p.meta.kind !== descriptor.kind) {
        throw new StateAccessError(`state '${descriptor.name}' was restored as ${p.meta.kind} state, requested as ${descriptor.kind}`, this.context);
      }
      this.pending.delete(descriptor.name);
      for (const [kg, entries] of p.groups) this.load(table, kg, entries);
    }
    this.tables.set(descriptor.name, table);
    const h = this.makeHandle(table);
    this.handles.set(descriptor.name, h);
    return h as HandleOf<D>;
  }

  private makeHandle(t: StateTable): unknown {
    switch (t.kind) {
      case 'value':
        return new HeapValueState(this, t);
      case 'list':
        return new HeapListState(this, t);
      case 'map':
        return new HeapMapState(this, t);
      case 'reducing':
        return new HeapReducingState(this, t);
      case 'aggregating':
        return new HeapAggregatingState(this, t);
    }
  }

  *keys(stateName: string): IterableIterator<unknown> {
    const t = this.tables.get(stateName);
    if (!t) return;
    for (const g of t.groups) if (g) for (const e of g.values()) yield e.key;
  }

  /** Number of keys with state in `stateName`. */
  numKeys(stateName: string): number {
    return this.tables.get(stateName)?.count ?? 0;
  }

  /** Names of registered states and of restored states not registered yet. */
  stateNames(): string[] {
    return [...new Set([...this.tables.keys(), ...this.pending.keys()])];
  }

  snapshot(range: KeyGroupRange = this.keyGroupRange): Uint8Array {
    const now = this.clock();
    const tables = [...this.tables.values()];
    const pend = [...this.pending.values()];
    const states: StateMeta[] = [
      ...tables.map((t) => ({ name: t.name, kind: t.kind, ttl: t.ttl !== undefined })),
      ...pend.map((p) => p.meta),
    ];
    const groups: Array<[number, Uint8Array]> = [];
    const lo = Math.max(range.start, this.keyGroupRange.start);
    const hi = Math.min(range.end, this.keyGroupRange.end);
    for (let kg = lo; kg < hi; kg++) {
      const idx = kg - this.keyGroupRange.start;
      const perState: unknown[] = [];
      tables.forEach((t, si) => {
        const g = t.groups[idx];
        if (!g || g.size === 0) return;
        const out: unknown[] = [];
        for (const e of g.values()) {
          const enc = this.plainEntry(t, e, now);
          if (enc !== null) out.push(enc);
        }
        if (out.length) perState.push([si, out]);
      });
      pend.forEach((p, pi) => {
        const entries = p.groups.get(kg);
        if (entries?.length) perState.push([tables.length + pi, entries]);
      });
      if (perState.length) groups.push([kg, this.encodeGroup(perState, states, kg)]);
    }
    return encodePlain({ format: HEAP_FORMAT, version: SNAPSHOT_VERSION, maxParallelism: this.maxParallelism, states, groups }, 'snapshot', this.context);
  }

  /** Encodes one key group's payload; an unencodable value is reported under its state's name and key. */
  private encodeGroup(perState: unknown[], states: StateMeta[], kg: number): Uint8Array {
    try {
      return encodePlain(perState, `key group ${kg}`, this.context);
    } catch (e) {
      if (!(e instanceof StateSerializationError)) throw e;
      const path = /\[(\d+)\]\[1\]\[(\d+)\]/.exec((e.cause as AnyEncodeError)?.path ?? '');
      if (!path) throw e;
      const [si, entries] = perState[Number(path[1])] as [number, unknown[][]];
      const key = entries[Number(path[2])]?.[0];
      throw new StateSerializationError(states[si]!.name, `${(e.cause as Error).message} (key ${previewValue(key)})`, this.context, e.cause);
    }
  }

  /** The snapshot form of one entry, or null when it has expired entirely (full-snapshot cleanup). */
  private plainEntry(t: StateTable, e: Entry, now: number): unknown[] | null {
    const ttl = t.ttl;
    const drop = ttl !== undefined && ttl.cleanupFullSnapshot;
    const codec = t.descriptor.codec as StateCodec<unknown> | undefined;
    const plain = codec ? (v: unknown) => codec.toPlain(v) : (v: unknown) => v;
    try {
      switch (t.kind) {
        case 'list': {
          if (ttl === undefined) return [e.key, (e.value as unknown[]).map(plain), null];
          const els = (e.value as TtlElem[]).filter((x) => !(drop && ttl.isExpired(x.ts, now)));
          if (els.length === 0) return null;
          return [e.key, els.map((x) => plain(x.v)), els.map((x) => x.ts)];
        }
        case 'map': {
          const kc = (t.descriptor as MapStateDescriptor<unknown, unknown>).keyCodec;
          const out: unknown[] = [];
          for (const me of (e.value as Map<unknown, MapEntry>).values()) {
            if (drop && ttl!.isExpired(me.ts, now)) continue;
            out.push([kc ? kc.toPlain(me.k) : me.k, plain(me.v), ttl ? me.ts : null]);
          }
          return out.length ? [e.key, out] : null;
        }
        default:
          if (drop && ttl!.isExpired(e.ts, now)) return null;
          return [e.key, plain(e.value), ttl ? e.ts : null];
      }
    } catch (err) {
      throw new StateAccessError(`state '${t.name}': codec.toPlain failed for key ${String(e.key)}: ${(err as Error)?.message ?? err}`, this.context);
    }
  }

  restore(snapshots: Iterable<Uint8Array>): void {
    for (const bytes of snapshots) {
      const s = readKeyedSnapshot(bytes, HEAP_FORMAT, this.maxParallelism, this.context);
      for (const [kg, payload] of s.groups) {
        if (!this.keyGroupRange.contains(kg)) continue;
        const perState = decodePlain(payload, `key group ${kg}`, this.context);
        if (!Array.isArray(perState)) throw new CorruptSnapshotError(`key group ${kg} payload is not a list`, this.context);
        for (const item of perState) {
          if (!Array.isArray(item) || typeof item[0] !== 'number' || !Array.isArray(item[1]) || !s.states[item[0]]) {
            throw new CorruptSnapshotError(`key group ${kg} has a malformed state entry`, this.context);
          }
          const meta = s.states[item[0]]!;
          const entries = item[1] as unknown[];
          const t = this.tables.get(meta.name);
          if (t) {
            if (t.kind !== meta.kind) throw new StateAccessError(`state '${meta.name}' is registered as ${t.kind} state, the snapshot has ${meta.kind}`, this.context);
            this.load(t, kg, entries);
          } else {
            let p = this.pending.get(meta.name);
            if (!p) this.pending.set(meta.name, (p = { meta, groups: new Map() }));
            else if (p.meta.kind !== meta.kind) throw new CorruptSnapshotError(`state '${meta.name}' appears as ${p.meta.kind} and ${meta.kind} state`, this.context);
            const list = p.groups.get(kg);
            if (list) list.push(...entries);
            else p.groups.set(kg, entries.slice());
          }
        }
      }
    }
  }

  /** Materializes snapshot entries of one key group into a table (codec applied). */
  private load(t: StateTable, kg: number, entries: unknown[]): void {
    const idx = kg - this.keyGroupRange.start;
    const codec = t.descriptor.codec as StateCodec<unknown> | undefined;
    const val = codec ? (p: unknown) => codec.fromPlain(p) : (p: unknown) => p;
    const ttl = t.ttl !== undefined;
    const now = this.clock();
    const tsOf = (x: unknown) => (typeof x === 'number' ? x : now);
    for (const raw of entries) {
      if (!Array.isArray(raw)) throw new CorruptSnapshotError(`state '${t.name}' key group ${kg}: entry is not a list`, this.context);
      const key = raw[0];
      const sk = stateKeyOf(key);
      switch (t.kind) {
        case 'list': {
          const els = raw[1] as unknown[];
          const tss = raw[2] as number[] | null;
          if (!Array.isArray(els)) throw new CorruptSnapshotError(`list state '${t.name}': elements are not a list`, this.context);
          const vals = ttl ? els.map((p, i) => ({ v: val(p), ts: tsOf(tss?.[i]) })) : els.map(val);
          t.put(idx, sk, key, vals, 0);
          break;
        }
        case 'map': {
          const kc = (t.descriptor as MapStateDescriptor<unknown, unknown>).keyCodec;
          const m = new Map<unknown, MapEntry>();
          for (const me of raw[1] as unknown[][]) {
            const k = kc ? kc.fromPlain(me[0]) : me[0];
            m.set(stateKeyOf(k), { k, v: val(me[1]), ts: tsOf(me[2]) });
          }
          t.put(idx, sk, key, m, 0);
          break;
        }
        default:
          t.put(idx, sk, key, val(raw[1]), tsOf(raw[2]));
      }
    }
  }

  dispose(): void {
    this.tables.clear();
    this.handles.clear();
    this.pending.clear();
    this.curIdx = -1;
  }
}

/** Shared plumbing of the heap handles: current key, TTL reads, incremental cleanup. */
abstract class HeapHandle {
  constructor(
    protected readonly b: HeapKeyedStateBackend,
    protected readonly t: StateTable,
  ) {}

  /** Current key's entry (honouring TTL for value-like kinds), after an incremental cleanup step. */
  protected access(): number {
    const idx = this.b.idx();
    const ttl = this.t.ttl;
    if (ttl !== undefined && ttl.incrementalCleanupSize > 0) this.t.cleanupStep(ttl.incrementalCleanupSize, this.b.clock());
    return idx;
  }

  /** Value-like read: undefined when absent or expired (and removed), per visibility. */
  protected readValue(idx: number, forUpdate: boolean): unknown {
    const e = this.t.get(idx, this.b.curSk);
    if (e === undefined) return undefined;
    const ttl = this.t.ttl;
    if (ttl === undefined) return e.value;
    const now = this.b.clock();
    if (ttl.isExpired(e.ts, now)) {
      this.t.delete(idx, this.b.curSk);
      return ttl.returnExpired && !forUpdate ? e.value : undefined;
    }
    if (ttl.updateOnRead && !forUpdate) e.ts = now;
    return e.value;
  }

  protected write(idx: number, value: unknown): void {
    this.t.put(idx, this.b.curSk, this.b.curKey, value, this.t.ttl ? this.b.clock() : 0);
  }

  clear(): void {
    this.t.delete(this.access(), this.b.curSk);
  }
}

class HeapValueState<T> extends HeapHandle implements ValueState<T> {
  value(): T | undefined {
    return this.readValue(this.access(), false) as T | undefined;
  }
  update(value: T | undefined): void {
    const idx = this.access();
    if (value === undefined) this.t.delete(idx, this.b.curSk);
    else this.write(idx, value);
  }
}

class HeapReducingState<T> extends HeapHandle implements ReducingState<T> {
  get(): T | undefined {
    return this.readValue(this.access(), false) as T | undefined;
  }
  add(value: T): void {
    const idx = this.access();
    // an expired accumulator is not folded into (Flink's TtlReduceFunction)
    const old = this.readValue(idx, true) as T | undefined;
    const fn = (this.t.descriptor as ReducingStateDescriptor<T>).reduce;
    this.write(idx, old === undefined ? value : fn(old, value));
  }
}

class HeapAggregatingState<IN, ACC, OUT> extends HeapHandle implements AggregatingState<IN, OUT> {
  // accumulators are never undefined: undefined means "no accumulator" (absent or expired)
  get(): OUT | undefined {
    const acc = this.readValue(this.access(), false) as ACC | undefined;
    return acc === undefined ? undefined : (this.t.descriptor as AggregatingStateDescriptor<IN, ACC, OUT>).fn.getResult(acc);
  }
  add(value: IN): void {
    const idx = this.access();
    const fn = (this.t.descriptor as AggregatingStateDescriptor<IN, ACC, OUT>).fn;
    const acc = (this.readValue(idx, true) as ACC | undefined) ?? fn.createAccumulator();
    this.write(idx, fn.add(value, acc));
  }
}

class HeapListState<T> extends HeapHandle implements ListState<T> {
  get(): T[] {
    const idx = this.access();
    const e = this.t.get(idx, this.b.curSk);
    if (e === undefined) return [];
    const ttl = this.t.ttl;
    if (ttl === undefined) return (e.value as T[]).slice();
    const now = this.b.clock();
    const out: T[] = [];
    const kept: TtlElem[] = [];
    for (const x of e.value as TtlElem[]) {
      if (ttl.isExpired(x.ts, now)) {
        if (ttl.returnExpired) out.push(x.v as T);
        continue;
      }
      if (ttl.updateOnRead) x.ts = now;
      kept.push(x);
      out.push(x.v as T);
    }
    if (kept.length === 0) this.t.delete(idx, this.b.curSk);
    else e.value = kept;
    return out;
  }
  add(value: T): void {
    this.addAll([value]);
  }
  addAll(values: Iterable<T>): void {
    const idx = this.access();
    const add = this.wrap(values);
    if (add.length === 0) return;
    const e = this.t.get(idx, this.b.curSk);
    if (e === undefined) this.t.put(idx, this.b.curSk, this.b.curKey, add, 0);
    else for (const x of add) (e.value as unknown[]).push(x);
  }
  update(values: Iterable<T>): void {
    const idx = this.access();
    const vals = this.wrap(values);
    if (vals.length === 0) this.t.delete(idx, this.b.curSk);
    else this.t.put(idx, this.b.curSk, this.b.curKey, vals, 0);
  }
  private wrap(values: Iterable<T>): unknown[] {
    const arr = Array.from(values);
    if (this.t.ttl === undefined) return arr;
    const now = this.b.clock();
    return arr.map((v) => ({ v, ts: now }));
  }
}

class HeapMapState<K, V> extends HeapHandle implements MapState<K, V> {
  /** The current key's map (created on demand), with expired entries of it checked lazily. */
  private map(idx: number, create: boolean): Map<unknown, MapEntry> | undefined {
    const e = this.t.get(idx, this.b.curSk);
    if (e !== undefined) return e.value as Map<unknown, MapEntry>;
    if (!create) return undefined;
    const m = new Map<unknown, MapEntry>();
    this.t.put(idx, this.b.curSk, this.b.curKey, m, 0);
    return m;
  }
  private dropIfEmpty(idx: number, m: Map<unknown, MapEntry>): void {
    if (m.size === 0) this.t.delete(idx, this.b.curSk);
  }
  /** TTL check of one entry on read: undefined when expired (and removed) unless visibility allows. */
  private visible(idx: number, m: Map<unknown, MapEntry>, sk: unknown, me: MapEntry, now: number): boolean {
    const ttl = this.t.ttl;
    if (ttl === undefined) return true;
    if (ttl.isExpired(me.ts, now)) {
      m.delete(sk);
      this.dropIfEmpty(idx, m);
      return ttl.returnExpired;
    }
    if (ttl.updateOnRead) me.ts = now;
    return true;
  }
  private now(): number {
    return this.t.ttl ? this.b.clock() : 0;
  }

  get(key: K): V | undefined {
    const idx = this.access();
    const m = this.map(idx, false);
    if (!m) return undefined;
    const sk = stateKeyOf(key);
    const me = m.get(sk);
    if (me === undefined) return undefined;
    return this.visible(idx, m, sk, me, this.now()) ? (me.v as V) : undefined;
  }
  contains(key: K): boolean {
    const idx = this.access();
    const m = this.map(idx, false);
    if (!m) return false;
    const sk = stateKeyOf(key);
    const me = m.get(sk);
    return me !== undefined && this.visible(idx, m, sk, me, this.now());
  }
  put(key: K, value: V): void {
    const m = this.map(this.access(), true)!;
    const sk = stateKeyOf(key);
    const me = m.get(sk);
    const ts = this.now();
    if (me) {
      me.v = value;
      me.ts = ts;
    } else m.set(sk, { k: key, v: value, ts });
  }
  putAll(entries: Iterable<readonly [K, V]> | Map<K, V>): void {
    for (const [k, v] of entries) this.put(k, v);
  }
  remove(key: K): void {
    const idx = this.access();
    const m = this.map(idx, false);
    if (!m) return;
    m.delete(stateKeyOf(key));
    this.dropIfEmpty(idx, m);
  }
  /** Visible entries, snapshotted when called (safe to modify the state while iterating). */
  private visibleEntries(): MapEntry[] {
    const idx = this.access();
    const m = this.map(idx, false);
    if (!m) return [];
    const now = this.now();
    const out: MapEntry[] = [];
    for (const [sk, me] of [...m]) if (this.visible(idx, m, sk, me, now)) out.push(me);
    return out;
  }
  *entries(): IterableIterator<[K, V]> {
    for (const me of this.visibleEntries()) yield [me.k as K, me.v as V];
  }
  *keys(): IterableIterator<K> {
    for (const me of this.visibleEntries()) yield me.k as K;
  }
  *values(): IterableIterator<V> {
    for (const me of this.visibleEntries()) yield me.v as V;
  }
  isEmpty(): boolean {
    const idx = this.access();
    const m = this.map(idx, false);
    if (!m) return true;
    const ttl = this.t.ttl;
    if (ttl === undefined) return m.size === 0;
    const now = this.b.clock();
    for (const me of m.values()) if (!ttl.isExpired(me.ts, now)) return false;
    return true;
  }
}
