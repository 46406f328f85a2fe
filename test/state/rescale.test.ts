// Tests rescaling of keyed state: snapshots of p subtasks restored into p' subtasks (1 → 3 → 2)
// keep every key's state exactly once, on the subtask that owns its key group (fast-check).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  BinaryKeyedStateBackend,
  HeapKeyedStateBackend,
  ListStateDescriptor,
  MapStateDescriptor,
  ValueStateDescriptor,
  keyGroupForKey,
  keyGroupRangeForSubtask,
  schema,
  t,
  subtaskForKeyGroup,
  type KeyedStateBackend,
} from '../../src/index.ts';
import { stateKeyOf } from '../../src/runtime/keyed-state.ts';

const MAXP = 64;
const rowSchema = schema({ n: t.i64(), s: t.string() });

type Make = (range: ReturnType<typeof keyGroupRangeForSubtask>) => KeyedStateBackend;
const heap: Make = (keyGroupRange) => new HeapKeyedStateBackend({ maxParallelism: MAXP, keyGroupRange });
const binary: Make = (keyGroupRange) => new BinaryKeyedStateBackend({ maxParallelism: MAXP, keyGroupRange });

function rescale(old: KeyedStateBackend[], p: number, make: Make): KeyedStateBackend[] {
  const snaps = old.map((b) => b.snapshot());
  return Array.from({ length: p }, (_, i) => {
    const b = make(keyGroupRangeForSubtask(MAXP, p, i));
    b.restore(snaps);
    return b;
  });
}

const keyArb = fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: -1e6, max: 1e6 }), fc.tuple(fc.integer({ min: 0, max: 9 }), fc.string({ maxLength: 3 })));

test('heap: 1 → 3 → 2 subtasks keeps every key exactly once, on its owner (value, list, map)', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(keyArb, fc.integer()), { selector: ([k]) => stateKeyOf(k), maxLength: 120 }), (kvs) => {
      const dv = () => new ValueStateDescriptor<number>('v');
      const dl = () => new ListStateDescriptor<number>('l');
      const dm = () => new MapStateDescriptor<string, number>('m');
      const [one] = [heap(keyGroupRangeForSubtask(MAXP, 1, 0))];
      for (const [k, v] of kvs) {
        one!.setCurrentKey(k);
        one!.getState(dv()).update(v);
        one!.getState(dl()).addAll([v, v + 1]);
        one!.getState(dm()).put('x', v);
      }
      let gen = [one!];
      for (const p of [3, 2]) {
        gen = rescale(gen, p, heap);
        const seen = new Map<unknown, number>();
        gen.forEach((b, i) => {
          b.getState(dv());
          b.getState(dl());
          b.getState(dm());
          for (const k of b.keys('v')) {
            seen.set(stateKeyOf(k), (seen.get(stateKeyOf(k)) ?? 0) + 1);
            assert.is(subtaskForKeyGroup(keyGroupForKey(k, MAXP), p, MAXP), i);
          }
        });
        assert.is(seen.size, kvs.length);
        for (const c of seen.values()) assert.is(c, 1);
        for (const [k, v] of kvs) {
          const b = gen[subtaskForKeyGroup(keyGroupForKey(k, MAXP), p, MAXP)]!;
          b.setCurrentKey(k);
          assert.is(b.getState(dv()).value(), v);
          assert.equal(b.getState(dl()).get(), [v, v + 1]);
          assert.is(b.getState(dm()).get('x'), v);
        }
      }
    }),
    { numRuns: 60 },
  );
});

test('binary: 1 → 3 → 2 subtasks keeps every key exactly once, on its owner', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.tuple(keyArb, fc.integer(), fc.string()), { selector: ([k]) => stateKeyOf(k), maxLength: 120 }), (kvs) => {
      const d = ValueStateDescriptor.ofSchema('row', rowSchema);
      const one = binary(keyGroupRangeForSubtask(MAXP, 1, 0));
      for (const [k, n, s] of kvs) {
        one.setCurrentKey(k);
        one.getState(d).update({ n, s });
      }
      let gen = [one];
      for (const p of [3, 2]) {
        gen = rescale(gen, p, binary);
        let total = 0;
        gen.forEach((b) => {
          b.getState(d);
          total += [...b.keys('row')].length;
        });
        assert.is(total, kvs.length);
        for (const [k, n, s] of kvs) {
          const b = gen[subtaskForKeyGroup(keyGroupForKey(k, MAXP), p, MAXP)]!;
          b.setCurrentKey(k);
          assert.equal(b.getState(d).value(), { n, s });
        }
      }
    }),
    { numRuns: 40 },
  );
});

test.run();
