// Tests that corrupt, truncated or foreign batches are detected by BatchReader: they raise
// CorruptBatchError / SchemaMismatchError, never a RangeError or garbage.
//
// The layout has no checksum, so a flip inside a value's own bytes (an f64 slot, a string payload, the
// null bit of a nullable field whose value is zero) yields a valid batch with that one value changed;
// it cannot be detected. The property is therefore: a flipped batch either throws a batch error, or
// reads back the original rows with at most ONE field of ONE row different, every value still of its
// field's type. Padding, the reserved word and unused bitmap bits must be zero, so flips there are
// detected too. (A flip in the high bytes of a number-mode i64 may also raise FieldValueError
// 'overflow' on read: the stored i64 is then valid but not a safe integer, exactly as designed.)

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { schema, t } from '../../src/core/schema.ts';
import { CorruptBatchError, FieldValueError, SchemaMismatchError } from '../../src/core/errors.ts';
import { BatchReader, encodeBatch } from '../../src/core/rows.ts';
import { same } from './rows-helpers.ts';

const s = schema({
  id: t.i64(),
  big: t.i64({ bigint: true }),
  ts: t.timestamp(),
  n: t.i32(),
  ok: t.bool(),
  price: t.f64().nullable(),
  key: t.string(),
  note: t.string().nullable(),
  blob: t.bytes(),
  extra: t.any().nullable(),
});

const rowArb = fc.record({
  id: fc.integer(),
  big: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  ts: fc.integer({ min: 0, max: 2 ** 42 }),
  n: fc.integer(),
  ok: fc.boolean(),
  price: fc.option(fc.double(), { nil: null }),
  key: fc.string({ maxLength: 12 }),
  note: fc.option(fc.string({ unit: 'binary', maxLength: 20 }), { nil: null }),
  blob: fc.uint8Array({ maxLength: 10 }),
  extra: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: null }),
});

function isBatchError(e: unknown): boolean {
  return e instanceof CorruptBatchError || e instanceof SchemaMismatchError;
}

/** Reads everything a consumer could read: readAll plus every accessor. */
function readEverything(bytes: Uint8Array): Record<string, unknown>[] {
  const r = new BatchReader(s, bytes);
  const rows = r.readAll() as Record<string, unknown>[];
  for (let i = 0; i < r.rowCount; i++) {
    r.getI64(i, 'id');
    r.getBigInt64(i, 'big');
    r.getTimestamp(i, 'ts');
    r.getI32(i, 'n');
    r.getBool(i, 'ok');
    r.getF64(i, 'price');
    r.getString(i, 'key');
    r.getString(i, 'note');
    r.getBytes(i, 'blob');
    r.getAny(i, 'extra');
    for (let f = 0; f < s.names.length; f++) r.isNull(i, f);
  }
  return rows;
}

function typeOk(v: unknown, kind: string, nullable: boolean): boolean {
  if (v === null) return nullable;
  switch (kind) {
    case 'i64':
    case 'timestamp':
    case 'i32':
      return typeof v === 'number' || typeof v === 'bigint';
    case 'f64':
      return typeof v === 'number';
    case 'bool':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'bytes':
      return v instanceof Uint8Array;
    default:
      return true;
  }
}

function check(orig: Record<string, unknown>[], bytes: Uint8Array): 'error' | 'same' | 'one-field' {
  let got: Record<string, unknown>[];
  try {
    got = readEverything(bytes);
  } catch (e) {
    if (isBatchError(e)) return 'error';
    if (e instanceof FieldValueError && e.reason === 'overflow') return 'error';
    throw new Error(`unexpected ${String(e)}`);
  }
  assert.is(got.length, orig.length, 'row count');
  let diffs = 0;
  for (let i = 0; i < orig.length; i++) {
    for (let f = 0; f < s.names.length; f++) {
      const name = s.names[f]!;
      assert.ok(typeOk(got[i]![name], s.types[f]!.kind, s.types[f]!.isNullable), `type of ${name}`);
      if (!same(got[i]![name], orig[i]![name])) diffs++;
    }
  }
  assert.ok(diffs <= 1, `${diffs} fields changed by one byte flip`);
  return diffs === 0 ? 'same' : 'one-field';
}

test('random byte flips: batch error, or the original rows with at most one value changed', () => {
  const seen = { error: 0, same: 0, 'one-field': 0 };
  fc.assert(
    fc.property(fc.array(rowArb, { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 20 }), (rows, flips) => {
      const bytes = encodeBatch(s, rows);
      const orig = new BatchReader(s, bytes).readAll() as Record<string, unknown>[];
      for (const [at, x] of flips) {
        const copy = bytes.slice();
        copy[at % copy.length]! ^= x;
        seen[check(orig, copy)]++;
      }
    }),
    { numRuns: 300 },
  );
  // Both outcomes must have been exercised. Padding, the reserved word and unused bitmap bits are checked
  // to be zero, so flips there are detected; 'same' is still possible, rarely, where a flip changes bytes
  // but not the value read back (a NaN's payload bits: NaN stays NaN). It must stay rare.
  assert.ok(seen.error > 0 && seen['one-field'] > 0, JSON.stringify(seen));
  assert.ok(seen.same * 100 < seen.error + seen['one-field'], `flips read back unchanged: ${JSON.stringify(seen)}`);
});

test('every single-byte flip position of one batch is handled', () => {
  const rows = fc.sample(rowArb, { numRuns: 4, seed: 7 });
  const bytes = encodeBatch(s, rows);
  const orig = new BatchReader(s, bytes).readAll() as Record<string, unknown>[];
  for (let at = 0; at < bytes.length; at++) {
    for (const x of [0x01, 0x80, 0xff, 0x10]) {
      const copy = bytes.slice();
      copy[at]! ^= x;
      check(orig, copy);
    }
  }
});

test('truncations always throw CorruptBatchError', () => {
  fc.assert(
    fc.property(fc.array(rowArb, { minLength: 1, maxLength: 5 }), fc.nat(), (rows, k) => {
      const bytes = encodeBatch(s, rows);
      const cut = k % bytes.length;
      assert.throws(() => new BatchReader(s, bytes.subarray(0, cut)), (e: unknown) => e instanceof CorruptBatchError);
      // a truncation that also rewrites byteLength to the shorter (aligned) size
      const short = bytes.slice(0, cut & ~7);
      if (short.length >= 8) {
        new DataView(short.buffer).setUint32(4, short.length, true);
        assert.throws(() => new BatchReader(s, short), (e: unknown) => e instanceof CorruptBatchError);
      }
    }),
    { numRuns: 200 },
  );
});

test('random bytes are never read as a batch', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      try {
        new BatchReader(s, b).readAll();
        assert.unreachable('random bytes accepted');
      } catch (e) {
        assert.ok(isBatchError(e), String(e));
      }
    }),
  );
  // random bytes behind a valid header
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 8, maxLength: 400 }), fc.nat(10), (body, rowCount) => {
      const len = (16 + body.length) & ~7;
      const b = new Uint8Array(len);
      b.set(body.subarray(0, len - 16), 16);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, 0x31424c53, true);
      dv.setUint32(4, len, true);
      dv.setUint32(8, rowCount, true);
      dv.setUint32(12, s.id, true);
      try {
        readEverything(b);
      } catch (e) {
        assert.ok(isBatchError(e) || (e instanceof FieldValueError && e.reason === 'overflow'), String(e));
      }
    }),
    { numRuns: 500 },
  );
});

test('schema mismatch', () => {
  const other = schema({ id: t.i64(), key: t.string() });
  const bytes = encodeBatch(other, [{ id: 1, key: 'a' }]);
  try {
    new BatchReader(s, bytes, { operator: 'Sink(x)' });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, SchemaMismatchError);
    assert.match((e as Error).message, 'Sink(x)');
  }
  // nullability is part of the fingerprint
  const nullable = schema({ id: t.i64().nullable(), key: t.string() });
  assert.throws(() => new BatchReader(nullable, bytes), (e: unknown) => e instanceof SchemaMismatchError);
  // names are not: a renamed field reads under the reader's names
  const renamed = schema({ ident: t.i64(), name: t.string() });
  assert.equal(new BatchReader(renamed, bytes).readAll(), [{ ident: 1, name: 'a' }]);
});

test('malformed any payloads raise CorruptBatchError', () => {
  const a = schema({ x: t.any() });
  const bytes = encodeBatch(a, [{ x: [1, 2, 3] }]);
  // the payload starts right after the fixed part: 8 header + 8 bitmap + 8 slot = 24 from the row start
  const payloadAt = 16 + 24;
  for (const bad of [[0xc1], [0xdd, 0xff, 0xff, 0xff], [0x93, 0xc1], [0xd4, 0x05, 0x00]]) {
    const copy = bytes.slice();
    copy.set(bad, payloadAt);
    assert.throws(() => new BatchReader(a, copy).readAll(), (e: unknown) => e instanceof CorruptBatchError);
  }
});

test.run();
