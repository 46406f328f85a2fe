// Owns keyed rolling aggregation: reduce, sum, min, max, minBy and maxBy over a keyed stream, with one
// accumulator per key in keyed state (scoped by key group). Streaming mode emits the updated value per
// input record; batch mode emits the final value per key at end of input.

import { FieldValueError, UserFunctionError } from '../core/errors.ts';
import type { KeySelectorSpec, KeyedStateStore, OperatorContext, Output, StreamOperator } from '../graph/operator.ts';
import { ts } from './basic.ts';
import { userFailure } from '../runtime/failure.ts';
import { KeyGroupAssigner, extractKey } from '../runtime/keys.ts';

/**
 * A rolling aggregate, in the `init / add / value` protocol (a `rem` will join it for sliding windows).
 * `add` may update `acc` in place and return it.
 */
export interface RollingAggregate<T, A> {
  init(first: T): A;
  add(acc: A, value: T): A;
  value(acc: A): T;
}

/** Applies a rolling aggregate per key. Cost per record: key extraction, one hash (memoized for strings), two map lookups. */
export class KeyedAggregateOperator<T, A> implements StreamOperator<T, T> {
  private state!: KeyedStateStore<A>;
  private streaming = true;
  private operator = '';
  private subtask = 0;
  private assigner!: KeyGroupAssigner;

  constructor(
    private readonly key: KeySelectorSpec,
    private readonly agg: RollingAggregate<T, A>,
  ) {}

  open(ctx: OperatorContext): void {
    this.state = ctx.getKeyedState<A>('aggregate');
    this.streaming = ctx.runtimeMode === 'streaming';
    this.operator = ctx.operatorName;
    this.subtask = ctx.subtaskIndex;
    this.assigner = new KeyGroupAssigner(this.key, ctx.maxParallelism);
  }

  processBatch(batch: readonly T[], out: Output<T>, firstIndex: number, timestamps: readonly number[] | undefined): void {
    const { key: spec, agg, state, operator, subtask, assigner } = this;
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]!;
      const idx = firstIndex + i;
      const key = extractKey(spec, r, operator, subtask, idx);
      const kg = assigner.keyGroup(key, operator, subtask, idx);
      const prev = state.get(kg, key);
      let acc: A;
      try {
        acc = prev === undefined ? agg.init(r) : agg.add(prev, r);
      } catch (e) {
        throw userFailure(e, { operator, subtask, recordIndex: idx });
      }
      if (acc !== prev) state.set(kg, key, acc);
      if (this.streaming) out.push(agg.value(acc), timestamps === undefined ? undefined : ts(timestamps[i]!));
    }
  }

  endInput(out: Output<T>): void {
    if (this.streaming) return;
    for (const [, , acc] of this.state.entries()) out.push(this.agg.value(acc));
  }
}

/** `reduce(fn)`: the accumulator is the last value `fn` returned, starting with the key's first record. */
export function reduceAggregate<T>(fn: (acc: T, value: T) => T): RollingAggregate<T, T> {
  return {
    init: (first) => first,
    add(acc, value) {
      const r = fn(acc, value);
      if (r === undefined) throw new UserFunctionError(new TypeError('reduce function returned undefined'));
      return r;
    },
    value: (acc) => acc,
  };
}

/** A copy of `base` with `field` set to `value` (keeps the prototype of class instances, arrays stay arrays). */
export function withField<T>(base: T, field: string, value: unknown): T {
  if (Array.isArray(base)) {
    const c = base.slice();
    (c as unknown as Record<string, unknown>)[field] = value;
    return c as T;
  }
  const proto = Object.getPrototypeOf(base);
  if (proto === Object.prototype || proto === null) return { ...(base as object), [field]: value } as T;
  return Object.assign(Object.create(proto), base, { [field]: value }) as T;
}

function numericField(r: unknown, field: string): number | bigint {
  const v = r !== null && typeof r === 'object' ? (r as Record<string, unknown>)[field] : undefined;
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  throw new FieldValueError(field, v == null ? 'missing' : 'wrong-type', 'number or bigint', v);
}

interface FieldAcc<T> {
  base: T;
  v: number | bigint;
}

/** `sum(field)`: other fields come from the key's first record (Flink semantics). */
export function sumAggregate<T>(field: string): RollingAggregate<T, FieldAcc<T>> {
  return {
    init: (first) => ({ base: first, v: numericField(first, field) }),
    add(acc, value) {
      const v = numericField(value, field);
      if (typeof v !== typeof acc.v) throw new FieldValueError(field, 'wrong-type', typeof acc.v, v);
      acc.v = (acc.v as number) + (v as number);
      return acc;
    },
    value: (acc) => withField(acc.base, field, acc.v),
  };
}

/** `min(field)` / `max(field)`: the field holds the extreme so far, other fields the first record's. */
export function extremeAggregate<T>(field: string, kind: 'min' | 'max'): RollingAggregate<T, FieldAcc<T>> {
  const better = kind === 'min' ? (a: number | bigint, b: number | bigint) => a < b : (a: number | bigint, b: number | bigint) => a > b;
  return {
    init: (first) => ({ base: first, v: numericField(first, field) }),
    add(acc, value) {
      const v = numericField(value, field);
      if (better(v, acc.v)) acc.v = v;
      return acc;
    },
    value: (acc) => withField(acc.base, field, acc.v),
  };
}

/** `minBy(field)` / `maxBy(field)`: the whole record holding the extreme (the first one on ties). */
export function extremeByAggregate<T>(field: string, kind: 'min' | 'max'): RollingAggregate<T, { r: T; v: number | bigint }> {
  const better = kind === 'min' ? (a: number | bigint, b: number | bigint) => a < b : (a: number | bigint, b: number | bigint) => a > b;
  return {
    init: (first) => ({ r: first, v: numericField(first, field) }),
    add(acc, value) {
      const v = numericField(value, field);
      if (better(v, acc.v)) {
        acc.r = value;
        acc.v = v;
      }
      return acc;
    },
    value: (acc) => acc.r,
  };
}
