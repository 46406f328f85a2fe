// Owns async I/O (Flink's AsyncWaitOperator): a user function is called per record and answers with a
// promise; up to `capacity` calls are in flight at once; results are emitted in input order (ordered)
// or in completion order between watermarks (unordered); calls can time out on the job clock.

import type { MaybePromise, OperatorContext, Output, StreamOperator } from '../graph/operator.ts';
import type { CancelScheduled } from '../runtime/clock.ts';
import { SluiceError, type ErrorContext, previewValue } from '../core/errors.ts';
import { userFailure } from '../runtime/failure.ts';
import { ts } from './basic.ts';

/**
 * A user function for async I/O, as Flink's `AsyncFunction`: `asyncInvoke` starts the call for one
 * record and answers (usually with a promise) the records to emit for it — an array or any iterable,
 * empty for none. `timeout`, when given, supplies the results of a call that did not answer within
 * `timeoutMs` instead of failing the job (the late answer is then ignored).
 *
 * @example
 * const enrich: AsyncFunction<Order, Enriched> = {
 *   asyncInvoke: async (o) => [{ ...o, customer: await customers.get(o.customerId) }],
 *   timeout: (o) => [{ ...o, customer: null }],
 * };
 */
export interface AsyncFunction<I, O> {
  asyncInvoke(value: I): PromiseLike<Iterable<O>> | Iterable<O>;
  timeout?(value: I): Iterable<O>;
}

/** A plain function is the common form: `async (value) => [result]`. */
export type AsyncFunctionLike<I, O> = AsyncFunction<I, O> | ((value: I) => PromiseLike<Iterable<O>> | Iterable<O>);

/** How results leave the operator. */
export type AsyncOutputMode = 'ordered' | 'unordered';

/** Settings of one async I/O operator (validated by the API). */
export interface AsyncWaitConfig {
  readonly mode: AsyncOutputMode;
  /** Most records in the operator at once (in flight or completed and not yet emitted), per subtask. */
  readonly capacity: number;
  /** Milliseconds of processing time (the job clock) a call may take; Infinity = no limit. */
  readonly timeoutMs: number;
}

/**
 * An async call did not answer within its timeout and the function has no `timeout` handler. Names
 * the operator, the subtask, the record's index in the subtask's input and a preview of the record.
 * Domain `external` and retryable: usually the service behind the call was slow.
 *
 * @example
 * try { await env.execute(); } catch (e) {
 *   if (e instanceof AsyncTimeoutError) console.error(e.context.operator, e.context.recordIndex, e.timeoutMs);
 * }
 */
export class AsyncTimeoutError extends SluiceError {
  constructor(
    readonly timeoutMs: number,
    readonly value: unknown,
    context: ErrorContext = {},
  ) {
    super(`async call timed out after ${timeoutMs} ms for record ${previewValue(value)}`, { domain: 'external', retryable: true, context });
    this.withContext(context);
  }
}

/** One record in the operator, from its call until its results are emitted. */
interface Entry<O> {
  readonly value: unknown;
  /** The input record's timestamp as emitted (undefined: none). */
  readonly timestamp: number | undefined;
  readonly recordIndex: number;
  done: boolean;
  /** Set once done and the call answered in time. */
  results: readonly O[] | undefined;
  /** Set while a timeout is armed. */
  cancelTimer: CancelScheduled | undefined;
}

/**
 * Flink's AsyncWaitOperator. Cost per record: one entry object, one promise reaction and (with a
 * timeout) one clock callback; emission is an array push per result.
 *
 * How it waits. The task feeds this operator nothing else while one of its calls returns a promise,
 * and mailbox actions (`ctx.mailbox`) run only between such calls. So:
 * - results are emitted through the mailbox when the operator is idle, and straight into the output
 *   of the pending call when one is waiting (`processBatch` on a full queue — the backpressure —,
 *   `processWatermark`, `endInput`); one `drain` serves both, so nothing is emitted twice;
 * - completions and timeouts are only bookkept where they happen (promise reactions, clock
 *   callbacks: both outside the task) and then wake the waiting call or post a mailbox drain;
 *   timeouts use `ctx.clock.schedule` rather than `ctx.scheduleAt`, whose mailbox could not run
 *   while a call waits for the very slot the timeout frees;
 * - a watermark waits until every record before it has been emitted, so in unordered mode records
 *   are reordered only between watermarks (Flink's guarantee). Flink keeps accepting records behind
 *   a queued watermark; here the input pauses until the queue is empty — simpler, at some
 *   throughput cost when watermarks are frequent.
 */
export class AsyncWaitOperator<I, O> implements StreamOperator<I, O> {
  private ctx!: OperatorContext;
  private readonly invoke: (value: I) => PromiseLike<Iterable<O>> | Iterable<O>;
  private readonly onTimeout: ((value: I) => Iterable<O>) | undefined;
  /** Ordered mode: every entry in input order (from `head`). Unordered mode: unused. */
  private queue: Entry<O>[] = [];
  private head = 0;
  /** Unordered mode: completed entries in completion order. */
  private ready: Entry<O>[] = [];
  /** Entries not yet emitted (in flight or completed). */
  private size = 0;
  /** Entries whose call has not completed (drives `ctx.track`). */
  private inFlight = 0;
  private settleTracked: (() => void) | undefined;
  /** Set while a call of the runtime's (processBatch, processWatermark, endInput) waits. */
  private busy = false;
  private waiter: (() => void) | undefined;
  private mailPosted = false;
  /** Entries with an armed timeout (cancelled on close). */
  private readonly armed = new Set<Entry<O>>();
  private failure: SluiceError | undefined;
  private closed = false;
  private readonly drainMail = (out: Output<O>): void => {
    this.mailPosted = false;
    if (this.closed) return;
    if (this.failure) throw this.failure;
    this.drain(out);
  };

  constructor(
    fn: AsyncFunctionLike<I, O>,
    private readonly config: AsyncWaitConfig,
  ) {
    if (typeof fn === 'function') {
      this.invoke = fn;
      this.onTimeout = undefined;
    } else {
      this.invoke = (v) => fn.asyncInvoke(v);
      this.onTimeout = typeof fn.timeout === 'function' ? (v) => fn.timeout!(v) : undefined;
    }
  }

  open(ctx: OperatorContext): void {
    this.ctx = ctx;
  }

  private where(recordIndex?: number): ErrorContext {
    const c: ErrorContext = { operator: this.ctx.operatorName, subtask: this.ctx.subtaskIndex };
    if (recordIndex !== undefined) c.recordIndex = recordIndex;
    return c;
  }

  processBatch(batch: readonly I[], out: Output<O>, firstIndex: number, timestamps: readonly number[] | undefined): MaybePromise {
    if (this.failure) throw this.failure;
    this.drain(out);
    return this.submitFrom(batch, 0, out, firstIndex, timestamps);
  }

  /** Starts calls for `batch[from..]` while there is room; waits for a slot when there is none. */
  private submitFrom(batch: readonly I[], from: number, out: Output<O>, firstIndex: number, timestamps: readonly number[] | undefined): MaybePromise {
    const capacity = this.config.capacity;
    for (let i = from; i < batch.length; i++) {
      if (this.size >= capacity) {
        return this.waitFor(() => this.size < capacity, out).then(() => this.submitFrom(batch, i, out, firstIndex, timestamps));
      }
      this.start(batch[i]!, timestamps === undefined ? undefined : ts(timestamps[i]!), firstIndex + i);
      if (this.failure) throw this.failure;
    }
    return undefined;
  }

  private start(value: I, timestamp: number | undefined, recordIndex: number): void {
    const e: Entry<O> = { value, timestamp, recordIndex, done: false, results: undefined, cancelTimer: undefined };
    let r: PromiseLike<Iterable<O>> | Iterable<O>;
    try {
      r = this.invoke(value);
    } catch (err) {
      throw userFailure(err, this.where(recordIndex));
    }
    this.size++;
    if (this.config.mode === 'ordered') this.queue.push(e);
    if (r != null && typeof (r as PromiseLike<unknown>).then === 'function') {
      if (this.inFlight++ === 0) this.ctx.track(new Promise<void>((resolve) => (this.settleTracked = resolve)));
      const timeoutMs = this.config.timeoutMs;
      if (timeoutMs !== Infinity) {
        e.cancelTimer = this.ctx.clock.schedule(this.ctx.clock.now() + timeoutMs, () => this.timedOut(e));
        this.armed.add(e);
      }
      (r as PromiseLike<Iterable<O>>).then(
        (res) => this.completed(e, res),
        (err: unknown) => {
          if (!e.done) this.fail(userFailure(err, this.where(recordIndex)));
        },
      );
    } else {
      // answered synchronously: done at once, emitted by the next drain
      this.inFlight++;
      this.completed(e, r as Iterable<O>);
    }
  }

  /** A call answered: keep its results and wake whoever emits them. */
  private completed(e: Entry<O>, res: Iterable<O>): void {
    if (e.done || this.closed) return;
    let results: readonly O[];
    if (Array.isArray(res)) results = res;
    else if (res != null && typeof res !== 'string' && typeof (res as Iterable<O>)[Symbol.iterator] === 'function') results = Array.from(res);
    else {
      const msg = `asyncInvoke must resolve to an iterable of results (e.g. [result], or [] for none), got ${typeof res === 'string' ? 'a string' : previewValue(res)}`;
      this.fail(userFailure(new TypeError(msg), this.where(e.recordIndex)));
      return;
    }
    this.finishEntry(e, results);
  }

  /** The clock reached an entry's deadline before its call answered. */
  private timedOut(e: Entry<O>): void {
    e.cancelTimer = undefined;
    this.armed.delete(e);
    if (e.done || this.closed) return;
    const value = e.value as I;
    if (this.onTimeout === undefined) {
      this.fail(new AsyncTimeoutError(this.config.timeoutMs, value, this.where(e.recordIndex)));
      return;
    }
    let results: readonly O[];
    try {
      const r = this.onTimeout(value);
      if (Array.isArray(r)) results = r;
      else if (r != null && typeof r !== 'string' && typeof (r as Iterable<O>)[Symbol.iterator] === 'function') results = Array.from(r);
      else throw new TypeError(`timeout must return an iterable of results (e.g. [fallback], or [] for none), got ${previewValue(r)}`);
    } catch (err) {
      this.fail(userFailure(err, this.where(e.recordIndex)));
      return;
    }
    this.finishEntry(e, results);
  }

  private finishEntry(e: Entry<O>, results: readonly O[]): void {
    e.done = true;
    e.results = results;
    if (e.cancelTimer) {
      e.cancelTimer();
      e.cancelTimer = undefined;
      this.armed.delete(e);
    }
    if (this.config.mode === 'unordered') this.ready.push(e);
    this.callDone();
    this.wake();
  }

  private callDone(): void {
    if (--this.inFlight === 0 && this.settleTracked) {
      const s = this.settleTracked;
      this.settleTracked = undefined;
      s();
    }
  }

  private fail(err: SluiceError): void {
    if (this.failure || this.closed) return;
    this.failure = err;
    this.wake();
  }

  /** Something changed outside the task: the waiting call continues, or a mailbox drain runs. */
  private wake(): void {
    if (this.busy) {
      const w = this.waiter;
      this.waiter = undefined;
      w?.();
    } else if (!this.mailPosted) {
      this.mailPosted = true;
      this.ctx.mailbox(this.drainMail);
    }
  }

  /**
   * Waits (draining into `out` as results complete) until `cond` holds. The last drain and the end of
   * `busy` happen in one synchronous step, so a completion is either drained here or posts a mailbox
   * drain — never lost, never emitted twice.
   */
  private async waitFor(cond: () => boolean, out: Output<O>): Promise<void> {
    this.busy = true;
    try {
      for (;;) {
        if (this.failure) throw this.failure;
        this.drain(out);
        if (cond()) return;
        await new Promise<void>((resolve) => (this.waiter = resolve));
      }
    } finally {
      this.busy = false;
      this.waiter = undefined;
    }
  }

  /** Emits what may leave now: the completed head of the queue (ordered) or every completed entry (unordered). */
  private drain(out: Output<O>): void {
    if (this.config.mode === 'ordered') {
      const q = this.queue;
      let h = this.head;
      while (h < q.length && q[h]!.done) {
        this.emit(q[h]!, out);
        h++;
      }
      if (h === q.length) {
        q.length = 0;
        h = 0;
      } else if (h > 1024 && h * 2 > q.length) {
        q.splice(0, h);
        h = 0;
      }
      this.head = h;
    } else {
      const r = this.ready;
      if (r.length === 0) return;
      for (let i = 0; i < r.length; i++) this.emit(r[i]!, out);
      r.length = 0;
    }
  }

  private emit(e: Entry<O>, out: Output<O>): void {
    const results = e.results!;
    const t = e.timestamp;
    for (let j = 0; j < results.length; j++) out.push(results[j]!, t);
    e.results = undefined;
    this.size--;
  }

  processWatermark(_watermark: number, out: Output<O>): MaybePromise {
    if (this.failure) throw this.failure;
    this.drain(out);
    return this.size === 0 ? undefined : this.waitFor(() => this.size === 0, out);
  }

  endInput(out: Output<O>): MaybePromise {
    if (this.failure) throw this.failure;
    this.drain(out);
    return this.size === 0 ? undefined : this.waitFor(() => this.size === 0, out);
  }

  close(): void {
    // late answers are ignored from here on; a call still waiting is abandoned with the job
    this.closed = true;
    for (const e of this.armed) e.cancelTimer?.();
    this.armed.clear();
    this.queue = [];
    this.ready = [];
    this.inFlight = 0;
    const s = this.settleTracked;
    this.settleTracked = undefined;
    s?.();
  }
}
