// Owns processing time: the injectable clock that processing-time timers, idleness detection, periodic
// watermark emission and ingestion timestamps read. `SystemClock` reads a wall clock (the platform's
// `wallClock`, `Date.now` by default) and wakes callbacks with `setTimeout`; `ManualClock` moves only
// when a test tells it to, and then runs what became due, in time order.

/** Cancels a callback scheduled with {@link ProcessingClock.schedule}; idempotent. */
export type CancelScheduled = () => void;

/**
 * A processing-time clock: integer milliseconds since the Unix epoch (or any origin, for a manual
 * clock) and a way to be called back once it reaches a time.
 *
 * Callbacks run outside the caller's stack (a timer task on the system clock; inside `advance` on the
 * manual clock). An executor that runs operators in a mailbox must hand the callback to the mailbox
 * rather than touch operator state from it.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(1_000);
 * clock.schedule(1_200, (now) => console.log('due at', now));
 * clock.advance(250); // logs "due at 1250"
 * ```
 */
export interface ProcessingClock {
  /** Current processing time, integer milliseconds. */
  now(): number;
  /**
   * Call `callback(now)` once `now() >= at`. A time already reached still calls back asynchronously
   * (system clock) or on the next `advance`/`setTime` (manual clock), never synchronously from here.
   */
  schedule(at: number, callback: (now: number) => void): CancelScheduled;
}

/**
 * The platform's wall clock. `source` is where time comes from (pass `platform.wallClock`; default
 * `Date.now`, which every supported runtime has); fractions are floored to whole milliseconds.
 * Scheduling uses the web-standard `setTimeout`. On workerd time only moves across I/O, so a
 * CPU-bound span reads as no time at all: processing-time timers there fire late, never early.
 *
 * The clock never reports a time below one it already reported (a wall clock stepping back — NTP —
 * would otherwise make processing time run backwards); it stalls until the source catches up.
 */
export class SystemClock implements ProcessingClock {
  private last = Number.MIN_SAFE_INTEGER;

  constructor(private readonly source: () => number = Date.now) {}

  now(): number {
    const t = Math.floor(this.source());
    if (t > this.last) this.last = t;
    return this.last;
  }

  schedule(at: number, callback: (now: number) => void): CancelScheduled {
    let handle: ReturnType<typeof setTimeout> | undefined;
    let cancelled = false;
    const arm = (): void => {
      // setTimeout may fire a little early (clamping, clock granularity): re-arm until really due.
      handle = setTimeout(() => {
        if (cancelled) return;
        const now = this.now();
        if (now >= at) callback(now);
        else arm();
      }, Math.max(0, at - this.now()));
    };
    arm();
    return () => {
      cancelled = true;
      if (handle !== undefined) clearTimeout(handle);
    };
  }
}

/** A system clock over `platform.wallClock` (or `Date.now`). */
export function systemClock(platform?: { wallClock(): number }): ProcessingClock {
  return new SystemClock(platform ? () => platform.wallClock() : Date.now);
}

interface Scheduled {
  readonly at: number;
  readonly seq: number;
  readonly callback: (now: number) => void;
  cancelled: boolean;
}

/**
 * A clock for tests: time moves only through {@link advance} / {@link setTime}, which then run every
 * callback that became due — including callbacks scheduled by those callbacks for a time already
 * reached — in (time, scheduling order). Deterministic on every runtime.
 *
 * Cost: schedule O(1) amortised; `advance` sorts the due callbacks, O(d log d) plus a scan of the
 * pending ones (tests schedule few).
 */
export class ManualClock implements ProcessingClock {
  private time: number;
  private seq = 0;
  private pending: Scheduled[] = [];
  private running = false;

  constructor(start = 0) {
    if (!Number.isSafeInteger(start)) throw new RangeError(`ManualClock: start must be an integer, got ${start}`);
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  schedule(at: number, callback: (now: number) => void): CancelScheduled {
    const s: Scheduled = { at, seq: this.seq++, callback, cancelled: false };
    this.pending.push(s);
    return () => {
      s.cancelled = true;
    };
  }

  /** Move time forward by `ms` (≥ 0) and run what became due. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance: ms must be ≥ 0, got ${ms}`);
    this.setTime(this.time + ms);
  }

  /** Set the time (never backwards) and run what became due. */
  setTime(t: number): void {
    if (!Number.isSafeInteger(t)) throw new RangeError(`ManualClock.setTime: time must be an integer, got ${t}`);
    if (t < this.time) throw new RangeError(`ManualClock.setTime: time cannot go back (${t} < ${this.time})`);
    if (this.running) throw new Error('ManualClock.setTime: called from a scheduled callback');
    this.time = t;
    this.running = true;
    try {
      for (;;) {
        const due = this.pending.filter((s) => !s.cancelled && s.at <= t);
        if (due.length === 0) break;
        this.pending = this.pending.filter((s) => !s.cancelled && s.at > t);
        due.sort((a, b) => a.at - b.at || a.seq - b.seq);
        for (const s of due) if (!s.cancelled) s.callback(t);
      }
    } finally {
      this.running = false;
    }
  }

  /** Callbacks scheduled and neither run nor cancelled. */
  get pendingCount(): number {
    return this.pending.filter((s) => !s.cancelled).length;
  }
}
