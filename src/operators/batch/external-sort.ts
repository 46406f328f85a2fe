// Owns the external sort of batch jobs: sorting an input of unbounded size (binary-row batches) by a
// key spec within a managed-memory budget — sorted runs spilled to the platform's spill store, then a
// k-way merge (several passes when the budget cannot hold one batch of every run at once).
//
// How the budget is spent (everything in whole 32 KiB segments, the unit of the kernels' pool):
//
//   run phase    output buffer of the sort kernel (outputBytes, 1 segment by default)
//              + input batches, packed back to back into segment chunks (a batch larger than a
//                segment gets a chunk of its own)
//              + the sort index, 32 bytes per row (2 × 16: entries and radix scratch)
//              (outside the budget, in the JS heap: the sorted run being written, and the next one
//              once it is sorted while that write finishes — up to twice the budget at the peak.
//              Awaiting the write before sorting the next run halves that but cost 2.9 s of 11 at
//              100M rows; writing straight from managed memory would remove it; neither is done)
//   merge phase  merge state + descriptors (1 segment) + output buffer (outputBytes)
//              + one batch per open run (the largest batch of that run, usually 1 segment)
//              (outside the budget, in the JS heap: each run's next batch, read ahead while the
//              merge works, and up to 8 output batches being written behind it)
//
// When the next batch would not fit, the rows held so far are sorted (Kernels.sort, stable), written
// as one run to the spill store, and their memory is given back. At the end of input a single run that
// never spilled is returned straight from memory; otherwise runs are merged (Kernels.merger, a loser
// tree; ties go to the lower run, and runs are merged in input order, so the whole sort is stable).
// If more runs exist than the budget can hold open at once, consecutive groups are merged into new
// spilled runs first (multi-pass). Spill files are deleted as soon as they are consumed, and all of them
// on success, failure and close().
//
// Cost: each row is copied into managed memory once, sorted (radix over a normalized-key prefix),
// copied out once per pass (run + merge passes), written and read once per spilled pass.

import { BATCH_MAGIC, SEGMENT_BYTES } from '../../../bindings/abi.generated.ts';
import type { KeyRef, Kernels, ManagedBatch, Merger } from '../../../bindings/kernels.ts';
import { CorruptBatchError, type ErrorContext, JobDefinitionError, MemoryBudgetError, SluiceError } from '../../core/errors.ts';
import type { Schema } from '../../core/schema.ts';
import type { SpillFile, SpillReader, SpillStore, SpillStoreFactory, SpillWriter } from '../../platform/types.ts';
import { formatBytes, type MemoryReservation } from '../../runtime/memory-manager.ts';

/** Bytes of sort index per row while a run is being sorted (entries + scratch, see Kernels.sort). */
export const SORT_INDEX_BYTES_PER_ROW = 32;

/** Options of {@link ExternalSorter}. */
export interface ExternalSortOptions {
  /** The kernel instance whose managed memory holds runs and merge buffers. */
  kernels: Kernels;
  /** Schema of every input batch (validated on the way in). */
  schema: Schema;
  /** Sort key: fields by index or name, each optionally `desc` / `nullsFirst` (default nulls last). */
  keys: readonly KeyRef[];
  /**
   * The managed-memory budget: a subtask's {@link MemoryReservation} (reserved while held, released
   * after), or a byte count. Must hold at least two batches plus the buffers (4 segments).
   */
  budget: MemoryReservation | number;
  /**
   * Where runs spill: a store (the sorter deletes its own files, the caller closes the store) or a
   * factory (the sorter creates a store on the first spill and closes it when done).
   */
  spill: SpillStore | SpillStoreFactory;
  /** Capacity of output (and spilled) batches in bytes; default one segment (32 KiB). */
  outputBytes?: number;
  /** Operator name for errors (default `ExternalSort`). */
  operator?: string;
  /** Closes the sorter (deleting its spill files) when aborted. */
  signal?: AbortSignal;
  /**
   * The input batches were made by Sluice itself (a kernel, the batch writer, an operator) or checked
   * once already: only their header (magic, length, schema id) is checked in {@link ExternalSorter.add},
   * not every row. A malformed batch passed as trusted gives wrong output or a WebAssembly trap, not a
   * CorruptBatchError. (Spilled runs read back are the sorter's own: their headers are checked, not their rows.)
   */
  trusted?: boolean;
  /**
   * Yield views into one output buffer instead of copies — of the in-memory sort when everything fits
   * (one run, never spilled; the held rows stay in memory until the last batch is taken), and of the
   * final merge when runs spilled. Each batch is valid until the next is asked for, and only while
   * nothing allocates in the same kernel instance (copy it with `slice()` to keep it). Saves copying
   * every sorted row out of managed memory.
   */
  reuseOutput?: boolean;
}

/** What an external sort did, for tests, metrics and `explain()`. */
export interface ExternalSortStats {
  /** Rows added. */
  rows: number;
  /** Sorted runs produced from the input (1 and `spilledRuns` 0 means it ran in memory). */
  runs: number;
  /** Runs written to the spill store, intermediate merge output included. */
  spilledRuns: number;
  /** Batch bytes written to the spill store. */
  spilledBytes: number;
  /** Merge passes, the final one included (0: no merge). */
  mergePasses: number;
  /** Largest number of runs merged at once. */
  maxFanIn: number;
  /** Most managed-memory bytes the sorter held at once. */
  peakBytes: number;
}

/** The budget as the sorter (and top-n) uses it: whole segments, refused when full. */
export interface SegmentBudget {
  readonly budgetBytes: number;
  readonly available: number; // segments
  tryTake(n: number): boolean;
  give(n: number): void;
  describe(): string;
}

class ByteBudget implements SegmentBudget {
  private used = 0;
  private readonly segments: number;
  constructor(readonly budgetBytes: number) {
    this.segments = Math.floor(budgetBytes / SEGMENT_BYTES);
  }
  get available(): number {
    return this.segments - this.used;
  }
  tryTake(n: number): boolean {
    if (this.used + n > this.segments) return false;
    this.used += n;
    return true;
  }
  give(n: number): void {
    this.used -= n;
  }
  describe(): string {
    return `budget of ${formatBytes(this.budgetBytes)}`;
  }
}

class ReservationBudget implements SegmentBudget {
  constructor(private readonly r: MemoryReservation) {}
  get budgetBytes(): number {
    return this.r.budgetBytes;
  }
  get available(): number {
    return this.r.segmentsAvailable;
  }
  tryTake(n: number): boolean {
    return this.r.tryReserve(n * SEGMENT_BYTES);
  }
  give(n: number): void {
    this.r.releaseSegments(n);
  }
  describe(): string {
    return `managed-memory share of ${formatBytes(this.r.budgetBytes)} (${this.r.operator} subtask ${this.r.subtask})`;
  }
}

/**
 * A byte budget (validated: a whole number of bytes ≥ 0) or a managed-memory reservation as whole
 * segments. `context` is attached to the error for a bad byte budget.
 */
export function segmentBudget(b: MemoryReservation | number, operator: string, context?: ErrorContext): SegmentBudget {
  if (typeof b !== 'number') return new ReservationBudget(b);
  if (!Number.isSafeInteger(b) || b < 0) throw new JobDefinitionError(`${operator}: budget must be a whole number of bytes ≥ 0, got ${b}`, context);
  return new ByteBudget(b);
}

/** A spilled, sorted run: its file and the largest batch in it (what the merge must hold open). */
interface Run {
  file: SpillFile;
  maxBatchBytes: number;
}

const segs = (bytes: number) => Math.max(1, Math.ceil(bytes / SEGMENT_BYTES));

/** Appends a run writer may have in flight (write-behind). */
const WRITE_BEHIND = 8;

/** The reader's next batch, already asked for (marked handled: it is awaited when the merge needs it). */
function readAhead(r: SpillReader): Promise<Uint8Array | undefined> {
  const p = r.nextView(); // a view of the reader's buffer: copied into managed memory before the next read
  p.catch(() => undefined);
  return p;
}

/**
 * Sorts an input of any size by a key within a managed-memory budget, spilling sorted runs and
 * merging them. Feed batches with {@link add} (or hand an iterable to {@link externalSort}), then
 * iterate {@link sorted}. The sort is stable. A sorter is used once; {@link close} (idempotent)
 * frees its memory and deletes its spill files at any point — also on error, and when the consumer
 * of {@link sorted} stops early.
 *
 * Cost: O(n) copies per pass; passes = 1 (in memory), 2 (runs + one merge), or more when the runs
 * outnumber the batches the budget can hold at once (fan-in ≈ budget / 32 KiB).
 *
 * @example
 * const k = await loadKernels({ budgetBytes: 64 << 20 });
 * const platform = await detectPlatform();
 * const sorter = new ExternalSorter({ kernels: k, schema, keys: [{ field: 'price', desc: true }, 'id'],
 *   budget: 16 << 20, spill: platform.spill });
 * try {
 *   for await (const batch of input) await sorter.add(batch);
 *   for await (const batch of sorter.sorted()) sink(batch);  // sorted binary batches
 * } finally {
 *   await sorter.close();
 * }
 */
export class ExternalSorter {
  readonly schema: Schema;
  readonly keys: readonly KeyRef[];
  readonly operator: string;
  private readonly k: Kernels;
  private readonly budget: SegmentBudget;
  private readonly outputBytes: number;
  private readonly outSegs: number;
  private readonly spillOpt: SpillStore | SpillStoreFactory;
  private readonly trusted: boolean;
  private readonly reuseOutput: boolean;
  private store: SpillStore | undefined;
  private ownStore = false;
  private storePromise: Promise<SpillStore> | undefined;

  // the run being accumulated
  private chunks: { ptr: number; segs: number; top: number }[] = [];
  private held: ManagedBatch[] = [];
  private heldRows = 0;
  private heldSegs = 0; // chunks + index + output buffer, as taken from the budget

  private runs: Run[] = [];
  private pendingWrite: Promise<void> | undefined;
  private readonly files = new Set<SpillFile>();
  private readonly writers = new Set<SpillWriter>();
  private readonly readers = new Set<SpillReader>();
  private merger: Merger | undefined;
  private mergerSegs = 0;
  private state: 'adding' | 'sorting' | 'done' | 'closed' = 'adding';
  private closing: Promise<void> | undefined;
  private failure: unknown;
  private taken = 0; // segments held against the budget now
  private readonly _stats: ExternalSortStats = { rows: 0, runs: 0, spilledRuns: 0, spilledBytes: 0, mergePasses: 0, maxFanIn: 0, peakBytes: 0 };

  constructor(opts: ExternalSortOptions) {
    this.k = opts.kernels;
    this.schema = opts.schema;
    this.keys = opts.keys;
    this.operator = opts.operator ?? 'ExternalSort';
    this.spillOpt = opts.spill;
    this.trusted = opts.trusted === true;
    this.reuseOutput = opts.reuseOutput === true;
    this.budget = segmentBudget(opts.budget, this.operator);
    this.outputBytes = Math.floor((opts.outputBytes ?? SEGMENT_BYTES) / 8) * 8;
    if (!(this.outputBytes >= 16)) throw new RangeError(`outputBytes must be ≥ 16, got ${opts.outputBytes}`);
    this.outSegs = segs(this.outputBytes);
    // a merge of two runs: state (1) + output + one batch per run (≥ 1 each); a run: output + batch + index
    const need = 1 + this.outSegs + 2;
    if (this.budget.available < need) {
      throw new MemoryBudgetError(
        `${this.operator}: ${this.budget.describe()} is too small to hold two batches: an external sort needs at least ` +
          `${formatBytes(need * SEGMENT_BYTES)} (${need} segments of ${formatBytes(SEGMENT_BYTES)}) ` +
          `to sort a run and to merge two runs (${formatBytes(this.budget.available * SEGMENT_BYTES)} available)`,
        { operator: this.operator },
      );
    }
    // the keys are checked now, not at the first sort
    if (this.keys.length === 0) throw new JobDefinitionError(`${this.operator}: an external sort needs at least one key field`);
    opts.signal?.addEventListener('abort', () => void this.close(), { once: true });
    if (opts.signal?.aborted) void this.close();
  }

  /** A snapshot of what the sort has done so far. */
  get stats(): ExternalSortStats {
    return { ...this._stats };
  }

  /**
   * Adds one input batch (validated against the schema; CorruptBatchError / SchemaMismatchError
   * otherwise). Spills the rows held so far first if this batch would not fit the budget. The bytes
   * are copied: the caller may reuse them when the promise resolves.
   */
  async add(batch: Uint8Array): Promise<void> {
    this.checkState('add', 'adding');
    try {
      const len = (batch.length + 7) & ~7;
      if (batch.length < 16) throw new CorruptBatchError(`${batch.length} bytes cannot be a batch (header is 16)`, { operator: this.operator });
      const rows = new DataView(batch.buffer, batch.byteOffset, 16).getUint32(8, true); // header rowCount; validated below
      if (rows > (len - 16) / 8) throw new CorruptBatchError(`batch header claims ${rows} rows in ${batch.length} bytes`, { operator: this.operator });
      let need = this.costOf(len, rows);
      if (need > this.budget.available && this.held.length > 0) {
        await this.spillHeld();
        need = this.costOf(len, rows);
      }
      if (!this.take(need)) {
        throw new MemoryBudgetError(
          `${this.operator}: one batch of ${formatBytes(len)} with ${rows} rows needs ${formatBytes(need * SEGMENT_BYTES)} ` +
            `to sort (rows + ${SORT_INDEX_BYTES_PER_ROW} bytes/row of index + output buffer), more than the ${this.budget.describe()}`,
          { operator: this.operator },
        );
      }
      this.heldSegs += need;
      this.place(batch, len, rows);
      this._stats.rows += rows;
    } catch (e) {
      await this.fail(e);
      throw e;
    }
  }

  /**
   * Ends the input and returns the sorted output as batches (each at most `outputBytes` unless one
   * row is larger). Call once. Breaking out of the loop closes the sorter.
   */
  async *sorted(): AsyncGenerator<Uint8Array, void, undefined> {
    this.checkState('sort', 'adding');
    this.state = 'sorting';
    try {
      if (this.runs.length === 0 && this.pendingWrite === undefined && this.reuseOutput) {
        // one run that never spilled, gathered a batch at a time into one buffer
        this._stats.runs = this._stats.rows > 0 ? 1 : 0;
        if (this.held.length > 0) {
          try {
            yield* this.k.sortedViews(this.schema, this.held, this.keys, { outputBytes: this.outputBytes });
          } finally {
            this.freeHeld();
          }
        }
      } else if (this.runs.length === 0 && this.pendingWrite === undefined) {
        // one run that never spilled: sort in memory and hand it out
        const out = this.sortHeld();
        this._stats.runs = out.length > 0 || this._stats.rows > 0 ? 1 : 0;
        for (const b of out) yield b;
      } else {
        if (this.held.length > 0) await this.spillHeld();
        await this.awaitWrite();
        yield* this.mergeAll();
      }
      this.state = 'done';
    } catch (e) {
      await this.fail(e);
      throw e;
    } finally {
      await this.close();
    }
  }

  /**
   * Frees the sorter's managed memory, releases its budget, and deletes its spill files (and closes
   * the spill store if the sorter created it). Idempotent; also what an abort signal does.
   */
  close(): Promise<void> {
    return (this.closing ??= this.doClose());
  }

  /** For `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ── run phase ────────────────────────────────────────────────────────────────────────────────

  /** Segments one more batch costs now: chunk space if it does not fit the open chunk, plus index growth. */
  private costOf(len: number, rows: number): number {
    const last = this.chunks[this.chunks.length - 1];
    const chunk = len > SEGMENT_BYTES ? segs(len) : last !== undefined && last.segs === 1 && last.top + len <= SEGMENT_BYTES ? 0 : 1;
    const idx = (n: number) => (n === 0 ? 0 : segs(SORT_INDEX_BYTES_PER_ROW * n));
    const index = idx(this.heldRows + rows) - idx(this.heldRows);
    return chunk + index + (this.held.length === 0 ? this.outSegs : 0);
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
    // trusted: the header only (an unexpected one gets the full check, and its error)
    const w = ptr >>> 2;
    const u32 = mem.u32;
    if (!(this.trusted && u32[w] === BATCH_MAGIC && u32[w + 1] === batch.length && u32[w + 3] === this.schema.id)) {
      this.k.validate(this.schema, mb); // throws CorruptBatchError / SchemaMismatchError
    }
    if (this.k.rowCount(mb) !== rows) throw new CorruptBatchError('row count changed while copying', { operator: this.operator });
    this.held.push(mb);
    this.heldRows += rows;
  }

  /** Sorts the held rows into JS-heap batches and gives their managed memory back. */
  private sortHeld(): Uint8Array[] {
    if (this.held.length === 0) return [];
    try {
      return this.k.sort(this.schema, this.held, this.keys, { outputBytes: this.outputBytes });
    } finally {
      this.freeHeld();
    }
  }

  private freeHeld(): void {
    for (const c of this.chunks) this.k.memory.free(c.ptr);
    this.chunks = [];
    this.held = [];
    this.heldRows = 0;
    this.give(this.heldSegs);
    this.heldSegs = 0;
  }

  /** Sorts the held rows and writes them as a run; the write overlaps with filling the next run. */
  private async spillHeld(): Promise<void> {
    const sorted = this.sortHeld();
    this._stats.runs++;
    await this.awaitWrite();
    // the file is opened here, while this thread waits anyway, so the run's write is under way before
    // the next fill starts (an open left pending would only complete at the next spill's wait)
    const w = await this.createWriter(`${this.operator}-run-${this._stats.runs - 1}`);
    const p = this.writeTo(w, sorted).then((run) => void this.runs.push(run));
    p.catch(() => undefined); // surfaced by awaitWrite
    this.pendingWrite = p;
  }

  private async awaitWrite(): Promise<void> {
    const p = this.pendingWrite;
    this.pendingWrite = undefined;
    if (p !== undefined) await p;
  }

  private async writeRun(name: string, batches: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Run> {
    return this.writeTo(await this.createWriter(name), batches);
  }

  private async createWriter(name: string): Promise<SpillWriter> {
    const store = await this.spillStore();
    const w = await store.create(name);
    this.writers.add(w);
    return w;
  }

  /** Writes `batches` as one run to `w` and finishes it (aborts it on failure). */
  private async writeTo(w: SpillWriter, batches: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Run> {
    let max = 0;
    // write-behind: up to WRITE_BEHIND appends in flight (each batch is a copy the writer may hold),
    // so producing the next batches overlaps the writes
    const inFlight: Promise<void>[] = [];
    try {
      if (Array.isArray(batches)) {
        // a sorted run, all in the JS heap: one vectored write, which the runtime's I/O threads carry
        // out while this thread fills and sorts the next run (the appends one by one advanced only
        // when the event loop turned: in practice while the next spill waited for this one)
        this.checkOpen();
        const all = batches as readonly Uint8Array[];
        for (const b of all) {
          if (b.length > max) max = b.length;
          this._stats.spilledBytes += b.length;
        }
        inFlight.push(w.appendAll(all));
      } else for await (const b of batches) {
        this.checkOpen();
        if (b.length > max) max = b.length;
        const p = w.append(b);
        p.catch(() => undefined); // awaited below; marked handled so an early failure is not "unhandled"
        inFlight.push(p);
        if (inFlight.length > WRITE_BEHIND) await inFlight.shift();
        this._stats.spilledBytes += b.length;
      }
      for (const p of inFlight.splice(0)) await p;
      const file = await w.finish();
      this.writers.delete(w);
      this.files.add(file);
      this._stats.spilledRuns++;
      return { file, maxBatchBytes: max };
    } catch (e) {
      this.writers.delete(w);
      await Promise.allSettled(inFlight);
      await w.abort().catch(() => undefined);
      throw e;
    }
  }

  private spillStore(): Promise<SpillStore> {
    return (this.storePromise ??= (async () => {
      const s = this.spillOpt;
      if ('createSpillStore' in s) {
        this.store = await s.createSpillStore();
        this.ownStore = true;
        if (this.state === 'closed') await this.store.close();
      } else {
        this.store = s;
      }
      return this.store;
    })());
  }

  // ── merge phase ──────────────────────────────────────────────────────────────────────────────

  /** Segments a merge of `runs` holds: state, output buffer and the largest batch of each run. */
  private mergeCost(runs: readonly Run[]): number {
    let n = 1 + this.outSegs;
    for (const r of runs) n += segs(r.maxBatchBytes);
    return n;
  }

  /** How many of the next runs (from `from`) one merge can hold open within the budget (≥ 2, or all that are left). */
  private fanIn(from: number): number {
    const avail = this.budget.available;
    let n = 1 + this.outSegs;
    let i = from;
    while (i < this.runs.length && n + segs(this.runs[i]!.maxBatchBytes) <= avail) n += segs(this.runs[i++]!.maxBatchBytes);
    const fan = i - from;
    if (fan < Math.min(2, this.runs.length - from)) {
      throw new MemoryBudgetError(
        `${this.operator}: the ${this.budget.describe()} cannot hold one batch of each of two runs to merge them ` +
          `(${formatBytes(this.mergeCost(this.runs.slice(from, from + 2)) * SEGMENT_BYTES)} needed, ${formatBytes(avail * SEGMENT_BYTES)} available)`,
        { operator: this.operator },
      );
    }
    return fan;
  }

  private async *mergeAll(): AsyncGenerator<Uint8Array, void, undefined> {
    // intermediate passes: merge consecutive groups (keeps the sort stable) until one merge can take all
    while (this.runs.length > 1 && this.fanIn(0) < this.runs.length) {
      const next: Run[] = [];
      let from = 0;
      while (from < this.runs.length) {
        const fan = this.runs.length - from === 1 ? 1 : this.fanIn(from);
        const group = this.runs.slice(from, from + fan);
        from += fan;
        if (group.length === 1) {
          next.push(group[0]!);
          continue;
        }
        next.push(await this.writeRun(`${this.operator}-merge-${this._stats.mergePasses}-${next.length}`, this.merge(group)));
      }
      this._stats.mergePasses++;
      this.runs = next;
    }
    const last = this.runs;
    this.runs = [];
    if (last.length > 0) {
      this._stats.mergePasses++;
      yield* this.merge(last, this.reuseOutput);
    }
  }

  /**
   * Merges spilled runs into sorted batches, deleting each run's file when it is used up. With `views`,
   * the batches are views of the merge's output buffer, each valid until the next is asked for (the
   * final merge under `reuseOutput`; an intermediate pass's appends hold their batches, so copies).
   */
  private async *merge(group: readonly Run[], views = false): AsyncGenerator<Uint8Array, void, undefined> {
    this.checkOpen();
    const cost = this.mergeCost(group);
    if (!this.take(cost)) {
      throw new MemoryBudgetError(`${this.operator}: merge of ${group.length} runs needs ${formatBytes(cost * SEGMENT_BYTES)}, more than the ${this.budget.describe()}`, {
        operator: this.operator,
      });
    }
    this.mergerSegs = cost;
    if (group.length > this._stats.maxFanIn) this._stats.maxFanIn = group.length;
    const readers = group.map((r) => r.file.read());
    for (const r of readers) this.readers.add(r);
    // runs this sorter wrote are trusted (headers checked, rows not), as DuckDB and Flink trust their
    // own spill files; the spill reader has already checked each batch's framing
    const m = (this.merger = this.k.merger(this.schema, this.keys, group.length, { outputBytes: this.outputBytes, trusted: true, reuseOutput: views }));
    // read-ahead: each run's next batch is being read while the merge works on the ones it has
    const ahead = readers.map((r) => readAhead(r));
    try {
      const feed = async (i: number) => {
        const b = await ahead[i]!;
        this.checkOpen();
        if (b === undefined) {
          m.end(i);
          this.readers.delete(readers[i]!);
          this.files.delete(group[i]!.file);
          await group[i]!.file.delete();
        } else {
          // copied into managed memory at once (the merge needs it now: the run's last batch is used
          // up), and only then is the reader's buffer free for the next read
          m.pushCopy(i, b);
          ahead[i] = readAhead(readers[i]!);
        }
      };
      for (let i = 0; i < group.length; i++) await feed(i);
      while (!m.done) {
        const out = m.pull();
        for (const b of out) yield b;
        this.checkOpen();
        const need = m.needs;
        if (need !== undefined) await feed(need);
      }
    } finally {
      m.close();
      if (this.merger === m) this.merger = undefined;
      this.give(this.mergerSegs);
      this.mergerSegs = 0;
      for (const r of readers) {
        this.readers.delete(r);
        await r.close().catch(() => undefined);
      }
    }
  }

  // ── bookkeeping ──────────────────────────────────────────────────────────────────────────────

  private take(n: number): boolean {
    if (!this.budget.tryTake(n)) return false;
    this.taken += n;
    const bytes = this.taken * SEGMENT_BYTES;
    if (bytes > this._stats.peakBytes) this._stats.peakBytes = bytes;
    return true;
  }

  private give(n: number): void {
    if (n === 0) return;
    this.budget.give(n);
    this.taken -= n;
  }

  private checkState(what: string, want: 'adding'): void {
    if (this.state !== want) {
      if (this.state === 'closed') throw new SluiceError(`${this.operator}: cannot ${what}: the sorter is closed${this.failure ? ' after a failure' : ''}`, { domain: 'internal', cause: this.failure });
      throw new JobDefinitionError(`${this.operator}: cannot ${what} once sorted() was called (a sorter is used once)`, { operator: this.operator });
    }
  }

  private checkOpen(): void {
    if (this.state === 'closed') throw new SluiceError(`${this.operator}: the sorter was closed`, { domain: 'internal' });
  }

  private async fail(e: unknown): Promise<void> {
    this.failure ??= e;
    await this.close().catch(() => undefined);
  }

  private async doClose(): Promise<void> {
    const wasDone = this.state === 'done';
    this.state = 'closed';
    if (this.held.length > 0 || this.chunks.length > 0) this.freeHeld();
    if (this.merger !== undefined) {
      this.merger.close();
      this.merger = undefined;
      this.give(this.mergerSegs);
      this.mergerSegs = 0;
    }
    const errors: unknown[] = [];
    await this.pendingWrite?.catch(() => undefined);
    this.pendingWrite = undefined;
    for (const r of this.readers) await r.close().catch((e) => errors.push(e));
    this.readers.clear();
    for (const w of this.writers) await w.abort().catch((e) => errors.push(e));
    this.writers.clear();
    for (const f of this.files) await f.delete().catch((e) => errors.push(e));
    this.files.clear();
    this.runs = [];
    if (this.storePromise !== undefined) {
      const store = await this.storePromise.catch(() => undefined);
      if (store !== undefined && this.ownStore) await store.close().catch((e) => errors.push(e));
    }
    if (errors.length > 0 && wasDone) throw errors[0];
  }
}

/**
 * Sorts an iterable of batches within a budget; see {@link ExternalSorter}. The sorter is closed
 * (memory freed, spill files deleted) when the output is consumed, when the consumer stops early,
 * and when the input or the sort fails.
 *
 * @example
 * for await (const batch of externalSort(batches, { kernels: k, schema, keys: ['ts'], budget: 8 << 20, spill: platform.spill })) {
 *   sink(batch);
 * }
 */
export async function* externalSort(
  input: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  opts: ExternalSortOptions,
): AsyncGenerator<Uint8Array, ExternalSortStats, undefined> {
  const sorter = new ExternalSorter(opts);
  try {
    for await (const b of input) await sorter.add(b);
    yield* sorter.sorted();
    return sorter.stats;
  } finally {
    await sorter.close();
  }
}
