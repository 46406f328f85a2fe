// Owns the contents of a network buffer: packing a run of records (and, optionally, a parallel run of
// event timestamps) into one fixed-size buffer, and back. Edges with a schema use the binary row
// format (src/core/batch-writer.ts / batch-reader.ts); edges without one use MessagePack
// (src/core/any-codec.ts) for arbitrary JS values.
//
// Network buffer layout (little-endian; every section starts 8-byte aligned):
//
//   offset  size  field
//   0       4     magic         NET_BUFFER_MAGIC ('S','L','N','B')
//   4       4     used          bytes in use, header included (≤ the buffer's byteLength)
//   8       4     count         records in the buffer
//   12      4     payloadBytes  bytes of the payload (without its padding)
//   16      1     format        1 = rows, 2 = any
//   17      1     flags         bit 0: timestamps present; bit 1: unpooled (a single large record)
//   18      6     reserved      0
//   24      ...   payload       rows: a binary row batch (abi/abi.ts) of `count` rows
//                               any:  a MessagePack array32 (0xdd, u32 BE count) of the records
//   24+P'   8·n   timestamps    if flag bit 0: `count` f64 event timestamps, NaN = none
//                               (P' = payloadBytes rounded up to 8; the padding is zero)
//
// A record too large for an empty buffer travels alone in an "unpooled" buffer of exactly the size it
// needs (flag bit 1), not split across pooled buffers: it costs a credit like any buffer, and when it
// is recycled the pool drops it (its size differs from the pool's). The bound on memory in flight is
// then (pool size × buffer size) plus the large records in flight, which credits bound in number.
//
// Decoding validates everything (the bytes may come from another thread): a bad header is a
// CorruptBatchError naming what is wrong; the row batch goes through BatchReader's validation and the
// MessagePack through decodeAny's bounds checks.

import { BatchReader } from '../../core/batch-reader.ts';
import { BatchWriter, encodeBatch } from '../../core/batch-writer.ts';
import { AnyEncodeError, AnyEncoder, decodeAny } from '../../core/any-codec.ts';
import { CorruptBatchError, SchemaMismatchError, SluiceError, type ErrorContext } from '../../core/errors.ts';
import type { Schema } from '../../core/schema.ts';

/** 'S','L','N','B' read as a little-endian u32. */
export const NET_BUFFER_MAGIC = 0x424e4c53;
/** Bytes of the network buffer header; the payload starts here. */
export const NET_HEADER_BYTES = 24;
/** Header flag: the buffer carries a timestamp per record. */
export const FLAG_TIMESTAMPS = 1;
/** Header flag: an exactly-sized buffer holding one record larger than a pooled buffer. */
export const FLAG_UNPOOLED = 2;

const FORMAT_ROWS = 1;
const FORMAT_ANY = 2;
const HEADER = NET_HEADER_BYTES;
const MAGIC = NET_BUFFER_MAGIC;
const ANY_ARRAY_HEADER = 5; // 0xdd + u32 BE count

/** How a buffer's records are encoded: binary rows (schema'd edges) or MessagePack (`any`). */
export type BufferFormat = 'rows' | 'any';

/** Options of {@link createSerializer} and {@link createDeserializer}. */
export interface SerializerOptions {
  /** The edge's schema: binary rows when given, MessagePack for arbitrary JS values when not. */
  schema?: Schema;
  /** Operator named in errors (the producer for serializers, the consumer for deserializers). */
  operator?: string;
  /** Subtask named in errors. */
  subtask?: number;
}

/** A record that cannot be encoded for the network (MessagePack refuses it: a function, a Map, a cycle…). */
export class RecordEncodeError extends SluiceError {
  constructor(detail: string, readonly value: unknown, context: ErrorContext = {}) {
    super(`record cannot be sent over the network: ${detail}`, { domain: 'user', context });
    this.withContext(context);
  }
}

/**
 * Packs records into network buffers, one buffer at a time: `begin(buffer)`, `write(...)` until it
 * answers less than `to` (the buffer is full), `finish()` to seal it, and `begin` the next one.
 *
 * Cost: rows O(fields + payload) per record, no allocation per record (MessagePack: one encode and
 * one copy per record); a few typed-array views per buffer.
 *
 * @example
 * ```ts
 * const ser = createSerializer({ schema });          // or {} for MessagePack
 * ser.begin(pool.requestBuffer()!);
 * let i = 0;
 * while (i < records.length) {
 *   i = ser.write(records, timestamps, i, records.length);
 *   if (i < records.length) {
 *     if (ser.count === 0) send(ser.encodeLarge(records[i], timestamps[i]), i++); // bigger than a buffer
 *     else { send(ser.finish()); ser.begin(pool.requestBuffer()!); }
 *   }
 * }
 * send(ser.finish());
 * ```
 */
export interface RecordSerializer<T = unknown> {
  readonly format: BufferFormat;
  /** Whether a buffer is being filled (between `begin` and `finish`). */
  readonly isOpen: boolean;
  /** Records in the buffer being filled. */
  readonly count: number;
  /** Records written over the serializer's life: the index errors report for the next record. */
  readonly recordsWritten: number;
  /**
   * The position in `records` of the record `write` was working on when it returned or threw: after a
   * `FieldValueError` / `RecordEncodeError`, the offending record (skip it by writing from here + 1).
   */
  readonly position: number;
  /** Starts filling `buffer` (a whole pooled buffer; its old contents do not matter). */
  begin(buffer: ArrayBuffer): void;
  /**
   * Appends `records[from..to)` (with `timestamps[i]` for record i when given; NaN = none) to the
   * open buffer. Returns the index of the first record not written: `to` when all fit. Less than `to`
   * with `count > 0`: the buffer is full — `finish()` it and `begin` another. Less than `to` with
   * `count === 0`: that record does not fit even an empty buffer — send it with `encodeLarge`.
   * A record whose values do not fit the schema throws `FieldValueError`, one MessagePack cannot
   * encode throws `RecordEncodeError`; records before it were written (see `position`).
   */
  write(records: ArrayLike<T>, timestamps: ArrayLike<number | undefined> | undefined, from: number, to: number): number;
  /** Seals the open buffer (writes its header) and returns it; no buffer is open afterwards. */
  finish(): ArrayBuffer;
  /** One record alone in an exactly-sized unpooled buffer (for a record larger than a pooled buffer). */
  encodeLarge(record: T, timestamp?: number): ArrayBuffer;
}

/** Records decoded from one buffer; both arrays are the caller's (nothing refers to the buffer). */
export interface DecodedBatch<T = unknown> {
  readonly records: T[];
  /** One per record (NaN = none), or undefined when the buffer carried no timestamps. */
  readonly timestamps: Float64Array | undefined;
}

/** Turns network buffers back into records. Keep one per input channel (it reuses a reader). */
export interface RecordDeserializer<T = unknown> {
  readonly format: BufferFormat;
  /**
   * Validates and decodes a buffer. The result does not refer to the buffer: recycle it right after.
   * Throws `CorruptBatchError` for bytes that are not a well-formed buffer of this format, and
   * `SchemaMismatchError` for rows of another schema or a buffer of the other format.
   */
  decode(buffer: ArrayBuffer): DecodedBatch<T>;
}

/** What a buffer holds, read from its header without decoding the records (views: valid until recycled). */
export interface BufferContents {
  readonly format: BufferFormat;
  readonly count: number;
  /** Whether the buffer is an unpooled single-record buffer. */
  readonly unpooled: boolean;
  /** The payload: a binary row batch (format 'rows') or a MessagePack array (format 'any'). */
  readonly payload: Uint8Array;
  readonly timestamps: Float64Array | undefined;
}

/**
 * A serializer for one output channel: binary rows when `options.schema` is given, else MessagePack.
 *
 * @example
 * ```ts
 * const rows = createSerializer({ schema: schema({ id: t.i64(), name: t.string() }), operator: 'Map(parse)', subtask: 0 });
 * const any = createSerializer({ operator: 'Map(parse)', subtask: 0 });
 * ```
 */
export function createSerializer<T = unknown>(options: SerializerOptions = {}): RecordSerializer<T> {
  return options.schema ? new RowSerializer<T>(options.schema, options) : new AnySerializer<T>(options);
}

/**
 * A deserializer for one input channel, the counterpart of {@link createSerializer} with the same schema.
 *
 * @example
 * ```ts
 * const de = createDeserializer({ schema, operator: 'Sink', subtask: 1 });
 * const { records, timestamps } = de.decode(buffer);
 * receiver.recycle(buffer);
 * ```
 */
export function createDeserializer<T = unknown>(options: SerializerOptions = {}): RecordDeserializer<T> {
  return options.schema ? new RowDeserializer<T>(options.schema, options) : new AnyDeserializer<T>(options);
}

const align8 = (n: number): number => (n + 7) & ~7;

/** Writes the header words (and zeroes the reserved ones). */
function writeHeader(buffer: ArrayBuffer, used: number, count: number, payloadBytes: number, format: number, flags: number): void {
  const h = new Uint32Array(buffer, 0, 6);
  h[0] = MAGIC;
  h[1] = used;
  h[2] = count;
  h[3] = payloadBytes;
  h[4] = format | (flags << 8);
  h[5] = 0;
}

/** Grows a timestamp scratch array to hold `n`. */
function grow(a: Float64Array, n: number): Float64Array {
  if (n <= a.length) return a;
  const b = new Float64Array(Math.max(n, a.length * 2));
  b.set(a);
  return b;
}

abstract class SerializerBase<T> {
  protected buffer: ArrayBuffer | null = null;
  protected n = 0;
  protected hasTs = false;
  protected ts: Float64Array = new Float64Array(256);
  recordsWritten = 0;
  position = 0;
  protected readonly ctx: ErrorContext;

  constructor(options: SerializerOptions) {
    this.ctx = { operator: options.operator, subtask: options.subtask };
  }

  get isOpen(): boolean {
    return this.buffer !== null;
  }

  get count(): number {
    return this.n;
  }

  protected open(buffer: ArrayBuffer): void {
    if (this.buffer !== null) throw new Error('internal: begin() while a buffer is open; finish() it first');
    if (buffer.byteLength < 256 || buffer.byteLength % 8 !== 0) throw new RangeError(`network buffer of ${buffer.byteLength} bytes: need a multiple of 8 of at least 256`);
    this.buffer = buffer;
    this.n = 0;
    this.hasTs = false;
  }

  /** Records the timestamp of the record just written as number `n` (0-based) of this buffer. */
  protected stamp(timestamps: ArrayLike<number | undefined> | undefined, i: number, n: number): void {
    if (timestamps === undefined) {
      if (this.hasTs) this.ts[n] = NaN;
      return;
    }
    if (!this.hasTs) {
      this.hasTs = true;
      this.ts = grow(this.ts, n + 1);
      this.ts.fill(NaN, 0, n);
    } else if (n >= this.ts.length) this.ts = grow(this.ts, n + 1);
    const t = timestamps[i];
    this.ts[n] = t === undefined ? NaN : t;
  }

  /** Copies the timestamps after the payload; returns the bytes used in all. */
  protected sealTimestamps(buffer: ArrayBuffer, payloadEnd: number): number {
    if (!this.hasTs) return payloadEnd;
    new Float64Array(buffer, payloadEnd, this.n).set(this.ts.subarray(0, this.n));
    return payloadEnd + 8 * this.n;
  }
}

class RowSerializer<T> extends SerializerBase<T> implements RecordSerializer<T> {
  readonly format = 'rows' as const;
  private writer: BatchWriter | null = null;
  /** When the last row written had to be taken back (its timestamp did not fit): the batch before it. */
  private cutBytes = -1;

  constructor(private readonly schema: Schema, options: SerializerOptions) {
    super(options);
  }

  begin(buffer: ArrayBuffer): void {
    this.open(buffer);
    this.cutBytes = -1;
    // One writer for the serializer's life; begin() keeps its typed-array views when the buffer repeats.
    if (this.writer === null) {
      this.writer = new BatchWriter(this.schema, buffer, { ...this.ctx, byteOffset: HEADER, capacity: buffer.byteLength - HEADER, oversizedRow: 'return-false' });
    } else this.writer.begin(buffer, HEADER, buffer.byteLength - HEADER);
  }

  write(records: ArrayLike<T>, timestamps: ArrayLike<number | undefined> | undefined, from: number, to: number): number {
    const buffer = this.buffer;
    if (buffer === null) throw new Error('internal: write() without begin()');
    if (this.cutBytes >= 0) return from; // full: the last row was taken back
    const w = this.writer!;
    const limit = buffer.byteLength - HEADER;
    const withTs = this.hasTs || timestamps !== undefined;
    for (let i = from; i < to; i++) {
      this.position = i;
      const before = w.byteLength;
      if (!w.write(records[i] as Record<string, unknown>, this.recordsWritten)) return i;
      // Rows grow from the front and timestamps need 8 bytes each behind them: take the row back
      // (the batch before it stays valid) when they no longer fit together.
      if (withTs && w.byteLength + 8 * w.rowCount > limit) {
        if (this.n === 0) w.reset(); // not even alone: the caller sends it with encodeLarge
        else this.cutBytes = before;
        return i;
      }
      this.stamp(timestamps, i, this.n);
      this.n++;
      this.recordsWritten++;
    }
    this.position = to;
    return to;
  }

  finish(): ArrayBuffer {
    const buffer = this.buffer;
    if (buffer === null) throw new Error('internal: finish() without begin()');
    let len = this.writer!.finish();
    if (this.cutBytes >= 0) {
      // The batch header says what the writer wrote; cut the taken-back row off.
      len = this.cutBytes;
      const h = new Uint32Array(buffer, HEADER, 3);
      h[1] = len;
      h[2] = this.n;
    }
    const used = this.sealTimestamps(buffer, HEADER + len);
    writeHeader(buffer, used, this.n, len, FORMAT_ROWS, this.hasTs ? FLAG_TIMESTAMPS : 0);
    this.buffer = null;
    this.n = 0;
    return buffer;
  }

  encodeLarge(record: T, timestamp?: number): ArrayBuffer {
    const batch = encodeBatch(this.schema, [record as Record<string, unknown>], { ...this.ctx, startIndex: this.recordsWritten });
    const hasTs = timestamp !== undefined;
    const size = HEADER + batch.byteLength + (hasTs ? 8 : 0);
    const out = new ArrayBuffer(size);
    new Uint8Array(out, HEADER, batch.byteLength).set(batch);
    if (hasTs) new Float64Array(out, HEADER + batch.byteLength, 1)[0] = timestamp;
    writeHeader(out, size, 1, batch.byteLength, FORMAT_ROWS, FLAG_UNPOOLED | (hasTs ? FLAG_TIMESTAMPS : 0));
    this.recordsWritten++;
    return out;
  }
}

class AnySerializer<T> extends SerializerBase<T> implements RecordSerializer<T> {
  readonly format = 'any' as const;
  private readonly encoder = new AnyEncoder();
  private u8: Uint8Array = new Uint8Array(0);
  private pos = 0;

  begin(buffer: ArrayBuffer): void {
    this.open(buffer);
    this.u8 = new Uint8Array(buffer);
    this.pos = HEADER + ANY_ARRAY_HEADER;
  }

  private encode(record: unknown): Uint8Array {
    try {
      return this.encoder.encode(record);
    } catch (e) {
      if (e instanceof AnyEncodeError) throw new RecordEncodeError(e.message, record, { ...this.ctx, recordIndex: this.recordsWritten });
      throw e;
    }
  }

  write(records: ArrayLike<T>, timestamps: ArrayLike<number | undefined> | undefined, from: number, to: number): number {
    if (this.buffer === null) throw new Error('internal: write() without begin()');
    const u8 = this.u8;
    const end = u8.byteLength;
    const withTs = this.hasTs || timestamps !== undefined;
    let pos = this.pos;
    for (let i = from; i < to; i++) {
      this.position = i;
      const enc = this.encode(records[i]);
      const len = enc.length;
      if (align8(pos + len) + (withTs ? 8 * (this.n + 1) : 0) > end) return i;
      u8.set(enc, pos);
      pos += len;
      this.pos = pos; // kept current: the next record may throw
      this.stamp(timestamps, i, this.n);
      this.n++;
      this.recordsWritten++;
    }
    this.position = to;
    return to;
  }

  finish(): ArrayBuffer {
    const buffer = this.buffer;
    if (buffer === null) throw new Error('internal: finish() without begin()');
    const u8 = this.u8;
    const n = this.n;
    u8[HEADER] = 0xdd;
    u8[HEADER + 1] = n >>> 24;
    u8[HEADER + 2] = (n >>> 16) & 0xff;
    u8[HEADER + 3] = (n >>> 8) & 0xff;
    u8[HEADER + 4] = n & 0xff;
    const payload = this.pos - HEADER;
    const padded = align8(this.pos);
    u8.fill(0, this.pos, padded);
    const used = this.sealTimestamps(buffer, padded);
    writeHeader(buffer, used, n, payload, FORMAT_ANY, this.hasTs ? FLAG_TIMESTAMPS : 0);
    this.buffer = null;
    this.u8 = new Uint8Array(0);
    this.n = 0;
    return buffer;
  }

  encodeLarge(record: T, timestamp?: number): ArrayBuffer {
    const enc = this.encode(record);
    const hasTs = timestamp !== undefined;
    const payload = ANY_ARRAY_HEADER + enc.length;
    const size = HEADER + align8(payload) + (hasTs ? 8 : 0);
    const out = new ArrayBuffer(size);
    const u8 = new Uint8Array(out);
    u8[HEADER] = 0xdd;
    u8[HEADER + 4] = 1;
    u8.set(enc, HEADER + ANY_ARRAY_HEADER);
    if (hasTs) new Float64Array(out, HEADER + align8(payload), 1)[0] = timestamp;
    writeHeader(out, size, 1, payload, FORMAT_ANY, FLAG_UNPOOLED | (hasTs ? FLAG_TIMESTAMPS : 0));
    this.recordsWritten++;
    return out;
  }
}

/**
 * Reads and checks a buffer's header. Throws CorruptBatchError naming what is wrong.
 *
 * @example
 * ```ts
 * const { format, count, payload } = inspectBuffer(buffer); // e.g. copy `payload` into WASM memory
 * ```
 */
export function inspectBuffer(buffer: ArrayBuffer, context: ErrorContext = {}): BufferContents {
  const size = buffer.byteLength;
  const bad = (detail: string): never => {
    throw new CorruptBatchError(`network buffer: ${detail}`, context);
  };
  if (size < HEADER) bad(size === 0 ? 'the buffer is empty or detached' : `${size} bytes cannot hold the ${HEADER}-byte header`);
  const h = new Uint32Array(buffer, 0, 6);
  if (h[0] !== MAGIC) bad(`bad magic 0x${(h[0]! >>> 0).toString(16).padStart(8, '0')}`);
  const used = h[1]!;
  const count = h[2]!;
  const payloadBytes = h[3]!;
  const format = h[4]! & 0xff;
  const flags = (h[4]! >>> 8) & 0xff;
  if ((h[4]! >>> 16) !== 0 || h[5] !== 0) bad('reserved header bytes are not zero');
  if (format !== FORMAT_ROWS && format !== FORMAT_ANY) bad(`unknown format ${format}`);
  if ((flags & ~(FLAG_TIMESTAMPS | FLAG_UNPOOLED)) !== 0) bad(`unknown flags 0x${flags.toString(16)}`);
  if (used > size || used < HEADER) bad(`${used} bytes in use in a buffer of ${size}`);
  const hasTs = (flags & FLAG_TIMESTAMPS) !== 0;
  const payloadEnd = HEADER + align8(payloadBytes);
  if (payloadEnd + (hasTs ? 8 * count : 0) !== used) bad(`${count} records with ${payloadBytes} payload bytes${hasTs ? ' and timestamps' : ''} do not make ${used} bytes`);
  return {
    format: format === FORMAT_ROWS ? 'rows' : 'any',
    count,
    unpooled: (flags & FLAG_UNPOOLED) !== 0,
    payload: new Uint8Array(buffer, HEADER, payloadBytes),
    timestamps: hasTs ? new Float64Array(buffer, payloadEnd, count) : undefined,
  };
}

function checkFormat(c: BufferContents, expected: BufferFormat, ctx: ErrorContext): void {
  if (c.format !== expected) {
    throw new SchemaMismatchError(
      expected === 'rows' ? 'a MessagePack buffer arrived on an edge with a schema (binary rows expected)' : 'a binary-row buffer arrived on an edge without a schema (MessagePack expected)',
      ctx,
    );
  }
}

class RowDeserializer<T> implements RecordDeserializer<T> {
  readonly format = 'rows' as const;
  private reader: BatchReader | null = null;
  private readonly ctx: ErrorContext;

  constructor(private readonly schema: Schema, options: SerializerOptions) {
    this.ctx = { operator: options.operator, subtask: options.subtask };
  }

  decode(buffer: ArrayBuffer): DecodedBatch<T> {
    const c = inspectBuffer(buffer, this.ctx);
    checkFormat(c, 'rows', this.ctx);
    const r = this.reader === null ? (this.reader = new BatchReader(this.schema, c.payload, this.ctx)) : this.reader.reset(c.payload);
    if (r.byteLength !== c.payload.byteLength) throw new CorruptBatchError(`network buffer: the row batch is ${r.byteLength} bytes, the header says ${c.payload.byteLength}`, this.ctx);
    if (r.rowCount !== c.count) throw new CorruptBatchError(`network buffer: the header says ${c.count} records, the row batch has ${r.rowCount}`, this.ctx);
    const records = r.readAll() as T[];
    return { records, timestamps: c.timestamps?.slice() };
  }
}

class AnyDeserializer<T> implements RecordDeserializer<T> {
  readonly format = 'any' as const;
  private readonly ctx: ErrorContext;

  constructor(options: SerializerOptions) {
    this.ctx = { operator: options.operator, subtask: options.subtask };
  }

  decode(buffer: ArrayBuffer): DecodedBatch<T> {
    const c = inspectBuffer(buffer, this.ctx);
    checkFormat(c, 'any', this.ctx);
    const p = c.payload;
    if (p.byteLength < ANY_ARRAY_HEADER || p[0] !== 0xdd) throw new CorruptBatchError('network buffer: the MessagePack payload is not an array32', this.ctx);
    let records: unknown;
    try {
      records = decodeAny(p, 0, p.byteLength);
    } catch (e) {
      if (e instanceof CorruptBatchError) throw e.withContext(this.ctx);
      throw e;
    }
    if (!Array.isArray(records) || records.length !== c.count) {
      throw new CorruptBatchError(`network buffer: the header says ${c.count} records, the payload has ${Array.isArray(records) ? records.length : 'none'}`, this.ctx);
    }
    return { records: records as T[], timestamps: c.timestamps?.slice() };
  }
}
