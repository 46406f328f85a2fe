// Owns the jobs of the worker-executor tests (worker-executor.test.ts): defined with defineJob in a
// module of their own so that each worker thread can import it and build the same job.

import { count, defineJob, schema, sum, t, WatermarkStrategy } from '../../src/index.ts';
import { type Ev, events, windowSum } from '../fixtures/event-time.ts';

export { events, rng, W as WINDOW, type Ev, type WinOut } from '../fixtures/event-time.ts';

/** Word count: a keyed running sum over generated words (the last value per key is the count). */
export const wordCount = defineJob(import.meta.url, (env, p: { words: number; keys: number }) => ({
  counts: env
    .fromGenerator(p.words, (i) => ({ w: `w${(i * 7919) % p.keys}`, n: 1 }))
    .keyBy((r) => r.w)
    .sum('n')
    .collect(),
}));

/** Event-time windows over a generated out-of-order stream, from several source subtasks. */
export const windows = defineJob(import.meta.url, (env, p: { n: number; seed: number }) => {
  const evs = events(p.n, 13, 40, p.seed);
  return {
    out: env
      .fromCollection(evs)
      .assignTimestampsAndWatermarks(WatermarkStrategy.forBoundedOutOfOrderness<Ev>(40).withTimestampAssigner((e) => e.ts))
      .keyBy('key')
      .process(windowSum())
      .collect(),
  };
});

/** A map that throws on one record (the job must fail naming the operator and record). */
export const failing = defineJob(import.meta.url, (env, p: { bad: number }) => ({
  out: env
    .fromGenerator(1000, (i) => i)
    .rebalance()
    .map(function explode(x: number) {
      if (x === p.bad) throw new Error(`bad record ${x}`);
      return x;
    })
    .collect(),
}));

/** An unbounded generator into a keyed sum: runs until cancelled. */
export const endless = defineJob(import.meta.url, (env) => {
  env
    .fromGenerator(Infinity, (i) => ({ k: i % 10, n: 1 }), { ratePerSecond: 20_000 })
    .keyBy((r) => r.k)
    .sum('n')
    .addSink(() => undefined);
});

/** A slow async sink behind a fast source across workers: the source is backpressured. */
export const slowSink = defineJob(import.meta.url, (env, p: { n: number }) => {
  let seen = 0;
  env
    .fromGenerator(p.n, (i) => ({ i, pad: 'x'.repeat(200) }), { parallelism: 1 })
    .rebalance()
    .addSink(async () => {
      if (++seen % 50 === 0) await new Promise((r) => setTimeout(r, 1));
    })
    .setParallelism(2);
});

/** A builder whose graph depends on something other than its params (refused on workers). */
export const nondeterministic = defineJob(import.meta.url, (env) => ({
  out: env
    .fromCollection([1, 2, 3])
    .map((x) => x)
    .setParallelism(1 + Math.floor(Math.random() * 1e9) % 97)
    .collect(),
}));

/**
 * A batch group-by on workers with a small managed-memory budget (it spills), optionally followed by a
 * map that fails on one group (to check that a failing worker leaves no spill files behind).
 */
export const spillingGroupBy = defineJob(import.meta.url, (env, p: { rows: number; keys: number; failOn?: number }) => {
  const rows = env
    .fromGenerator(p.rows, (i) => ({ k: (i * 7919) % p.keys, v: i % 1000, pad: `row ${i}`.padEnd(64, '.') }))
    .withSchema(schema({ k: t.i64(), v: t.i64(), pad: t.string() }));
  const totals = rows.groupBy('k').aggregate({ n: count(), total: sum('v') });
  return {
    out: totals
      .map(function check(r) {
        if (r.k === p.failOn) throw new Error(`group ${r.k} is cursed`);
        return r;
      })
      .collect(),
  };
});
