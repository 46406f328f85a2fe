// Tests of the MessagePack codec for `any` fields (src/core/any-codec.ts): round trips, and
// compatibility with @msgpack/msgpack in both directions.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { decode as mpDecode, encode as mpEncode } from '@msgpack/msgpack';
import { AnyEncoder, AnyEncodeError, decodeAny } from '../../src/core/any-codec.ts';
import { CorruptBatchError } from '../../src/core/errors.ts';
import { anyArb, same } from './rows-helpers.ts';

const enc = new AnyEncoder();
const dec = (b: Uint8Array) => decodeAny(b, 0, b.length);
// @msgpack/msgpack assigns decoded keys with `obj[key] = v`, so a `__proto__` key sets the prototype
// instead of an own property: a behaviour of the peer, not of our codec (which the round trip covers).
const peerSafeJson = fc.jsonValue().filter((v) => !JSON.stringify(v).includes('"__proto__"'));

test('round trip (property)', () => {
  fc.assert(
    fc.property(anyArb, (v) => {
      assert.ok(same(dec(enc.encode(v).slice()), v));
    }),
    { numRuns: 500 },
  );
});

test('@msgpack/msgpack reads what we write', () => {
  fc.assert(
    fc.property(peerSafeJson, (v) => {
      assert.ok(same(mpDecode(enc.encode(v)), v));
    }),
    { numRuns: 300 },
  );
  const b = enc.encode({ big: 2n ** 63n - 1n, neg: -5n, bin: new Uint8Array([1, 2]) }).slice();
  assert.ok(same(mpDecode(b, { useBigInt64: true }), { big: 2n ** 63n - 1n, neg: -5n, bin: new Uint8Array([1, 2]) }));
});

test('we read what @msgpack/msgpack writes', () => {
  fc.assert(
    fc.property(peerSafeJson, (v) => {
      // 64-bit ints (which @msgpack/msgpack uses for integers beyond 32 bits) read as bigint, as with its useBigInt64
      assert.ok(same(dec(mpEncode(v)), mpDecode(mpEncode(v), { useBigInt64: true })));
    }),
    { numRuns: 300 },
  );
  const d = new Date(1700000000123);
  assert.is((dec(mpEncode(d)) as Date).getTime(), d.getTime());
  assert.is((dec(mpEncode(new Date(5000))) as Date).getTime(), 5000); // 32-bit timestamp form
  assert.is(dec(new Uint8Array([0xca, 0x3f, 0xc0, 0, 0])), 1.5); // float32
});

test('lone surrogates become U+FFFD; undefined properties are skipped', () => {
  assert.is(dec(enc.encode('a\ud800')), 'a\ufffd');
  assert.equal(dec(enc.encode({ a: undefined, b: 1 })), { b: 1 });
  assert.equal(dec(enc.encode([undefined])), [null]);
});

test('unencodable values', () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  for (const v of [() => 0, Symbol('s'), new Map(), new Set(), new Float64Array(1), cyclic, 2n ** 64n, -(2n ** 63n) - 1n, new Date(NaN)]) {
    assert.throws(() => enc.encode(v), (e: unknown) => e instanceof AnyEncodeError);
  }
  try {
    enc.encode({ a: [1, { b: () => 0 }] });
  } catch (e) {
    assert.is((e as AnyEncodeError).path, 'a[1].b');
  }
});

test('malformed input raises CorruptBatchError, never a RangeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      try {
        dec(b);
      } catch (e) {
        assert.ok(e instanceof CorruptBatchError, String(e));
      }
    }),
    { numRuns: 2000 },
  );
  // deep nesting is refused, not a stack overflow
  const deep = new Uint8Array(10000).fill(0x91);
  assert.throws(() => dec(deep), (e: unknown) => e instanceof CorruptBatchError);
});

test.run();
