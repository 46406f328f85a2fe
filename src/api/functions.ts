// Owns the user-function contracts of the process API (Flink-shaped): ProcessFunction,
// KeyedProcessFunction, CoProcessFunction, KeyedCoProcessFunction and broadcast process functions,
// their contexts, the timer service they see, Collector, OutputTag and RuntimeContext.

import { JobDefinitionError } from '../core/errors.ts';
import type { StateDescriptor, HandleOf, MapStateDescriptor, ReadOnlyBroadcastState, BroadcastState } from '../state/index.ts';
import type { InvalidKeyError } from '../runtime/keys.ts';

/**
 * Names a side output of an operator; `T` is the type of its records. Two tags with the same id are
 * the same side output.
 *
 * @example
 * const late = new OutputTag<Trade>('late');
 * const main = trades.process({
 *   processElement(t, ctx, out) { if (t.price < 0) ctx.output(late, t); else out.collect(t); },
 * });
 * main.getSideOutput(late).print('late');
 */
export class OutputTag<T> {
  /** @internal phantom for the record type */
  declare readonly __type?: T;
  constructor(readonly id: string) {
    if (typeof id !== 'string' || id === '') throw new JobDefinitionError('an OutputTag needs a non-empty id');
  }
  toString(): string {
    return `OutputTag(${this.id})`;
  }
}

/**
 * Options of `keyBy`. `invalidKeys` says what happens to a record whose key cannot be used: the
 * record lacks the keyBy field, the key selector threw, or the key cannot be hashed (an object that is
 * not an array, Date or Uint8Array; a function; a symbol). `'fail'` (default): the job fails naming
 * the keyBy, the subtask and the record. `'drop'`: the record is skipped. An `OutputTag`: the record,
 * wrapped in an {@link InvalidKeyError} that says why, goes to that side output of the keyed stream
 * (`keyed.getSideOutput(tag)`). Both need a check chained before the hash exchange (at its input's
 * parallelism), which calls the key selector once more per record. Across worker threads records
 * travel as MessagePack, which an `InvalidKeyError` (a class instance, often holding an unencodable
 * key) is not: on workers, turn the side output into plain data before it meets an exchange, i.e. in
 * an operator at the keyBy input's parallelism.
 *
 * @example
 * const badKeys = new OutputTag<InvalidKeyError<Order>>('bad-keys');
 * const keyed = orders.keyBy((o) => o.customer, { invalidKeys: badKeys });
 * keyed.sum('amount').print('totals');
 * keyed.getSideOutput(badKeys).map((e) => e.record).print('no customer');
 */
export interface KeyByOptions<T> {
  readonly invalidKeys?: 'fail' | 'drop' | OutputTag<InvalidKeyError<T>>;
}

/** Where a function emits its records. @example out.collect({ key, count }) */
export interface Collector<T> {
  collect(record: T): void;
}

/**
 * Time as a process function sees it. Timers are per key: they need a keyed stream. One timer per
 * key and timestamp (registering it again is a no-op); event-time timers fire in timestamp order
 * once the watermark reaches them, processing-time timers once the job's clock does.
 */
export interface TimerService {
  /** The job clock's time, ms. */
  currentProcessingTime(): number;
  /** The operator's current watermark (MIN_WATERMARK before the first). */
  currentWatermark(): number;
  registerEventTimeTimer(timestamp: number): void;
  registerProcessingTimeTimer(timestamp: number): void;
  deleteEventTimeTimer(timestamp: number): void;
  deleteProcessingTimeTimer(timestamp: number): void;
}

/** Which clock a timer followed. */
export type TimeDomain = 'event-time' | 'processing-time';

/** What a function learns about where it runs (given to `open`). */
export interface RuntimeContext {
  readonly operatorName: string;
  readonly subtaskIndex: number;
  readonly parallelism: number;
  readonly maxParallelism: number;
  /**
   * The keyed state a descriptor names, scoped to the key of the record (or timer) being processed.
   * Only on keyed streams; call it in `open` and keep the handle.
   * @example this.count = ctx.getState(new ValueStateDescriptor<number>('count'));
   */
  getState<D extends StateDescriptor<any, any>>(descriptor: D): HandleOf<D>;
}

/** Context of one record in a process function. */
export interface ProcessContext {
  /** The record's event timestamp, or undefined if it has none. */
  timestamp(): number | undefined;
  timerService(): TimerService;
  /** Emits to a side output (with the record's timestamp). */
  output<X>(tag: OutputTag<X>, value: X): void;
}

/** Context of one record of a keyed stream. */
export interface KeyedProcessContext<K> extends ProcessContext {
  getCurrentKey(): K;
}

/** Context of a firing timer. */
export interface OnTimerContext<K> extends KeyedProcessContext<K> {
  timeDomain(): TimeDomain;
}

/** Lifecycle shared by every function: `open` before the first record, `close` after the last. */
export interface RichFunction {
  open?(ctx: RuntimeContext): void;
  close?(): void;
}

/**
 * A function over every record of a stream (Flink `ProcessFunction`). The object is copied (shallowly)
 * per parallel subtask, so fields set in `open` belong to one subtask.
 *
 * @example
 * stream.process<string>({
 *   processElement(value, ctx, out) { out.collect(`${value} @ ${ctx.timestamp()}`); },
 * });
 */
export interface ProcessFunction<I, O> extends RichFunction {
  processElement(value: I, ctx: ProcessContext, out: Collector<O>): void;
}

/**
 * A function over a keyed stream, with keyed state and timers (Flink `KeyedProcessFunction`).
 *
 * @example
 * // emit a key's count once no record came for 10 s of event time
 * keyed.process<{ key: string; n: number }>({
 *   open(ctx) { this.n = ctx.getState(new ValueStateDescriptor<number>('n')); },
 *   processElement(v, ctx, out) {
 *     this.n.update((this.n.value() ?? 0) + 1);
 *     ctx.timerService().registerEventTimeTimer(ctx.timestamp()! + 10_000);
 *   },
 *   onTimer(ts, ctx, out) { out.collect({ key: ctx.getCurrentKey(), n: this.n.value()! }); },
 * } as KeyedProcessFunction<string, Event, { key: string; n: number }> & { n: ValueState<number> });
 */
export interface KeyedProcessFunction<K, I, O> extends RichFunction {
  processElement(value: I, ctx: KeyedProcessContext<K>, out: Collector<O>): void;
  onTimer?(timestamp: number, ctx: OnTimerContext<K>, out: Collector<O>): void;
}

/**
 * A function over two connected streams (Flink `CoProcessFunction`).
 * @example
 * a.connect(b).process<string>({
 *   processElement1(x, ctx, out) { out.collect(`a:${x}`); },
 *   processElement2(y, ctx, out) { out.collect(`b:${y}`); },
 * });
 */
export interface CoProcessFunction<I1, I2, O> extends RichFunction {
  processElement1(value: I1, ctx: ProcessContext, out: Collector<O>): void;
  processElement2(value: I2, ctx: ProcessContext, out: Collector<O>): void;
}

/**
 * A function over two connected keyed streams, sharing keyed state and timers per key (Flink
 * `KeyedCoProcessFunction`).
 * @example
 * orders.connect(payments).keyBy('orderId', 'orderId').process<Matched>({ ... });
 */
export interface KeyedCoProcessFunction<K, I1, I2, O> extends RichFunction {
  processElement1(value: I1, ctx: KeyedProcessContext<K>, out: Collector<O>): void;
  processElement2(value: I2, ctx: KeyedProcessContext<K>, out: Collector<O>): void;
  onTimer?(timestamp: number, ctx: OnTimerContext<K>, out: Collector<O>): void;
}

/** Broadcast state access while processing a broadcast record: read and write. */
export interface BroadcastContext extends ProcessContext {
  getBroadcastState<K, V>(descriptor: MapStateDescriptor<K, V>): BroadcastState<K, V>;
}

/** Broadcast state access while processing a keyed (non-broadcast) record: read only. */
export interface ReadOnlyBroadcastContext<K> extends KeyedProcessContext<K> {
  getBroadcastState<BK, V>(descriptor: MapStateDescriptor<BK, V>): ReadOnlyBroadcastState<BK, V>;
}

/**
 * Processes a keyed stream connected to a broadcast stream (Flink `KeyedBroadcastProcessFunction`):
 * every subtask sees every broadcast record and keeps the same broadcast state.
 * @example
 * const rules = new MapStateDescriptor<string, Rule>('rules');
 * events.keyBy('user').connect(ruleStream.broadcast(rules)).process<Alert>({
 *   processBroadcastElement(rule, ctx) { ctx.getBroadcastState(rules).put(rule.id, rule); },
 *   processElement(e, ctx, out) { for (const [, r] of ctx.getBroadcastState(rules).entries()) if (r.matches(e)) out.collect(alert(e, r)); },
 * });
 */
export interface KeyedBroadcastProcessFunction<K, I, B, O> extends RichFunction {
  processElement(value: I, ctx: ReadOnlyBroadcastContext<K>, out: Collector<O>): void;
  processBroadcastElement(value: B, ctx: BroadcastContext, out: Collector<O>): void;
  onTimer?(timestamp: number, ctx: OnTimerContext<K>, out: Collector<O>): void;
}

/** A non-keyed stream connected to a broadcast stream (Flink `BroadcastProcessFunction`). */
export interface BroadcastProcessFunction<I, B, O> extends RichFunction {
  processElement(value: I, ctx: ProcessContext & { getBroadcastState<BK, V>(d: MapStateDescriptor<BK, V>): ReadOnlyBroadcastState<BK, V> }, out: Collector<O>): void;
  processBroadcastElement(value: B, ctx: BroadcastContext, out: Collector<O>): void;
}

/** A per-subtask copy of a user function object (own fields copied, prototype kept). */
export function copyFunction<F extends object>(fn: F): F {
  return Object.assign(Object.create(Object.getPrototypeOf(fn) as object | null) as F, fn);
}
