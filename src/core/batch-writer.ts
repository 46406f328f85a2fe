// Owns encoding JS objects into binary row batches (layout drawn in abi/abi.ts) inside a caller-given,
// 8-byte-aligned region of any ArrayBuffer — in the engine, a 32 KiB segment of WASM linear memory.
// Validation of every value against its field happens here; a rejected row leaves the batch valid.

import {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  ROW_HEADER_BYTES,
  SLOT_BYTES,
  TYPE_ANY,
  TYPE_BOOL,
  TYPE_BYTES,
  TYPE_F64,
  TYPE_I32,
  TYPE_I64,
  TYPE_STRING,
  TYPE_TIMESTAMP,
} from '../../bindings/abi.generated.ts';
import { FieldValueError, SluiceError, type FieldErrorReason } from './errors.ts';
import { TYPE_CODES, type Fields, type InferRow, type Schema } from './schema.ts';
import { writeUtf8, utf8Length } from './utf8.ts';
import { AnyEncoder, AnyEncodeError } from './any-codec.ts';
import { loadFields } from './field-sites.ts';

// Module-local copies: a transpiler that turns imports into getters (CJS interop) must not put a
// property access into the hot loop.
const SLOT = SLOT_BYTES;
const ROW_HEADER = ROW_HEADER_BYTES;
const T_I32 = TYPE_I32;
const T_I64 = TYPE_I64;
const T_F64 = TYPE_F64;
const T_BOOL = TYPE_BOOL;
const T_STRING = TYPE_STRING;
const T_BYTES = TYPE_BYTES;
const T_TIMESTAMP = TYPE_TIMESTAMP;
const TWO_32 = 4294967296;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/** Options of a {@link BatchWriter}. */
export interface BatchWriterOptions {
  /** Operator name put into errors, e.g. `"Map(parse)"`. */
  operator?: string;
  /** Subtask index put into errors. */
  subtask?: number;
  /** Index of the first record this writer will see (errors report `startIndex + n`). Default 0. */
  startIndex?: number;
  /**
   * What `write()` does with a row too big for an empty batch: `'throw'` (default) a SluiceError, or
   * `'return-false'` (for callers that then grow the region, as `encodeBatch` does).
   */
  oversizedRow?: 'throw' | 'return-false';
}

/**
 * Per-schema facts both the writer and the reader precompute once: type codes, nullability and the
 * fixed part of a row. Cost: O(fields), built once per writer/reader.
 */
export class RowLayout {
  readonly n: number;
  /** Null bitmap bytes W = ceil(n / 64) * 8. */
  readonly bitmapBytes: number;
  /** Row header + bitmap + slots: the offset of the variable part from the row start. */
  readonly fixedBytes: number;
  /** Offset of slot 0 from the row start. */
  readonly slotsOffset: number;
  readonly codes: Uint8Array;
  readonly nullable: Uint8Array;
  readonly bigint: Uint8Array;
  readonly names: readonly string[];
  readonly anyNullable: boolean;
  constructor(readonly schema: Schema) {
    const n = schema.types.length;
    this.n = n;
    this.bitmapBytes = Math.ceil(n / 64) * 8;
    this.slotsOffset = ROW_HEADER_BYTES + this.bitmapBytes;
    this.fixedBytes = this.slotsOffset + SLOT_BYTES * n;
    this.codes = new Uint8Array(n);
    this.nullable = new Uint8Array(n);
    this.bigint = new Uint8Array(n);
    this.names = schema.names;
    let anyNullable = false;
    for (let i = 0; i < n; i++) {
      const ty = schema.types[i]!;
      this.codes[i] = TYPE_CODES[ty.kind];
      this.nullable[i] = ty.isNullable ? 1 : 0;
      this.bigint[i] = ty.kind === 'i64' && ty.bigint ? 1 : 0;
      if (ty.isNullable) anyNullable = true;
    }
    this.anyNullable = anyNullable;
  }
}

/** Typed-array views over a whole buffer, made once per buffer. */
export class BufferViews {
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  private big: BigInt64Array | null = null;
  constructor(readonly buffer: ArrayBufferLike) {
    const len = buffer.byteLength;
    this.u8 = new Uint8Array(buffer, 0, len);
    this.i32 = new Int32Array(buffer, 0, len >>> 2);
    this.f64 = new Float64Array(buffer, 0, Math.floor(len / 8));
  }
  get i64(): BigInt64Array {
    return (this.big ??= new BigInt64Array(this.buffer, 0, Math.floor(this.buffer.byteLength / 8)));
  }
}

function expectedOf(code: number, big: number): string {
  switch (code) {
    case TYPE_I32:
      return 'an i32 (integer in [-2^31, 2^31))';
    case TYPE_I64:
      return big ? 'an i64 (bigint in [-2^63, 2^63) or safe-integer number)' : 'an i64 (safe-integer number or bigint in [-2^63, 2^63))';
    case TYPE_F64:
      return 'an f64 (number)';
    case TYPE_BOOL:
      return 'a bool (boolean)';
    case TYPE_STRING:
      return 'a string';
    case TYPE_BYTES:
      return 'bytes (Uint8Array)';
    case TYPE_TIMESTAMP:
      return 'a timestamp (integer milliseconds or Date)';
    default:
      return 'a value MessagePack can encode';
  }
}

/**
 * Encodes records into one batch at a time inside a region of an ArrayBuffer (8-byte aligned).
 * Nothing is written outside the region. `write()` answers false when the row does not fit — finish
 * the batch, hand it on, `begin()`/`reset()` a fresh one and write the same record again.
 *
 * Cost: O(fields + payload bytes) per row, no allocation per row (except for `any` fields).
 *
 * @example
 * const w = new BatchWriter(s, new Uint8Array(32 * 1024), { operator: 'Source(trades)' });
 * for (const r of records) {
 *   if (!w.write(r)) { send(w.bytes(w.finish())); w.reset(); w.write(r); }
 * }
 * send(w.bytes(w.finish()));
 */
export class BatchWriter<F extends Fields = Fields> {
  readonly layout: RowLayout;
  private views!: BufferViews;
  /** Absolute byte offsets in the buffer: region start, current end of the batch, region end. */
  private base = 0;
  private pos = 0;
  private end = 0;
  private rows = 0;
  private index: number;
  private readonly operator: string | undefined;
  private readonly subtask: number | undefined;
  private anyEncoder: AnyEncoder | null = null;
  private readonly oversizedThrows: boolean;
  /** The record's values, loaded position by position (see field-sites.ts). */
  private readonly vals: unknown[];

  /**
   * @param region a Uint8Array (its whole extent is the region) or an ArrayBuffer (with `byteOffset`
   *   and `capacity`); the region's start must be 8-byte aligned in its buffer.
   */
  constructor(
    readonly schema: Schema<F>,
    region: Uint8Array | ArrayBufferLike,
    opts: BatchWriterOptions & { byteOffset?: number; capacity?: number } = {},
  ) {
    this.layout = new RowLayout(schema);
    this.operator = opts.operator;
    this.subtask = opts.subtask;
    this.index = opts.startIndex ?? 0;
    this.oversizedThrows = opts.oversizedRow !== 'return-false';
    this.vals = new Array<unknown>(this.layout.n).fill(null);
    this.begin(region, opts.byteOffset, opts.capacity);
  }

  /**
   * Starts a fresh, empty batch in another region (views are kept when the buffer is the same one,
   * so handing the writer the next segment of WASM memory costs nothing).
   */
  begin(region: Uint8Array | ArrayBufferLike, byteOffset?: number, capacity?: number): this {
    let buffer: ArrayBufferLike;
    if (ArrayBuffer.isView(region)) {
      buffer = region.buffer;
      byteOffset = region.byteOffset + (byteOffset ?? 0);
      capacity ??= region.byteLength - (byteOffset - region.byteOffset);
    } else {
      buffer = region;
      byteOffset ??= 0;
      capacity ??= buffer.byteLength - byteOffset;
    }
    if (byteOffset % 8 !== 0) throw new RangeError(`batch region must start 8-byte aligned (byteOffset ${byteOffset})`);
    if (capacity < 0 || byteOffset + capacity > buffer.byteLength) {
      throw new RangeError(`batch region [${byteOffset}, ${byteOffset + capacity}) is outside its buffer of ${buffer.byteLength} bytes`);
    }
    capacity -= capacity % 8;
    if (capacity < BATCH_HEADER_BYTES + this.layout.fixedBytes) {
      throw new RangeError(`batch region of ${capacity} bytes cannot hold even one row of ${this.schema} (needs ${BATCH_HEADER_BYTES + this.layout.fixedBytes})`);
    }
    if (this.views === undefined || this.views.buffer !== buffer || this.views.u8.byteLength !== buffer.byteLength) {
      this.views = new BufferViews(buffer);
    }
    this.base = byteOffset;
    this.end = byteOffset + capacity;
    this.reset();
    return this;
  }

  /** Empties the batch (same region). The running record index keeps counting. */
  reset(): this {
    this.pos = this.base + BATCH_HEADER_BYTES;
    this.rows = 0;
    return this;
  }

  /** Rows written into the current batch. */
  get rowCount(): number {
    return this.rows;
  }
  /** Bytes the current batch occupies (header included). */
  get byteLength(): number {
    return this.pos - this.base;
  }
  /** Bytes of the region. */
  get capacity(): number {
    return this.end - this.base;
  }
  /** The index the next record will be reported under in errors. */
  get recordIndex(): number {
    return this.index;
  }

  /** The batch's bytes so far, as a view of the region (call after `finish()`). */
  bytes(length = this.pos - this.base): Uint8Array {
    return new Uint8Array(this.views.buffer, this.base, length);
  }

  /** Writes the header; returns the batch length in bytes. The writer may keep writing afterwards. */
  finish(): number {
    const i32 = this.views.i32;
    const h = this.base >>> 2;
    i32[h] = BATCH_MAGIC;
    i32[h + 1] = this.pos - this.base;
    i32[h + 2] = this.rows;
    i32[h + 3] = this.schema.id | 0;
    return this.pos - this.base;
  }

  /**
   * Copies the batch written so far into a (larger) region and continues there. Rows are addressed
   * relative to their own start, so bytes move without re-encoding.
   */
  moveTo(region: Uint8Array | ArrayBufferLike, byteOffset?: number, capacity?: number): this {
    const used = this.pos - this.base;
    const old = this.views.u8.slice(this.base, this.pos);
    const rows = this.rows;
    this.begin(region, byteOffset, capacity);
    if (used > this.end - this.base) throw new RangeError(`moveTo: region of ${this.end - this.base} bytes cannot hold ${used} bytes`);
    this.views.u8.set(old, this.base);
    this.pos = this.base + used;
    this.rows = rows;
    return this;
  }

  /**
   * Appends one record. Returns false (writing nothing) when it does not fit in what is left of the
   * region; throws `FieldValueError` for a value that does not fit its field (the row is abandoned,
   * the batch stays valid), and a `SluiceError` when the row would not fit even an empty batch.
   * @param index the record's index for error messages (default: the writer's running count).
   */
  write(record: InferRow<F> | Record<string, unknown>, index: number = this.index): boolean {
    const L = this.layout;
    const start = this.pos;
    const end = this.end;
    const fixedEnd = start + L.fixedBytes;
    if (fixedEnd > end) return this.noRoom(record, index);
    const { u8, i32, f64 } = this.views;
    const codes = L.codes;
    const names = L.names;
    const n = L.n;
    const vals = this.vals;
    loadFields(record as Record<string, unknown>, names, n, vals);
    // zero the null bitmap
    const bm = start + ROW_HEADER;
    for (let w = bm >>> 2, e = (bm + L.bitmapBytes) >>> 2; w < e; w++) i32[w] = 0;
    let slot = start + L.slotsOffset;
    let varPos = fixedEnd;
    // hand-inlined hot loop: one switch over the precomputed type codes, typed-array stores at
    // aligned indexes
    for (let f = 0; f < n; f++, slot += SLOT) {
      const v = vals[f];
      const q = slot >>> 2;
      if (v === null || v === undefined) {
        if (L.nullable[f] === 0) throw this.fail(f, 'missing', v, index);
        u8[bm + (f >>> 3)]! |= 1 << (f & 7);
        i32[q] = 0;
        i32[q + 1] = 0;
        continue;
      }
      switch (codes[f]) {
        case T_F64:
          if (typeof v !== 'number') throw this.fail(f, 'wrong-type', v, index);
          f64[slot >>> 3] = v;
          break;
        case T_I64:
        case T_TIMESTAMP: {
          let x: number;
          if (typeof v === 'number') x = v;
          else if (typeof v === 'bigint' && codes[f] === T_I64) {
            if (v < I64_MIN || v > I64_MAX) throw this.fail(f, 'overflow', v, index);
            this.views.i64[slot >>> 3] = v;
            break;
          } else if (v instanceof Date && codes[f] === T_TIMESTAMP) {
            x = v.getTime();
            if (x !== x) throw this.fail(f, 'wrong-type', v, index);
          } else throw this.fail(f, 'wrong-type', v, index);
          if (!Number.isSafeInteger(x)) {
            throw this.fail(f, Number.isInteger(x) ? 'overflow' : 'not-integer', v, index);
          }
          const hi = Math.floor(x / TWO_32);
          i32[q] = (x - hi * TWO_32) | 0;
          i32[q + 1] = hi;
          break;
        }
        case T_STRING: {
          if (typeof v !== 'string') throw this.fail(f, 'wrong-type', v, index);
          const len = writeUtf8(v, u8, varPos, end);
          if (len < 0) return this.noRoom(record, index);
          i32[q] = varPos - start;
          i32[q + 1] = len;
          varPos += len;
          break;
        }
        case T_I32:
          if (typeof v !== 'number') throw this.fail(f, 'wrong-type', v, index);
          if ((v | 0) !== v) {
            throw this.fail(f, Number.isInteger(v) ? 'overflow' : 'not-integer', v, index);
          }
          i32[q] = v;
          i32[q + 1] = v >> 31;
          break;
        case T_BOOL:
          if (typeof v !== 'boolean') throw this.fail(f, 'wrong-type', v, index);
          i32[q] = v ? 1 : 0;
          i32[q + 1] = 0;
          break;
        case T_BYTES: {
          if (!(v instanceof Uint8Array)) throw this.fail(f, 'wrong-type', v, index);
          const len = v.length;
          if (varPos + len > end) return this.noRoom(record, index);
          u8.set(v, varPos);
          i32[q] = varPos - start;
          i32[q + 1] = len;
          varPos += len;
          break;
        }
        default: {
          // TYPE_ANY
          let enc: Uint8Array;
          try {
            enc = (this.anyEncoder ??= new AnyEncoder()).encode(v);
          } catch (e) {
            if (e instanceof AnyEncodeError) throw this.fail(f, 'unencodable', v, index, e.message);
            throw e;
          }
          const len = enc.length;
          if (varPos + len > end) return this.noRoom(record, index);
          u8.set(enc, varPos);
          i32[q] = varPos - start;
          i32[q + 1] = len;
          varPos += len;
        }
      }
    }
    // zero padding up to the next multiple of 8 (end is 8-aligned, so this stays inside the region)
    const rowEnd = varPos + ((8 - (varPos & 7)) & 7);
    for (let p = varPos; p < rowEnd; p++) u8[p] = 0;
    i32[start >>> 2] = rowEnd - start;
    i32[(start >>> 2) + 1] = 0;
    this.pos = rowEnd;
    this.rows++;
    this.index = index + 1;
    return true;
  }

  private fail(f: number, reason: FieldErrorReason, v: unknown, index: number, detail?: string): FieldValueError {
    this.index = index + 1; // the record is consumed (e.g. sent to a side output); the next one is index+1
    const L = this.layout;
    let expected = expectedOf(L.codes[f]!, L.bigint[f]!);
    if (L.nullable[f]) expected += ' or null';
    if (detail) expected += ` (${detail})`;
    return new FieldValueError(L.names[f]!, reason, expected, v, { operator: this.operator, subtask: this.subtask, recordIndex: index });
  }

  private noRoom(record: Record<string, unknown>, index: number): false {
    if (this.rows > 0 || !this.oversizedThrows) return false;
    const need = this.measure(record);
    this.index = index + 1;
    throw new SluiceError(
      `record needs a row of ${need} bytes but an empty batch of ${this.end - this.base} bytes holds at most ${this.end - this.base - BATCH_HEADER_BYTES}`,
      { domain: 'user', context: { operator: this.operator, subtask: this.subtask, recordIndex: index } },
    ).withContext({});
  }

  /** Exact row size of a record whose values are valid. Only used to explain an oversized row. */
  measure(record: Record<string, unknown>): number {
    const L = this.layout;
    let size = L.fixedBytes;
    for (let f = 0; f < L.n; f++) {
      const v = record[L.names[f]!];
      if (v === null || v === undefined) continue;
      const code = L.codes[f];
      if (code === TYPE_STRING && typeof v === 'string') size += utf8Length(v);
      else if (code === TYPE_BYTES && v instanceof Uint8Array) size += v.length;
      else if (code === TYPE_ANY) size += (this.anyEncoder ??= new AnyEncoder()).encode(v).length;
    }
    return size + ((8 - (size & 7)) & 7);
  }
}

/** Options of {@link encodeBatches} / {@link encodeBatch}. */
export interface EncodeOptions extends BatchWriterOptions {
  /** Bytes per batch (default 32 KiB, the managed-memory segment size). */
  batchBytes?: number;
}

/**
 * Encodes records into as many batches as needed, each in its own `batchBytes` buffer.
 *
 * @example
 * const batches = encodeBatches(s, [{ id: 1, ts: Date.now(), key: 'a', price: 2.5 }]);
 */
export function encodeBatches<F extends Fields>(schema: Schema<F>, records: Iterable<InferRow<F> | Record<string, unknown>>, opts: EncodeOptions = {}): Uint8Array[] {
  const size = Math.max(8, opts.batchBytes ?? 32768) & ~7;
  // Batches are carved from 1 MiB arenas (each batch its own aligned region): one allocation and one
  // set of typed-array views per arena rather than per batch.
  const perArena = Math.max(1, Math.floor(ARENA_BYTES / size));
  let arena = new ArrayBuffer(size * perArena);
  let slot = 0;
  const out: Uint8Array[] = [];
  const w = new BatchWriter(schema, arena, { ...opts, byteOffset: 0, capacity: size });
  for (const r of records) {
    if (!w.write(r)) {
      out.push(w.bytes(w.finish()));
      if (++slot === perArena) {
        arena = new ArrayBuffer(size * perArena);
        slot = 0;
      }
      w.begin(arena, slot * size, size);
      w.write(r);
    }
  }
  if (w.rowCount > 0 || out.length === 0) out.push(w.bytes(w.finish()));
  return out;
}

const ARENA_BYTES = 1 << 20;

/**
 * Encodes all records into a single batch, growing its buffer as needed.
 *
 * @example
 * const bytes = encodeBatch(s, rows);
 */
export function encodeBatch<F extends Fields>(schema: Schema<F>, records: Iterable<InferRow<F> | Record<string, unknown>>, opts: BatchWriterOptions & { initialBytes?: number } = {}): Uint8Array {
  let size = Math.max(opts.initialBytes ?? 4096, 64);
  const w = new BatchWriter(schema, new ArrayBuffer(size), { ...opts, oversizedRow: 'return-false' });
  for (const r of records) {
    const before = w.recordIndex;
    while (!w.write(r, before)) {
      size *= 2;
      w.moveTo(new ArrayBuffer(size));
    }
  }
  const len = w.finish();
  return w.bytes(len);
}
