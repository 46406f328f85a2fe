// Tests the graph layer: stream graph validation, Flink's chaining rule, the execution graph's
// subtasks and channels, and the readable plan.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobDefinitionError, StreamEnvironment } from '../../src/index.ts';
import { buildExecutionGraph } from '../../src/graph/execution-graph.ts';

test('map -> filter chain with the source; keyBy breaks the chain', () => {
  const env = StreamEnvironment.create({ parallelism: 2, runtimeMode: 'batch' });
  env
    .fromGenerator(10, (i) => ({ k: i % 3, v: i }), { name: 'nums' })
    .map(function double(r) {
      return { ...r, v: r.v * 2 };
    })
    .filter((r) => r.v > 2)
    .keyBy('k')
    .sum('v')
    .print();
  const plan = env.getExecutionPlan('p');
  assert.equal(plan.split('\n'), [
    `Job 'p' (mode batch, default parallelism 2, max parallelism 128)`,
    '[1] nums -> Map(double) -> Filter   (parallelism 2, chain of 3)',
    '     --HASH(k)--> [2]',
    '[2] Sum(v) -> Sink: Print   (parallelism 2, chain of 2)',
  ]);
  const g = env.getJobGraph();
  assert.is(g.vertices.length, 2);
  assert.equal(g.vertices.map((v) => v.nodes.map((n) => n.name)), [['nums', 'Map(double)', 'Filter'], ['Sum(v)', 'Sink: Print']]);
  assert.is(env.explain('p'), plan);
});

test('disableChaining, startNewChain, different parallelism and rebalance break chains', () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  env
    .fromCollection([1])
    .map((x) => x)
    .name('a')
    .map((x) => x)
    .name('b')
    .disableChaining()
    .map((x) => x)
    .name('c')
    .map((x) => x)
    .name('d')
    .startNewChain()
    .map((x) => x)
    .name('e')
    .setParallelism(3)
    .rebalance()
    .map((x) => x)
    .name('f')
    .setParallelism(3)
    .collect();
  const g = env.getJobGraph();
  assert.equal(
    g.vertices.map((v) => v.name),
    ['Source: Collection -> a', 'b', 'c', 'd', 'e', 'f', 'Sink: Collect'],
  );
  assert.equal(
    g.vertices.flatMap((v) => v.outputs.map((e) => `${e.source.id}-${e.partition.kind}->${e.target.id}`)),
    ['1-forward->2', '2-forward->3', '3-forward->4', '4-rebalance->5', '5-rebalance->6', '6-rebalance->7'],
  );
  // the collect sink takes the default parallelism 2 after f (3): a rebalance, no chain
  assert.equal(g.vertices.map((v) => v.parallelism), [2, 2, 2, 2, 3, 3, 2]);
});

test('a branching stream chains into both consumers', () => {
  const env = StreamEnvironment.create();
  const m = env.fromCollection([1, 2]).map((x) => x + 1);
  m.filter((x) => x > 2).collect();
  m.print();
  const g = env.getJobGraph();
  assert.is(g.vertices.length, 1);
  assert.is(g.vertices[0]!.nodes.length, 5);
});

test('execution graph: forward edges are one-to-one, hash and rebalance all-to-all', () => {
  const env = StreamEnvironment.create({ parallelism: 3 });
  env.fromCollection([1]).map((x) => x).disableChaining().keyBy((x) => x).reduce((a) => a).setParallelism(2).collect();
  const eg = buildExecutionGraph(env.getJobGraph());
  // source(3) -fwd-> map(3) -hash-> reduce(2) -rebalance-> sink(3)
  assert.is(eg.subtasks.length, 3 + 3 + 2 + 3);
  assert.is(eg.channelCount, 3 + 3 * 2 + 2 * 3);
  const maps = eg.subtasks.filter((s) => s.vertex.name === 'Map');
  for (const m of maps) assert.equal(m.inputs.map((c) => c.sourceSubtask), [m.index]);
  const reducers = eg.subtasks.filter((s) => s.vertex.name === 'Reduce');
  for (const r of reducers) assert.equal(r.inputs.map((c) => c.sourceSubtask), [0, 1, 2]);
});

test('invalid jobs are JobDefinitionErrors', () => {
  const env = StreamEnvironment.create({ maxParallelism: 4 });
  assert.throws(() => env.getExecutionPlan(), (e: unknown) => e instanceof JobDefinitionError && /is empty/.test(e.message));
  assert.throws(() => env.setParallelism(5), /above the max parallelism 4/);
  assert.throws(() => env.fromCollection([1]).map((x) => x).setParallelism(0), /must be an integer >= 1, got 0/);
  assert.throws(() => env.fromCollection([{ a: 1 }]).keyBy('' as never), /must not be empty/);
});

test.run();
