// Owns the consumer side of one input channel: polling its credit receiver, decoding each buffer into
// a batch of records (and timestamps), and recycling the buffer at once so its credit goes back while
// the records are being processed. Events pass through in channel order.

import type { CreditReceiver } from './credit-channel.ts';
import type { RecordDeserializer } from './serializer.ts';

/** What a {@link ChannelReader} yields: a decoded batch, or an event. */
export type ReadItem<T, E> =
  | { readonly kind: 'records'; readonly records: T[]; readonly timestamps: Float64Array | undefined }
  | { readonly kind: 'event'; readonly event: E };

/**
 * Decodes one input channel. A buffer that fails to decode is still recycled, then the error
 * (`CorruptBatchError`, `SchemaMismatchError`, naming the consumer) is thrown.
 *
 * Cost: one decode per buffer; one small result object per buffer or event.
 *
 * @example
 * ```ts
 * const reader = new ChannelReader(receiver, createDeserializer({ schema, operator: 'Sink', subtask: 0 }));
 * for (let item = reader.next(); item; item = reader.next()) {
 *   if (item.kind === 'records') process(item.records, item.timestamps);
 *   else onEvent(item.event);
 * }
 * if (reader.isFinished) done(); else await reader.whenAvailable();
 * ```
 */
export class ChannelReader<T = unknown, E = unknown> {
  /** Records decoded so far. */
  recordsRead = 0;
  /** Buffers decoded so far. */
  buffersRead = 0;

  constructor(
    readonly receiver: CreditReceiver<E>,
    private readonly deserializer: RecordDeserializer<T>,
  ) {}

  /** The next batch or event in channel order, or undefined if nothing is there now (or at the end). */
  next(): ReadItem<T, E> | undefined {
    const item = this.receiver.poll();
    if (item === undefined) return undefined;
    if (!(item instanceof ArrayBuffer)) return { kind: 'event', event: item };
    let decoded;
    try {
      decoded = this.deserializer.decode(item);
    } finally {
      this.receiver.recycle(item);
    }
    this.buffersRead++;
    this.recordsRead += decoded.records.length;
    return { kind: 'records', records: decoded.records, timestamps: decoded.timestamps };
  }

  /** Whether the producer closed the channel and everything was read. */
  get isFinished(): boolean {
    return this.receiver.isFinished;
  }

  /** Resolves when `next()` would answer something, or the channel finished. */
  whenAvailable(): Promise<void> {
    return this.receiver.whenAvailable();
  }
}
