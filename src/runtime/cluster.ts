// Owns running one job on worker threads, parent side: which worker runs which subtask, the
// MessagePorts of the channels between workers, starting and stopping the workers, merging their
// results and live metrics, and carrying a failure (as a typed error) back to the caller. The worker
// side is src/api/worker-main.ts.

import { AnyEncoder, decodeAny } from '../core/any-codec.ts';
import { reviveError, type SerializedError } from '../core/error-codec.ts';
import { JobCancelledError, SluiceError } from '../core/errors.ts';
import type { ExecutionGraph, ExecutionSubtask } from '../graph/execution-graph.ts';
import type { WorkerHandle, WorkerSpawner } from '../platform/types.ts';
import { JobResult, type LiveOperatorMetrics, type OperatorMetrics } from './job-result.ts';
import type { RuntimeMode } from '../graph/operator.ts';
import { MIN_WATERMARK } from './watermark-valve.ts';

/** The worker that runs `subtask` among `workers`: subtask i of every vertex shares worker i mod n (Flink's slot sharing). */
export function workerOf(subtask: Pick<ExecutionSubtask, 'index'>, workers: number): number {
  return subtask.index % workers;
}

/** What the parent hands each worker (a structured clone, with the ports transferred). */
export interface WorkerJobData {
  /** The module that defines the job, and which `defineJob` call of it (in order). */
  readonly moduleUrl: string;
  readonly definition: number;
  readonly params: unknown;
  /** `StreamEnvironment.create` options (no clock: each worker uses its system clock). */
  readonly envOptions: Record<string, unknown>;
  readonly jobName: string;
  readonly worker: number;
  readonly workers: number;
  /** The parent's job graph as text: a worker whose rebuilt graph differs fails instead of mixing data. */
  readonly fingerprint: string;
  /** By channel id: the producer's port of each channel this worker writes to another worker. */
  readonly outPorts: Record<number, MessagePort>;
  /** By channel id: the consumer's port of each channel this worker reads from another worker. */
  readonly inPorts: Record<number, MessagePort>;
  /** Network memory of each worker (bytes). */
  readonly networkMemory?: number | undefined;
  /** ms between live-metrics reports. */
  readonly metricsEveryMs: number;
}

/** A worker's messages to the parent. */
export type WorkerMessage =
  | { readonly type: 'metrics'; readonly elapsedMs: number; readonly operators: LiveOperatorMetrics[] }
  | { readonly type: 'done'; readonly durationMs: number; readonly operators: OperatorMetrics[]; readonly collected: (CollectedRecords | null)[] }
  | { readonly type: 'failed'; readonly error: SerializedError };

/** The parent's messages to a worker. */
export type ParentMessage = { readonly type: 'cancel'; readonly reason?: string };

// The failure report's error (de)serialization lives in src/core/error-codec.ts, shared with the
// MessagePack codec that carries errors inside records; re-exported here for the worker side.
export { reviveError, serializeError, type SerializedError } from '../core/error-codec.ts';

/**
 * A collect sink's records on their way to the parent: a structured clone, except that the records
 * that are errors (which a clone turns into plain Errors without their properties) go as MessagePack
 * (the any-codec's error extension), revived as instances of their class by {@link unpackCollected}.
 */
export interface CollectedRecords {
  readonly records: unknown[];
  /** Indexes of the records that are errors, and their encodings (those records are null in `records`). */
  readonly errorAt?: number[];
  readonly errorBytes?: Uint8Array[];
}

/** The records of a collect sink as a worker reports them (see {@link CollectedRecords}). Cost: one check per record. */
export function packCollected(records: readonly unknown[]): CollectedRecords {
  let errorAt: number[] | undefined;
  let errorBytes: Uint8Array[] | undefined;
  let out: unknown[] | undefined;
  let enc: AnyEncoder | undefined;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (!(r instanceof Error)) continue;
    let bytes: Uint8Array;
    try {
      bytes = (enc ??= new AnyEncoder()).encode(r).slice();
    } catch {
      continue; // not encodable after all: a structured clone is the best there is
    }
    (out ??= records.slice())[i] = null;
    (errorAt ??= []).push(i);
    (errorBytes ??= []).push(bytes);
  }
  return out === undefined ? { records: records as unknown[] } : { records: out, errorAt: errorAt!, errorBytes: errorBytes! };
}

/** The records of a collect sink as the worker had them (errors as instances of their class where known). */
export function unpackCollected(c: CollectedRecords): unknown[] {
  const { records, errorAt, errorBytes } = c;
  if (errorAt) errorAt.forEach((i, j) => (records[i] = decodeAny(errorBytes![j]!, 0, errorBytes![j]!.length)));
  return records;
}

/** Options of {@link runOnWorkers}. */
export interface ClusterOptions {
  readonly spawner: WorkerSpawner;
  /** The worker entry module (src/api/worker-main). */
  readonly workerModule: URL;
  readonly graph: ExecutionGraph;
  readonly workers: number;
  /** Everything of {@link WorkerJobData} but the per-worker fields. */
  readonly data: Omit<WorkerJobData, 'worker' | 'workers' | 'outPorts' | 'inPorts'>;
  readonly signal?: AbortSignal | undefined;
  /** ms the workers get to close their operators after a cancel or a failure before they are terminated. */
  readonly stopGraceMs?: number;
}

/** A job running on workers: its result (and the collect sinks' records, by sink), and live metrics. */
export interface ClusterRun {
  readonly result: Promise<{ result: JobResult; collected: unknown[][] }>;
  metrics(): LiveOperatorMetrics[];
}

/**
 * Starts `workers` workers, each running its share of the job's subtasks, connected by a
 * MessageChannel per channel between subtasks on different workers. Resolves when every worker has
 * finished; the first failure (or a cancel through `signal`) stops all of them and rejects.
 *
 * @example
 * ```ts
 * const run = runOnWorkers({ spawner: platform.workers, workerModule, graph: eg, workers: 2, data });
 * const { result, collected } = await run.result;
 * ```
 */
export function runOnWorkers(opts: ClusterOptions): ClusterRun {
  const n = opts.workers;
  const eg = opts.graph;
  const outPorts: Record<number, MessagePort>[] = [];
  const inPorts: Record<number, MessagePort>[] = [];
  const transfers: Transferable[][] = [];
  for (let w = 0; w < n; w++) {
    outPorts.push({});
    inPorts.push({});
    transfers.push([]);
  }
  for (const st of eg.subtasks) {
    for (const c of st.inputs) {
      const from = workerOf({ index: c.sourceSubtask }, n);
      const to = workerOf({ index: c.targetSubtask }, n);
      if (from === to) continue;
      const mc = new MessageChannel();
      outPorts[from]![c.id] = mc.port1;
      inPorts[to]![c.id] = mc.port2;
      transfers[from]!.push(mc.port1);
      transfers[to]!.push(mc.port2);
    }
  }

  const live: LiveOperatorMetrics[][] = [];
  let elapsed = 0;
  const metrics = (): LiveOperatorMetrics[] => mergeLive(live, elapsed);

  const result = (async () => {
    const handles: WorkerHandle[] = [];
    const done: ({ durationMs: number; operators: OperatorMetrics[]; collected: (CollectedRecords | null)[] } | undefined)[] = [];
    let failed: ((e: Error) => void) | undefined;
    let allDone: (() => void) | undefined;
    const failure = new Promise<never>((_, reject) => {
      failed = reject;
    });
    failure.catch(() => undefined);
    const finished = new Promise<void>((resolve) => {
      allDone = resolve;
    });
    let firstError: Error | undefined;
    const fail = (e: Error): void => {
      firstError ??= e;
      failed!(firstError);
    };
    const onAbort = (): void => fail(new JobCancelledError(opts.data.jobName, opts.signal?.reason));
    const stopped: boolean[] = [];
    const stoppedWaiters: (() => void)[] = [];
    try {
      if (opts.signal?.aborted) throw new JobCancelledError(opts.data.jobName, opts.signal.reason);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const started = await Promise.race([
        Promise.all(
          Array.from({ length: n }, (_, w) =>
            opts.spawner.spawn(opts.workerModule, { ...opts.data, worker: w, workers: n, outPorts: outPorts[w], inPorts: inPorts[w] }, {
              name: `sluice ${opts.data.jobName} #${w}`,
              transfer: transfers[w],
            }),
          ),
        ),
        failure,
      ]);
      handles.push(...started);
      let remaining = n;
      handles.forEach((h, w) => {
        h.onerror = (e) => {
          stopped[w] = true;
          for (const s of stoppedWaiters.splice(0)) s();
          fail(e instanceof SluiceError ? e : new SluiceError(`worker ${w} of job '${opts.data.jobName}' failed: ${e.message}`, { domain: 'internal', cause: e }));
        };
        h.onmessage = (ev) => {
          const m = ev.data as WorkerMessage;
          if (m.type === 'metrics') {
            live[w] = m.operators;
            elapsed = Math.max(elapsed, m.elapsedMs);
          } else if (m.type === 'done') {
            done[w] = m;
            stopped[w] = true;
            for (const s of stoppedWaiters.splice(0)) s();
            if (--remaining === 0) allDone!();
          } else if (m.type === 'failed') {
            stopped[w] = true;
            for (const s of stoppedWaiters.splice(0)) s();
            fail(reviveError(m.error));
          }
        };
      });
      await Promise.race([finished, failure]);
    } catch (e) {
      firstError ??= e instanceof Error ? e : new Error(String(e));
      // every worker closes its operators (temp files, connections) before it is terminated
      const cancel: ParentMessage = { type: 'cancel', reason: firstError.message };
      handles.forEach((h, w) => {
        if (!stopped[w]) h.postMessage(cancel);
      });
      const grace = opts.stopGraceMs ?? 5000;
      const allStopped = new Promise<void>((resolve) => {
        const check = (): void => {
          if (handles.every((_, w) => stopped[w])) resolve();
          else stoppedWaiters.push(check);
        };
        check();
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([allStopped, new Promise<void>((resolve) => (timer = setTimeout(resolve, grace)))]);
      clearTimeout(timer);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      await Promise.all(handles.map((h) => h.terminate().catch(() => undefined)));
    }
    if (firstError) throw firstError;
    return mergeResults(opts.data.jobName, eg.job.config.runtimeMode, done.map((d) => d!));
  })();
  return { result, metrics };
}

function mergeResults(jobName: string, mode: RuntimeMode, parts: { durationMs: number; operators: OperatorMetrics[]; collected: (CollectedRecords | null)[] }[]): { result: JobResult; collected: unknown[][] } {
  const byId = new Map<number, { -readonly [P in keyof OperatorMetrics]: OperatorMetrics[P] }>();
  let durationMs = 0;
  const collected: unknown[][] = [];
  for (const p of parts) {
    durationMs = Math.max(durationMs, p.durationMs);
    for (const o of p.operators) {
      const m = byId.get(o.id);
      if (!m) byId.set(o.id, { ...o });
      else {
        m.recordsIn += o.recordsIn;
        m.recordsOut += o.recordsOut;
        m.backpressureMs += o.backpressureMs;
      }
    }
    p.collected.forEach((c, i) => {
      const into = (collected[i] ??= []);
      if (c) for (const r of unpackCollected(c)) into.push(r);
    });
  }
  return { result: new JobResult(jobName, mode, durationMs, [...byId.values()].sort((a, b) => a.id - b.id)), collected };
}

function mergeLive(parts: readonly LiveOperatorMetrics[][], elapsedMs: number): LiveOperatorMetrics[] {
  const byId = new Map<number, { -readonly [P in keyof LiveOperatorMetrics]: LiveOperatorMetrics[P] }>();
  for (const p of parts) {
    if (!p) continue;
    for (const o of p) {
      const m = byId.get(o.id);
      if (!m) {
        byId.set(o.id, { ...o });
        continue;
      }
      m.recordsIn += o.recordsIn;
      m.recordsOut += o.recordsOut;
      m.throughputPerSec += o.throughputPerSec;
      m.backpressureMs += o.backpressureMs;
      m.currentWatermark = Math.min(m.currentWatermark, o.currentWatermark);
      m.watermarkLagMs = m.watermarkLagMs === undefined || o.watermarkLagMs === undefined ? (m.watermarkLagMs ?? o.watermarkLagMs) : Math.max(m.watermarkLagMs, o.watermarkLagMs);
      if (o.outputBacklog !== undefined) m.outputBacklog = (m.outputBacklog ?? 0) + o.outputBacklog;
    }
  }
  const out = [...byId.values()].sort((a, b) => a.id - b.id);
  for (const m of out) {
    m.backpressure = elapsedMs > 0 ? Math.min(1, m.backpressureMs / (elapsedMs * m.parallelism)) : 0;
    if (m.currentWatermark === Number.MAX_SAFE_INTEGER) m.currentWatermark = MIN_WATERMARK;
  }
  return out;
}
