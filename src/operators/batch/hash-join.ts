// Owns the hybrid hash join operator: build a hash table over the smaller input in managed memory and
// stream the other through it; when the build side does not fit its budget, partition both inputs by
// key hash, keep as many build partitions in memory as fit, spill the rest (both sides) to the spill
// store and join the spilled pairs recursively, with a different hash seed per level. A partition
// that does not shrink when split again (one hot key) is joined block-nested-loop style: the build
// partition in chunks that fit, the probe partition streamed once per chunk, with a bitmap of matched
// probe rows (in the JS heap, 1 bit per row) so outer / semi / anti results stay exact.
//
// Memory (all from the kernel pool, counted against `budgetBytes` and the reservation if one is given):
//   output batch (outputBytes; with reuseOutput and ≥ 2 MiB of budget, 3 spares) + staging
//   (2^bits × STAGE_BYTES) + the input batch being loaded + in-memory build chunks (32 KiB segments,
//   rows packed) + their tables (~20 bytes per row) + for an inner join over unique integer keys, a
//   table's dense image (bindings/join.ts JoinTable: ~8 bytes per key value and payload field), taken
//   only when a quarter of the budget stays free after it.
// Inputs marked `trusted` (made by Sluice) skip row validation on the way in; spilled batches read
// back are always validated.
// Cost: in memory, one copy of each build row and one pass over each probe row; spilled, each
// recursion level writes and reads its spilled rows once more.

import { JOIN_EMIT_PROBE_MATCHED, JOIN_EMIT_PROBE_UNMATCHED, SEGMENT_BYTES } from '../../../bindings/abi.generated.ts';
import { JoinOutput, JoinTable, partitionForJoin, planJoin, type JoinPlan, type JoinType } from '../../../bindings/join.ts';
import { keyDescriptor, schemaDescriptor, type Kernels, type ManagedBatch } from '../../../bindings/kernels.ts';
import { MemoryBudgetError } from '../../core/errors.ts';
import type { Schema } from '../../core/schema.ts';
import type { SpillFile, SpillStore, SpillWriter } from '../../platform/types.ts';
import type { MemoryReservation } from '../../runtime/memory-manager.ts';

/** One input of a join: its batches (binary rows of `schema`), key fields and an optional size estimate. */
export interface JoinInput {
  schema: Schema;
  keys: readonly (number | string)[];
  batches: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Estimated bytes of the input; the smaller side builds (when both sides give one). */
  estimatedBytes?: number;
  /**
   * The batches were made by Sluice itself (a kernel, the batch writer, an operator) or checked once
   * already, so they are not validated again on the way in (spilled batches read back always are).
   * A malformed batch passed as trusted gives wrong rows or a WebAssembly trap, not a CorruptBatchError.
   */
  trusted?: boolean;
}

/** Options of {@link HybridHashJoin}. */
export interface HybridHashJoinOptions {
  kernels: Kernels;
  /** Where spilled partitions go; the operator deletes every file it makes (the caller closes the store). */
  spill: SpillStore;
  type: JoinType;
  left: JoinInput;
  right: JoinInput;
  /** Force the build side (default: the smaller estimate, else `right`). */
  buildSide?: 'left' | 'right';
  /** Managed memory the operator may hold (default: what the kernel budget has free). At least 256 KiB. */
  budgetBytes?: number;
  /** A job-level reservation to reserve against too (refusal = spill). */
  reservation?: MemoryReservation;
  /** Capacity of output batches (default SEGMENT_BYTES). */
  outputBytes?: number;
  /** Most partition bits per level (default 5: up to 32 partitions). */
  maxPartitionBits?: number;
  /**
   * Yield views into the operator's output buffers instead of copies: each batch is valid until the
   * next one is asked for, and only while nothing allocates in the same kernel instance (copy it with
   * `slice()` to keep it, or before handing it to another operator of this instance). Saves copying
   * every output byte out of managed memory; costs 3 more output buffers of budget, taken only when
   * the budget is at least 2 MiB (below that, and whenever a kernel call completes more batches than
   * there are spare buffers, batches are copied as without this option).
   */
  reuseOutput?: boolean;
}

/** What a run did (for tests and explain output). */
export interface HybridHashJoinStats {
  /** Partitions spilled, over all levels. */
  spilledPartitions: number;
  /** Deepest recursion level reached (0: no spilling). */
  maxLevel: number;
  /** Build chunks joined by the block-nested-loop fallback. */
  fallbackChunks: number;
  /** Batches written to the spill store. */
  spilledBatches: number;
}

const STAGE_BYTES = 4096;
const MIN_BUDGET = 8 * SEGMENT_BYTES;
const MAX_LEVEL = 6;
const LEVEL_SEED = 0x9e3779b9;
/** reuseOutput: spare output buffers, and the least budget (64 segments) for which they are taken. */
const REUSE_BUFFERS = 3;
const REUSE_MIN_BUDGET = 64 * SEGMENT_BYTES;

/** Budget a join table's dense image leaves free at least (input and output batches). */
const DENSE_HEADROOM = 32 * SEGMENT_BYTES;

type Ptr = number;

/** Bookkeeping of every allocation the operator holds against its budget. */
class Budget {
  private used = 0;
  private readonly held = new Map<Ptr, number>();
  constructor(
    private readonly k: Kernels,
    readonly bytes: number,
    private readonly reservation: MemoryReservation | undefined,
  ) {}
  private static size(bytes: number): number {
    return Math.max(1, Math.ceil(bytes / SEGMENT_BYTES)) * SEGMENT_BYTES;
  }
  /** Allocates `bytes` if that plus `headroom` fits; 0 if not. */
  tryAlloc(bytes: number, headroom = 0): Ptr {
    const sz = Budget.size(bytes);
    if (this.used + sz + headroom > this.bytes) return 0;
    if (this.k.memory.bytesInUse + sz > this.k.memory.budgetBytes) return 0;
    if (this.reservation && !this.reservation.tryReserve(sz)) return 0;
    const p = this.k.memory.alloc(sz);
    this.held.set(p, sz);
    this.used += sz;
    return p;
  }
  alloc(bytes: number, what: string): Ptr {
    const p = this.tryAlloc(bytes);
    if (p === 0) {
      throw new MemoryBudgetError(`hash join: ${what} needs ${bytes} bytes of managed memory; ${this.used} of the budget of ${this.bytes} bytes are in use`);
    }
    return p;
  }
  free(p: Ptr): void {
    const sz = this.held.get(p);
    if (sz === undefined) return;
    this.held.delete(p);
    this.used -= sz;
    this.reservation?.release(sz);
    this.k.memory.free(p);
  }
  freeAll(): void {
    for (const p of [...this.held.keys()]) this.free(p);
  }
  get inUse(): number {
    return this.used;
  }
}

/** Build rows packed into segment-sized batches in managed memory. */
class Chunks {
  readonly list: { ptr: Ptr; cap: number }[] = [];
  rows = 0;
  bytes = 0;
  constructor(
    private readonly k: Kernels,
    private readonly budget: Budget,
    private readonly schemaId: number,
  ) {}
  /** Appends the rows of the batch at `src` if memory allows, keeping `headroom(rowsAfter)` free. */
  append(src: Ptr, headroom: (rows: number) => number): boolean {
    const u32 = this.k.memory.u32;
    const len = u32[(src >>> 2) + 1]!;
    const n = u32[(src >>> 2) + 2]!;
    if (n === 0) return true;
    const body = len - 16;
    let last = this.list[this.list.length - 1];
    if (last === undefined || u32[(last.ptr >>> 2) + 1]! + body > last.cap) {
      const cap = Math.max(SEGMENT_BYTES, Math.ceil(len / SEGMENT_BYTES) * SEGMENT_BYTES);
      const p = this.budget.tryAlloc(cap, headroom(this.rows + n));
      if (p === 0) return false;
      this.k.raw.initBatch(p, this.schemaId);
      last = { ptr: p, cap };
      this.list.push(last);
    }
    const m = this.k.memory;
    const at = last.ptr + m.u32[(last.ptr >>> 2) + 1]!;
    m.u8.copyWithin(at, src + 16, src + len);
    m.u32[(last.ptr >>> 2) + 1]! += body;
    m.u32[(last.ptr >>> 2) + 2]! += n;
    this.rows += n;
    this.bytes += body;
    return true;
  }
  /** Copies of the chunks (for spilling) and frees them. */
  takeOut(): Uint8Array[] {
    const m = this.k.memory;
    const out = this.list.map((c) => m.u8.slice(c.ptr, c.ptr + m.u32[(c.ptr >>> 2) + 1]!));
    this.free();
    return out;
  }
  batches(): ManagedBatch[] {
    return this.list.map((c) => ({ ptr: c.ptr, byteLength: c.cap }));
  }
  free(): void {
    for (const c of this.list) this.budget.free(c.ptr);
    this.list.length = 0;
    this.rows = 0;
    this.bytes = 0;
  }
}

/** 2^bits partition output batches carved from one allocation, as the join partitioner's table. */
class Stage {
  private readonly region: Ptr;
  readonly table: Ptr;
  readonly descs: Ptr;
  private readonly own: Ptr[];
  schemaId = 0;
  constructor(
    private readonly k: Kernels,
    private readonly budget: Budget,
    readonly n: number,
    private readonly descBytes: number,
  ) {
    this.region = budget.alloc(n * STAGE_BYTES + 8 * n + descBytes, 'partition staging');
    this.table = this.region + n * STAGE_BYTES;
    this.descs = this.table + 8 * n;
    this.own = new Array<Ptr>(n).fill(0);
  }
  /** Starts staging rows of `schema` (keys `keys`): empty batches, descriptors. */
  begin(schema: Schema, keys: readonly number[]): void {
    this.schemaId = schema.id;
    const sd = schemaDescriptor(schema);
    const kd = keyDescriptor(schema, keys);
    if (4 * (sd.length + kd.length) > this.descBytes) throw new MemoryBudgetError(`hash join: schema of ${schema.types.length} fields is too wide`);
    this.k.memory.u32.set(sd, this.descs >>> 2);
    this.k.memory.u32.set(kd, (this.descs >>> 2) + sd.length);
    for (let p = 0; p < this.n; p++) this.reset(p);
  }
  ptr(p: number): Ptr {
    return this.k.memory.u32[(this.table >>> 2) + 2 * p]!;
  }
  private set(p: number, ptr: Ptr, cap: number): void {
    const u32 = this.k.memory.u32;
    u32[(this.table >>> 2) + 2 * p] = ptr;
    u32[(this.table >>> 2) + 2 * p + 1] = cap;
    this.k.raw.initBatch(ptr, this.schemaId);
  }
  private reset(p: number): void {
    if (this.own[p] !== 0) this.budget.free(this.own[p]!);
    this.own[p] = 0;
    this.set(p, this.region + p * STAGE_BYTES, STAGE_BYTES);
  }
  /** STATUS_FULL on output p: hand a non-empty batch to `take`, or give a large row its own buffer. */
  full(p: number, need: number, take: (p: number, ptr: Ptr) => void): void {
    const ptr = this.ptr(p);
    if (this.k.memory.u32[(ptr >>> 2) + 2]! > 0) {
      take(p, ptr);
      this.reset(p);
    } else {
      const own = this.budget.alloc(16 + need, `a row of ${need} bytes`);
      this.own[p] = own;
      this.set(p, own, 16 + need);
    }
  }
  /** Hands every non-empty output to `take` and resets them all. */
  flushAll(take: (p: number, ptr: Ptr) => void): void {
    for (let p = 0; p < this.n; p++) {
      const ptr = this.ptr(p);
      if (this.k.memory.u32[(ptr >>> 2) + 2]! > 0) take(p, ptr);
      this.reset(p);
    }
  }
  dispose(): void {
    for (let p = 0; p < this.n; p++) if (this.own[p] !== 0) this.budget.free(this.own[p]!);
    this.budget.free(this.region);
  }
}

interface Part {
  chunks: Chunks;
  spilled: boolean;
  pending: Uint8Array[];
  buildWriter?: SpillWriter;
  probeWriter?: SpillWriter;
  probePending: Uint8Array[];
  buildBytes: number;
}

type Source = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

async function* concat(...sources: Source[]): AsyncGenerator<Uint8Array> {
  for (const s of sources) for await (const b of s) yield b;
}

/**
 * A hybrid hash join of two bounded inputs of binary batches, as an async iterable of output batches
 * (schema {@link HybridHashJoin.schema}: left fields then right fields, nullable where a side may be
 * missing; left fields only for semi / anti). Output order is unspecified.
 *
 * @example
 * await using store = await platform.spill.createSpillStore();
 * const join = new HybridHashJoin({ kernels: k, spill: store, type: 'left',
 *   left: { schema: orders, keys: ['user'], batches: orderBatches },
 *   right: { schema: users, keys: ['id'], batches: userBatches, estimatedBytes: 1 << 20 },
 *   budgetBytes: 4 << 20 });
 * for await (const batch of join) sink(batch);
 */
export class HybridHashJoin implements AsyncIterable<Uint8Array> {
  readonly plan: JoinPlan;
  readonly stats: HybridHashJoinStats = { spilledPartitions: 0, maxLevel: 0, fallbackChunks: 0, spilledBatches: 0 };
  private readonly k: Kernels;
  private readonly budget: Budget;
  private readonly files = new Set<SpillWriter | SpillFile>();
  private gen: AsyncGenerator<Uint8Array[]> | undefined;
  private out: JoinOutput | undefined;
  private stage: Stage | undefined;
  private readonly maxBits: number;
  private readonly outputBytes: number;

  constructor(private readonly opts: HybridHashJoinOptions) {
    const { left, right } = opts;
    const est = left.estimatedBytes !== undefined && right.estimatedBytes !== undefined;
    const buildSide = opts.buildSide ?? (est && left.estimatedBytes! < right.estimatedBytes! ? 'left' : 'right');
    this.plan = planJoin({ type: opts.type, left: left.schema, right: right.schema, leftKeys: left.keys, rightKeys: right.keys, buildSide });
    this.k = opts.kernels;
    const mem = this.k.memory;
    const budget = opts.budgetBytes ?? mem.budgetBytes - mem.bytesInUse;
    if (!(budget >= MIN_BUDGET)) throw new MemoryBudgetError(`hash join needs a managed-memory budget of at least ${MIN_BUDGET} bytes, got ${budget}`);
    this.budget = new Budget(this.k, budget, opts.reservation);
    this.maxBits = Math.max(1, Math.min(8, opts.maxPartitionBits ?? 5));
    this.outputBytes = Math.max(16, Math.floor((opts.outputBytes ?? SEGMENT_BYTES) / 8) * 8);
  }

  /** The output schema. */
  get schema(): Schema {
    return this.plan.output;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.gen) throw new Error('HybridHashJoin can be iterated once');
    const gen = (this.gen = this.run());
    // the operator completes output batches a kernel call's worth (a group) at a time; a group's
    // batches are handed out from here, without stepping the generators again per batch
    let group: Uint8Array[] = [];
    let i = 0;
    const step = (r: IteratorResult<Uint8Array[]>): IteratorResult<Uint8Array> | Promise<IteratorResult<Uint8Array>> => {
      if (r.done) return { done: true, value: undefined };
      group = r.value;
      i = 0;
      return i < group.length ? { done: false, value: group[i++]! } : gen.next().then(step);
    };
    return {
      next: () => (i < group.length ? Promise.resolve({ done: false, value: group[i++]! }) : gen.next().then(step)),
      return: async () => {
        group = [];
        await gen.return(undefined);
        return { done: true, value: undefined };
      },
    };
  }

  /** Stops the join, frees its memory and deletes its spill files (idempotent). */
  async close(): Promise<void> {
    if (this.gen) await this.gen.return(undefined);
    await this.cleanup();
  }

  private async cleanup(): Promise<void> {
    this.out?.dispose();
    this.out = undefined;
    this.stage?.dispose();
    this.stage = undefined;
    this.budget.freeAll();
    const files = [...this.files];
    this.files.clear();
    await Promise.all(files.map((f) => ('finish' in f ? f.abort() : f.delete()).catch(() => {})));
  }

  private async *run(): AsyncGenerator<Uint8Array[]> {
    try {
      const { plan } = this;
      const build = plan.buildSide === 'left' ? this.opts.left : this.opts.right;
      const probe = plan.buildSide === 'left' ? this.opts.right : this.opts.left;
      this.out = new JoinOutput(
        this.k,
        plan.output.id,
        this.outputBytes,
        (b) => this.budget.alloc(b, 'the output batch'),
        (p) => this.budget.free(p),
        // spare output buffers, when the budget is large enough that 3 more segments do not matter
        { reuseBuffers: this.opts.reuseOutput && this.budget.bytes >= REUSE_MIN_BUDGET ? REUSE_BUFFERS : 0 },
      );
      const bits = Math.max(1, Math.min(this.maxBits, Math.floor(Math.log2(this.budget.bytes / 8 / STAGE_BYTES))));
      const descBytes = 8 * (4 + Math.max(build.schema.types.length, probe.schema.types.length) + 2 * plan.build.keys.length);
      this.stage = new Stage(this.k, this.budget, 1 << bits, descBytes);
      yield* this.pass(build.batches, probe.batches, 0, build.trusted === true, probe.trusted === true);
    } finally {
      await this.cleanup();
    }
  }

  /**
   * Copies a batch into managed memory and, unless `trusted`, validates it (freed by the caller). With
   * `into`, the copy goes to that buffer when it is large enough (`into.cap` bytes; not freed here).
   */
  private load(bytes: Uint8Array, schema: Schema, trusted = false, into?: { ptr: Ptr; cap: number }): ManagedBatch {
    const reuse = into !== undefined && bytes.length <= into.cap;
    const ptr = reuse ? into.ptr : this.budget.alloc(bytes.length, 'an input batch');
    this.k.memory.u8.set(bytes, ptr);
    const b = { ptr, byteLength: bytes.length };
    // trusted: the header is still checked (four words); a bad one gets the full validation's error
    if (trusted && this.k.headerMatches(b, schema)) return b;
    try {
      this.k.validate(schema, b);
    } catch (e) {
      if (!reuse) this.budget.free(ptr);
      throw e;
    }
    return b;
  }

  private tableBytes(rows: number): number {
    return JoinTable.bytesFor(this.plan.build.schema, this.plan.build.keys.length, rows) + SEGMENT_BYTES;
  }

  private newTable(chunks: Chunks): JoinTable {
    const t = new JoinTable(
      this.k,
      this.plan.build.schema,
      this.plan.build.keys,
      chunks.rows,
      (b) => this.budget.alloc(b, 'a join table'),
      (p) => this.budget.free(p),
      // a dense image of the build rows (unique integer keys) when a quarter of the budget stays free
      (b) => this.budget.tryAlloc(b, Math.max(this.budget.bytes / 4, DENSE_HEADROOM)),
    );
    for (const b of chunks.batches()) t.insert(b);
    return t;
  }

  /** The output batches completed so far as one group, in a list of none or one (`for (const g of this.groups()) yield g`). */
  private groups(): Uint8Array[][] {
    const group = [...this.out!.take()];
    return group.length > 0 ? [group] : [];
  }

  /** Probes every probe batch against one table (no partitioning); then the build side's own rows. */
  private async *joinInMemory(chunks: Chunks, probe: Source, probeTrusted: boolean): AsyncGenerator<Uint8Array[]> {
    const { plan } = this;
    const table = this.newTable(chunks);
    // one buffer for the probe batches (a larger batch gets one of its own)
    const into = { ptr: this.budget.alloc(SEGMENT_BYTES, 'an input batch'), cap: SEGMENT_BYTES };
    const probeOne = (bytes: Uint8Array): Uint8Array[] | undefined => {
      const mb = this.load(bytes, plan.probe.schema, probeTrusted, into);
      try {
        table.probe(plan.probe.schema, plan.probe.keys, mb, plan.probeMode, this.out!);
      } finally {
        if (mb.ptr !== into.ptr) this.budget.free(mb.ptr);
      }
      return this.groups()[0];
    };
    try {
      // batches held in memory are taken synchronously: a probe batch that completes no output batch
      // costs no promise round trip
      if (Symbol.iterator in probe) {
        for (const bytes of probe) {
          const g = probeOne(bytes);
          if (g) yield g;
        }
      } else {
        for await (const bytes of probe) {
          const g = probeOne(bytes);
          if (g) yield g;
        }
      }
      if (plan.scanMode !== undefined) table.scan(plan.scanMode, plan.probe.schema.types.length, this.out!);
      this.out!.flush();
      for (const g of this.groups()) yield g;
    } finally {
      this.budget.free(into.ptr);
      table.close();
    }
  }

  private async spillWrite(w: SpillWriter, batches: Uint8Array[]): Promise<void> {
    for (const b of batches.splice(0)) {
      await w.append(b);
      this.stats.spilledBatches++;
    }
  }

  private async create(name: string): Promise<SpillWriter> {
    const w = await this.opts.spill.create(name);
    this.files.add(w);
    return w;
  }

  private async finish(w: SpillWriter | undefined): Promise<SpillFile | undefined> {
    if (!w) return undefined;
    const f = await w.finish();
    this.files.delete(w);
    this.files.add(f);
    return f;
  }

  private async drop(f: SpillFile | undefined): Promise<void> {
    if (!f) return;
    this.files.delete(f);
    await f.delete();
  }

  /** One level: in memory if the build side fits, else partition, spill, recurse. */
  private async *pass(build: Source, probe: Source, level: number, buildTrusted = false, probeTrusted = false): AsyncGenerator<Uint8Array[]> {
    const { plan } = this;
    this.stats.maxLevel = Math.max(this.stats.maxLevel, level);
    const chunks = new Chunks(this.k, this.budget, plan.build.schema.id);
    const it = concat(build);
    let overflow: Uint8Array | undefined;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        const mb = this.load(r.value, plan.build.schema, buildTrusted);
        let ok: boolean;
        try {
          ok = chunks.append(mb.ptr, (rows) => this.tableBytes(rows));
        } finally {
          this.budget.free(mb.ptr);
        }
        if (!ok) {
          overflow = r.value;
          break;
        }
      }
      if (overflow === undefined) {
        yield* this.joinInMemory(chunks, probe, probeTrusted);
        return;
      }
      // does not fit: what is in memory goes to a raw spill file, then everything is partitioned
      const raw = await this.create(`join-raw-${level}`);
      await this.spillWrite(raw, chunks.takeOut());
      const rawFile = await this.finish(raw);
      const rest: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => it };
      try {
        yield* this.partitioned(concat(rawFile!.read(), [overflow], rest), probe, level, probeTrusted);
      } finally {
        await this.drop(rawFile);
      }
    } finally {
      chunks.free();
      await it.return(undefined);
    }
  }

  private async *partitioned(build: Source, probe: Source, level: number, probeTrusted = false): AsyncGenerator<Uint8Array[]> {
    const { plan } = this;
    const stage = this.stage!;
    const P = stage.n;
    const bits = Math.log2(P);
    const seed = (Math.imul(LEVEL_SEED, level + 1) ^ 0x2a) >>> 0;
    const parts: Part[] = Array.from({ length: P }, () => ({
      chunks: new Chunks(this.k, this.budget, plan.build.schema.id),
      spilled: false,
      pending: [],
      probePending: [],
      buildBytes: 0,
    }));
    const tables: (JoinTable | undefined)[] = new Array(P).fill(undefined);
    let emptyTable: JoinTable | undefined; // shared by in-memory partitions without build rows
    const inMemRows = () => parts.reduce((s, q) => s + (q.spilled ? 0 : q.chunks.rows), 0);
    const spillPart = (q: Part) => {
      q.pending.push(...q.chunks.takeOut());
      q.spilled = true;
      this.stats.spilledPartitions++;
    };
    const victim = () => parts.filter((q) => !q.spilled).sort((a, b) => b.chunks.bytes - a.chunks.bytes)[0];
    const takeBuild = (p: number, ptr: Ptr) => {
      const q = parts[p]!;
      const len = this.k.memory.u32[(ptr >>> 2) + 1]!;
      q.buildBytes += len - 16;
      for (;;) {
        if (q.spilled) {
          q.pending.push(this.k.memory.u8.slice(ptr, ptr + len));
          return;
        }
        if (q.chunks.append(ptr, (rows) => this.tableBytes(inMemRows() + rows - q.chunks.rows))) return;
        spillPart(victim()!);
      }
    };
    const flushPending = async () => {
      for (const [i, q] of parts.entries()) {
        if (q.pending.length > 0) await this.spillWrite((q.buildWriter ??= await this.create(`join-b${level}-${i}`)), q.pending);
        if (q.probePending.length > 0) await this.spillWrite((q.probeWriter ??= await this.create(`join-p${level}-${i}`)), q.probePending);
      }
    };
    const buildFiles: (SpillFile | undefined)[] = [];
    const probeFiles: (SpillFile | undefined)[] = [];
    try {
      // build side
      stage.begin(plan.build.schema, plan.build.keys);
      for await (const bytes of build) {
        const mb = this.load(bytes, plan.build.schema);
        try {
          partitionForJoin(this.k, plan.build.schema, plan.build.keys, mb, seed, bits, plan.build.dropNullKeys, stage.table, (p, need) => stage.full(p, need, takeBuild), stage.descs);
        } finally {
          this.budget.free(mb.ptr);
        }
        await flushPending();
      }
      stage.flushAll(takeBuild);
      // tables for the partitions kept in memory; spill more while they do not fit
      for (;;) {
        const need = parts.reduce((s, q) => s + (q.spilled || q.chunks.rows === 0 ? 0 : this.tableBytes(q.chunks.rows)), this.tableBytes(0));
        const v = victim();
        if (this.budget.inUse + need <= this.budget.bytes || v === undefined) break;
        spillPart(v);
      }
      await flushPending();
      parts.forEach((q, p) => {
        if (!q.spilled && q.chunks.rows > 0) tables[p] = this.newTable(q.chunks);
      });
      // probe side
      stage.begin(plan.probe.schema, plan.probe.keys);
      const takeProbe = (p: number, ptr: Ptr) => {
        const q = parts[p]!;
        if (q.spilled) {
          q.probePending.push(this.k.memory.u8.slice(ptr, ptr + this.k.memory.u32[(ptr >>> 2) + 1]!));
        } else {
          const t = tables[p] ?? (emptyTable ??= this.newTable(q.chunks));
          t.probe(plan.probe.schema, plan.probe.keys, { ptr, byteLength: STAGE_BYTES }, plan.probeMode, this.out!);
        }
      };
      for await (const bytes of probe) {
        const mb = this.load(bytes, plan.probe.schema, probeTrusted);
        try {
          partitionForJoin(this.k, plan.probe.schema, plan.probe.keys, mb, seed, bits, plan.probe.dropNullKeys, stage.table, (p, need) => stage.full(p, need, takeProbe), stage.descs);
        } finally {
          this.budget.free(mb.ptr);
        }
        for (const g of this.groups()) yield g;
        await flushPending();
      }
      stage.flushAll(takeProbe);
      await flushPending();
      if (plan.scanMode !== undefined) for (const t of tables) t?.scan(plan.scanMode, plan.probe.schema.types.length, this.out!);
      this.out!.flush();
      for (const g of this.groups()) yield g;
      emptyTable?.close();
      emptyTable = undefined;
      for (const [p, t] of tables.entries()) {
        t?.close();
        tables[p] = undefined;
        parts[p]!.chunks.free();
      }
      for (const q of parts) {
        buildFiles.push(await this.finish(q.buildWriter));
        probeFiles.push(await this.finish(q.probeWriter));
        q.buildWriter = q.probeWriter = undefined;
      }
      // spilled pairs, one at a time
      const total = parts.reduce((s, q) => s + q.buildBytes, 0);
      const probeAlone = (plan.probeMode & JOIN_EMIT_PROBE_UNMATCHED) !== 0;
      const buildAlone = plan.scanMode !== undefined;
      for (let p = 0; p < P; p++) {
        const q = parts[p]!;
        if (!q.spilled) continue;
        const bf = buildFiles[p];
        const pf = probeFiles[p];
        const hasB = bf !== undefined && bf.batchCount > 0;
        const hasP = pf !== undefined && pf.batchCount > 0;
        if ((hasB && hasP) || (hasB && buildAlone) || (hasP && probeAlone)) {
          const empty: Uint8Array[] = [];
          const bSrc = hasB ? bf! : undefined;
          const pSrc = hasP ? pf! : undefined;
          if (q.buildBytes >= 0.9 * total || level + 1 > MAX_LEVEL) {
            yield* this.nestedLoop(bSrc, pSrc);
          } else {
            yield* this.pass(bSrc ? bSrc.read() : empty, pSrc ? pSrc.read() : empty, level + 1);
          }
        }
        await this.drop(bf);
        await this.drop(pf);
        buildFiles[p] = probeFiles[p] = undefined;
      }
    } finally {
      emptyTable?.close();
      for (const t of tables) t?.close();
      for (const q of parts) q.chunks.free();
      for (const f of [...buildFiles, ...probeFiles]) await this.drop(f);
      for (const q of parts) {
        for (const w of [q.buildWriter, q.probeWriter]) {
          if (w) {
            this.files.delete(w);
            await w.abort();
          }
        }
      }
    }
  }

  /**
   * Block-nested-loop fallback for a partition that does not shrink: build chunks that fit, the probe
   * partition streamed once per chunk; a JS-heap bitmap of matched probe rows carries "matched" across
   * chunks, and the probe rows' own output (outer / semi / anti) comes with the last chunk.
   */
  private async *nestedLoop(build: SpillFile | undefined, probe: SpillFile | undefined): AsyncGenerator<Uint8Array[]> {
    const { plan } = this;
    const useBitmap = (plan.probeMode & (JOIN_EMIT_PROBE_MATCHED | JOIN_EMIT_PROBE_UNMATCHED)) !== 0;
    let bitmap = new Uint8Array(1024);
    const reader = build?.read();
    let next = reader ? await reader.next() : undefined;
    let first = true;
    try {
      while (first || next !== undefined) {
        first = false;
        const chunks = new Chunks(this.k, this.budget, plan.build.schema.id);
        let table: JoinTable | undefined;
        try {
          while (next !== undefined) {
            const mb = this.load(next, plan.build.schema);
            let ok: boolean;
            try {
              ok = chunks.append(mb.ptr, (rows) => this.tableBytes(rows));
            } finally {
              this.budget.free(mb.ptr);
            }
            if (!ok) {
              if (chunks.rows === 0) throw new MemoryBudgetError(`hash join: budget of ${this.budget.bytes} bytes cannot hold one build batch and its table`);
              break;
            }
            next = await reader!.next();
          }
          this.stats.fallbackChunks++;
          const last = next === undefined;
          table = this.newTable(chunks);
          let mode = plan.probeMode;
          if (!last) mode &= ~(JOIN_EMIT_PROBE_MATCHED | JOIN_EMIT_PROBE_UNMATCHED);
          if (probe) {
            let global = 0;
            for await (const bytes of probe.read()) {
              const mb = this.load(bytes, plan.probe.schema);
              try {
                const n = this.k.rowCount(mb);
                if (useBitmap) {
                  const lo = global >>> 3;
                  const len = ((global & 7) + n + 7) >>> 3;
                  if (lo + len > bitmap.length) {
                    const b2 = new Uint8Array(Math.max(bitmap.length * 2, lo + len));
                    b2.set(bitmap);
                    bitmap = b2;
                  }
                  const slot = this.budget.alloc(len + 8, 'the probe bitmap');
                  try {
                    this.k.memory.u8.set(bitmap.subarray(lo, lo + len), slot);
                    table.probe(plan.probe.schema, plan.probe.keys, mb, mode, this.out!, { ptr: slot, base: global & 7 });
                    bitmap.set(this.k.memory.u8.subarray(slot, slot + len), lo);
                  } finally {
                    this.budget.free(slot);
                  }
                } else {
                  table.probe(plan.probe.schema, plan.probe.keys, mb, mode, this.out!);
                }
                global += n;
              } finally {
                this.budget.free(mb.ptr);
              }
              for (const g of this.groups()) yield g;
            }
          }
          if (plan.scanMode !== undefined) table.scan(plan.scanMode, plan.probe.schema.types.length, this.out!);
          this.out!.flush();
          for (const g of this.groups()) yield g;
        } finally {
          table?.close();
          chunks.free();
        }
      }
    } finally {
      await reader?.close();
    }
  }
}
