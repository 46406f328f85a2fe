// Tests key-group assignment of JS keys: the fused ASCII string hash and the adaptive memo of
// KeyGroupAssigner against the un-memoized reference `keyGroupOf(hashJsKey(key), maxParallelism)`
// (key groups are persisted semantics: keyed state is scoped by them), on seeded random keys.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { hashJsKey, keyGroupOf } from '../../src/core/hash.ts';
import { InvalidKeyError, KeyGroupAssigner, checkKey, extractKey, hashStringKey, keyGroupOfKey } from '../../src/runtime/keys.ts';
import { rng } from '../fixtures/event-time.ts';

const spec = { fn: (k: unknown) => k, description: 'k' };

const units = ['a', 'Z', '0', '-', ' ', '\x7f', '\x00', 'é', 'ÿ', '€', '中', '😀', '\ud800', '\udc00', '\uffff'];

test('hashStringKey equals hashJsKey on random strings: ASCII of every length mod 4, Latin-1, BMP, surrogates', () => {
  const ascii = fc.string({ unit: 'binary-ascii', maxLength: 70 });
  const mixed = fc.string({ unit: fc.constantFrom(...units), maxLength: 40 });
  const anyUnit = fc.string({ unit: 'binary', maxLength: 40 });
  fc.assert(
    fc.property(fc.oneof(ascii, mixed, anyUnit), (s) => hashStringKey(s) === hashJsKey(s)),
    { seed: 4242, numRuns: 3000 },
  );
  for (let n = 0; n < 300; n++) {
    const s = 'k'.repeat(n);
    assert.is(hashStringKey(s), hashJsKey(s), `length ${n}`);
    assert.is(hashStringKey(s + 'é'), hashJsKey(s + 'é'), `length ${n} + é`);
    assert.is(hashStringKey(s, 7), hashJsKey(s, 7), `length ${n}, seed 7`);
  }
});

test('key group assigner equals the un-memoized key group on random key streams in every memo regime', () => {
  // A small memo limit (window = 4 * limit lookups) so that filling, staying full, being judged,
  // cleared, bypassed with backoff and refilled all happen many times.
  const regimes: [name: string, distinct: number][] = [
    ['fits', 10],
    ['one more than fits', 33],
    ['twice', 64],
    ['far more', 5000],
  ];
  let checked = 0;
  for (const maxP of [1, 7, 128, 32768]) {
    for (const [name, distinct] of regimes) {
      const next = rng(distinct * 31 + maxP);
      const a = new KeyGroupAssigner(spec, maxP, 32);
      let drift = 0;
      for (let i = 0; i < 20_000; i++) {
        if (i % 5000 === 0) drift += distinct; // a new key set now and then
        const r = next();
        let key: unknown;
        if (r < 0.9) key = `key-${drift + Math.floor(next() * distinct)}`;
        else if (r < 0.95) key = `ünïcode-${Math.floor(next() * distinct)}`;
        else if (r < 0.97) key = Math.floor(next() * distinct);
        else if (r < 0.99) key = [`c${Math.floor(next() * 5)}`, Math.floor(next() * 5)];
        else key = null;
        const got = a.keyGroup(key, 'op', 0, i);
        const want = keyGroupOf(hashJsKey(key), maxP);
        if (got !== want) assert.unreachable(`${name}, maxParallelism ${maxP}, lookup ${i}, key ${JSON.stringify(key)}: ${got} != ${want}`);
        checked++;
      }
    }
  }
  assert.is(checked, 4 * 4 * 20_000);
});

test('key group assigner with the default memo limit, past it and cycling (8193 keys)', () => {
  const a = new KeyGroupAssigner(spec, 128);
  const keys = Array.from({ length: 8193 }, (_, i) => `user-${(i * 2654435761) >>> 0}`);
  for (let round = 0; round < 3; round++) {
    for (const k of keys) {
      if (a.keyGroup(k, 'op', 0, 0) !== keyGroupOf(hashJsKey(k), 128)) assert.unreachable(k);
    }
  }
});

test('checkKey sets aside exactly the records on which extractKey or keyGroupOfKey throw, with that error as cause', () => {
  const bySelector = { fn: (r: { k?: unknown }) => r.k, description: 'pick' };
  const byField = { fn: (r: { k?: unknown }) => r.k, description: 'k', field: 'k' };
  const throwing = { fn: () => { throw new RangeError('nope'); }, description: 'boom' };
  const keys = fc.oneof(
    fc.anything({ withBigInt: true, withDate: true, withTypedArray: true, withMap: true, withSet: true, withNullPrototype: true }),
    fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(Symbol.iterator), fc.constant(() => 1), fc.object()), { maxLength: 3 }),
    fc.constantFrom(Symbol('s'), () => 1, NaN, undefined, new Uint8Array(3), new Date(0)),
  );
  const records = fc.oneof(keys.map((k) => ({ k }) as { k?: unknown }), fc.constant({} as { k?: unknown }));
  fc.assert(
    fc.property(records, fc.constantFrom(bySelector, byField, throwing), (record, spec) => {
      let thrown: unknown;
      try {
        keyGroupOfKey(extractKey(spec, record, 'KeyBy(x)', 1, 9), spec, 128, 'KeyBy(x)', 1, 9);
      } catch (e) {
        thrown = e;
      }
      const bad = checkKey(spec, record, 'KeyBy(x)', 1, 9);
      if (thrown === undefined) return bad === undefined;
      return (
        bad instanceof InvalidKeyError &&
        bad.record === record &&
        (bad.cause as Error).constructor === (thrown as Error).constructor &&
        (bad.cause as Error).message === (thrown as Error).message &&
        bad.context.operator === 'KeyBy(x)' && bad.context.subtask === 1 && bad.context.recordIndex === 9
      );
    }),
    { seed: 77, numRuns: 2000 },
  );
});

test.run();
