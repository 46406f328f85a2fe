// Owns the jobs of the worker-executor tests (worker-executor.test.ts): defined with defineJob in a
// module of their own so that each worker thread can import it and build the same job.

import { count, defineJob, InvalidKeyError, InvalidTimestampError, JobDefinitionError, OutputTag, schema, sum, t, WatermarkStrategy } from '../../src/index.ts';
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

/** A generated row of {@link invalidKeys}: every `badEvery`-th has no key field `k`. */
export type KeyRow = { id: number; v: number; k?: string };

/**
 * keyBy('k', { invalidKeys: tag }) over a parallel source where some rows have no key: the keyed sums,
 * and the side output's InvalidKeyErrors rebalanced (so they cross workers) both as they are and as
 * seen by a map on the consuming worker (class, context, record, cause class).
 */
export const invalidKeys = defineJob(import.meta.url, (env, p: { n: number; badEvery: number }) => {
  const bad = new OutputTag<InvalidKeyError<KeyRow>>('bad-keys');
  const keyed = env
    .fromGenerator(p.n, (i): KeyRow => (i % p.badEvery === 3 ? { id: i, v: i } : { id: i, v: i, k: `k${i % 7}` }))
    .keyBy('k', { invalidKeys: bad });
  const side = keyed.getSideOutput(bad).rebalance();
  return {
    sums: keyed.sum('v').collect(),
    errors: side.collect(),
    seen: side
      .map(function describe(e) {
        return {
          isInvalidKeyError: e instanceof InvalidKeyError,
          causeIsJobDefinitionError: e.cause instanceof JobDefinitionError,
          name: e.name,
          message: e.message,
          reason: e.reason,
          context: e.context,
          record: e.record,
        };
      })
      .collect(),
  };
});

/**
 * Invalid event timestamps to a side output over a parallel source: the InvalidTimestampErrors are
 * rebalanced (so they cross workers) and described by a map on the consuming worker.
 */
export const invalidTimestamps = defineJob(import.meta.url, (env, p: { n: number; badEvery: number }) => {
  const bad = new OutputTag<InvalidTimestampError>('bad-ts');
  const stamped = env
    .fromGenerator(p.n, (i): { id: number; t: unknown } => ({ id: i, t: i % p.badEvery === 5 ? `t${i}` : i }))
    .assignTimestampsAndWatermarks(
      WatermarkStrategy.forBoundedOutOfOrderness<{ id: number; t: unknown }>(1000)
        .withTimestampAssigner((e) => e.t as number)
        .withInvalidTimestamps({ sideOutput: bad }),
    );
  return {
    good: stamped.collect(),
    seen: stamped
      .getSideOutput(bad)
      .rebalance()
      .map(function describe(e) {
        return { isInvalidTimestampError: e instanceof InvalidTimestampError, name: e.name, message: e.message, context: e.context, record: e.record as { id: number; t: unknown }, value: e.value };
      })
      .collect(),
  };
});
