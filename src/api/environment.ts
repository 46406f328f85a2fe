// Owns StreamEnvironment: the entry point that holds job-wide settings, creates sources, records the
// sinks of the job being built, and turns them into a plan or an executed job.

import { JobDefinitionError } from '../core/errors.ts';
import { collectionSource, generatorSource } from '../connectors/collection.ts';
import { csvSource, type CsvOptions } from '../connectors/csv.ts';
import { RejectedRecord, platformFiles, type SourceInput, type TextSourceSpec } from '../connectors/files.ts';
import { ndjsonSource, type NdjsonOptions } from '../connectors/ndjson.ts';
import type { Fields, InferRow } from '../core/schema.ts';
import type { FileAccess } from '../platform/types.ts';
import { buildExecutionGraph } from '../graph/execution-graph.ts';
import { explainJobGraph } from '../graph/explain.ts';
import { buildJobGraph, type JobGraph } from '../graph/job-graph.ts';
import type { RuntimeMode, SourceSpec } from '../graph/operator.ts';
import { buildStreamGraph, checkJobConfig, checkParallelism, type JobConfig } from '../graph/stream-graph.ts';
import type { SinkTransformation, SourceTransformation } from '../graph/transformation.ts';
import { executeGraph } from '../runtime/executor.ts';
import { type ProcessingClock, SystemClock } from '../runtime/clock.ts';
import { liveMetrics } from '../runtime/job-result.ts';
import type { Task } from '../runtime/task.ts';
import type { GeneratorOptions } from '../connectors/collection.ts';
import { JobClient } from './job-client.ts';
import type { JobResult } from '../runtime/job-result.ts';
import { SingleOutputStreamOperator } from './datastream.ts';
import type { SourceOptions } from './types.ts';
// batch API: managed memory, and what sources tell the batch planner (schema, size)
import { recordStreamFacts } from '../graph/planner.ts';
import { bindManagedMemory } from '../operators/batch/batch-operators.ts';
import { parseMemorySize, type MemorySize } from '../runtime/memory-manager.ts';
import { checkBufferTimeout, DEFAULT_BUFFER_TIMEOUT_MS } from '../runtime/network/output-flusher.ts';
import { detectPlatform } from '../platform/detect.ts';
import { memorySpill } from '../platform/spill-memory.ts';
import type { SpillStoreFactory } from '../platform/types.ts';

/** Source options shared by `readCsv` / `readNdjson`. */
export interface FileSourceOptions {
  /** Display name of the source (default `Source: CSV(<path>)` / `Source: NDJSON(<path>)`); also names a non-file input in errors. */
  name?: string;
  /** Parallel readers; several paths are split over them in contiguous slices (one path: one reader). */
  parallelism?: number;
  /** Where paths are opened (default: the detected platform's `files`). */
  platform?: { readonly files?: FileAccess };
}

/** A file source's records, plus (with `onError: 'side-output'`) the stream of rejected records. */
export type StreamWithRejected<T> = SingleOutputStreamOperator<T> & {
  /** Records that could not be read (source, line, field, reason, raw text). Give it a sink, or they are dropped. */
  readonly rejected: SingleOutputStreamOperator<RejectedRecord>;
};

/** Options of {@link StreamEnvironment.create}. */
export interface EnvironmentOptions {
  /** Default parallelism of every operator (default 1). */
  parallelism?: number;
  /** Number of key groups: the upper bound of any parallelism, fixed for the life of keyed state (default 128). */
  maxParallelism?: number;
  /** `streaming` (default): keyed aggregates emit per record. `batch`: only final results per key. */
  runtimeMode?: RuntimeMode;
  /** Largest number of records per batch between operators that are not chained (default 1024). */
  batchSize?: number;
  /**
   * Processing time of the job: periodic watermarks, idleness, processing-time timers, rate limits,
   * state TTL. Default: the system clock. Tests inject a `ManualClock` to make time deterministic.
   */
  clock?: ProcessingClock;
  /**
   * Managed memory of each job: what batch operators (joins, aggregations, sorts, top-n) may hold in
   * their kernels' memory, divided among them by weight and parallelism; beyond it they spill.
   * Bytes or a size like `'512mb'` (default `'256mb'`).
   */
  managedMemory?: MemorySize;
  /**
   * How long a partly filled network buffer may wait before it is sent to a subtask on another
   * worker thread (ms; default 100, as Flink): the latency/throughput knob of jobs run on workers
   * (`defineJob(...).run({ workers })`). 0 sends after every batch; -1 only when a buffer is full.
   * Channels between subtasks of one thread pass batches at once and ignore it.
   */
  bufferTimeoutMs?: number;
  /**
   * How batch mode exchanges records between stages (Flink's `execution.batch-shuffle-mode`):
   * `'blocking'` (default) — a consumer stage starts when its producers have finished, each exchange
   * holding its records in memory up to its share of `managedMemory` and spilling the rest; or
   * `'pipelined'` — records flow as they are produced, as in streaming mode. Exchanges between worker
   * threads are pipelined either way.
   */
  batchShuffleMode?: 'blocking' | 'pipelined';
}

/** @internal A sink of the job being built: its transformation, what to call when the job is done, what collect() fills. */
export interface JobSink {
  readonly t: SinkTransformation;
  readonly onFinished?: (() => void) | undefined;
  readonly collected?: unknown[] | undefined;
}

const DEFAULT_JOB_NAME = 'Sluice job';

/** Spill stores of the platform running the job, detected on first use (the heap where there is no file system). */
const platformSpill: SpillStoreFactory = {
  kind: 'memory',
  async createSpillStore(options) {
    let platform;
    try {
      platform = await detectPlatform();
    } catch {
      return memorySpill.createSpillStore(options);
    }
    return platform.spill.createSpillStore(options);
  },
};
/** Default managed memory of a job (`EnvironmentOptions.managedMemory`). */
const DEFAULT_MANAGED_MEMORY = '256mb';

/**
 * Where a job is defined and run, as Flink's StreamExecutionEnvironment: create sources, transform
 * them, add sinks, then `execute()`.
 *
 * @example
 * const env = StreamEnvironment.create({ parallelism: 2, runtimeMode: 'batch' });
 * const totals = env
 *   .fromCollection([{ sym: 'A', px: 1 }, { sym: 'B', px: 2 }, { sym: 'A', px: 3 }])
 *   .keyBy('sym')
 *   .sum('px')
 *   .collect();
 * const result = await env.execute('totals');
 * console.log(totals.results, result.durationMs);
 */
export class StreamEnvironment {
  private ids = 0;
  private sinks: JobSink[] = [];
  /** Side outputs that must have a sink whenever their source is part of the job. */
  private requiredOutputs: { source: number; output: number; what: string }[] = [];
  private parallelism: number;
  private maxParallelism: number;
  private runtimeMode: RuntimeMode;
  private readonly batchSize: number;
  private readonly clock: ProcessingClock | undefined;
  private readonly managedMemory: number;
  private readonly bufferTimeoutMs: number;
  private readonly batchShuffleMode: 'blocking' | 'pipelined';

  private constructor(opts: EnvironmentOptions) {
    this.parallelism = opts.parallelism ?? 1;
    this.maxParallelism = opts.maxParallelism ?? 128;
    this.runtimeMode = opts.runtimeMode ?? 'streaming';
    this.batchSize = opts.batchSize ?? 1024;
    this.clock = opts.clock;
    this.managedMemory = parseMemorySize(opts.managedMemory ?? DEFAULT_MANAGED_MEMORY);
    this.bufferTimeoutMs = checkBufferTimeout(opts.bufferTimeoutMs ?? DEFAULT_BUFFER_TIMEOUT_MS);
    this.batchShuffleMode = opts.batchShuffleMode ?? 'blocking';
    if (this.batchShuffleMode !== 'blocking' && this.batchShuffleMode !== 'pipelined') {
      throw new JobDefinitionError(`batchShuffleMode must be 'blocking' or 'pipelined', got ${String(this.batchShuffleMode)}`);
    }
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new JobDefinitionError(`batchSize must be an integer >= 1, got ${this.batchSize}`);
    }
    checkJobConfig(this.config(DEFAULT_JOB_NAME));
  }

  /**
   * Creates an environment; invalid settings are a JobDefinitionError.
   * @example const env = StreamEnvironment.create({ parallelism: 4 });
   */
  static create(opts: EnvironmentOptions = {}): StreamEnvironment {
    return new StreamEnvironment(opts);
  }

  /** Default parallelism of operators. @example env.getParallelism() // 1 */
  getParallelism(): number {
    return this.parallelism;
  }
  /** Sets the default parallelism. @example env.setParallelism(4) */
  setParallelism(parallelism: number): this {
    checkParallelism(parallelism, this.maxParallelism, 'the environment (default)');
    this.parallelism = parallelism;
    return this;
  }
  /** Number of key groups (upper bound of every parallelism). @example env.getMaxParallelism() // 128 */
  getMaxParallelism(): number {
    return this.maxParallelism;
  }
  /** Managed memory of each job in bytes (`managedMemory`). @example env.getManagedMemory() // 268435456 */
  getManagedMemory(): number {
    return this.managedMemory;
  }
  /** `streaming` or `batch`. @example env.getRuntimeMode() // 'streaming' */
  getRuntimeMode(): RuntimeMode {
    return this.runtimeMode;
  }
  /** Switches between streaming and batch semantics. @example env.setRuntimeMode('batch') */
  setRuntimeMode(mode: RuntimeMode): this {
    checkJobConfig({ ...this.config(DEFAULT_JOB_NAME), runtimeMode: mode });
    this.runtimeMode = mode;
    return this;
  }

  /**
   * A bounded source over the items (copied when the job is defined). A parallel source splits the
   * items into contiguous slices; at parallelism 1 their order is kept.
   * @example env.fromCollection([{ a: 1 }, { a: 2 }], { name: 'numbers' })
   */
  fromCollection<T>(items: Iterable<T>, opts: SourceOptions = {}): SingleOutputStreamOperator<T> {
    if (items == null || typeof (items as Iterable<T>)[Symbol.iterator] !== 'function') {
      throw new JobDefinitionError('fromCollection expects an iterable (e.g. an array)');
    }
    const all = Array.from(items);
    return recordStreamFacts(this.addSource(collectionSource(all), opts.name ?? 'Source: Collection', opts.parallelism), { rows: all.length });
  }

  /**
   * A bounded source of the given items. @example env.fromElements(1, 2, 3)
   */
  fromElements<T>(...items: T[]): SingleOutputStreamOperator<T> {
    return this.fromCollection(items, { name: 'Source: Elements' });
  }

  /**
   * A source of `fn(i)`. Bounded for i in `[0, count)` (a parallel generator splits the index range
   * into contiguous slices, one per subtask); unbounded with `count = Infinity` (the job runs until
   * cancelled). `ratePerSecond` paces it on the job clock (Flink's rate-limited DataGeneratorSource).
   * @example
   * env.fromGenerator(100_000, (i) => ({ id: i, price: i % 100 }), { parallelism: 2 })
   * env.fromGenerator(Infinity, (i) => ({ id: i, at: Date.now() }), { ratePerSecond: 10_000 })
   */
  fromGenerator<T>(count: number, fn: (index: number) => T, opts: SourceOptions & GeneratorOptions = {}): SingleOutputStreamOperator<T> {
    if (count !== Infinity && (!Number.isSafeInteger(count) || count < 0)) {
      throw new JobDefinitionError(`fromGenerator count must be an integer >= 0 or Infinity, got ${count}`);
    }
    if (typeof fn !== 'function') throw new JobDefinitionError('fromGenerator expects a function (index) => record');
    const rate = opts.ratePerSecond;
    if (rate !== undefined && !(typeof rate === 'number' && rate > 0 && Number.isFinite(rate))) {
      throw new JobDefinitionError(`fromGenerator ratePerSecond must be a positive number, got ${String(rate)}`);
    }
    const name = opts.name ?? (fn.name ? `Source: Generator(${fn.name})` : 'Source: Generator');
    const src = this.addSource(generatorSource(count, fn, rate === undefined ? {} : { ratePerSecond: rate }), name, opts.parallelism);
    return Number.isFinite(count) ? recordStreamFacts(src, { rows: count }) : src;
  }

  /**
   * Adds a source from a SourceSpec (how connectors plug in).
   * @example env.fromSource(mySpec, 'Source: Orders', { parallelism: 2 })
   */
  fromSource<T>(source: SourceSpec<T>, name: string, opts: { parallelism?: number } = {}): SingleOutputStreamOperator<T> {
    return this.addSource(source, name, opts.parallelism);
  }

  /**
   * A bounded source of CSV records typed by `schema` (see `CsvOptions`: header, delimiter, onError).
   * Reads a path (Node, Deno, Bun), several paths, `{ text }`, `{ bytes }` or a stream of bytes.
   * Replayable (position = input, byte offset, line) unless it reads a stream. A malformed line fails
   * the job with a `MalformedInputError` naming the file, line and field — or, with
   * `onError: 'side-output'`, goes to the returned stream's `.rejected`, or to an `onError` function.
   *
   * @example
   * const trades = schema({ sym: t.string(), px: t.f64(), qty: t.i32() });
   * const totals = env.readCsv('trades.csv', { schema: trades }).keyBy('sym').sum('qty').collect();
   * const src = env.readCsv('trades.csv', { schema: trades, onError: 'side-output' });
   * const bad = src.rejected.collect();
   */
  readCsv<F extends Fields>(input: SourceInput, opts: CsvOptions<F> & FileSourceOptions & { onError: 'side-output' }): StreamWithRejected<InferRow<F>>;
  readCsv<F extends Fields>(input: SourceInput, opts: CsvOptions<F> & FileSourceOptions): SingleOutputStreamOperator<InferRow<F>>;
  readCsv<F extends Fields>(input: SourceInput, opts: CsvOptions<F> & FileSourceOptions): SingleOutputStreamOperator<InferRow<F>> {
    const spec = csvSource(input, opts, { files: () => platformFiles(opts.platform) });
    return recordStreamFacts(this.addTextSource(spec, opts.name ?? `Source: CSV(${spec.inputs.map((i) => i.name).join(', ')})`, opts), { schema: opts.schema, inputs: spec.inputs });
  }

  /**
   * A bounded source of NDJSON records (one JSON object per line) typed by `schema`; inputs, replay
   * and `onError` as {@link readCsv}. Keys the schema lacks are ignored (`extraFields: 'error'` rejects them).
   *
   * @example
   * const events = env.readNdjson('events.ndjson', { schema: schema({ user: t.string(), ts: t.timestamp() }) });
   */
  readNdjson<F extends Fields>(input: SourceInput, opts: NdjsonOptions<F> & FileSourceOptions & { onError: 'side-output' }): StreamWithRejected<InferRow<F>>;
  readNdjson<F extends Fields>(input: SourceInput, opts: NdjsonOptions<F> & FileSourceOptions): SingleOutputStreamOperator<InferRow<F>>;
  readNdjson<F extends Fields>(input: SourceInput, opts: NdjsonOptions<F> & FileSourceOptions): SingleOutputStreamOperator<InferRow<F>> {
    const spec = ndjsonSource(input, opts, { files: () => platformFiles(opts.platform) });
    return recordStreamFacts(this.addTextSource(spec, opts.name ?? `Source: NDJSON(${spec.inputs.map((i) => i.name).join(', ')})`, opts), { schema: opts.schema, inputs: spec.inputs });
  }

  private addTextSource<T>(spec: TextSourceSpec<T>, name: string, opts: { parallelism?: number; onError?: unknown }): SingleOutputStreamOperator<T> {
    const src = this.addSource<T | RejectedRecord>(spec, name, opts.parallelism);
    if (opts.onError !== 'side-output') return src as SingleOutputStreamOperator<T>;
    const records = src.filter((x) => !(x instanceof RejectedRecord)).name('Records') as SingleOutputStreamOperator<T>;
    const rejected = src.filter((x) => x instanceof RejectedRecord).name('Rejected') as SingleOutputStreamOperator<RejectedRecord>;
    // Rejected lines must reach a sink: a job that asked for them and never consumes them would lose
    // them silently, so building such a job fails (see getJobGraph).
    this.requiredOutputs.push({ source: src.transformation.id, output: rejected.transformation.id, what: `${name}.rejected` });
    return Object.assign(records, { rejected });
  }

  private addSource<T>(source: SourceSpec<T>, name: string, parallelism: number | undefined): SingleOutputStreamOperator<T> {
    if (parallelism !== undefined) this._checkParallelism(parallelism, name);
    const t: SourceTransformation = { kind: 'source', id: this._nextId(), name, parallelism, chaining: 'head', source };
    return new SingleOutputStreamOperator<T>(this, t);
  }

  /** @internal */
  _nextId(): number {
    return ++this.ids;
  }
  /** @internal Blocking exchanges of a batch job: each channel's share of the managed memory; spills to the platform's store. */
  _blockingExchanges(mode: RuntimeMode, channels: number): { spill: SpillStoreFactory; memoryBytes: number } | undefined {
    return this.blockingExchanges(mode, channels);
  }

  private blockingExchanges(mode: RuntimeMode, channels: number): { spill: SpillStoreFactory; memoryBytes: number } | undefined {
    if (mode !== 'batch' || this.batchShuffleMode !== 'blocking' || channels === 0) return undefined;
    return { spill: platformSpill, memoryBytes: Math.max(64 << 10, Math.floor(this.managedMemory / channels)) };
  }

  /** @internal `collected`: the array a collect() sink fills (results from worker threads go there). */
  _addSink(t: SinkTransformation, onFinished?: () => void, collected?: unknown[]): void {
    this.sinks.push({ t, onFinished, collected });
  }
  /**
   * @internal The job of the sinks defined so far, with the batch operators' shares of managed memory
   * bound (a budget too small fails here); those sinks are consumed, as by `execute()`.
   */
  _prepare(jobName: string): { graph: JobGraph; sinks: readonly JobSink[]; batchSize: number; clock: ProcessingClock | undefined; bufferTimeoutMs: number } {
    const graph = this.getJobGraph(jobName);
    bindManagedMemory(graph, this.managedMemory);
    const sinks = this.sinks;
    this.sinks = [];
    return { graph, sinks, batchSize: this.batchSize, clock: this.clock, bufferTimeoutMs: this.bufferTimeoutMs };
  }
  /** @internal */
  _checkParallelism(p: number, what: string): void {
    checkParallelism(p, this.maxParallelism, what);
  }

  private config(jobName: string): JobConfig {
    return { jobName, defaultParallelism: this.parallelism, maxParallelism: this.maxParallelism, runtimeMode: this.runtimeMode };
  }

  /**
   * The job graph of the sinks defined so far (throws a JobDefinitionError for an invalid job).
   * @example env.getJobGraph().vertices.map((v) => v.name) // ['Source: Collection -> Map', ...]
   */
  getJobGraph(jobName: string = DEFAULT_JOB_NAME): JobGraph {
    const sg = buildStreamGraph(this.sinks.map((s) => s.t), this.config(jobName));
    const ids = new Set(sg.nodes.map((n) => n.id));
    for (const r of this.requiredOutputs) {
      if (ids.has(r.source) && !ids.has(r.output)) {
        throw new JobDefinitionError(
          `${r.what} has no sink: rejected records would be lost; add one (e.g. .rejected.collect() or .rejected.print())`,
          { operator: r.what },
        );
      }
    }
    return buildJobGraph(sg);
  }

  /**
   * A readable text of the job graph: one line per chain of operators with its parallelism, and the
   * partitioning of the edges between chains.
   * @example console.log(env.getExecutionPlan());
   */
  getExecutionPlan(jobName?: string): string {
    return explainJobGraph(this.getJobGraph(jobName));
  }

  /** Same as {@link getExecutionPlan}. */
  explain(jobName?: string): string {
    return this.getExecutionPlan(jobName);
  }

  /**
   * Runs the job made of every sink defined since the last `execute()` to completion; those sinks are
   * then consumed (as in Flink). Rejects with a SluiceError naming the operator, subtask and record
   * if anything fails.
   * `opts.signal` cancels the running job: it fails with "job '<name>' was cancelled" and every
   * source reader and operator is closed.
   * @example
   * const result = await env.execute('my job');
   * console.log(result.toString());
   * // cancellable:
   * const ctl = new AbortController();
   * const running = env.execute('long job', { signal: ctl.signal });
   * ctl.abort();
   */
  async execute(jobName: string = DEFAULT_JOB_NAME, opts: { signal?: AbortSignal } = {}): Promise<JobResult> {
    return this.executeAsync(jobName, opts).result;
  }

  /**
   * Starts the job and returns at once with a {@link JobClient}: read live metrics while it runs,
   * cancel it (an unbounded job runs until cancelled), await its result.
   * @example
   * const job = env.executeAsync('ticker');
   * setTimeout(() => console.log(job.metrics()), 1000);
   * setTimeout(() => job.cancel(), 5000);
   * await job.result.catch((e) => { if (!(e instanceof JobCancelledError)) throw e; });
   */
  executeAsync(jobName: string = DEFAULT_JOB_NAME, opts: { signal?: AbortSignal } = {}): JobClient {
    const { graph, sinks } = this._prepare(jobName);
    const ctl = new AbortController();
    const outer = opts.signal;
    if (outer) {
      if (outer.aborted) ctl.abort(outer.reason);
      else outer.addEventListener('abort', () => ctl.abort(outer.reason), { once: true });
    }
    const clock = this.clock ?? new SystemClock();
    let tasks: readonly Task[] = [];
    const started = clock.now();
    const eg = buildExecutionGraph(graph);
    const result = executeGraph(eg, {
      batchSize: this.batchSize,
      blocking: this.blockingExchanges(graph.config.runtimeMode, eg.channelCount),
      signal: ctl.signal,
      clock,
      onTasks: (t) => {
        tasks = t;
      },
    }).then((r) => {
      for (const s of sinks) s.onFinished?.();
      return r;
    });
    return new JobClient(jobName, result, (reason) => ctl.abort(reason), () => liveMetrics(tasks, clock.now() - started, clock.now()));
  }
}
