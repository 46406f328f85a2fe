// Tests jobs run on worker threads (defineJob(...).run({ workers })): subtasks spread over real
// workers (worker_threads on Node, Web Workers on Deno and Bun) with credit-based channels between
// them give the same results as one thread — keyed sums and event-time windows for parallelism 1, 2
// and 4 and any buffer timeout; a failure in a worker fails the job with its typed error naming the
// operator and record; cancel stops an unbounded job; a slow consumer backpressures its producer; a
// builder that builds a different graph in a worker is refused.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobCancelledError, JobDefinitionError, ManualClock, UserFunctionError } from '../../src/index.ts';
import { workersForRuntime } from '../../src/platform/workers.ts';
import { events, reference, sortWins } from '../fixtures/event-time.ts';
import { endless, failing, nondeterministic, slowSink, windows, wordCount } from './worker-jobs.ts';

const supported = workersForRuntime().supported;

/** The final count per word: the largest running sum seen for it. */
function finalCounts(rows: { w: string; n: number }[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const r of rows) m[r.w] = Math.max(m[r.w] ?? 0, r.n);
  return m;
}

test('a keyed sum on 2 workers equals the one-thread run, record for record', async () => {
  if (!supported) return;
  const params = { words: 20_000, keys: 97 };
  const one = await wordCount.run({ params, environment: { parallelism: 4 } });
  const two = await wordCount.run({ params, workers: 2, environment: { parallelism: 4 } });
  const a = one.outputs.counts.results;
  const b = two.outputs.counts.results;
  assert.is(b.length, 20_000);
  assert.equal(finalCounts(b), finalCounts(a));
  // every running sum, not only the final ones: the same multiset of (word, count)
  const key = (r: { w: string; n: number }): string => `${r.w}:${r.n}`;
  assert.equal(b.map(key).sort(), a.map(key).sort());
  const sum = two.result.operators.find((o) => o.name.startsWith('Sum'));
  assert.is(sum?.recordsIn, 20_000);
  assert.is(sum?.parallelism, 4);
});

test('event-time windows on workers: same result for parallelism 1, 2, 4 and buffer timeouts -1, 0, 1, 100 ms', async () => {
  if (!supported) return;
  const params = { n: 4000, seed: 11 };
  const want = reference(events(params.n, 13, 40, params.seed));
  for (const parallelism of [1, 2, 4]) {
    for (const bufferTimeoutMs of [-1, 0, 1, 100]) {
      if (parallelism === 1 && bufferTimeoutMs !== 100) continue;
      const { outputs } = await windows.run({ params, workers: 2, environment: { parallelism, bufferTimeoutMs, batchSize: 64 } });
      assert.equal(sortWins(outputs.out.results), want, `parallelism ${parallelism}, bufferTimeoutMs ${bufferTimeoutMs}`);
    }
  }
});

test('a record that fails in a worker fails the job with its typed error, naming the operator and record', async () => {
  if (!supported) return;
  try {
    await failing.run({ params: { bad: 777 }, workers: 2, environment: { parallelism: 2 } });
    assert.unreachable('the job should fail');
  } catch (e) {
    assert.instance(e, UserFunctionError);
    const err = e as UserFunctionError;
    assert.match(err.message, /bad record 777/);
    assert.is(err.context.operator, 'Map(explode)');
    assert.type(err.context.recordIndex, 'number');
  }
});

test('cancel stops an unbounded job running on workers', async () => {
  if (!supported) return;
  const job = endless.start({ workers: 2, environment: { parallelism: 2 } });
  // wait until records flow on the workers (metrics come from them)
  for (let i = 0; i < 200 && !(job.metrics().find((m) => m.name.startsWith('Sum'))?.recordsIn ?? 0); i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok((job.metrics().find((m) => m.name.startsWith('Sum'))?.recordsIn ?? 0) > 0, 'records reached the workers');
  job.cancel('enough');
  try {
    await job.result;
    assert.unreachable('a cancelled job rejects');
  } catch (e) {
    assert.instance(e, JobCancelledError);
  }
});

test('a slow consumer on another worker backpressures the source instead of growing memory', async () => {
  if (!supported) return;
  const { result } = await slowSink.run({ params: { n: 20_000 }, workers: 2, environment: { parallelism: 2, batchSize: 64, bufferTimeoutMs: 0 }, networkMemory: 1 << 20 });
  const source = result.operators.find((o) => o.name.startsWith('Source'));
  assert.is(source?.recordsOut, 20_000);
  assert.ok((source?.backpressureMs ?? 0) > 0, `the source was backpressured (${source?.backpressureMs} ms)`);
});

test('a builder that builds another graph in a worker is refused', async () => {
  if (!supported) return;
  try {
    await nondeterministic.run({ workers: 2, environment: { parallelism: 2 } });
    assert.unreachable('the job should fail');
  } catch (e) {
    assert.instance(e, JobDefinitionError);
    assert.match((e as Error).message, /different job graph/);
  }
});

test("workers: 'auto' runs on the cores there are (at most the widest parallelism), with the same result", async () => {
  if (!supported) return;
  const params = { words: 5000, keys: 31 };
  const one = await wordCount.run({ params, environment: { parallelism: 2 } });
  const auto = await wordCount.run({ params, workers: 'auto', environment: { parallelism: 2 } });
  assert.equal(finalCounts(auto.outputs.counts.results), finalCounts(one.outputs.counts.results));
});

test('where the runtime has no workers (workerd), run() runs the job on the calling thread', async () => {
  const spawner = { supported: false, reason: 'no threads here', spawn: () => Promise.reject(new Error('must not be called')) };
  const { outputs } = await wordCount.run({ params: { words: 1000, keys: 7 }, workers: 2, environment: { parallelism: 2 }, spawner });
  assert.is(outputs.counts.results.length, 1000);
});

test('bad worker counts and a ManualClock with workers are refused', async () => {
  assert.throws(() => wordCount.start({ workers: 0 }), (e: unknown) => e instanceof JobDefinitionError);
  assert.throws(() => wordCount.start({ workers: 1.5 }), (e: unknown) => e instanceof JobDefinitionError);
  if (!supported) return;
  assert.throws(
    () => wordCount.start({ params: { words: 10, keys: 2 }, workers: 2, environment: { parallelism: 2, clock: new ManualClock(0) } }),
    (e: unknown) => e instanceof JobDefinitionError && /clock/.test((e as Error).message),
  );
});

test.run();
