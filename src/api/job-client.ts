// Owns JobClient: the handle of a job started with executeAsync — its result, live metrics and cancel.

import type { JobResult, LiveOperatorMetrics } from '../runtime/job-result.ts';

/**
 * A running (or finished) job.
 *
 * @example
 * const job = env.executeAsync('ticker');
 * const m = job.metrics().find((o) => o.name === 'Sum(price)');
 * console.log(m?.recordsIn, m?.throughputPerSec, m?.currentWatermark);
 * job.cancel();
 * await job.result.catch(() => undefined); // rejects with JobCancelledError
 */
export class JobClient {
  private settled = false;
  /** @internal */
  constructor(
    readonly jobName: string,
    /** Resolves with the job's result when it finishes; rejects if it fails or is cancelled. */
    readonly result: Promise<JobResult>,
    private readonly abort: (reason?: unknown) => void,
    private readonly snapshot: () => LiveOperatorMetrics[],
  ) {
    const done = (): void => {
      this.settled = true;
    };
    result.then(done, done);
  }

  /** Whether the job has finished (successfully or not). */
  get isDone(): boolean {
    return this.settled;
  }

  /**
   * Stops the job at its next scheduling round (or wake-up): every reader and operator is closed and
   * `result` rejects with a `JobCancelledError`. No effect once the job is done.
   */
  cancel(reason?: unknown): void {
    if (!this.settled) this.abort(reason);
  }

  /** Per-operator metrics now, summed over subtasks (see {@link LiveOperatorMetrics}). */
  metrics(): LiveOperatorMetrics[] {
    return this.snapshot();
  }
}
