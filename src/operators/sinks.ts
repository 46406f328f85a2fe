// Owns the sink operators: collecting into an array, printing, and calling a user sink function.

import type { MaybePromise, OperatorContext, Output, StreamOperator } from '../graph/operator.ts';
import { userFailure } from '../runtime/failure.ts';

/** What a sink function is told about where it runs. */
export interface SinkContext {
  readonly subtaskIndex: number;
  readonly parallelism: number;
}

/**
 * A user sink. One object serves every subtask of the sink (the executor is single-threaded); use
 * `context.subtaskIndex` to tell them apart.
 *
 * @example
 * stream.addSink({
 *   open: (ctx) => console.log('sink subtask', ctx.subtaskIndex, 'starting'),
 *   invoke: (value) => rows.push(value),
 *   close: () => console.log('done'),
 * });
 */
export interface SinkFunction<T> {
  /**
   * Called for every record. May return a promise (an async write): the sink then waits for it before
   * the next record, and the job's producers wait for the sink (backpressure).
   */
  invoke(value: T, context: SinkContext): unknown;
  open?(context: SinkContext): void;
  close?(context: SinkContext): void;
}

/** Calls a SinkFunction for every record. */
export class SinkOperator<T> implements StreamOperator<T, never> {
  private ctx: SinkContext = { subtaskIndex: 0, parallelism: 1 };
  private operator = '';
  private opened = false;
  constructor(private readonly sink: SinkFunction<T>) {}

  open(ctx: OperatorContext): void {
    this.ctx = Object.freeze({ subtaskIndex: ctx.subtaskIndex, parallelism: ctx.parallelism });
    this.operator = ctx.operatorName;
    try {
      this.sink.open?.(this.ctx);
    } catch (e) {
      throw userFailure(e, { operator: this.operator, subtask: this.ctx.subtaskIndex });
    }
    this.opened = true;
  }

  processBatch(batch: readonly T[], _out: Output<never>, firstIndex: number): MaybePromise {
    return this.invokeFrom(batch, 0, firstIndex);
  }

  private invokeFrom(batch: readonly T[], from: number, firstIndex: number): MaybePromise {
    const { sink, ctx } = this;
    let i = from;
    try {
      for (; i < batch.length; i++) {
        const r = sink.invoke(batch[i]!, ctx);
        if (r != null && typeof (r as PromiseLike<unknown>).then === 'function') {
          const at = i;
          return Promise.resolve(r).then(
            () => this.invokeFrom(batch, at + 1, firstIndex),
            (e: unknown) => {
              throw userFailure(e, { operator: this.operator, subtask: ctx.subtaskIndex, recordIndex: firstIndex + at });
            },
          );
        }
      }
    } catch (e) {
      throw userFailure(e, { operator: this.operator, subtask: ctx.subtaskIndex, recordIndex: firstIndex + i });
    }
    return undefined;
  }

  close(): void {
    if (!this.opened) return;
    this.opened = false;
    this.sink.close?.(this.ctx);
  }
}

/** Appends every record to a shared array (the `collect()` sink). */
export class CollectOperator<T> implements StreamOperator<T, never> {
  constructor(private readonly target: T[]) {}
  processBatch(batch: readonly T[]): void {
    const t = this.target;
    for (let i = 0; i < batch.length; i++) t.push(batch[i]!);
  }
}

/** Renders a record for printing: strings as they are, other values as JSON (bigints as `123n`). */
export function formatRecord(r: unknown): string {
  if (typeof r === 'string') return r;
  if (typeof r === 'bigint') return `${r}n`;
  if (r === undefined || typeof r === 'function' || typeof r === 'symbol') return String(r);
  try {
    return JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
  } catch {
    return String(r);
  }
}

/**
 * Prints every record with `console.log`, as Flink's print sink: `prefix:subtask> record` when the sink
 * runs in parallel (subtask counted from 1), `prefix> record` otherwise.
 */
export class PrintOperator<T> implements StreamOperator<T, never> {
  private lead = '';
  constructor(private readonly prefix: string | undefined, private readonly log: (line: string) => void = (l) => console.log(l)) {}
  open(ctx: OperatorContext): void {
    const p = this.prefix ?? '';
    const sub = ctx.parallelism > 1 ? String(ctx.subtaskIndex + 1) : '';
    this.lead = p && sub ? `${p}:${sub}> ` : p || sub ? `${p}${sub}> ` : '';
  }
  processBatch(batch: readonly T[]): void {
    for (let i = 0; i < batch.length; i++) this.log(this.lead + formatRecord(batch[i]));
  }
}
