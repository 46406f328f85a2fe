// Owns the buffer timeout, the latency/throughput knob of network output: how long a partly filled
// buffer may wait for more records before it is sent anyway. `bufferTimeoutMs` > 0: at most that long
// (a timer on an injectable ProcessingClock, armed only while data is pending, so an idle task sets
// no timers); 0: after every write (every record or batch handed to the writer); -1: only when full
// (or flushed explicitly, e.g. before an event). The default, 100 ms, is Flink's.

import { JobDefinitionError } from '../../core/errors.ts';
import type { CancelScheduled, ProcessingClock } from '../clock.ts';

/** Flink's default buffer timeout. */
export const DEFAULT_BUFFER_TIMEOUT_MS = 100;

/**
 * Checks a buffer timeout: an integer ≥ -1 (JobDefinitionError otherwise, naming the option).
 *
 * @example
 * ```ts
 * checkBufferTimeout(100); // 100
 * checkBufferTimeout(-1);  // -1: flush only when full
 * ```
 */
export function checkBufferTimeout(ms: number, what = 'bufferTimeoutMs'): number {
  if (!Number.isSafeInteger(ms) || ms < -1) {
    throw new JobDefinitionError(`${what} must be a whole number of milliseconds ≥ 0, or -1 (flush only when full); got ${ms}`);
  }
  return ms;
}

/** Options of an {@link OutputFlusher}. */
export interface OutputFlusherOptions {
  /** Where time comes from and how the timer is set (a `SystemClock`, or a `ManualClock` in tests). */
  clock: ProcessingClock;
  /** The buffer timeout (see the file comment); only > 0 sets timers. */
  bufferTimeoutMs: number;
  /** Sends every partly filled buffer; called when the timeout expires. */
  flush: () => void;
  /**
   * How the timed flush runs (default: directly, from the clock's callback). An executor whose tasks
   * run in a mailbox passes `(flush) => mailbox.enqueue(flush)` so the flush never interleaves with
   * the task's own work.
   */
  run?: (flush: () => void) => void;
}

/**
 * Arms one timer per pending period, not one per buffer: the first record written into an empty
 * output starts the clock, and when it fires every partly filled buffer goes — so no record waits
 * longer than the timeout, and records that came later simply go early.
 *
 * Cost: O(1) per call; one scheduled callback per timeout period with data pending.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(0);
 * const flusher = new OutputFlusher({ clock, bufferTimeoutMs: 100, flush: () => writer.flush() });
 * flusher.dataPending();  // a record went into a partly filled buffer
 * clock.advance(100);     // → writer.flush()
 * ```
 */
export class OutputFlusher {
  readonly bufferTimeoutMs: number;
  private readonly clock: ProcessingClock;
  private readonly flushAll: () => void;
  private readonly run: ((flush: () => void) => void) | undefined;
  private cancel: CancelScheduled | null = null;
  private closed = false;
  /** Timed flushes so far. */
  timedFlushes = 0;

  constructor(options: OutputFlusherOptions) {
    this.bufferTimeoutMs = checkBufferTimeout(options.bufferTimeoutMs);
    this.clock = options.clock;
    this.flushAll = options.flush;
    this.run = options.run;
  }

  /** Whether every write should be followed by a flush (timeout 0). */
  get flushEveryWrite(): boolean {
    return this.bufferTimeoutMs === 0;
  }

  /** Whether a timer is armed. */
  get armed(): boolean {
    return this.cancel !== null;
  }

  /** Data went into a partly filled buffer: a flush will come within the timeout. */
  dataPending(): void {
    if (this.cancel !== null || this.bufferTimeoutMs <= 0 || this.closed) return;
    this.cancel = this.clock.schedule(this.clock.now() + this.bufferTimeoutMs, this.fire);
  }

  /** Nothing is pending any more (everything was flushed): the timer is not needed. */
  flushed(): void {
    if (this.cancel === null) return;
    this.cancel();
    this.cancel = null;
  }

  /** Stops for good. Idempotent. */
  close(): void {
    this.closed = true;
    this.flushed();
  }

  private readonly fire = (): void => {
    this.cancel = null;
    if (this.closed) return;
    this.timedFlushes++;
    if (this.run) this.run(this.flushAll);
    else this.flushAll();
  };
}
