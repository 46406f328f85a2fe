// Owns the stateless record-at-a-time operators: map, filter and flatMap.

import type { OperatorContext, Output, StreamOperator } from '../graph/operator.ts';
import { previewValue } from '../core/errors.ts';
import { userFailure } from '../runtime/failure.ts';

/** A record's timestamp as emitted: NaN (no timestamp) becomes undefined. */
export function ts(t: number): number | undefined {
  return t === t ? t : undefined;
}

/** Base of operators that call a user function per record and report failures with its index. */
abstract class UserFunctionOperator<I, O> implements StreamOperator<I, O> {
  protected operator = '';
  protected subtask = 0;
  open(ctx: OperatorContext): void {
    this.operator = ctx.operatorName;
    this.subtask = ctx.subtaskIndex;
  }
  abstract processBatch(batch: readonly I[], out: Output<O>, firstIndex: number, timestamps: readonly number[] | undefined): void;
  protected fail(e: unknown, recordIndex: number): never {
    throw userFailure(e, { operator: this.operator, subtask: this.subtask, recordIndex });
  }
}

/** Emits `fn(record)` for every record. */
export class MapOperator<I, O> extends UserFunctionOperator<I, O> {
  constructor(private readonly fn: (value: I) => O) {
    super();
  }
  processBatch(batch: readonly I[], out: Output<O>, firstIndex: number, timestamps: readonly number[] | undefined): void {
    const fn = this.fn;
    let i = 0;
    try {
      if (timestamps === undefined) for (; i < batch.length; i++) out.push(fn(batch[i]!));
      else for (; i < batch.length; i++) out.push(fn(batch[i]!), ts(timestamps[i]!));
    } catch (e) {
      this.fail(e, firstIndex + i);
    }
  }
}

/** Emits the records for which `fn(record)` is truthy. */
export class FilterOperator<T> extends UserFunctionOperator<T, T> {
  constructor(private readonly fn: (value: T) => unknown) {
    super();
  }
  processBatch(batch: readonly T[], out: Output<T>, firstIndex: number, timestamps: readonly number[] | undefined): void {
    const fn = this.fn;
    let i = 0;
    try {
      for (; i < batch.length; i++) {
        const r = batch[i]!;
        if (fn(r)) out.push(r, timestamps === undefined ? undefined : ts(timestamps[i]!));
      }
    } catch (e) {
      this.fail(e, firstIndex + i);
    }
  }
}

/** Emits every element of the iterable `fn(record)` returns. */
export class FlatMapOperator<I, O> extends UserFunctionOperator<I, O> {
  constructor(private readonly fn: (value: I) => Iterable<O>) {
    super();
  }
  processBatch(batch: readonly I[], out: Output<O>, firstIndex: number, timestamps: readonly number[] | undefined): void {
    const fn = this.fn;
    let i = 0;
    try {
      for (; i < batch.length; i++) {
        const it = fn(batch[i]!);
        const t = timestamps === undefined ? undefined : ts(timestamps[i]!);
        if (Array.isArray(it)) for (let j = 0; j < it.length; j++) out.push(it[j], t);
        else if (it != null && typeof (it as Iterable<O>)[Symbol.iterator] === 'function') for (const o of it) out.push(o, t);
        else throw new TypeError(`flatMap function must return an iterable (e.g. an array), got ${previewValue(it)}`);
      }
    } catch (e) {
      this.fail(e, firstIndex + i);
    }
  }
}
