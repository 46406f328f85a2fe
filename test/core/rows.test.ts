// Tests of the binary row codec (src/core/rows.ts): round trips of every field type (property-based),
// nulls, batch splitting, writing inside a region, field accessors, and every bad-input error.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { schema, t, type Fields } from '../../src/core/schema.ts';
import { FieldValueError, SluiceError } from '../../src/core/errors.ts';
import { BatchReader, BatchWriter, decodeBatches, encodeBatch, encodeBatches } from '../../src/core/rows.ts';
import { FIELD_CASES, same, wellFormed } from './rows-helpers.ts';

const RUNS = 100;
const isFieldError = (e: unknown) => e instanceof FieldValueError;

function roundTrip(s: ReturnType<typeof schema>, records: Record<string, unknown>[], batchBytes?: number): Record<string, unknown>[] {
  return decodeBatches(s, encodeBatches(s, records, { batchBytes })) as Record<string, unknown>[];
}

test('every field type round-trips (property)', () => {
  for (const c of FIELD_CASES) {
    const s = schema({ a: c.type, b: c.type.nullable(), k: t.i32() });
    fc.assert(
      fc.property(fc.array(fc.record({ a: c.arb, b: fc.option(c.arb, { nil: null }) }), { maxLength: 30 }), (vals) => {
        const recs = vals.map((v, k) => ({ ...v, k }));
        const out = roundTrip(s, recs, 4096);
        assert.is(out.length, recs.length);
        for (let i = 0; i < recs.length; i++) {
          const want = { a: c.expect(recs[i]!.a), b: recs[i]!.b === null ? null : c.expect(recs[i]!.b), k: i };
          if (!same(out[i], want)) assert.unreachable(`${c.name}: row ${i} read back as ${String(out[i]!.a)}, wanted ${String(want.a)}`);
        }
      }),
      { numRuns: RUNS },
    );
  }
});

test('mixed schema with many fields round-trips; accessors agree with read()', () => {
  const fields: Fields = {};
  for (const c of FIELD_CASES) {
    fields[c.name] = c.type;
    fields[c.name + 'N'] = c.type.nullable();
  }
  // more than 16 fields (past the unrolled sites) and more than 64 (two bitmap words)
  for (let i = 0; i < 50; i++) fields['x' + i] = i % 2 ? t.f64().nullable() : t.string();
  const s = schema(fields);
  const recArb = fc.record(
    Object.fromEntries(
      s.names.map((n, i) => {
        const c = FIELD_CASES.find((c) => n === c.name || n === c.name + 'N');
        if (c) return [n, s.types[i]!.isNullable ? fc.option(c.arb, { nil: null }) : c.arb];
        return [n, i % 2 ? fc.option(fc.double(), { nil: undefined }) : fc.string({ maxLength: 5 })];
      }),
    ),
  );
  fc.assert(
    fc.property(fc.array(recArb, { minLength: 1, maxLength: 10 }), (recs) => {
      const bytes = encodeBatch(s, recs);
      const r = new BatchReader(s, bytes);
      assert.is(r.rowCount, recs.length);
      for (let i = 0; i < recs.length; i++) {
        const o = r.read(i) as Record<string, unknown>;
        assert.equal(Object.keys(o), s.names);
        for (let f = 0; f < s.names.length; f++) {
          const name = s.names[f]!;
          const v = recs[i]![name];
          const c = FIELD_CASES.find((c) => name === c.name || name === c.name + 'N');
          const want = v === null || v === undefined ? null : c ? c.expect(v) : v;
          if (!same(o[name], want)) assert.unreachable(`field ${name}: ${String(o[name])} vs ${String(want)}`);
          assert.is(r.isNull(i, f), want === null);
          if (want === null) continue;
          const kind = s.types[f]!.kind;
          const big = s.types[f]!.bigint;
          const got =
            kind === 'f64' ? r.getF64(i, f)
            : kind === 'i32' ? r.getI32(i, f)
            : kind === 'i64' ? (big ? r.getBigInt64(i, name) : r.getI64(i, name))
            : kind === 'timestamp' ? r.getTimestamp(i, f)
            : kind === 'bool' ? r.getBool(i, f)
            : kind === 'string' ? r.getString(i, f)
            : kind === 'bytes' ? r.getBytes(i, f)
            : r.getAny(i, f);
          if (!same(got, want)) assert.unreachable(`accessor of ${name}: ${String(got)} vs ${String(want)}`);
        }
      }
      assert.ok(same(r.readAll(), recs.map((_, i) => r.read(i))));
    }),
    { numRuns: 50 },
  );
});

test('extreme values', () => {
  const s = schema({ big: t.i64({ bigint: true }), n: t.i64(), d: t.f64(), ts: t.timestamp(), i: t.i32() });
  const recs = [
    { big: -(2n ** 63n), n: -(2 ** 53 - 1), d: -0, ts: -8.64e15, i: -(2 ** 31) },
    { big: 2n ** 63n - 1n, n: 2 ** 53 - 1, d: 0, ts: 8.64e15, i: 2 ** 31 - 1 },
    { big: 0n, n: 0, d: NaN, ts: new Date(0), i: 0 },
    { big: 5, n: 7n, d: Infinity, ts: 1, i: -0 },
    { big: -1n, n: -1, d: 5e-324, ts: 2, i: -1 },
    { big: 1n, n: 1, d: -Number.MAX_VALUE, ts: 3, i: 1 },
  ];
  const out = roundTrip(s, recs);
  const want = [
    { big: -(2n ** 63n), n: -(2 ** 53 - 1), d: -0, ts: -8.64e15, i: -(2 ** 31) },
    { big: 2n ** 63n - 1n, n: 2 ** 53 - 1, d: 0, ts: 8.64e15, i: 2 ** 31 - 1 },
    { big: 0n, n: 0, d: NaN, ts: 0, i: 0 },
    { big: 5n, n: 7, d: Infinity, ts: 1, i: 0 },
    { big: -1n, n: -1, d: 5e-324, ts: 2, i: -1 },
    { big: 1n, n: 1, d: -Number.MAX_VALUE, ts: 3, i: 1 },
  ];
  for (let i = 0; i < want.length; i++) assert.ok(same(out[i], want[i]), `row ${i}`);
  assert.ok(Object.is(out[0]!.d, -0) && Object.is(out[1]!.d, 0), '±0 distinguished');
});

test('strings: empty, non-ASCII, astral, long; lone surrogates read back as U+FFFD', () => {
  const s = schema({ s: t.string() });
  const vals = ['', 'a', 'é', '日本語', '😀', 'a😀', 'x'.repeat(17), 'y'.repeat(33), 'é'.repeat(100), '\u0000\u007f', 'ab\ud800cd', '\udc00', 'x\ud83d'];
  const out = roundTrip(s, vals.map((v) => ({ s: v })));
  assert.equal(
    out.map((o) => o.s),
    vals.map(wellFormed),
  );
  assert.is(out[10]!.s, 'ab\ufffdcd');
});

test('i64 stored beyond the safe range: number mode throws overflow, bigint mode reads it', () => {
  const wide = schema({ v: t.i64({ bigint: true }) });
  const narrow = schema({ v: t.i64() }); // same fingerprint: same kind and nullability
  assert.is(wide.id, narrow.id);
  const bytes = encodeBatch(wide, [{ v: 2n ** 53n }, { v: 1n }]);
  const r = new BatchReader(narrow, bytes, { operator: 'Map(x)' });
  assert.is(r.getI64(1, 0), 1);
  try {
    r.read(0);
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, FieldValueError);
    const err = e as FieldValueError;
    assert.is(err.reason, 'overflow');
    assert.is(err.field, 'v');
    assert.is(err.value, 2n ** 53n);
    assert.match(err.message, 'Map(x)');
  }
  assert.throws(() => r.getI64(0, 'v'), (e: unknown) => e instanceof FieldValueError && e.reason === 'overflow');
  assert.is(new BatchReader(wide, bytes).getBigInt64(0, 0), 2n ** 53n);
  // -2^53 is one past the safe range too
  const neg = new BatchReader(narrow, encodeBatch(wide, [{ v: -(2n ** 53n) }]));
  assert.throws(() => neg.getI64(0, 0), (e: unknown) => e instanceof FieldValueError);
});

test('any values: nested objects, arrays, bigint, Uint8Array, null, Date', () => {
  const s = schema({ a: t.any().nullable() });
  const vals = [
    { x: { y: [1, 'two', null, true, 2.5, -0] }, z: new Uint8Array([1, 2, 3]) },
    [1n, -(2n ** 63n), 2n ** 64n - 1n, [[[]]], {}],
    null,
    'str',
    new Date(1700000000123),
    { ['__proto__']: 5, b: NaN },
  ];
  const out = roundTrip(s, vals.map((a) => ({ a })));
  for (let i = 0; i < vals.length; i++) assert.ok(same(out[i]!.a, vals[i]), `value ${i}`);
  assert.is(Object.getPrototypeOf(out[5]!.a), Object.prototype, 'a __proto__ key does not set the prototype');
});

test('batch splitting: every batch within capacity, split only when the next row does not fit', () => {
  const s = schema({ id: t.i64(), key: t.string(), p: t.f64().nullable() });
  fc.assert(
    fc.property(
      fc.array(fc.record({ id: fc.maxSafeInteger(), key: fc.string({ maxLength: 60 }), p: fc.option(fc.double(), { nil: null }) }), { maxLength: 200 }),
      fc.integer({ min: 16 + 40 + 64, max: 2048 }),
      (recs, cap) => {
        const batchBytes = cap & ~7;
        const batches = encodeBatches(s, recs, { batchBytes });
        const w = new BatchWriter(s, new ArrayBuffer(4096));
        let k = 0;
        for (const b of batches) {
          assert.ok(b.byteLength <= batchBytes && b.byteOffset % 8 === 0);
          const r = new BatchReader(s, b);
          k += r.rowCount;
          if (k < recs.length) assert.ok(b.byteLength + w.measure(recs[k]!) > batchBytes, 'split early');
        }
        assert.is(k, recs.length);
        const out = decodeBatches(s, batches);
        for (let i = 0; i < recs.length; i++) assert.ok(same(out[i], { ...recs[i], key: wellFormed(recs[i]!.key) }));
      },
    ),
    { numRuns: RUNS },
  );
});

test('empty input gives one empty batch', () => {
  const s = schema({ a: t.i32() });
  const b = encodeBatches(s, []);
  assert.is(b.length, 1);
  assert.is(b[0]!.byteLength, 16);
  assert.is(new BatchReader(s, b[0]!).rowCount, 0);
});

test('writer stays inside its region, also on errors and full batches', () => {
  const s = schema({ a: t.string(), b: t.i32() });
  const buf = new ArrayBuffer(1024);
  const all = new Uint8Array(buf);
  all.fill(0xee);
  const w = new BatchWriter(s, buf, { byteOffset: 64, capacity: 256 });
  let n = 0;
  assert.throws(() => w.write({ a: 'x'.repeat(20), b: 1.5 }), isFieldError);
  while (w.write({ a: 'row' + n, b: n })) n++;
  assert.not.ok(w.write({ a: 'x'.repeat(300), b: 1 }));
  const len = w.finish();
  assert.ok(len <= 256);
  for (let i = 0; i < 64; i++) assert.is(all[i], 0xee);
  for (let i = 64 + 256; i < 1024; i++) assert.is(all[i], 0xee);
  const out = new BatchReader(s, new Uint8Array(buf, 64, len)).readAll();
  assert.is(out.length, n);
  assert.equal(out[n - 1], { a: 'row' + (n - 1), b: n - 1 });
  // a Uint8Array region works the same; misaligned regions are refused
  assert.ok(new BatchWriter(s, new Uint8Array(buf, 512, 128)).write({ a: '', b: 0 }));
  assert.throws(() => new BatchWriter(s, new Uint8Array(buf, 4, 128)), /aligned/);
});

test('a rejected row leaves the batch valid and unchanged', () => {
  const s = schema({ a: t.i32(), b: t.string(), c: t.i32() });
  const w = new BatchWriter(s, new ArrayBuffer(4096));
  w.write({ a: 1, b: 'one', c: 1 });
  assert.throws(() => w.write({ a: 2, b: 'two', c: 'x' }), isFieldError);
  w.write({ a: 3, b: 'three', c: 3 });
  const len = w.finish();
  assert.equal(new BatchReader(s, w.bytes(len)).readAll(), [
    { a: 1, b: 'one', c: 1 },
    { a: 3, b: 'three', c: 3 },
  ]);
});

test('a row larger than an empty batch is a clear error', () => {
  const s = schema({ a: t.string() });
  try {
    encodeBatches(s, [{ a: 'ok' }, { a: 'x'.repeat(100) }], { batchBytes: 64, operator: 'Source(s)' });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, SluiceError);
    const err = e as SluiceError;
    assert.is(err.context.recordIndex, 1);
    assert.is(err.context.operator, 'Source(s)');
    assert.match(err.message, /needs a row of 128 bytes/);
  }
  // encodeBatch grows instead
  const big = encodeBatch(s, [{ a: 'x'.repeat(100_000) }], { initialBytes: 64 });
  assert.is((new BatchReader(s, big).read(0).a as string).length, 100_000);
});

const BAD: [string, Fields, unknown, string][] = [
  ['i32 given a string', { f: t.i32() }, '5', 'wrong-type'],
  ['i32 overflow', { f: t.i32() }, 2 ** 31, 'overflow'],
  ['i32 non-integer', { f: t.i32() }, 1.5, 'not-integer'],
  ['i32 NaN', { f: t.i32() }, NaN, 'not-integer'],
  ['i32 bigint', { f: t.i32() }, 1n, 'wrong-type'],
  ['i64 unsafe number', { f: t.i64() }, 2 ** 53, 'overflow'],
  ['i64 non-integer', { f: t.i64() }, 0.5, 'not-integer'],
  ['i64 string', { f: t.i64() }, '12', 'wrong-type'],
  ['i64 bigint too large', { f: t.i64() }, 2n ** 63n, 'overflow'],
  ['i64(bigint) bigint too small', { f: t.i64({ bigint: true }) }, -(2n ** 63n) - 1n, 'overflow'],
  ['f64 given a string', { f: t.f64() }, '1.5', 'wrong-type'],
  ['f64 bigint', { f: t.f64() }, 1n, 'wrong-type'],
  ['bool given 1', { f: t.bool() }, 1, 'wrong-type'],
  ['string given a number', { f: t.string() }, 5, 'wrong-type'],
  ['bytes given an array', { f: t.bytes() }, [1, 2], 'wrong-type'],
  ['timestamp non-integer', { f: t.timestamp() }, 1.25, 'not-integer'],
  ['timestamp invalid Date', { f: t.timestamp() }, new Date(NaN), 'wrong-type'],
  ['timestamp string', { f: t.timestamp() }, '2024-01-01', 'wrong-type'],
  ['missing non-nullable', { f: t.f64() }, undefined, 'missing'],
  ['null non-nullable', { f: t.string() }, null, 'missing'],
  ['any function', { f: t.any() }, () => 1, 'unencodable'],
  ['any symbol in array', { f: t.any() }, [1, Symbol('x')], 'unencodable'],
  ['any Map', { f: t.any() }, new Map(), 'unencodable'],
  ['any class instance', { f: t.any() }, new (class Foo {})(), 'unencodable'],
  ['any huge bigint', { f: t.any() }, { a: 2n ** 64n }, 'unencodable'],
];

test('each bad input throws FieldValueError naming field, record index and operator', () => {
  for (const [what, fields, value, reason] of BAD) {
    const s = schema({ ok: t.i32(), ...fields });
    const recs = [
      { ok: 1, f: null },
      { ok: 2, f: null },
      { ok: 3, f: value },
    ];
    // make the first two rows valid for the field type
    const good = { i32: 0, i64: 0, f64: 0, bool: true, string: '', bytes: new Uint8Array(0), timestamp: 0, any: 0 }[s.types[1]!.kind];
    recs[0]!.f = good;
    recs[1]!.f = good;
    try {
      encodeBatches(s, recs, { operator: 'Map(parse)', startIndex: 100 });
      assert.unreachable(`${what}: no error`);
    } catch (e) {
      if (!(e instanceof FieldValueError)) throw new Error(`${what}: got ${e}`);
      assert.is(e.field, 'f', what);
      assert.is(e.reason, reason, what);
      assert.is(e.context.recordIndex, 102, what);
      assert.is(e.context.operator, 'Map(parse)', what);
      assert.is(e.domain, 'user');
      assert.match(e.message, "field 'f'");
      assert.match(e.message, 'record 102');
      assert.match(e.message, 'operator Map(parse)');
    }
  }
});

test('writer record index: running count, explicit index, errors consume an index', () => {
  const s = schema({ a: t.i32() });
  const w = new BatchWriter(s, new ArrayBuffer(1024), { operator: 'op' });
  w.write({ a: 1 });
  assert.throws(() => w.write({ a: 'x' }), (e: unknown) => e instanceof FieldValueError && e.context.recordIndex === 1);
  assert.throws(() => w.write({ a: 'x' }), (e: unknown) => e instanceof FieldValueError && e.context.recordIndex === 2);
  assert.throws(() => w.write({ a: 'x' }, 42), (e: unknown) => e instanceof FieldValueError && e.context.recordIndex === 42);
  assert.is(w.recordIndex, 43);
});

test('nullable fields accept null and undefined (missing key)', () => {
  const s = schema({ a: t.i32().nullable(), b: t.string().nullable(), c: t.any().nullable() });
  const out = roundTrip(s, [{}, { a: undefined, b: null, c: undefined }, { a: 1, b: 'x', c: [null] }]);
  assert.equal(out, [
    { a: null, b: null, c: null },
    { a: null, b: null, c: null },
    { a: 1, b: 'x', c: [null] },
  ]);
});

test('accessors check their field type and row range', () => {
  const s = schema({ a: t.i32(), b: t.string() });
  const r = new BatchReader(s, encodeBatch(s, [{ a: 1, b: 'x' }]));
  assert.throws(() => r.getF64(0, 'a'), (e: unknown) => e instanceof TypeError);
  assert.throws(() => r.getString(0, 0), (e: unknown) => e instanceof TypeError);
  assert.throws(() => r.getI32(1, 0), (e: unknown) => e instanceof RangeError);
  assert.throws(() => r.getI32(0, 'nope'), (e: unknown) => e instanceof RangeError);
  assert.is(r.getI64(0, 'a'), 1);
  assert.is(r.rowOffset(0), 16);
});

test('reader reset reuses one reader over several batches (same and different buffers)', () => {
  const s = schema({ a: t.i32(), b: t.string() });
  const buf = new ArrayBuffer(8192);
  const w = new BatchWriter(s, buf, { capacity: 4096 });
  w.write({ a: 1, b: 'one' });
  const b1 = w.bytes(w.finish());
  w.begin(buf, 4096, 4096);
  w.write({ a: 2, b: 'two' });
  w.write({ a: 3, b: 'three' });
  const b2 = w.bytes(w.finish());
  const r = new BatchReader(s, b1);
  assert.equal(r.readAll(), [{ a: 1, b: 'one' }]);
  r.reset(b2);
  assert.equal(r.readAll(), [
    { a: 2, b: 'two' },
    { a: 3, b: 'three' },
  ]);
  r.reset(b1.slice());
  assert.equal(r.readAll(), [{ a: 1, b: 'one' }]);
});

test('a batch at an odd offset is read (copied to an aligned buffer)', () => {
  const s = schema({ a: t.f64(), b: t.string() });
  const b = encodeBatch(s, [{ a: 1.5, b: 'x' }]);
  const odd = new Uint8Array(b.length + 3);
  odd.set(b, 3);
  assert.equal(new BatchReader(s, odd.subarray(3)).readAll(), [{ a: 1.5, b: 'x' }]);
});

test('SharedArrayBuffer regions work', () => {
  if (typeof SharedArrayBuffer === 'undefined') return;
  const s = schema({ a: t.string(), b: t.any() });
  const w = new BatchWriter(s, new SharedArrayBuffer(4096));
  w.write({ a: 'é'.repeat(50), b: { k: 'v'.repeat(40) } });
  const r = new BatchReader(s, w.bytes(w.finish()));
  assert.equal(r.readAll(), [{ a: 'é'.repeat(50), b: { k: 'v'.repeat(40) } }]);
});

test.run();
