// Tests blocking exchanges in batch mode: a consumer stage starts only after its producers finished
// (pipelined mode interleaves them), results are the same in both modes and when the exchanges spill
// (a managed-memory budget far below the data), and streaming mode stays pipelined.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobDefinitionError, StreamEnvironment } from '../../src/index.ts';

async function run(runtimeMode: 'batch' | 'streaming', batchShuffleMode: 'blocking' | 'pipelined', managedMemory: string | number = '256mb') {
  const log: ('src' | 'dst')[] = [];
  const env = StreamEnvironment.create({ runtimeMode, batchShuffleMode, parallelism: 2, batchSize: 64, managedMemory });
  const out = env
    .fromGenerator(10_000, (i) => ({ k: i % 37, v: i, s: `row ${i}`.padEnd(100, '.') }), { parallelism: 1 })
    .map((r) => {
      log.push('src');
      return r;
    })
    .rebalance()
    .map((r) => {
      log.push('dst');
      return r;
    })
    .keyBy((r) => r.k)
    .sum('v')
    .collect();
  await env.execute();
  const firstDst = log.indexOf('dst');
  const lastSrc = log.lastIndexOf('src');
  const totals = new Map<number, number>();
  for (const r of out.results) totals.set(r.k, Math.max(totals.get(r.k) ?? 0, r.v));
  return { interleaved: firstDst < lastSrc, totals: [...totals].sort((a, b) => a[0] - b[0]), count: out.results.length };
}

test('batch mode: a stage starts when the stage before it has finished (blocking exchange)', async () => {
  const r = await run('batch', 'blocking');
  assert.is(r.interleaved, false);
});

test('batch mode with batchShuffleMode pipelined, and streaming mode, interleave the stages', async () => {
  assert.is((await run('batch', 'pipelined')).interleaved, true);
  assert.is((await run('streaming', 'blocking')).interleaved, true);
});

test('blocking, pipelined and spilling exchanges give the same result', async () => {
  const want = await run('batch', 'pipelined');
  const blocking = await run('batch', 'blocking');
  // 64 KiB per exchange (the floor) against ~500 KiB per channel: it holds at most twice its budget, so it spills
  const spilling = await run('batch', 'blocking', 1);
  assert.equal(blocking.totals, want.totals);
  assert.equal(spilling.totals, want.totals);
  assert.is(blocking.count, want.count);
});

test('batchShuffleMode is checked', () => {
  assert.throws(() => StreamEnvironment.create({ batchShuffleMode: 'eventually' as never }), (e: unknown) => e instanceof JobDefinitionError);
});

test.run();
