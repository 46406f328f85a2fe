// Owns the producer side of one job edge for one producer subtask (Flink's result partition): records
// already routed to a subpartition (consumer subtask) are serialized into buffers from the partition's
// LocalBufferPool and sent over that subpartition's credit channel, with the buffer timeout deciding
// when a partly filled buffer goes. Routing (forward, rebalance, hash by key group, ...) is the
// caller's; this takes "records for subpartition i" in batches.
//
// Backpressure without blocking: `write` answers how far it got. When the pool is dry it stops and
// the caller waits for `whenAvailable()` / `onAvailable()` before writing the rest — so the pool's
// size is a hard bound on this partition's memory, whatever the consumers do.

import type { Schema } from '../../core/schema.ts';
import { SystemClock, type ProcessingClock } from '../clock.ts';
import type { LocalBufferPool } from './buffer-pool.ts';
import type { CreditSender } from './credit-channel.ts';
import { DEFAULT_BUFFER_TIMEOUT_MS, OutputFlusher } from './output-flusher.ts';
import { createSerializer, type RecordSerializer } from './serializer.ts';

/** Options of a {@link PartitionWriter}. */
export interface PartitionWriterOptions<E> {
  /**
   * Where buffers come from. Give it at least `senders.length + 1` buffers (`minBuffers`): one being
   * filled per subpartition and one more, or every buffer can end up half full.
   */
  pool: LocalBufferPool;
  /** One channel per subpartition, in subpartition (consumer subtask) order. */
  senders: readonly CreditSender<E>[];
  /** The edge's schema: binary rows when given, MessagePack for arbitrary JS values when not. */
  schema?: Schema;
  /** ms a partly filled buffer may wait (default 100); 0 = flush after every write; -1 = only when full. */
  bufferTimeoutMs?: number;
  /** Clock of the buffer timeout (default: a SystemClock over Date.now). */
  clock?: ProcessingClock;
  /** How a timed flush runs (default: directly from the clock's callback); see OutputFlusherOptions.run. */
  runFlush?: (flush: () => void) => void;
  /** Producer operator named in errors. */
  operator?: string;
  /** Producer subtask named in errors. */
  subtask?: number;
}

/** Counters of a writer (a snapshot object). */
export interface PartitionWriterStats {
  readonly recordsWritten: number;
  readonly buffersSent: number;
  /** Buffers sent partly filled because the timeout expired. */
  readonly timedFlushes: number;
  /** Records that went alone in an unpooled buffer (larger than a pooled one). */
  readonly largeRecords: number;
}

/**
 * Serializes records into network buffers per subpartition and sends them with credit.
 *
 * Cost: per record the serializer's cost; per buffer one pool request, a header and a send.
 *
 * @example
 * ```ts
 * const writer = new PartitionWriter({ pool, senders, schema, bufferTimeoutMs: 100, operator: 'Map', subtask: 0 });
 * let i = 0;
 * while ((i = writer.write(sub, records, timestamps, i)) < records.length) await writer.whenAvailable();
 * writer.broadcastEvent(END_OF_INPUT);
 * writer.close();
 * ```
 */
export class PartitionWriter<T = unknown, E = unknown> {
  private readonly pool: LocalBufferPool;
  private readonly senders: readonly CreditSender<E>[];
  private readonly serializers: RecordSerializer<T>[];
  private readonly flusher: OutputFlusher;
  /** Subpartitions with a partly filled buffer. */
  private pending = 0;
  private readonly one: T[] = [undefined as T];
  private readonly oneTs: (number | undefined)[] = [undefined];
  private buffersSent = 0;
  private largeRecords = 0;
  private closed = false;

  constructor(options: PartitionWriterOptions<E>) {
    this.pool = options.pool;
    this.senders = options.senders;
    if (this.senders.length === 0) throw new RangeError('a partition writer needs at least one subpartition');
    this.serializers = this.senders.map(() => createSerializer<T>({ schema: options.schema, operator: options.operator, subtask: options.subtask }));
    this.flusher = new OutputFlusher({
      clock: options.clock ?? new SystemClock(),
      bufferTimeoutMs: options.bufferTimeoutMs ?? DEFAULT_BUFFER_TIMEOUT_MS,
      flush: () => this.flush(),
      run: options.runFlush,
    });
  }

  /** Number of subpartitions. */
  get subpartitions(): number {
    return this.senders.length;
  }

  /** Whether a buffer can be had now (a write may also succeed without one, into a partly filled buffer). */
  get isAvailable(): boolean {
    return this.pool.isAvailable;
  }

  /** Resolves when a buffer can be had (after a `write` that stopped short). */
  whenAvailable(): Promise<void> {
    return this.pool.whenAvailable();
  }

  /** Calls `listener` once when a buffer can be had (synchronously from the recycle that freed it). */
  onAvailable(listener: () => void): void {
    this.pool.onAvailable(listener);
  }

  get stats(): PartitionWriterStats {
    let records = 0;
    for (const s of this.serializers) records += s.recordsWritten;
    return { recordsWritten: records, buffersSent: this.buffersSent, timedFlushes: this.flusher.timedFlushes, largeRecords: this.largeRecords };
  }

  /**
   * Serializes `records[from..to)` (with `timestamps[i]` per record when given; undefined/NaN = none)
   * for subpartition `sub`. Returns the index of the first record not written: `to` when all were;
   * less when the pool ran dry — wait for `whenAvailable()` and call again from there. A record that
   * cannot be encoded throws (`FieldValueError`, `RecordEncodeError`, naming the operator and record);
   * records before it were written, and `failedAt(sub)` is its index.
   */
  write(sub: number, records: ArrayLike<T>, timestamps?: ArrayLike<number | undefined>, from = 0, to = records.length): number {
    if (this.closed) throw new Error('internal: write after close');
    const s = this.serializers[sub];
    if (s === undefined) throw new RangeError(`subpartition ${sub} is out of range [0, ${this.senders.length})`);
    const sender = this.senders[sub]!;
    const hadData = s.count > 0;
    let i = from;
    while (i < to) {
      if (!s.isOpen) {
        const buf = this.pool.requestBuffer();
        if (buf === undefined) break;
        s.begin(buf);
      }
      i = s.write(records, timestamps, i, to);
      if (i === to) break;
      if (s.count === 0) {
        // Bigger than an empty buffer: alone, in an exactly sized unpooled buffer (the open one stays open).
        const t = timestamps?.[i];
        sender.send(s.encodeLarge(records[i]!, t === undefined || Number.isNaN(t) ? undefined : t));
        this.buffersSent++;
        this.largeRecords++;
        i++;
      } else {
        sender.send(s.finish());
        this.buffersSent++;
      }
    }
    const hasData = s.count > 0;
    if (hasData) {
      if (this.flusher.flushEveryWrite) this.flushOne(sub, s);
      else {
        if (!hadData) this.pending++;
        this.flusher.dataPending();
      }
    } else if (hadData) this.donePending();
    return i;
  }

  /** Writes one record; false when the pool is dry (nothing written: wait, then write it again). */
  writeOne(sub: number, record: T, timestamp?: number): boolean {
    this.one[0] = record;
    this.oneTs[0] = timestamp;
    const n = this.write(sub, this.one, timestamp === undefined ? undefined : this.oneTs, 0, 1);
    this.one[0] = undefined as T;
    return n === 1;
  }

  /** After a write threw for a bad record: that record's index in the `records` given to `write`. */
  failedAt(sub: number): number {
    return this.serializers[sub]!.position;
  }

  /** Sends subpartition `sub`'s partly filled buffer (if any), then `event`, in that order. */
  emitEvent(sub: number, event: E): void {
    const s = this.serializers[sub];
    if (s === undefined) throw new RangeError(`subpartition ${sub} is out of range [0, ${this.senders.length})`);
    if (s.count > 0) this.flushOne(sub, s);
    this.senders[sub]!.sendEvent(event);
  }

  /** `emitEvent` on every subpartition (watermarks, barriers, end-of-input). */
  broadcastEvent(event: E): void {
    for (let sub = 0; sub < this.senders.length; sub++) this.emitEvent(sub, event);
  }

  /** Sends every partly filled buffer (never needs a new buffer, so never waits). */
  flush(): void {
    if (this.pending === 0) {
      this.flusher.flushed();
      return;
    }
    for (let sub = 0; sub < this.serializers.length; sub++) {
      const s = this.serializers[sub]!;
      if (s.count > 0) this.flushOne(sub, s);
    }
  }

  private flushOne(sub: number, s: RecordSerializer<T>): void {
    const wasPending = !this.flusher.flushEveryWrite;
    this.senders[sub]!.send(s.finish());
    this.buffersSent++;
    if (wasPending) this.donePending();
  }

  private donePending(): void {
    if (--this.pending === 0) this.flusher.flushed();
  }

  /**
   * Flushes, gives unused open buffers back to the pool and closes every channel. Send end-of-input
   * first (`broadcastEvent`). Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.flusher.close();
    for (const s of this.serializers) if (s.isOpen) this.pool.recycle(s.finish());
    for (const sender of this.senders) sender.close();
    this.closed = true;
  }
}
