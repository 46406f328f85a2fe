// Tests how the executor waits for sources whose data arrives asynchronously (SourceReader.ready()):
// it sleeps on the reader's promise instead of polling in a loop, the stall check does not fire while
// a source waits for I/O, synchronous readers are polled every round as before, and a job whose
// source never becomes ready can be cancelled.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StreamEnvironment, type SourceReader, type SourceSpec } from '../../src/index.ts';
import { buildExecutionGraph } from '../../src/graph/execution-graph.ts';
import { executeGraph } from '../../src/runtime/executor.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Counted {
  polls: number;
  readyCalls: number;
}

/**
 * A source whose `n` records arrive `delayMs` after open (a timer), handed out `chunk` at a time;
 * with `withReady`, the reader reports the pending timer through ready().
 */
function delayedSource(n: number, delayMs: number, withReady: boolean, counts: Counted): SourceSpec<number> {
  return {
    bounded: true,
    replayable: false,
    createReader(): SourceReader<number> {
      let arrived: Promise<void> | undefined;
      let data: number[] | undefined;
      let next = 0;
      const reader: SourceReader<number> = {
        open() {
          arrived = sleep(delayMs).then(() => {
            data = Array.from({ length: n }, (_, i) => i);
          });
        },
        poll(out, max) {
          counts.polls++;
          if (data === undefined) return true; // nothing yet, not finished
          while (next < data.length && max-- > 0) out.push(data[next++]!);
          return next < data.length;
        },
      };
      if (withReady) {
        reader.ready = () => {
          counts.readyCalls++;
          return data === undefined ? arrived : undefined;
        };
      }
      return reader;
    },
  };
}

test('a source whose data arrives after 200 ms: right results, few polls while waiting', async () => {
  const counts = { polls: 0, readyCalls: 0 };
  const env = StreamEnvironment.create({ parallelism: 1 });
  const out = env.fromSource(delayedSource(5000, 200, true, counts), 'Source: Delayed').map((x) => x * 2).collect();
  await env.execute();
  assert.is(out.results.length, 5000);
  assert.is(out.results[4999], 9998);
  // polls: 1 before the data arrives, 1 after the wake-up per batch of 1024, the last one ends
  assert.ok(counts.polls < 50, `polled ${counts.polls} times`);
  assert.ok(counts.readyCalls >= 1);
});

test('several waiting sources (parallel subtasks and another pipeline still busy): each sleeps', async () => {
  const counts = { polls: 0, readyCalls: 0 };
  const env = StreamEnvironment.create({ parallelism: 3, batchSize: 64 });
  const delayed = env.fromSource(delayedSource(1000, 150, true, counts), 'Source: Delayed').map((x) => ({ k: x % 7, v: x })).keyBy('k').sum('v').collect();
  const busy = env.fromGenerator(100_000, (i) => ({ k: i % 10, v: 1 })).keyBy('k').sum('v').collect();
  const ticks = env.fromSource(delayedSource(10, 50, true, { polls: 0, readyCalls: 0 }), 'Source: Early').collect();
  await env.execute();
  assert.is(busy.results.length, 100_000);
  assert.is(delayed.results.length, 3000); // rolling sums: one per record of the 3 subtasks
  assert.is(ticks.results.length, 30); // every one of the 3 subtasks reads the 10 records
  // 3 subtasks × (1000 / 64 + a few) polls, however long the generator keeps the executor busy
  assert.ok(counts.polls < 3 * 30, `polled ${counts.polls} times`);
});

test('ready() answering undefined, or no ready(): polled every round as before (sync sources unchanged)', async () => {
  const withUndefined = { polls: 0, readyCalls: 0 };
  const spec = delayedSource(100, 60, true, withUndefined);
  const env = StreamEnvironment.create({ parallelism: 1 });
  // a reader that has ready() but always answers undefined behaves like one without it
  const wrapped: SourceSpec<number> = {
    ...spec,
    createReader(s, p) {
      const r = spec.createReader(s, p);
      return { open: (ctx) => r.open?.(ctx), poll: (o, m) => r.poll(o, m), ready: () => undefined };
    },
  };
  const a = env.fromSource(wrapped, 'Source: Undefined').collect();
  const plain = { polls: 0, readyCalls: 0 };
  const b = env.fromSource(delayedSource(100, 60, false, plain), 'Source: Plain').collect();
  await env.execute();
  assert.is(a.results.length, 100);
  assert.is(b.results.length, 100);
  // the executor kept polling (and yielding every 10 ms) for 60 ms: far more than the waiting case
  assert.ok(withUndefined.polls > 50, `polled ${withUndefined.polls} times`);
  assert.ok(plain.polls > 50, `polled ${plain.polls} times`);
});

test('a ready() promise that rejects wakes the task; the failure comes from the next poll()', async () => {
  const env = StreamEnvironment.create({ parallelism: 1 });
  let failed = false;
  const spec: SourceSpec<number> = {
    bounded: true,
    replayable: false,
    createReader: () => ({
      poll() {
        if (failed) throw new Error('disk on fire');
        return true;
      },
      ready() {
        return sleep(20).then(() => {
          failed = true;
          throw new Error('read failed');
        });
      },
    }),
  };
  env.fromSource(spec, 'Source: Failing').collect();
  try {
    await env.execute();
    assert.unreachable('should fail');
  } catch (e) {
    assert.match(String((e as Error).message), /disk on fire/);
  }
});

test('a source that never becomes ready and never ends: the job can be cancelled; readers are closed', async () => {
  let polls = 0;
  let closed = false;
  const never = new Promise<void>(() => undefined);
  const spec: SourceSpec<number> = {
    bounded: true,
    replayable: false,
    createReader: () => ({
      poll: () => {
        polls++;
        return true;
      },
      ready: () => never,
      close: () => {
        closed = true;
      },
    }),
  };
  const env = StreamEnvironment.create({ parallelism: 2 });
  env.fromSource(spec, 'Source: Never').map((x) => x).collect();
  const ctl = new AbortController();
  const job = executeGraph(buildExecutionGraph(env.getJobGraph('never')), { signal: ctl.signal });
  await sleep(100);
  assert.is(polls, 2, 'each subtask polled once, then the executor slept'); // not a stall error either
  ctl.abort();
  try {
    await job;
    assert.unreachable('should be cancelled');
  } catch (e) {
    assert.match(String((e as Error).message), /job 'never' was cancelled/);
  }
  assert.ok(closed);
});

test('a signal aborted before the job starts cancels it at once', async () => {
  const env = StreamEnvironment.create({ parallelism: 1 });
  env.fromCollection([1, 2, 3]).collect();
  const ctl = new AbortController();
  ctl.abort();
  try {
    await executeGraph(buildExecutionGraph(env.getJobGraph('early')), { signal: ctl.signal });
    assert.unreachable('should be cancelled');
  } catch (e) {
    assert.match(String((e as Error).message), /cancelled/);
  }
});

test('env.execute(name, { signal }) cancels a running unbounded-looking job through the public API', async () => {
  const env = StreamEnvironment.create({ parallelism: 1 });
  // a generator far too long to finish: only cancellation ends it
  env.fromGenerator(1e12, (i) => i).map((i) => i + 1).addSink(() => {});
  const ctl = new AbortController();
  const running = env.execute('endless', { signal: ctl.signal });
  setTimeout(() => ctl.abort(), 30);
  const err = await running.then(() => undefined, (e: unknown) => e);
  assert.match(String((err as Error)?.message), /job 'endless' was cancelled/);
});

test.run();
