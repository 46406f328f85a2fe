// Tests the stateless API end to end: sources, map/filter/flatMap, rebalance, sinks, naming,
// parallelism, and the environment's job lifecycle.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobDefinitionError, StreamEnvironment, type SinkContext } from '../../src/index.ts';

const sorted = <T>(xs: T[]): T[] => [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));

test('map, filter and flatMap at parallelism 1 keep order', async () => {
  const env = StreamEnvironment.create();
  const out = await env
    .fromCollection(['a b', 'c', '', 'd e f'])
    .flatMap((line) => line.split(' ').filter((w) => w !== ''))
    .map((w) => w.toUpperCase())
    .filter((w) => w !== 'C')
    .executeAndCollect();
  assert.equal(out, ['A', 'B', 'D', 'E', 'F']);
});

test('flatMap accepts any iterable (generator, Set)', async () => {
  const env = StreamEnvironment.create();
  const out = await env
    .fromCollection([2, 3])
    .flatMap(function* (n) {
      for (let i = 0; i < n; i++) yield n * 10 + i;
    })
    .flatMap((n) => new Set([n]))
    .executeAndCollect();
  assert.equal(out, [20, 21, 30, 31, 32]);
});

test('filter with a type guard narrows the type and keeps records', async () => {
  const env = StreamEnvironment.create();
  const xs: (string | number)[] = [1, 'a', 2, 'b'];
  const out: string[] = await env.fromCollection(xs).filter((x): x is string => typeof x === 'string').executeAndCollect();
  assert.equal(out, ['a', 'b']);
});

for (const p of [1, 2, 4]) {
  test(`parallelism ${p}: same multiset of results as plain JS`, async () => {
    const env = StreamEnvironment.create({ parallelism: p });
    const input = Array.from({ length: 5000 }, (_, i) => ({ id: i, v: (i * 7919) % 101 }));
    const out = await env
      .fromCollection(input)
      .map((r) => ({ id: r.id, v: r.v * 2 }))
      .filter((r) => r.v % 3 !== 0)
      .flatMap((r) => (r.v > 100 ? [r, { id: -r.id, v: r.v }] : [r]))
      .executeAndCollect();
    const expected = input
      .map((r) => ({ id: r.id, v: r.v * 2 }))
      .filter((r) => r.v % 3 !== 0)
      .flatMap((r) => (r.v > 100 ? [r, { id: -r.id, v: r.v }] : [r]));
    assert.equal(sorted(out), sorted(expected));
  });
}

test('generator source splits its index range over subtasks', async () => {
  const env = StreamEnvironment.create({ parallelism: 3 });
  const seen: { i: number; subtask: number }[] = [];
  env
    .fromGenerator(10, (i) => i)
    .addSink((i: number, ctx: SinkContext) => seen.push({ i, subtask: ctx.subtaskIndex }));
  await env.execute();
  assert.equal(seen.map((s) => s.i).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const bySubtask = [0, 1, 2].map((s) => seen.filter((x) => x.subtask === s).map((x) => x.i));
  assert.equal(bySubtask, [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]); // contiguous slices, forward-chained sink
});

test('generator with its own parallelism and many batches', async () => {
  const env = StreamEnvironment.create({ parallelism: 2, batchSize: 7 });
  const out = await env.fromGenerator(1000, (i) => i, { parallelism: 4, name: 'nums' }).map((i) => i + 1).executeAndCollect();
  assert.is(out.length, 1000);
  assert.is(out.reduce((a, b) => a + b, 0), (1000 * 1001) / 2);
});

test('empty sources and zero-count generators finish with no records', async () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  const a = env.fromCollection([] as number[]).map((x) => x).collect();
  const b = env.fromGenerator(0, (i) => i).collect();
  await env.execute();
  assert.equal(a.results, []);
  assert.equal(b.results, []);
});

test('rebalance spreads records round-robin over downstream subtasks', async () => {
  const env = StreamEnvironment.create();
  const perSubtask = [0, 0, 0, 0];
  env
    .fromGenerator(400, (i) => i, { parallelism: 1 })
    .rebalance()
    .map((i) => i)
    .setParallelism(4)
    .addSink({ invoke: (_v, ctx) => void perSubtask[ctx.subtaskIndex]!++ })
    .setParallelism(4);
  await env.execute();
  assert.equal(perSubtask, [100, 100, 100, 100]);
});

test('a forward edge between different parallelisms becomes a rebalance', async () => {
  const env = StreamEnvironment.create({ parallelism: 3 });
  const h = env.fromCollection([1, 2, 3, 4, 5], { parallelism: 1 }).map((x) => x * 2).collect();
  assert.match(env.getExecutionPlan(), /\[1\] Source: Collection   \(parallelism 1\)\n\s+--REBALANCE--> \[2\]/);
  await env.execute();
  assert.equal([...h.results].sort((a, b) => a - b), [2, 4, 6, 8, 10]);
});

test('addSink with an object calls open, invoke and close per subtask', async () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  const events: string[] = [];
  const values: number[] = [];
  env.fromCollection([1, 2, 3, 4]).addSink({
    open: (c) => events.push(`open ${c.subtaskIndex}/${c.parallelism}`),
    invoke: (v) => values.push(v),
    close: (c) => events.push(`close ${c.subtaskIndex}`),
  });
  await env.execute();
  assert.equal(values.sort(), [1, 2, 3, 4]);
  assert.equal(events.sort(), ['close 0', 'close 1', 'open 0/2', 'open 1/2']);
});

test('print writes prefix:subtask> record lines', async () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    env.fromCollection([{ a: 1 }, { a: 2 }]).print('out');
    env.fromCollection(['x']).print().setParallelism(1);
    await env.execute();
  } finally {
    console.log = orig;
  }
  assert.equal(lines.sort(), ['out:1> {"a":1}', 'out:2> {"a":2}', 'x']);
});

test('collect results are only available after execute; execute consumes the sinks', async () => {
  const env = StreamEnvironment.create();
  const h = env.fromElements(1, 2, 3).collect();
  assert.is(h.isComplete, false);
  assert.throws(() => h.results, (e: unknown) => e instanceof JobDefinitionError);
  const r = await env.execute('first');
  assert.is(r.jobName, 'first');
  assert.equal(h.results, [1, 2, 3]);
  await assert_rejects(() => env.execute('again'), /empty/);
});

test('executing an empty job is a JobDefinitionError', async () => {
  const env = StreamEnvironment.create();
  env.fromCollection([1]).map((x) => x); // no sink
  await assert_rejects(() => env.execute('nothing'), /job 'nothing' is empty/);
});

test('job result counts records in and out per operator', async () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  env
    .fromGenerator(100, (i) => i)
    .filter((i) => i % 2 === 0)
    .name('evens')
    .flatMap((i) => [i, i])
    .collect();
  const r = await env.execute('counts');
  assert.is(r.operator('Source: Generator')?.recordsOut, 100);
  assert.is(r.operator('evens')?.recordsIn, 100);
  assert.is(r.operator('evens')?.recordsOut, 50);
  assert.is(r.operator('FlatMap')?.recordsOut, 100);
  assert.is(r.operator('Sink: Collect')?.recordsIn, 100);
  assert.ok(r.durationMs >= 0);
  assert.match(r.toString(), /evens\s+2\s+100\s+50/);
});

test('invalid settings are JobDefinitionErrors', () => {
  assert.throws(() => StreamEnvironment.create({ parallelism: 0 }), (e: unknown) => e instanceof JobDefinitionError);
  assert.throws(() => StreamEnvironment.create({ parallelism: 200 }), /above the max parallelism 128/);
  assert.throws(() => StreamEnvironment.create({ maxParallelism: 0 }), /max parallelism/);
  assert.throws(() => StreamEnvironment.create({ runtimeMode: 'fast' as 'batch' }), /runtime mode/);
  const env = StreamEnvironment.create({ maxParallelism: 8 });
  const m = env.fromCollection([1]).map((x) => x);
  assert.throws(() => m.setParallelism(9), /parallelism of Map is 9, above the max parallelism 8/);
  assert.throws(() => m.setParallelism(1.5), /integer >= 1/);
  assert.throws(() => env.fromGenerator(-1, (i) => i), /count/);
  assert.throws(() => env.fromCollection([1], { parallelism: 0 }), (e: unknown) => e instanceof JobDefinitionError);
  assert.throws(() => m.keyBy(42 as never), /keyBy expects/);
});

async function assert_rejects(fn: () => Promise<unknown>, re: RegExp): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    assert.match(String((e as Error).message), re);
    return e;
  }
  assert.unreachable('expected a rejection');
}

test.run();
