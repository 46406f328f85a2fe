// Tests the binary keyed-state backend: value state round trips for every field type (and nulls),
// in-place and relocating updates, compaction, TTL, snapshots, and its documented limits.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BinaryKeyedStateBackend,
  ListStateDescriptor,
  StateAccessError,
  StateTtlConfig,
  ValueStateDescriptor,
  schema,
  t,
} from '../../src/index.ts';

const all = schema({
  i32: t.i32(),
  i64: t.i64(),
  big: t.i64({ bigint: true }),
  f64: t.f64(),
  bool: t.bool(),
  str: t.string(),
  bytes: t.bytes(),
  ts: t.timestamp(),
  any: t.any(),
  opt: t.string().nullable(),
});

const row = (i: number) => ({
  i32: -i,
  i64: i * 1e9,
  big: BigInt(i % 4) * 2n ** 61n - 1n - BigInt(i),
  f64: i / 3,
  bool: i % 2 === 0,
  str: 'é🙂'.repeat(i % 5) + i,
  bytes: new Uint8Array(i % 7).fill(i & 0xff),
  ts: 1_700_000_000_000 + i,
  any: { i, list: [i, 'x', null] },
  opt: i % 3 === 0 ? null : `o${i}`,
});

test('value state with a schema: every field type round trips, through updates and a snapshot', () => {
  const b = new BinaryKeyedStateBackend({ maxParallelism: 32 });
  const d = ValueStateDescriptor.ofSchema('all', all);
  const s = b.getState(d);
  for (let i = 0; i < 300; i++) {
    b.setCurrentKey(i % 2 ? `k${i}` : i);
    s.update(row(i));
  }
  // grow some rows (relocate), shrink others (in place), clear a few
  for (let i = 0; i < 300; i += 3) {
    b.setCurrentKey(i % 2 ? `k${i}` : i);
    s.update(row(i + 1000));
  }
  for (let i = 1; i < 300; i += 10) {
    b.setCurrentKey(i % 2 ? `k${i}` : i);
    s.clear();
  }
  const expect = (bk: BinaryKeyedStateBackend, st: typeof s) => {
    for (let i = 0; i < 300; i++) {
      bk.setCurrentKey(i % 2 ? `k${i}` : i);
      const want = (i - 1) % 10 === 0 ? undefined : i % 3 === 0 ? row(i + 1000) : row(i);
      assert.equal(st.value(), want);
    }
  };
  expect(b, s);
  const c = new BinaryKeyedStateBackend({ maxParallelism: 32 });
  c.restore([b.snapshot()]);
  expect(c, c.getState(d));
  assert.is(c.numKeys('all'), b.numKeys('all'));
});

test('many relocating updates stay correct across compactions; -0 and 0 are one key', () => {
  const small = schema({ s: t.string() });
  const b = new BinaryKeyedStateBackend({ maxParallelism: 8 });
  const s = b.getState(ValueStateDescriptor.ofSchema('s', small));
  for (let round = 0; round < 30; round++) {
    for (let k = 0; k < 200; k++) {
      b.setCurrentKey([k, 'c']);
      s.update({ s: 'x'.repeat(round * 10 + (k % 3)) });
    }
  }
  for (let k = 0; k < 200; k++) {
    b.setCurrentKey([k, 'c']);
    assert.is(s.value()!.s, 'x'.repeat(290 + (k % 3)));
  }
  assert.is(b.numKeys('s'), 200);
  assert.ok(b.arenaBytes < 200 * 400 * 4, `arena ${b.arenaBytes} bytes should be compacted`);
  b.setCurrentKey(-0);
  s.update({ s: 'zero' });
  b.setCurrentKey(0);
  assert.is(s.value()!.s, 'zero');
});

test('binary TTL: expiry on read with both visibilities', () => {
  for (const ret of [false, true]) {
    const clock = { now: 0 };
    const b = new BinaryKeyedStateBackend({ maxParallelism: 8, clock: () => clock.now });
    const ttl = StateTtlConfig.newBuilder(10).setStateVisibility(ret ? 'ReturnExpiredIfNotCleanedUp' : 'NeverReturnExpired').updateTtlOnReadAndWrite().build();
    const s = b.getState(ValueStateDescriptor.ofSchema('v', schema({ n: t.i32() }), { ttl }));
    b.setCurrentKey('k');
    s.update({ n: 1 });
    clock.now = 9;
    assert.equal(s.value(), { n: 1 }); // refreshed to expire at 19
    clock.now = 19;
    assert.equal(s.value(), ret ? { n: 1 } : undefined);
    assert.is(s.value(), undefined);
  }
});

test('binary backend refuses what it does not support yet, and values that do not fit the schema', () => {
  const b = new BinaryKeyedStateBackend({ maxParallelism: 8 });
  assert.throws(() => b.getState(new ListStateDescriptor<number>('l')), (e: unknown) => e instanceof StateAccessError && /only ValueState with a schema/.test((e as Error).message));
  assert.throws(() => b.getState(new ValueStateDescriptor<number>('plain')), (e: unknown) => e instanceof StateAccessError);
  const s = b.getState(ValueStateDescriptor.ofSchema('v', schema({ n: t.i32() })));
  b.setCurrentKey(1);
  assert.throws(() => s.update({ n: 'no' } as unknown as { n: number }), (e: unknown) => e instanceof Error && /field 'n'/.test((e as Error).message));
  assert.is(s.value(), undefined);
});

test.run();
