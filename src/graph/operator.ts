// Owns the contracts between graph, runtime and operators: what an operator, a source reader, a key
// selector and an operator's runtime context look like. Types only; implementations live in
// src/operators and src/connectors, the runtime drives them.

import type { ProcessingClock } from '../runtime/clock.ts';

/**
 * How a job runs. `streaming`: keyed aggregates emit an updated record per input (Flink's rolling
 * aggregates). `batch`: the input is bounded and keyed aggregates emit only the final value per key.
 */
export type RuntimeMode = 'streaming' | 'batch';

/**
 * Keyed state of one operator in one subtask, scoped by key group so that it can be snapshotted and
 * redistributed per key group when the parallelism changes.
 */
export interface KeyedStateStore<V> {
  /** The value of `key` in `keyGroup`, or undefined. Cost: two hash-map lookups. */
  get(keyGroup: number, key: unknown): V | undefined;
  /** Sets the value of `key` in `keyGroup`. */
  set(keyGroup: number, key: unknown, value: V): void;
  /** Removes `key` from `keyGroup`. */
  delete(keyGroup: number, key: unknown): void;
  /** All entries, key groups ascending, keys in insertion order within a group. */
  entries(): IterableIterator<[keyGroup: number, key: unknown, value: V]>;
  /** Number of keys over all key groups. */
  readonly size: number;
}

/** A result that is either ready now (`undefined`) or a promise (spill I/O, async I/O, async sinks). */
export type MaybePromise = void | Promise<void>;

/**
 * Where an operator emits during one call: records of its main output, each with an optional event
 * timestamp (integer ms; `undefined` = the record has none), and records of side outputs by tag id.
 * Emitting costs an array push; nothing is sent before the call returns.
 */
export interface Output<O = unknown> {
  push(record: O, timestamp?: number): void;
  /** Emits to the side output `tag` (the id of an `OutputTag`). */
  pushSide(tag: string, record: unknown, timestamp?: number): void;
  /**
   * Emits a watermark after the records pushed so far (only operators with `forwardsWatermarks:
   * false` do: they generate event time themselves). Watermarks must increase.
   */
  pushWatermark(timestamp: number): void;
  /** Declares the output idle (excluded from downstream watermarks) or active again. */
  pushStatus(status: 'idle' | 'active'): void;
  /**
   * Sends what was pushed so far down the chain now, and waits while the task's outputs are over
   * their bound (backpressure). For operators that emit a large result in pieces, e.g. a blocking
   * operator's `endInput`: `for (const chunk of result) { for (const r of chunk) out.push(r); await out.flush?.(); }`
   * keeps only a chunk in the heap at a time. Absent on outputs that cannot flush (the caller emits at the end).
   */
  flush?(): MaybePromise;
}

/** What an operator instance knows about where it runs. One per operator per subtask. */
export interface OperatorContext {
  /** Display name, e.g. `Map(parse)`; errors name the operator with it. */
  readonly operatorName: string;
  /** Id of the operator's node in the stream graph. */
  readonly operatorId: number;
  readonly subtaskIndex: number;
  readonly parallelism: number;
  /** Number of key groups (the upper bound of the parallelism of keyed operators). */
  readonly maxParallelism: number;
  readonly runtimeMode: RuntimeMode;
  /** The job's processing-time clock (injectable: `StreamEnvironment.create({ clock })`). */
  readonly clock: ProcessingClock;
  /** The operator's current input watermark (MIN_WATERMARK before the first). */
  readonly currentWatermark: number;
  /** The keyed state named `name` of this operator in this subtask (created on first use). */
  getKeyedState<V>(name: string): KeyedStateStore<V>;
  /**
   * Runs `action` on the task between batches (Flink's mailbox), with an output to emit into, and
   * wakes the executor. For work that completes outside a call: async I/O results, clock callbacks.
   */
  mailbox(action: (out: Output<any>) => MaybePromise): void;
  /**
   * Schedules `action` through the mailbox once the clock reaches `at` (ms). Cancelled automatically
   * when the task finishes or fails; the returned function cancels it earlier.
   */
  scheduleAt(at: number, action: (out: Output<any>, now: number) => MaybePromise): () => void;
  /**
   * Tells the executor the operator waits for `p` (an in-flight async call): the job is not stalled
   * while it is pending, and its settling wakes the executor.
   */
  track(p: Promise<unknown>): void;
}

/**
 * A one- or two-input operator. The runtime calls `processBatch` with each batch of input records, in
 * order; outputs go to `out`. `timestamps`, when given, holds the event time of each record (NaN = the
 * record has none). Operators must not mutate the input batch or its records (a batch may be shared
 * by several downstream branches). Any method may return a promise; the task then waits for it
 * before it feeds the operator anything else (records, watermarks, end of input).
 */
export interface StreamOperator<I = unknown, O = unknown> {
  open?(ctx: OperatorContext): void;
  /** `firstIndex` is the index (in this subtask's input) of `batch[0]`; errors report `firstIndex + i`. */
  processBatch(batch: readonly I[], out: Output<O>, firstIndex: number, timestamps: readonly number[] | undefined): MaybePromise;
  /** Records of the second input of a two-input operator (`connect`). */
  processBatch2?(batch: readonly unknown[], out: Output<O>, firstIndex: number, timestamps: readonly number[] | undefined): MaybePromise;
  /**
   * The input watermark advanced to `watermark` (fire event-time timers here). The runtime forwards
   * the watermark downstream after this returns, so what the operator emits here precedes it — unless
   * `forwardsWatermarks` is false (an operator that generates its own watermarks).
   */
  processWatermark?(watermark: number, out: Output<O>): MaybePromise;
  /** False: the runtime does not forward input watermarks; the operator emits its own with `out.pushWatermark`. */
  readonly forwardsWatermarks?: boolean;
  /** All inputs delivered end-of-input: emit what is still held (batch-mode aggregates). */
  endInput?(out: Output<O>): MaybePromise;
  close?(): void;
}

/** Creates a fresh operator instance for one subtask. */
export type OperatorFactory = () => StreamOperator<any, any>;

/** One subtask's reader of a source. */
export interface SourceReader<O = unknown> {
  open?(ctx: OperatorContext): void;
  /**
   * Appends up to `max` records to `out`; returns false once the reader is exhausted. Must not block:
   * a reader whose data is still on its way (a file read, a stream chunk) appends nothing, returns
   * true, and says what it waits for through `ready()`.
   */
  poll(out: O[], max: number): boolean;
  /**
   * Asked by the runtime after a `poll()` that appended nothing and returned true. A promise: the
   * reader can emit nothing until some I/O completes, and the promise settles when it has something to
   * answer (records, the end, or an error — which the next `poll()` then throws; a rejection is only a
   * wake-up). `undefined`: the reader can make progress now (poll again). While every unfinished task
   * waits on such promises the executor awaits them instead of polling in a loop. Without `ready()`
   * a reader is polled every round (a synchronous source).
   */
  ready?(): Promise<void> | undefined;
  /** Replay position (e.g. the next index) — what a checkpoint will store for a replayable source. */
  position?(): unknown;
  close?(): void;
}

/** A source: how it splits over subtasks and whether it can be replayed after a failure. */
export interface SourceSpec<O = unknown> {
  /** A bounded source ends; a batch-mode job needs all its sources bounded. */
  readonly bounded: boolean;
  /** Whether a reader can be rewound to a stored `position()` (needed for exactly-once recovery). */
  readonly replayable: boolean;
  createReader(subtaskIndex: number, parallelism: number): SourceReader<O>;
}

/** How records are keyed: a field name or a selector function. */
export interface KeySelectorSpec {
  /** Extracts the key of a record. */
  readonly fn: (record: any) => unknown;
  /** For display: the field name or the selector's name. */
  readonly description: string;
  /** Set when keyed by field: records lacking it are a JobDefinitionError. */
  readonly field?: string;
}
