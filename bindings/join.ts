// Owns the host side of the hash join kernels (assembly/join.ts): the join plan (output schema, which
// side builds, the probe / scan modes of each join type), a hash table over build batches in managed
// memory, probing and scanning into output batches (STATUS_FULL → flush → resume), the seeded
// partitioner, and an all-in-memory `hashJoin` built from them. The spilling operator on top is
// src/operators/batch/hash-join.ts.

import { JobDefinitionError, SchemaMismatchError, SluiceError } from '../src/core/errors.ts';
import { FieldType, Schema, type Fields } from '../src/core/schema.ts';
import {
  BATCH_HEADER_BYTES,
  JOIN_BUILD_FIRST,
  JOIN_BUILD_ONLY,
  JOIN_EMIT_MATCH,
  JOIN_EMIT_PROBE_MATCHED,
  JOIN_EMIT_PROBE_UNMATCHED,
  JOIN_MARK_BUILD,
  JOIN_PROBE_BITMAP,
  JOIN_PROBE_ONLY,
  JOIN_PROBE_STATE_BYTES,
  JOIN_SCAN_MATCHED,
  JOIN_TABLE_HEADER_BYTES,
  SEGMENT_BYTES,
  STATUS_DONE,
  STATUS_FULL,
} from './abi.generated.ts';
import { fieldIndex, keyDescriptor, schemaDescriptor, type Kernels, type KeyRef, type ManagedBatch } from './kernels.ts';

/** The raw join exports of the kernel module. */
export interface JoinExports {
  joinTableBytes(capacity: number, nBuckets: number): number;
  joinTableInit(t: number, capacity: number, nBuckets: number, schemaDesc: number, keyDesc: number): void;
  joinTableCount(t: number): number;
  joinBuild(t: number, batch: number, startRow: number, startOffset: number): number;
  joinFinish(t: number): number;
  joinDenseBytes(t: number): number;
  joinDense(t: number, region: number): void;
  joinProbe(t: number, batch: number, schemaDesc: number, keyDesc: number, mode: number, state: number, out: number, cap: number): number;
  joinScan(t: number, mode: number, probeFields: number, state: number, out: number, cap: number): number;
  joinPartition(batch: number, schemaDesc: number, keyDesc: number, seed: number, bits: number, dropNullKeys: number, table: number, startRow: number, startOffset: number): number;
}

/** SQL join types; `semi` / `anti` keep left rows with (without) a partner, as `WHERE [NOT] EXISTS`. */
export type JoinType = 'inner' | 'left' | 'right' | 'full' | 'semi' | 'anti';

export const JOIN_TYPES: readonly JoinType[] = ['inner', 'left', 'right', 'full', 'semi', 'anti'];

/** What to join: both sides' schemas and keys (same count and types, pairwise) and the join type. */
export interface JoinSpec {
  type: JoinType;
  left: Schema;
  right: Schema;
  leftKeys: readonly (number | string)[];
  rightKeys: readonly (number | string)[];
  /** Which side the hash table is built over (default `right`). */
  buildSide?: 'left' | 'right';
}

/**
 * A resolved join: the output schema (left fields then right fields; only left fields for semi/anti;
 * a side that may be missing has nullable fields; a right name that repeats a left one gets `_r`),
 * and what each side does.
 */
export interface JoinPlan {
  readonly type: JoinType;
  readonly buildSide: 'left' | 'right';
  readonly output: Schema;
  readonly build: { schema: Schema; keys: number[]; dropNullKeys: boolean };
  readonly probe: { schema: Schema; keys: number[]; dropNullKeys: boolean };
  /** Mode bits of joinProbe. */
  readonly probeMode: number;
  /** Mode bits of joinScan, or undefined when the build side emits nothing of its own. */
  readonly scanMode: number | undefined;
}

/**
 * Resolves a join spec (throws JobDefinitionError on unknown fields, key count or type mismatch).
 *
 * @example
 * const plan = planJoin({ type: 'left', left: orders, right: users, leftKeys: ['user'], rightKeys: ['id'] });
 * plan.output.toString(); // "{ id: i64, user: i64, id_r: i64?, name: string? }"
 */
export function planJoin(spec: JoinSpec): JoinPlan {
  const { type, left, right } = spec;
  if (!JOIN_TYPES.includes(type)) throw new JobDefinitionError(`unknown join type ${JSON.stringify(type)}; one of ${JOIN_TYPES.join(', ')}`);
  const lk = spec.leftKeys.map((f) => fieldIndex(left, f));
  const rk = spec.rightKeys.map((f) => fieldIndex(right, f));
  if (lk.length === 0 || lk.length !== rk.length) throw new JobDefinitionError(`join needs the same number (≥ 1) of left and right keys, got ${lk.length} and ${rk.length}`);
  lk.forEach((l, i) => {
    const a = left.types[l]!.kind;
    const b = right.types[rk[i]!]!.kind;
    if (a !== b) throw new JobDefinitionError(`join key ${i}: left ${left.names[l]} is ${a} but right ${right.names[rk[i]!]} is ${b}`);
  });
  const buildSide = spec.buildSide ?? 'right';
  const semiAnti = type === 'semi' || type === 'anti';
  const leftMissing = type === 'right' || type === 'full';
  const rightMissing = type === 'left' || type === 'full';
  const fields: Fields = {};
  left.names.forEach((n, i) => (fields[n] = leftMissing ? left.types[i]!.nullable() : left.types[i]!));
  if (!semiAnti) {
    right.names.forEach((n, i) => {
      let name = n;
      while (name in fields) name += '_r';
      const ty = right.types[i]!;
      fields[name] = rightMissing ? ty.nullable() : new FieldType(ty.kind, ty.isNullable, ty.bigint);
    });
  }
  const output = new Schema(fields);
  // what each side does, from the probe side's point of view
  const leftOuter = type === 'left' || type === 'full';
  const rightOuter = type === 'right' || type === 'full';
  let probeMode: number;
  let scanMode: number | undefined;
  if (buildSide === 'right') {
    if (type === 'semi') probeMode = JOIN_EMIT_PROBE_MATCHED | JOIN_PROBE_ONLY;
    else if (type === 'anti') probeMode = JOIN_EMIT_PROBE_UNMATCHED | JOIN_PROBE_ONLY;
    else {
      probeMode = JOIN_EMIT_MATCH | (leftOuter ? JOIN_EMIT_PROBE_UNMATCHED : 0) | (rightOuter ? JOIN_MARK_BUILD : 0);
      scanMode = rightOuter ? 0 : undefined;
    }
  } else {
    if (semiAnti) {
      probeMode = JOIN_MARK_BUILD;
      scanMode = JOIN_BUILD_ONLY | (type === 'semi' ? JOIN_SCAN_MATCHED : 0);
    } else {
      probeMode = JOIN_BUILD_FIRST | JOIN_EMIT_MATCH | (rightOuter ? JOIN_EMIT_PROBE_UNMATCHED : 0) | (leftOuter ? JOIN_MARK_BUILD : 0);
      scanMode = leftOuter ? JOIN_BUILD_FIRST : undefined;
    }
  }
  const buildIsLeft = buildSide === 'left';
  const buildOuter = scanMode !== undefined;
  const probeKeepsUnmatched = (probeMode & JOIN_EMIT_PROBE_UNMATCHED) !== 0;
  return {
    type,
    buildSide,
    output,
    build: { schema: buildIsLeft ? left : right, keys: buildIsLeft ? lk : rk, dropNullKeys: !buildOuter },
    probe: { schema: buildIsLeft ? right : left, keys: buildIsLeft ? rk : lk, dropNullKeys: !probeKeepsUnmatched },
    probeMode,
    scanMode,
  };
}

/** Room for the probe side's schema and key descriptors next to a table. */
const PROBE_DESC_BYTES = 1024;

/** Buckets for a table of `rows` entries: a power of two ≥ rows (load factor in (0.5, 1]). */
export function bucketsFor(rows: number): number {
  let n = 1;
  while (n < rows) n *= 2;
  return n;
}

/** Bytes of a join table of `rows` entries (see assembly/join.ts: ~20 bytes per row). */
export function joinTableBytes(rows: number): number {
  return JOIN_TABLE_HEADER_BYTES + 4 * bucketsFor(rows) + 12 * rows + Math.ceil(rows / 64) * 8;
}

/** The raw join exports of a kernel instance. */
export function joinExports(k: Kernels): JoinExports {
  return k.raw as unknown as JoinExports;
}

/** Options of {@link JoinOutput}. */
export interface JoinOutputOptions {
  /**
   * Extra buffers (allocated up front, `capacity` bytes each) for handing out full batches as views
   * instead of copies ({@link JoinOutput.take}); 0 (the default) copies every batch.
   */
  reuseBuffers?: number;
}

/** A completed output batch: a copy, or (reuse) a buffer in managed memory. */
type Done = Uint8Array | { ptr: number; len: number };

/**
 * A resumable output batch in managed memory: kernels append rows; `full()` sets the batch aside (a
 * copy, or with spare buffers the buffer itself) and starts an empty one (for a row larger than an
 * empty buffer, a buffer of its own); `drain()` / `take()` hand over what is done.
 *
 * With `reuseBuffers`, `take()` yields views into the buffers instead of copies, which saves copying
 * every output byte out of linear memory and the garbage the copies make. A view is valid until the
 * consumer asks for the next batch after it, and only while the kernel instance does not grow its
 * memory (a growth detaches every view). Buffers come back on the first `full()` / `flush()` after
 * the batches of a `take()` were consumed; when none is free (a kernel call completed more batches
 * than there are spares), the batch is copied.
 */
export class JoinOutput {
  private readonly done: Done[] = [];
  private readonly bufs: number[] = []; // the first buffer, then the spares
  private readonly free: number[] = []; // spares to write into next
  private readonly lent: number[] = []; // buffers handed out by take()
  private readonly allocOwn: (bytes: number) => number;
  private own = 0;
  private cur: number;
  ptr: number;
  cap: number;
  constructor(
    private readonly k: Kernels,
    private readonly schemaId: number,
    private readonly capacity: number,
    alloc: (bytes: number) => number = (b) => k.memory.alloc(b),
    private readonly release: (ptr: number) => void = (p) => k.memory.free(p),
    opts: JoinOutputOptions = {},
  ) {
    this.allocOwn = alloc;
    try {
      for (let i = 0; i <= (opts.reuseBuffers ?? 0); i++) this.bufs.push(alloc(capacity));
    } catch (e) {
      for (const p of this.bufs) release(p);
      throw e;
    }
    this.free.push(...this.bufs.slice(1));
    this.cur = this.ptr = this.bufs[0]!;
    this.cap = capacity;
    k.raw.initBatch(this.ptr, schemaId);
  }
  /** Handles STATUS_FULL for a row of `need` bytes. */
  full(need: number): void {
    if (this.k.memory.u32[(this.ptr >>> 2) + 2]! > 0) {
      this.flush();
      return;
    }
    this.cap = BATCH_HEADER_BYTES + need;
    this.own = this.ptr = this.allocOwn(this.cap);
    this.k.raw.initBatch(this.ptr, this.schemaId);
  }
  /** Sets the current batch aside if it has rows and starts an empty one. */
  flush(): void {
    const u32 = this.k.memory.u32;
    const len = u32[(this.ptr >>> 2) + 1]!;
    const rows = u32[(this.ptr >>> 2) + 2]!;
    if (this.own !== 0) {
      // a large row's own buffer: copied, and not kept between flushes
      if (rows > 0) this.done.push(this.k.memory.u8.slice(this.ptr, this.ptr + len));
      this.release(this.own);
      this.own = 0;
    } else if (rows > 0) {
      // what take() handed out has been consumed by now: the kernels only run between take()s
      if (this.lent.length > 0) this.free.push(...this.lent.splice(0));
      const next = this.free.pop();
      if (next === undefined) {
        this.done.push(this.k.memory.u8.slice(this.ptr, this.ptr + len));
      } else {
        this.done.push({ ptr: this.cur, len });
        this.cur = next;
      }
    }
    this.ptr = this.cur;
    this.cap = this.capacity;
    this.k.raw.initBatch(this.ptr, this.schemaId);
  }
  /** The completed batches so far, as copies (removed from the output). */
  drain(): Uint8Array[] {
    const m = this.k.memory;
    return this.done.splice(0).map((d) => {
      if (d instanceof Uint8Array) return d;
      this.lent.push(d.ptr);
      return m.u8.slice(d.ptr, d.ptr + d.len);
    });
  }
  /**
   * The completed batches so far (removed from the output): copies, or views into spare buffers, each
   * view made when it is yielded and valid until the next batch is asked for.
   */
  *take(): Generator<Uint8Array> {
    for (const d of this.done.splice(0)) {
      if (d instanceof Uint8Array) {
        yield d;
      } else {
        this.lent.push(d.ptr);
        yield this.k.memory.u8.subarray(d.ptr, d.ptr + d.len);
      }
    }
  }
  dispose(): void {
    if (this.own !== 0) this.release(this.own);
    this.own = 0;
    for (const p of this.bufs.splice(0)) this.release(p);
    this.free.length = this.lent.length = 0;
  }
}

/**
 * A hash table over build rows (in batches that stay in managed memory while it lives), with the
 * schema and key descriptors it needs. Cost: {@link joinTableBytes} of budget; insert and probe are
 * one kernel call per batch (plus one per output batch that fills).
 *
 * @example
 * const t = new JoinTable(k, plan.build.schema, plan.build.keys, rows);
 * t.insert(b);                                   // every build batch
 * const out = new JoinOutput(k, plan.output.id, 32768);
 * t.probe(plan.probe.schema, plan.probe.keys, p, plan.probeMode, out);
 * if (plan.scanMode !== undefined) t.scan(plan.scanMode, plan.probe.schema.types.length, out);
 * out.flush(); t.close(); out.dispose();
 */
export class JoinTable {
  private readonly x: JoinExports;
  private region: number;
  private readonly descs: number;
  private readonly state: number;
  private probeDescs = new Map<Schema, { keys: string; ptr: number }>();
  private readonly probeRegion: number;
  private readonly allocWide: (bytes: number) => number;
  private wideDescs = 0;
  private finished = false;
  private dense = 0;
  private denseSize = 0;
  private denseRefused = false;
  private readonly tryAllocDense: ((bytes: number) => number) | undefined;
  readonly capacity: number;

  /** Budget bytes a table of `capacity` rows over `schema` takes (table, descriptors, state). */
  static bytesFor(schema: Schema, nKeys: number, capacity: number): number {
    return ((joinTableBytes(capacity) + 7) & ~7) + 4 * (2 + schema.types.length + 2 * nKeys) + 8 + JOIN_PROBE_STATE_BYTES + PROBE_DESC_BYTES;
  }

  constructor(
    private readonly k: Kernels,
    readonly schema: Schema,
    keys: readonly number[],
    capacity: number,
    alloc?: (bytes: number) => number,
    private readonly release: (ptr: number) => void = (p) => k.memory.free(p),
    tryAlloc?: (bytes: number) => number,
  ) {
    this.x = joinExports(k);
    if (!alloc) {
      alloc = (b) => k.memory.alloc(b);
      // the instance's own memory: a dense image when the budget has room for it
      tryAlloc ??= (b) => (k.memory.bytesInUse + b <= k.memory.budgetBytes ? k.memory.alloc(b) : 0);
    }
    this.tryAllocDense = tryAlloc;
    this.allocWide = alloc;
    this.capacity = capacity;
    const sd = schemaDescriptor(schema);
    const kd = keyDescriptor(schema, keys);
    const tb = (joinTableBytes(capacity) + 7) & ~7;
    // table, then descriptors, then probe state (32 bytes) and the probe-side descriptors
    const descBytes = 4 * (sd.length + kd.length);
    this.region = alloc(JoinTable.bytesFor(schema, keys.length, capacity));
    this.descs = this.region + tb;
    this.state = (this.descs + descBytes + 7) & ~7;
    this.probeRegion = this.state + JOIN_PROBE_STATE_BYTES;
    const u32 = k.memory.u32;
    u32.set(sd, this.descs >>> 2);
    u32.set(kd, (this.descs >>> 2) + sd.length);
    this.x.joinTableInit(this.region, capacity, bucketsFor(capacity), this.descs, this.descs + 4 * sd.length);
  }

  /** Rows inserted. */
  get count(): number {
    return this.x.joinTableCount(this.region) >>> 0;
  }

  /** Inserts every row of a batch (which must stay in place while the table lives). */
  insert(batch: ManagedBatch): void {
    this.finished = false;
    this.denseRefused = false;
    this.dropDense();
    const st = this.x.joinBuild(this.region, batch.ptr, 0, BATCH_HEADER_BYTES);
    if (st === STATUS_FULL) throw new SluiceError(`join table of ${this.capacity} entries is full`, { domain: 'internal' });
    if (st !== STATUS_DONE) throw unexpected('joinBuild', st);
  }

  /** Descriptors of a probe schema and keys, encoded once per schema (8 KiB of room; else a temp). */
  private probeDesc(schema: Schema, keys: readonly number[]): number {
    const key = keys.join(',');
    const hit = this.probeDescs.get(schema);
    if (hit && hit.keys === key) return hit.ptr;
    const sd = schemaDescriptor(schema);
    const kd = keyDescriptor(schema, keys);
    let ptr = this.probeRegion;
    if (4 * (sd.length + kd.length) > PROBE_DESC_BYTES) {
      // a wide probe schema: descriptors of their own (until close)
      if (this.wideDescs !== 0) this.release(this.wideDescs);
      this.wideDescs = 0;
      ptr = this.wideDescs = this.allocWide(4 * (sd.length + kd.length));
    }
    this.k.memory.u32.set(sd, ptr >>> 2);
    this.k.memory.u32.set(kd, (ptr >>> 2) + sd.length);
    this.probeDescs = new Map([[schema, { keys: key, ptr }]]);
    return ptr;
  }

  /**
   * Probes every row of `batch` (of `schema`, keys `keys`) with joinProbe `mode`, into `out`. With
   * `bitmap` (JOIN_PROBE_BITMAP), row r's matched flag is bit (bitmap.base + r) at bitmap.ptr.
   */
  probe(schema: Schema, keys: readonly number[], batch: ManagedBatch, mode: number, out: JoinOutput, bitmap?: { ptr: number; base: number }): void {
    const id = this.k.memory.u32[(batch.ptr >>> 2) + 3]!;
    if (id !== schema.id) throw new SchemaMismatchError(`probe batch has schema id ${id}, expected ${schema.id} for ${schema}`);
    const pd = this.probeDesc(schema, keys);
    const kdp = pd + 4 * (1 + schema.types.length);
    if (!this.finished) {
      // after the last insert: direct buckets for a dense integer key (assembly/join.ts joinFinish)
      this.x.joinFinish(this.region);
      this.finished = true;
    }
    // only the inner-join loop reads the dense image
    if (!bitmap && (mode & ~JOIN_BUILD_FIRST) === JOIN_EMIT_MATCH) this.makeDense();
    const u32 = this.k.memory.u32;
    const s = this.state >>> 2;
    u32.fill(0, s, s + 8);
    u32[s + 1] = BATCH_HEADER_BYTES;
    if (bitmap) {
      u32[s + 6] = bitmap.ptr;
      u32[s + 7] = bitmap.base;
      mode |= JOIN_PROBE_BITMAP;
    } else mode &= ~JOIN_PROBE_BITMAP;
    for (;;) {
      const st = this.x.joinProbe(this.region, batch.ptr, pd, kdp, mode, this.state, out.ptr, out.cap);
      if (st === STATUS_DONE) return;
      if (st !== STATUS_FULL) throw unexpected('joinProbe', st);
      out.full(this.k.raw.resultBytes() >>> 0);
    }
  }

  /** Emits build rows by matched bit (joinScan `mode`; `probeFields` NULL fields for the probe side). */
  scan(mode: number, probeFields: number, out: JoinOutput): void {
    this.k.memory.u32[this.state >>> 2] = 0;
    for (;;) {
      const st = this.x.joinScan(this.region, mode, probeFields, this.state, out.ptr, out.cap);
      if (st === STATUS_DONE) return;
      if (st !== STATUS_FULL) throw unexpected('joinScan', st);
      out.full(this.k.raw.resultBytes() >>> 0);
    }
  }

  /** Whether the table has a dense image (assembly/join.ts joinDense): for tests and stats. */
  get isDense(): boolean {
    return this.dense !== 0;
  }

  /** Bytes the dense image takes (0 without one). */
  get denseBytes(): number {
    return this.dense !== 0 ? this.denseSize : 0;
  }

  /**
   * After joinFinish: a dense image of the build rows (unique dense integer keys, fixed-width rows),
   * when `tryAlloc` gives the memory. It only serves inner-join probes; it is a copy, so nothing
   * else changes when it is refused.
   */
  private makeDense(): void {
    if (!this.tryAllocDense || this.dense !== 0 || this.denseRefused) return;
    const bytes = this.x.joinDenseBytes(this.region) >>> 0;
    if (bytes === 0) return;
    const p = this.tryAllocDense(bytes);
    if (p === 0) {
      this.denseRefused = true;
      return;
    }
    this.x.joinDense(this.region, p);
    this.dense = p;
    this.denseSize = bytes;
  }

  private dropDense(): void {
    if (this.dense === 0) return;
    this.release(this.dense);
    this.dense = 0;
  }

  /** Frees the table (not the build batches). Idempotent. */
  close(): void {
    this.dropDense();
    if (this.region !== 0) this.release(this.region);
    if (this.wideDescs !== 0) this.release(this.wideDescs);
    this.region = this.wideDescs = 0;
  }
}

/**
 * Routes the rows of a batch in managed memory to 2^bits outputs by the key hash with `seed` (top
 * bits of the mixed hash), as assembly/join.ts joinPartition. `outputs` gives each output's current
 * batch; `onFull(p, need)` must make room in output p (flush it or swap in a bigger buffer) and
 * return its new (ptr, cap).
 */
export function partitionForJoin(
  k: Kernels,
  schema: Schema,
  keys: readonly number[],
  batch: ManagedBatch,
  seed: number,
  bits: number,
  dropNullKeys: boolean,
  table: number,
  onFull: (p: number, need: number) => void,
  descs: number,
): void {
  const x = joinExports(k);
  const kd = descs + 4 * (1 + schema.types.length);
  let row = 0;
  let off = BATCH_HEADER_BYTES;
  for (;;) {
    const st = x.joinPartition(batch.ptr, descs, kd, seed >>> 0, bits, dropNullKeys ? 1 : 0, table, row, off);
    if (st === STATUS_DONE) return;
    if (st !== STATUS_FULL) throw unexpected('joinPartition', st);
    row = k.raw.resultRow() >>> 0;
    off = k.raw.resultOffset() >>> 0;
    onFull(k.raw.resultIndex() >>> 0, k.raw.resultBytes() >>> 0);
  }
}

/** Options of {@link hashJoin}. */
export interface HashJoinOptions {
  /** Capacity of each output batch (default SEGMENT_BYTES). */
  outputBytes?: number;
}

/**
 * Joins two inputs entirely in managed memory (the build side must fit the kernel budget): the
 * reference path of the operator, and the kernel-level entry point of the tests. Output rows follow
 * the probe input order, then the build side's own rows (outer / semi / anti) in build order.
 *
 * @example
 * const { schema, batches } = hashJoin(k, { type: 'inner', left, right, leftKeys: ['id'], rightKeys: ['id'] }, lb, rb);
 */
export function hashJoin(k: Kernels, spec: JoinSpec, left: readonly Uint8Array[], right: readonly Uint8Array[], opts: HashJoinOptions = {}): { schema: Schema; batches: Uint8Array[] } {
  const plan = planJoin(spec);
  const buildIn = plan.buildSide === 'left' ? left : right;
  const probeIn = plan.buildSide === 'left' ? right : left;
  const cap = Math.floor((opts.outputBytes ?? SEGMENT_BYTES) / 8) * 8;
  if (!(cap >= BATCH_HEADER_BYTES)) throw new RangeError(`outputBytes must be ≥ 16, got ${opts.outputBytes}`);
  const held: ManagedBatch[] = [];
  let table: JoinTable | undefined;
  let out: JoinOutput | undefined;
  try {
    let rows = 0;
    for (const b of buildIn) {
      const mb = k.copyIn(b, plan.build.schema);
      held.push(mb);
      rows += k.rowCount(mb);
    }
    table = new JoinTable(k, plan.build.schema, plan.build.keys, rows);
    for (const b of held) table.insert(b);
    out = new JoinOutput(k, plan.output.id, cap);
    for (const b of probeIn) {
      const mb = k.copyIn(b, plan.probe.schema);
      try {
        table.probe(plan.probe.schema, plan.probe.keys, mb, plan.probeMode, out);
      } finally {
        k.free(mb);
      }
    }
    if (plan.scanMode !== undefined) table.scan(plan.scanMode, plan.probe.schema.types.length, out);
    out.flush();
    return { schema: plan.output, batches: out.drain() };
  } finally {
    out?.dispose();
    table?.close();
    for (const b of held) k.free(b);
  }
}

function unexpected(kernel: string, status: number): SluiceError {
  return new SluiceError(`kernel ${kernel} returned unexpected status ${status}`, { domain: 'internal' });
}
