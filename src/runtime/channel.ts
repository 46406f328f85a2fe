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
 * What a task reads one input from: events of one producer subtask, in order. The in-thread
 * {@link Channel} is one; a channel from another thread (remote-channel.ts) or a blocking exchange
 * that reads back what it spilled are others.
 */
export interface InputChannel<T = unknown> {
  /** `Producer#i -> Consumer#j`, for errors and metrics. */
  readonly description: string;
  /** The next event, or undefined if none is there now. */
  poll(): ChannelEvent<T> | undefined;
  /**
   * Whether events may still arrive without any task of this thread doing something: the producer
   * runs on another thread, or the channel is reading back from I/O. A task with such an input counts
   * as waiting, and the channel calls `onAvailable` when `poll()` has something again. Absent: never.
   */
  readonly external?: boolean;
  /** Set by the consuming task: called (from any stack) when an `external` channel has events again. */
  onAvailable?: (() => void) | undefined;
}

/**
 * What a record writer writes one channel to. `push` always takes the event; a channel that holds
 * more than it should (no network buffer or credit left, a spill in flight) answers `isAvailable`
 * false until it has drained, and the producing task does not take more input meanwhile
 * (backpressure, as Flink's output availability).
 */
export interface OutputChannel<T = unknown> {
  readonly description: string;
  push(ev: ChannelEvent<T>): void;
  /** Records pushed that the consumer has not taken yet (as far as this side knows). */
  readonly bufferedRecords: number;
  /** False while the channel is over its bound. Absent: always available. */
  readonly isAvailable?: boolean;
  /** Calls `listener` once when the channel is available again (after answering false). */
  whenAvailable?(listener: () => void): void;
}

/**
 * A FIFO of events from one producer subtask to one consumer subtask, both on this thread. Cost: O(1)
 * amortized push and poll (a head index into an array, compacted when half of it is consumed).
 * Bounded by `capacity` records: `push` always takes the event, but past the capacity the channel is
 * not `isAvailable` and the producing task pauses until the consumer has polled below it
 * (backpressure; at most a batch more than the capacity is ever buffered).
 */
export class Channel<T = unknown> implements InputChannel<T>, OutputChannel<T> {
  private events: ChannelEvent<T>[] = [];
  private head = 0;
  /** Records currently buffered (data events only). */
  bufferedRecords = 0;
  /** Whether end-of-input was pushed; nothing may follow it. */
  ended = false;
  private listeners: (() => void)[] = [];
  /**
   * Set by the consuming task: called when a push makes an empty channel non-empty, so that an
   * executor asleep while its producer was busy (a chunked emit from an async call) runs the consumer.
   */
  onAvailable: (() => void) | undefined = undefined;

  constructor(
    readonly id: number,
    readonly description: string,
    /** Records above which the producer pauses (default: unbounded). */
    readonly capacity: number = Number.POSITIVE_INFINITY,
  ) {}

  push(ev: ChannelEvent<T>): void {
    if (this.ended) throw new Error(`internal: event after end-of-input on channel ${this.description}`);
    if (ev.kind === 'data') this.bufferedRecords += ev.batch.length;
    else if (ev.kind === 'end-of-input') this.ended = true;
    const wasEmpty = this.head >= this.events.length;
    this.events.push(ev);
    if (wasEmpty && this.onAvailable !== undefined) this.onAvailable();
  }

  /** The next event, or undefined if none is buffered. */
  poll(): ChannelEvent<T> | undefined {
    if (this.head >= this.events.length) return undefined;
    const ev = this.events[this.head++]!;
    if (this.head > 64 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
    if (ev.kind === 'data') {
      this.bufferedRecords -= ev.batch.length;
      if (this.listeners.length > 0 && this.bufferedRecords < this.capacity) {
        const ls = this.listeners;
        this.listeners = [];
        for (const l of ls) l();
      }
    }
    return ev;
  }

  get isEmpty(): boolean {
    return this.head >= this.events.length;
  }

  get isAvailable(): boolean {
    return this.bufferedRecords < this.capacity;
  }

  whenAvailable(listener: () => void): void {
    if (this.isAvailable) listener();
    else this.listeners.push(listener);
  }
}
