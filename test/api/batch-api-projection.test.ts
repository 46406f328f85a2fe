// Tests the projection of join.with(fn, { left, right }) on every runtime: the function gets records
// with just the named fields (keys only when named), the pairs are those of the unprojected join for
// every join type that has `with` (hybrid hash and sort-merge, parallelism 1 and 2, nulls, a hot
// key), a projected outer side that is missing is still null (also when the projection leaves only
// nullable fields, and when it names no field at all), and naming an unknown field is a
// JobDefinitionError. The types: a field not named is not on the record (checked by tsc). Also the
// automatic projections: aggregates encode their group and aggregated fields only, semi / anti joins
// the right side's keys only.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configureBatchRuntime, count, JobDefinitionError, schema, StreamEnvironment, sum, t, type JoinHints } from '../../src/index.ts';
import { batchCleanupSettled } from '../../src/operators/batch/batch-operators.ts';
import { forSeeds } from '../reference/random.ts';

const USERS = schema({ id: t.i64().nullable(), name: t.string(), tier: t.i32().nullable(), bio: t.string().nullable() });
const ORDERS = schema({ oid: t.i64(), user: t.i64().nullable(), amount: t.f64(), note: t.string().nullable() });
type User = { id: number | null; name: string; tier: number | null; bio: string | null };
type Order = { oid: number; user: number | null; amount: number; note: string | null };

function env(p: number, managedMemory = '2mb'): StreamEnvironment {
  const e = StreamEnvironment.create({ runtimeMode: 'batch', parallelism: p, managedMemory });
  configureBatchRuntime(e, {});
  return e;
}

const canon = (rows: readonly unknown[]) => rows.map((r) => JSON.stringify(r)).sort();

test('with(fn, fields): the function sees only the named fields; same pairs as without a projection', async () => {
  await forSeeds('batch-api/projection', 2, async (rng) => {
    const users: User[] = Array.from({ length: 3000 }, (_, i) => ({
      id: rng.bool(0.05) ? null : i % 1000 === 0 ? 7 : rng.int(2500),
      name: `u${i}`,
      tier: rng.bool(0.3) ? null : rng.int(4),
      bio: rng.bool(0.5) ? null : 'x'.repeat(rng.int(200)),
    }));
    const orders: Order[] = Array.from({ length: 12000 }, (_, i) => ({
      oid: i,
      user: rng.bool(0.05) ? null : rng.bool(0.2) ? 7 : rng.int(3000),
      amount: rng.int(10000) / 4,
      note: rng.bool(0.5) ? null : `n${rng.int(100)}-${'y'.repeat(rng.int(100))}`,
    }));
    for (const p of [1, 2]) {
      for (const hints of [{}, { strategy: 'sort-merge' }] as JoinHints[]) {
        const e = env(p, '8mb'); // 8 joins
        const u = e.fromCollection(users).withSchema(USERS);
        const o = e.fromCollection(orders).withSchema(ORDERS);
        const seen = new Set<string>();
        const keysOf = (x: object | null) => (x === null ? '-' : Object.keys(x).join(','));
        const note = (l: object | null, r: object | null) => seen.add(`${keysOf(l)}|${keysOf(r)}`);
        const inner = o.join(u, hints).where('user').equalTo('id');
        const full = o.fullOuterJoin(u, hints).where('user').equalTo('id');
        const left = o.leftOuterJoin(u, hints).where('user').equalTo('id');
        const right = o.rightOuterJoin(u, hints).where('user').equalTo('id');
        const got = [
          inner.with((a, b) => (note(a, b), `${a.oid}:${b.name}`), { left: ['oid'], right: ['name'] }).collect(),
          full.with((a, b) => (note(a, b), `${a?.amount ?? '-'}:${b?.tier ?? '-'}`), { left: ['amount'], right: ['tier'] }).collect(),
          left.with((a, b) => (note(a, b), `${a.note}:${b === null ? '-' : b.id}`), { left: ['note'], right: ['id'] }).collect(),
          right.with((a, b) => (note(a, b), `${a === null ? '-' : a.oid}:${b.bio?.length}`), { right: ['bio'] }).collect(),
        ];
        const want = [
          inner.with((a, b) => `${a.oid}:${b.name}`).collect(),
          full.with((a, b) => `${a?.amount ?? '-'}:${b?.tier ?? '-'}`).collect(),
          left.with((a, b) => `${a.note}:${b === null ? '-' : b.id}`).collect(),
          right.with((a, b) => `${a === null ? '-' : a.oid}:${b.bio?.length}`).collect(),
        ];
        await e.execute();
        for (let i = 0; i < got.length; i++) {
          assert.ok(want[i]!.results.length > 0);
          assert.equal(canon(got[i]!.results), canon(want[i]!.results), `join ${i} p=${p} ${JSON.stringify(hints)}`);
        }
        // the records had just the named fields (a side without a list: all of its fields)
        assert.equal(
          [...seen].sort(),
          ['-|tier', 'amount|-', 'amount|tier', 'note|-', 'note|id', 'oid|name', '-|bio', 'oid,user,amount,note|bio'].sort(),
          `record shapes p=${p}: ${[...seen].sort().join(" ")}`,
        );
      }
    }
  });
  await batchCleanupSettled();
});

test('with(fn, fields): a missing outer side is null also when its projection is all nullable or empty', async () => {
  const A = schema({ k: t.string().nullable(), a: t.i32(), c: t.i32().nullable() });
  const B = schema({ k: t.string().nullable(), b: t.i32(), d: t.i32().nullable() });
  const as = [{ k: 'x', a: 1, c: null }, { k: null, a: 2, c: 5 }, { k: 'y', a: 3, c: null }];
  const bs = [{ k: 'x', b: 10, d: null }, { k: 'z', b: 40, d: 4 }, { k: null, b: 50, d: null }];
  for (const p of [1, 2]) {
    const e = env(p, '4mb');
    const l = e.fromCollection(as).withSchema(A);
    const r = e.fromCollection(bs).withSchema(B);
    // only nullable fields (c, d, and the nullable keys) are encoded: a marker tells a missing side apart
    const nullable = l.fullOuterJoin(r).where('k').equalTo('k').with((x, y) => ({ x, y }), { left: ['c'], right: ['d'] }).collect();
    const empty = l.fullOuterJoin(r).where('k').equalTo('k').with((x, y) => ({ x, y }), { left: [], right: [] }).collect();
    await e.execute();
    assert.equal(canon(nullable.results), canon([
      { x: { c: null }, y: { d: null } },
      { x: { c: 5 }, y: null },
      { x: { c: null }, y: null },
      { x: null, y: { d: 4 } },
      { x: null, y: { d: null } },
    ]), `all-nullable projection p=${p}`);
    assert.equal(canon(empty.results), canon([
      { x: {}, y: {} },
      { x: {}, y: null },
      { x: {}, y: null },
      { x: null, y: {} },
      { x: null, y: {} },
    ]), `empty projection p=${p}`);
  }
  await batchCleanupSettled();
});

test('aggregates and semi / anti joins encode only the fields they read (a wrong value elsewhere is never looked at)', async () => {
  const S = schema({ k: t.i64(), v: t.f64(), junk: t.string() });
  // `junk` does not hold strings: encoding it would be a FieldValueError
  const rows = Array.from({ length: 5000 }, (_, i) => ({ k: i % 7, v: i / 2, junk: i as unknown as string }));
  const keys = [{ k: 1, junk: 5 as unknown as string, v: 0 }, { k: 3, junk: null as unknown as string, v: 0 }];
  for (const p of [1, 2]) {
    const e = env(p, '8mb');
    const s = e.fromCollection(rows).withSchema(S);
    const k = e.fromCollection(keys).withSchema(S);
    const agg = s.groupBy('k').aggregate({ n: count(), total: sum('v') }).collect();
    const all = s.groupBy().aggregate({ n: count() }).collect();
    // the left side of a semi / anti join is emitted whole: it is encoded whole
    const l = e.fromCollection(rows.map((r) => ({ ...r, junk: 'ok' }))).withSchema(S);
    const semi = l.semiJoin(k).where('k').equalTo('k').map((r) => r.k).collect();
    const anti = l.antiJoin(k).where('k').equalTo('k').map((r) => r.k).collect();
    await e.execute();
    const want = new Map<number, { n: number; total: number }>();
    for (const r of rows) {
      const g = want.get(r.k) ?? { n: 0, total: 0 };
      g.n++;
      g.total += r.v;
      want.set(r.k, g);
    }
    assert.equal(new Map(agg.results.map((g) => [g.k, { n: g.n, total: g.total }])), want, `aggregate p=${p}`);
    assert.equal(all.results, [{ n: rows.length }], `global count p=${p}`);
    assert.is(semi.results.length, rows.filter((r) => r.k === 1 || r.k === 3).length, `semi p=${p}`);
    assert.is(anti.results.length, rows.filter((r) => r.k !== 1 && r.k !== 3).length, `anti p=${p}`);
  }
  await batchCleanupSettled();
});

test('with(fn, fields): an unknown field is a JobDefinitionError naming it', () => {
  const e = env(1);
  const u = e.fromCollection([] as User[]).withSchema(USERS);
  const o = e.fromCollection([] as Order[]).withSchema(ORDERS);
  const j = o.join(u).where('user').equalTo('id');
  // @ts-expect-error: not a field of the right side
  assert.throws(() => j.with((a, b) => [a, b], { right: ['nope'] }), (err: unknown) => err instanceof JobDefinitionError && /nope/.test(err.message));
  // @ts-expect-error: not an array
  assert.throws(() => j.with((a, b) => [a, b], { left: 'oid' }), (err: unknown) => err instanceof JobDefinitionError);
  // types: a field not named is not on the record
  // @ts-expect-error: amount was not named
  j.with((a) => a.amount, { left: ['oid'] });
});

test.run();
