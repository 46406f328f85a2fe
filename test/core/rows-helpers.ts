// Shared helpers of the row codec tests: exact deep equality (±0 distinguished, NaN equal, bigint,
// Uint8Array, Date) and fast-check arbitraries for every field type.

import fc from 'fast-check';
import { t, type FieldType } from '../../src/core/schema.ts';

/** Deep equality where Object.is decides for numbers (so 0 !== -0 and NaN === NaN). */
export function same(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' || typeof b === 'number') return Object.is(a, b);
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && Object.is(a.getTime(), b.getTime());
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

const te = new TextEncoder();
const td = new TextDecoder();
/** What a string reads back as: lone surrogates become U+FFFD (UTF-8 cannot hold them). */
export function wellFormed(s: string): string {
  return td.decode(te.encode(s));
}

/** Doubles including ±0, NaN, ±Infinity, subnormals and the extremes. */
export const f64Arb = fc.oneof(
  fc.double(),
  fc.constantFrom(0, -0, NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MIN_VALUE, 2.2250738585072014e-308 / 3, Number.MAX_VALUE, -Number.MAX_VALUE, Number.EPSILON),
);

/** Strings: ASCII, full Unicode (astral), long ones (past the fast paths), empty. */
export const stringArb = fc.oneof(
  fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: 'grapheme', minLength: 30, maxLength: 120 }),
  fc.constantFrom('', 'é', '😀', 'a😀b', 'x'.repeat(100)),
);

/** Values an `any` field holds and reads back identically. */
export const anyArb: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    f64Arb,
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.date({ noInvalidDate: true }),
  ),
  node: fc.oneof({ depthSize: 'small' }, tie('leaf'), fc.array(tie('node'), { maxLength: 5 }), fc.dictionary(fc.string({ maxLength: 8 }), tie('node'), { maxKeys: 5 })),
})).node;

/** Every field type (with bigint and nullable variants), with a generator of valid values and the read-back model. */
export const FIELD_CASES: { name: string; type: FieldType; arb: fc.Arbitrary<unknown>; expect: (v: unknown) => unknown }[] = [
  { name: 'i32', type: t.i32(), arb: fc.integer(), expect: (v) => (Object.is(v, -0) ? 0 : v) },
  { name: 'i64', type: t.i64(), arb: fc.oneof(fc.maxSafeInteger(), fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0, -1)), expect: (v) => (Object.is(v, -0) ? 0 : v) },
  {
    name: 'i64big',
    type: t.i64({ bigint: true }),
    arb: fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.constantFrom(-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n), fc.maxSafeInteger()),
    expect: (v) => BigInt(v as bigint | number),
  },
  { name: 'f64', type: t.f64(), arb: f64Arb, expect: (v) => v },
  { name: 'bool', type: t.bool(), arb: fc.boolean(), expect: (v) => v },
  { name: 'string', type: t.string(), arb: stringArb, expect: (v) => wellFormed(v as string) },
  { name: 'bytes', type: t.bytes(), arb: fc.uint8Array({ maxLength: 300 }), expect: (v) => v },
  {
    name: 'timestamp',
    type: t.timestamp(),
    arb: fc.oneof(fc.integer({ min: -8.64e15, max: 8.64e15 }), fc.date({ noInvalidDate: true })),
    expect: (v) => (v instanceof Date ? v.getTime() : Object.is(v, -0) ? 0 : v),
  },
  { name: 'any', type: t.any(), arb: anyArb.filter((v) => v !== null), expect: (v) => v },
];
