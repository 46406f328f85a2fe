// Owns the tests' own batch builder: random schemas and values (with the edge cases the kernels must
// get right) encoded straight from the layout drawn in abi/abi.ts with DataView. Deliberately
// independent of src/core/rows.ts and of the AssemblyScript code, so the differential tests compare
// two separate readings of the spec.

import { encode as msgpackEncode } from '@msgpack/msgpack';
import { FieldType, Schema, type FieldKind, type Fields } from '../../src/core/schema.ts';
import type { Rng } from './random.ts';

/** An f64 given by its raw bits (to write NaNs with payloads, which a JS number cannot keep). */
export class F64Bits {
  constructor(readonly bits: bigint) {}
}

/** A value as the builder writes it: i32 number; i64/timestamp bigint; f64 number or F64Bits;
 * bool; string; bytes and any (already MessagePack) as Uint8Array; null. */
export type RefValue = null | number | bigint | boolean | string | Uint8Array | F64Bits;

export interface RefField {
  kind: FieldKind;
  nullable: boolean;
}

export const KINDS: readonly FieldKind[] = ['i32', 'i64', 'f64', 'bool', 'string', 'bytes', 'timestamp', 'any'];
const CODE: Record<FieldKind, number> = { i32: 1, i64: 2, f64: 3, bool: 4, string: 5, bytes: 6, timestamp: 7, any: 8 };
const utf8 = new TextEncoder();

export function isVar(kind: FieldKind): boolean {
  return kind === 'string' || kind === 'bytes' || kind === 'any';
}

export function fieldsOf(schema: Schema): RefField[] {
  return schema.types.map((ty) => ({ kind: ty.kind, nullable: ty.isNullable }));
}

/** The schema fingerprint, recomputed from its definition (FNV-1a 32 over count, code | 0x80·nullable). */
export function fingerprint(fields: readonly RefField[]): number {
  let h = 2166136261;
  const step = (byte: number) => {
    h = Math.imul(h ^ byte, 16777619) >>> 0;
  };
  step(fields.length & 0xff);
  for (const f of fields) step(CODE[f.kind] | (f.nullable ? 0x80 : 0));
  return h >>> 0;
}

/** A Schema (src/core/schema.ts) with fields f0, f1, … of the given kinds. */
export function schemaOf(fields: readonly RefField[]): Schema {
  const obj: Fields = {};
  fields.forEach((f, i) => (obj[`f${i}`] = new FieldType(f.kind, f.nullable, f.kind === 'i64')));
  return new Schema(obj);
}

function payloadOf(kind: FieldKind, v: RefValue): Uint8Array {
  if (kind === 'string') return utf8.encode(v as string);
  return v as Uint8Array;
}

/** Encodes one row; `reserved` goes into the row header's reserved word. */
export function encodeRow(fields: readonly RefField[], values: readonly RefValue[], reserved = 0): Uint8Array {
  const n = fields.length;
  const w = Math.ceil(n / 64) * 8;
  const fixed = 8 + w + 8 * n;
  const payloads = fields.map((f, i) => (isVar(f.kind) && values[i] !== null ? payloadOf(f.kind, values[i]!) : null));
  const varBytes = payloads.reduce((s, p) => s + (p?.length ?? 0), 0);
  const len = Math.ceil((fixed + varBytes) / 8) * 8;
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, len, true);
  dv.setUint32(4, reserved, true);
  let pos = fixed;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    const slot = 8 + w + 8 * i;
    if (v === null) {
      out[8 + (i >> 3)]! |= 1 << (i & 7);
      continue;
    }
    switch (fields[i]!.kind) {
      case 'i32':
        dv.setBigInt64(slot, BigInt(v as number), true);
        break;
      case 'i64':
      case 'timestamp':
        dv.setBigInt64(slot, BigInt(v as bigint | number), true);
        break;
      case 'f64':
        if (v instanceof F64Bits) dv.setBigUint64(slot, v.bits, true);
        else dv.setFloat64(slot, v as number, true);
        break;
      case 'bool':
        dv.setBigUint64(slot, v ? 1n : 0n, true);
        break;
      default: {
        const p = payloads[i]!;
        dv.setUint32(slot, pos, true);
        dv.setUint32(slot + 4, p.length, true);
        out.set(p, pos);
        pos += p.length;
      }
    }
  }
  return out;
}

/** Encodes a batch of rows (16-byte header, rows back to back). */
export function encodeBatch(
  fields: readonly RefField[],
  rows: readonly (readonly RefValue[])[],
  opts: { schemaId?: number; reserved?: (i: number) => number } = {},
): Uint8Array {
  const encoded = rows.map((r, i) => encodeRow(fields, r, opts.reserved?.(i) ?? 0));
  return concatRows(encoded, opts.schemaId ?? fingerprint(fields));
}

/** `rows` cut into batches of 1 … `maxRows` rows (random sizes). */
export function encodeBatches(rng: Rng, fields: readonly RefField[], rows: readonly (readonly RefValue[])[], maxRows: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < rows.length; ) {
    const n = rng.range(1, maxRows);
    out.push(encodeBatch(fields, rows.slice(i, i + n)));
    i += n;
  }
  return out;
}

/** A batch made of already-encoded rows. */
export function concatRows(rows: readonly Uint8Array[], schemaId: number): Uint8Array {
  const len = 16 + rows.reduce((s, r) => s + r.length, 0);
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0x31424c53, true);
  dv.setUint32(4, len, true);
  dv.setUint32(8, rows.length, true);
  dv.setUint32(12, schemaId, true);
  let pos = 16;
  for (const r of rows) {
    out.set(r, pos);
    pos += r.length;
  }
  return out;
}

// ── random data with edge cases ──────────────────────────────────────────────────────────────

const I32_EDGES = [0, 1, -1, 2, -2, 2147483647, -2147483648, 255, 65536];
const I64_EDGES = [0n, 1n, -1n, 2n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 31n, -(2n ** 31n) - 1n, 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n)];
const F64_EDGES: RefValue[] = [
  0,
  -0,
  NaN,
  Infinity,
  -Infinity,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MIN_VALUE,
  -Number.MIN_VALUE,
  1,
  -1,
  0.5,
  -0.5,
  2 ** 53,
  1e-300,
  new F64Bits(0x7ff0000000000001n), // signalling NaN
  new F64Bits(0xfff8000000000000n), // negative quiet NaN
  new F64Bits(0x7fffffffffffffffn), // NaN, all payload bits
];
const STRING_EDGES = [
  '',
  'a',
  'b',
  'ab',
  'abc',
  'A',
  'é',
  'e\u0301',
  '日本語',
  '😀',
  '\uffff',
  '\u0000',
  '\u007f',
  '\u0080',
  'x'.repeat(16),
  'x'.repeat(15) + 'y',
  'x'.repeat(16) + 'a',
  'x'.repeat(17),
  'x'.repeat(24) + 'é',
  'x'.repeat(24) + 'e',
  'x'.repeat(40),
  'x'.repeat(39) + 'ÿ',
];
const ALPHABET = ['a', 'b', 'x', 'Z', '0', ' ', 'é', 'ß', '日', '😀', '\u0000', '\uffff'];

function randomString(rng: Rng): string {
  if (rng.bool(0.5)) return rng.pick(STRING_EDGES);
  const n = rng.pick([0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, rng.int(80)]);
  let s = rng.bool(0.3) ? 'x'.repeat(rng.int(20)) : '';
  while (s.length < n) s += rng.pick(ALPHABET);
  return s;
}

function randomBytes(rng: Rng): Uint8Array {
  if (rng.bool(0.3)) return rng.pick([new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(0x80), Uint8Array.of(0xff), Uint8Array.of(0x7f, 0xff)]);
  const n = rng.pick([0, 1, 4, 7, 8, 15, 16, 17, 24, 32, rng.int(70)]);
  const b = rng.bytes(n);
  if (rng.bool(0.4)) b.fill(0x41, 0, rng.int(n + 1)); // shared prefixes
  return b;
}

function randomJs(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 1 ? 6 : 8)) {
    case 0:
      return rng.range(-300, 300);
    case 1:
      return rng.pick([0.5, -1.25, 1e300, Number.MAX_SAFE_INTEGER]);
    case 2:
      return randomString(rng);
    case 3:
      return rng.bool();
    case 4:
      return null;
    case 5:
      return randomBytes(rng);
    case 6:
      return Array.from({ length: rng.int(4) }, () => randomJs(rng, depth + 1));
    default:
      return { k: randomJs(rng, depth + 1), v: rng.int(10) };
  }
}

/** A random value of a kind; `small` draws from a few values so that keys repeat and tie. */
export function randomValue(rng: Rng, kind: FieldKind, small = false): RefValue {
  switch (kind) {
    case 'i32':
      return small ? rng.range(-2, 2) : rng.bool(0.4) ? rng.pick(I32_EDGES) : rng.u32() | 0;
    case 'i64':
    case 'timestamp':
      return small ? BigInt(rng.range(-2, 2)) : rng.bool(0.4) ? rng.pick(I64_EDGES) : rng.bool(0.5) ? rng.i64() : BigInt(rng.range(-1e6, 1e6));
    case 'f64':
      return small ? rng.pick([0, -0, 1, NaN, -Infinity, 2.5]) : rng.bool(0.5) ? rng.pick(F64_EDGES) : (rng.u32() - 2 ** 31) / rng.range(1, 1000);
    case 'bool':
      return rng.bool();
    case 'string':
      return small ? rng.pick(['', 'a', 'ab', 'é', 'x'.repeat(17)]) : randomString(rng);
    case 'bytes':
      return small ? rng.pick([new Uint8Array(0), Uint8Array.of(1), Uint8Array.of(1, 2), Uint8Array.of(0xff)]) : randomBytes(rng);
    case 'any':
      return msgpackEncode(small ? rng.pick([1, 'a', null, [1]]) : randomJs(rng));
  }
}

/** A random schema: mostly a handful of fields, sometimes none, sometimes more than 64 (two bitmap words). */
export function randomFields(rng: Rng): RefField[] {
  const n = rng.bool(0.05) ? 0 : rng.bool(0.08) ? rng.range(60, 140) : rng.range(1, 10);
  return Array.from({ length: n }, () => ({ kind: rng.pick(KINDS), nullable: rng.bool(0.5) }));
}

/** Random rows for fields; nullable fields are null with probability pNull. */
export function randomRows(rng: Rng, fields: readonly RefField[], nRows: number, opts: { small?: boolean; pNull?: number } = {}): RefValue[][] {
  const small = opts.small ?? rng.bool(0.5);
  const pNull = opts.pNull ?? rng.pick([0, 0.1, 0.5]);
  return Array.from({ length: nRows }, () =>
    fields.map((f) => (f.nullable && rng.bool(pNull) ? null : randomValue(rng, f.kind, small))),
  );
}

/** A random batch: fields, rows and the encoded bytes (row count 0 now and then). */
export function randomBatch(rng: Rng, opts: { fields?: RefField[]; maxRows?: number } = {}) {
  const fields = opts.fields ?? randomFields(rng);
  const nRows = rng.bool(0.08) ? 0 : rng.range(1, opts.maxRows ?? 60);
  const rows = randomRows(rng, fields, nRows);
  const reserved = rng.bool(0.2) ? (i: number) => i % 3 : undefined;
  const bytes = encodeBatch(fields, rows, { reserved });
  return { fields, rows, bytes, schema: schemaOf(fields) };
}
