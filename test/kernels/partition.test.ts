// Tests partitionBatch against the reference on random batches, keys, parallelisms and output
// capacities small enough that FULL/resume (and rows larger than a buffer) happen, for both builds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobDefinitionError, MemoryBudgetError } from '../../src/core/errors.ts';
import { keyGroupOf, subtaskForKeyGroup } from '../../src/core/hash.ts';
import { loadKernels } from '../../bindings/index.ts';
import { encodeBatch, randomBatch, schemaOf, type RefField } from '../reference/batch.ts';
import { BUILDS, CAPACITIES, checkOutputs, kernelsFor, randomKeys } from '../reference/harness.ts';
import { batchRows, refHashRow, refPartition } from '../reference/kernels.ts';
import { forSeeds } from '../reference/random.ts';

const RUNS = 150;

for (const { name, debug } of BUILDS) {
  test(`[${name}] partitionBatch == reference (random keys, parallelism, tiny outputs)`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('partition/random', RUNS, (rng) => {
      const { fields, bytes, schema: s } = randomBatch(rng);
      if (fields.length === 0) return;
      const keys = randomKeys(rng, fields.length).map((x) => ({ field: x.field }));
      const maxParallelism = rng.pick([1, 2, 7, 128, 1000, 32768]);
      const parallelism = rng.range(1, Math.min(maxParallelism, 9));
      const outputBytes = rng.pick(CAPACITIES);
      const b = k.copyIn(bytes, s);
      const before = k.memory.bytesInUse;
      try {
        const got = k.partition(s, b, keys, { parallelism, maxParallelism, outputBytes });
        assert.is(k.memory.bytesInUse, before, 'partition frees its buffers');
        const want = refPartition(bytes, fields, keys, parallelism, maxParallelism);
        assert.is(got.length, parallelism);
        got.forEach((batches, p) => checkOutputs(batches, fields, outputBytes, want[p]!, `partition ${p}/${parallelism} cap ${outputBytes}`));
        // the routing agrees with src/core/hash.ts's key groups
        want.forEach((rows, p) =>
          rows.forEach((r) => assert.is(subtaskForKeyGroup(keyGroupOf(refHashRow(r, fields, keys), maxParallelism), parallelism, maxParallelism), p)),
        );
      } finally {
        k.free(b);
      }
    });
  });

  test(`[${name}] partition: empty batch, one partition, oversized rows`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [
      { kind: 'string', nullable: false },
      { kind: 'i32', nullable: true },
    ];
    const s = schemaOf(fields);
    const empty = k.copyIn(encodeBatch(fields, []), s);
    assert.equal(k.partition(s, empty, [0], { parallelism: 3 }), [[], [], []]);
    k.free(empty);
    const rows = [['x'.repeat(200), 1], ['a', null], ['y'.repeat(300), 2], ['b', 3]];
    const bytes = encodeBatch(fields, rows);
    const b = k.copyIn(bytes, s);
    const one = k.partition(s, b, ['f0', 'f1'], { parallelism: 1, maxParallelism: 1, outputBytes: 64 });
    checkOutputs(one[0]!, fields, 64, batchRows(bytes), 'single partition');
    assert.ok(one[0]!.length >= 3, 'oversized rows got buffers of their own');
    assert.throws(() => k.partition(s, b, [0], { parallelism: 0 }), (e: unknown) => e instanceof JobDefinitionError);
    assert.throws(() => k.partition(s, b, [0], { parallelism: 5, maxParallelism: 4 }), (e: unknown) => e instanceof JobDefinitionError);
    assert.throws(() => k.partition(s, b, ['nope'], { parallelism: 2 }), (e: unknown) => e instanceof JobDefinitionError);
    k.free(b);
  });
}

test('partition output buffers count against the budget', async () => {
  const k = await loadKernels({ budgetBytes: 4 * 32768 });
  const fields: RefField[] = [{ kind: 'i64', nullable: false }];
  const s = schemaOf(fields);
  const b = k.copyIn(encodeBatch(fields, [[1n], [2n]]), s);
  assert.throws(
    () => k.partition(s, b, [0], { parallelism: 8, maxParallelism: 8 }),
    (e: unknown) => e instanceof MemoryBudgetError && e.message.includes(String(4 * 32768)),
  );
  assert.is(k.memory.bytesInUse, 32768, 'nothing leaked after the budget error');
  const parts = k.partition(s, b, [0], { parallelism: 8, maxParallelism: 8, outputBytes: 64 });
  assert.is(parts.flat().length, 2);
  k.free(b);
});

test.run();
