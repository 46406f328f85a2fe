// Owns the binary keyed-state backend: schema'd values stored as binary rows (the engine's one row
// format, abi/abi.ts) in a byte arena per state, found through an open-addressing table keyed by the
// key's hash and compared by the key's canonical bytes. Scoped by key group like the heap backend:
// the key group is derived from the stored hash, so snapshots and rescaling work per key group.
//
// What is here: ValueState with a schema (TTL: expiry on read, both update types and visibilities,
// full-snapshot cleanup). Not yet: list / map / reducing / aggregating state, incremental TTL cleanup,
// arenas in WASM managed-memory segments under the job's budget (the arena is a growable JS
// ArrayBuffer today), spilling.
//
// Slot layout in the arena (every slot 8-byte aligned):
//
//   +0  u32 hash (hashJsKey of the key)     +4  u32 keyLen
//   +8  f64 ts (last access, TTL)
//   +16 u32 batchCap (bytes reserved for the batch)   +20 u32 live (1) / dead (0)
//   +24 key bytes: MessagePack of the canonical key, zero-padded to 8
//   ... one-row batch: 16-byte batch header + the row, `batchCap` bytes reserved
//
// An update that fits the reserved bytes is written in place; otherwise the slot dies and a new one
// is appended; the arena is compacted when dead bytes exceed live ones.
//
// Snapshot payload of one key group: msgpack [[stateIndex, keys[], ts[] | null, batch], ...] where
// `batch` is one ordinary multi-row batch of the values (rows copied, not re-encoded).

import { BATCH_HEADER_BYTES, BATCH_MAGIC } from '../../bindings/abi.generated.ts';
import { AnyEncoder, decodeAny } from '../core/any-codec.ts';
import { BatchReader } from '../core/batch-reader.ts';
import { BatchWriter } from '../core/batch-writer.ts';
import type { ErrorContext } from '../core/errors.ts';
import { hashJsKey, keyGroupOf } from '../core/hash.ts';
import type { Schema } from '../core/schema.ts';
import { type HandleOf, StateDescriptor, type ValueState, ValueStateDescriptor } from './descriptors.ts';
import { CorruptSnapshotError, StateAccessError } from './errors.ts';
import type { KeyedStateBackend, KeyedStateBackendOptions } from './heap-backend.ts';
import { KeyGroupRange } from './key-groups.ts';
import { decodePlain, encodePlain, readKeyedSnapshot, SNAPSHOT_VERSION, type StateMeta } from './snapshot-codec.ts';
import type { StateClock } from './ttl.ts';

const BINARY_FORMAT = 'sluice.keyed.binary';
const SLOT_HEAD = 24;
const EMPTY = 0;
const TOMB = -1;

const pad8 = (n: number) => (n + 7) & ~7;

/** Canonical form of a key for its bytes: -0 is 0, undefined is null (the engine's key equality). */
function canonicalKey(k: unknown): unknown {
  if (typeof k === 'number') return k === 0 ? 0 : k;
  if (k === undefined) return null;
  if (Array.isArray(k)) return k.map(canonicalKey);
  return k;
}

/**
 * Per-state storage: arena + open-addressing index. Cost: O(1) expected per lookup (a hash probe and
 * a byte comparison of the key); an update re-encodes the row (O(fields + payload)).
 */
class BinaryValueTable {
  arena = new Uint8Array(64 * 1024);
  dv = new DataView(this.arena.buffer);
  top = 0;
  dead = 0;
  count = 0;
  /** index: slot offset + 1 (0 empty, −1 tombstone) and the hash, `mask + 1` entries */
  slots = new Int32Array(64);
  hashes = new Uint32Array(64);
  mask = 63;
  used = 0; // live + tombstones

  private readonly writer: BatchWriter;
  private scratch = new Uint8Array(1024);
  readonly reader: BatchReader;

  constructor(
    readonly d: ValueStateDescriptor<any>,
    readonly schema: Schema,
  ) {
    this.writer = new BatchWriter(schema, this.scratch, { oversizedRow: 'return-false', operator: `state '${d.name}'` });
    // an empty batch to construct the reader; it is pointed at slots later
    this.writer.reset();
    this.reader = new BatchReader(schema, this.writer.bytes(this.writer.finish()).slice());
  }

  /** Finds the slot of a key: its arena offset, or −1. */
  find(hash: number, key: Uint8Array): number {
    const { slots, hashes, mask } = this;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const s = slots[i]!;
      if (s === EMPTY) return -1;
      if (s !== TOMB && hashes[i] === hash && this.keyEquals(s - 1, key)) return s - 1;
    }
  }

  private keyEquals(off: number, key: Uint8Array): boolean {
    const len = this.dv.getUint32(off + 4, true);
    if (len !== key.length) return false;
    const a = this.arena;
    const base = off + SLOT_HEAD;
    for (let i = 0; i < len; i++) if (a[base + i] !== key[i]) return false;
    return true;
  }

  /** Encodes a value into the scratch batch; answers its bytes (valid until the next encode). */
  encode(value: unknown): Uint8Array {
    const w = this.writer;
    w.reset();
    while (!w.write(value as Record<string, unknown>)) {
      this.scratch = new Uint8Array(this.scratch.length * 2);
      w.begin(this.scratch);
    }
    return w.bytes(w.finish());
  }

  /** Writes a one-row batch for `key` (new slot or in place). */
  put(hash: number, key: Uint8Array, batch: Uint8Array, ts: number): void {
    let off = this.find(hash, key);
    if (off >= 0 && this.dv.getUint32(off + 16, true) >= batch.length) {
      this.arena.set(batch, off + SLOT_HEAD + pad8(key.length));
      this.dv.setFloat64(off + 8, ts, true);
      return;
    }
    if (off >= 0) this.kill(off, hash);
    const cap = this.mask + 1;
    if ((this.used + 1) * 2 > cap) this.rebuildIndex((this.count + 1) * 4 > cap ? cap * 2 : cap); // else: only tombstones to sweep
    off = this.append(hash, key, batch, ts);
    this.insertIndex(hash, off);
    this.count++;
  }

  private append(hash: number, key: Uint8Array, batch: Uint8Array, ts: number): number {
    const size = SLOT_HEAD + pad8(key.length) + pad8(batch.length);
    this.ensure(size);
    const off = this.top;
    const dv = this.dv;
    dv.setUint32(off, hash, true);
    dv.setUint32(off + 4, key.length, true);
    dv.setFloat64(off + 8, ts, true);
    dv.setUint32(off + 16, pad8(batch.length), true);
    dv.setUint32(off + 20, 1, true);
    this.arena.fill(0, off + SLOT_HEAD, off + size);
    this.arena.set(key, off + SLOT_HEAD);
    this.arena.set(batch, off + SLOT_HEAD + pad8(key.length));
    this.top += size;
    return off;
  }

  slotSize(off: number): number {
    return SLOT_HEAD + pad8(this.dv.getUint32(off + 4, true)) + this.dv.getUint32(off + 16, true);
  }

  private ensure(n: number): void {
    if (this.top + n <= this.arena.length) return;
    if (this.dead > this.top / 2) {
      this.compact();
      if (this.top + n <= this.arena.length) return;
    }
    let cap = this.arena.length * 2;
    while (cap < this.top + n) cap *= 2;
    const a = new Uint8Array(cap);
    a.set(this.arena.subarray(0, this.top));
    this.arena = a;
    this.dv = new DataView(a.buffer);
  }

  /** Rewrites the arena with live slots only and rebuilds the index. */
  private compact(): void {
    const a = new Uint8Array(this.arena.length);
    let top = 0;
    for (let off = 0; off < this.top; off += this.slotSize(off)) {
      if (this.dv.getUint32(off + 20, true) !== 1) continue;
      const size = this.slotSize(off);
      a.set(this.arena.subarray(off, off + size), top);
      top += size;
    }
    this.arena = a;
    this.dv = new DataView(a.buffer);
    this.top = top;
    this.dead = 0;
    this.rebuildIndex(this.mask + 1);
  }

  private rebuildIndex(cap: number): void {
    this.slots = new Int32Array(cap);
    this.hashes = new Uint32Array(cap);
    this.mask = cap - 1;
    this.used = 0;
    for (let off = 0; off < this.top; off += this.slotSize(off)) {
      if (this.dv.getUint32(off + 20, true) === 1) this.insertIndex(this.dv.getUint32(off, true), off);
    }
  }

  /** Inserts without growing: callers keep the load factor at most 1/2 (see `put`). */
  private insertIndex(hash: number, off: number): void {
    const { slots, mask } = this;
    let i = hash & mask;
    while (slots[i] !== EMPTY && slots[i] !== TOMB) i = (i + 1) & mask;
    if (slots[i] === EMPTY) this.used++;
    slots[i] = off + 1;
    this.hashes[i] = hash;
  }

  /** Removes a slot from the index and marks it dead. */
  kill(off: number, hash: number): void {
    const { slots, mask } = this;
    for (let i = hash & mask; slots[i] !== EMPTY; i = (i + 1) & mask) {
      if (slots[i] === off + 1) {
        slots[i] = TOMB;
        break;
      }
    }
    this.dv.setUint32(off + 20, 0, true);
    this.dead += this.slotSize(off);
    this.count--;
  }

  batchOffset(off: number): number {
    return off + SLOT_HEAD + pad8(this.dv.getUint32(off + 4, true));
  }

  /** Decodes the value in a slot. */
  read(off: number): unknown {
    const b = this.batchOffset(off);
    const len = this.dv.getUint32(b + 4, true);
    return this.reader.reset(this.arena.subarray(b, b + len)).read(0);
  }

  keyOf(off: number): unknown {
    return decodeAny(this.arena, off + SLOT_HEAD, this.dv.getUint32(off + 4, true));
  }

  /** Live slot offsets, in arena order. */
  *live(): IterableIterator<number> {
    for (let off = 0; off < this.top; off += this.slotSize(off)) if (this.dv.getUint32(off + 20, true) === 1) yield off;
  }
}

/**
 * Keyed state whose values are binary rows of a schema, kept in byte arenas rather than as JS
 * objects (reads materialize a fresh object; mutating it does not change the state — call `update`).
 * Supports `ValueStateDescriptor`s with a `schema`; any other descriptor is a `StateAccessError`.
 *
 * @example
 * const acct = schema({ balance: t.f64(), owner: t.string() });
 * const backend = new BinaryKeyedStateBackend({ maxParallelism: 128 });
 * const st = backend.getState(ValueStateDescriptor.ofSchema('acct', acct));
 * backend.setCurrentKey(7);
 * st.update({ balance: 10, owner: 'ann' });
 */
export class BinaryKeyedStateBackend implements KeyedStateBackend {
  readonly maxParallelism: number;
  readonly keyGroupRange: KeyGroupRange;
  readonly clock: StateClock;
  readonly context: ErrorContext;
  private readonly tables = new Map<string, BinaryValueTable>();
  private readonly handles = new Map<string, BinaryValueState<unknown>>();
  /** Restored, not yet registered: name → decoded payload parts */
  private readonly pending = new Map<string, { meta: StateMeta; parts: unknown[][] }>();
  private readonly keyEncoder = new AnyEncoder();
  /** @internal */
  curKey: unknown = undefined;
  curHash = 0;
  curKeyBytes: Uint8Array = new Uint8Array(0);
  curIdx = -1;

  constructor(opts: KeyedStateBackendOptions) {
    const m = opts.maxParallelism;
    if (!(Number.isInteger(m) && m >= 1)) throw new RangeError(`maxParallelism must be a positive integer, got ${m}`);
    this.maxParallelism = m;
    this.keyGroupRange = opts.keyGroupRange ?? KeyGroupRange.all(m);
    this.clock = opts.clock ?? Date.now;
    this.context = { operator: opts.operator, subtask: opts.subtask };
  }

  setCurrentKey(key: unknown, keyGroup?: number): void {
    const hash = hashJsKey(key);
    const kg = keyGroup ?? keyGroupOf(hash, this.maxParallelism);
    if (!this.keyGroupRange.contains(kg)) {
      throw new StateAccessError(`key ${String(key)} is in key group ${kg}, outside this backend's ${this.keyGroupRange}`, this.context);
    }
    this.curKey = key;
    this.curHash = hash;
    this.curKeyBytes = this.keyEncoder.encode(canonicalKey(key)).slice();
    this.curIdx = kg - this.keyGroupRange.start;
  }

  getCurrentKey(): unknown {
    return this.curKey;
  }

  get currentKeyGroup(): number {
    return this.curIdx < 0 ? -1 : this.curIdx + this.keyGroupRange.start;
  }

  /** @internal */
  check(): void {
    if (this.curIdx < 0) throw new StateAccessError('keyed state accessed with no current key (setCurrentKey first)', this.context);
  }

  getState<D extends StateDescriptor<any, any>>(descriptor: D): HandleOf<D> {
    if (!(descriptor instanceof ValueStateDescriptor) || descriptor.schema === undefined) {
      throw new StateAccessError(
        `the binary state backend supports only ValueState with a schema so far; '${descriptor.name}' is ${descriptor.kind} state${descriptor.kind === 'value' ? ' without a schema' : ''} (use the heap backend)`,
        this.context,
      );
    }
    if (descriptor.ttl && descriptor.ttl.incrementalCleanupSize > 0) {
      throw new StateAccessError(`the binary state backend has no incremental TTL cleanup yet (state '${descriptor.name}')`, this.context);
    }
    const have = this.handles.get(descriptor.name);
    if (have) {
      if (have.t.schema.id !== descriptor.schema.id) throw new StateAccessError(`state '${descriptor.name}' is registered with schema ${have.t.schema}, requested with ${descriptor.schema}`, this.context);
      return have as HandleOf<D>;
    }
    const t = new BinaryValueTable(descriptor, descriptor.schema);
    const p = this.pending.get(descriptor.name);
    if (p) {
      this.pending.delete(descriptor.name);
      for (const part of p.parts) this.load(t, part);
    }
    this.tables.set(descriptor.name, t);
    const h = new BinaryValueState<unknown>(this, t);
    this.handles.set(descriptor.name, h);
    return h as HandleOf<D>;
  }

  *keys(stateName: string): IterableIterator<unknown> {
    const t = this.tables.get(stateName);
    if (!t) return;
    for (const off of [...t.live()]) yield t.keyOf(off);
  }

  numKeys(stateName: string): number {
    return this.tables.get(stateName)?.count ?? 0;
  }

  /** Arena bytes in use over all states (live and dead slots). */
  get arenaBytes(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.top;
    return n;
  }

  snapshot(range: KeyGroupRange = this.keyGroupRange): Uint8Array {
    const now = this.clock();
    const tables = [...this.tables.values()];
    const pend = [...this.pending.values()];
    const states: StateMeta[] = [...tables.map((t) => ({ name: t.d.name, kind: 'value' as const, ttl: t.d.ttl !== undefined })), ...pend.map((p) => p.meta)];
    const byGroup = new Map<number, unknown[]>();
    const add = (kg: number, part: unknown[]) => {
      let l = byGroup.get(kg);
      if (!l) byGroup.set(kg, (l = []));
      l.push(part);
    };
    tables.forEach((t, si) => {
      const ttl = t.d.ttl;
      const perGroup = new Map<number, number[]>();
      for (const off of t.live()) {
        const kg = keyGroupOf(t.dv.getUint32(off, true), this.maxParallelism);
        if (!range.contains(kg) || !this.keyGroupRange.contains(kg)) continue;
        if (ttl && ttl.cleanupFullSnapshot && ttl.isExpired(t.dv.getFloat64(off + 8, true), now)) continue;
        let l = perGroup.get(kg);
        if (!l) perGroup.set(kg, (l = []));
        l.push(off);
      }
      for (const [kg, offs] of perGroup) {
        add(kg, [si, offs.map((o) => t.keyOf(o)), ttl ? offs.map((o) => t.dv.getFloat64(o + 8, true)) : null, this.multiRowBatch(t, offs)]);
      }
    });
    pend.forEach((p, pi) => {
      for (const part of p.parts) {
        const kg = part[4] as number;
        if (range.contains(kg)) add(kg, [tables.length + pi, part[1], part[2], part[3]]);
      }
    });
    const groups: Array<[number, Uint8Array]> = [...byGroup.keys()]
      .sort((a, b) => a - b)
      .map((kg) => [kg, encodePlain(byGroup.get(kg), `key group ${kg}`, this.context)]);
    return encodePlain({ format: BINARY_FORMAT, version: SNAPSHOT_VERSION, maxParallelism: this.maxParallelism, states, groups }, 'snapshot', this.context);
  }

  /** One batch holding the rows of the given slots, copied byte for byte. */
  private multiRowBatch(t: BinaryValueTable, offs: number[]): Uint8Array {
    let len = BATCH_HEADER_BYTES;
    const rows: Array<[number, number]> = [];
    for (const o of offs) {
      const b = t.batchOffset(o);
      const rowLen = t.dv.getUint32(b + 4, true) - BATCH_HEADER_BYTES;
      rows.push([b + BATCH_HEADER_BYTES, rowLen]);
      len += rowLen;
    }
    const out = new Uint8Array(len);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, BATCH_MAGIC, true);
    dv.setUint32(4, len, true);
    dv.setUint32(8, offs.length, true);
    dv.setUint32(12, t.schema.id, true);
    let p = BATCH_HEADER_BYTES;
    for (const [from, n] of rows) {
      out.set(t.arena.subarray(from, from + n), p);
      p += n;
    }
    return out;
  }

  restore(snapshots: Iterable<Uint8Array>): void {
    for (const bytes of snapshots) {
      const s = readKeyedSnapshot(bytes, BINARY_FORMAT, this.maxParallelism, this.context);
      for (const [kg, payload] of s.groups) {
        if (!this.keyGroupRange.contains(kg)) continue;
        const parts = decodePlain(payload, `key group ${kg}`, this.context);
        if (!Array.isArray(parts)) throw new CorruptSnapshotError(`key group ${kg} payload is not a list`, this.context);
        for (const part of parts as unknown[][]) {
          if (!Array.isArray(part) || typeof part[0] !== 'number' || !s.states[part[0]] || !Array.isArray(part[1]) || !(part[3] instanceof Uint8Array)) {
            throw new CorruptSnapshotError(`key group ${kg} has a malformed state entry`, this.context);
          }
          const meta = s.states[part[0]]!;
          const t = this.tables.get(meta.name);
          const withKg = [part[0], part[1], part[2], part[3], kg];
          if (t) this.load(t, withKg);
          else {
            let p = this.pending.get(meta.name);
            if (!p) this.pending.set(meta.name, (p = { meta, parts: [] }));
            p.parts.push(withKg);
          }
        }
      }
    }
  }

  /** Loads [_, keys, ts, batch, kg] into a table; the batch is validated by the reader. */
  private load(t: BinaryValueTable, part: unknown[]): void {
    const keys = part[1] as unknown[];
    const tss = part[2] as number[] | null;
    const batch = (part[3] as Uint8Array).slice(); // aligned copy
    const r = new BatchReader(t.schema, batch, this.context);
    if (r.rowCount !== keys.length) throw new CorruptSnapshotError(`state '${t.d.name}': ${keys.length} keys but ${r.rowCount} rows`, this.context);
    const now = this.clock();
    const one = new Uint8Array(64);
    let buf = one;
    for (let i = 0; i < keys.length; i++) {
      const start = r.rowOffset(i);
      const end = i + 1 < keys.length ? r.rowOffset(i + 1) : r.byteLength;
      const n = BATCH_HEADER_BYTES + end - start;
      if (buf.length < n) buf = new Uint8Array(pad8(n) * 2);
      const dv = new DataView(buf.buffer);
      dv.setUint32(0, BATCH_MAGIC, true);
      dv.setUint32(4, n, true);
      dv.setUint32(8, 1, true);
      dv.setUint32(12, t.schema.id, true);
      buf.set(batch.subarray(start, end), BATCH_HEADER_BYTES);
      const key = keys[i];
      const kb = this.keyEncoder.encode(canonicalKey(key)).slice();
      t.put(hashJsKey(key), kb, buf.subarray(0, n), typeof tss?.[i] === 'number' ? tss[i]! : now);
    }
  }

  dispose(): void {
    this.tables.clear();
    this.handles.clear();
    this.pending.clear();
    this.curIdx = -1;
  }
}

class BinaryValueState<T> implements ValueState<T> {
  constructor(
    private readonly b: BinaryKeyedStateBackend,
    readonly t: BinaryValueTable,
  ) {}
  value(): T | undefined {
    const b = this.b;
    b.check();
    const t = this.t;
    const off = t.find(b.curHash, b.curKeyBytes);
    if (off < 0) return undefined;
    const ttl = t.d.ttl;
    if (ttl !== undefined) {
      const now = b.clock();
      if (ttl.isExpired(t.dv.getFloat64(off + 8, true), now)) {
        const v = ttl.returnExpired ? (t.read(off) as T) : undefined;
        t.kill(off, b.curHash);
        return v;
      }
      if (ttl.updateOnRead) t.dv.setFloat64(off + 8, now, true);
    }
    return t.read(off) as T;
  }
  update(value: T | undefined): void {
    const b = this.b;
    b.check();
    if (value === undefined) return this.clear();
    const t = this.t;
    t.put(b.curHash, b.curKeyBytes, t.encode(value), t.d.ttl ? b.clock() : 0);
  }
  clear(): void {
    const b = this.b;
    b.check();
    const off = this.t.find(b.curHash, b.curKeyBytes);
    if (off >= 0) this.t.kill(off, b.curHash);
  }
}
