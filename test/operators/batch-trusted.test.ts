// Tests the `trusted` input option of TopN and SortMergeJoin (src/operators/batch/): on random inputs
// of every field type a trusted run gives byte-identical output to a validating one (TopN with
// compactions and with the fallback sort; SortMergeJoin with inputs it sorts and inputs declared
// sorted), and a batch with a bad header is still refused when passed as trusted.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CorruptBatchError, SchemaMismatchError } from '../../src/core/errors.ts';
import { ExternalSorter } from '../../src/operators/batch/external-sort.ts';
import { SortMergeJoin } from '../../src/operators/batch/sort-merge-join.ts';
import { TopN } from '../../src/operators/batch/top-n.ts';
import { memorySpill } from '../../src/platform/index.ts';
import { encodeBatch, randomRows, schemaOf, type RefField, type RefValue } from '../reference/batch.ts';
import { kernelsFor, randomKeys } from '../reference/harness.ts';
import { forSeeds, type Rng } from '../reference/random.ts';

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const b of it) out.push(b.slice());
  return out;
}

function batchesOf(rng: Rng, fields: RefField[], rows: RefValue[][]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < rows.length; ) {
    const n = rng.range(1, rng.pick([20, 200]));
    out.push(encodeBatch(fields, rows.slice(i, i + n)));
    i += n;
  }
  return out;
}

const FIELDS: RefField[][] = [
  [
    { kind: 'i64', nullable: true },
    { kind: 'string', nullable: true },
    { kind: 'f64', nullable: false },
  ],
  [
    { kind: 'i32', nullable: false },
    { kind: 'bytes', nullable: true },
    { kind: 'any', nullable: true },
    { kind: 'bool', nullable: true },
  ],
];

test('top-n: trusted input gives the same output as validated input (compactions, fallback)', async () => {
  await forSeeds('batch-trusted/top-n', 6, async (rng) => {
    const fields = rng.pick(FIELDS);
    const keys = randomKeys(rng, fields.length);
    const input = batchesOf(rng, fields, randomRows(rng, fields, rng.range(500, 4000), { small: true }));
    const limit = rng.pick([10, 300, 3000]);
    const outs: Uint8Array[][] = [];
    for (const trusted of [false, true]) {
      const k = await kernelsFor(false);
      const top = new TopN({ kernels: k, schema: schemaOf(fields), keys, limit, offset: 5, budget: 8 * 32768, spill: memorySpill, trusted });
      for (const b of input) await top.add(b);
      outs.push(await collect(top.sorted()));
    }
    assert.equal(outs[1], outs[0]);
  });
});

test('sort-merge join: trusted inputs (sorted by it or declared sorted) give the same output', async () => {
  await forSeeds('batch-trusted/smj', 6, async (rng) => {
    // both sides of one schema, joined on the first field
    const lf = rng.pick(FIELDS);
    const rfs = lf;
    const left = batchesOf(rng, lf, randomRows(rng, lf, rng.range(200, 2000), { small: true }));
    const right = batchesOf(rng, rfs, randomRows(rng, rfs, rng.range(200, 2000), { small: true }));
    const lk = [0];
    const rk = [0];
    const type = rng.pick(['inner', 'left', 'full', 'anti'] as const);
    const k = await kernelsFor(false);
    const sortedInput = async (fields: RefField[], keys: number[], batches: Uint8Array[]) => {
      const s = new ExternalSorter({ kernels: k, schema: schemaOf(fields), keys, budget: 1 << 20, spill: memorySpill });
      for (const b of batches) await s.add(b);
      return collect(s.sorted());
    };
    const ls = await sortedInput(lf, lk, left);
    const rs = await sortedInput(rfs, rk, right);
    for (const presorted of [false, true]) {
      const outs: Uint8Array[][] = [];
      for (const trusted of [false, true]) {
        const st = await memorySpill.createSpillStore();
        try {
          const join = new SortMergeJoin({
            kernels: k,
            spill: st,
            type,
            left: { schema: schemaOf(lf), keys: lk, batches: presorted ? ls : left, sorted: presorted, trusted },
            right: { schema: schemaOf(rfs), keys: rk, batches: presorted ? rs : right, sorted: presorted, trusted },
            budgetBytes: 40 * 32768,
          });
          outs.push(await collect(join));
        } finally {
          await st.close();
        }
      }
      assert.equal(outs[1], outs[0], `${type}, presorted ${presorted}`);
    }
  });
});

test('trusted: a batch with a bad header is still refused', async () => {
  const fields = FIELDS[0]!;
  const good = encodeBatch(fields, [[1n, 'a', 1.5]]);
  const badMagic = good.slice();
  badMagic[0] = badMagic[0]! ^ 0xff;
  const otherSchema = encodeBatch(FIELDS[1]!, [[1, null, null, true]]);
  const k = await kernelsFor(false);
  for (const [bad, type] of [
    [badMagic, CorruptBatchError],
    [otherSchema, SchemaMismatchError],
  ] as const) {
    const top = new TopN({ kernels: k, schema: schemaOf(fields), keys: [0], limit: 5, budget: 8 * 32768, spill: memorySpill, trusted: true });
    let err: unknown;
    try {
      await top.add(good);
      await top.add(bad);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof type, `top-n: ${String(err)}`);
    const st = await memorySpill.createSpillStore();
    try {
      const join = new SortMergeJoin({
        kernels: k,
        spill: st,
        type: 'inner',
        left: { schema: schemaOf(fields), keys: [0], batches: [good, bad], sorted: true, trusted: true },
        right: { schema: schemaOf(fields), keys: [0], batches: [good], sorted: true, trusted: true },
        budgetBytes: 40 * 32768,
      });
      err = undefined;
      try {
        await collect(join);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof type, `sort-merge join: ${String(err)}`);
    } finally {
      await st.close();
    }
  }
});

test.run();
