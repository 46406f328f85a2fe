// Owns reading binary row batches (layout drawn in abi/abi.ts): validating untrusted bytes once,
// then materializing plain objects or reading single fields in place, without building objects.

import {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  TYPE_ANY,
  TYPE_BOOL,
  TYPE_BYTES,
  TYPE_F64,
  TYPE_I32,
  TYPE_I64,
  TYPE_STRING,
  TYPE_TIMESTAMP,
} from '../../bindings/abi.generated.ts';
import { CorruptBatchError, FieldValueError, SchemaMismatchError, type ErrorContext } from './errors.ts';
import type { Fields, InferRow, Schema } from './schema.ts';
import { readUtf8, isShared } from './utf8.ts';
import { decodeAny } from './any-codec.ts';
import { BufferViews, RowLayout } from './batch-writer.ts';
import { buildObject } from './field-sites.ts';

// Module-local copies: a transpiler that turns imports into getters (CJS interop) must not put a
// property access into the hot loops.
const T_I32 = TYPE_I32;
const T_I64 = TYPE_I64;
const T_F64 = TYPE_F64;
const T_BOOL = TYPE_BOOL;
const T_STRING = TYPE_STRING;
const T_BYTES = TYPE_BYTES;
const T_TIMESTAMP = TYPE_TIMESTAMP;

const TWO_32 = 4294967296;
/** hi word bounds of a safe integer: |v| ≤ 2^53 − 1 */
const SAFE_HI_MAX = 0x1fffff;
const SAFE_HI_MIN = -0x200000;

/** Options of a {@link BatchReader}. */
export interface BatchReaderOptions {
  /** Operator name put into errors. */
  operator?: string;
  /** Subtask index put into errors. */
  subtask?: number;
}

function hex(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0');
}

/** Little-endian u32 at any alignment (used for the header, before views exist). */
function rd32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/**
 * Reads one batch. Construction (and `reset`) validates the whole batch — header, every row's length
 * and alignment, null bits, slot invariants, var payload placement and zero padding — so the accessors
 * after it never read outside the batch. Truncated or corrupt bytes raise `CorruptBatchError`; a batch
 * of another schema raises `SchemaMismatchError`.
 *
 * Cost: validation O(rows × (bitmap words + var/bool/i32 fields)); `read(i)` O(fields); a field
 * accessor O(1) (O(length) for strings/bytes/any). Views are built once per buffer.
 *
 * Field accessors return the slot as stored; a null field's slot is all zero, so they return 0, 0n,
 * false, '' or an empty Uint8Array for it (`getAny` returns null) — check `isNull()` on nullable fields.
 *
 * @example
 * const r = new BatchReader(s, bytes);
 * const price = r.field('price');
 * let sum = 0;
 * for (let i = 0; i < r.rowCount; i++) sum += r.getF64(i, price);
 * const objects = r.readAll(); // [{ id, ts, key, price }, ...]
 */
export class BatchReader<F extends Fields = Fields> {
  readonly layout: RowLayout;
  private views: BufferViews | null = null;
  private shared = false;
  private base = 0;
  private len = 0;
  private rows = 0;
  /** Absolute byte offset of each row in the buffer (filled by the validation walk). */
  private offsets: Float64Array = new Float64Array(64);
  private readonly ctx: ErrorContext;
  // validation plan, precomputed from the schema
  private readonly varFields: Int32Array;
  private readonly boolFields: Int32Array;
  private readonly i32Fields: Int32Array;
  /** Per 32-bit bitmap word: bits that must be clear (non-nullable fields and bits past the last field). */
  private readonly mustBeClear: Int32Array;
  private readonly names: readonly string[];
  private readonly vals: unknown[];

  constructor(
    readonly schema: Schema<F>,
    bytes: Uint8Array,
    opts: BatchReaderOptions = {},
  ) {
    const L = (this.layout = new RowLayout(schema));
    this.ctx = { operator: opts.operator, subtask: opts.subtask };
    this.names = L.names;
    this.vals = new Array<unknown>(L.n).fill(null);
    const vars: number[] = [];
    const bools: number[] = [];
    const ints: number[] = [];
    for (let f = 0; f < L.n; f++) {
      const c = L.codes[f];
      if (c === TYPE_STRING || c === TYPE_BYTES || c === TYPE_ANY) vars.push(f);
      else if (c === TYPE_BOOL) bools.push(f);
      else if (c === TYPE_I32) ints.push(f);
    }
    this.varFields = Int32Array.from(vars);
    this.boolFields = Int32Array.from(bools);
    this.i32Fields = Int32Array.from(ints);
    this.mustBeClear = new Int32Array(L.bitmapBytes >>> 2);
    for (let b = 0; b < L.bitmapBytes * 8; b++) {
      if (b >= L.n || L.nullable[b] === 0) this.mustBeClear[b >>> 5]! |= 1 << (b & 31);
    }
    this.reset(bytes);
  }

  /** Number of rows in the batch. */
  get rowCount(): number {
    return this.rows;
  }
  /** Bytes of the batch (header included). */
  get byteLength(): number {
    return this.len;
  }

  /** Index of a field by name; throws for an unknown name. */
  field(name: string): number {
    const f = this.schema.indexOf(name);
    if (f < 0) throw new RangeError(`no field '${name}' in ${this.schema}`);
    return f;
  }

  /** Byte offset of row `i` from the batch start. */
  rowOffset(i: number): number {
    this.checkRow(i);
    return this.offsets[i]! - this.base;
  }

  private corrupt(detail: string): never {
    throw new CorruptBatchError(detail, this.ctx);
  }

  /**
   * Validates another batch and points the reader at it (views and the row index are reused).
   * A batch not 8-byte aligned in its buffer is copied first.
   */
  reset(bytes: Uint8Array): this {
    // Until validation succeeds, the reader reads as empty.
    this.rows = 0;
    this.len = 0;
    const L = this.layout;
    const avail = bytes.byteLength;
    if (avail < BATCH_HEADER_BYTES) this.corrupt(`${avail} bytes cannot hold a batch header`);
    const magic = rd32(bytes, 0);
    if (magic !== BATCH_MAGIC) this.corrupt(`bad magic ${hex(magic)} (expected ${hex(BATCH_MAGIC)})`);
    const byteLength = rd32(bytes, 4);
    if (byteLength < BATCH_HEADER_BYTES || byteLength % 8 !== 0) this.corrupt(`byteLength ${byteLength} is not a multiple of 8 of at least ${BATCH_HEADER_BYTES}`);
    if (byteLength > avail) this.corrupt(`byteLength ${byteLength} exceeds the ${avail} bytes available (truncated?)`);
    const rowCount = rd32(bytes, 8);
    const schemaId = rd32(bytes, 12);
    if (schemaId !== this.schema.id) {
      throw new SchemaMismatchError(`batch was written with schema fingerprint ${hex(schemaId)}, read as ${this.schema} (${hex(this.schema.id)})`, this.ctx);
    }
    if (rowCount > (byteLength - BATCH_HEADER_BYTES) / L.fixedBytes) this.corrupt(`rowCount ${rowCount} cannot fit in ${byteLength} bytes`);
    if ((bytes.byteOffset & 7) !== 0) bytes = bytes.slice(0, byteLength);
    const buffer = bytes.buffer;
    let views = this.views;
    if (views === null || views.buffer !== buffer || views.u8.byteLength !== buffer.byteLength) {
      views = this.views = new BufferViews(buffer);
      this.shared = isShared(buffer);
    }
    const base = bytes.byteOffset;
    if (this.offsets.length < rowCount) this.offsets = new Float64Array(Math.max(rowCount, this.offsets.length * 2));
    this.walk(views, base, base + byteLength, rowCount);
    this.base = base;
    this.len = byteLength;
    this.rows = rowCount;
    return this;
  }

  /** The validation walk over every row. */
  private walk(views: BufferViews, base: number, end: number, rowCount: number): void {
    const { u8, i32 } = views;
    const L = this.layout;
    const fixed = L.fixedBytes;
    const slots = L.slotsOffset;
    const words = L.bitmapBytes >>> 2;
    const mustBeClear = this.mustBeClear;
    const vars = this.varFields;
    const bools = this.boolFields;
    const ints = this.i32Fields;
    const nVars = vars.length;
    const offsets = this.offsets;
    let p = base + BATCH_HEADER_BYTES;
    // hand-inlined hot loop: integer checks on typed arrays, no calls on the valid path
    for (let r = 0; r < rowCount; r++) {
      if (p + fixed > end) this.corrupt(`row ${r} at ${p - base} overruns the batch`);
      const h = p >>> 2;
      const rowLen = i32[h]!;
      if (rowLen < fixed || (rowLen & 7) !== 0 || p + rowLen > end) this.corrupt(`row ${r} at ${p - base} has invalid length ${rowLen}`);
      if (i32[h + 1] !== 0) this.corrupt(`row ${r} has a non-zero reserved word`);
      offsets[r] = p;
      let anyNull = 0;
      for (let w = 0; w < words; w++) {
        const bits = i32[h + 2 + w]!;
        if ((bits & mustBeClear[w]!) !== 0) this.corrupt(`row ${r} has a null bit set for a non-nullable field`);
        anyNull |= bits;
      }
      if (anyNull !== 0) this.checkNullSlots(i32, p, r);
      for (let k = 0; k < bools.length; k++) {
        const q = (p + slots + bools[k]! * 8) >>> 2;
        if ((i32[q]! >>> 1) !== 0 || i32[q + 1] !== 0) this.corrupt(`row ${r} has an invalid bool slot`);
      }
      for (let k = 0; k < ints.length; k++) {
        const q = (p + slots + ints[k]! * 8) >>> 2;
        if (i32[q + 1] !== i32[q]! >> 31) this.corrupt(`row ${r} has an i32 slot that is not sign-extended`);
      }
      // var payloads must follow the slots back to back, in field order (null ones are empty)
      let expect = fixed;
      for (let k = 0; k < nVars; k++) {
        const f = vars[k]!;
        if (anyNull !== 0 && ((i32[h + 2 + (f >>> 5)]! >>> (f & 31)) & 1) === 1) continue; // null: empty, slot checked
        const q = (p + slots + f * 8) >>> 2;
        const off = i32[q]! >>> 0;
        const len = i32[q + 1]! >>> 0;
        if (off !== expect || len > rowLen - expect) this.corrupt(`row ${r} has a var slot [${off}, +${len}) outside its row or out of order`);
        expect += len;
      }
      if (((expect + 7) & ~7) !== rowLen) this.corrupt(`row ${r} has length ${rowLen} but its payloads end at ${expect}`);
      for (let q = p + expect, e = p + rowLen; q < e; q++) if (u8[q] !== 0) this.corrupt(`row ${r} has non-zero padding`);
      p += rowLen;
    }
    if (p !== end) this.corrupt(`${end - p} bytes after the last of ${rowCount} rows`);
  }

  private checkNullSlots(i32: Int32Array, p: number, r: number): void {
    const L = this.layout;
    const bm = (p + 8) >>> 2;
    for (let f = 0; f < L.n; f++) {
      if (((i32[bm + (f >>> 5)]! >>> (f & 31)) & 1) === 0) continue;
      const q = (p + L.slotsOffset + f * 8) >>> 2;
      if (i32[q] !== 0 || i32[q + 1] !== 0) this.corrupt(`row ${r} has null field '${L.names[f]}' with a non-zero slot`);
    }
  }

  private checkRow(i: number): void {
    if (!(i >= 0 && i < this.rows && (i | 0) === i)) throw new RangeError(`row ${i} is out of range [0, ${this.rows})`);
  }

  /** Resolves a field for an accessor and returns the absolute byte offset of its slot in `row`. */
  private slot(row: number, field: number | string, mask: number, what: string): number {
    const f = typeof field === 'number' ? field : this.field(field);
    const code = this.layout.codes[f];
    if (code === undefined || ((1 << code) & mask) === 0) {
      throw new TypeError(`${what} cannot read field ${code === undefined ? f : `'${this.names[f]}' of type ${this.schema.types[f]}`}`);
    }
    if (!(row >= 0 && row < this.rows && (row | 0) === row)) throw new RangeError(`row ${row} is out of range [0, ${this.rows})`);
    return this.offsets[row]! + this.layout.slotsOffset + f * 8;
  }

  /** True when the field is null in this row. */
  isNull(row: number, field: number | string): boolean {
    const f = typeof field === 'number' ? field : this.field(field);
    if (!(f >= 0 && f < this.layout.n)) throw new RangeError(`no field ${f}`);
    this.checkRow(row);
    const b = this.offsets[row]! + 8 + (f >>> 3);
    return ((this.views!.u8[b]! >>> (f & 7)) & 1) === 1;
  }

  /** An f64 field. */
  getF64(row: number, field: number | string): number {
    return this.views!.f64[this.slot(row, field, 1 << TYPE_F64, 'getF64') / 8]!;
  }

  /** An i32 field. */
  getI32(row: number, field: number | string): number {
    return this.views!.i32[this.slot(row, field, 1 << TYPE_I32, 'getI32') >>> 2]!;
  }

  /** An i64, timestamp or i32 field as a number; a stored value beyond ±(2^53−1) throws (reason 'overflow'). */
  getI64(row: number, field: number | string): number {
    const s = this.slot(row, field, (1 << TYPE_I64) | (1 << TYPE_TIMESTAMP) | (1 << TYPE_I32), 'getI64');
    const i32 = this.views!.i32;
    const q = s >>> 2;
    const hi = i32[q + 1]!;
    const lo = i32[q]! >>> 0;
    if (hi > SAFE_HI_MAX || hi < SAFE_HI_MIN || (hi === SAFE_HI_MIN && lo === 0)) this.overflow(row, typeof field === 'number' ? field : this.field(field), s);
    return hi * TWO_32 + lo;
  }

  /** An i64, timestamp or i32 field as a bigint (full range). */
  getBigInt64(row: number, field: number | string): bigint {
    return this.views!.i64[this.slot(row, field, (1 << TYPE_I64) | (1 << TYPE_TIMESTAMP) | (1 << TYPE_I32), 'getBigInt64') / 8]!;
  }

  /** A timestamp field in milliseconds since the epoch (same as getI64). */
  getTimestamp(row: number, field: number | string): number {
    return this.getI64(row, field);
  }

  /** A bool field. */
  getBool(row: number, field: number | string): boolean {
    return this.views!.i32[this.slot(row, field, 1 << TYPE_BOOL, 'getBool') >>> 2] === 1;
  }

  /** A string field, decoded. */
  getString(row: number, field: number | string): string {
    const s = this.slot(row, field, 1 << TYPE_STRING, 'getString');
    const i32 = this.views!.i32;
    const q = s >>> 2;
    return readUtf8(this.views!.u8, this.offsets[row]! + (i32[q]! >>> 0), i32[q + 1]! >>> 0, this.shared);
  }

  /** A bytes field, copied. */
  getBytes(row: number, field: number | string): Uint8Array {
    const s = this.slot(row, field, 1 << TYPE_BYTES, 'getBytes');
    const i32 = this.views!.i32;
    const q = s >>> 2;
    const start = this.offsets[row]! + (i32[q]! >>> 0);
    return this.views!.u8.slice(start, start + (i32[q + 1]! >>> 0));
  }

  /** An `any` field, decoded from MessagePack (null when the field is null). */
  getAny(row: number, field: number | string): unknown {
    const s = this.slot(row, field, 1 << TYPE_ANY, 'getAny');
    const f = typeof field === 'number' ? field : this.field(field);
    if (this.isNull(row, f)) return null;
    const i32 = this.views!.i32;
    const q = s >>> 2;
    return this.decodeAnyAt(this.offsets[row]! + (i32[q]! >>> 0), i32[q + 1]! >>> 0, row);
  }

  private decodeAnyAt(pos: number, len: number, row: number): unknown {
    try {
      return decodeAny(this.views!.u8, pos, len, this.shared);
    } catch (e) {
      if (e instanceof CorruptBatchError) throw e.withContext({ ...this.ctx, recordIndex: row });
      throw e;
    }
  }

  private overflow(row: number, f: number, slot: number): never {
    const v = this.views!.i64[slot / 8]!;
    throw new FieldValueError(this.names[f]!, 'overflow', 'a safe integer (|v| ≤ 2^53−1; read i64 fields beyond that with t.i64({ bigint: true }))', v, {
      ...this.ctx,
      recordIndex: row,
    });
  }

  /** Materializes row `i` as a plain object (field names from the schema). */
  read(i: number): InferRow<F> {
    this.checkRow(i);
    return this.materialize(i);
  }

  /** Materializes every row. */
  readAll(): InferRow<F>[] {
    const n = this.rows;
    const out = new Array<InferRow<F>>(n);
    for (let i = 0; i < n; i++) out[i] = this.materialize(i);
    return out;
  }

  private materialize(row: number): InferRow<F> {
    const views = this.views!;
    const { u8, i32, f64 } = views;
    const L = this.layout;
    const codes = L.codes;
    const n = L.n;
    const vals = this.vals;
    const p = this.offsets[row]!;
    const bm = (p + 8) >>> 2;
    const hasNulls = L.anyNullable;
    // hand-inlined hot loop: one switch over precomputed type codes into a reused value array; the
    // object is then built with one store site per position (field-sites.ts), so objects of a schema
    // share one hidden class
    for (let f = 0, s = p + L.slotsOffset; f < n; f++, s += 8) {
      if (hasNulls && ((i32[bm + (f >>> 5)]! >>> (f & 31)) & 1) === 1) {
        vals[f] = null;
        continue;
      }
      const q = s >>> 2;
      switch (codes[f]) {
        case T_F64:
          vals[f] = f64[s / 8];
          break;
        case T_I64:
        case T_TIMESTAMP: {
          if (L.bigint[f] === 1) {
            vals[f] = views.i64[s / 8];
            break;
          }
          const hi = i32[q + 1]!;
          const lo = i32[q]! >>> 0;
          if (hi > SAFE_HI_MAX || hi < SAFE_HI_MIN || (hi === SAFE_HI_MIN && lo === 0)) this.overflow(row, f, s);
          vals[f] = hi * TWO_32 + lo;
          break;
        }
        case T_STRING:
          vals[f] = readUtf8(u8, p + (i32[q]! >>> 0), i32[q + 1]! >>> 0, this.shared);
          break;
        case T_I32:
          vals[f] = i32[q];
          break;
        case T_BOOL:
          vals[f] = i32[q] === 1;
          break;
        case T_BYTES: {
          const start = p + (i32[q]! >>> 0);
          vals[f] = u8.slice(start, start + (i32[q + 1]! >>> 0));
          break;
        }
        default:
          vals[f] = this.decodeAnyAt(p + (i32[q]! >>> 0), i32[q + 1]! >>> 0, row);
      }
    }
    return buildObject(this.names, n, vals) as InferRow<F>;
  }
}

/**
 * Decodes a list of batches into objects.
 *
 * @example
 * const rows = decodeBatches(s, encodeBatches(s, records));
 */
export function decodeBatches<F extends Fields>(schema: Schema<F>, batches: Iterable<Uint8Array>, opts: BatchReaderOptions = {}): InferRow<F>[] {
  const out: InferRow<F>[] = [];
  let reader: BatchReader<F> | null = null;
  for (const b of batches) {
    if (reader === null) reader = new BatchReader(schema, b, opts);
    else reader.reset(b);
    const n = reader.rowCount;
    for (let i = 0; i < n; i++) out.push(reader.read(i));
  }
  return out;
}
