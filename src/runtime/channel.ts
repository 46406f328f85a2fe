// Owns in-memory channels: FIFO queues of events between two subtasks, where data batches and control
// events travel in-band, in order.

/**
 * What travels through a channel. Control events are in-band so that they stay ordered with the data:
 * `end-of-input`; `watermark` (event-time progress: no record with timestamp ≤ `timestamp` follows on
 * this channel) and `watermark-status` (the producer is idle — excluded from the consumer's watermark —
 * or active again), both consumed by a `WatermarkValve` (watermark-valve.ts); `barrier` (checkpoint)
 * will be added as a further kind.
 */
export type ChannelEvent<T = unknown> =
  | DataEvent<T>
  | { readonly kind: 'end-of-input' }
  | WatermarkEvent
  | WatermarkStatusEvent;

/**
 * A batch of records. `timestamps`, when present, is parallel to `batch`: the event time of each
 * record in integer ms, NaN for a record without one.
 */
export interface DataEvent<T = unknown> {
  readonly kind: 'data';
  readonly batch: readonly T[];
  readonly timestamps?: readonly number[] | undefined;
}

/** Event-time progress on a channel; `timestamp` is integer ms (see watermark-valve.ts for the bounds). */
export interface WatermarkEvent {
  readonly kind: 'watermark';
  readonly timestamp: number;
}

/** Whether a channel's producer takes part in event-time progress (`active`) or not (`idle`). */
export type WatermarkStatus = 'idle' | 'active';

/** A producer declaring itself idle, or active again. */
export interface WatermarkStatusEvent {
  readonly kind: 'watermark-status';
  readonly status: WatermarkStatus;
}

/** The singleton end-of-input event. */
export const END_OF_INPUT: ChannelEvent<never> = Object.freeze({ kind: 'end-of-input' });

/** A watermark event (a fresh frozen object; watermarks are rare next to records). */
export function watermarkEvent(timestamp: number): WatermarkEvent {
  return Object.freeze({ kind: 'watermark', timestamp });
}

/** The singleton `idle` status event. */
export const IDLE_STATUS: WatermarkStatusEvent = Object.freeze({ kind: 'watermark-status', status: 'idle' });
/** The singleton `active` status event. */
export const ACTIVE_STATUS: WatermarkStatusEvent = Object.freeze({ kind: 'watermark-status', status: 'active' });

/**
 * An unbounded FIFO of events from one producer subtask to one consumer subtask. Cost: O(1) amortized
 * push and poll (a head index into an array, compacted when half of it is consumed). Bounding it
 * (credit-based backpressure) comes with the multi-threaded executor; the single-threaded scheduler
 * drains downstream tasks every round, so at most a round's worth of batches is buffered.
 */
export class Channel<T = unknown> {
  private events: ChannelEvent<T>[] = [];
  private head = 0;
  /** Records currently buffered (data events only). */
  bufferedRecords = 0;
  /** Whether end-of-input was pushed; nothing may follow it. */
  ended = false;

  constructor(readonly id: number, readonly description: string) {}

  push(ev: ChannelEvent<T>): void {
    if (this.ended) throw new Error(`internal: event after end-of-input on channel ${this.description}`);
    if (ev.kind === 'data') this.bufferedRecords += ev.batch.length;
    else if (ev.kind === 'end-of-input') this.ended = true;
    this.events.push(ev);
  }

  /** The next event, or undefined if none is buffered. */
  poll(): ChannelEvent<T> | undefined {
    if (this.head >= this.events.length) return undefined;
    const ev = this.events[this.head++]!;
    if (this.head > 64 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
    if (ev.kind === 'data') this.bufferedRecords -= ev.batch.length;
    return ev;
  }

  get isEmpty(): boolean {
    return this.head >= this.events.length;
  }
}
