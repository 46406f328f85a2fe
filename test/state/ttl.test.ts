// Tests state TTL with a manual clock: every update type × visibility, per element (list) and per
// entry (map), incremental cleanup and full-snapshot cleanup.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  HeapKeyedStateBackend,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  StateTtlConfig,
  ValueStateDescriptor,
  type TtlStateVisibility,
  type TtlUpdateType,
} from '../../src/index.ts';

function setup() {
  const clock = { now: 1000 };
  const b = new HeapKeyedStateBackend({ maxParallelism: 16, clock: () => clock.now });
  return { b, clock };
}
const cfg = (u: TtlUpdateType, v: TtlStateVisibility, inc = 0) => StateTtlConfig.newBuilder(100).setUpdateType(u).setStateVisibility(v).cleanupIncrementally(inc).build();

for (const u of ['OnCreateAndWrite', 'OnReadAndWrite'] as const) {
  for (const vis of ['NeverReturnExpired', 'ReturnExpiredIfNotCleanedUp'] as const) {
    test(`value state TTL: ${u} × ${vis}`, () => {
      const { b, clock } = setup();
      const s = b.getState(new ValueStateDescriptor<string>('v').enableTimeToLive(cfg(u, vis)));
      b.setCurrentKey('k');
      s.update('x'); // t=1000, expires at 1100
      clock.now = 1060;
      assert.is(s.value(), 'x'); // OnReadAndWrite: now expires at 1160
      clock.now = 1120;
      const read = s.value();
      if (u === 'OnReadAndWrite') assert.is(read, 'x');
      else assert.is(read, vis === 'ReturnExpiredIfNotCleanedUp' ? 'x' : undefined);
      clock.now = 1300;
      const late = s.value();
      assert.is(late, vis === 'ReturnExpiredIfNotCleanedUp' && u === 'OnReadAndWrite' ? 'x' : undefined);
      // an expired read removes the entry: nothing is returned twice
      assert.is(s.value(), undefined);
      assert.is(b.numKeys('v'), 0);
      // a write refreshes
      s.update('y');
      clock.now = 1399;
      assert.is(s.value(), 'y');
    });

    test(`list state TTL per element: ${u} × ${vis}`, () => {
      const { b, clock } = setup();
      const l = b.getState(new ListStateDescriptor<number>('l').enableTimeToLive(cfg(u, vis)));
      b.setCurrentKey(1);
      l.add(1); // 1000
      clock.now = 1050;
      l.add(2); // 1050
      clock.now = 1100; // element 1 expired
      assert.equal(l.get(), vis === 'ReturnExpiredIfNotCleanedUp' ? [1, 2] : [2]);
      assert.equal(l.get(), [2]); // cleaned up by the read
      clock.now = 1160; // element 2 expires at 1150, or 1200 after an OnReadAndWrite read at 1100
      assert.equal(l.get(), u === 'OnReadAndWrite' ? [2] : vis === 'ReturnExpiredIfNotCleanedUp' ? [2] : []);
    });

    test(`map state TTL per entry: ${u} × ${vis}`, () => {
      const { b, clock } = setup();
      const m = b.getState(new MapStateDescriptor<string, number>('m').enableTimeToLive(cfg(u, vis)));
      b.setCurrentKey(1);
      m.put('a', 1);
      clock.now = 1050;
      m.put('b', 2);
      clock.now = 1090;
      assert.is(m.get('a'), 1); // OnReadAndWrite refreshes 'a' to 1190
      clock.now = 1160;
      assert.is(m.get('a'), u === 'OnReadAndWrite' || vis === 'ReturnExpiredIfNotCleanedUp' ? 1 : undefined);
      // 'b' (written at 1050) expired at 1150; 'a' is gone unless OnReadAndWrite kept it alive
      const ret = vis === 'ReturnExpiredIfNotCleanedUp';
      assert.equal([...m.keys()].sort(), u === 'OnReadAndWrite' ? (ret ? ['a', 'b'] : ['a']) : ret ? ['b'] : []);
      clock.now = 10_000;
      assert.ok(m.isEmpty());
      assert.not.ok(m.contains('b'));
    });
  }
}

test('reducing state does not fold into an expired accumulator', () => {
  const { b, clock } = setup();
  const r = b.getState(new ReducingStateDescriptor<number>('r', (a, x) => a + x).enableTimeToLive(cfg('OnCreateAndWrite', 'ReturnExpiredIfNotCleanedUp')));
  b.setCurrentKey('k');
  r.add(5);
  clock.now = 1200;
  r.add(1);
  assert.is(r.get(), 1);
});

test('incremental cleanup removes expired entries of other keys on access', () => {
  const { b, clock } = setup();
  const s = b.getState(new ValueStateDescriptor<number>('v').enableTimeToLive(cfg('OnCreateAndWrite', 'NeverReturnExpired', 5)));
  for (let k = 0; k < 40; k++) {
    b.setCurrentKey(k);
    s.update(k);
  }
  clock.now = 2000;
  b.setCurrentKey('fresh');
  s.update(1);
  for (let i = 0; i < 10; i++) s.value(); // 11 accesses × 5 entries ≥ 41 entries
  assert.is(b.numKeys('v'), 1);
  assert.equal([...b.keys('v')], ['fresh']);
});

test('full-snapshot cleanup leaves expired entries out; timestamps survive a restore', () => {
  const { b, clock } = setup();
  const ttl = cfg('OnCreateAndWrite', 'ReturnExpiredIfNotCleanedUp');
  const s = b.getState(new ValueStateDescriptor<number>('v').enableTimeToLive(ttl));
  b.setCurrentKey('old');
  s.update(1);
  clock.now = 1080;
  b.setCurrentKey('new');
  s.update(2);
  clock.now = 1120;
  const snap = b.snapshot();
  const c = new HeapKeyedStateBackend({ maxParallelism: 16, clock: () => clock.now });
  c.restore([snap]);
  const t = c.getState(new ValueStateDescriptor<number>('v').enableTimeToLive(ttl));
  assert.equal([...c.keys('v')], ['new']);
  clock.now = 1180; // 'new' written at 1080 expires at 1180 even after restore
  c.setCurrentKey('new');
  assert.is(t.value(), 2); // ReturnExpiredIfNotCleanedUp: once more
  assert.is(t.value(), undefined);

  const keep = StateTtlConfig.newBuilder(100).disableCleanupInBackground().build();
  const d = setup();
  const u = d.b.getState(new ValueStateDescriptor<number>('v').enableTimeToLive(keep));
  d.b.setCurrentKey('old');
  u.update(1);
  d.clock.now = 5000;
  const e = new HeapKeyedStateBackend({ maxParallelism: 16 });
  e.restore([d.b.snapshot()]);
  e.getState(new ValueStateDescriptor<number>('v'));
  assert.equal([...e.keys('v')], ['old']);
});

test('builder validates its inputs', () => {
  assert.throws(() => StateTtlConfig.newBuilder(0), (e: unknown) => e instanceof RangeError);
  assert.throws(() => StateTtlConfig.newBuilder(10).cleanupIncrementally(-1), (e: unknown) => e instanceof RangeError);
  const c = StateTtlConfig.newBuilder(10).updateTtlOnReadAndWrite().returnExpiredIfNotCleanedUp().build();
  assert.is(c.updateType, 'OnReadAndWrite');
  assert.is(c.stateVisibility, 'ReturnExpiredIfNotCleanedUp');
  assert.ok(c.cleanupFullSnapshot);
});

test.run();
