// Owns the timestamps-and-watermarks operator (`assignTimestampsAndWatermarks`): applies a watermark
// strategy to a stream — assigns each record's event time, runs the generator per subtask, emits
// watermarks periodically on the job clock and at end of input, and marks the output idle.

import type { MaybePromise, OperatorContext, Output, StreamOperator } from '../graph/operator.ts';
import type { WatermarkStrategy, InvalidTimestampError } from '../api/watermarks.ts';
import { MAX_WATERMARK, type Watermarker, type WatermarkOutput } from '../runtime/watermark-valve.ts';

/**
 * Assigns timestamps and generates watermarks (Flink `TimestampsAndWatermarksOperator`). Watermarks
 * from upstream are swallowed, except the final MAX_WATERMARK of a finished input; upstream idleness
 * too (this operator decides idleness itself). A punctuated watermark raised by a record is emitted
 * after the whole batch the record came in (later, never earlier: no record becomes late by it).
 */
export class TimestampsAndWatermarksOperator<T> implements StreamOperator<T, T> {
  readonly forwardsWatermarks = false;
  private watermarker!: Watermarker<T>;
  private ctx!: OperatorContext;
  /** Marks raised while a call runs, applied to its output after the records. */
  private pending: (number | 'idle' | 'active')[] = [];
  private readonly wmOut: WatermarkOutput = {
    emitWatermark: (t) => this.pending.push(t),
    markIdle: () => this.pending.push('idle'),
    markActive: () => this.pending.push('active'),
  };
  private sideOut: Output<T> | undefined;
  private ended = false;

  constructor(
    private readonly strategy: WatermarkStrategy<T>,
    /** Side output (tag id) for records whose timestamp cannot be assigned, when the strategy routes them to a tag. */
    private readonly invalidTag?: string,
  ) {}

  open(ctx: OperatorContext): void {
    this.ctx = ctx;
    const tag = this.invalidTag;
    this.watermarker = this.strategy.createWatermarker(
      { clock: ctx.clock, operator: ctx.operatorName, subtask: ctx.subtaskIndex },
      tag === undefined ? undefined : (_record: T, error: InvalidTimestampError) => this.sideOut!.pushSide(tag, error),
    );
    const interval = this.watermarker.intervalMs;
    if (interval > 0) this.schedule(ctx.clock.now() + interval);
  }

  private schedule(at: number): void {
    this.ctx.scheduleAt(at, (out, now) => {
      if (this.ended) return;
      this.watermarker.onPeriodicEmit(this.wmOut);
      this.flushMarks(out);
      this.schedule(Math.max(now, at) + this.watermarker.intervalMs);
    });
  }

  private flushMarks(out: Output<T>): void {
    if (this.pending.length === 0) return;
    for (const m of this.pending) {
      if (typeof m === 'number') out.pushWatermark(m);
      else out.pushStatus(m);
    }
    this.pending = [];
  }

  processBatch(batch: readonly T[], out: Output<T>, _firstIndex: number, timestamps: readonly number[] | undefined): MaybePromise {
    this.sideOut = out;
    const recordTs = timestamps === undefined ? undefined : timestamps.map((t) => (t === t ? t : undefined));
    const tb = this.watermarker.onBatch(batch, this.wmOut, recordTs);
    const recs = tb.records;
    const ts = tb.timestamps;
    for (let i = 0; i < recs.length; i++) out.push(recs[i]!, ts[i]);
    this.flushMarks(out);
  }

  processWatermark(watermark: number, out: Output<T>): MaybePromise {
    if (watermark !== MAX_WATERMARK) return;
    this.watermarker.onEndOfInput(this.wmOut);
    this.ended = true;
    this.flushMarks(out);
  }
}
