// Owns the sort-merge join operator: both inputs sorted by their join keys (ExternalSorter, or taken as
// they come when the caller says they are sorted), then merged batch by batch. The merge never pairs
// records in JS: it aligns KEY RANGES of the two sorted streams and hands each aligned range to the
// hash join kernels (bindings/join.ts JoinTable: build / probe / scan), which write exactly the output
// rows HybridHashJoin writes. Only the alignment is done here, with the compare kernel.
//
// One step of the merge (each side holds at most one input batch in managed memory between steps):
//
//   K      = the smaller of the two sides' LAST held keys (of the side still reading, if one has ended)
//   window = every held row with key < K, on both sides. All partners of those keys are held: a side
//            still reading has nothing < its last key left to read, and earlier steps consumed
//            everything ≤ their K. The window is joined in memory: a table over the build side's
//            window rows, the probe side's window rows probed, the build side's own rows scanned.
//   group  = every row with key = K (ordering-equal, so a NULL key field is a value here). It can run
//            on into the next batches of either side, without bound (one hot key). A K with a NULL
//            field matches nothing: each side's K rows stream out on their own (outer / anti) or are
//            dropped. Likewise semi / anti, and a K present on one side only — no buffering at all.
//            Otherwise every K row on one side matches every K row on the other (a cross product):
//            one side's group (the one already complete in memory if there is one, else `buildSide`)
//            is buffered in managed memory; if it does not fit the operator's share it is spilled and
//            the other side's group is taken in blocks that fit, the spilled group replayed once per
//            block. A hot key larger than the whole budget finishes, in O(|A|·|B|) output time.
//
// Keys are compared by the compare kernel (compareRowPairs, the order of abi/abi.ts) against a
// key-only row of the current K written in each side's layout (8-byte slots copied, payloads of
// string / bytes / any keys copied): one kernel call compares up to 32 rows, and the boundary of a
// range in a held batch is found in ⌈log32(rows)⌉ calls. Batches cross to WASM, not records.
// Window and group rows are handed to the kernels in place: a 16-byte batch header is written just
// before the first row of the range (over the tail of a row already consumed), so no row is copied
// before the output.
//
// Output order: rows come in join-key order (the sort order of the keys, NULL key rows where the
// sort puts them) for inner, left, right, semi and anti joins. A full join is in key order too,
// except that right rows without a partner come at the end of the window (a batch's key range)
// they fall in.
//
// Memory (all in whole 32 KiB segments): the budget is split between the two sorts (each at least 4
// segments; by the inputs' estimated bytes when both are given, else evenly) and the merge (at least
// 12 segments, a quarter of the budget by default): output batch + one held batch per side + the
// window's table (~20 bytes per row) + key rows + a buffered group and its table. Each sort's merge
// phase runs while the join merges, so the two shares are disjoint.
// Cost: the two external sorts (skipped for sorted inputs), then one copy of each row into managed
// memory and one hash-table insert or probe per row; a spilled group is written once and read once
// per block of the other side's group.

import { BATCH_MAGIC, JOIN_BUILD_FIRST, JOIN_EMIT_MATCH, JOIN_EMIT_PROBE_UNMATCHED, JOIN_PROBE_ONLY, SEGMENT_BYTES } from '../../../bindings/abi.generated.ts';
import { JoinOutput, JoinTable, planJoin, type JoinPlan, type JoinType } from '../../../bindings/join.ts';
import type { Kernels, KeySpec, ManagedBatch } from '../../../bindings/kernels.ts';
import { JobDefinitionError, MemoryBudgetError, SluiceError } from '../../core/errors.ts';
import type { Schema } from '../../core/schema.ts';
import type { SpillFile, SpillStore, SpillWriter } from '../../platform/types.ts';
import { formatBytes, type MemoryReservation } from '../../runtime/memory-manager.ts';
import { ExternalSorter, type ExternalSortStats } from './external-sort.ts';
import type { JoinInput } from './hash-join.ts';

/** One input of a sort-merge join: a {@link JoinInput}, optionally already sorted by its keys. */
export interface SortMergeJoinInput extends JoinInput {
  /**
   * The batches already come in key order (`order`, default ascending, nulls last) — the optimizer
   * reuses an existing sort order. They are not sorted again; the order is checked as they arrive
   * (one kernel call per batch) and a violation is a JobDefinitionError naming the batch and row.
   */
  sorted?: boolean;
}

/** Direction of one join key on both sides (default ascending, nulls last, as ExternalSorter). */
export interface JoinKeyOrder {
  desc?: boolean;
  nullsFirst?: boolean;
}

/** Options of {@link SortMergeJoin}: those of HybridHashJoin, plus the key order and sortedness. */
export interface SortMergeJoinOptions {
  kernels: Kernels;
  /** Where sort runs and oversized key groups go; the operator deletes every file it makes (the caller closes the store). */
  spill: SpillStore;
  type: JoinType;
  left: SortMergeJoinInput;
  right: SortMergeJoinInput;
  /** Sort direction per key (index-aligned with `keys`); both sides use the same. */
  order?: readonly (JoinKeyOrder | undefined)[];
  /**
   * Which side's equal-key group is buffered when both sides' groups run on past a batch (the other
   * is streamed against it); default `right`. A group complete in memory is always the one buffered.
   */
  buildSide?: 'left' | 'right';
  /** Managed memory the operator may hold, sorts included (default: what the kernel budget has free). */
  budgetBytes?: number;
  /** A job-level reservation to reserve against too (the sorts' shares are reserved up front). */
  reservation?: MemoryReservation;
  /** Capacity of output batches (default SEGMENT_BYTES). */
  outputBytes?: number;
  /** Operator name for errors (default `SortMergeJoin`). */
  operator?: string;
}

/** What a run did (for tests and explain output). */
export interface SortMergeJoinStats {
  /** The external sort of each input; undefined for an input that came sorted (or before the sort ran). */
  leftSort: ExternalSortStats | undefined;
  rightSort: ExternalSortStats | undefined;
  /** Key ranges joined through a table (at most one per merge step). */
  windows: number;
  /** Equal-key groups joined as a cross product (the key present on both sides, at a batch end). */
  groups: number;
  /** Cross-product groups whose buffered side did not fit its share and was spilled. */
  spilledGroups: number;
  /** Passes over spilled groups (one per block of the other side's group). */
  replays: number;
  /** Batches written to the spill store by the merge (not by the sorts). */
  spilledBatches: number;
  /** Most rows in one buffered group. */
  maxGroupRows: number;
}

const MIN_JOIN_SEGMENTS = 12;
const MIN_SORT_SEGMENTS = 4;
/** Rows compared against a key per kernel call while searching a range boundary. */
const SEARCH_PROBES = 32;
const EMPTY = new Uint32Array(0);

const segBytes = (bytes: number) => Math.max(1, Math.ceil(bytes / SEGMENT_BYTES)) * SEGMENT_BYTES;
const bitmapBytes = (n: number) => Math.ceil(n / 64) * 8;

/** Bookkeeping of every allocation the merge holds against its share (and the reservation). */
class Budget {
  private used = 0;
  private readonly held = new Map<number, number>();
  constructor(
    private readonly k: Kernels,
    readonly bytes: number,
    private readonly reservation: MemoryReservation | undefined,
    private readonly operator: string,
  ) {}
  tryAlloc(bytes: number): number {
    const sz = segBytes(bytes);
    if (this.used + sz > this.bytes) return 0;
    if (this.k.memory.bytesInUse + sz > this.k.memory.budgetBytes) return 0;
    if (this.reservation && !this.reservation.tryReserve(sz)) return 0;
    const p = this.k.memory.alloc(sz);
    this.held.set(p, sz);
    this.used += sz;
    return p;
  }
  alloc(bytes: number, what: string): number {
    const p = this.tryAlloc(bytes);
    if (p === 0) {
      throw new MemoryBudgetError(
        `${this.operator}: ${what} needs ${formatBytes(bytes)} of managed memory; ${formatBytes(this.used)} of the merge's share of ` +
          `${formatBytes(this.bytes)} are in use (give the join a larger budget)`,
        { operator: this.operator },
      );
    }
    return p;
  }
  free(p: number): void {
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

/** Key rows of the current step: bump allocation in one segment, longer rows on their own. */
class Scratch {
  private base = 0;
  private top = 0;
  private readonly extra: number[] = [];
  constructor(private readonly budget: Budget) {}
  take(bytes: number): number {
    if (bytes <= SEGMENT_BYTES) {
      if (this.base === 0) this.base = this.budget.alloc(SEGMENT_BYTES, 'key rows');
      if (this.top + bytes <= SEGMENT_BYTES) {
        const p = this.base + this.top;
        this.top += bytes;
        return p;
      }
    }
    const p = this.budget.alloc(bytes, 'a key row');
    this.extra.push(p);
    return p;
  }
  reset(): void {
    this.top = 0;
    for (const p of this.extra.splice(0)) this.budget.free(p);
  }
}

/** One input as the merge reads it: the batch held in managed memory and the position in it. */
class Side {
  batch: ManagedBatch | undefined;
  ptrs: Uint32Array = EMPTY;
  rows = 0;
  pos = 0;
  /** Address just past the held batch's last row. */
  end = 0;
  ended = false;
  /** Input batches read (for error messages). */
  index = -1;
  maxBatchBytes = 0;
  maxBatchRows = 0;
  /** Presorted input: a key row of the previous batch's last row (0: none yet). */
  prevKey = 0;
  it: AsyncIterator<Uint8Array> | undefined;
  sorter: ExternalSorter | undefined;
  /** Its batches need only a header check: a trusted presorted input, or the output of its own sort. */
  trusted = false;
  readonly w: number;
  readonly isVar: boolean[];
  constructor(
    readonly name: 'left' | 'right',
    readonly schema: Schema,
    readonly keys: readonly number[],
    readonly keyRefs: readonly KeySpec[],
    readonly checkSorted: boolean,
  ) {
    this.w = bitmapBytes(schema.types.length);
    this.isVar = keys.map((f) => {
      const kind = schema.types[f]!.kind;
      return kind === 'string' || kind === 'bytes' || kind === 'any';
    });
  }
  get has(): boolean {
    return this.pos < this.rows;
  }
  get last(): number {
    return this.ptrs[this.rows - 1]!;
  }
}

/**
 * Rows of a buffered key group (or a block of one): copies packed into segment chunks (batches of
 * their own), then `tail`, a view of the group's last piece in the side's held batch. Cost: one copy
 * per row that was in a batch the side moved past.
 */
class Rows {
  readonly chunks: { ptr: number; cap: number }[] = [];
  tail: ManagedBatch | undefined;
  rows = 0;
  constructor(
    private readonly k: Kernels,
    private readonly budget: Budget,
    private readonly schemaId: number,
  ) {}
  /** Copies the rows of a view to the end of the last chunk, or a new one. */
  append(view: ManagedBatch): void {
    const body = view.byteLength - 16;
    let u32 = this.k.memory.u32;
    const n = u32[(view.ptr >>> 2) + 2]!;
    let last = this.chunks[this.chunks.length - 1];
    if (last === undefined || u32[(last.ptr >>> 2) + 1]! + body > last.cap) {
      const cap = segBytes(16 + body);
      last = { ptr: this.budget.alloc(cap, 'a buffered key group'), cap };
      this.k.raw.initBatch(last.ptr, this.schemaId);
      this.chunks.push(last);
      u32 = this.k.memory.u32;
    }
    const h = last.ptr >>> 2;
    this.k.memory.u8.copyWithin(last.ptr + u32[h + 1]!, view.ptr + 16, view.ptr + view.byteLength);
    u32[h + 1]! += body;
    u32[h + 2]! += n;
  }
  views(): ManagedBatch[] {
    const out = this.chunks.map((c) => ({ ptr: c.ptr, byteLength: c.cap }));
    if (this.tail !== undefined) out.push(this.tail);
    return out;
  }
  /** Frees the copies and forgets the tail (`rows` is kept: the group's size, spilled or not). */
  free(): void {
    for (const c of this.chunks.splice(0)) this.budget.free(c.ptr);
    this.tail = undefined;
  }
}

async function* iterate(src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const b of src) yield b;
}

/**
 * A sort-merge join of two bounded inputs of binary batches, as an async iterable of output batches.
 * Interchangeable with HybridHashJoin: the same join types, inputs, output schema ({@link schema}:
 * left fields then right fields, nullable where a side may be missing; left fields only for semi /
 * anti) and the same output rows (written by the same kernels), as a multiset. Unlike the hash join
 * its output is in join-key order (see the file comment for full joins), its memory is bounded by one
 * batch per side plus the largest equal-key group (spilled when that does not fit), and an input
 * that is already sorted costs no sort. NULL keys never match; outer / anti joins still emit their rows.
 *
 * @example
 * await using store = await platform.spill.createSpillStore();
 * const join = new SortMergeJoin({ kernels: k, spill: store, type: 'left',
 *   left: { schema: orders, keys: ['user'], batches: orderBatches },
 *   right: { schema: users, keys: ['id'], batches: userBatchesById, sorted: true },
 *   budgetBytes: 4 << 20 });
 * for await (const batch of join) sink(batch);   // in `user` order
 */
export class SortMergeJoin implements AsyncIterable<Uint8Array> {
  /** The plan of the per-window joins (output schema, which side builds each window's table). */
  readonly plan: JoinPlan;
  readonly stats: SortMergeJoinStats = { leftSort: undefined, rightSort: undefined, windows: 0, groups: 0, spilledGroups: 0, replays: 0, spilledBatches: 0, maxGroupRows: 0 };
  readonly operator: string;
  private readonly k: Kernels;
  private readonly budget: Budget;
  private readonly scratch: Scratch;
  private readonly L: Side;
  private readonly R: Side;
  private readonly sortShare: { left: number; right: number };
  private reserved = 0;
  private readonly files = new Set<SpillWriter | SpillFile>();
  private readonly outputBytes: number;
  private maxSpilledBytes = 0;
  private out: JoinOutput | undefined;
  private gen: AsyncGenerator<Uint8Array> | undefined;

  constructor(private readonly opts: SortMergeJoinOptions) {
    const { left, right } = opts;
    this.operator = opts.operator ?? 'SortMergeJoin';
    // a right join probes with the right side, so that its rows (all of them) come out in key order
    this.plan = planJoin({ type: opts.type, left: left.schema, right: right.schema, leftKeys: left.keys, rightKeys: right.keys, buildSide: opts.type === 'right' ? 'left' : 'right' });
    this.k = opts.kernels;
    const order = opts.order ?? [];
    if (order.length > left.keys.length) throw new JobDefinitionError(`${this.operator}: ${order.length} key orders for ${left.keys.length} keys`, { operator: this.operator });
    const lk = this.plan.buildSide === 'left' ? this.plan.build.keys : this.plan.probe.keys;
    const rk = this.plan.buildSide === 'left' ? this.plan.probe.keys : this.plan.build.keys;
    const refs = (keys: readonly number[]): KeySpec[] => keys.map((field, i) => ({ field, desc: order[i]?.desc ?? false, nullsFirst: order[i]?.nullsFirst ?? false }));
    this.L = new Side('left', left.schema, lk, refs(lk), left.sorted === true);
    this.R = new Side('right', right.schema, rk, refs(rk), right.sorted === true);

    // the budget: the sorts' shares, the rest to the merge
    const mem = this.k.memory;
    let total = opts.budgetBytes ?? mem.budgetBytes - mem.bytesInUse;
    if (opts.budgetBytes === undefined && opts.reservation) total = Math.min(total, opts.reservation.bytesAvailable);
    const segsTotal = Math.floor(total / SEGMENT_BYTES);
    const sorts = (left.sorted ? 0 : 1) + (right.sorted ? 0 : 1);
    const need = MIN_JOIN_SEGMENTS + sorts * MIN_SORT_SEGMENTS;
    if (!(segsTotal >= need)) {
      throw new MemoryBudgetError(
        `${this.operator}: a budget of ${formatBytes(Math.max(0, total))} is too small: a sort-merge join with ${sorts} input(s) to sort needs at least ` +
          `${formatBytes(need * SEGMENT_BYTES)} (${MIN_SORT_SEGMENTS} segments per sort and ${MIN_JOIN_SEGMENTS} for the merge)`,
        { operator: this.operator },
      );
    }
    const joinSegs = sorts === 0 ? segsTotal : Math.max(MIN_JOIN_SEGMENTS, Math.floor(segsTotal / 4));
    const sortSegs = segsTotal - joinSegs;
    let leftSegs = 0;
    if (sorts === 2) {
      const el = left.estimatedBytes;
      const er = right.estimatedBytes;
      const frac = el !== undefined && er !== undefined && el + er > 0 ? Math.min(0.75, Math.max(0.25, el / (el + er))) : 0.5;
      leftSegs = Math.min(sortSegs - MIN_SORT_SEGMENTS, Math.max(MIN_SORT_SEGMENTS, Math.round(sortSegs * frac)));
    } else if (!left.sorted) leftSegs = sortSegs;
    this.sortShare = { left: leftSegs * SEGMENT_BYTES, right: (sorts === 0 ? 0 : sortSegs - leftSegs) * SEGMENT_BYTES };
    this.budget = new Budget(this.k, joinSegs * SEGMENT_BYTES, opts.reservation, this.operator);
    this.scratch = new Scratch(this.budget);
    this.outputBytes = Math.max(16, Math.floor((opts.outputBytes ?? SEGMENT_BYTES) / 8) * 8);
  }

  /** The output schema (that of HybridHashJoin for the same inputs and type). */
  get schema(): Schema {
    return this.plan.output;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.gen) throw new JobDefinitionError(`${this.operator} can be iterated once`, { operator: this.operator });
    this.gen = this.run();
    return this.gen;
  }

  /** Stops the join, frees its memory and deletes its spill files, the sorts' included (idempotent). */
  async close(): Promise<void> {
    if (this.gen) await this.gen.return(undefined);
    await this.cleanup();
  }

  // ── driver ───────────────────────────────────────────────────────────────────────────────────

  private async *run(): AsyncGenerator<Uint8Array> {
    const { L, R } = this;
    try {
      const sortBytes = this.sortShare.left + this.sortShare.right;
      if (this.opts.reservation && sortBytes > 0) {
        this.opts.reservation.reserve(sortBytes);
        this.reserved = sortBytes;
      }
      this.out = new JoinOutput(this.k, this.plan.output.id, this.outputBytes, (b) => this.budget.alloc(b, 'the output batch'), (p) => this.budget.free(p));
      L.it = await this.open(L, this.opts.left, this.sortShare.left);
      R.it = await this.open(R, this.opts.right, this.sortShare.right);
      for (;;) {
        for (const s of [L, R]) if (!s.ended && !s.has) await this.load(s);
        if (!L.has && !R.has) break; // both ended (a side still reading holds rows after load)
        try {
          if (L.ended && R.ended) {
            yield* this.window(L.rows, R.rows);
            continue;
          }
          // K: the smaller last key of the sides still reading
          let p: Side;
          if (L.ended) p = R;
          else if (R.ended) p = L;
          else p = this.cmp(L, L.last, this.keyRow(L, R, R.last)) <= 0 ? L : R;
          const row = p.last;
          const kL = this.keyRow(L, p, row);
          const kR = this.keyRow(R, p, row);
          const nullKey = this.hasNullKey(p, row);
          yield* this.window(this.search(L, kL, false), this.search(R, kR, false));
          yield* this.group(kL, kR, nullKey);
        } finally {
          this.scratch.reset();
        }
      }
      this.out.flush();
      yield* this.drain();
      this.stats.leftSort = L.sorter?.stats;
      this.stats.rightSort = R.sorter?.stats;
    } catch (e) {
      if (e instanceof SluiceError) e.withContext({ operator: this.operator });
      throw e;
    } finally {
      await this.cleanup();
    }
  }

  /** The input as a sorted stream: as it is, or through an external sort within its share. */
  private async open(s: Side, input: SortMergeJoinInput, share: number): Promise<AsyncIterator<Uint8Array>> {
    if (input.sorted) {
      s.trusted = input.trusted === true;
      return iterate(input.batches);
    }
    const sorter = new ExternalSorter({
      kernels: this.k,
      schema: s.schema,
      keys: s.keyRefs,
      budget: share,
      spill: this.opts.spill,
      operator: `${this.operator}(sort ${s.name})`,
      trusted: input.trusted === true,
    });
    s.sorter = sorter;
    // the sort's output batches are written by the kernels (its spilled runs are validated when read back)
    s.trusted = true;
    for await (const b of input.batches) await sorter.add(b);
    return sorter.sorted();
  }

  private async cleanup(): Promise<void> {
    this.out?.dispose();
    this.out = undefined;
    this.budget.freeAll();
    for (const s of [this.L, this.R]) {
      s.batch = undefined;
      s.prevKey = 0;
      s.rows = s.pos = 0;
      const it = s.it;
      s.it = undefined;
      await it?.return?.(undefined).catch(() => undefined);
      if (s.sorter) {
        if (s.name === 'left') this.stats.leftSort ??= s.sorter.stats;
        else this.stats.rightSort ??= s.sorter.stats;
        await s.sorter.close().catch(() => undefined);
      }
    }
    const files = [...this.files];
    this.files.clear();
    await Promise.all(files.map((f) => ('finish' in f ? f.abort() : f.delete()).catch(() => undefined)));
    if (this.reserved > 0) {
      this.opts.reservation?.release(this.reserved);
      this.reserved = 0;
    }
  }

  private *drain(): Generator<Uint8Array> {
    for (const b of this.out!.drain()) yield b;
  }

  // ── input ────────────────────────────────────────────────────────────────────────────────────

  /** Copies a batch into managed memory and validates it unless `trusted` (header only); the caller frees it. */
  private loadBytes(bytes: Uint8Array, schema: Schema, what: string, trusted = false): ManagedBatch {
    const ptr = this.budget.alloc(bytes.length, what);
    this.k.memory.u8.set(bytes, ptr);
    const b = { ptr, byteLength: bytes.length };
    // trusted: a bad header still gets the full validation's error
    if (trusted && this.k.headerMatches(b, schema)) return b;
    try {
      this.k.validate(schema, b);
    } catch (e) {
      this.budget.free(ptr);
      throw e;
    }
    return b;
  }

  /** Moves a side on to its next non-empty batch (freeing the one it holds), or to its end. */
  private async load(s: Side): Promise<void> {
    if (s.batch !== undefined) this.budget.free(s.batch.ptr);
    s.batch = undefined;
    s.ptrs = EMPTY;
    s.rows = s.pos = 0;
    for (;;) {
      const r = await s.it!.next();
      if (r.done) {
        s.ended = true;
        return;
      }
      s.index++;
      const mb = this.loadBytes(r.value, s.schema, `batch ${s.index} of the ${s.name} input`, s.trusted);
      const n = this.k.rowCount(mb);
      if (n === 0) {
        this.budget.free(mb.ptr);
        continue;
      }
      s.batch = mb;
      s.rows = n;
      s.end = mb.ptr + this.k.memory.u32[(mb.ptr >>> 2) + 1]!;
      s.ptrs = this.k.rowPointers(mb);
      if (r.value.length > s.maxBatchBytes) s.maxBatchBytes = r.value.length;
      if (n > s.maxBatchRows) s.maxBatchRows = n;
      if (s.checkSorted) this.checkOrder(s);
      return;
    }
  }

  /** A presorted input's batch: every row ≥ the one before it (the previous batch's last row included). */
  private checkOrder(s: Side): void {
    const pairs = new Uint32Array(2 * s.rows);
    let m = 0;
    if (s.prevKey !== 0) {
      pairs[0] = s.prevKey;
      pairs[1] = s.ptrs[0]!;
      m = 1;
    }
    for (let i = 1; i < s.rows; i++, m++) {
      pairs[2 * m] = s.ptrs[i - 1]!;
      pairs[2 * m + 1] = s.ptrs[i]!;
    }
    const c = this.k.compareRowPairs(s.schema, pairs.subarray(0, 2 * m), s.keyRefs);
    const skip = s.prevKey !== 0 ? 0 : 1;
    for (let j = 0; j < m; j++) {
      if (c[j]! > 0) {
        const row = j + skip;
        throw new JobDefinitionError(
          `${this.operator}: the ${s.name} input was declared sorted but is not in the order of its join keys ` +
            `${JSON.stringify(s.keyRefs)}: row ${row} of its batch ${s.index} sorts before the row preceding it`,
          { operator: this.operator, recordIndex: row },
        );
      }
    }
    if (s.prevKey !== 0) this.budget.free(s.prevKey);
    s.prevKey = 0;
    const size = this.keyRowSize(s, s, s.last);
    s.prevKey = this.budget.alloc(size, 'a key row');
    this.writeKeyRow(s, s, s.last, s.prevKey, size);
  }

  /**
   * A batch over rows [from, to) of the side's held batch, in place: a header written just before
   * row `from` (over the tail of row from - 1, which is consumed, or the batch's own header).
   */
  private view(s: Side, from: number, to: number): ManagedBatch {
    const start = s.ptrs[from]! - 16;
    const stop = to < s.rows ? s.ptrs[to]! : s.end;
    const u32 = this.k.memory.u32;
    const w = start >>> 2;
    u32[w] = BATCH_MAGIC;
    u32[w + 1] = stop - start;
    u32[w + 2] = to - from;
    u32[w + 3] = s.schema.id;
    return { ptr: start, byteLength: stop - start };
  }

  // ── keys ─────────────────────────────────────────────────────────────────────────────────────

  private keyRowSize(dst: Side, src: Side, row: number): number {
    const n = dst.schema.types.length;
    let size = 8 + bitmapBytes(n) + 8 * n;
    const u8 = this.k.memory.u8;
    const u32 = this.k.memory.u32;
    src.keys.forEach((f, j) => {
      if (src.isVar[j] && ((u8[row + 8 + (f >> 3)]! >> (f & 7)) & 1) === 0) size += u32[((row + 8 + src.w + 8 * f) >>> 2) + 1]!;
    });
    return (size + 7) & ~7;
  }

  /**
   * Writes, at `at`, a row of `dst`'s schema whose key fields hold the key of `row` (a row of `src`)
   * and whose other fields are NULL: what the compare kernel needs to compare dst's rows with it.
   */
  private writeKeyRow(dst: Side, src: Side, row: number, at: number, size: number): void {
    const u8 = this.k.memory.u8;
    const u32 = this.k.memory.u32;
    const n = dst.schema.types.length;
    const w = bitmapBytes(n);
    u8.fill(0, at, at + size);
    u32[at >>> 2] = size;
    for (let i = 0; i < n; i++) u8[at + 8 + (i >> 3)]! |= 1 << (i & 7);
    let pos = 8 + w + 8 * n;
    for (let j = 0; j < src.keys.length; j++) {
      const fs = src.keys[j]!;
      const fd = dst.keys[j]!;
      if (((u8[row + 8 + (fs >> 3)]! >> (fs & 7)) & 1) !== 0) continue;
      u8[at + 8 + (fd >> 3)]! &= ~(1 << (fd & 7));
      const ss = row + 8 + src.w + 8 * fs;
      const ds = at + 8 + w + 8 * fd;
      if (src.isVar[j]) {
        const off = u32[ss >>> 2]!;
        const len = u32[(ss >>> 2) + 1]!;
        u8.copyWithin(at + pos, row + off, row + off + len);
        u32[ds >>> 2] = pos;
        u32[(ds >>> 2) + 1] = len;
        pos += len;
      } else {
        u8.copyWithin(ds, ss, ss + 8);
      }
    }
  }

  /** The key of `row` (of `src`) as a key row of `dst`, in this step's scratch. */
  private keyRow(dst: Side, src: Side, row: number): number {
    const size = this.keyRowSize(dst, src, row);
    const at = this.scratch.take(size);
    this.writeKeyRow(dst, src, row, at, size);
    return at;
  }

  private hasNullKey(s: Side, row: number): boolean {
    const u8 = this.k.memory.u8;
    return s.keys.some((f) => ((u8[row + 8 + (f >> 3)]! >> (f & 7)) & 1) !== 0);
  }

  private cmp(s: Side, a: number, b: number): number {
    return this.k.compareRowPairs(s.schema, Uint32Array.of(a, b), s.keyRefs)[0]!;
  }

  /**
   * The first held row at or after the side's position whose key is ≥ `key` (> with `upper`), or
   * `rows`: a SEARCH_PROBES-way search, one compare-kernel call per round.
   */
  private search(s: Side, key: number, upper: boolean): number {
    let lo = s.pos;
    let hi = s.rows;
    while (lo < hi) {
      const span = hi - lo;
      const m = Math.min(span, SEARCH_PROBES);
      const idx = new Array<number>(m);
      const pairs = new Uint32Array(2 * m);
      for (let j = 0; j < m; j++) {
        idx[j] = span <= SEARCH_PROBES ? lo + j : lo + Math.floor(((j + 1) * span) / (m + 1));
        pairs[2 * j] = s.ptrs[idx[j]!]!;
        pairs[2 * j + 1] = key;
      }
      const c = this.k.compareRowPairs(s.schema, pairs, s.keyRefs);
      let j = 0;
      while (j < m && (upper ? c[j]! <= 0 : c[j]! < 0)) j++;
      if (span <= SEARCH_PROBES) return j < m ? idx[j]! : hi;
      if (j < m) {
        hi = idx[j]!;
        if (j > 0) lo = idx[j - 1]! + 1;
      } else {
        lo = idx[m - 1]! + 1;
      }
    }
    return lo;
  }

  // ── joining ──────────────────────────────────────────────────────────────────────────────────

  /** Joins held rows [pos, lEnd) of the left side with [pos, rEnd) of the right (a complete key range). */
  private *window(lEnd: number, rEnd: number): Generator<Uint8Array> {
    const { plan, L, R } = this;
    const [B, P, bEnd, pEnd] = plan.buildSide === 'left' ? [L, R, lEnd, rEnd] : [R, L, rEnd, lEnd];
    const nb = bEnd - B.pos;
    const np = pEnd - P.pos;
    const probeAlone = (plan.probeMode & JOIN_EMIT_PROBE_UNMATCHED) !== 0;
    const scan = plan.scanMode !== undefined;
    if ((np > 0 && (nb > 0 || probeAlone)) || (nb > 0 && scan)) {
      this.stats.windows++;
      const t = this.table(B, nb);
      try {
        if (nb > 0) t.insert(this.view(B, B.pos, bEnd));
        if (np > 0) t.probe(P.schema, P.keys, this.view(P, P.pos, pEnd), plan.probeMode, this.out!);
        if (plan.scanMode !== undefined) t.scan(plan.scanMode, P.schema.types.length, this.out!);
      } finally {
        t.close();
      }
    }
    B.pos = bEnd;
    P.pos = pEnd;
    yield* this.drain();
  }

  private table(s: Side, rows: number): JoinTable {
    return new JoinTable(this.k, s.schema, s.keys, rows, (b) => this.budget.alloc(b, `a join table of ${rows} rows`), (p) => this.budget.free(p));
  }

  /** Mode that emits rows of `s` without a partner (0: the join type drops them). */
  private aloneMode(s: Side): number {
    const t = this.opts.type;
    if (s === this.L) return t === 'left' || t === 'full' ? JOIN_EMIT_PROBE_UNMATCHED : t === 'anti' ? JOIN_EMIT_PROBE_UNMATCHED | JOIN_PROBE_ONLY : 0;
    return t === 'right' || t === 'full' ? JOIN_EMIT_PROBE_UNMATCHED | JOIN_BUILD_FIRST : 0;
  }

  /** The rows = K at the front of each side (K from the step), as the join type and K's NULLs ask. */
  private async *group(kL: number, kR: number, nullKey: boolean): AsyncGenerator<Uint8Array> {
    const { L, R } = this;
    const type = this.opts.type;
    const lK = L.has && this.cmp(L, L.ptrs[L.pos]!, kL) === 0;
    const rK = R.has && this.cmp(R, R.ptrs[R.pos]!, kR) === 0;
    if (!lK && !rK) return;
    const semiAnti = type === 'semi' || type === 'anti';
    if (nullKey || semiAnti || !lK || !rK) {
      // no pairs to make: each side's K rows on their own (semi: the left rows as they are when K is on the right)
      if (lK) yield* this.stream(L, kL, semiAnti && !nullKey && rK ? (type === 'semi' ? JOIN_EMIT_PROBE_UNMATCHED | JOIN_PROBE_ONLY : 0) : this.aloneMode(L));
      if (rK) yield* this.stream(R, kR, this.aloneMode(R));
      return;
    }
    yield* this.cross(kL, kR);
  }

  /**
   * Calls `visit` on every run of the side's rows equal to `key` from its position on, loading
   * batches while the run reaches a batch's end; the side ends up just past the last such row.
   */
  private async *eachRun(s: Side, key: number, visit: (view: ManagedBatch) => void): AsyncGenerator<Uint8Array> {
    for (;;) {
      const end = this.search(s, key, true);
      if (end > s.pos) {
        visit(this.view(s, s.pos, end));
        s.pos = end;
        yield* this.drain();
      }
      if (end < s.rows || s.ended) return;
      await this.load(s);
      if (!s.has) return;
    }
  }

  /** Emits (mode ≠ 0) or skips the side's rows equal to `key`, through a table over nothing. */
  private stream(s: Side, key: number, mode: number): AsyncGenerator<Uint8Array> {
    const other = s === this.L ? this.R : this.L;
    return this.eachRun(s, key, (view) => {
      if (mode === 0) return;
      const t = this.table(other, 0);
      try {
        t.probe(s.schema, s.keys, view, mode, this.out!);
      } finally {
        t.close();
      }
    });
  }

  /** K (no NULL field) on both sides, inner or outer join: every K row of one side with every K row of the other. */
  private async *cross(kL: number, kR: number): AsyncGenerator<Uint8Array> {
    const { L, R } = this;
    const lEnd = this.search(L, kL, true);
    const rEnd = this.search(R, kR, true);
    const lOpen = lEnd === L.rows && !L.ended;
    const rOpen = rEnd === R.rows && !R.ended;
    let A: Side; // the side buffered
    if (lOpen !== rOpen) A = lOpen ? R : L;
    else if (!lOpen) A = lEnd - L.pos <= rEnd - R.pos ? L : R;
    else A = (this.opts.buildSide ?? 'right') === 'left' ? L : R;
    const B = A === L ? R : L;
    const kA = A === L ? kL : kR;
    const kB = A === L ? kR : kL;
    this.stats.groups++;
    const g = this.rowsOf(A);
    try {
      const file = await this.collect(A, kA, B, g);
      if (g.rows > this.stats.maxGroupRows) this.stats.maxGroupRows = g.rows;
      if (file === undefined) {
        const t = this.table(A, g.rows);
        try {
          for (const v of g.views()) t.insert(v);
          const mode = JOIN_EMIT_MATCH | (B === R ? JOIN_BUILD_FIRST : 0);
          yield* this.eachRun(B, kB, (view) => t.probe(B.schema, B.keys, view, mode, this.out!));
        } finally {
          t.close();
        }
      } else {
        try {
          yield* this.replay(A, B, kB, file);
        } finally {
          this.files.delete(file);
          await file.delete();
        }
      }
    } finally {
      g.free();
    }
  }

  private rowsOf(s: Side): Rows {
    return new Rows(this.k, this.budget, s.schema.id);
  }

  /**
   * Takes the side's rows equal to `key` into `g` (copied out of each batch the run reaches the end
   * of, so the side can move on; the run's last piece stays in the side's batch). When another batch
   * would not leave room for the group's table and the other side's reading, everything goes to a
   * spill file instead, which is returned.
   */
  private async collect(A: Side, key: number, B: Side, g: Rows): Promise<SpillFile | undefined> {
    let writer: SpillWriter | undefined;
    for (;;) {
      const end = this.search(A, key, true);
      if (end > A.pos) {
        const view = this.view(A, A.pos, end);
        g.rows += end - A.pos;
        if (writer !== undefined) await this.append(writer, view);
        else if (end === A.rows && !A.ended) g.append(view);
        else g.tail = view;
        A.pos = end;
      }
      if (end < A.rows || A.ended) break;
      const room = 2 * segBytes(A.maxBatchBytes) + this.tableBytes(A, g.rows + A.maxBatchRows) + segBytes(B.maxBatchBytes);
      if (writer === undefined && this.budget.inUse + room > this.budget.bytes) {
        this.stats.spilledGroups++;
        writer = await this.create(`${this.operator}-group`);
        for (const v of g.views()) await this.append(writer, v);
        g.free();
      }
      await this.load(A);
      if (!A.has) break;
    }
    if (writer === undefined) return undefined;
    this.files.delete(writer);
    const file = await writer.finish();
    this.files.add(file);
    return file;
  }

  /**
   * The cross product of a spilled group of A with B's rows equal to `key`: B's rows in blocks that
   * fit (a table each), the spilled group probed through each block's table.
   */
  private async *replay(A: Side, B: Side, key: number, file: SpillFile): AsyncGenerator<Uint8Array> {
    const mode = JOIN_EMIT_MATCH | (A === this.R ? JOIN_BUILD_FIRST : 0);
    const block = this.rowsOf(B);
    let done = false;
    try {
      while (!done) {
        block.rows = 0;
        for (;;) {
          if (!B.has) {
            if (!B.ended) await this.load(B);
            if (!B.has) {
              done = true;
              break;
            }
          }
          const end = this.search(B, key, true);
          if (end > B.pos) {
            const view = this.view(B, B.pos, end);
            if (end === B.rows && !B.ended) block.append(view);
            else block.tail = view;
            block.rows += end - B.pos;
            B.pos = end;
          }
          if (end < B.rows || B.ended) {
            done = true;
            break;
          }
          const room = 2 * segBytes(B.maxBatchBytes) + this.tableBytes(B, block.rows + B.maxBatchRows) + segBytes(this.maxSpilledBytes);
          if (this.budget.inUse + room > this.budget.bytes) break; // the block is full: join it, then read on
        }
        if (block.rows === 0) continue;
        const t = this.table(B, block.rows);
        try {
          for (const v of block.views()) t.insert(v);
          this.stats.replays++;
          const reader = file.read();
          try {
            for (;;) {
              const bytes = await reader.next();
              if (bytes === undefined) break;
              const mb = this.loadBytes(bytes, A.schema, 'a spilled group batch');
              try {
                t.probe(A.schema, A.keys, mb, mode, this.out!);
              } finally {
                this.budget.free(mb.ptr);
              }
              yield* this.drain();
            }
          } finally {
            await reader.close();
          }
        } finally {
          t.close();
          block.free();
        }
      }
    } finally {
      block.free();
    }
  }

  private tableBytes(s: Side, rows: number): number {
    return segBytes(JoinTable.bytesFor(s.schema, s.keys.length, rows));
  }

  private async create(name: string): Promise<SpillWriter> {
    const w = await this.opts.spill.create(name);
    this.files.add(w);
    return w;
  }

  private async append(w: SpillWriter, view: ManagedBatch): Promise<void> {
    const len = this.k.memory.u32[(view.ptr >>> 2) + 1]!;
    if (len > this.maxSpilledBytes) this.maxSpilledBytes = len;
    await w.append(this.k.memory.u8.slice(view.ptr, view.ptr + len));
    this.stats.spilledBatches++;
  }
}
