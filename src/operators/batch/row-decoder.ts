// Owns decoding the result batches of the batch kernels straight into the objects a job gets: for
// each row, one object per "part" — the row itself, or a join's left and right records for `with`
// (only the fields asked for, a missing side as null) — with no intermediate object per row and no
// second validation: the batches were written by the kernels (trusted), so only their header is
// checked; a header that is not as expected gets a validating BatchReader and its error.
//
// Cost per row: O(fields decoded) reads from typed-array views (made once per buffer) plus one object
// per part, built with one store site per field position (field-sites.ts: one hidden class per part).

import { BATCH_HEADER_BYTES, BATCH_MAGIC, TYPE_BOOL, TYPE_BYTES, TYPE_F64, TYPE_I32, TYPE_I64, TYPE_STRING, TYPE_TIMESTAMP } from '../../../bindings/abi.generated.ts';
import { decodeAny } from '../../core/any-codec.ts';
import { BatchReader } from '../../core/batch-reader.ts';
import { BufferViews, RowLayout } from '../../core/batch-writer.ts';
import { CorruptBatchError, FieldValueError } from '../../core/errors.ts';
import { buildObject } from '../../core/field-sites.ts';
import type { Schema } from '../../core/schema.ts';
import { isShared, readUtf8 } from '../../core/utf8.ts';

// module-local copies: no property access in the hot loop
const T_I32 = TYPE_I32;
const T_I64 = TYPE_I64;
const T_F64 = TYPE_F64;
const T_BOOL = TYPE_BOOL;
const T_STRING = TYPE_STRING;
const T_BYTES = TYPE_BYTES;
const T_TIMESTAMP = TYPE_TIMESTAMP;
const TWO_32 = 4294967296;
const SAFE_HI_MAX = 0x1fffff;
const SAFE_HI_MIN = -0x200000;

/** One object made of each row: `fields[j]` of the batch's schema becomes property `names[j]`. */
export interface DecodePart {
  readonly fields: readonly number[];
  readonly names: readonly string[];
  /**
   * Fields of which at least one is non-null in a row where the part is present; a row where all are
   * null gives `null` for the part (a missing side of an outer join). Absent or empty: always present.
   */
  readonly presence?: readonly number[];
}

/** A part's decoding plan, precomputed per field position: where its slot and null bit are, its type. */
class Part {
  readonly names: readonly string[];
  readonly n: number;
  readonly vals: unknown[];
  /** Field index in the schema (for errors). */
  readonly fields: Int32Array;
  /** Byte offset of the slot from the row start. */
  readonly slot: Int32Array;
  /** Null bitmap word (from the row start, in 32-bit words) and bit mask; mask 0: not nullable. */
  readonly nullWord: Int32Array;
  readonly nullMask: Int32Array;
  readonly codes: Uint8Array;
  readonly bigint: Uint8Array;
  readonly presence: Int32Array | undefined;
  constructor(p: DecodePart, L: RowLayout) {
    if (p.fields.length !== p.names.length) throw new RangeError('a decode part needs a name per field');
    const n = p.fields.length;
    this.names = p.names;
    this.n = n;
    this.vals = new Array<unknown>(n).fill(null);
    this.fields = Int32Array.from(p.fields);
    this.slot = new Int32Array(n);
    this.nullWord = new Int32Array(n);
    this.nullMask = new Int32Array(n);
    this.codes = new Uint8Array(n);
    this.bigint = new Uint8Array(n);
    for (let j = 0; j < n; j++) {
      const f = p.fields[j]!;
      if (!(f >= 0 && f < L.n)) throw new RangeError(`no field ${f} in ${L.schema}`);
      this.slot[j] = L.slotsOffset + 8 * f;
      this.nullWord[j] = 2 + (f >>> 5);
      this.nullMask[j] = L.nullable[f] === 1 ? 1 << (f & 31) : 0;
      this.codes[j] = L.codes[f]!;
      this.bigint[j] = L.bigint[f]!;
    }
    for (const f of p.presence ?? []) if (!(f >= 0 && f < L.n)) throw new RangeError(`no field ${f} in ${L.schema}`);
    this.presence = p.presence && p.presence.length > 0 ? Int32Array.from(p.presence) : undefined;
  }
}

/**
 * Decodes kernel-made batches of `schema` into one object per part per row.
 *
 * @example
 * const d = new RowDecoder(joined, [{ fields: [0, 1], names: ['id', 'name'] }, { fields: [3], names: ['total'] }]);
 * d.decode(batch, (user, order) => out.push(f(user, order)));
 */
export class RowDecoder {
  private readonly L: RowLayout;
  private readonly parts: Part[];
  private views: BufferViews | undefined;
  private shared = false;
  private reader: BatchReader | undefined;

  constructor(
    readonly schema: Schema,
    parts: readonly DecodePart[],
    private readonly ctx: { operator?: string; subtask?: number } = {},
  ) {
    if (parts.length < 1 || parts.length > 2) throw new RangeError('a RowDecoder makes one or two objects per row');
    const L = (this.L = new RowLayout(schema));
    this.parts = parts.map((p) => new Part(p, L));
  }

  /**
   * Calls `emit` with the part objects of each row of `bytes`, in order; answers the number of rows.
   * A part whose presence fields are all null is passed as null.
   */
  decode(bytes: Uint8Array, emit: (a: any, b: any) => void): number {
    if ((bytes.byteOffset & 7) !== 0) bytes = bytes.slice(); // the views read 8-byte slots
    const rows = this.point(bytes);
    if (rows === 0) return 0;
    const views = this.views!;
    const i32 = views.i32;
    const p0 = this.parts[0]!;
    const p1 = this.parts[1];
    let p = bytes.byteOffset + BATCH_HEADER_BYTES;
    for (let r = 0; r < rows; r++) {
      const a = this.make(p0, views, p, r);
      const b = p1 === undefined ? undefined : this.make(p1, views, p, r);
      emit(a, b);
      p += i32[p >>> 2]!;
    }
    return rows;
  }

  /** Checks the header and makes the views; a batch that is not as expected is validated (and refused). */
  private point(bytes: Uint8Array): number {
    if (bytes.length < BATCH_HEADER_BYTES) return this.refuse(bytes);
    const buffer = bytes.buffer;
    let views = this.views;
    if (views === undefined || views.buffer !== buffer || views.u8.byteLength !== buffer.byteLength) {
      views = this.views = new BufferViews(buffer);
      this.shared = isShared(buffer);
    }
    const h = bytes.byteOffset >>> 2;
    const i32 = views.i32;
    const len = i32[h + 1]! >>> 0;
    if (i32[h]! >>> 0 !== BATCH_MAGIC || len > bytes.length || len < BATCH_HEADER_BYTES || i32[h + 3]! >>> 0 !== this.schema.id) return this.refuse(bytes);
    const rows = i32[h + 2]! >>> 0;
    if (rows > (len - BATCH_HEADER_BYTES) / this.L.fixedBytes) return this.refuse(bytes);
    return rows;
  }

  /** The full validation of a batch whose header is unexpected: throws its error. */
  private refuse(bytes: Uint8Array): never {
    this.reader = this.reader ? this.reader.reset(bytes) : new BatchReader(this.schema, bytes, this.ctx);
    throw new CorruptBatchError(`a result batch of ${this.schema} has an unexpected header`, this.ctx);
  }

  /** One part of the row at byte `p` (absolute in the buffer), or null when its presence fields are all null. */
  private make(part: Part, views: BufferViews, p: number, row: number): Record<string, unknown> | null {
    const { u8, i32, f64 } = views;
    const h = p >>> 2;
    const presence = part.presence;
    if (presence !== undefined) {
      let present = false;
      for (let k = 0; k < presence.length; k++) {
        const f = presence[k]!;
        if (((i32[h + 2 + (f >>> 5)]! >>> (f & 31)) & 1) === 0) {
          present = true;
          break;
        }
      }
      if (!present) return null;
    }
    const vals = part.vals;
    const n = part.n;
    const slot = part.slot;
    const nullWord = part.nullWord;
    const nullMask = part.nullMask;
    const codes = part.codes;
    // hand-inlined hot loop (as BatchReader's materialize): per position a precomputed slot, null bit
    // and type code, values into a reused array, then one store site per position (buildObject)
    for (let j = 0; j < n; j++) {
      const mask = nullMask[j]!;
      if (mask !== 0 && (i32[h + nullWord[j]!]! & mask) !== 0) {
        vals[j] = null;
        continue;
      }
      const s = p + slot[j]!;
      const q = s >>> 2;
      switch (codes[j]) {
        case T_F64:
          vals[j] = f64[q >>> 1];
          break;
        case T_I64:
        case T_TIMESTAMP: {
          if (part.bigint[j] === 1) {
            vals[j] = views.i64[q >>> 1];
            break;
          }
          const hi = i32[q + 1]!;
          const lo = i32[q]! >>> 0;
          if (hi > SAFE_HI_MAX || hi < SAFE_HI_MIN || (hi === SAFE_HI_MIN && lo === 0)) this.overflow(views, part.fields[j]!, s, row);
          vals[j] = hi * TWO_32 + lo;
          break;
        }
        case T_STRING:
          vals[j] = readUtf8(u8, p + (i32[q]! >>> 0), i32[q + 1]! >>> 0, this.shared);
          break;
        case T_I32:
          vals[j] = i32[q];
          break;
        case T_BOOL:
          vals[j] = i32[q] === 1;
          break;
        case T_BYTES: {
          const start = p + (i32[q]! >>> 0);
          vals[j] = u8.slice(start, start + (i32[q + 1]! >>> 0));
          break;
        }
        default:
          vals[j] = decodeAny(u8, p + (i32[q]! >>> 0), i32[q + 1]! >>> 0, this.shared);
      }
    }
    return buildObject(part.names, n, vals);
  }

  private overflow(views: BufferViews, f: number, slot: number, row: number): never {
    throw new FieldValueError(this.L.names[f]!, 'overflow', 'a safe integer (|v| ≤ 2^53−1; read i64 fields beyond that with t.i64({ bigint: true }))', views.i64[slot / 8]!, {
      ...this.ctx,
      recordIndex: row,
    });
  }
}
