// Tests keyed streams: hash partitioning, and sum/min/max/minBy/maxBy/reduce in streaming and batch
// mode against plain-JS references, across parallelisms, plus a seeded property test of keyed sum.

import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type RuntimeMode, StreamEnvironment, hashJsKey, keyGroupOf, subtaskForKeyGroup } from '../../src/index.ts';

interface Trade {
  id: number;
  sym: string;
  px: number;
  qty: number;
}

const SYMS = ['AAPL', 'MSFT', 'GOOG', 'AMZN', 'TSLA', 'NVDA', 'META'];
const trades: Trade[] = Array.from({ length: 3000 }, (_, i) => ({
  id: i,
  sym: SYMS[(i * 31 + (i >> 3)) % SYMS.length]!,
  px: ((i * 7919) % 1000) / 10,
  qty: (i % 17) + 1,
}));

const byKey = <T>(xs: T[], key: (t: T) => string): Map<string, T[]> => {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const l = m.get(k);
    if (l) l.push(x);
    else m.set(k, [x]);
  }
  return m;
};

const sortById = <T extends { id: number }>(xs: T[]): T[] => [...xs].sort((a, b) => a.id - b.id);
const sortBySym = <T extends { sym: string }>(xs: T[]): T[] => [...xs].sort((a, b) => (a.sym < b.sym ? -1 : a.sym > b.sym ? 1 : 0));

type Agg = 'sum' | 'min' | 'max' | 'minBy' | 'maxBy' | 'reduce';

/** Plain JS rolling aggregate per key: the list of emitted records (streaming) in input order. */
function reference(input: Trade[], agg: Agg): Trade[] {
  const acc = new Map<string, Trade>();
  const out: Trade[] = [];
  for (const t of input) {
    const a = acc.get(t.sym);
    let next: Trade;
    if (!a) next = t;
    else if (agg === 'sum') next = { ...a, px: a.px + t.px };
    else if (agg === 'min') next = { ...a, px: Math.min(a.px, t.px) };
    else if (agg === 'max') next = { ...a, px: Math.max(a.px, t.px) };
    else if (agg === 'minBy') next = t.px < a.px ? t : a;
    else if (agg === 'maxBy') next = t.px > a.px ? t : a;
    else next = { ...a, qty: a.qty + t.qty, px: Math.max(a.px, t.px) };
    acc.set(t.sym, next);
    out.push(next);
  }
  return out;
}

function job(env: StreamEnvironment, agg: Agg, input: Trade[], sourceParallelism?: number) {
  const keyed = env.fromCollection(input, sourceParallelism ? { parallelism: sourceParallelism } : {}).keyBy('sym');
  switch (agg) {
    case 'sum':
      return keyed.sum('px');
    case 'min':
      return keyed.min('px');
    case 'max':
      return keyed.max('px');
    case 'minBy':
      return keyed.minBy('px');
    case 'maxBy':
      return keyed.maxBy('px');
    case 'reduce':
      return keyed.reduce((a, b) => ({ ...a, qty: a.qty + b.qty, px: Math.max(a.px, b.px) }));
  }
}

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
function assertSameTrades(actual: Trade[], expected: Trade[], msg: string): void {
  assert.is(actual.length, expected.length, `${msg}: count`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(a.sym === e.sym && a.id === e.id && a.qty === e.qty && close(a.px, e.px), `${msg}: ${JSON.stringify(a)} != ${JSON.stringify(e)}`);
  }
}

for (const agg of ['sum', 'min', 'max', 'minBy', 'maxBy', 'reduce'] as Agg[]) {
  for (const mode of ['streaming', 'batch'] as RuntimeMode[]) {
    test(`${agg} in ${mode} mode matches plain JS at parallelism 1, 2 and 4`, async () => {
      const ref = reference(trades, agg);
      const want = byKey(ref, (t) => t.sym);
      const finals = sortBySym([...want.values()].map((l) => l[l.length - 1]!));
      for (const p of [1, 2, 4]) {
        // one source subtask: every key's records reach its aggregate in input order, so results are exact
        const env = StreamEnvironment.create({ parallelism: p, runtimeMode: mode });
        const out = await job(env, agg, trades, 1).executeAndCollect();
        if (mode === 'batch') {
          assertSameTrades(sortBySym(out), finals, `p=${p}`);
        } else {
          assert.is(out.length, trades.length);
          const got = byKey(out, (t) => t.sym);
          assert.equal([...got.keys()].sort(), [...want.keys()].sort());
          for (const [k, l] of want) assertSameTrades(got.get(k)!, l, `p=${p} key ${k}`);
        }
        // parallel source: the interleaving differs, the aggregated values per key do not
        const env2 = StreamEnvironment.create({ parallelism: p, runtimeMode: mode });
        const out2 = await job(env2, agg, trades).executeAndCollect();
        assert.is(out2.length, mode === 'batch' ? want.size : trades.length);
        const last = new Map(out2.map((t) => [t.sym, t] as const));
        for (const f of finals) {
          const g = last.get(f.sym)!;
          assert.ok(close(g.px, f.px) && (agg !== 'reduce' || g.qty === f.qty), `p=${p} parallel source, key ${f.sym}`);
        }
      }
    });
  }
}

test('keyed records land on the subtask their key group maps to', async () => {
  const env = StreamEnvironment.create({ parallelism: 4, maxParallelism: 16 });
  const where: { sym: string; subtask: number }[] = [];
  env
    .fromCollection(trades)
    .keyBy((t) => t.sym)
    .sum('qty')
    .addSink({ invoke: (t, ctx) => void where.push({ sym: t.sym, subtask: ctx.subtaskIndex }) });
  await env.execute();
  for (const w of where) assert.is(w.subtask, subtaskForKeyGroup(keyGroupOf(hashJsKey(w.sym), 16), 4, 16));
});

test('composite and numeric keys, bigint sums', async () => {
  const env = StreamEnvironment.create({ parallelism: 2, runtimeMode: 'batch' });
  const rows = Array.from({ length: 200 }, (_, i) => ({ a: i % 2, b: i % 3 === 0, n: BigInt(i) }));
  const out = await env
    .fromCollection(rows)
    .keyBy((r) => [r.a, r.b])
    .sum('n')
    .executeAndCollect();
  const ref = new Map<string, bigint>();
  for (const r of rows) ref.set(`${r.a}|${r.b}`, (ref.get(`${r.a}|${r.b}`) ?? 0n) + r.n);
  assert.is(out.length, 4);
  for (const o of out) assert.is(o.n, ref.get(`${o.a}|${o.b}`));
});

test('streaming sum keeps the other fields of the first record (Flink semantics)', async () => {
  const env = StreamEnvironment.create();
  const out = await env
    .fromCollection([
      { k: 'a', tag: 'first', n: 1 },
      { k: 'a', tag: 'second', n: 2 },
      { k: 'b', tag: 'third', n: 5 },
    ])
    .keyBy('k')
    .sum('n')
    .executeAndCollect();
  assert.equal(out, [
    { k: 'a', tag: 'first', n: 1 },
    { k: 'a', tag: 'first', n: 3 },
    { k: 'b', tag: 'third', n: 5 },
  ]);
});

test('a map after a keyed aggregate, and two keyBys in a row', async () => {
  const env = StreamEnvironment.create({ parallelism: 3, runtimeMode: 'batch' });
  const out = await env
    .fromGenerator(1000, (i) => ({ k: i % 10, n: 1 }))
    .keyBy('k')
    .sum('n')
    .map((r) => ({ bucket: r.k % 2, n: r.n }))
    .keyBy('bucket')
    .sum('n')
    .executeAndCollect();
  assert.equal(
    out.sort((a, b) => a.bucket - b.bucket),
    [
      { bucket: 0, n: 500 },
      { bucket: 1, n: 500 },
    ],
  );
});

test('property: keyed sum equals a plain-JS group-by, any parallelism and batch size (seeded)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ k: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constantFrom('x', 'y', '')), v: fc.integer({ min: -1000, max: 1000 }) }), {
        maxLength: 300,
      }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 64 }),
      fc.constantFrom<RuntimeMode>('streaming', 'batch'),
      async (rows, parallelism, batchSize, mode) => {
        const env = StreamEnvironment.create({ parallelism, batchSize, runtimeMode: mode, maxParallelism: 32 });
        const out = await env.fromCollection(rows).keyBy('k').sum('v').executeAndCollect();
        const ref = new Map<string | number, number>();
        for (const r of rows) ref.set(r.k, (ref.get(r.k) ?? 0) + r.v);
        if (mode === 'streaming') {
          if (out.length !== rows.length) return false;
          const last = new Map<string | number, number>();
          for (const o of out) last.set(o.k, o.v);
          return last.size === ref.size && [...ref].every(([k, v]) => last.get(k) === v);
        }
        return out.length === ref.size && out.every((o) => ref.get(o.k) === o.v);
      },
    ),
    { seed: 20240611, numRuns: 150 },
  );
});

test.run();
