// Owns the MessagePack codec for `any` fields: a small, dependency-free, runtime-neutral encoder and
// a bounds-checked decoder that turns malformed input into CorruptBatchError (never a RangeError).
//
// Value mapping (encode → decode):
//   null, undefined            → nil → null        (undefined object properties are skipped, as JSON does)
//   boolean                    → bool
//   integer number in [-2^31, 2^32) (not -0) → the smallest int format → number
//   any other number (incl. -0, NaN, ±Infinity, large safe integers) → float64 → number (exact)
//   bigint in [-2^63, 2^64)    → int64 (negative) / uint64 → bigint
//   string                     → str (UTF-8; lone surrogates become U+FFFD)
//   Uint8Array                 → bin → Uint8Array
//   Array                      → array
//   plain object               → map with string keys → plain object
//   Date (valid)               → timestamp extension (type -1, 96-bit form) → Date
//   Error (any class)          → error extension (type 1, below) → an instance of the class of that
//                                name where this thread knows it (error-codec.ts: Sluice's errors, the
//                                standard ones, registerErrorClass), else a SluiceError with the name
// Anything else (functions, symbols, Map, other class instances, other typed arrays, cycles or nesting
// deeper than MAX_DEPTH) cannot be encoded: `AnyEncodeError`.
// The decoder also accepts what other MessagePack writers produce: float32, the 32/64-bit timestamp
// forms, integer map keys (as strings). Other extension types are rejected as corrupt.
//
// Error extension (type 1; ext 8/16/32 by size), payload = one MessagePack array:
//   [name: str, message: str, stack: str | nil, props: map, cause?: any]
// props are the error's own enumerable properties but name/message/stack/cause (e.g. an
// InvalidKeyError's record, key, reason, domain, context); 4 elements = no cause, 5 = a cause (any
// value; an Error nests as another error extension). Inside an error, a property or cause this codec
// cannot encode (a function, a class instance, a cycle) travels as its String() form instead of
// failing, so a side output of errors never fails because of what an error happens to hold.

import { errorParts, reviveErrorParts } from './error-codec.ts';
import { CorruptBatchError } from './errors.ts';
import { readUtf8, writeUtf8, utf8Length } from './utf8.ts';

/** Nesting deeper than this is refused on both sides (it also catches cyclic values). */
export const MAX_DEPTH = 100;

/** Thrown by {@link AnyEncoder} for a value MessagePack cannot represent; `path` says where. */
export class AnyEncodeError extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${detail}${path ? ` at ${path}` : ''}`);
  }
}

const TWO_32 = 4294967296;

/** MessagePack extension type of an Error (application types are 0..127). */
export const EXT_ERROR = 1;

/**
 * A reusable MessagePack encoder writing into an internal, growing buffer.
 * Cost: O(size of the value); amortized no allocation once the buffer has grown.
 *
 * @example
 * const enc = new AnyEncoder();
 * const bytes = enc.encode({ a: [1, 'x', null] }); // a view, valid until the next encode()
 */
export class AnyEncoder {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  /** The errors being encoded, outermost first (a cause or property that is one of them is a cycle). */
  private readonly openErrors: Error[] = [];

  /** Encodes `value`; the result is a view of the internal buffer, valid until the next call. */
  encode(value: unknown): Uint8Array {
    this.pos = 0;
    this.openErrors.length = 0;
    this.value(value, 0, '');
    return this.buf.subarray(0, this.pos);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  private u8(tag: number, v: number): void {
    this.ensure(2);
    this.buf[this.pos++] = tag;
    this.buf[this.pos++] = v;
  }

  private u16(tag: number, v: number): void {
    this.ensure(3);
    this.buf[this.pos++] = tag;
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }

  private u32(tag: number, v: number): void {
    this.ensure(5);
    this.buf[this.pos++] = tag;
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  private value(v: unknown, depth: number, path: string): void {
    if (depth > MAX_DEPTH) throw new AnyEncodeError(path, `nesting deeper than ${MAX_DEPTH} (or a cycle)`);
    switch (typeof v) {
      case 'undefined':
        this.byte(0xc0);
        return;
      case 'boolean':
        this.byte(v ? 0xc3 : 0xc2);
        return;
      case 'number':
        this.number(v);
        return;
      case 'bigint':
        this.bigint(v, path);
        return;
      case 'string':
        this.string(v);
        return;
      case 'object':
        break;
      default:
        throw new AnyEncodeError(path, `a ${typeof v} cannot be encoded`);
    }
    if (v === null) {
      this.byte(0xc0);
      return;
    }
    if (Array.isArray(v)) {
      const n = v.length;
      if (n < 16) this.byte(0x90 | n);
      else if (n < 0x10000) this.u16(0xdc, n);
      else this.u32(0xdd, n);
      for (let i = 0; i < n; i++) this.value(v[i], depth + 1, `${path}[${i}]`);
      return;
    }
    if (v instanceof Uint8Array) {
      const n = v.length;
      if (n < 0x100) this.u8(0xc4, n);
      else if (n < 0x10000) this.u16(0xc5, n);
      else this.u32(0xc6, n);
      this.ensure(n);
      this.buf.set(v, this.pos);
      this.pos += n;
      return;
    }
    if (v instanceof Date) {
      const ms = v.getTime();
      if (Number.isNaN(ms)) throw new AnyEncodeError(path, 'an invalid Date cannot be encoded');
      const sec = Math.floor(ms / 1000);
      const nsec = (ms - sec * 1000) * 1e6;
      this.ensure(15);
      this.buf[this.pos++] = 0xc7; // ext 8
      this.buf[this.pos++] = 12;
      this.buf[this.pos++] = 0xff; // type -1: timestamp
      this.view.setUint32(this.pos, nsec);
      this.view.setBigInt64(this.pos + 4, BigInt(sec));
      this.pos += 12;
      return;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) {
      if (v instanceof Error) {
        this.error(v, depth, path);
        return;
      }
      const name = (v as object).constructor?.name ?? 'object';
      throw new AnyEncodeError(path, `a ${name} cannot be encoded (plain objects, arrays, Uint8Array, Date and Error only)`);
    }
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj);
    let n = 0;
    for (const k of keys) if (obj[k] !== undefined) n++;
    if (n < 16) this.byte(0x80 | n);
    else if (n < 0x10000) this.u16(0xde, n);
    else this.u32(0xdf, n);
    for (const k of keys) {
      const x = obj[k];
      if (x === undefined) continue;
      this.string(k);
      this.value(x, depth + 1, path ? `${path}.${k}` : k);
    }
  }

  /** The error extension (layout at the top of this file). */
  private error(e: Error, depth: number, path: string): void {
    if (this.openErrors.includes(e)) throw new AnyEncodeError(path, 'a cyclic error cannot be encoded');
    this.openErrors.push(e);
    const p = errorParts(e);
    // ext 32 header now, its length patched (and the header shortened) once the payload is written
    this.ensure(6);
    const start = this.pos;
    this.buf[start] = 0xc9;
    this.buf[start + 5] = EXT_ERROR;
    this.pos += 6;
    this.byte(p.hasCause ? 0x95 : 0x94);
    this.string(p.name);
    this.string(p.message);
    if (p.stack === undefined) this.byte(0xc0);
    else this.string(p.stack);
    const keys = Object.keys(p.props).filter((k) => p.props[k] !== undefined);
    const n = keys.length;
    if (n < 16) this.byte(0x80 | n);
    else if (n < 0x10000) this.u16(0xde, n);
    else this.u32(0xdf, n);
    for (const k of keys) {
      this.string(k);
      this.lenient(p.props[k], depth + 2, `${path}.${k}`);
    }
    if (p.hasCause) this.lenient(p.cause, depth + 1, `${path}.cause`);
    this.openErrors.pop();
    const len = this.pos - start - 6;
    const head = len < 0x100 ? 3 : len < 0x10000 ? 4 : 6;
    if (head !== 6) this.buf.copyWithin(start + head, start + 6, this.pos);
    if (head === 3) {
      this.buf[start] = 0xc7;
      this.buf[start + 1] = len;
    } else if (head === 4) {
      this.buf[start] = 0xc8;
      this.view.setUint16(start + 1, len);
    } else this.view.setUint32(start + 1, len);
    this.buf[start + head - 1] = EXT_ERROR;
    this.pos = start + head + len;
  }

  /** `v`, or its String() form if it cannot be encoded (inside an error only). */
  private lenient(v: unknown, depth: number, path: string): void {
    const at = this.pos;
    const open = this.openErrors.length;
    try {
      this.value(v, depth, path);
    } catch (e) {
      if (!(e instanceof AnyEncodeError) || depth > MAX_DEPTH) throw e;
      this.pos = at;
      this.openErrors.length = open;
      let s: string;
      try {
        s = String(v);
      } catch {
        s = `[unencodable ${typeof v}]`;
      }
      this.string(s);
    }
  }

  private number(v: number): void {
    if (Number.isInteger(v) && v >= -0x80000000 && v < TWO_32 && !Object.is(v, -0)) {
      if (v >= 0) {
        if (v < 0x80) this.byte(v);
        else if (v < 0x100) this.u8(0xcc, v);
        else if (v < 0x10000) this.u16(0xcd, v);
        else this.u32(0xce, v);
      } else if (v >= -32) this.byte(v & 0xff);
      else if (v >= -0x80) this.u8(0xd0, v & 0xff);
      else if (v >= -0x8000) this.u16(0xd1, v & 0xffff);
      else this.u32(0xd2, v >>> 0);
      return;
    }
    this.ensure(9);
    this.buf[this.pos++] = 0xcb;
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
  }

  private bigint(v: bigint, path: string): void {
    if (v < -0x8000000000000000n || v > 0xffffffffffffffffn) {
      throw new AnyEncodeError(path, `bigint ${v} is outside the 64-bit range`);
    }
    this.ensure(9);
    if (v < 0n) {
      this.buf[this.pos++] = 0xd3;
      this.view.setBigInt64(this.pos, v);
    } else {
      this.buf[this.pos++] = 0xcf;
      this.view.setBigUint64(this.pos, v);
    }
    this.pos += 8;
  }

  private string(s: string): void {
    // Reserve the worst case (3 bytes per UTF-16 unit) so the payload is written in place.
    const max = s.length * 3;
    this.ensure(5 + max);
    const n = max < 32 ? utf8Length(s) : -1;
    if (n >= 0 && n < 32) {
      this.buf[this.pos++] = 0xa0 | n;
      this.pos += writeUtf8(s, this.buf, this.pos, this.buf.length);
      return;
    }
    // Write the payload after a 5-byte header slot, then move it if a shorter header suffices.
    const start = this.pos;
    const written = writeUtf8(s, this.buf, start + 5, this.buf.length);
    let head: number;
    if (written < 32) head = 1;
    else if (written < 0x100) head = 2;
    else if (written < 0x10000) head = 3;
    else head = 5;
    if (head !== 5) this.buf.copyWithin(start + head, start + 5, start + 5 + written);
    if (head === 1) this.buf[start] = 0xa0 | written;
    else if (head === 2) {
      this.buf[start] = 0xd9;
      this.buf[start + 1] = written;
    } else if (head === 3) {
      this.buf[start] = 0xda;
      this.view.setUint16(start + 1, written);
    } else {
      this.buf[start] = 0xdb;
      this.view.setUint32(start + 1, written);
    }
    this.pos = start + head + written;
  }
}

/**
 * Decodes exactly one MessagePack value occupying `len` bytes of `u8` from `pos`.
 * Malformed, truncated or trailing bytes raise `CorruptBatchError`. Cost: O(len).
 */
export function decodeAny(u8: Uint8Array, pos: number, len: number, shared = false): unknown {
  const d = new AnyDecoder(u8, pos, pos + len, shared);
  const v = d.value(0);
  if (d.pos !== pos + len) throw new CorruptBatchError(`any payload has ${pos + len - d.pos} trailing bytes`);
  return v;
}

class AnyDecoder {
  private readonly view: DataView;
  constructor(
    private readonly u8: Uint8Array,
    public pos: number,
    /** Where the value being read must end (narrowed to an extension's payload while reading it). */
    private end: number,
    private readonly shared: boolean,
  ) {
    this.view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  }

  private need(n: number): number {
    const p = this.pos;
    if (n > this.end - p) throw new CorruptBatchError('any payload is truncated');
    this.pos = p + n;
    return p;
  }

  value(depth: number): unknown {
    if (depth > MAX_DEPTH) throw new CorruptBatchError(`any payload nests deeper than ${MAX_DEPTH}`);
    const tag = this.u8[this.need(1)]!;
    if (tag < 0x80) return tag;
    if (tag >= 0xe0) return tag - 0x100;
    if (tag < 0x90) return this.map(tag & 0x0f, depth);
    if (tag < 0xa0) return this.array(tag & 0x0f, depth);
    if (tag < 0xc0) return this.str(tag & 0x1f);
    const v = this.view;
    switch (tag) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.u8[this.need(1)]!);
      case 0xc5:
        return this.bin(v.getUint16(this.need(2)));
      case 0xc6:
        return this.bin(v.getUint32(this.need(4)));
      case 0xc7:
        return this.ext(this.u8[this.need(1)]!, depth);
      case 0xc8:
        return this.ext(v.getUint16(this.need(2)), depth);
      case 0xc9:
        return this.ext(v.getUint32(this.need(4)), depth);
      case 0xca:
        return v.getFloat32(this.need(4));
      case 0xcb:
        return v.getFloat64(this.need(8));
      case 0xcc:
        return this.u8[this.need(1)]!;
      case 0xcd:
        return v.getUint16(this.need(2));
      case 0xce:
        return v.getUint32(this.need(4));
      case 0xcf:
        return v.getBigUint64(this.need(8));
      case 0xd0:
        return v.getInt8(this.need(1));
      case 0xd1:
        return v.getInt16(this.need(2));
      case 0xd2:
        return v.getInt32(this.need(4));
      case 0xd3:
        return v.getBigInt64(this.need(8));
      case 0xd4:
        return this.ext(1, depth);
      case 0xd5:
        return this.ext(2, depth);
      case 0xd6:
        return this.ext(4, depth);
      case 0xd7:
        return this.ext(8, depth);
      case 0xd8:
        return this.ext(16, depth);
      case 0xd9:
        return this.str(this.u8[this.need(1)]!);
      case 0xda:
        return this.str(v.getUint16(this.need(2)));
      case 0xdb:
        return this.str(v.getUint32(this.need(4)));
      case 0xdc:
        return this.array(v.getUint16(this.need(2)), depth);
      case 0xdd:
        return this.array(v.getUint32(this.need(4)), depth);
      case 0xde:
        return this.map(v.getUint16(this.need(2)), depth);
      case 0xdf:
        return this.map(v.getUint32(this.need(4)), depth);
      default:
        throw new CorruptBatchError(`any payload has an invalid MessagePack tag 0x${tag.toString(16)}`);
    }
  }

  private str(n: number): string {
    const p = this.need(n);
    return readUtf8(this.u8, p, n, this.shared);
  }

  private bin(n: number): Uint8Array {
    const p = this.need(n);
    return this.u8.slice(p, p + n);
  }

  private array(n: number, depth: number): unknown[] {
    // Each element takes at least one byte: refuse impossible counts before allocating.
    if (n > this.end - this.pos) throw new CorruptBatchError('any payload is truncated (array)');
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  private map(n: number, depth: number): Record<string, unknown> {
    if (2 * n > this.end - this.pos) throw new CorruptBatchError('any payload is truncated (map)');
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const k = this.value(depth + 1);
      if (typeof k !== 'string' && typeof k !== 'number') throw new CorruptBatchError('any payload has a map key that is not a string');
      const key = String(k);
      const val = this.value(depth + 1);
      if (key === '__proto__') Object.defineProperty(out, key, { value: val, enumerable: true, writable: true, configurable: true });
      else out[key] = val;
    }
    return out;
  }

  private ext(n: number, depth: number): Date | Error {
    const type = this.view.getInt8(this.need(1));
    const p = this.need(n);
    if (type === EXT_ERROR) return this.error(p, n, depth);
    if (type !== -1) throw new CorruptBatchError(`any payload has an unsupported MessagePack extension type ${type}`);
    const v = this.view;
    if (n === 4) return new Date(v.getUint32(p) * 1000);
    if (n === 8) {
      const hi = v.getUint32(p);
      const lo = v.getUint32(p + 4);
      const nsec = hi >>> 2;
      const sec = (hi & 3) * TWO_32 + lo;
      return new Date(sec * 1000 + Math.floor(nsec / 1e6));
    }
    if (n === 12) {
      const nsec = v.getUint32(p);
      const sec = Number(v.getBigInt64(p + 4));
      return new Date(sec * 1000 + Math.floor(nsec / 1e6));
    }
    throw new CorruptBatchError(`any payload has a timestamp extension of invalid length ${n}`);
  }

  /** The error extension's payload at [p, p + n) (layout at the top of this file). */
  private error(p: number, n: number, depth: number): Error {
    const end = this.end;
    const after = this.pos;
    this.pos = p;
    this.end = p + n;
    const parts = this.value(depth + 1);
    if (this.pos !== p + n) throw new CorruptBatchError(`any payload has an error extension with ${p + n - this.pos} trailing bytes`);
    this.end = end;
    this.pos = after;
    if (!Array.isArray(parts) || (parts.length !== 4 && parts.length !== 5)) throw new CorruptBatchError('any payload has an error extension that is not an array of 4 or 5');
    const [name, message, stack, props] = parts;
    if (typeof name !== 'string' || typeof message !== 'string' || (stack !== null && typeof stack !== 'string') || props === null || typeof props !== 'object' || Array.isArray(props) || props instanceof Uint8Array || props instanceof Date || props instanceof Error) {
      throw new CorruptBatchError('any payload has an error extension with fields of the wrong types');
    }
    return reviveErrorParts({ name, message, stack: stack ?? undefined, props: props as Record<string, unknown>, hasCause: parts.length === 5, cause: parts[4] });
  }
}
