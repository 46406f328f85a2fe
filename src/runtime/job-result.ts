// Owns the result of an executed job: its duration and the records in and out of every operator.

import type { RuntimeMode } from '../graph/operator.ts';

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
