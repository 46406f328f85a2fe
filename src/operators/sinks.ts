// Owns the sink operators: collecting into an array, printing, and calling a user sink function.

import type { OperatorContext, StreamOperator } from '../graph/operator.ts';
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
  invoke(value: T, context: SinkContext): void;
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

  processBatch(batch: readonly T[], _out: never[], firstIndex: number): void {
    const { sink, ctx } = this;
    let i = 0;
    try {
      for (; i < batch.length; i++) sink.invoke(batch[i]!, ctx);
    } catch (e) {
      throw userFailure(e, { operator: this.operator, subtask: ctx.subtaskIndex, recordIndex: firstIndex + i });
    }
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
