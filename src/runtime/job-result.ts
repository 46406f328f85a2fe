// Owns the result of an executed job: its duration and the records in and out of every operator.

import type { RuntimeMode } from '../graph/operator.ts';
import type { Task } from './task.ts';
import { MIN_WATERMARK } from './watermark-valve.ts';

/** Records counted for one operator, summed over its subtasks. */
export interface OperatorMetrics {
  /** Node id in the stream graph. */
  readonly id: number;
  readonly name: string;
  /** Id of the job vertex (chain) the operator ran in. */
  readonly vertex: number;
  readonly parallelism: number;
  readonly recordsIn: number;
  readonly recordsOut: number;
  /**
   * Milliseconds the operator's tasks could not take input because an output channel was over its
   * bound (a slow consumer), summed over subtasks; the whole chain of a task shares its figure.
   */
  readonly backpressureMs: number;
}

/**
 * What `env.execute()` returns once a job has finished.
 *
 * @example
 * const result = await env.execute('trades');
 * console.log(result.durationMs, result.operator('Sum(price)')?.recordsOut);
 * console.log(result.toString());
 */
export class JobResult {
  constructor(
    readonly jobName: string,
    readonly runtimeMode: RuntimeMode,
    /** Wall-clock time from scheduling the first task to the last task finishing. */
    readonly durationMs: number,
    /** One entry per operator, in topological order. */
    readonly operators: readonly OperatorMetrics[],
  ) {}

  /** The metrics of the first operator named `name`. */
  operator(name: string): OperatorMetrics | undefined {
    return this.operators.find((o) => o.name === name);
  }

  /** A small table: one line per operator with its records in and out. */
  toString(): string {
    const w = Math.max(8, ...this.operators.map((o) => o.name.length));
    const lines = [`Job '${this.jobName}' (${this.runtimeMode}) finished in ${this.durationMs.toFixed(1)} ms`];
    lines.push(`  ${'operator'.padEnd(w)}  ${'par'.padStart(3)}  ${'records in'.padStart(12)}  ${'records out'.padStart(12)}`);
    for (const o of this.operators) {
      lines.push(`  ${o.name.padEnd(w)}  ${String(o.parallelism).padStart(3)}  ${String(o.recordsIn).padStart(12)}  ${String(o.recordsOut).padStart(12)}`);
    }
    return lines.join('\n');
  }
}

/** Metrics of one operator of a running job, summed (or, for watermarks, minimized) over its subtasks. */
export interface LiveOperatorMetrics extends OperatorMetrics {
  /** Records out per second of processing time since the job started. */
  readonly throughputPerSec: number;
  /** Minimum input watermark over the subtasks (MIN_WATERMARK before the first). */
  readonly currentWatermark: number;
  /** Processing time minus the current watermark, ms (undefined before the first watermark). */
  readonly watermarkLagMs: number | undefined;
  /** Records the operator wrote that downstream tasks have not taken yet (undefined: chained only). */
  readonly outputBacklog: number | undefined;
  /** Share of the time since the job started that its tasks were backpressured, averaged over subtasks (0..1). */
  readonly backpressure: number;
}

/** Metrics of the live tasks of a job (`JobClient.metrics()`). Cost: O(operators × subtasks). */
export function liveMetrics(tasks: readonly Task[], elapsedMs: number, now: number): LiveOperatorMetrics[] {
  const byId = new Map<number, { -readonly [P in keyof LiveOperatorMetrics]: LiveOperatorMetrics[P] }>();
  for (const t of tasks) {
    for (const co of t.operators) {
      let m = byId.get(co.node.id);
      if (!m) {
        m = {
          id: co.node.id,
          name: co.node.name,
          vertex: t.subtask.vertex.id,
          parallelism: co.node.parallelism,
          recordsIn: 0,
          recordsOut: 0,
          throughputPerSec: 0,
          currentWatermark: Number.MAX_SAFE_INTEGER,
          watermarkLagMs: undefined,
          outputBacklog: undefined,
          backpressureMs: 0,
          backpressure: 0,
        };
        byId.set(co.node.id, m);
      }
      m.backpressureMs += t.backpressureMs();
      m.recordsIn += co.recordsIn + co.recordsIn2;
      m.recordsOut += co.recordsOut;
      m.currentWatermark = Math.min(m.currentWatermark, co.watermark);
      if (co.writers.length > 0) m.outputBacklog = (m.outputBacklog ?? 0) + co.writers.reduce((n, w) => n + w.backlog, 0);
    }
  }
  const out = [...byId.values()].sort((a, b) => a.id - b.id);
  for (const m of out) {
    m.throughputPerSec = elapsedMs > 0 ? (m.recordsOut * 1000) / elapsedMs : 0;
    m.backpressure = elapsedMs > 0 ? Math.min(1, m.backpressureMs / (elapsedMs * m.parallelism)) : 0;
    m.watermarkLagMs = m.currentWatermark > MIN_WATERMARK && m.currentWatermark < Number.MAX_SAFE_INTEGER ? now - m.currentWatermark : undefined;
  }
  return out;
}
