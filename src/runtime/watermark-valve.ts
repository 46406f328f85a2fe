// Owns event-time progress inside the runtime: the watermark bounds, the valve that turns the watermarks
// and idle/active statuses of a task's input channels into the task's own watermark (the minimum over
// active channels), and the contract by which a source applies a watermark strategy (implemented by
// src/api/watermarks.ts, called by the executor).

import type { ChannelEvent, WatermarkStatus } from './channel.ts';
import type { ProcessingClock } from './clock.ts';

/**
 * The watermark before any progress (Flink's `Long.MIN_VALUE`). A safe integer rather than `-Infinity`
 * so that a watermark always fits an i64 field, JSON and MessagePack, and `wm - 1` stays exact.
 */
export const MIN_WATERMARK = Number.MIN_SAFE_INTEGER;

/**
 * The watermark of an input that has ended (Flink's `Long.MAX_VALUE`): every event-time timer fires.
 * A safe integer rather than `+Infinity`, for the same reasons as {@link MIN_WATERMARK}.
 */
export const MAX_WATERMARK = Number.MAX_SAFE_INTEGER;

/** Where a valve sends what it decides: the operator's watermark and its idle/active status. */
export interface ValveOutput {
  /** The combined watermark advanced to `timestamp` (strictly greater than the last one emitted). */
  emitWatermark(timestamp: number): void;
  /** The operator became idle (every input idle) or active again. */
  emitStatus(status: WatermarkStatus): void;
}

/** Options of a {@link WatermarkValve}. */
export interface WatermarkValveOptions {
  /**
   * What happens to the watermark when the last active channel goes idle:
   * - `'advance-to-max'` (default, as Flink): first advance to the greatest watermark of any channel, so
   *   that progress the idle inputs had already promised is not withheld while nothing flows;
   * - `'hold'`: keep the watermark where it was.
   * Either way the operator then becomes idle.
   */
  onAllIdle?: 'advance-to-max' | 'hold';
}

/**
 * Combines the watermarks of N input channels into one (Flink `StatusWatermarkValve`, Arroyo
 * `WatermarkHolder`).
 *
 * Semantics:
 * - Every channel starts active at {@link MIN_WATERMARK}; the output starts at `MIN_WATERMARK`, active,
 *   and is not emitted until it advances.
 * - A channel's watermark only moves forward; a smaller or equal one is ignored.
 * - Output = minimum over the **active** channels, emitted only when it exceeds the last output
 *   (so the emitted sequence is strictly increasing).
 * - A channel going idle leaves the minimum (which may advance the output). When all channels are idle
 *   the operator emits `idle` (see {@link WatermarkValveOptions.onAllIdle}); the first channel to
 *   become active again makes it emit `active` before anything else.
 * - A channel that becomes active again with a watermark below the output does not move the output
 *   back: it takes part in the minimum, so the output holds until that channel catches up. (Flink
 *   instead leaves such a channel out until it catches up, letting the others advance the output and
 *   making its records late; holding loses no records.)
 * - A watermark arriving on an idle channel is recorded (it counts once the channel is active again)
 *   but does not activate the channel: only a status event does.
 * - End of input on a channel = watermark {@link MAX_WATERMARK} on it, and the channel counts as active
 *   from then on; once every channel has ended the output is `MAX_WATERMARK`. Nothing may follow it.
 *
 * Cost: O(N) memory. A watermark or status change costs O(1) unless the channel it touches held the
 * minimum, in which case the minimum is recomputed by an O(N) scan over the channels (N = the input's
 * parallelism; watermarks are rare next to records, one per batch or per emission interval at most).
 *
 * @example
 * ```ts
 * const out: string[] = [];
 * const valve = new WatermarkValve(2, { emitWatermark: (t) => out.push(`wm ${t}`), emitStatus: (s) => out.push(s) });
 * valve.inputWatermark(0, 10); // nothing: channel 1 is still at MIN_WATERMARK
 * valve.inputWatermark(1, 7);  // "wm 7"
 * valve.inputStatus(1, 'idle'); // "wm 10": channel 1 no longer holds the minimum
 * ```
 */
export class WatermarkValve {
  private readonly watermarks: Float64Array;
  private readonly active: Uint8Array;
  private readonly ended: Uint8Array;
  private activeCount: number;
  /** Minimum watermark over the active channels (MAX_WATERMARK when none is active). */
  private minActive = MIN_WATERMARK;
  private output = MIN_WATERMARK;
  private idle = false;
  private readonly advanceOnAllIdle: boolean;

  constructor(readonly channels: number, private readonly out: ValveOutput, options: WatermarkValveOptions = {}) {
    if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`WatermarkValve: channels must be a positive integer, got ${channels}`);
    this.watermarks = new Float64Array(channels).fill(MIN_WATERMARK);
    this.active = new Uint8Array(channels).fill(1);
    this.ended = new Uint8Array(channels);
    this.activeCount = channels;
    this.advanceOnAllIdle = (options.onAllIdle ?? 'advance-to-max') === 'advance-to-max';
  }

  /** The last watermark emitted (MIN_WATERMARK before the first). */
  get currentWatermark(): number {
    return this.output;
  }

  /** Whether the operator is idle (every input channel idle). */
  get isIdle(): boolean {
    return this.idle;
  }

  /** The last watermark seen on `channel`. */
  channelWatermark(channel: number): number {
    return this.watermarks[this.check(channel)]!;
  }

  /** `channel`'s status. */
  channelStatus(channel: number): WatermarkStatus {
    return this.active[this.check(channel)] ? 'active' : 'idle';
  }

  /** Whether `channel` has ended. */
  channelEnded(channel: number): boolean {
    return this.ended[this.check(channel)] === 1;
  }

  /**
   * Feed a channel's control event: `watermark`, `watermark-status` and `end-of-input` are handled;
   * `data` (and any other kind) is ignored. True if the event was a watermark control event.
   */
  input(channel: number, ev: ChannelEvent<unknown>): boolean {
    switch (ev.kind) {
      case 'watermark':
        this.inputWatermark(channel, ev.timestamp);
        return true;
      case 'watermark-status':
        this.inputStatus(channel, ev.status);
        return true;
      case 'end-of-input':
        this.endOfInput(channel);
        return true;
      default:
        return false;
    }
  }

  /** A watermark arrived on `channel`. */
  inputWatermark(channel: number, timestamp: number): void {
    this.checkOpen(channel);
    if (!Number.isSafeInteger(timestamp)) throw new RangeError(`WatermarkValve: watermark must be a safe integer, got ${timestamp} on channel ${channel}`);
    const old = this.watermarks[channel]!;
    if (timestamp <= old) return;
    this.watermarks[channel] = timestamp;
    if (!this.active[channel]) return;
    if (old === this.minActive) {
      this.minActive = this.scanMinActive();
      this.advance();
    }
  }

  /** `channel` declared itself idle or active. Repeating the current status is a no-op. */
  inputStatus(channel: number, status: WatermarkStatus): void {
    this.checkOpen(channel);
    if (status === 'idle') {
      if (!this.active[channel]) return;
      this.active[channel] = 0;
      this.activeCount--;
      if (this.activeCount === 0) {
        this.minActive = MAX_WATERMARK;
        if (this.advanceOnAllIdle) this.advanceTo(this.maxOfAll());
        this.idle = true;
        this.out.emitStatus('idle');
      } else if (this.watermarks[channel] === this.minActive) {
        this.minActive = this.scanMinActive();
        this.advance();
      }
    } else {
      if (this.active[channel]) return;
      this.activate(channel);
    }
  }

  /** `channel` ended: its watermark becomes MAX_WATERMARK and it counts as active. */
  endOfInput(channel: number): void {
    this.checkOpen(channel);
    this.ended[channel] = 1;
    const old = this.watermarks[channel]!;
    this.watermarks[channel] = MAX_WATERMARK;
    if (!this.active[channel]) this.activate(channel);
    else if (old === this.minActive) {
      this.minActive = this.scanMinActive();
      this.advance();
    }
  }

  private activate(channel: number): void {
    this.active[channel] = 1;
    this.activeCount++;
    if (this.idle) {
      this.idle = false;
      this.out.emitStatus('active');
    }
    const wm = this.watermarks[channel]!;
    if (this.activeCount === 1 || wm < this.minActive) this.minActive = wm;
    // With other channels active the minimum can only go down and the output never goes back; the
    // first channel out of an all-idle state can be ahead of the output, and then it alone leads.
    this.advance();
  }

  private advance(): void {
    if (this.activeCount > 0) this.advanceTo(this.minActive);
  }

  private advanceTo(wm: number): void {
    if (wm > this.output) {
      this.output = wm;
      this.out.emitWatermark(wm);
    }
  }

  private scanMinActive(): number {
    let min = MAX_WATERMARK;
    const wms = this.watermarks, act = this.active;
    for (let i = 0; i < wms.length; i++) if (act[i] && wms[i]! < min) min = wms[i]!;
    return min;
  }

  private maxOfAll(): number {
    let max = MIN_WATERMARK;
    for (const w of this.watermarks) if (w > max) max = w;
    return max;
  }

  private check(channel: number): number {
    if (!Number.isInteger(channel) || channel < 0 || channel >= this.channels) {
      throw new RangeError(`WatermarkValve: no channel ${channel} (0..${this.channels - 1})`);
    }
    return channel;
  }

  private checkOpen(channel: number): void {
    if (this.ended[this.check(channel)]) throw new Error(`internal: watermark event after end-of-input on channel ${channel}`);
  }
}

// ---- The source side: how the executor applies a watermark strategy to a source split ----

/**
 * Where a watermark generator emits (Flink `WatermarkOutput`). The source's output turns these into
 * channel events (`watermark`, `watermark-status`); the wrapper the strategy builds already drops
 * watermarks that do not advance and marks the output active before a watermark after idleness.
 */
export interface WatermarkOutput {
  /** Event time has progressed to `timestamp` (integer ms). */
  emitWatermark(timestamp: number): void;
  /** No records for a while: exclude this output from downstream watermarks until it is active. */
  markIdle(): void;
  /** Records flow again. */
  markActive(): void;
}

/** What a source subtask tells its watermark strategy when it instantiates it for a split. */
export interface WatermarkerContext {
  /** Processing time (idleness, periodic emission, ingestion timestamps). */
  readonly clock: ProcessingClock;
  /** Operator name for errors, e.g. `"Source: orders"`. */
  readonly operator: string;
  /** Subtask index for errors. */
  readonly subtask: number;
}

/** A batch after timestamp assignment: `records[i]` has event time `timestamps[i]`. */
export interface TimestampedBatch<T> {
  /** The input batch itself when no record was dropped (no copy), else the kept records. */
  readonly records: readonly T[];
  /** Event time of each kept record, integer ms. */
  readonly timestamps: number[];
}

/**
 * A watermark strategy instantiated for one source split (or subtask): assigns timestamps and drives
 * the generator. Built by `WatermarkStrategy.createWatermarker`; the executor calls it.
 *
 * Protocol: `onBatch` for every batch the source produces; `onPeriodicEmit` every `intervalMs` of
 * processing time (if `intervalMs > 0`; the executor schedules it on the context's clock, through its
 * mailbox); `onEndOfInput` once when the split is exhausted.
 */
export interface Watermarker<T> {
  /** Periodic emission interval, ms; 0 = never call `onPeriodicEmit`. */
  readonly intervalMs: number;
  /**
   * Assign timestamps (`recordTimestamps[i]`: the source's own timestamp of record i, if it has one)
   * and feed the generator, which may emit to `output` (punctuated). A timestamp that is not a safe
   * integer fails, is dropped or goes to the side output, by the strategy's policy.
   */
  onBatch(batch: readonly T[], output: WatermarkOutput, recordTimestamps?: ArrayLike<number | undefined>): TimestampedBatch<T>;
  /** Periodic emission; also where idleness is detected. */
  onPeriodicEmit(output: WatermarkOutput): void;
  /** The split is exhausted: emits MAX_WATERMARK (the split is then done; nothing else is emitted). */
  onEndOfInput(output: WatermarkOutput): void;
}
