// Owns state descriptors (what a state is called, its kind, its functions, TTL, and how its values
// turn into snapshot data) and the handle interfaces user functions program against (Flink-shaped).

import type { Fields, InferRow, Schema } from '../core/schema.ts';
import type { StateTtlConfig } from './ttl.ts';

/** The kinds of state. */
export type StateKind = 'value' | 'list' | 'map' | 'reducing' | 'aggregating';

/**
 * Turns values into data MessagePack can encode (plain objects, arrays, numbers, strings, bigint,
 * Uint8Array, Date, null) for snapshots, and back on restore. Needed only for other values (Map,
 * Set, class instances).
 *
 * @example
 * const codec: StateCodec<Set<string>> = { toPlain: (s) => [...s], fromPlain: (p) => new Set(p as string[]) };
 */
export interface StateCodec<T> {
  toPlain(value: T): unknown;
  fromPlain(plain: unknown): T;
}

/** Options shared by every descriptor. */
export interface StateDescriptorOptions<T> {
  /** Snapshot conversion of values (of map state: values; keys use `keyCodec`). */
  codec?: StateCodec<T>;
  /** Time to live of the state's entries. */
  ttl?: StateTtlConfig;
}

/** Base of every descriptor. Names identify state within an operator: snapshots are matched by name. */
export abstract class StateDescriptor<T = unknown, S = unknown> {
  abstract readonly kind: StateKind;
  /** @internal phantom: the handle type */
  declare readonly __handle: S;
  ttl: StateTtlConfig | undefined;
  readonly codec: StateCodec<T> | undefined;
  constructor(
    readonly name: string,
    opts: StateDescriptorOptions<T> = {},
  ) {
    if (typeof name !== 'string' || name.length === 0) throw new TypeError('a state descriptor needs a non-empty name');
    this.codec = opts.codec;
    this.ttl = opts.ttl;
  }
  /** Gives the state a time to live (Flink's `enableTimeToLive`). */
  enableTimeToLive(ttl: StateTtlConfig): this {
    this.ttl = ttl;
    return this;
  }
  toString(): string {
    return `${this.kind} state '${this.name}'`;
  }
}

/** One value per key. */
export interface ValueState<T> {
  /** The current key's value, or undefined. */
  value(): T | undefined;
  /** Sets the current key's value; `undefined` clears it (as Flink's `update(null)`). */
  update(value: T | undefined): void;
  clear(): void;
}

/** A list per key. */
export interface ListState<T> {
  /** The current key's elements (a fresh array; empty when there are none). */
  get(): T[];
  add(value: T): void;
  addAll(values: Iterable<T>): void;
  /** Replaces the list; an empty list clears. */
  update(values: Iterable<T>): void;
  clear(): void;
}

/**
 * A map per key. Map keys follow the engine's key equality (SameValueZero for primitives; arrays,
 * Dates and Uint8Arrays by content).
 */
export interface MapState<K, V> {
  get(key: K): V | undefined;
  put(key: K, value: V): void;
  putAll(entries: Iterable<readonly [K, V]> | Map<K, V>): void;
  remove(key: K): void;
  contains(key: K): boolean;
  entries(): IterableIterator<[K, V]>;
  keys(): IterableIterator<K>;
  values(): IterableIterator<V>;
  isEmpty(): boolean;
  clear(): void;
}

/** A value per key folded from what was added (`get` answers the folded value). */
export interface ReducingState<T> {
  get(): T | undefined;
  add(value: T): void;
  clear(): void;
}

/** An accumulator per key; `get` answers `getResult(acc)`. */
export interface AggregatingState<IN, OUT> {
  get(): OUT | undefined;
  add(value: IN): void;
  clear(): void;
}

/** Options of a value state; `schema` lets the binary backend store values as binary rows. */
export interface ValueStateOptions<T> extends StateDescriptorOptions<T> {
  schema?: Schema;
}

/**
 * Describes a {@link ValueState}.
 *
 * @example
 * const count = new ValueStateDescriptor<number>('count');
 * backend.setCurrentKey('user-1');
 * const st = backend.getState(count);
 * st.update((st.value() ?? 0) + 1);
 */
export class ValueStateDescriptor<T> extends StateDescriptor<T, ValueState<T>> {
  readonly kind = 'value' as const;
  readonly schema: Schema | undefined;
  constructor(name: string, opts: ValueStateOptions<T> = {}) {
    super(name, opts);
    this.schema = opts.schema;
  }
  /** A value state of schema'd rows (binary-backend ready). */
  static ofSchema<F extends Fields>(name: string, schema: Schema<F>, opts: StateDescriptorOptions<InferRow<F>> = {}): ValueStateDescriptor<InferRow<F>> {
    return new ValueStateDescriptor<InferRow<F>>(name, { ...opts, schema });
  }
}

/** Describes a {@link ListState}. The codec converts each element. */
export class ListStateDescriptor<T> extends StateDescriptor<T, ListState<T>> {
  readonly kind = 'list' as const;
}

/** Describes a {@link MapState}. `codec` converts values, `keyCodec` user keys. */
export class MapStateDescriptor<K, V> extends StateDescriptor<V, MapState<K, V>> {
  readonly kind = 'map' as const;
  readonly keyCodec: StateCodec<K> | undefined;
  constructor(name: string, opts: StateDescriptorOptions<V> & { keyCodec?: StateCodec<K> } = {}) {
    super(name, opts);
    this.keyCodec = opts.keyCodec;
  }
}

/**
 * Describes a {@link ReducingState}: `reduce(acc, value)` folds each added value.
 *
 * @example
 * const sum = new ReducingStateDescriptor<number>('sum', (a, b) => a + b);
 */
export class ReducingStateDescriptor<T> extends StateDescriptor<T, ReducingState<T>> {
  readonly kind = 'reducing' as const;
  constructor(
    name: string,
    readonly reduce: (acc: T, value: T) => T,
    opts: StateDescriptorOptions<T> = {},
  ) {
    super(name, opts);
    if (typeof reduce !== 'function') throw new TypeError(`reducing state '${name}' needs a reduce function`);
  }
}

/** The aggregate function of an {@link AggregatingStateDescriptor} (Flink's AggregateFunction). */
export interface AggregateFunction<IN, ACC, OUT> {
  createAccumulator(): ACC;
  /** Folds `value` into `acc`; returns the new accumulator (which may be `acc` itself, mutated). */
  add(value: IN, acc: ACC): ACC;
  getResult(acc: ACC): OUT;
  /** Merges two accumulators (session-window merging needs it). */
  merge?(a: ACC, b: ACC): ACC;
}

/**
 * Describes an {@link AggregatingState}; the codec converts accumulators.
 *
 * @example
 * const avg = new AggregatingStateDescriptor<number, [number, number], number>('avg', {
 *   createAccumulator: () => [0, 0],
 *   add: (v, [s, n]) => [s + v, n + 1],
 *   getResult: ([s, n]) => s / n,
 * });
 */
export class AggregatingStateDescriptor<IN, ACC, OUT> extends StateDescriptor<ACC, AggregatingState<IN, OUT>> {
  readonly kind = 'aggregating' as const;
  constructor(
    name: string,
    readonly fn: AggregateFunction<IN, ACC, OUT>,
    opts: StateDescriptorOptions<ACC> = {},
  ) {
    super(name, opts);
    if (!fn || typeof fn.createAccumulator !== 'function' || typeof fn.add !== 'function' || typeof fn.getResult !== 'function') {
      throw new TypeError(`aggregating state '${name}' needs createAccumulator, add and getResult`);
    }
  }
}

/** The handle type a descriptor produces. */
export type HandleOf<D> = D extends StateDescriptor<any, infer S> ? S : never;
