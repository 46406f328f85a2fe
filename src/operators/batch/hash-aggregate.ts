// Owns the batch hash aggregation operator: GROUP BY with count(*), count, sum, min, max, avg (and
// DISTINCT = group by every field, no aggregates) over binary-row batches of any size, within a
// managed-memory budget, spilling to the platform's spill store.
//
// Algorithm (hybrid hash aggregation with partial-aggregate spilling, as DuckDB / Flink's
// HashAggregation do):
//   1. Fold input batches into one hash table (bindings/aggregate.ts AggTable; kernels in
//      assembly/agg.ts). The table grows chunk by chunk while the budget allows.
//   2. When it may not grow, spill: emit the table as *partial* rows (group fields ++ accumulator
//      states), route them by hash bits into F = 16 spill files (the partition kernel), clear the
//      table, and go on with the same input row.
//   3. At the end, if nothing spilled, emit final rows from memory. Otherwise spill what is left and
//      aggregate each spill file on its own with the merge ops (partials combine: counts add, sums
//      add, min/max, avg = (sum, count) pairs add). A file whose groups still do not fit spills again,
//      partitioned by the *next* 4 hash bits (level d uses bits 4d..4d+3: keyGroup = hash mod 16^(d+1),
//      partition = keyGroup · 16 / 16^(d+1)), recursively, up to 7 levels (28 bits).
// Why spill partial aggregates rather than raw input: a partial row is never larger than the rows it
// stands for (one row per group per spill round), so skewed keys collapse before they touch the disk,
// and the merge ops make re-aggregating a spill file the same kernel path as aggregating input.
// Every group lives in exactly one partition, so partitions are finished one after another and each
// group is emitted once.
//
// Budget use (whole 32 KiB segments): table state + directory + entry chunks + its output buffer,
// plus the input batch being folded in, plus the partition kernel's 16 output buffers while spilling.
// Output: final batches of `plan.finalSchema` = group fields ++ one field per aggregate (types in
// bindings/aggregate.ts). Row order: first-seen order per partition (unspecified overall).
// Temp files: the spill store is created on the first spill and closed (everything removed) when the
// output iterator finishes, fails or is abandoned, and by close().
// Not a kernel: a user reduce function over JS objects (that is the keyed reduce operator's job).

import { SEGMENT_BYTES } from '../../../bindings/abi.generated.ts';
import { AggTable, aggregatePlan, type AggSpec, type AggregatePlan, type FeedPosition } from '../../../bindings/aggregate.ts';
import type { Kernels, ManagedBatch } from '../../../bindings/kernels.ts';
import { MemoryBudgetError, SluiceError } from '../../core/errors.ts';
import { encodeBatch } from '../../core/rows.ts';
import type { Schema } from '../../core/schema.ts';
import type { SpillFile, SpillStore, SpillStoreFactory, SpillWriter } from '../../platform/types.ts';
import { formatBytes, type MemoryReservation } from '../../runtime/memory-manager.ts';

/** Spill partitions per level (4 hash bits). */
const FANOUT = 16;
/** Deepest recursion: 16^(MAX_LEVEL+1) must stay below 2^31 (the partition kernel's maxParallelism). */
const MAX_LEVEL = 6;

/** Options of {@link HashAggregator}. */
export interface HashAggregateOptions {
  /** The kernel instance whose managed memory holds the table. */
  kernels: Kernels;
  /** Schema of every input batch (validated on the way in). */
  schema: Schema;
  /** Group fields (by index or name); none = one global group. */
  keys: readonly (number | string)[];
  /** Aggregates; none with every field as a key = DISTINCT. */
  aggs: readonly AggSpec[];
  /** Managed-memory budget: a byte count or a subtask's reservation (reserved whole while running). */
  budget: number | MemoryReservation;
  /** Where partials spill: a store (the operator deletes its files) or a factory (a store of its own). */
  spill: SpillStore | SpillStoreFactory;
  /** Capacity of output batches in bytes (default 32 KiB). */
  outputBytes?: number;
  /** Operator name for errors (default `HashAggregate`). */
  operator?: string;
  /** Bytes per table chunk (default 32 KiB; smaller makes tests spill after a few groups). */
  chunkBytes?: number;
  /**
   * The input batches were made by Sluice itself (a kernel, the batch writer, an operator) or checked
   * once already: only their header (magic, length, schema id) is checked on the way in, not every
   * row. Spilled partials read back are always validated. A malformed batch passed as trusted gives
   * wrong groups or a WebAssembly trap, not a CorruptBatchError.
   */
  trusted?: boolean;
}

/** What an aggregation did. */
export interface HashAggregateStats {
  /** Input rows folded in (raw input only). */
  rows: number;
  /** Groups emitted. */
  groups: number;
  /** Times a table was spilled (at any level). */
  spills: number;
  /** Partial bytes written to the spill store. */
  spilledBytes: number;
  /** Deepest recursion level reached (0: the input table only). */
  maxLevel: number;
}

/**
 * Hash aggregation of binary-row batches within a budget (see the file comment for the algorithm).
 * {@link run} consumes an input once and yields the output batches; {@link close} (idempotent) frees
 * memory and removes spill files at any point.
 *
 * @example
 * const agg = new HashAggregator({ kernels: k, schema: trades, keys: ['sym'],
 *   aggs: [{ op: 'count' }, { op: 'sum', field: 'qty' }, { op: 'avg', field: 'price' }],
 *   budget: 8 << 20, spill: platform.spill });
 * for await (const batch of agg.run(inputBatches)) sink(batch); // batches of agg.outputSchema
 */
export class HashAggregator {
  readonly plan: AggregatePlan;
  readonly stats: HashAggregateStats = { rows: 0, groups: 0, spills: 0, spilledBytes: 0, maxLevel: 0 };
  private readonly k: Kernels;
  private readonly limit: number;
  private readonly reservation: MemoryReservation | undefined;
  private readonly spillSource: SpillStore | SpillStoreFactory;
  private readonly outputBytes: number;
  private readonly partitionBytes: number;
  private readonly operator: string;
  private readonly chunkBytes: number | undefined;
  private readonly trusted: boolean;
  private store: SpillStore | undefined;
  private ownStore = false;
  private readonly files = new Set<SpillFile | SpillWriter>();
  private readonly tables = new Set<AggTable>();
  private inputBytes = 0; // managed bytes of the input batch being folded in
  private started = false;
  private closed: Promise<void> | undefined;

  constructor(opts: HashAggregateOptions) {
    this.k = opts.kernels;
    this.plan = aggregatePlan(opts.schema, opts.keys, opts.aggs);
    this.operator = opts.operator ?? 'HashAggregate';
    this.chunkBytes = opts.chunkBytes;
    this.trusted = opts.trusted === true;
    if (typeof opts.budget === 'number') {
      this.limit = opts.budget;
    } else {
      this.reservation = opts.budget;
      this.limit = opts.budget.budgetBytes;
    }
    this.spillSource = opts.spill;
    this.outputBytes = opts.outputBytes ?? SEGMENT_BYTES;
    // the partition kernel's 16 outputs: one segment in all under small budgets, 16 when there is room
    this.partitionBytes = this.limit >= 64 * SEGMENT_BYTES ? SEGMENT_BYTES : SEGMENT_BYTES / FANOUT;
    const minimum = 5 * SEGMENT_BYTES; // state, directory, chunk, output buffer + partition buffers
    if (this.limit < minimum) {
      throw new MemoryBudgetError(`${this.operator}: a budget of ${formatBytes(this.limit)} is below the ${formatBytes(minimum)} a hash aggregation needs`, {
        operator: this.operator,
      });
    }
  }

  /** Schema of the output batches: group fields ++ one field per aggregate. */
  get outputSchema(): Schema {
    return this.plan.finalSchema;
  }

  /**
   * Aggregates `input` (batches of the input schema) and yields output batches. Closes the operator
   * when it ends, fails, or the consumer stops early.
   */
  async *run(input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    if (this.started) throw new SluiceError(`${this.operator}: run() may be called once`, { domain: 'internal' });
    this.started = true;
    this.reservation?.reserveSegments(Math.floor(this.limit / SEGMENT_BYTES));
    try {
      let any = false;
      for await (const b of this.aggregate(input, 'raw', 0)) {
        any = true;
        yield b;
      }
      if (!any && this.plan.keys.length === 0) {
        // SQL: a global aggregate over no rows is one row (counts 0, everything else NULL)
        const row: Record<string, unknown> = {};
        this.plan.aggs.forEach((a) => (row[a.name] = this.plan.finalSchema.types[this.plan.finalSchema.indexOf(a.name)]!.isNullable ? null : 0));
        this.stats.groups = 1;
        yield encodeBatch(this.plan.finalSchema, [row]);
      }
    } finally {
      await this.close();
    }
  }

  /** Frees the tables and deletes every spill file (closing the store if it is the operator's own). Idempotent. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      for (const t of this.tables) t.close();
      this.tables.clear();
      const pending = [...this.files];
      this.files.clear();
      await Promise.allSettled(pending.map((f) => ('abort' in f ? f.abort() : f.delete())));
      if (this.ownStore) await this.store?.close();
      if (this.reservation) this.reservation.releaseAll();
    })());
  }

  private async spillStore(): Promise<SpillStore> {
    if (this.store) return this.store;
    if ('createSpillStore' in this.spillSource) {
      this.store = await this.spillSource.createSpillStore();
      this.ownStore = true;
    } else {
      this.store = this.spillSource;
    }
    return this.store;
  }

  private newTable(mode: 'raw' | 'merge'): AggTable {
    const reserve = () => this.inputBytes + this.partitionBytes * FANOUT;
    const t: AggTable = new AggTable(this.k, this.plan, mode, {
      outputBytes: this.outputBytes,
      ...(this.chunkBytes !== undefined ? { chunkBytes: this.chunkBytes } : {}),
      // an empty table may always take what one group needs; otherwise stay inside the budget
      canGrow: (bytes) => t.groups === 0 || t.bytes + reserve() + bytes <= this.limit,
    });
    this.tables.add(t);
    return t;
  }

  private dropTable(t: AggTable): void {
    t.close();
    this.tables.delete(t);
  }

  /** Aggregates one input (raw batches, or partials of a spill file) at a recursion level. */
  private async *aggregate(input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, mode: 'raw' | 'merge', level: number): AsyncGenerator<Uint8Array> {
    this.stats.maxLevel = Math.max(this.stats.maxLevel, level);
    const schema = mode === 'raw' ? this.plan.input : this.plan.partialSchema;
    const t = this.newTable(mode);
    // one input buffer for every batch that fits a segment (larger ones get their own, freed after)
    const feed: FeedState = { t, schema, trusted: this.trusted && mode === 'raw', mode, level, writers: undefined, into: this.k.memory.alloc(SEGMENT_BYTES) };
    try {
      // batches held in memory are taken synchronously: no promise per batch unless one spills
      if (Symbol.iterator in input) {
        for (const bytes of input) {
          const p = this.feedBatch(feed, bytes);
          if (p !== undefined) await p;
        }
      } else {
        for await (const bytes of input) {
          const p = this.feedBatch(feed, bytes);
          if (p !== undefined) await p;
        }
      }
      this.k.memory.free(feed.into); // before the merge levels below take their own
      feed.into = 0;
      if (feed.writers === undefined) {
        this.stats.groups += t.groups;
        const out = t.collect(true);
        this.dropTable(t);
        yield* out;
        return;
      }
      const ws = feed.writers;
      await this.spill(t, ws, level);
      this.dropTable(t);
      feed.writers = undefined; // finished below: no longer aborted on failure
      const files: SpillFile[] = [];
      for (const w of ws) {
        const f = await w.finish();
        this.files.delete(w);
        this.files.add(f);
        files.push(f);
      }
      for (const f of files) {
        if (f.batchCount > 0) yield* this.aggregate(f.read(), 'merge', level + 1);
        await f.delete();
        this.files.delete(f);
      }
    } finally {
      if (feed.into !== 0) this.k.memory.free(feed.into);
      this.dropTable(t);
      const writers = feed.writers;
      if (writers) {
        for (const w of writers) this.files.delete(w);
        await Promise.allSettled(writers.map((w) => w.abort()));
      }
    }
  }

  /**
   * Folds one input batch into the table: copied into the reused input buffer (or a buffer of its
   * own when larger than a segment) and validated (the header only when trusted: an unexpected one
   * gets the full validation, and its error). Undefined when it fit; else the promise of spilling the
   * table and folding in the rest.
   */
  private feedBatch(f: FeedState, bytes: Uint8Array): Promise<void> | undefined {
    const mem = this.k.memory;
    const own = bytes.length > SEGMENT_BYTES;
    const b: ManagedBatch = { ptr: own ? mem.alloc(bytes.length) : f.into, byteLength: bytes.length };
    let later: Promise<void> | undefined;
    try {
      mem.u8.set(bytes, b.ptr);
      if (!(f.trusted && this.k.headerMatches(b, f.schema))) this.k.validate(f.schema, b);
      this.inputBytes = (own ? Math.ceil(bytes.length / SEGMENT_BYTES) : 0) * SEGMENT_BYTES + SEGMENT_BYTES;
      if (f.mode === 'raw') this.stats.rows += this.k.rowCount(b);
      const pos = f.t.feed(b);
      if (pos === undefined) return undefined;
      later = this.spillAndFeed(f, b, pos).finally(() => this.unload(b, own));
      return later;
    } finally {
      if (later === undefined) this.unload(b, own);
    }
  }

  /** Spills the table (opening the level's writers on the first spill) until the rest of `b` fits. */
  private async spillAndFeed(f: FeedState, b: ManagedBatch, from: FeedPosition): Promise<void> {
    let pos: FeedPosition | undefined = from;
    while (pos !== undefined) {
      f.writers ??= await this.openWriters(f.level);
      await this.spill(f.t, f.writers, f.level);
      pos = f.t.feed(b, pos);
    }
  }

  private unload(b: ManagedBatch, own: boolean): void {
    if (own) this.k.memory.free(b.ptr);
    this.inputBytes = 0;
  }

  private async openWriters(level: number): Promise<SpillWriter[]> {
    if (level > MAX_LEVEL) {
      throw new MemoryBudgetError(
        `${this.operator}: groups sharing ${4 * (MAX_LEVEL + 1)} hash bits do not fit the budget of ${formatBytes(this.limit)}; raise the budget`,
        { operator: this.operator },
      );
    }
    const store = await this.spillStore();
    const ws: SpillWriter[] = [];
    for (let p = 0; p < FANOUT; p++) {
      const w = await store.create(`agg-L${level}-p${p}`);
      this.files.add(w);
      ws.push(w);
    }
    return ws;
  }

  /** Writes the table's groups as partial rows into the level's partitions by hash bits; clears it. */
  private async spill(t: AggTable, writers: SpillWriter[], level: number): Promise<void> {
    if (t.groups === 0) return;
    this.stats.spills++;
    const nk = this.plan.keys.length;
    const keys = Array.from({ length: nk }, (_, i) => i);
    const parts: Uint8Array[][][] = [];
    t.emit(false, (b, schema) => {
      parts.push(this.k.partition(schema, b, keys, { parallelism: FANOUT, maxParallelism: FANOUT ** (level + 1), outputBytes: this.partitionBytes }));
    });
    t.clear();
    const appends: Promise<void>[] = [];
    for (const byPart of parts) {
      byPart.forEach((batches, p) => {
        for (const b of batches) {
          this.stats.spilledBytes += b.length;
          appends.push(writers[p]!.append(b));
        }
      });
    }
    await Promise.all(appends);
  }
}

/** What HashAggregator's feed of one input needs per batch. */
interface FeedState {
  readonly t: AggTable;
  readonly schema: Schema;
  readonly trusted: boolean;
  readonly mode: 'raw' | 'merge';
  readonly level: number;
  /** The spill writers of the level, opened on its first spill. */
  writers: SpillWriter[] | undefined;
  /** The reused input buffer (one segment; 0 once the input has ended). */
  into: number;
}

/**
 * One-call form of {@link HashAggregator}: aggregates `input` and yields output batches.
 *
 * @example
 * for await (const b of hashAggregate(input, { kernels: k, schema: s, keys: ['k'], aggs: [{ op: 'count' }], budget: 1 << 20, spill: platform.spill })) sink(b);
 */
export function hashAggregate(input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: HashAggregateOptions): AsyncGenerator<Uint8Array> {
  return new HashAggregator(opts).run(input);
}
