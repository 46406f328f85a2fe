// Tests through the DataStream API that a blocking batch operator's result reaches the operators
// after it in chunks while it is still being produced: a join's `with` function counts its calls and
// a downstream map records the count it sees per record, so every distinct count is one downstream
// batch of a chained map. A map in its own task behind a channel gets the chunks too (when the
// exchange is pipelined it runs while the join is still producing, else after it): the result is
// complete and correct either way.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { schema, StreamEnvironment, t } from '../../src/index.ts';
import { batchCleanupSettled } from '../../src/operators/batch/batch-operators.ts';

const P = schema({ k: t.i64(), pv: t.i64() });
const B = schema({ k: t.i64(), bv: t.i64(), tag: t.string() });

function data(n: number, nb: number) {
  const probe = Array.from({ length: n }, (_, i) => ({ k: (i * 7919) % nb, pv: i }));
  const build = Array.from({ length: nb }, (_, j) => ({ k: j, bv: j * 2, tag: `t${j % 9}` }));
  return { probe, build };
}

for (const chained of [true, false]) {
  test(`join.with: results reach a ${chained ? 'chained' : 'separate'} downstream map in chunks, complete`, async () => {
    const n = 40_000;
    const { probe, build } = data(n, 5_000);
    const env = StreamEnvironment.create({ runtimeMode: 'batch', parallelism: 1, managedMemory: '64mb' });
    let withCalls = 0;
    const seen: number[] = [];
    const joined = env
      .fromCollection(probe)
      .withSchema(P)
      .join(env.fromCollection(build).withSchema(B))
      .where('k')
      .equalTo('k')
      .with((p, b) => {
        withCalls++;
        return { pv: p.pv, bv: b.bv, ok: p.k === b.k && b.tag === `t${b.k % 9}` };
      });
    const mapped = joined.map((x) => {
      seen.push(withCalls);
      return x;
    });
    if (!chained) mapped.disableChaining();
    const out = mapped.collect();
    await env.execute('chunks');
    assert.is(out.results.length, n, 'every probe row has one partner');
    assert.ok(out.results.every((x) => x.ok));
    assert.equal(
      out.results.map((x) => x.pv).sort((a, b) => a - b),
      probe.map((p) => p.pv),
    );
    assert.is(out.results.reduce((s, x) => s + x.bv, 0), probe.reduce((s, p) => s + 2 * p.k, 0));
    if (chained) {
      // the map saw records before the join function had made them all
      assert.ok(seen[0]! < n / 4, `the first record reached the map after ${seen[0]} of ${n} join results`);
      // one downstream batch per distinct count (the join function does not run while the map does)
      const batches = new Map<number, number>();
      for (const c of seen) batches.set(c, (batches.get(c) ?? 0) + 1);
      const largest = Math.max(...batches.values());
      assert.ok(batches.size >= 8, `${batches.size} downstream batches`);
      assert.ok(largest <= n / 8, `largest downstream batch ${largest} of ${n} rows`);
    }
    await batchCleanupSettled();
  });
}

test.run();
