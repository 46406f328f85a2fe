// Owns the contracts between graph, runtime and operators: what an operator, a source reader, a key
// selector and an operator's runtime context look like. Types only; implementations live in
// src/operators and src/connectors, the runtime drives them.

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
  /** The keyed state named `name` of this operator in this subtask (created on first use). */
  getKeyedState<V>(name: string): KeyedStateStore<V>;
}

/**
 * A one-input operator. The runtime calls `processBatch` with each batch of input records, in order;
 * outputs are appended to `out`. Operators must not mutate the input batch or its records (a batch may
 * be shared by several downstream branches). Hooks for watermarks, timers and checkpoints will be
 * optional methods added next to `endInput`.
 */
export interface StreamOperator<I = unknown, O = unknown> {
  open?(ctx: OperatorContext): void;
  /** `firstIndex` is the index (in this subtask's input) of `batch[0]`; errors report `firstIndex + i`. */
  processBatch(batch: readonly I[], out: O[], firstIndex: number): void;
  /** All inputs delivered end-of-input: emit what is still held (batch-mode aggregates). */
  endInput?(out: O[]): void;
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
