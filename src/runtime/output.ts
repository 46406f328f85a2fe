// Owns BatchOutput: what an operator emits during one call — main-output records with their event
// timestamps, side-output records by tag, and watermarks/status interleaved at their positions.

import type { MaybePromise, Output } from '../graph/operator.ts';

/** A watermark or status emitted after `at` main-output records. */
export interface OutputMark {
  readonly at: number;
  readonly kind: 'watermark' | 'status';
  readonly watermark: number;
  readonly status: 'idle' | 'active';
}

/** Records of one output with optional parallel timestamps (NaN = no timestamp). */
export class RecordBuffer<O = unknown> {
  records: O[] = [];
  /** Undefined while no record has a timestamp. */
  timestamps: number[] | undefined = undefined;

  push(record: O, timestamp?: number): void {
    if (timestamp !== undefined) {
      if (this.timestamps === undefined) this.timestamps = new Array<number>(this.records.length).fill(NaN);
      this.timestamps.push(timestamp);
    } else if (this.timestamps !== undefined) this.timestamps.push(NaN);
    this.records.push(record);
  }

  get length(): number {
    return this.records.length;
  }
}

/**
 * The {@link Output} the runtime hands an operator. Cost: an array push per record (two with a
 * timestamp); side outputs and marks allocate only when used.
 */
export class BatchOutput<O = unknown> extends RecordBuffer<O> implements Output<O> {
  side: Map<string, RecordBuffer> | undefined = undefined;
  marks: OutputMark[] | undefined = undefined;

  /** `emit` sends an output down the chain; given, `flush()` hands it what was pushed so far. */
  constructor(private readonly emitter?: (out: BatchOutput) => MaybePromise) {
    super();
  }

  flush(): MaybePromise {
    if (this.emitter === undefined || this.isEmpty) return undefined;
    const chunk = new BatchOutput();
    chunk.records = this.records;
    chunk.timestamps = this.timestamps;
    chunk.side = this.side;
    chunk.marks = this.marks;
    this.records = [];
    this.timestamps = undefined;
    this.side = undefined;
    this.marks = undefined;
    return this.emitter(chunk);
  }

  pushSide(tag: string, record: unknown, timestamp?: number): void {
    const side = (this.side ??= new Map());
    let b = side.get(tag);
    if (!b) side.set(tag, (b = new RecordBuffer()));
    b.push(record, timestamp);
  }

  pushWatermark(timestamp: number): void {
    (this.marks ??= []).push({ at: this.records.length, kind: 'watermark', watermark: timestamp, status: 'active' });
  }

  pushStatus(status: 'idle' | 'active'): void {
    (this.marks ??= []).push({ at: this.records.length, kind: 'status', watermark: 0, status });
  }

  /** Whether anything at all was emitted. */
  get isEmpty(): boolean {
    return this.records.length === 0 && this.side === undefined && this.marks === undefined;
  }
}
