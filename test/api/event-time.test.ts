// Tests event time end to end: timestamp assignment, watermarks through tasks (valve minimum, idleness,
// end of input), keyed process functions with state and timers (order, dedup, processing time on a
// manual clock), side outputs, invalid timestamps, and results independent of parallelism and batch size.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  InvalidTimestampError,
  type KeyedProcessFunction,
  ManualClock,
  MapStateDescriptor,
  MAX_WATERMARK,
  OutputTag,
  StreamEnvironment,
  UserFunctionError,
  ValueStateDescriptor,
  type ValueState,
  type MapState,
  WatermarkStrategy,
} from '../../src/index.ts';

import { type Ev, events, reference, sortWins as sort, W, windowSum } from '../fixtures/event-time.ts';

test('event-time windows via keyed process: same result for parallelism 1, 2, 4 and any batch size', async () => {
  const evs = events(5000, 13, 40, 7);
  const want = reference(evs);
  for (const parallelism of [1, 2, 4]) {
    for (const batchSize of [1, 7, 1024]) {
      const env = StreamEnvironment.create({ parallelism, batchSize });
      const got = await env
        .fromCollection(evs)
        .assignTimestampsAndWatermarks(WatermarkStrategy.forBoundedOutOfOrderness<Ev>(40).withTimestampAssigner((e) => e.ts))
        .keyBy('key')
        .process(windowSum())
        .executeAndCollect();
      assert.equal(sort(got), want, `parallelism ${parallelism}, batch ${batchSize}`);
    }
  }
});

test('a window fires when the watermark passes it, in timestamp order, before later records', async () => {
  // one key; the watermark trails by 0: each window fires as soon as a record of the next one arrives
  const evs: Ev[] = [0, 10, 49, 50, 60, 120, 130, 200].map((ts) => ({ key: 'a', ts, v: 1 }));
  const env = StreamEnvironment.create({ batchSize: 1 });
  const seen: string[] = [];
  env
    .fromCollection(evs)
    .assignTimestampsAndWatermarks(WatermarkStrategy.forMonotonousTimestamps<Ev>().withTimestampAssigner((e) => e.ts).withAutoWatermarkInterval(0))
    .keyBy('key')
    .process<string>({
      processElement(e, ctx, out) {
        ctx.timerService().registerEventTimeTimer(Math.floor(e.ts / W) * W + W - 1);
        out.collect(`rec ${e.ts} wm ${ctx.timerService().currentWatermark()}`);
      },
      onTimer(ts, ctx, out) {
        out.collect(`fire ${ts} ${ctx.timeDomain()} ts=${ctx.timestamp()}`);
      },
    })
    .addSink((s) => seen.push(s));
  await env.execute();
  // monotonous: watermark = last timestamp - 1, emitted per batch (punctuated-like, interval 0 = never periodic;
  // so only the end-of-input MAX watermark fires timers here)
  assert.equal(seen.filter((s) => s.startsWith('fire')), ['fire 49 event-time ts=49', 'fire 99 event-time ts=99', 'fire 149 event-time ts=149', 'fire 249 event-time ts=249']);
});

test('punctuated watermarks fire timers between records', async () => {
  const evs: Ev[] = [5, 20, 55, 70, 140].map((ts) => ({ key: 'a', ts, v: 1 }));
  const env = StreamEnvironment.create({ batchSize: 1 });
  const seen: string[] = [];
  env
    .fromCollection(evs)
    .assignTimestampsAndWatermarks(WatermarkStrategy.forPunctuated<Ev>((_e, ts) => ts).withTimestampAssigner((e) => e.ts))
    .keyBy('key')
    .process<string>({
      processElement(e, ctx, out) {
        ctx.timerService().registerEventTimeTimer(e.ts + 10);
        ctx.timerService().registerEventTimeTimer(e.ts + 10); // the same timer once
        out.collect(`rec ${e.ts}`);
      },
      onTimer(ts, _ctx, out) {
        out.collect(`fire ${ts}`);
      },
    })
    .addSink((s) => seen.push(s));
  await env.execute();
  assert.equal(seen, ['rec 5', 'rec 20', 'fire 15', 'rec 55', 'fire 30', 'rec 70', 'fire 65', 'rec 140', 'fire 80', 'fire 150']);
});

test('end of input fires pending event-time timers (MAX watermark), also in batch mode', async () => {
  for (const runtimeMode of ['streaming', 'batch'] as const) {
    const env = StreamEnvironment.create({ runtimeMode, parallelism: 2 });
    const got = await env
      .fromCollection([{ key: 'x', ts: 1, v: 1 }, { key: 'y', ts: 2, v: 2 }])
      .assignTimestampsAndWatermarks(WatermarkStrategy.noWatermarks<Ev>().withTimestampAssigner((e) => e.ts))
      .keyBy('key')
      .process<string>({
        processElement(e, ctx) {
          ctx.timerService().registerEventTimeTimer(1_000_000 + e.v);
        },
        onTimer(ts, ctx, out) {
          out.collect(`${ctx.getCurrentKey()}@${ts}`);
        },
      })
      .executeAndCollect();
    assert.equal(got.sort(), ['x@1000001', 'y@1000002'], runtimeMode);
  }
});

test('an operator watermark is the minimum over its inputs (union of a fast and a slow source)', async () => {
  const fast = Array.from({ length: 50 }, (_, i) => ({ key: 'f', ts: 1000 + i * 100, v: 0 }));
  const slow = Array.from({ length: 5 }, (_, i) => ({ key: 's', ts: i * 10, v: 0 }));
  const env = StreamEnvironment.create({ batchSize: 4 });
  const strat = WatermarkStrategy.forPunctuated<Ev>((_e, ts) => ts).withTimestampAssigner((e) => e.ts);
  const a = env.fromCollection(fast, { name: 'fast' }).assignTimestampsAndWatermarks(strat);
  const b = env.fromCollection(slow, { name: 'slow' }).assignTimestampsAndWatermarks(strat);
  const seen: [string, number][] = [];
  a.union(b)
    .process<[string, number]>({
      processElement(e, ctx, out) {
        out.collect([e.key, ctx.timerService().currentWatermark()]);
      },
    })
    .addSink((w) => seen.push(w));
  await env.execute();
  const wms = seen.map(([, w]) => w);
  assert.ok(wms.every((w, i) => i === 0 || w >= wms[i - 1]!), 'watermarks never go back');
  // until the slow input's last record, the watermark is held at or below the slow input's timestamps
  const lastSlow = seen.map(([k]) => k).lastIndexOf('s');
  assert.ok(lastSlow > 0);
  assert.ok(wms.slice(0, lastSlow + 1).every((w) => w <= 40), `held: ${wms.slice(0, lastSlow + 1).join(',')}`);
  // once it ended, the fast input alone drives it
  assert.ok(wms.slice(lastSlow + 1).some((w) => w > 1000));
});

test('late records go to a side output; the main output keeps the on-time ones', async () => {
  const late = new OutputTag<Ev>('late');
  const evs: Ev[] = [
    { key: 'a', ts: 10, v: 1 },
    { key: 'a', ts: 120, v: 1 },
    { key: 'a', ts: 20, v: 5 }, // window [0,50) already fired: late
    { key: 'a', ts: 130, v: 1 },
  ];
  const env = StreamEnvironment.create({ batchSize: 1 });
  const main = env
    .fromCollection(evs)
    .assignTimestampsAndWatermarks(WatermarkStrategy.forPunctuated<Ev>((_e, ts) => ts).withTimestampAssigner((e) => e.ts))
    .keyBy('key')
    .process(windowSum(late));
  const lateOut = main.getSideOutput(late).collect();
  const mainOut = main.collect();
  await env.execute();
  assert.equal(lateOut.results, [{ key: 'a', ts: 20, v: 5 }]);
  assert.equal(sort(mainOut.results), [
    { key: 'a', end: 50, sum: 1, count: 1 },
    { key: 'a', end: 150, sum: 2, count: 2 },
  ]);
});

test('a timestamp that cannot be assigned fails the job naming the operator and record', async () => {
  const env = StreamEnvironment.create();
  env
    .fromCollection<{ t: unknown }>([{ t: 1 }, { t: 'x' }])
    .assignTimestampsAndWatermarks(WatermarkStrategy.forMonotonousTimestamps<{ t: unknown }>().withTimestampAssigner((e) => e.t as number))
    .collect();
  try {
    await env.execute();
    assert.unreachable('should fail');
  } catch (e) {
    assert.instance(e, InvalidTimestampError);
    const err = e as InvalidTimestampError;
    assert.is(err.context.operator, 'Timestamps/Watermarks');
    assert.equal(err.record, { t: 'x' });
  }
});

test('invalid timestamps can go to a side output as errors holding the record', async () => {
  const bad = new OutputTag<InvalidTimestampError>('bad-ts');
  const env = StreamEnvironment.create({ parallelism: 2 });
  const s = env
    .fromCollection<{ t: unknown }>([{ t: 1 }, { t: Number.NaN }, { t: 3 }, { t: 'late' }])
    .assignTimestampsAndWatermarks(
      WatermarkStrategy.forMonotonousTimestamps<{ t: unknown }>()
        .withTimestampAssigner((e) => e.t as number)
        .withInvalidTimestamps({ sideOutput: bad }),
    );
  const bads = s.getSideOutput(bad).map((e) => e.record as { t: unknown }).collect();
  const good = s.collect();
  await env.execute();
  assert.equal(good.results.map((r) => r.t).sort(), [1, 3]);
  assert.equal(bads.results.map((r) => String(r.t)).sort(), ['NaN', 'late']);
});

test('processing-time timers fire on the job clock, through the mailbox', async () => {
  const clock = new ManualClock(1000);
  const env = StreamEnvironment.create({ clock, batchSize: 1 }); // a record per round: the clock moves between them
  const seen: string[] = [];
  // the source advances the clock as it is read: deterministic processing time
  env
    .fromGenerator(6, (i) => {
      clock.advance(100);
      return { key: i % 2 === 0 ? 'even' : 'odd', i };
    })
    .keyBy('key')
    .process<string>({
      processElement(e, ctx, out) {
        const now = ctx.timerService().currentProcessingTime();
        ctx.timerService().registerProcessingTimeTimer(now + 150);
        out.collect(`rec ${e.i} at ${now}`);
      },
      onTimer(ts, ctx, out) {
        out.collect(`fire ${ctx.getCurrentKey()} ${ts} ${ctx.timeDomain()}`);
      },
    })
    .addSink((s) => seen.push(s));
  await env.execute();
  const fires = seen.filter((s) => s.startsWith('fire'));
  // every timer fires after the clock passed it; none twice; the job ends without waiting for the rest
  assert.ok(fires.length > 0, 'some timers fired before the input ended');
  assert.ok(fires.every((f) => f.endsWith('processing-time')));
  assert.is(new Set(fires).size, fires.length);
});

test('keyed state is per key and per subtask copy of the function', async () => {
  const env = StreamEnvironment.create({ parallelism: 3 });
  const got = await env
    .fromCollection(Array.from({ length: 300 }, (_, i) => ({ key: `k${i % 10}`, v: i })))
    .keyBy('key')
    .process<[string, number]>({
      count: undefined as unknown as ValueState<number>,
      open(ctx) {
        this.count = ctx.getState(new ValueStateDescriptor<number>('count'));
      },
      processElement(e, ctx, out) {
        const n = (this.count.value() ?? 0) + 1;
        this.count.update(n);
        if (n === 30) out.collect([ctx.getCurrentKey(), n]);
      },
    } as KeyedProcessFunction<string, { key: string; v: number }, [string, number]> & { count: ValueState<number> })
    .executeAndCollect();
  assert.equal(got.sort(), Array.from({ length: 10 }, (_, i) => [`k${i}`, 30] as [string, number]).sort());
});

test('timers and keyed state on a non-keyed stream are refused with a typed error', async () => {
  const env = StreamEnvironment.create();
  env
    .fromCollection([1])
    .process<number>({
      processElement(_v, ctx) {
        ctx.timerService().registerEventTimeTimer(5);
      },
    })
    .collect();
  try {
    await env.execute();
    assert.unreachable();
  } catch (e) {
    assert.match(String(e), /keyed stream/);
  }
});

test('a process function that throws fails the job naming the operator and record', async () => {
  const env = StreamEnvironment.create();
  env
    .fromCollection([1, 2, 3])
    .process<number>({
      processElement(v, _ctx, out) {
        if (v === 3) throw new Error('boom');
        out.collect(v);
      },
    })
    .name('explode')
    .collect();
  try {
    await env.execute();
    assert.unreachable();
  } catch (e) {
    assert.instance(e, UserFunctionError);
    assert.is((e as UserFunctionError).context.operator, 'explode');
    assert.is((e as UserFunctionError).context.recordIndex, 2);
  }
});

test('idleness: an idle input stops holding back the watermark', async () => {
  const clock = new ManualClock(0);
  const env = StreamEnvironment.create({ clock, batchSize: 1 });
  const strat = WatermarkStrategy.forPunctuated<Ev>((_e, ts) => ts).withTimestampAssigner((e) => e.ts).withIdleness(100).withAutoWatermarkInterval(10);
  // the busy source advances the clock; the quiet one emits once and then nothing for a long time
  const busy = env.fromGenerator(40, (i) => {
    clock.advance(10);
    return { key: 'b', ts: 1000 + i * 10, v: i };
  });
  let quietPolls = 0;
  const quiet = env.fromSource<Ev>(
    {
      bounded: true,
      replayable: false,
      createReader: () => ({
        poll(out) {
          quietPolls++;
          if (quietPolls === 1) out.push({ key: 'q', ts: 5, v: 0 });
          return clock.now() < 400;
        },
      }),
    },
    'quiet',
  );
  const wms: number[] = [];
  busy
    .assignTimestampsAndWatermarks(strat)
    .union(quiet.assignTimestampsAndWatermarks(strat))
    .process<number>({
      processElement(_e, ctx, out) {
        out.collect(ctx.timerService().currentWatermark());
      },
    })
    .addSink((w) => wms.push(w));
  await env.execute();
  // without idleness the watermark would stay at 5 (the quiet input) until it ends
  assert.ok(wms.some((w) => w > 1000 && w < MAX_WATERMARK), `watermarks seen: ${wms.slice(-5).join(',')}`);
});

test.run();
