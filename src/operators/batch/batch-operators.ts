// Owns the stream operators that put the batch kernels behind the DataStream API: a join (hybrid hash
// or sort-merge), a hash aggregation (group-by, distinct), a partition sort and a top-n. Each encodes
// its input records into binary-row batches (batches cross into WASM, never single records), runs the
// batch operator at end of input within its subtask's share of the job's managed memory, spills to the
// platform's spill store, decodes the result back into JS objects, and removes every temp file on
// success, failure and cancellation. Also: which operators consume managed memory, and the job-setup
// step that divides `managedMemory` among them (`bindManagedMemory`).
//
// Per subtask of such an operator:
//   kernels      one kernel instance (its own linear memory), budget = the subtask's share + slack
//   spill store  created on the first spill only (a temp directory), closed when the operator ends
//   input        sort / top-n / aggregate feed the kernel batch by batch as records arrive; a join
//                must see both inputs whole, so it buffers their encoded batches in the JS heap up to
//                half its share per input and appends the rest to the spill store
//   output       at end of input, the result batches decoded one at a time and handed downstream in
//                chunks of about a batch (`Output.flush`, awaited: it waits while the task's outputs
//                are over their bound), so only a chunk of the result is a JS array at a time

import { SEGMENT_BYTES } from '../../../bindings/abi.generated.ts';
import type { AggSpec } from '../../../bindings/aggregate.ts';
import { loadKernels, type KeyRef, type Kernels } from '../../../bindings/kernels.ts';
import { BatchReader } from '../../core/batch-reader.ts';
import { BatchWriter, encodeBatch } from '../../core/batch-writer.ts';
import { JobDefinitionError, SluiceError } from '../../core/errors.ts';
import type { Schema } from '../../core/schema.ts';
import type { JobGraph } from '../../graph/job-graph.ts';
import type { MaybePromise, OperatorContext, OperatorFactory, Output, StreamOperator } from '../../graph/operator.ts';
import type { JoinKind, LocalJoinStrategy } from '../../graph/planner.ts';
import { detectPlatform } from '../../platform/detect.ts';
import type { Platform, SpillFile, SpillStats, SpillStore, SpillStoreKind, SpillStoreOptions, SpillWriter } from '../../platform/types.ts';
import { userFailure } from '../../runtime/failure.ts';
import { MemoryManager, type MemoryReservation } from '../../runtime/memory-manager.ts';
import { HashAggregator } from './hash-aggregate.ts';
import { RowDecoder, type DecodePart } from './row-decoder.ts';
import { HybridHashJoin } from './hash-join.ts';
import { ExternalSorter } from './external-sort.ts';
import { SortMergeJoin } from './sort-merge-join.ts';
import { TopN } from './top-n.ts';

// ---------------------------------------------------------------------------------------------
// Managed memory: which operators consume it, and the division at job setup

/** How a memory-consuming operator asks for its share (Flink's managed-memory use case). */
export interface MemoryConsumerDecl {
  /** Relative weight of each subtask's share. */
  readonly weight: number;
  /** Fewest 32 KiB segments a subtask needs to make progress. */
  readonly minSegments: number;
}

interface Binding {
  readonly manager: MemoryManager;
  readonly name: string;
}

const consumers = new WeakMap<OperatorFactory, { decl: MemoryConsumerDecl; binding?: Binding }>();

/** Marks the operators `factory` makes as managed-memory consumers; returns `factory`. */
export function declareMemoryConsumer(factory: OperatorFactory, decl: MemoryConsumerDecl): OperatorFactory {
  consumers.set(factory, { decl });
  return factory;
}

/**
 * Job setup: divides the job's managed memory (bytes) among the memory-consuming operators of `graph`
 * by weight and parallelism (runtime/memory-manager.ts), and binds each operator's factory to its
 * shares. Throws MemoryBudgetError when a share is below what an operator needs, naming the budget
 * that would do. Returns the manager (undefined when nothing in the job consumes managed memory).
 *
 * @example
 * const graph = env.getJobGraph();
 * bindManagedMemory(graph, parseMemorySize('256mb'));
 */
export function bindManagedMemory(graph: JobGraph, managedMemoryBytes: number): MemoryManager | undefined {
  const found: { entry: { decl: MemoryConsumerDecl; binding?: Binding }; name: string; parallelism: number }[] = [];
  const names = new Map<string, number>();
  for (const v of graph.vertices) {
    for (const n of v.nodes) {
      const entry = n.factory ? consumers.get(n.factory) : undefined;
      if (entry) {
        found.push({ entry, name: n.name, parallelism: n.parallelism });
        names.set(n.name, (names.get(n.name) ?? 0) + 1);
      }
    }
  }
  if (found.length === 0) return undefined;
  // operator names are unique in the manager: number the ones that repeat
  const seen = new Map<string, number>();
  for (const f of found) {
    if (names.get(f.name)! > 1) {
      const i = (seen.get(f.name) ?? 0) + 1;
      seen.set(f.name, i);
      f.name = `${f.name} #${i}`;
    }
  }
  const manager = MemoryManager.create({
    managedMemory: managedMemoryBytes,
    consumers: found.map((f) => ({ operator: f.name, weight: f.entry.decl.weight, parallelism: f.parallelism, minSegments: f.entry.decl.minSegments })),
  });
  for (const f of found) f.entry.binding = { manager, name: f.name };
  return manager;
}

/** Budget of a subtask of an operator run outside `env.execute` (no job-level division). */
const UNBOUND_BUDGET_BYTES = 64 << 20;

// ---------------------------------------------------------------------------------------------
// Where the operators run: platform, kernels, spill store

/** Runtime settings of the batch operators of one environment (see `configureBatchRuntime`). */
export interface BatchRuntimeSettings {
  /** The platform (spill stores, kernel module); default: detected. Required on workerd. */
  platform?: Platform;
  /** Options of every spill store the operators create (e.g. `dir`, `maxBytes`). */
  spill?: SpillStoreOptions;
}

let detected: Promise<Platform> | undefined;

const pendingCleanups = new Set<Promise<void>>();

/**
 * @internal Resolves when every cleanup started by `close()` of a batch operator (a failed or
 * cancelled job) has finished — spill files deleted. Tests await it before looking for temp files.
 */
export async function batchCleanupSettled(): Promise<void> {
  while (pendingCleanups.size > 0) await Promise.allSettled([...pendingCleanups]);
}

function trackCleanup(p: Promise<void>): void {
  const q = p.catch(() => undefined).finally(() => pendingCleanups.delete(q));
  pendingCleanups.add(q);
}

const EMPTY_STATS: SpillStats = { bytesWritten: 0, batchesWritten: 0, bytesRead: 0, bytesLive: 0, filesLive: 0, filesCreated: 0 };

/** A spill store that makes its directory on the first `create()` (most runs never spill). */
class LazySpillStore implements SpillStore {
  private real: Promise<SpillStore> | undefined;
  private store: SpillStore | undefined;
  private isClosed = false;
  private closing: Promise<void> | undefined;
  constructor(
    private readonly platform: Platform,
    private readonly options: SpillStoreOptions,
  ) {}
  get kind(): SpillStoreKind {
    return this.platform.spill.kind;
  }
  get location(): string {
    return this.store?.location ?? '(not created)';
  }
  get stats(): SpillStats {
    return this.store?.stats ?? EMPTY_STATS;
  }
  get closed(): boolean {
    return this.isClosed;
  }
  async create(name: string): Promise<SpillWriter> {
    if (this.isClosed) throw new SluiceError(`spill store closed before ${name} was created`, { domain: 'internal' });
    this.real ??= this.platform.spill.createSpillStore(this.options).then((s) => (this.store = s));
    const s = await this.real;
    return s.create(name);
  }
  close(): Promise<void> {
    this.isClosed = true;
    return (this.closing ??= (async () => {
      const s = await this.real?.catch(() => undefined);
      await s?.close();
    })());
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Records → batches

/** Encodes records into batches of about one segment, across calls; reports failures with the record index. */
class RecordEncoder {
  private w: BatchWriter | undefined;
  constructor(
    private readonly schema: Schema,
    private readonly operator: string,
    private readonly subtask: number,
    /** A non-nullable bool field to set on every record (presence marker of an outer join side). */
    private readonly marker?: string,
  ) {}

  private writer(): BatchWriter {
    return (this.w ??= new BatchWriter(this.schema, new ArrayBuffer(SEGMENT_BYTES), { operator: this.operator, subtask: this.subtask, oversizedRow: 'return-false' }));
  }

  /** Encodes `records` (input indices from `firstIndex`); full batches go to `full`. */
  encode(records: readonly unknown[], firstIndex: number, full: Uint8Array[]): void {
    const w = this.writer();
    const marker = this.marker;
    for (let i = 0; i < records.length; i++) {
      let r = records[i] as Record<string, unknown>;
      if (r === null || typeof r !== 'object') {
        throw new JobDefinitionError(`expected an object with the fields of ${this.schema}, got ${r === null ? 'null' : typeof r}`, {
          operator: this.operator,
          subtask: this.subtask,
          recordIndex: firstIndex + i,
        });
      }
      if (marker !== undefined) {
        r = Object.create(r) as Record<string, unknown>;
        r[marker] = true;
      }
      if (w.write(r, firstIndex + i)) continue;
      if (w.rowCount > 0) {
        full.push(w.bytes(w.finish()));
        w.begin(new ArrayBuffer(SEGMENT_BYTES));
        if (w.write(r, firstIndex + i)) continue;
      }
      // one row larger than a segment: a batch of its own
      full.push(encodeBatch(this.schema, [r], { operator: this.operator, subtask: this.subtask, startIndex: firstIndex + i, initialBytes: 2 * SEGMENT_BYTES }));
    }
  }

  /** The partly filled batch, if any. */
  flush(full: Uint8Array[]): void {
    const w = this.w;
    if (w && w.rowCount > 0) {
      full.push(w.bytes(w.finish()));
      w.begin(new ArrayBuffer(SEGMENT_BYTES));
    }
  }
}

/**
 * One input of a join, held until the other has ended too: encoded batches in the JS heap up to
 * `capBytes`, the rest appended to a spill file. Read back once, in arrival order; the batches read
 * from the file are validated (BatchReader) before they are handed on, as the join takes them trusted.
 */
class InputBuffer {
  private heap: Uint8Array[] = [];
  private heapBytes = 0;
  private writer: SpillWriter | undefined;
  private file: SpillFile | undefined;
  bytes = 0;
  constructor(
    private readonly capBytes: number,
    private readonly store: SpillStore,
    private readonly name: string,
    private readonly schema: Schema,
    private readonly ctx: { operator: string; subtask: number },
  ) {}

  async add(batches: readonly Uint8Array[]): Promise<void> {
    for (const b of batches) {
      this.bytes += b.length;
      if (this.writer === undefined && this.heapBytes + b.length <= this.capBytes) {
        this.heap.push(b);
        this.heapBytes += b.length;
        continue;
      }
      this.writer ??= await this.store.create(this.name);
      await this.writer.append(b);
    }
  }

  async seal(): Promise<void> {
    if (this.writer) {
      this.file = await this.writer.finish();
      this.writer = undefined;
    }
  }

  /** The batches, heap first (released as they are read), then the spilled ones. */
  async *batches(): AsyncGenerator<Uint8Array> {
    while (this.heap.length > 0) {
      const b = this.heap.shift()!;
      this.heapBytes -= b.length;
      yield b;
    }
    if (this.file) {
      let reader: BatchReader | undefined;
      for await (const b of this.file.read()) {
        // the file was written by us, but a disk can corrupt it: the whole check, once, here
        reader = reader ? reader.reset(b) : new BatchReader(this.schema, b, this.ctx);
        yield b;
      }
    }
  }

  async dispose(): Promise<void> {
    this.heap = [];
    this.heapBytes = 0;
    const w = this.writer;
    const f = this.file;
    this.writer = undefined;
    this.file = undefined;
    await Promise.allSettled([w?.abort(), f?.delete()]);
  }
}

/**
 * Hands batches pushed by the operator to a consumer that pulls them (an operator's `run(input)`),
 * one at a time: `push` resolves once the consumer has taken the batch and asks for the next one, so
 * nothing piles up in between.
 */
class BatchPump {
  private queue: Uint8Array[] = [];
  private ended = false;
  private wake: (() => void) | undefined;
  private idle: (() => void) | undefined;

  readonly source: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => this.pull() };

  private async *pull(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const b = this.queue.shift();
      if (b !== undefined) {
        yield b;
        continue;
      }
      if (this.ended) return;
      const idle = this.idle;
      this.idle = undefined;
      idle?.();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Queues batches; resolves when the consumer has taken all of them. */
  push(batches: readonly Uint8Array[]): Promise<void> {
    if (batches.length === 0) return Promise.resolve();
    const drained = new Promise<void>((resolve) => (this.idle = resolve));
    this.queue.push(...batches);
    this.signal();
    return drained;
  }

  end(): void {
    this.ended = true;
    this.signal();
  }
}

// ---------------------------------------------------------------------------------------------
// The operators

/** What every batch operator is configured with, besides its own settings. */
export interface BatchOperatorBase {
  /** The environment's runtime settings (read when the operator starts). */
  readonly settings: () => BatchRuntimeSettings;
}

/** The shared life cycle: memory share, kernels, lazy spill store, cleanup on every path. */
abstract class BlockingBatchOperator implements StreamOperator {
  protected operator = '';
  protected subtask = 0;
  protected budgetBytes = UNBOUND_BUDGET_BYTES;
  protected reservation: MemoryReservation | undefined;
  protected kernels: Kernels | undefined;
  protected store: LazySpillStore | undefined;
  private starting: Promise<void> | undefined;
  private disposing: Promise<void> | undefined;
  protected closed = false;
  protected ctx: OperatorContext | undefined;

  constructor(
    protected readonly base: BatchOperatorBase,
    private readonly factoryRef: { factory?: OperatorFactory },
  ) {}

  open(ctx: OperatorContext): void {
    this.ctx = ctx;
    this.operator = ctx.operatorName;
    this.subtask = ctx.subtaskIndex;
    if (ctx.runtimeMode !== 'batch') {
      throw new JobDefinitionError(`${ctx.operatorName} runs in batch mode only (it emits at end of input); create the environment with runtimeMode: 'batch'`, {
        operator: ctx.operatorName,
      });
    }
    const binding = this.factoryRef.factory ? consumers.get(this.factoryRef.factory)?.binding : undefined;
    if (binding) {
      this.reservation = binding.manager.reservation(binding.name, ctx.subtaskIndex);
      this.budgetBytes = this.reservation.budgetBytes;
    }
  }

  abstract processBatch(batch: readonly unknown[], out: Output, firstIndex: number): void | Promise<void>;

  /** Loads the kernels and makes the spill store (once). */
  protected start(): Promise<void> {
    return (this.starting ??= (async () => {
      const settings = this.base.settings();
      const platform = settings.platform ?? (await (detected ??= detectPlatform()));
      const module = await platform.loadKernelModule();
      if (this.closed) return;
      // slack over the share: descriptors and scratch the kernels keep outside the operators' accounting
      this.kernels = await loadKernels({ ...(module ? { module } : {}), budgetBytes: this.budgetBytes + 8 * SEGMENT_BYTES });
      this.store = new LazySpillStore(platform, settings.spill ?? {});
      await this.started();
    })());
  }

  /** Called once the kernels and the store exist. */
  protected async started(): Promise<void> {}

  /** Frees the operator's parts (batch operators, buffers); called once. */
  protected abstract release(): Promise<void>;

  /** Releases everything and closes the spill store (idempotent). */
  protected dispose(): Promise<void> {
    return (this.disposing ??= (async () => {
      try {
        await this.release();
      } finally {
        await this.store?.close();
        this.reservation?.releaseAll();
        this.kernels = undefined;
      }
    })());
  }

  /** Runs `body` (the end-of-input work) and disposes after it, whatever happens. */
  protected async finishing(body: () => Promise<void>): Promise<void> {
    try {
      await this.start();
      if (!this.closed) await body();
    } finally {
      await this.dispose();
    }
  }

  close(): void {
    this.closed = true;
    trackCleanup(this.dispose());
  }

  protected fail(e: unknown, recordIndex?: number): never {
    throw userFailure(e, { operator: this.operator, subtask: this.subtask, ...(recordIndex !== undefined ? { recordIndex } : {}) });
  }
}

/** A decoder of whole rows of `schema` (each row one object with the schema's fields). */
function rowsDecoder(schema: Schema, ctx: OperatorContext): RowDecoder {
  return new RowDecoder(schema, [{ fields: schema.names.map((_, i) => i), names: schema.names }], { operator: ctx.operatorName, subtask: ctx.subtaskIndex });
}

/** An output that may hand what was pushed so far downstream before the call returns (`Output.flush`). */
type FlushableOutput = Output & { flush?(): MaybePromise };

/**
 * Fewest rows pushed between two flushes of a blocking operator's result: a kernel output batch (one
 * segment) usually holds more; smaller batches are gathered so that downstream batches are not tiny.
 */
export const FLUSH_MIN_ROWS = 256;

/**
 * Emits a result given as binary batches (written by the kernels: trusted): each batch is decoded
 * (each row's objects handed to `emit`, which pushes to `out`) before the next is asked for, so views
 * of a `reuseOutput` producer are read in time; once at least {@link FLUSH_MIN_ROWS} rows are pending
 * they are flushed downstream (awaited: the flush waits while the task's outputs are over their
 * bound). Stops when `stopped()` turns true.
 * (A push into a channel wakes its consumer's task, so the consumer drains while this step waits.)
 */
async function emitBatches(
  batches: AsyncIterable<Uint8Array>,
  decoder: RowDecoder,
  out: Output,
  emit: (a: any, b: any) => void,
  stopped: () => boolean,
): Promise<void> {
  const flushable = out as FlushableOutput;
  let pending = 0;
  for await (const b of batches) {
    if (stopped()) break;
    pending += decoder.decode(b, emit);
    if (pending >= FLUSH_MIN_ROWS && flushable.flush !== undefined) {
      pending = 0;
      const r = flushable.flush();
      if (r !== undefined) await r;
    }
  }
}

// ── join ────────────────────────────────────────────────────────────────────────────────────

/** One side of a join as the operator sees it. */
export interface JoinSideConfig {
  /** Schema records are encoded with (the stream's schema, plus the presence marker if any). */
  readonly schema: Schema;
  readonly keys: readonly string[];
  /** Name of a presence marker field appended to the schema (set on every record). */
  readonly marker?: string;
}

/** How a join's output rows become records. */
export type JoinEmit =
  | { readonly kind: 'rows' }
  | {
      readonly kind: 'with';
      readonly fn: (left: any, right: any) => unknown;
      /** Output field of each left / right field (in the side's schema order, marker excluded). */
      readonly leftFields: readonly (readonly [name: string, out: string])[];
      readonly rightFields: readonly (readonly [name: string, out: string])[];
      /** Output fields whose null means the side is missing (a non-nullable field, the marker, or every key field). */
      readonly leftPresence?: readonly string[];
      readonly rightPresence?: readonly string[];
    };

/** Configuration of a {@link BatchJoinOperator}. */
export interface JoinOperatorConfig extends BatchOperatorBase {
  readonly type: JoinKind;
  readonly left: JoinSideConfig;
  readonly right: JoinSideConfig;
  readonly local: LocalJoinStrategy;
  /** `smaller`: the input with fewer bytes, decided at run time (the plan had no estimates). */
  readonly buildSide: 'left' | 'right' | 'smaller';
  readonly sorted: { readonly left: boolean; readonly right: boolean };
  readonly order: readonly { readonly desc: boolean; readonly nullsFirst: boolean }[];
  /** Output schema (both local strategies give the same). */
  readonly output: Schema;
  readonly emit: JoinEmit;
}

/**
 * A join of two inputs in batch mode: both inputs are encoded and held (heap, then spill store) until
 * both have ended, then joined by {@link HybridHashJoin} or {@link SortMergeJoin} within the subtask's
 * memory share.
 */
export class BatchJoinOperator extends BlockingBatchOperator {
  private encL: RecordEncoder | undefined;
  private encR: RecordEncoder | undefined;
  private bufL: InputBuffer | undefined;
  private bufR: InputBuffer | undefined;
  private join: { close(): Promise<void> } | undefined;

  constructor(
    private readonly cfg: JoinOperatorConfig,
    factoryRef: { factory?: OperatorFactory },
  ) {
    super(cfg, factoryRef);
  }

  override open(ctx: OperatorContext): void {
    super.open(ctx);
    this.encL = new RecordEncoder(this.cfg.left.schema, this.operator, this.subtask, this.cfg.left.marker);
    this.encR = new RecordEncoder(this.cfg.right.schema, this.operator, this.subtask, this.cfg.right.marker);
  }

  protected override async started(): Promise<void> {
    const cap = Math.max(SEGMENT_BYTES, Math.floor(this.budgetBytes / 2));
    const ctx = { operator: this.operator, subtask: this.subtask };
    this.bufL = new InputBuffer(cap, this.store!, 'join-left-input', this.cfg.left.schema, ctx);
    this.bufR = new InputBuffer(cap, this.store!, 'join-right-input', this.cfg.right.schema, ctx);
  }

  private add(enc: RecordEncoder, side: 'left' | 'right', batch: readonly unknown[], firstIndex: number): void | Promise<void> {
    const full: Uint8Array[] = [];
    enc.encode(batch, firstIndex, full);
    if (full.length === 0) return;
    return this.start().then(() => (side === 'left' ? this.bufL : this.bufR)?.add(full));
  }

  processBatch(batch: readonly unknown[], _out: Output, firstIndex: number): void | Promise<void> {
    return this.add(this.encL!, 'left', batch, firstIndex);
  }

  processBatch2(batch: readonly unknown[], _out: Output, firstIndex: number): void | Promise<void> {
    return this.add(this.encR!, 'right', batch, firstIndex);
  }

  endInput(out: Output): Promise<void> {
    return this.finishing(async () => {
      const c = this.cfg;
      for (const [enc, buf] of [[this.encL!, this.bufL!], [this.encR!, this.bufR!]] as const) {
        const rest: Uint8Array[] = [];
        enc.flush(rest);
        await buf.add(rest);
        await buf.seal();
      }
      const buildSide = c.buildSide === 'smaller' ? (this.bufL!.bytes < this.bufR!.bytes ? 'left' : 'right') : c.buildSide;
      // the batches come from our own writer: trusted (those read back from a spill file were validated by the InputBuffer)
      const left = { schema: c.left.schema, keys: c.left.keys, batches: this.bufL!.batches(), estimatedBytes: this.bufL!.bytes, trusted: true };
      const right = { schema: c.right.schema, keys: c.right.keys, batches: this.bufR!.batches(), estimatedBytes: this.bufR!.bytes, trusted: true };
      const common = { kernels: this.kernels!, spill: this.store!, type: c.type, left, right, buildSide, budgetBytes: this.budgetBytes, ...(this.reservation ? { reservation: this.reservation } : {}) };
      const join: AsyncIterable<Uint8Array> & { close(): Promise<void>; schema: Schema } =
        c.local === 'sort-merge'
          ? new SortMergeJoin({
              ...common,
              left: { ...left, sorted: c.sorted.left },
              right: { ...right, sorted: c.sorted.right },
              order: c.order,
              operator: this.operator,
            })
          : // each output batch is decoded before the next is asked for: views into the output buffers do
            new HybridHashJoin({ ...common, reuseOutput: true });
      this.join = join;
      if (join.schema.id !== c.output.id || join.schema.names.join() !== c.output.names.join()) {
        throw new SluiceError(`${this.operator}: join output ${join.schema} differs from the planned ${c.output}`, { domain: 'internal' });
      }
      const { decoder, emit } = this.emitter(out);
      await emitBatches(join, decoder, out, emit, () => this.closed);
    });
  }

  /**
   * The per-row emission: the joined row itself, or `fn(left, right)` with each side decoded straight
   * from the joined row into its own object (null if missing) — no joined-row object in between.
   */
  private emitter(out: Output): { decoder: RowDecoder; emit: (a: any, b: any) => void } {
    const e = this.cfg.emit;
    const output = this.cfg.output;
    if (e.kind === 'rows') return { decoder: rowsDecoder(output, this.ctx!), emit: (row) => out.push(row) };
    const at = (name: string) => {
      const i = output.indexOf(name);
      if (i < 0) throw new SluiceError(`${this.operator}: no field ${name} in the join output ${output}`, { domain: 'internal' });
      return i;
    };
    const part = (fields: readonly (readonly [string, string])[], presence: readonly string[] | undefined): DecodePart => ({
      fields: fields.map(([, o]) => at(o)),
      names: fields.map(([n]) => n),
      ...(presence ? { presence: presence.map(at) } : {}),
    });
    const decoder = new RowDecoder(output, [part(e.leftFields, e.leftPresence), part(e.rightFields, e.rightPresence)], { operator: this.operator, subtask: this.subtask });
    const fn = e.fn;
    let index = 0;
    const emit = (l: unknown, r: unknown): void => {
      let v: unknown;
      try {
        v = fn(l, r);
      } catch (err) {
        this.fail(err, index);
      }
      index++;
      out.push(v);
    };
    return { decoder, emit };
  }

  protected async release(): Promise<void> {
    const j = this.join;
    this.join = undefined;
    await Promise.allSettled([j?.close(), this.bufL?.dispose(), this.bufR?.dispose()]);
  }
}

/** Fewest segments a join subtask needs (HybridHashJoin 8; SortMergeJoin 12 + 4 per input it sorts). */
export function joinMinSegments(local: LocalJoinStrategy, sorted: { left: boolean; right: boolean }): number {
  if (local === 'hybrid-hash') return 8;
  return 12 + 4 * ((sorted.left ? 0 : 1) + (sorted.right ? 0 : 1));
}

// ── aggregate ───────────────────────────────────────────────────────────────────────────────

/** Configuration of a {@link BatchAggregateOperator}. */
export interface AggregateOperatorConfig extends BatchOperatorBase {
  readonly schema: Schema;
  readonly keys: readonly string[];
  readonly aggs: readonly AggSpec[];
  readonly output: Schema;
}

/** Hash aggregation (group-by with count/sum/min/max/avg, or distinct) fed batch by batch as records arrive. */
export class BatchAggregateOperator extends BlockingBatchOperator {
  private enc: RecordEncoder | undefined;
  private agg: HashAggregator | undefined;
  private pump: BatchPump | undefined;
  private results: AsyncIterator<Uint8Array> | undefined;
  private first: Promise<IteratorResult<Uint8Array>> | undefined;

  constructor(
    private readonly cfg: AggregateOperatorConfig,
    factoryRef: { factory?: OperatorFactory },
  ) {
    super(cfg, factoryRef);
  }

  override open(ctx: OperatorContext): void {
    super.open(ctx);
    this.enc = new RecordEncoder(this.cfg.schema, this.operator, this.subtask);
  }

  protected override async started(): Promise<void> {
    const c = this.cfg;
    this.agg = new HashAggregator({
      kernels: this.kernels!,
      schema: c.schema,
      keys: c.keys,
      aggs: c.aggs,
      budget: this.reservation ?? this.budgetBytes,
      spill: this.store!,
      operator: this.operator,
      trusted: true, // batches of our own writer
    });
    this.pump = new BatchPump();
    this.results = this.agg.run(this.pump.source)[Symbol.asyncIterator]();
    // the aggregation pulls input as it is pushed; its first result comes after the input ends
    this.first = this.results.next();
    this.first.catch(() => undefined);
  }

  private feed(batches: Uint8Array[]): Promise<void> {
    return this.start().then(() => {
      if (this.closed) return;
      // a failure of the aggregation surfaces through `first`
      return Promise.race([this.pump!.push(batches), this.first!.then(() => undefined)]);
    });
  }

  processBatch(batch: readonly unknown[], _out: Output, firstIndex: number): void | Promise<void> {
    const full: Uint8Array[] = [];
    this.enc!.encode(batch, firstIndex, full);
    if (full.length > 0) return this.feed(full);
  }

  endInput(out: Output): Promise<void> {
    return this.finishing(async () => {
      const rest: Uint8Array[] = [];
      this.enc!.flush(rest);
      await this.feed(rest);
      this.pump!.end();
      // the results, whose first step was taken when the aggregation started (release() ends them)
      const first = this.first!;
      const results = this.results!;
      const batches = (async function* () {
        for (let r = await first; !r.done; r = await results.next()) yield r.value;
      })();
      await emitBatches(batches, rowsDecoder(this.cfg.output, this.ctx!), out, (row) => out.push(row), () => this.closed);
    });
  }

  protected async release(): Promise<void> {
    this.pump?.end();
    const results = this.results;
    this.results = undefined;
    await Promise.allSettled([results?.return?.(undefined), this.agg?.close()]);
  }
}

// ── sort and top-n ──────────────────────────────────────────────────────────────────────────

/** Configuration of a {@link BatchSortOperator}. */
export interface SortOperatorConfig extends BatchOperatorBase {
  readonly schema: Schema;
  readonly keys: readonly KeyRef[];
  /** Set for a top-n: rows [offset, offset + limit) of the sorted input. */
  readonly limit?: number;
  readonly offset?: number;
}

/** Sorts its partition (ExternalSorter), or keeps its top n rows (TopN); fed as records arrive. */
export class BatchSortOperator extends BlockingBatchOperator {
  private enc: RecordEncoder | undefined;
  private sorter: ExternalSorter | TopN | undefined;

  constructor(
    private readonly cfg: SortOperatorConfig,
    factoryRef: { factory?: OperatorFactory },
  ) {
    super(cfg, factoryRef);
  }

  override open(ctx: OperatorContext): void {
    super.open(ctx);
    this.enc = new RecordEncoder(this.cfg.schema, this.operator, this.subtask);
  }

  protected override async started(): Promise<void> {
    const c = this.cfg;
    // batches of our own writer: trusted (header checked only)
    const common = { kernels: this.kernels!, schema: c.schema, keys: c.keys, budget: this.reservation ?? this.budgetBytes, spill: this.store!, operator: this.operator, trusted: true };
    this.sorter =
      c.limit === undefined
        ? // each sorted batch is decoded before the next is asked for, and nothing else allocates in this
          // operator's kernel instance meanwhile: the sort (in memory, or its final merge) may hand out views of its output buffer
          new ExternalSorter({ ...common, reuseOutput: true })
        : new TopN({ ...common, limit: c.limit, offset: c.offset ?? 0 });
  }

  private async feed(batches: Uint8Array[]): Promise<void> {
    await this.start();
    for (const b of batches) {
      if (this.closed) return;
      await this.sorter!.add(b);
    }
  }

  processBatch(batch: readonly unknown[], _out: Output, firstIndex: number): void | Promise<void> {
    const full: Uint8Array[] = [];
    this.enc!.encode(batch, firstIndex, full);
    if (full.length > 0) return this.feed(full);
  }

  endInput(out: Output): Promise<void> {
    return this.finishing(async () => {
      const rest: Uint8Array[] = [];
      this.enc!.flush(rest);
      await this.feed(rest);
      await emitBatches(this.sorter!.sorted(), rowsDecoder(this.cfg.schema, this.ctx!), out, (row) => out.push(row), () => this.closed);
    });
  }

  protected async release(): Promise<void> {
    await this.sorter?.close();
  }
}

/**
 * A factory whose operators know it (to find their memory share), declared a memory consumer.
 * `make(ref)` creates an operator given the reference to the factory itself.
 */
export function batchOperatorFactory(decl: MemoryConsumerDecl, make: (ref: { factory?: OperatorFactory }) => StreamOperator): OperatorFactory {
  const ref: { factory?: OperatorFactory } = {};
  const factory: OperatorFactory = () => make(ref);
  ref.factory = factory;
  return declareMemoryConsumer(factory, decl);
}
