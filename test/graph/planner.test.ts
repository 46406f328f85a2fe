// Tests the batch optimizer's pure decisions (src/graph/planner.ts): ship strategy by cost (broadcast the
// small side vs repartition both), reuse of an existing hash partitioning (one or both sides, subsets
// of the keys), which sides may be broadcast per join type, the local strategy (sort-merge for inputs
// sorted on the keys or both larger than managed memory, else hybrid hash), the build side, hints,
// group-by reuse, and the explain text.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobDefinitionError } from '../../src/core/errors.ts';
import {
  describeJoin,
  describeOneShip,
  planGroupBy,
  planJoinStrategy,
  reusablePartitioning,
  type JoinPlanInput,
  type PhysicalProps,
} from '../../src/graph/planner.ts';

const MB = 1 << 20;
const isDefinitionError = (e: unknown) => e instanceof JobDefinitionError;
const props = (p: Partial<PhysicalProps> = {}): PhysicalProps => ({ parallelism: 4, estimate: {}, ...p });
const join = (over: Partial<JoinPlanInput> = {}) =>
  planJoinStrategy({ type: 'inner', left: props(), right: props(), leftKeys: ['k'], rightKeys: ['id'], parallelism: 4, managedMemoryBytes: 256 * MB, ...over });

test('unknown sizes: repartition both by the keys, build side decided at run time', () => {
  const s = join();
  assert.equal(s.left, { kind: 'hash', fields: ['k'] });
  assert.equal(s.right, { kind: 'hash', fields: ['id'] });
  assert.is(s.local, 'hybrid-hash');
  assert.is(s.buildSide, 'smaller');
  assert.is(describeJoin('inner', s), 'HybridHashJoin(inner, build=smaller, ship=HASH)');
});

test('a small side is broadcast when that moves less than repartitioning both', () => {
  const s = join({ left: props({ estimate: { rows: 1_000_000 } }), right: props({ estimate: { rows: 1000 } }) });
  assert.equal(s.left, { kind: 'forward' });
  assert.equal(s.right, { kind: 'broadcast' });
  assert.is(s.buildSide, 'right');
  assert.is(describeJoin('inner', s, 'k = id'), 'HybridHashJoin(inner, k = id, build=right, ship=BROADCAST right)');
  assert.ok(s.reasons[0]!.includes('broadcast right 4,000 rows'), s.reasons.join('; '));
  // the left side small: broadcast left for inner joins
  const l = join({ left: props({ estimate: { rows: 10 } }), right: props({ estimate: { rows: 1e6 } }) });
  assert.equal(l.left, { kind: 'broadcast' });
  assert.is(l.buildSide, 'left');
});

test('two sides of similar size are repartitioned; the smaller builds', () => {
  const s = join({ left: props({ estimate: { rows: 5000 } }), right: props({ estimate: { rows: 4000 } }) });
  assert.is(s.left.kind, 'hash');
  assert.is(s.right.kind, 'hash');
  assert.is(s.buildSide, 'right');
  const t = join({ left: props({ estimate: { rows: 3000 } }), right: props({ estimate: { rows: 4000 } }) });
  assert.is(t.buildSide, 'left');
});

test('bytes are compared when known (rows × row width otherwise)', () => {
  // fewer rows on the right, but wider: left is smaller in bytes
  const s = join({ left: props({ estimate: { rows: 5000 }, rowBytes: 16 }), right: props({ estimate: { rows: 4000 }, rowBytes: 400 }) });
  assert.is(s.buildSide, 'left');
  assert.ok(s.reasons[0]!.includes('bytes'));
});

test('outer joins never broadcast the side they keep whole', () => {
  const small = props({ estimate: { rows: 10 } });
  const big = props({ estimate: { rows: 1e7 } });
  assert.is(join({ type: 'left', left: big, right: small }).right.kind, 'broadcast');
  assert.is(join({ type: 'left', left: small, right: big }).left.kind, 'hash', 'left join cannot broadcast left');
  assert.is(join({ type: 'right', left: small, right: big }).left.kind, 'broadcast');
  assert.is(join({ type: 'right', left: big, right: small }).right.kind, 'hash');
  assert.is(join({ type: 'full', left: big, right: small }).right.kind, 'hash');
  assert.is(join({ type: 'full', left: small, right: big }).left.kind, 'hash');
  assert.is(join({ type: 'semi', left: big, right: small }).right.kind, 'broadcast');
  assert.is(join({ type: 'anti', left: small, right: big }).left.kind, 'hash');
  assert.throws(() => join({ type: 'full', hints: { ship: 'broadcast-right' } }), (e: unknown) => e instanceof JobDefinitionError && /cannot broadcast its right/.test((e as Error).message));
  assert.throws(() => join({ type: 'left', hints: { ship: 'broadcast-left' } }), isDefinitionError);
});

test('an input already hash-partitioned by the key is reused; its partner is partitioned the same way', () => {
  const s = join({ left: props({ partitionedBy: ['k'] }) });
  assert.equal(s.left, { kind: 'forward', reused: ['k'] });
  assert.equal(s.right, { kind: 'hash', fields: ['id'] });
  assert.is(describeJoin('inner', s), 'HybridHashJoin(inner, build=smaller, ship=HASH right, reuse left HASH(k))');
  // both partitioned: nothing moves
  const b = join({ left: props({ partitionedBy: ['k'] }), right: props({ parallelism: 'edge', partitionedBy: ['id'] }) });
  assert.equal(b.left, { kind: 'forward', reused: ['k'] });
  assert.equal(b.right, { kind: 'forward', reused: ['id'] });
  // at another parallelism the partitioning does not hold
  const c = join({ left: props({ parallelism: 2, partitionedBy: ['k'] }) });
  assert.is(c.left.kind, 'hash');
});

test('a partitioning on a subset of composite keys is reused at the matching key positions', () => {
  const s = join({ leftKeys: ['a', 'b'], rightKeys: ['x', 'y'], left: props({ partitionedBy: ['b'] }) });
  assert.equal(s.left, { kind: 'forward', reused: ['b'] });
  assert.equal(s.right, { kind: 'hash', fields: ['y'] });
  assert.equal(reusablePartitioning(props({ partitionedBy: ['b', 'a'] }), ['a', 'b'], 4), [1, 0]);
  assert.is(reusablePartitioning(props({ partitionedBy: ['c'] }), ['a', 'b'], 4), undefined);
  // both partitioned, but at different key positions: one side is repartitioned
  const m = join({ leftKeys: ['a', 'b'], rightKeys: ['x', 'y'], left: props({ partitionedBy: ['a'] }), right: props({ partitionedBy: ['y'] }) });
  assert.equal(m.left, { kind: 'forward', reused: ['a'] });
  assert.equal(m.right, { kind: 'hash', fields: ['x'] });
});

test('reuse makes repartitioning cheaper than a broadcast of a middling side', () => {
  // left already partitioned (moves 0), right 1000 rows: repartition right = 1000 < broadcast = 4000
  const s = join({ left: props({ estimate: { rows: 1e6 }, partitionedBy: ['k'] }), right: props({ estimate: { rows: 1000 } }) });
  assert.equal(s.left, { kind: 'forward', reused: ['k'] });
  assert.is(s.right.kind, 'hash');
});

test('parallelism 1: everything forward', () => {
  const s = join({ parallelism: 1, left: props({ parallelism: 1 }), right: props({ parallelism: 3 }) });
  assert.equal([s.left, s.right], [{ kind: 'forward' }, { kind: 'forward' }]);
  assert.is(describeJoin('left', s), 'HybridHashJoin(left, build=smaller, ship=FORWARD)');
});

test('inputs sorted on the keys (forward, same parallelism) make a sort-merge join without sorting', () => {
  const sorted = (f: string, desc = false) => [{ field: f, desc, nullsFirst: false }];
  const s = join({ left: props({ partitionedBy: ['k'], sortedBy: sorted('k') }), right: props({ partitionedBy: ['id'], sortedBy: sorted('id') }) });
  assert.is(s.local, 'sort-merge');
  assert.equal(s.sorted, { left: true, right: true });
  assert.is(describeJoin('inner', s), 'SortMergeJoin(inner, ship=FORWARD (reuse HASH(k) / HASH(id)), sorted=both)');
  // descending on both: the order is kept
  const d = join({ left: props({ partitionedBy: ['k'], sortedBy: sorted('k', true) }), right: props({ partitionedBy: ['id'], sortedBy: sorted('id', true) }) });
  assert.equal(d.order, [{ desc: true, nullsFirst: false }]);
  // one side repartitioned: its order is lost, so hybrid hash
  const h = join({ left: props({ partitionedBy: ['k'], sortedBy: sorted('k') }), right: props({ sortedBy: sorted('id') }) });
  assert.is(h.local, 'hybrid-hash');
  // sorted on another field: no
  const o = join({ left: props({ partitionedBy: ['k'], sortedBy: sorted('z') }), right: props({ partitionedBy: ['id'], sortedBy: sorted('id') }) });
  assert.is(o.local, 'hybrid-hash');
  // directions disagree: no
  const x = join({ left: props({ partitionedBy: ['k'], sortedBy: sorted('k', true) }), right: props({ partitionedBy: ['id'], sortedBy: sorted('id') }) });
  assert.is(x.local, 'hybrid-hash');
});

test('both inputs larger than the managed memory: sort-merge (a sorted side is not sorted again)', () => {
  const big = (rows: number) => props({ estimate: { bytes: rows } });
  const s = join({ left: big(600 * MB), right: big(500 * MB), managedMemoryBytes: 256 * MB });
  assert.is(s.local, 'sort-merge');
  assert.equal(s.sorted, { left: false, right: false });
  assert.ok(s.reasons.some((r) => r.includes('exceed')));
  assert.is(join({ left: big(600 * MB), right: big(100 * MB) }).local, 'hybrid-hash');
});

test('hints override the optimizer', () => {
  const s = join({ left: props({ estimate: { rows: 1e6 } }), right: props({ estimate: { rows: 10 } }), hints: { ship: 'repartition', local: 'sort-merge', build: 'left' } });
  assert.is(s.left.kind, 'hash');
  assert.is(s.local, 'sort-merge');
  assert.is(s.buildSide, 'left');
  const b = join({ hints: { ship: 'broadcast-left' } });
  assert.is(b.left.kind, 'broadcast');
  assert.is(b.buildSide, 'left');
  assert.throws(() => join({ leftKeys: ['a', 'b'] }), isDefinitionError);
});

test('group-by: reuse a partitioning on a subset of the keys, else hash; global aggregates at parallelism 1', () => {
  const reuse = planGroupBy({ input: props({ parallelism: 'edge', partitionedBy: ['sym'] }), keys: ['sym', 'day'], parallelism: 4 });
  assert.equal(reuse.ship, { kind: 'forward', reused: ['sym'] });
  assert.is(describeOneShip(reuse.ship), 'ship=FORWARD (reuse HASH(sym))');
  const hash = planGroupBy({ input: props({ partitionedBy: ['other'] }), keys: ['sym'], parallelism: 4 });
  assert.equal(hash.ship, { kind: 'hash', fields: ['sym'] });
  assert.is(describeOneShip(hash.ship), 'ship=HASH(sym)');
  assert.equal(planGroupBy({ input: props({ parallelism: 2, partitionedBy: ['sym'] }), keys: ['sym'], parallelism: 4 }).ship.kind, 'hash');
  assert.equal(planGroupBy({ input: props(), keys: ['sym'], parallelism: 1 }).ship, { kind: 'forward' });
  assert.equal(planGroupBy({ input: props(), keys: [], parallelism: 1 }).ship, { kind: 'forward' });
  assert.throws(() => planGroupBy({ input: props(), keys: [], parallelism: 2 }), isDefinitionError);
});

test.run();
