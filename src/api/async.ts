// Owns AsyncDataStream: the entry points of async I/O (ordered and unordered waits) that add an
// AsyncWaitOperator to a stream.

import { JobDefinitionError } from '../core/errors.ts';
import type { OperatorTransformation } from '../graph/transformation.ts';
import { type AsyncFunctionLike, type AsyncOutputMode, AsyncWaitOperator } from '../operators/async-io.ts';
import { type DataStream, SingleOutputStreamOperator } from './datastream.ts';

export { AsyncTimeoutError, type AsyncFunction, type AsyncFunctionLike } from '../operators/async-io.ts';

/** Options of {@link AsyncDataStream.orderedWait} / {@link AsyncDataStream.unorderedWait}. */
export interface AsyncWaitOptions {
  /**
   * Milliseconds of processing time (the job's clock) a call may take. A call that takes longer fails
   * the job with an `AsyncTimeoutError` naming the operator and record — unless the function has a
   * `timeout` handler, whose results are then emitted instead. Default: no limit.
   */
  timeoutMs?: number;
  /**
   * Most records in the operator at once per subtask, in flight or completed and waiting to be emitted
   * (Flink's capacity). When it is reached the operator takes no more input until a slot frees:
   * that is the backpressure. Default 100.
   */
  capacity?: number;
}

/** Flink's default queue capacity. */
const DEFAULT_CAPACITY = 100;

function addAsyncWait<T, O>(stream: DataStream<T>, fn: AsyncFunctionLike<T, O>, opts: AsyncWaitOptions, mode: AsyncOutputMode): SingleOutputStreamOperator<O> {
  const what = mode === 'ordered' ? 'orderedWait' : 'unorderedWait';
  let fnName: string;
  if (typeof fn === 'function') fnName = fn.name;
  else if (fn !== null && typeof fn === 'object' && typeof fn.asyncInvoke === 'function') {
    // an instance of a class names the operator by its class; a plain object stays anonymous
    const ctor = (fn as { constructor?: { name?: string } }).constructor?.name;
    fnName = ctor && ctor !== 'Object' ? ctor : '';
  }
  else throw new JobDefinitionError(`${what} expects a function (value) => Promise<results[]> or an object with asyncInvoke(value)`);
  const capacity = opts.capacity ?? DEFAULT_CAPACITY;
  if (!Number.isSafeInteger(capacity) || capacity < 1) throw new JobDefinitionError(`${what}: capacity must be an integer >= 1, got ${String(capacity)}`);
  const timeoutMs = opts.timeoutMs ?? Infinity;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) throw new JobDefinitionError(`${what}: timeoutMs must be a number > 0, got ${String(timeoutMs)}`);
  const config = { mode, capacity, timeoutMs };
  const t: OperatorTransformation = {
    kind: 'operator',
    id: stream.env._nextId(),
    name: fnName ? `AsyncWait(${fnName})` : 'AsyncWait',
    parallelism: undefined,
    chaining: 'always',
    input: stream.transformation,
    factory: () => new AsyncWaitOperator<T, O>(fn, config),
  };
  return new SingleOutputStreamOperator<O>(stream.env, t);
}

/**
 * Async I/O, as Flink's `AsyncDataStream`: calls a function that answers with a promise for every
 * record of a stream, with many calls in flight at once (up to `capacity` per subtask), and emits the
 * results the promise resolves to (an array or any iterable; `[]` for none). Results carry the input
 * record's timestamp. A rejected promise fails the job with a `UserFunctionError` naming the operator
 * and the record's index; a call slower than `timeoutMs` fails it with an `AsyncTimeoutError` (or
 * uses the function's `timeout` handler). Timeouts run on the job's clock, so a `ManualClock` makes
 * them deterministic in tests.
 *
 * @example
 * const enriched = AsyncDataStream.orderedWait(
 *   orders,
 *   async (o) => [{ ...o, customer: await fetchCustomer(o.customerId) }],
 *   { timeoutMs: 5_000, capacity: 50 },
 * );
 * // with a fallback on timeout instead of a failure:
 * const prices = AsyncDataStream.unorderedWait(trades, {
 *   asyncInvoke: async (t) => [{ ...t, fx: await rates.get(t.ccy) }],
 *   timeout: (t) => [{ ...t, fx: null }],
 * }, { timeoutMs: 200 });
 */
export const AsyncDataStream = {
  /**
   * Emits results in the order of the input records (a completed call waits for the ones before it).
   * @example AsyncDataStream.orderedWait(ids, async (id) => [await db.lookup(id)], { timeoutMs: 1_000 })
   */
  orderedWait<T, O>(stream: DataStream<T>, fn: AsyncFunctionLike<T, O>, opts: AsyncWaitOptions = {}): SingleOutputStreamOperator<O> {
    return addAsyncWait(stream, fn, opts, 'ordered');
  },

  /**
   * Emits results as calls complete; records are reordered only between watermarks (everything
   * before a watermark is emitted before it), so event time stays correct downstream.
   * @example AsyncDataStream.unorderedWait(ids, async (id) => [await db.lookup(id)], { capacity: 200 })
   */
  unorderedWait<T, O>(stream: DataStream<T>, fn: AsyncFunctionLike<T, O>, opts: AsyncWaitOptions = {}): SingleOutputStreamOperator<O> {
    return addAsyncWait(stream, fn, opts, 'unordered');
  },
} as const;
