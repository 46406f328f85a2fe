// Tests keyed state semantics on the heap backend: every state kind, current-key isolation, key
// groups, registration rules, snapshot → restore round trips and codecs.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AggregatingStateDescriptor,
  HeapKeyedStateBackend,
  KeyGroupRange,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  StateAccessError,
  StateSerializationError,
  CorruptSnapshotError,
  ValueStateDescriptor,
  keyGroupForKey,
  keyGroupRangeForSubtask,
  subtaskForKeyGroup,
} from '../../src/index.ts';

const mk = () => new HeapKeyedStateBackend({ maxParallelism: 128 });

test('value state: value/update/clear; update(undefined) clears; null is a value', () => {
  const b = mk();
  const s = b.getState(new ValueStateDescriptor<number | null>('v'));
  b.setCurrentKey('a');
  assert.is(s.value(), undefined);
  s.update(1);
  assert.is(s.value(), 1);
  s.update(null);
  assert.is(s.value(), null);
  s.update(undefined);
  assert.is(s.value(), undefined);
  assert.is(b.numKeys('v'), 0);
  s.update(5);
  s.clear();
  assert.is(s.value(), undefined);
});

test('current-key switching isolates every kind of state', () => {
  const b = mk();
  const v = b.getState(new ValueStateDescriptor<string>('v'));
  const l = b.getState(new ListStateDescriptor<number>('l'));
  const m = b.getState(new MapStateDescriptor<string, number>('m'));
  const r = b.getState(new ReducingStateDescriptor<number>('r', (x, y) => x + y));
  const keys = ['a', 'b', 1, 2n, [1, 'x'], null, -0, new Date(5), new Uint8Array([1, 2])];
  keys.forEach((k, i) => {
    b.setCurrentKey(k);
    v.update(`v${i}`);
    l.addAll([i, i + 1]);
    m.put('k', i);
    r.add(i);
    r.add(10);
  });
  keys.forEach((k, i) => {
    b.setCurrentKey(k);
    assert.is(v.value(), `v${i}`);
    assert.equal(l.get(), [i, i + 1]);
    assert.is(m.get('k'), i);
    assert.is(r.get(), i + 10);
  });
  // equal composite keys address the same state; -0 and 0 are one key
  b.setCurrentKey([1, 'x']);
  assert.is(v.value(), 'v4');
  b.setCurrentKey(0);
  assert.is(v.value(), 'v6');
  assert.is(b.numKeys('v'), keys.length);
  assert.is(b.currentKeyGroup, keyGroupForKey(0, 128));
});

test('list state: get/add/addAll/update/clear', () => {
  const b = mk();
  const l = b.getState(new ListStateDescriptor<string>('l'));
  b.setCurrentKey(1);
  assert.equal(l.get(), []);
  l.add('a');
  l.addAll(['b', 'c']);
  const got = l.get();
  got.push('mutated copy');
  assert.equal(l.get(), ['a', 'b', 'c']);
  l.update(['z']);
  assert.equal(l.get(), ['z']);
  l.update([]);
  assert.equal(l.get(), []);
  assert.is(b.numKeys('l'), 0);
  l.add('q');
  l.clear();
  assert.equal(l.get(), []);
});

test('map state: all operations, composite user keys by content', () => {
  const b = mk();
  const m = b.getState(new MapStateDescriptor<unknown, number>('m'));
  b.setCurrentKey('k');
  assert.ok(m.isEmpty());
  m.put('a', 1);
  m.put([1, 2], 2);
  m.putAll([['c', 3], ['d', 4]]);
  m.putAll(new Map([['e', 5]]));
  assert.is(m.get([1, 2]), 2);
  assert.ok(m.contains('c'));
  assert.not.ok(m.contains('zz'));
  assert.equal([...m.keys()], ['a', [1, 2], 'c', 'd', 'e']);
  assert.equal([...m.values()], [1, 2, 3, 4, 5]);
  assert.equal([...m.entries()][1], [[1, 2], 2]);
  m.remove('a');
  assert.is(m.get('a'), undefined);
  // modifying while iterating is safe
  for (const k of m.keys()) m.remove(k);
  assert.ok(m.isEmpty());
  assert.is(b.numKeys('m'), 0);
  m.put('x', 1);
  m.clear();
  assert.ok(m.isEmpty());
});

test('reducing and aggregating state', () => {
  const b = mk();
  const r = b.getState(new ReducingStateDescriptor<number>('max', (a, x) => Math.max(a, x)));
  const avg = b.getState(
    new AggregatingStateDescriptor<number, { s: number; n: number }, number>('avg', {
      createAccumulator: () => ({ s: 0, n: 0 }),
      add: (v, a) => ({ s: a.s + v, n: a.n + 1 }),
      getResult: (a) => a.s / a.n,
    }),
  );
  b.setCurrentKey('x');
  assert.is(r.get(), undefined);
  assert.is(avg.get(), undefined);
  for (const v of [3, 9, 6]) {
    r.add(v);
    avg.add(v);
  }
  assert.is(r.get(), 9);
  assert.is(avg.get(), 6);
  r.clear();
  avg.clear();
  assert.is(r.get(), undefined);
  assert.is(avg.get(), undefined);
});

test('registration: same handle per name; kind mismatch, no current key, key outside range are errors', () => {
  const b = new HeapKeyedStateBackend({ maxParallelism: 128, keyGroupRange: keyGroupRangeForSubtask(128, 4, 0) });
  const d = new ValueStateDescriptor<number>('s');
  assert.is(b.getState(d), b.getState(new ValueStateDescriptor<number>('s')));
  assert.throws(() => b.getState(new ListStateDescriptor<number>('s')), (e: unknown) => e instanceof StateAccessError && /registered as value/.test((e as Error).message));
  assert.throws(() => b.getState(d).value(), (e: unknown) => e instanceof StateAccessError && /no current key/.test((e as Error).message));
  let outside: number | undefined;
  for (let k = 0; outside === undefined; k++) if (subtaskForKeyGroup(keyGroupForKey(k, 128), 4, 128) !== 0) outside = k;
  assert.throws(() => b.setCurrentKey(outside), (e: unknown) => e instanceof StateAccessError);
});

test('key-group ranges partition [0, maxParallelism) and agree with subtaskForKeyGroup', () => {
  for (const [m, p] of [[128, 1], [128, 3], [10, 10], [7, 3], [4096, 17]] as const) {
    let next = 0;
    for (let i = 0; i < p; i++) {
      const r = keyGroupRangeForSubtask(m, p, i);
      assert.is(r.start, next);
      for (let kg = r.start; kg < r.end; kg++) assert.is(subtaskForKeyGroup(kg, p, m), i);
      next = r.end;
    }
    assert.is(next, m);
  }
  assert.throws(() => keyGroupRangeForSubtask(8, 9, 0), (e: unknown) => e instanceof RangeError);
  assert.is(String(new KeyGroupRange(2, 5)), 'KeyGroupRange [2, 5)');
});

test('snapshot → restore round trip of every kind, registered before or after restore', () => {
  const b = mk();
  const v = b.getState(new ValueStateDescriptor<unknown>('v'));
  const l = b.getState(new ListStateDescriptor<number>('l'));
  const m = b.getState(new MapStateDescriptor<unknown, string>('m'));
  const r = b.getState(new ReducingStateDescriptor<number>('r', (x, y) => x + y));
  const a = b.getState(new AggregatingStateDescriptor<number, number[], number>('a', { createAccumulator: () => [], add: (x, acc) => [...acc, x], getResult: (acc) => acc.length }));
  const keys: unknown[] = ['a', 7, 2n ** 60n, [1, ['n', true]], new Uint8Array([9]), new Date(1e12)];
  keys.forEach((k, i) => {
    b.setCurrentKey(k);
    v.update({ i, nested: [i, 'x', null, { d: new Date(i) }], big: BigInt(i) });
    l.addAll([i, -i]);
    m.put([i, 'k'], `s${i}`);
    r.add(i);
    a.add(i);
    a.add(i);
  });
  const snap = b.snapshot();
  for (const registerFirst of [true, false]) {
    const c = mk();
    const reg = () => ({
      v: c.getState(new ValueStateDescriptor<unknown>('v')),
      l: c.getState(new ListStateDescriptor<number>('l')),
      m: c.getState(new MapStateDescriptor<unknown, string>('m')),
      r: c.getState(new ReducingStateDescriptor<number>('r', (x, y) => x + y)),
      a: c.getState(new AggregatingStateDescriptor<number, number[], number>('a', { createAccumulator: () => [], add: (x, acc) => [...acc, x], getResult: (acc) => acc.length })),
    });
    let h = registerFirst ? reg() : undefined;
    c.restore([snap]);
    h ??= reg();
    keys.forEach((k, i) => {
      c.setCurrentKey(k);
      assert.equal(h.v.value(), { i, nested: [i, 'x', null, { d: new Date(i) }], big: BigInt(i) });
      assert.equal(h.l.get(), [i, -i]);
      assert.equal([...h.m.entries()], [[[i, 'k'], `s${i}`]]);
      assert.is(h.r.get(), i);
      assert.is(h.a.get(), 2);
    });
    assert.equal(new Set(c.keys('v')).size, keys.length);
  }
});

test('unregistered restored state survives a second snapshot', () => {
  const b = mk();
  const v = b.getState(new ValueStateDescriptor<number>('v'));
  b.setCurrentKey('k');
  v.update(42);
  const c = mk();
  c.restore([b.snapshot()]);
  const d = mk();
  d.restore([c.snapshot()]); // c never registered 'v'
  d.setCurrentKey('k');
  assert.is(d.getState(new ValueStateDescriptor<number>('v')).value(), 42);
});

test('codecs convert values that MessagePack cannot encode; without one the error names the state', () => {
  const b = mk();
  const codec = { toPlain: (s: Set<string>) => [...s], fromPlain: (p: unknown) => new Set(p as string[]) };
  const s = b.getState(new ValueStateDescriptor<Set<string>>('set', { codec }));
  b.setCurrentKey(1);
  s.update(new Set(['x', 'y']));
  const c = mk();
  c.restore([b.snapshot()]);
  c.setCurrentKey(1);
  assert.equal([...c.getState(new ValueStateDescriptor<Set<string>>('set', { codec })).value()!], ['x', 'y']);

  const bad = mk();
  bad.getState(new ValueStateDescriptor<Map<string, number>>('plainMap'));
  bad.setCurrentKey(1);
  bad.getState(new ValueStateDescriptor<Map<string, number>>('plainMap')).update(new Map());
  assert.throws(() => bad.snapshot(), (e: unknown) => e instanceof StateSerializationError && /plainMap/.test((e as Error).message));
});

test('restore refuses other formats, corrupt bytes and another maxParallelism', () => {
  const b = mk();
  b.getState(new ValueStateDescriptor<number>('v'));
  b.setCurrentKey('k');
  b.getState(new ValueStateDescriptor<number>('v')).update(1);
  const snap = b.snapshot();
  assert.throws(() => new HeapKeyedStateBackend({ maxParallelism: 64 }).restore([snap]), (e: unknown) => e instanceof CorruptSnapshotError && /maxParallelism 128/.test((e as Error).message));
  assert.throws(() => mk().restore([snap.subarray(0, snap.length - 3)]), (e: unknown) => e instanceof CorruptSnapshotError);
  assert.throws(() => mk().restore([new Uint8Array([0x93, 1, 2, 3])]), (e: unknown) => e instanceof CorruptSnapshotError);
  const c = mk();
  c.getState(new ListStateDescriptor<number>('v'));
  assert.throws(() => c.restore([snap]), (e: unknown) => e instanceof StateAccessError);
});

test('snapshot of a key-group sub-range holds exactly those key groups', () => {
  const b = mk();
  const v = b.getState(new ValueStateDescriptor<number>('v'));
  for (let k = 0; k < 500; k++) {
    b.setCurrentKey(k);
    v.update(k);
  }
  const range = new KeyGroupRange(10, 50);
  const c = mk();
  c.restore([b.snapshot(range)]);
  const got = [...c.keys('v')].length + [...c.stateNames()].length * 0;
  const want = Array.from({ length: 500 }, (_, k) => k).filter((k) => range.contains(keyGroupForKey(k, 128))).length;
  c.getState(new ValueStateDescriptor<number>('v'));
  assert.is([...c.keys('v')].length, want);
  assert.ok(got >= 0);
});

test.run();
