// Owns the public watermark API (Flink-shaped): `WatermarkStrategy` — how a source assigns event-time
// timestamps and generates watermarks — the built-in generators (bounded out-of-orderness, monotonous,
// punctuated, ingestion time, none), idleness, and the typed errors for bad timestamps. Also the
// `Watermarker` the runtime runs per source split (the contract lives in runtime/watermark-valve.ts).

import { SluiceError, previewRecord, previewValue, type ErrorContext } from '../core/errors.ts';
import { registerErrorClass } from '../core/error-codec.ts';
import {
  MAX_WATERMARK,
  MIN_WATERMARK,
  type TimestampedBatch,
  type WatermarkOutput,
  type Watermarker,
  type WatermarkerContext,
} from '../runtime/watermark-valve.ts';

export { MAX_WATERMARK, MIN_WATERMARK } from '../runtime/watermark-valve.ts';
export type { WatermarkOutput, Watermarker, WatermarkerContext, TimestampedBatch } from '../runtime/watermark-valve.ts';

/** Flink's default periodic watermark interval (`pipeline.auto-watermark-interval`), ms. */
export const DEFAULT_WATERMARK_INTERVAL_MS = 200;

/**
 * Makes watermarks from the stream of timestamped events (Flink `WatermarkGenerator`). A periodic
 * generator remembers in `onEvent` and emits in `onPeriodicEmit`; a punctuated one emits in `onEvent`.
 * Watermarks that do not advance are dropped by the runtime, so a generator may emit freely.
 *
 * @example
 * ```ts
 * // Punctuated: a marker record carries the watermark.
 * const strategy = WatermarkStrategy.forGenerator<Ev>(() => ({
 *   onEvent: (e, ts, out) => { if (e.isMarker) out.emitWatermark(ts); },
 *   onPeriodicEmit: () => {},
 * })).withTimestampAssigner((e) => e.time);
 * ```
 */
export interface WatermarkGenerator<T> {
  /** Called for every record, with its assigned timestamp (integer ms). */
  onEvent(event: T, timestamp: number, output: WatermarkOutput): void;
  /** Called every emission interval of processing time (see `withAutoWatermarkInterval`). */
  onPeriodicEmit(output: WatermarkOutput): void;
}

/** What a generator factory receives: the processing clock and where it runs. */
export type WatermarkGeneratorContext = WatermarkerContext;

/**
 * Extracts the event time (integer ms since the epoch) of a record. `recordTimestamp` is the
 * timestamp the source attached, if any (e.g. a log's append time).
 */
export type TimestampAssigner<T> = (element: T, recordTimestamp: number | undefined) => number;

/**
 * What to do with a record whose timestamp cannot be assigned (the assigner threw, or returned a value
 * that is not a safe integer — NaN, ±Infinity, a fraction, a string):
 * - `'fail'` (default): the job fails with an {@link InvalidTimestampError} naming the operator, the
 *   subtask, the record's position in its batch and the record;
 * - `'drop'`: the record is skipped;
 * - `{ sideOutput }`: the record is skipped and its error (which holds the record) goes to the
 *   callback, or — given an `OutputTag<InvalidTimestampError>` — to that side output of the
 *   `assignTimestampsAndWatermarks` operator (read it with `getSideOutput(tag)`).
 */
export type InvalidTimestampPolicy<T> =
  | 'fail'
  | 'drop'
  | { readonly sideOutput: ((record: T, error: InvalidTimestampError) => void) | { readonly id: string } };

/**
 * A record's event timestamp could not be assigned. `record` is the offending record, `value` what
 * the assigner returned (undefined if it threw: the `cause` then holds its error).
 *
 * @example
 * try { await env.execute(); } catch (e) {
 *   if (e instanceof InvalidTimestampError) console.error(e.context.operator, e.context.recordIndex, e.record);
 * }
 */
export class InvalidTimestampError extends SluiceError {
  constructor(
    readonly record: unknown,
    readonly value: unknown,
    reason: string,
    context: ErrorContext = {},
    cause?: unknown,
  ) {
    super(`invalid event timestamp for record ${previewRecord(record)}: ${reason}`, { domain: 'user', context, cause });
    this.withContext(context);
  }
}

/** A watermark generator emitted something that is not a safe integer. */
export class InvalidWatermarkError extends SluiceError {
  constructor(readonly value: unknown, context: ErrorContext = {}) {
    super(`watermark generator emitted ${previewValue(value)}; a watermark is a safe integer of milliseconds`, { domain: 'user', context });
    this.withContext(context);
  }
}

registerErrorClass(InvalidTimestampError, InvalidWatermarkError);

function checkMillis(what: string, ms: number, allowZero = true): number {
  if (!Number.isSafeInteger(ms) || ms < 0 || (!allowZero && ms === 0)) {
    throw new RangeError(`${what} must be a ${allowZero ? 'non-negative' : 'positive'} integer of milliseconds, got ${ms}`);
  }
  return ms;
}

// ---- Built-in generators ----

/**
 * Watermark = greatest timestamp seen − `maxOutOfOrderness` − 1, emitted periodically: a record may be
 * up to `maxOutOfOrderness` ms behind the greatest timestamp seen and still be on time. Before the
 * first record the watermark is MIN_WATERMARK. Cost: O(1) per record.
 */
export class BoundedOutOfOrdernessWatermarks<T> implements WatermarkGenerator<T> {
  private maxTimestamp: number;
  constructor(private readonly maxOutOfOrderness: number) {
    checkMillis('maxOutOfOrderness', maxOutOfOrderness);
    // so that the first emission, before any record, is exactly MIN_WATERMARK
    this.maxTimestamp = MIN_WATERMARK + maxOutOfOrderness + 1;
  }
  onEvent(_event: T, timestamp: number): void {
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp;
  }
  onPeriodicEmit(output: WatermarkOutput): void {
    output.emitWatermark(this.maxTimestamp - this.maxOutOfOrderness - 1);
  }
}

/**
 * For timestamps that never decrease (within a split): watermark = greatest timestamp seen − 1
 * (bounded out-of-orderness with 0 ms; −1 because another record with the same timestamp may follow).
 */
export class AscendingTimestampsWatermarks<T> extends BoundedOutOfOrdernessWatermarks<T> {
  constructor() {
    super(0);
  }
}

/** Emits no watermarks (processing-time jobs; or event time decided elsewhere). */
export class NoWatermarksGenerator<T> implements WatermarkGenerator<T> {
  onEvent(): void {}
  onPeriodicEmit(): void {}
}

/**
 * Punctuated: `extract(event, timestamp)` returns a watermark to emit right after that record, or
 * `undefined`/`null` for none. Nothing periodic.
 */
export class PunctuatedWatermarks<T> implements WatermarkGenerator<T> {
  constructor(private readonly extract: (event: T, timestamp: number) => number | null | undefined) {}
  onEvent(event: T, timestamp: number, output: WatermarkOutput): void {
    const wm = this.extract(event, timestamp);
    if (wm !== undefined && wm !== null) output.emitWatermark(wm);
  }
  onPeriodicEmit(): void {}
}

/**
 * Ingestion time: records are stamped with the processing clock when the source emits them, so the
 * watermark can follow the clock: now − 1 (a record stamped later gets at least `now`).
 */
export class IngestionTimeWatermarks<T> implements WatermarkGenerator<T> {
  constructor(private readonly clock: { now(): number }) {}
  onEvent(): void {}
  onPeriodicEmit(output: WatermarkOutput): void {
    output.emitWatermark(this.clock.now() - 1);
  }
}

// ---- The strategy ----

type AssignerSpec<T> = { readonly kind: 'fn'; readonly fn: TimestampAssigner<T> } | { readonly kind: 'ingestion' } | { readonly kind: 'record' };

interface StrategySpec<T> {
  /** undefined = no watermarks. */
  readonly generator: ((ctx: WatermarkGeneratorContext) => WatermarkGenerator<T>) | undefined;
  readonly assigner: AssignerSpec<T>;
  readonly idlenessMs: number | undefined;
  readonly intervalMs: number;
  readonly onInvalid: InvalidTimestampPolicy<T>;
  readonly description: string;
}

/**
 * How a source assigns event-time timestamps and generates watermarks (Flink `WatermarkStrategy`).
 * Immutable: every `with…` returns a new strategy.
 *
 * - Timestamps come from `withTimestampAssigner`, else from the source's own record timestamps.
 * - Watermarks are generated per source split; the runtime drops those that do not advance and
 *   emits `MAX_WATERMARK` when the split ends.
 * - Periodic generators are polled every {@link DEFAULT_WATERMARK_INTERVAL_MS} ms of processing time
 *   unless `withAutoWatermarkInterval` says otherwise.
 *
 * @example
 * ```ts
 * const strategy = WatermarkStrategy
 *   .forBoundedOutOfOrderness<Bid>(5_000)          // records may arrive up to 5 s late
 *   .withTimestampAssigner((bid) => bid.dateTime)  // event time = the bid's own time
 *   .withIdleness(60_000);                         // a split silent for 1 min stops holding back time
 * ```
 */
export class WatermarkStrategy<T> {
  private constructor(private readonly spec: StrategySpec<T>) {}

  private static of<T>(generator: StrategySpec<T>['generator'], description: string, assigner: AssignerSpec<T> = { kind: 'record' }): WatermarkStrategy<T> {
    return new WatermarkStrategy<T>({
      generator,
      assigner,
      idlenessMs: undefined,
      intervalMs: DEFAULT_WATERMARK_INTERVAL_MS,
      onInvalid: 'fail',
      description,
    });
  }

  /** Watermark = greatest timestamp seen − `maxOutOfOrdernessMs` − 1 (see {@link BoundedOutOfOrdernessWatermarks}). */
  static forBoundedOutOfOrderness<T>(maxOutOfOrdernessMs: number): WatermarkStrategy<T> {
    checkMillis('forBoundedOutOfOrderness: maxOutOfOrdernessMs', maxOutOfOrdernessMs);
    return WatermarkStrategy.of<T>(() => new BoundedOutOfOrdernessWatermarks<T>(maxOutOfOrdernessMs), `boundedOutOfOrderness(${maxOutOfOrdernessMs}ms)`);
  }

  /** Timestamps never decrease within a split: watermark = greatest timestamp seen − 1. */
  static forMonotonousTimestamps<T>(): WatermarkStrategy<T> {
    return WatermarkStrategy.of<T>(() => new AscendingTimestampsWatermarks<T>(), 'monotonousTimestamps');
  }

  /** No watermarks at all; timestamps still come from an assigner if one is set. */
  static noWatermarks<T>(): WatermarkStrategy<T> {
    return WatermarkStrategy.of<T>(undefined, 'noWatermarks');
  }

  /** A custom generator, made once per source split. */
  static forGenerator<T>(factory: (ctx: WatermarkGeneratorContext) => WatermarkGenerator<T>): WatermarkStrategy<T> {
    return WatermarkStrategy.of<T>(factory, 'custom');
  }

  /** Punctuated watermarks: `extract` returns the watermark a record carries, or undefined/null. */
  static forPunctuated<T>(extract: (event: T, timestamp: number) => number | null | undefined): WatermarkStrategy<T> {
    return WatermarkStrategy.of<T>(() => new PunctuatedWatermarks<T>(extract), 'punctuated');
  }

  /**
   * Ingestion time: each record's timestamp is the processing clock when the source emits it, and the
   * watermark follows the clock (now − 1). A timestamp assigner set later replaces the clock.
   */
  static forIngestionTime<T>(): WatermarkStrategy<T> {
    return WatermarkStrategy.of<T>((ctx) => new IngestionTimeWatermarks<T>(ctx.clock), 'ingestionTime', { kind: 'ingestion' });
  }

  /** Event time of each record from `assigner(record, sourceTimestamp)`; must return a safe integer (ms). */
  withTimestampAssigner(assigner: TimestampAssigner<T>): WatermarkStrategy<T> {
    if (typeof assigner !== 'function') throw new TypeError('withTimestampAssigner: expects a function (record, recordTimestamp) => number');
    return new WatermarkStrategy<T>({ ...this.spec, assigner: { kind: 'fn', fn: assigner } });
  }

  /**
   * A split that receives no records for `idleTimeoutMs` of processing time declares itself idle (it no
   * longer holds back downstream watermarks); its next record makes it active again. Checked at each
   * periodic emission, so idleness is detected within `idleTimeoutMs + interval`.
   */
  withIdleness(idleTimeoutMs: number): WatermarkStrategy<T> {
    checkMillis('withIdleness: idleTimeoutMs', idleTimeoutMs, false);
    return new WatermarkStrategy<T>({ ...this.spec, idlenessMs: idleTimeoutMs });
  }

  /** Periodic emission interval in ms (default 200, as Flink); 0 turns periodic emission off. */
  withAutoWatermarkInterval(intervalMs: number): WatermarkStrategy<T> {
    checkMillis('withAutoWatermarkInterval: intervalMs', intervalMs);
    return new WatermarkStrategy<T>({ ...this.spec, intervalMs });
  }

  /** What to do with a record whose timestamp cannot be assigned (see {@link InvalidTimestampPolicy}). */
  withInvalidTimestamps(policy: InvalidTimestampPolicy<T>): WatermarkStrategy<T> {
    const so = typeof policy === 'object' && policy !== null ? (policy.sideOutput as unknown) : undefined;
    const ok =
      policy === 'fail' || policy === 'drop' || typeof so === 'function' || (typeof so === 'object' && so !== null && typeof (so as { id?: unknown }).id === 'string');
    if (!ok) throw new TypeError(`withInvalidTimestamps: expects 'fail', 'drop', { sideOutput(record, error) } or { sideOutput: OutputTag }`);
    return new WatermarkStrategy<T>({ ...this.spec, onInvalid: policy });
  }

  /** Periodic emission interval, ms. */
  get autoWatermarkIntervalMs(): number {
    return this.spec.intervalMs;
  }

  /** Idle timeout, ms, if idleness is on. */
  get idleTimeoutMs(): number | undefined {
    return this.spec.idlenessMs;
  }

  /** Whether this strategy generates watermarks at all. */
  get generatesWatermarks(): boolean {
    return this.spec.generator !== undefined;
  }

  /** For plans: e.g. `boundedOutOfOrderness(5000ms), idle after 60000ms`. */
  toString(): string {
    const s = this.spec;
    const parts = [s.description];
    if (s.assigner.kind === 'fn') parts.push('timestamp assigner');
    if (s.idlenessMs !== undefined) parts.push(`idle after ${s.idlenessMs}ms`);
    if (s.generator && s.intervalMs !== DEFAULT_WATERMARK_INTERVAL_MS) parts.push(`every ${s.intervalMs}ms`);
    return parts.join(', ');
  }

  /** Instantiate for one source split (the runtime calls this; tests may too). */
  createWatermarker(ctx: WatermarkerContext, toTag?: (record: T, error: InvalidTimestampError) => void): Watermarker<T> {
    return new StrategyWatermarker<T>(this.spec, ctx, toTag);
  }

  /** The side-output tag id invalid records go to, if the policy names an OutputTag. */
  get invalidTimestampTag(): string | undefined {
    const p = this.spec.onInvalid;
    return typeof p === 'object' && typeof p.sideOutput === 'object' ? p.sideOutput.id : undefined;
  }
}

// ---- The per-split runtime of a strategy ----

/**
 * Runs a strategy for one split: timestamps, generator, idleness, and the output discipline the
 * runtime relies on — watermarks strictly increasing, `active` before a watermark that follows
 * `idle`, nothing after end of input. Cost per record: one assigner call and one `onEvent`; one
 * clock read per batch (idleness).
 */
class StrategyWatermarker<T> implements Watermarker<T> {
  readonly intervalMs: number;
  private readonly generator: WatermarkGenerator<T>;
  private readonly generates: boolean;
  private downstream: WatermarkOutput | undefined;
  private lastEmitted = MIN_WATERMARK;
  private idle = false;
  private ended = false;
  private lastActivity: number;
  private readonly guarded: WatermarkOutput;

  constructor(
    private readonly spec: StrategySpec<T>,
    private readonly ctx: WatermarkerContext,
    private readonly toTag?: (record: T, error: InvalidTimestampError) => void,
  ) {
    this.generates = spec.generator !== undefined;
    this.generator = spec.generator ? spec.generator(ctx) : new NoWatermarksGenerator<T>();
    this.intervalMs = this.generates || spec.idlenessMs !== undefined ? spec.intervalMs : 0;
    this.lastActivity = ctx.clock.now();
    this.guarded = {
      emitWatermark: (ts) => this.emit(ts),
      markIdle: () => this.markIdle(),
      markActive: () => this.markActive(),
    };
  }

  onBatch(batch: readonly T[], output: WatermarkOutput, recordTimestamps?: ArrayLike<number | undefined>): TimestampedBatch<T> {
    this.downstream = output;
    const n = batch.length;
    const timestamps: number[] = new Array(n);
    if (n === 0) return { records: batch, timestamps };
    if (this.ended) throw new Error(`internal: records after end of input in ${this.ctx.operator}`);
    // A record ends idleness, whether the idle timeout or the generator itself declared it.
    if (this.spec.idlenessMs !== undefined) this.lastActivity = this.ctx.clock.now();
    if (this.idle) this.markActive();
    const assigner = this.spec.assigner;
    const ingestion = assigner.kind === 'ingestion' ? this.ctx.clock.now() : 0;
    const lenient = !this.generates && assigner.kind === 'record';
    let kept: T[] | undefined;
    let k = 0;
    for (let i = 0; i < n; i++) {
      const rec = batch[i]!;
      const recordTs = recordTimestamps?.[i];
      let ts: unknown;
      let failure: InvalidTimestampError | undefined;
      if (assigner.kind === 'fn') {
        try {
          ts = assigner.fn(rec, recordTs);
        } catch (e) {
          failure = new InvalidTimestampError(rec, undefined, `timestamp assigner threw: ${e instanceof Error ? e.message : String(e)}`, this.where(i), e);
        }
      } else if (assigner.kind === 'ingestion') ts = ingestion;
      else ts = lenient ? (recordTs ?? MIN_WATERMARK) : recordTs;
      if (failure === undefined && !Number.isSafeInteger(ts)) {
        failure = new InvalidTimestampError(
          rec,
          ts,
          ts === undefined && assigner.kind === 'record'
            ? 'the strategy has no timestamp assigner and the source gave the record no timestamp'
            : `expected a safe integer of milliseconds, got ${previewValue(ts)}`,
          this.where(i),
        );
      }
      if (failure !== undefined) {
        const policy = this.spec.onInvalid;
        if (policy === 'fail') throw failure;
        if (policy !== 'drop') {
          const so = policy.sideOutput;
          if (typeof so === 'function') so(rec, failure);
          else if (this.toTag) this.toTag(rec, failure);
          else throw failure; // a tag only the operator can route to: outside it, fail rather than lose the record
        }
        if (kept === undefined) kept = batch.slice(0, i);
        continue;
      }
      if (kept !== undefined) kept.push(rec);
      timestamps[k++] = ts as number;
      if (this.generates) this.generator.onEvent(rec, ts as number, this.guarded);
    }
    if (kept !== undefined) timestamps.length = k;
    return { records: kept ?? batch, timestamps };
  }

  onPeriodicEmit(output: WatermarkOutput): void {
    this.downstream = output;
    if (this.ended) return;
    if (this.spec.idlenessMs !== undefined && this.ctx.clock.now() - this.lastActivity >= this.spec.idlenessMs) {
      this.markIdle();
      return;
    }
    if (this.generates) this.generator.onPeriodicEmit(this.guarded);
  }

  onEndOfInput(output: WatermarkOutput): void {
    this.downstream = output;
    if (this.ended) return;
    this.emit(MAX_WATERMARK);
    this.ended = true;
  }

  private where(recordIndex: number): ErrorContext {
    return { operator: this.ctx.operator, subtask: this.ctx.subtask, recordIndex };
  }

  private emit(ts: number): void {
    if (this.ended) return;
    if (!Number.isSafeInteger(ts)) throw new InvalidWatermarkError(ts, { operator: this.ctx.operator, subtask: this.ctx.subtask });
    if (ts <= this.lastEmitted) return;
    this.lastEmitted = ts;
    if (this.idle) this.markActive();
    this.downstream!.emitWatermark(ts);
  }

  private markIdle(): void {
    if (this.idle || this.ended) return;
    this.idle = true;
    this.downstream!.markIdle();
  }

  private markActive(): void {
    if (!this.idle || this.ended) return;
    this.idle = false;
    this.downstream!.markActive();
  }
}
