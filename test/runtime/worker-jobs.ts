// Owns the jobs of the worker-executor tests (worker-executor.test.ts): defined with defineJob in a
// module of their own so that each worker thread can import it and build the same job.

import { defineJob, MapStateDescriptor, type KeyedProcessFunction, type MapState, WatermarkStrategy } from '../../src/index.ts';

export interface Ev {
  key: string;
  ts: number;
  v: number;
}

export type WinOut = { key: string; end: number; sum: number; count: number };

export const WINDOW = 50;

/** Seeded xorshift: the same data in the parent and in every worker. */
export function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** Events with timestamps roughly increasing, out of order by at most `disorder` ms. */
export function events(n: number, keys: number, disorder: number, seed: number): Ev[] {
  const r = rng(seed);
  const out: Ev[] = [];
  for (let i = 0; i < n; i++) out.push({ key: `k${Math.floor(r() * keys)}`, ts: i * 3 + Math.floor(r() * disorder), v: Math.floor(r() * 100) });
  return out;
}

/** A tumbling event-time window sum as a keyed process function (state + event-time timers). */
function windowSum(): KeyedProcessFunction<string, Ev, WinOut> & { wins?: MapState<number, [number, number]> } {
  return {
    open(ctx) {
      this.wins = ctx.getState(new MapStateDescriptor<number, [number, number]>('windows'));
    },
    processElement(e, ctx) {
      const end = Math.floor(e.ts / WINDOW) * WINDOW + WINDOW;
      const cur = this.wins!.get(end) ?? [0, 0];
      this.wins!.put(end, [cur[0] + e.v, cur[1] + 1]);
      ctx.timerService().registerEventTimeTimer(end - 1);
    },
    onTimer(ts, ctx, out) {
      const end = ts + 1;
      const [sum, count] = this.wins!.get(end)!;
      this.wins!.remove(end);
      out.collect({ key: ctx.getCurrentKey(), end, sum, count });
    },
  };
}

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
