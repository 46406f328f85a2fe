// Tests running jobs: executeAsync with live metrics, cancelling an unbounded rate-limited generator,
// and async sinks that make producers wait (the job's memory stays bounded by the round).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobCancelledError, MIN_WATERMARK, StreamEnvironment, WatermarkStrategy } from '../../src/index.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('an unbounded rate-limited generator runs until cancelled; metrics are live', async () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  const rate = 2000;
  env
    .fromGenerator(Infinity, (i) => ({ k: i % 5, i }), { ratePerSecond: rate })
    .assignTimestampsAndWatermarks(WatermarkStrategy.forIngestionTime<{ k: number; i: number }>().withAutoWatermarkInterval(5))
    .keyBy('k')
    .sum('i')
    .addSink(() => undefined);
  const started = Date.now();
  const job = env.executeAsync('ticker');
  await sleep(150);
  const m = job.metrics();
  const src = m.find((o) => o.name === 'Source: Generator')!;
  const sum = m.find((o) => o.name === 'Sum(i)')!;
  assert.ok(src.recordsOut > 0, 'the source produced records');
  assert.ok(sum.recordsIn > 0, 'the keyed sum received records');
  assert.ok(sum.currentWatermark > MIN_WATERMARK, 'watermarks reached the keyed operator');
  assert.ok(sum.watermarkLagMs !== undefined && sum.watermarkLagMs >= 0);
  assert.not.ok(job.isDone);
  job.cancel();
  try {
    await job.result;
    assert.unreachable('a cancelled job rejects');
  } catch (e) {
    assert.instance(e, JobCancelledError);
  }
  assert.ok(job.isDone);
  const elapsed = Date.now() - started;
  const produced = job.metrics().find((o) => o.name === 'Source: Generator')!.recordsOut;
  // the rate limit is an upper bound (a slow machine produces fewer)
  assert.ok(produced <= (rate * (elapsed + 50)) / 1000 + 2, `produced ${produced} in ${elapsed} ms`);
});

test('an abort signal cancels execute() of an unbounded job', async () => {
  const env = StreamEnvironment.create();
  env.fromGenerator(Infinity, (i) => i, { ratePerSecond: 1000 }).addSink(() => undefined);
  const ctl = new AbortController();
  const running = env.execute('forever', { signal: ctl.signal });
  await sleep(20);
  ctl.abort();
  try {
    await running;
    assert.unreachable();
  } catch (e) {
    assert.instance(e, JobCancelledError);
    assert.match((e as Error).message, /'forever' was cancelled/);
  }
});

test('an async sink throttles the job: records wait in bounded queues', async () => {
  const env = StreamEnvironment.create({ parallelism: 2, batchSize: 64 });
  const got: number[] = [];
  let maxBacklog = 0;
  env
    .fromGenerator(2000, (i) => i, { parallelism: 1 })
    .rebalance()
    .map((x) => x * 2)
    .addSink(async (v) => {
      if (v % 256 === 0) {
        maxBacklog = Math.max(maxBacklog, ...job.metrics().map((m) => m.outputBacklog ?? 0));
        await sleep(1);
      }
      got.push(v);
    });
  const job = env.executeAsync();
  await job.result;
  assert.is(got.length, 2000);
  // a channel past its capacity (a batch) pauses the source: nothing piles up behind the slow sink
  // (each of the source's 2 channels holds at most its capacity plus the push that crossed it)
  assert.ok(maxBacklog <= 2 * (64 + 64), `backlog ${maxBacklog}`);
});

test('a failing async sink fails the job naming the sink and record', async () => {
  const env = StreamEnvironment.create();
  env.fromCollection([1, 2, 3]).addSink(async function store(v) {
    await sleep(0);
    if (v === 2) throw new Error('disk full');
  });
  try {
    await env.execute();
    assert.unreachable();
  } catch (e) {
    assert.match(String(e), /disk full/);
    assert.is((e as { context: { operator: string; recordIndex: number } }).context.operator, 'Sink: store');
    assert.is((e as { context: { recordIndex: number } }).context.recordIndex, 1);
  }
});

test('cancel stops a job whose async sink never answers', async () => {
  const env = StreamEnvironment.create();
  env.fromCollection([1, 2, 3]).addSink(() => new Promise(() => undefined));
  const job = env.executeAsync('stuck');
  // keep the event loop alive while the job is stuck, then cancel it
  const timer = setTimeout(() => job.cancel(), 20);
  try {
    await job.result;
    assert.unreachable();
  } catch (e) {
    assert.instance(e, JobCancelledError);
  } finally {
    clearTimeout(timer);
  }
});

test.run();
