// Tests operator state: even-split vs union redistribution of list state on rescaling, and
// broadcast state (replicated, read-only on the non-broadcast side).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ListStateDescriptor, MapStateDescriptor, OperatorStateBackend, StateAccessError } from '../../src/index.ts';

function oldSubtasks(): Uint8Array[] {
  return [0, 1].map((i) => {
    const b = new OperatorStateBackend({ subtask: i });
    b.getListState(new ListStateDescriptor<string>('split')).addAll([`${i}a`, `${i}b`, `${i}c`]);
    b.getUnionListState(new ListStateDescriptor<string>('union')).add(`u${i}`);
    b.getBroadcastState(new MapStateDescriptor<string, number>('rules')).putAll([['r1', 1], ['r2', 2]]);
    return b.snapshot();
  });
}

test('list state: even split gives each element to exactly one new subtask; union gives all to all', () => {
  const snaps = oldSubtasks();
  const p = 4;
  const split: string[][] = [];
  for (let i = 0; i < p; i++) {
    const b = new OperatorStateBackend();
    b.restore(snaps, i, p);
    split.push(b.getListState(new ListStateDescriptor<string>('split')).get());
    assert.equal(b.getUnionListState(new ListStateDescriptor<string>('union')).get(), ['u0', 'u1']);
  }
  assert.equal(split.flat(), ['0a', '0b', '0c', '1a', '1b', '1c']);
  for (const s of split) assert.ok(s.length === 1 || s.length === 2);
});

test('list state handle: get/add/addAll/update/clear; mode mismatch is an error', () => {
  const b = new OperatorStateBackend();
  const l = b.getListState(new ListStateDescriptor<number>('l'));
  l.add(1);
  l.addAll([2, 3]);
  assert.equal(l.get(), [1, 2, 3]);
  l.update([9]);
  assert.equal(l.get(), [9]);
  l.clear();
  assert.equal(l.get(), []);
  assert.throws(() => b.getUnionListState(new ListStateDescriptor<number>('l')), (e: unknown) => e instanceof StateAccessError);
  const c = new OperatorStateBackend();
  c.restore(oldSubtasks(), 0, 1);
  assert.throws(() => c.getUnionListState(new ListStateDescriptor<string>('split')), (e: unknown) => e instanceof StateAccessError);
});

test('broadcast state is replicated on restore and read-only on the non-broadcast side', () => {
  const snaps = oldSubtasks();
  for (let i = 0; i < 3; i++) {
    const b = new OperatorStateBackend({ operator: 'Co(rules)', subtask: i });
    b.restore(snaps, i, 3);
    const d = new MapStateDescriptor<string, number>('rules');
    const ro = b.getReadOnlyBroadcastState(d);
    assert.equal([...ro.entries()], [['r1', 1], ['r2', 2]]);
    assert.is(ro.get('r2'), 2);
    assert.ok(ro.contains('r1'));
    const w = ro as unknown as { put(k: string, v: number): void; remove(k: string): void; clear(): void; putAll(e: unknown): void };
    for (const write of [() => w.put('x', 1), () => w.remove('r1'), () => w.clear(), () => w.putAll([])]) {
      assert.throws(write, (e: unknown) => e instanceof StateAccessError && /read-only/.test((e as Error).message) && /Co\(rules\)/.test((e as Error).message));
    }
    const rw = b.getBroadcastState(d);
    rw.put('r3', 3);
    assert.is(ro.get('r3'), 3); // the view sees the broadcast side's writes
    rw.remove('r1');
    assert.is(ro.size, 2);
  }
});

test('operator snapshot rejects keyed snapshots and TTL', () => {
  const b = new OperatorStateBackend();
  assert.throws(() => b.restore([new Uint8Array([0xc0])], 0, 1), (e: unknown) => e instanceof Error && /not an operator-state snapshot/.test((e as Error).message));
  const d = new ListStateDescriptor<number>('t');
  d.ttl = undefined;
  assert.ok(b.getListState(d));
});

test.run();
