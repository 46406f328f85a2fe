// Owns job definitions: a job written as a function of an environment, in a module that worker
// threads can import, so that every worker builds the same job graph and runs its share of the
// subtasks (`defineJob(...).run({ workers })`); with one worker (or none on the runtime) the job runs
// on the calling thread. Also the registry through which a worker finds the definition it was sent.

import { JobDefinitionError } from '../core/errors.ts';
import { buildExecutionGraph } from '../graph/execution-graph.ts';
import { explainJobGraph } from '../graph/explain.ts';
import { workersForRuntime } from '../platform/workers.ts';
import type { WorkerSpawner } from '../platform/types.ts';
import { runOnWorkers } from '../runtime/cluster.ts';
import type { JobResult, LiveOperatorMetrics } from '../runtime/job-result.ts';
import { parseMemorySize, type MemorySize } from '../runtime/memory-manager.ts';
import { StreamEnvironment, type EnvironmentOptions } from './environment.ts';
import { JobClient } from './job-client.ts';

/** Builds a job on `env` from `params`; what it returns (e.g. collect handles) is the run's `outputs`. */
export type JobBuilder<P, R> = (env: StreamEnvironment, params: P) => R;

/** Options of {@link JobDefinition.run} / {@link JobDefinition.start}. */
export interface JobRunOptions<P> {
  /** Handed to the builder (in every worker too: a structured clone). */
  params?: P;
  /**
   * Worker threads that run the job's subtasks (default 1: the calling thread, no workers). Subtask
   * i of every operator runs on worker i mod `workers`, so up to the largest parallelism is useful;
   * `'auto'` takes the smaller of that and the machine's cores. Where the runtime has no workers
   * (workerd) the job runs on the calling thread.
   */
  workers?: number | 'auto';
  /** `StreamEnvironment.create` options for the builder's environment (the same in every worker; no `clock` with workers). */
  environment?: EnvironmentOptions;
  /** Job name (default: the definition's name). */
  jobName?: string;
  /** Cancels the job (it rejects with `JobCancelledError`). */
  signal?: AbortSignal;
  /** Network buffer memory of each worker for the channels between workers (default `'64mb'`). */
  networkMemory?: MemorySize;
  /** Workers to use instead of the runtime's (tests). */
  spawner?: WorkerSpawner;
}

/** A finished run: the job's result and what the builder returned (collect handles now hold their records). */
export interface JobRun<R> {
  readonly result: JobResult;
  readonly outputs: R;
}

/** A started run: a {@link JobClient} plus the builder's outputs (collect handles fill when it finishes). */
export class RunningJob<R> extends JobClient {
  /** @internal */
  constructor(jobName: string, result: Promise<JobResult>, abort: (reason?: unknown) => void, snapshot: () => LiveOperatorMetrics[], readonly outputs: R) {
    super(jobName, result, abort, snapshot);
  }
}

interface Registry {
  /** Set in a worker before it imports a job module: `run()` there must not start the job again. */
  inWorker: boolean;
  readonly byModule: Map<string, JobDefinition<never, unknown>[]>;
  readonly waiters: Map<string, (() => void)[]>;
}

const REGISTRY_KEY = Symbol.for('sluice.jobDefinitions');

function registry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  return (g[REGISTRY_KEY] ??= { inWorker: false, byModule: new Map(), waiters: new Map() });
}

const href = (u: string | URL): string => (typeof u === 'string' ? new URL(u).href : u.href);

/**
 * Defines a job in a module of its own, so that it can run on worker threads: each worker imports
 * `moduleUrl` (pass `import.meta.url`), finds this definition (the n-th `defineJob` call of the
 * module, so call it at the top level and in the same order every time) and builds the job again.
 * The builder must build the same graph from the same params everywhere (no randomness or clock in
 * its structure; a worker whose graph differs fails the job). Sinks run where their subtasks run:
 * `collect()` records are shipped back; a sink function's side effects happen in the workers.
 *
 * @example
 * ```ts
 * // word-count.ts
 * export const wordCount = defineJob(import.meta.url, (env, p: { lines: string[] }) => ({
 *   counts: env.fromCollection(p.lines).flatMap((l) => l.split(' ')).map((w) => ({ w, n: 1 }))
 *     .keyBy((r) => r.w).sum('n').collect(),
 * }));
 * // main.ts
 * const { outputs } = await wordCount.run({ workers: 2, environment: { parallelism: 2 }, params: { lines } });
 * console.log(outputs.counts.results);
 * ```
 */
export function defineJob<P = undefined, R = void>(moduleUrl: string | URL, build: JobBuilder<P, R>, options: { name?: string } = {}): JobDefinition<P, R> {
  const url = href(moduleUrl);
  const reg = registry();
  const list = reg.byModule.get(url) ?? [];
  reg.byModule.set(url, list);
  const def = new JobDefinition<P, R>(url, list.length, build, options.name ?? 'Sluice job');
  list.push(def as unknown as JobDefinition<never, unknown>);
  for (const w of reg.waiters.get(url) ?? []) w();
  return def;
}

/** A job defined with {@link defineJob}. */
export class JobDefinition<P, R> {
  /** @internal */
  constructor(
    readonly moduleUrl: string,
    /** Which `defineJob` call of its module this is (0-based). */
    readonly index: number,
    readonly build: JobBuilder<P, R>,
    readonly name: string,
  ) {}

  /**
   * Runs the job to completion.
   * @example const { result, outputs } = await job.run({ workers: 2, environment: { parallelism: 4 } });
   */
  async run(options: JobRunOptions<P> = {}): Promise<JobRun<R>> {
    const job = this.start(options);
    const result = await job.result;
    return { result, outputs: job.outputs };
  }

  /**
   * Starts the job and returns at once: live metrics, cancel, the result.
   * @example
   * const job = ticker.start({ workers: 2 });
   * setTimeout(() => job.cancel(), 5000);
   */
  start(options: JobRunOptions<P> = {}): RunningJob<R> {
    const jobName = options.jobName ?? this.name;
    if (registry().inWorker) {
      // a worker imported a module that also runs its job at the top level: only the parent runs it
      return new RunningJob(jobName, new Promise<JobResult>(() => undefined), () => undefined, () => [], undefined as R);
    }
    let workers = options.workers ?? 1;
    if (workers !== 'auto' && (!Number.isInteger(workers) || workers < 1)) {
      throw new JobDefinitionError(`workers must be an integer >= 1 or 'auto', got ${String(workers)}`);
    }
    const spawner = options.spawner ?? workersForRuntime();
    if (!spawner.supported) workers = 1;
    const envOptions = options.environment ?? {};
    if (workers !== 1 && envOptions.clock !== undefined) {
      throw new JobDefinitionError('a job run on workers uses each worker\'s system clock: remove `clock` from the environment options, or run with workers: 1');
    }
    const env = StreamEnvironment.create(envOptions);
    const outputs = this.build(env, options.params as P);
    if (workers === 1) {
      const client = env.executeAsync(jobName, { signal: options.signal });
      return new RunningJob(jobName, client.result, (reason) => client.cancel(reason), () => client.metrics(), outputs);
    }
    const { graph, sinks } = env._prepare(jobName);
    const eg = buildExecutionGraph(graph);
    const widest = Math.max(...graph.vertices.map((v) => v.parallelism));
    const n = workers === 'auto' ? Math.max(1, Math.min(widest, detectCores())) : Math.min(workers, widest);
    const ctl = new AbortController();
    const outer = options.signal;
    if (outer) {
      if (outer.aborted) ctl.abort(outer.reason);
      else outer.addEventListener('abort', () => ctl.abort(outer.reason), { once: true });
    }
    const ext = new URL(import.meta.url).pathname.endsWith('.ts') ? '.ts' : '.js';
    const run = runOnWorkers({
      spawner,
      workerModule: new URL(`./worker-main${ext}`, import.meta.url),
      graph: eg,
      workers: n,
      signal: ctl.signal,
      data: {
        moduleUrl: this.moduleUrl,
        definition: this.index,
        params: options.params,
        envOptions: envOptions as Record<string, unknown>,
        jobName,
        fingerprint: explainJobGraph(graph),
        networkMemory: options.networkMemory === undefined ? undefined : parseMemorySize(options.networkMemory),
        metricsEveryMs: 200,
      },
    });
    const result = run.result.then(({ result: r, collected }) => {
      sinks.forEach((s, i) => {
        const got = collected[i];
        if (s.collected && got) for (const x of got) s.collected.push(x);
      });
      for (const s of sinks) s.onFinished?.();
      return r;
    });
    return new RunningJob(jobName, result, (reason) => ctl.abort(reason), () => run.metrics(), outputs);
  }
}

function detectCores(): number {
  const c = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)?.hardwareConcurrency;
  return typeof c === 'number' && c > 0 ? c : 1;
}

/**
 * @internal In a worker: marks the thread as a worker, imports `moduleUrl` and answers its
 * `index`-th job definition (waiting for it while the module evaluates; a module that runs its job at
 * the top level never finishes evaluating in a worker, see `start`).
 */
export async function loadDefinition(moduleUrl: string, index: number): Promise<JobDefinition<unknown, unknown>> {
  const reg = registry();
  reg.inWorker = true;
  const find = (): JobDefinition<unknown, unknown> | undefined => reg.byModule.get(moduleUrl)?.[index] as JobDefinition<unknown, unknown> | undefined;
  const found = find();
  if (found) return found;
  const defined = new Promise<JobDefinition<unknown, unknown>>((resolve) => {
    const list = reg.waiters.get(moduleUrl) ?? [];
    reg.waiters.set(moduleUrl, list);
    list.push(() => {
      const d = find();
      if (d) resolve(d);
    });
  });
  const imported = import(moduleUrl).then(() => {
    const d = find();
    if (!d) throw new JobDefinitionError(`${moduleUrl} defines fewer than ${index + 1} jobs in a worker than in the parent: call defineJob at the top level, in the same order every time`);
    return d;
  });
  return Promise.race([defined, imported]);
}
