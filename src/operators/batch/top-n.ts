// Owns the top-n operator of batch jobs (`ORDER BY … LIMIT n OFFSET m`): the first `limit` rows after
// `offset` of an input of any size by a sort spec (ExternalSorter's), in bounded memory.
//
// Input batches are packed into segment chunks in managed memory, as a sort run is. When the next
// batch would not fit, the rows held are COMPACTED: the sort kernel's index (normalized-key prefix +
// row address, stable) is built over the best rows so far followed by the new ones, and only its
// first `offset + limit` entries are gathered (gatherSorted) into fresh chunks; everything else is
// dropped without being copied. At the end one more index over what is held gives the output,
// gathered from entry `offset`. Since the best rows always precede the newer rows in the index and the
// sort is stable, the result is exactly rows [offset, offset + limit) of the stable sort of the input
// (ties keep their input order) — what ExternalSorter followed by skip/take gives.
//
// If `offset + limit` rows take more than half of the budget after a compaction (compactions would
// then come too often to pay), or a compaction cannot get the memory it needs, the operator falls back
// to an ExternalSorter over the same budget (the rows held so far first, in their order, so stability
// is kept), and takes rows [offset, offset + limit) of its output, closing it early.
//
// Memory (whole 32 KiB segments): held chunks + best chunks + at compaction the sort index (32 bytes
// per row held, with the descriptors after it) + the new best chunks. At least 4 segments.
// Cost: one copy of each row into managed memory and its index entry (radix sort on the prefix) per
// compaction it takes part in; rows that make the cut are copied once per compaction they survive
// (a compaction happens each time the free memory fills, so a small `limit` costs O(n) overall).

import { BATCH_HEADER_BYTES, BATCH_MAGIC, SEGMENT_BYTES, STATUS_DONE, STATUS_FULL } from '../../../bindings/abi.generated.ts';
import { keyDescriptor, schemaDescriptor, type KeyRef, type Kernels, type ManagedBatch } from '../../../bindings/kernels.ts';
import { CorruptBatchError, JobDefinitionError, MemoryBudgetError, SluiceError } from '../../core/errors.ts';
import type { Schema } from '../../core/schema.ts';
import type { SpillStore, SpillStoreFactory } from '../../platform/types.ts';
import { formatBytes, type MemoryReservation } from '../../runtime/memory-manager.ts';
import { ExternalSorter, SORT_INDEX_BYTES_PER_ROW, type ExternalSortStats, type SegmentBudget, segmentBudget } from './external-sort.ts';

/** Options of {@link TopN}: those of ExternalSorter plus the limit and offset. */
export interface TopNOptions {
  kernels: Kernels;
  schema: Schema;
  /** Sort key: fields by index or name, each optionally `desc` / `nullsFirst` (as ExternalSorter). */
  keys: readonly KeyRef[];
  /** Rows to return (≥ 0). */
  limit: number;
  /** Rows to skip first (≥ 0, default 0). */
  offset?: number;
  /** A subtask's MemoryReservation or a byte count; at least 4 segments (128 KiB). */
  budget: MemoryReservation | number;
  /** Where the fallback sort spills (a store: the caller closes it; a factory: closed when done). */
  spill: SpillStore | SpillStoreFactory;
  /** Capacity of output batches in bytes; default one segment (32 KiB). */
  outputBytes?: number;
  /** Operator name for errors (default `TopN`). */
  operator?: string;
  /** Closes the operator (freeing memory, deleting spill files) when aborted. */
  signal?: AbortSignal;
  /**
   * The input batches were made by Sluice itself (the batch writer, a kernel, an operator) or checked
   * once already: {@link TopN.add} checks their header (magic, length, schema id), not every row; the
   * fallback sort is told the same. A malformed batch passed as trusted gives wrong output or a
   * WebAssembly trap, not a CorruptBatchError.
   */
  trusted?: boolean;
}

/** What a top-n did, for tests, metrics and `explain()`. */
export interface TopNStats {
  /** Rows added. */
  rows: number;
  /** Compactions (sort + keep the best `offset + limit`), the final one included. */
  compactions: number;
  /** Whether it fell back to an external sort. */
  fellBack: boolean;
  /** The fallback sort's stats, if it ran. */
  sort: ExternalSortStats | undefined;
  /** Most managed-memory bytes held at once by the top-n itself (the fallback sort's own peak is in `sort`). */
  peakBytes: number;
}

const segs = (bytes: number) => Math.max(1, Math.ceil(bytes / SEGMENT_BYTES));

/** Rows [from, to) of a batch (bytes at offset 0 of their own buffer) as a batch of their own. */
function sliceRows(b: Uint8Array, from: number, to: number): Uint8Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let off = BATCH_HEADER_BYTES;
  for (let i = 0; i < from; i++) off += dv.getUint32(off, true);
  const start = off;
  for (let i = from; i < to; i++) off += dv.getUint32(off, true);
  const out = new Uint8Array(BATCH_HEADER_BYTES + off - start);
  out.set(b.subarray(0, BATCH_HEADER_BYTES));
  out.set(b.subarray(start, off), BATCH_HEADER_BYTES);
  const odv = new DataView(out.buffer);
  odv.setUint32(4, out.length, true);
  odv.setUint32(8, to - from, true);
  return out;
}

/** Signals a compaction that could not get its memory (the caller falls back). */
const NO_MEMORY = Symbol('no memory');

/**
 * The first `limit` rows after `offset` of its input by a sort key, in bounded memory: feed batches
 * with {@link add} (or hand an iterable to {@link topN}), then iterate {@link sorted}. Ties keep their
 * input order (the result is that of a stable sort). Used once; {@link close} (idempotent) frees its
 * memory and deletes any spill file at any point.
 *
 * Cost: O(n) copies plus a radix sort of each batch's index entries per compaction; memory ≈
 * 2 × (offset + limit) rows + the batches between compactions. Falls back to an external sort (and
 * its cost) when offset + limit rows take more than half the budget.
 *
 * @example
 * const top = new TopN({ kernels: k, schema, keys: [{ field: 'price', desc: true }, 'id'],
 *   limit: 10, offset: 20, budget: 4 << 20, spill: platform.spill });
 * try {
 *   for await (const batch of input) await top.add(batch);
 *   for await (const batch of top.sorted()) sink(batch);   // rows 21..30 by price desc, id
 * } finally {
 *   await top.close();
 * }
 */
export class TopN {
  readonly schema: Schema;
  readonly keys: readonly KeyRef[];
  readonly operator: string;
  readonly limit: number;
  readonly offset: number;
  private readonly k: Kernels;
  private readonly opts: TopNOptions;
  private readonly budget: SegmentBudget;
  private readonly outputBytes: number;
  private readonly keep: number;
  private readonly sd: Uint32Array;
  private readonly kd: Uint32Array;
  // the rows that arrived since the last compaction, packed into chunks
  private chunks: { ptr: number; segs: number; top: number }[] = [];
  private held: ManagedBatch[] = [];
  private heldRows = 0;
  private heldSegs = 0;
  // the best `keep` rows so far, sorted: one batch per chunk
  private best: { ptr: number; segs: number }[] = [];
  private bestRows = 0;
  private bestSegs = 0;
  private taken = 0;
  private sorter: ExternalSorter | undefined;
  private state: 'adding' | 'sorting' | 'done' | 'closed' = 'adding';
  private closing: Promise<void> | undefined;
  private failure: unknown;
  private readonly _stats: TopNStats = { rows: 0, compactions: 0, fellBack: false, sort: undefined, peakBytes: 0 };

  constructor(opts: TopNOptions) {
    this.opts = opts;
    this.k = opts.kernels;
    this.schema = opts.schema;
    this.keys = opts.keys;
    this.operator = opts.operator ?? 'TopN';
    this.limit = opts.limit;
    this.offset = opts.offset ?? 0;
    for (const [name, v] of [['limit', this.limit], ['offset', this.offset]] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new JobDefinitionError(`${this.operator}: ${name} must be a whole number ≥ 0, got ${v}`, { operator: this.operator });
    }
    this.keep = this.limit + this.offset;
    if (this.keys.length === 0) throw new JobDefinitionError(`${this.operator}: a top-n needs at least one key field`, { operator: this.operator });
    this.sd = schemaDescriptor(this.schema);
    this.kd = keyDescriptor(this.schema, this.keys); // checks the key fields now
    this.budget = segmentBudget(opts.budget, this.operator, { operator: this.operator });
    this.outputBytes = Math.floor((opts.outputBytes ?? SEGMENT_BYTES) / 8) * 8;
    if (!(this.outputBytes >= 16)) throw new RangeError(`outputBytes must be ≥ 16, got ${opts.outputBytes}`);
    if (this.budget.available < 4) {
      throw new MemoryBudgetError(
        `${this.operator}: ${this.budget.describe()} is too small: a top-n needs at least ${formatBytes(4 * SEGMENT_BYTES)} (4 segments of ${formatBytes(SEGMENT_BYTES)})`,
        { operator: this.operator },
      );
    }
    opts.signal?.addEventListener('abort', () => void this.close(), { once: true });
    if (opts.signal?.aborted) void this.close();
  }

  /** A snapshot of what the top-n has done so far. */
  get stats(): TopNStats {
    return { ...this._stats, sort: this.sorter?.stats ?? this._stats.sort };
  }

  /**
   * Adds one input batch (validated against the schema: CorruptBatchError / SchemaMismatchError).
   * The bytes are copied: the caller may reuse them when the promise resolves. With `limit` 0 the
   * input is not looked at.
   */
  async add(batch: Uint8Array): Promise<void> {
    this.checkState('add');
    try {
      const len = (batch.length + 7) & ~7;
      if (batch.length < 16) throw new CorruptBatchError(`${batch.length} bytes cannot be a batch (header is 16)`, { operator: this.operator });
      const rows = new DataView(batch.buffer, batch.byteOffset, 16).getUint32(8, true);
      if (rows > (len - 16) / 8) throw new CorruptBatchError(`batch header claims ${rows} rows in ${batch.length} bytes`, { operator: this.operator });
      if (this.limit === 0) {
        this._stats.rows += rows;
        return;
      }
      if (this.sorter === undefined && !this.fits(len, rows)) {
        // compact; fall back when that fails, when the best rows take over half the budget (compactions
        // would come too often), or when the batch still does not fit
        const compacted = this.held.length > 0 && this.compact();
        if (!compacted || 2 * this.bestSegs > this.taken + this.budget.available || !this.fits(len, rows)) await this.fallBack();
      }
      if (this.sorter !== undefined) {
        await this.sorter.add(batch);
        this._stats.rows += rows;
        return;
      }
      const cost = this.costOf(len);
      if (!this.take(cost)) throw new SluiceError(`${this.operator}: budget refused ${cost} segments it had free`, { domain: 'internal' });
      this.heldSegs += cost;
      this.place(batch, len, rows);
      this._stats.rows += rows;
    } catch (e) {
      await this.fail(e);
      throw e;
    }
  }

  /**
   * Ends the input and returns rows [offset, offset + limit) in key order, as batches of at most
   * `outputBytes` (unless one row is larger). Call once.
   */
  async *sorted(): AsyncGenerator<Uint8Array, void, undefined> {
    this.checkState('sort');
    this.state = 'sorting';
    try {
      if (this.limit > 0) {
        let out: Uint8Array[] | typeof NO_MEMORY = NO_MEMORY;
        if (this.sorter === undefined) out = this.finish();
        if (out === NO_MEMORY) {
          if (this.sorter === undefined) await this.fallBack();
          yield* this.fromSorter();
        } else {
          for (const b of out) yield b;
        }
      }
      this.state = 'done';
    } catch (e) {
      if (e instanceof SluiceError) e.withContext({ operator: this.operator });
      await this.fail(e);
      throw e;
    } finally {
      await this.close();
    }
  }

  /** Frees the memory, releases the budget, closes the fallback sort (deleting its files). Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= this.doClose());
  }

  /** For `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ── holding ──────────────────────────────────────────────────────────────────────────────────

  /** Segments a batch of `len` bytes adds to the held chunks. */
  private costOf(len: number): number {
    const last = this.chunks[this.chunks.length - 1];
    if (len > SEGMENT_BYTES) return segs(len);
    return last !== undefined && last.segs === 1 && last.top + len <= SEGMENT_BYTES ? 0 : 1;
  }

  /** Whether the batch fits with room left for the compaction after it (index, descriptors, new best). */
  private fits(len: number, rows: number): boolean {
    const total = this.heldRows + this.bestRows + rows;
    return this.costOf(len) + this.indexSegs(total, this.held.length + this.best.length + 1) + Math.max(1, this.bestSegs) <= this.budget.available;
  }

  /** Segments of a compaction's one allocation: the sort index (entries + scratch), then the descriptors and batch table. */
  private indexSegs(rows: number, batches: number): number {
    return segs(SORT_INDEX_BYTES_PER_ROW * rows + 4 * (this.sd.length + this.kd.length + batches));
  }

  private place(batch: Uint8Array, len: number, rows: number): void {
    const mem = this.k.memory;
    let last = this.chunks[this.chunks.length - 1];
    let ptr: number;
    if (len <= SEGMENT_BYTES && last !== undefined && last.segs === 1 && last.top + len <= SEGMENT_BYTES) {
      ptr = last.ptr + last.top;
      last.top += len;
    } else {
      const n = segs(len);
      ptr = mem.alloc(n * SEGMENT_BYTES);
      this.chunks.push((last = { ptr, segs: n, top: len }));
    }
    const u8 = mem.u8;
    u8.set(batch, ptr);
    if (len > batch.length) u8.fill(0, ptr + batch.length, ptr + len);
    const mb = { ptr, byteLength: len };
    const u32 = mem.u32;
    const w = ptr >>> 2;
    // trusted: the header only (an unexpected one gets the full check, and its error)
    if (!(this.opts.trusted === true && len === batch.length && u32[w] === BATCH_MAGIC && u32[w + 1] === len && u32[w + 3] === this.schema.id)) this.k.validate(this.schema, mb);
    if (this.k.rowCount(mb) !== rows) throw new CorruptBatchError('row count changed while copying', { operator: this.operator });
    this.held.push(mb);
    this.heldRows += rows;
  }

  private freeHeld(): void {
    for (const c of this.chunks) this.k.memory.free(c.ptr);
    this.chunks = [];
    this.held = [];
    this.heldRows = 0;
    this.give(this.heldSegs);
    this.heldSegs = 0;
  }

  private freeBest(): void {
    for (const c of this.best) this.k.memory.free(c.ptr);
    this.best = [];
    this.bestRows = 0;
    this.give(this.bestSegs);
    this.bestSegs = 0;
  }

  // ── compaction ───────────────────────────────────────────────────────────────────────────────

  /**
   * Builds the sort index over best + held rows (best first: they came earlier) and calls `use` with
   * its address and the number of entries; frees the index after. NO_MEMORY if the budget refuses.
   */
  private withIndex<T>(use: (index: number, count: number) => T): T | typeof NO_MEMORY {
    const batches = [...this.best.map((c) => c.ptr), ...this.held.map((b) => b.ptr)];
    const total = this.bestRows + this.heldRows;
    const idxSegs = this.indexSegs(total, batches.length);
    if (!this.take(idxSegs)) return NO_MEMORY;
    const mem = this.k.memory;
    let index = 0;
    try {
      index = mem.alloc(idxSegs * SEGMENT_BYTES);
      const u32 = mem.u32;
      const sdp = index + SORT_INDEX_BYTES_PER_ROW * total;
      const kdp = sdp + 4 * this.sd.length;
      const table = kdp + 4 * this.kd.length;
      u32.set(this.sd, sdp >>> 2);
      u32.set(this.kd, kdp >>> 2);
      u32.set(batches, table >>> 2);
      const count = this.k.raw.sortIndex(table, batches.length, sdp, kdp, index, index + 16 * total) >>> 0;
      return use(index, count);
    } finally {
      if (index !== 0) mem.free(index);
      this.give(idxSegs);
    }
  }

  /** Keeps only the first `keep` rows of best + held, sorted, as the new best. False if memory ran out. */
  private compact(): boolean {
    const next: { ptr: number; segs: number }[] = [];
    let nextSegs = 0;
    const res = this.withIndex((index, count) => {
      const n = Math.min(count, this.keep);
      const mem = this.k.memory;
      let cur: { ptr: number; segs: number } | undefined;
      const open = (bytes: number): boolean => {
        const s = segs(bytes);
        if (!this.take(s)) return false;
        cur = { ptr: mem.alloc(s * SEGMENT_BYTES), segs: s };
        nextSegs += s;
        next.push(cur);
        this.k.raw.initBatch(cur.ptr, this.schema.id);
        return true;
      };
      if (n > 0 && !open(SEGMENT_BYTES)) return false;
      let i = 0;
      while (i < n) {
        const st = this.k.raw.gatherSorted(index, n, i, cur!.ptr, cur!.segs * SEGMENT_BYTES);
        if (st === STATUS_DONE) break;
        if (st !== STATUS_FULL) throw new SluiceError(`kernel gatherSorted returned unexpected status ${st}`, { domain: 'internal' });
        i = this.k.raw.resultRow() >>> 0;
        const need = this.k.raw.resultBytes() >>> 0;
        if (!open(this.k.memory.u32[(cur!.ptr >>> 2) + 2]! > 0 ? SEGMENT_BYTES : BATCH_HEADER_BYTES + need)) return false;
      }
      return n;
    });
    if (res === NO_MEMORY || res === false) {
      for (const c of next) this.k.memory.free(c.ptr);
      this.give(nextSegs);
      return false;
    }
    // drop empty chunks (a fresh one after the last FULL that got no row)
    this.freeHeld();
    this.freeBest();
    for (const c of next) {
      if (this.k.memory.u32[(c.ptr >>> 2) + 2]! === 0) {
        this.k.memory.free(c.ptr);
        this.give(c.segs);
        nextSegs -= c.segs;
      } else this.best.push(c);
    }
    this.bestSegs = nextSegs;
    this.bestRows = res;
    this._stats.compactions++;
    return true;
  }

  /** The output from what is held: rows [offset, offset + limit) of the sorted index, copied out. */
  private finish(): Uint8Array[] | typeof NO_MEMORY {
    if (this.bestRows + this.heldRows <= this.offset) {
      this.freeHeld();
      this.freeBest();
      return [];
    }
    const outSegs = segs(this.outputBytes);
    if (!this.take(outSegs)) return NO_MEMORY;
    const mem = this.k.memory;
    const buf = mem.alloc(outSegs * SEGMENT_BYTES);
    let big = 0;
    let bigSegs = 0;
    try {
      const res = this.withIndex((index, count) => {
        const out: Uint8Array[] = [];
        const end = Math.min(count, this.keep);
        let ptr = buf;
        let cap = this.outputBytes;
        this.k.raw.initBatch(ptr, this.schema.id);
        const flush = () => {
          const u32 = mem.u32;
          if (u32[(ptr >>> 2) + 2]! > 0) out.push(mem.u8.slice(ptr, ptr + u32[(ptr >>> 2) + 1]!));
        };
        let i = this.offset;
        while (i < end) {
          const st = this.k.raw.gatherSorted(index, end, i, ptr, cap);
          if (st === STATUS_DONE) break;
          if (st !== STATUS_FULL) throw new SluiceError(`kernel gatherSorted returned unexpected status ${st}`, { domain: 'internal' });
          i = this.k.raw.resultRow() >>> 0;
          const need = this.k.raw.resultBytes() >>> 0;
          const hadRows = mem.u32[(ptr >>> 2) + 2]! > 0;
          flush();
          if (big !== 0) {
            mem.free(big);
            this.give(bigSegs);
            big = bigSegs = 0;
          }
          if (hadRows) {
            ptr = buf;
            cap = this.outputBytes;
          } else {
            // one row larger than an empty output buffer: a buffer of its own
            bigSegs = segs(BATCH_HEADER_BYTES + need);
            if (!this.take(bigSegs)) {
              bigSegs = 0;
              throw new MemoryBudgetError(`${this.operator}: a row of ${formatBytes(need)} does not fit the ${this.budget.describe()}`, { operator: this.operator });
            }
            ptr = big = mem.alloc(bigSegs * SEGMENT_BYTES);
            cap = BATCH_HEADER_BYTES + need;
          }
          this.k.raw.initBatch(ptr, this.schema.id);
        }
        flush();
        return out;
      });
      if (res !== NO_MEMORY) {
        this._stats.compactions++;
        this.freeHeld();
        this.freeBest();
      }
      return res;
    } finally {
      if (big !== 0) {
        mem.free(big);
        this.give(bigSegs);
      }
      mem.free(buf);
      this.give(outSegs);
    }
  }

  // ── fallback ─────────────────────────────────────────────────────────────────────────────────

  /** Hands everything held (best rows first, then the newer ones) to an external sort over the same budget. */
  private async fallBack(): Promise<void> {
    const mem = this.k.memory;
    const copy = (ptr: number) => mem.u8.slice(ptr, ptr + mem.u32[(ptr >>> 2) + 1]!);
    const rows = [...this.best.map((c) => copy(c.ptr)), ...this.held.map((b) => copy(b.ptr))];
    this.freeHeld();
    this.freeBest();
    this._stats.fellBack = true;
    this.sorter = new ExternalSorter({
      kernels: this.k,
      schema: this.schema,
      keys: this.keys,
      budget: this.opts.budget,
      spill: this.opts.spill,
      outputBytes: this.opts.outputBytes,
      operator: `${this.operator}(sort)`,
      trusted: this.opts.trusted === true,
    });
    for (const b of rows) await this.sorter.add(b);
  }

  /** Rows [offset, offset + limit) of the fallback sort's output; stops (and closes it) at the last. */
  private async *fromSorter(): AsyncGenerator<Uint8Array> {
    let skip = this.offset;
    let left = this.limit;
    const sorter = this.sorter!;
    for await (const b of sorter.sorted()) {
      const n = new DataView(b.buffer, b.byteOffset, 16).getUint32(8, true);
      if (skip >= n) {
        skip -= n;
        continue;
      }
      const from = skip;
      skip = 0;
      const to = Math.min(n, from + left);
      yield from === 0 && to === n ? b : sliceRows(b, from, to);
      left -= to - from;
      if (left === 0) break;
    }
    this._stats.sort = sorter.stats;
  }

  // ── bookkeeping ──────────────────────────────────────────────────────────────────────────────

  private take(n: number): boolean {
    if (n === 0) return true;
    if (!this.budget.tryTake(n)) return false;
    this.taken += n;
    if (this.taken * SEGMENT_BYTES > this._stats.peakBytes) this._stats.peakBytes = this.taken * SEGMENT_BYTES;
    return true;
  }

  private give(n: number): void {
    if (n === 0) return;
    this.budget.give(n);
    this.taken -= n;
  }

  private checkState(what: 'add' | 'sort'): void {
    if (this.state === 'adding') return;
    if (this.state === 'closed') throw new SluiceError(`${this.operator}: cannot ${what}: the top-n is closed${this.failure ? ' after a failure' : ''}`, { domain: 'internal', cause: this.failure });
    throw new JobDefinitionError(`${this.operator}: cannot ${what} once sorted() was called (a top-n is used once)`, { operator: this.operator });
  }

  private async fail(e: unknown): Promise<void> {
    this.failure ??= e;
    await this.close().catch(() => undefined);
  }

  private async doClose(): Promise<void> {
    this.state = 'closed';
    this.freeHeld();
    this.freeBest();
    if (this.sorter !== undefined) {
      this._stats.sort = this.sorter.stats;
      await this.sorter.close();
    }
  }
}

/**
 * Rows [offset, offset + limit) of an iterable of batches by a sort key, within a budget; see
 * {@link TopN}. Everything is freed when the output is consumed, when the consumer stops early and
 * when the input fails.
 *
 * @example
 * for await (const batch of topN(batches, { kernels: k, schema, keys: [{ field: 'score', desc: true }], limit: 100, budget: 8 << 20, spill: platform.spill })) {
 *   sink(batch);
 * }
 */
export async function* topN(input: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, opts: TopNOptions): AsyncGenerator<Uint8Array, TopNStats, undefined> {
  const top = new TopN(opts);
  try {
    if (top.limit > 0) for await (const b of input) await top.add(b);
    yield* top.sorted();
    return top.stats;
  } finally {
    await top.close();
  }
}
