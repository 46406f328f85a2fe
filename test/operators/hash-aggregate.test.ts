// Tests the HashAggregator operator on every runtime: random GROUP BYs with budgets so small that every
// run spills (recursively) give the same groups and values as the in-memory run and as the reference
// (f64 sums/averages within a relative tolerance: spilling changes the order of additions); spill
// files are all deleted on success, on early stop and on failure; DISTINCT; global aggregates; trusted
// input gives the same output, and a trusted batch of another schema is still refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { AggregateOverflowError } from '../../bindings/aggregate.ts';
import { SchemaMismatchError } from '../../src/core/errors.ts';
import { HashAggregator } from '../../src/operators/batch/hash-aggregate.ts';
import { createMemorySpillStore } from '../../src/platform/spill-memory.ts';
import { encodeBatch, schemaOf, type RefField, type RefValue } from '../reference/batch.ts';
import { kernelsFor } from '../reference/harness.ts';
import { batchRows } from '../reference/kernels.ts';
import { RefOverflow, canonicalRow, randomCase, refAggregate, refFinalFields, toSpec, type RefAgg } from '../reference/aggregate.ts';
import { forSeeds } from '../reference/random.ts';

/** Output rows as a sorted multiset: key text → value cells (f64 aggregate cells as numbers). */
function multiset(rows: Uint8Array[], ff: readonly RefField[], nk: number): Map<string, (string | number)[][]> {
  const m = new Map<string, (string | number)[][]>();
  const w = Math.ceil(ff.length / 64) * 8;
  for (const raw of rows) {
    const r = canonicalRow(raw, ff);
    const dv = new DataView(r.buffer, r.byteOffset, r.byteLength);
    const cells = ff.map((f, i): string | number => {
      if ((r[8 + (i >> 3)]! & (1 << (i & 7))) !== 0) return 'null';
      const s = 8 + w + 8 * i;
      if (f.kind === 'f64') {
        const x = dv.getFloat64(s, true);
        return i >= nk ? x : Object.is(x, -0) ? 0 : x;
      }
      if (f.kind === 'string' || f.kind === 'bytes' || f.kind === 'any') return Array.from(r.subarray(dv.getUint32(s, true), dv.getUint32(s, true) + dv.getUint32(s + 4, true))).join(',');
      return String(dv.getBigInt64(s, true));
    });
    const key = JSON.stringify(cells.slice(0, nk).map(String));
    const list = m.get(key) ?? [];
    list.push(cells.slice(nk));
    m.set(key, list);
  }
  return m;
}

function close(a: string | number, b: string | number): boolean {
  if (typeof a !== 'number' || typeof b !== 'number') return a === b;
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return a === b;
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

function sameMultiset(a: Map<string, (string | number)[][]>, b: Map<string, (string | number)[][]>, what: string): void {
  assert.is(a.size, b.size, `${what}: group count`);
  for (const [key, va] of a) {
    const vb = b.get(key);
    if (!vb || vb.length !== 1 || va.length !== 1) throw new Error(`${what}: group ${key} appears ${va.length} vs ${vb?.length ?? 0} times`);
    if (!va[0]!.every((x, i) => close(x, vb[0]![i]!))) throw new Error(`${what}: group ${key}: ${JSON.stringify(va[0])} vs ${JSON.stringify(vb[0])}`);
  }
}

async function collect(gen: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const rows: Uint8Array[] = [];
  for await (const b of gen) rows.push(...batchRows(b).map((r) => r.slice()));
  return rows;
}

test('hash aggregate: spilling runs == in-memory run == reference; no spill file left', async () => {
  const k = await kernelsFor(false);
  let spilledCases = 0;
  let deep = 0;
  await forSeeds('hash-aggregate/spill', 40, async (rng) => {
    const c = randomCase(rng);
    const fields = c.fields;
    let want;
    try {
      want = refAggregate(c.batches, fields, c.keys, c.aggs);
    } catch (e) {
      if (e instanceof RefOverflow) return;
      throw e;
    }
    const schema = schemaOf(fields);
    const specs = c.aggs.map(toSpec);
    const ff = refFinalFields(fields, c.keys, c.aggs);
    const store = await createMemorySpillStore();
    const before = k.memory.bytesInUse;
    try {
      const smallOpts = { kernels: k, schema, keys: c.keys, aggs: specs, budget: rng.range(5, 7) * SEGMENT_BYTES, spill: store, outputBytes: rng.pick([64, 1024, 32768]), chunkBytes: rng.pick([128, 256, 1024]) };
      const small = new HashAggregator(smallOpts);
      const got = await collect(small.run(c.batches));
      const trusted = await collect(new HashAggregator({ ...smallOpts, trusted: true }).run(c.batches));
      assert.equal(trusted, got, 'trusted input: the same rows in the same order');
      if (small.stats.spills > 0) spilledCases++;
      if (small.stats.maxLevel > 1) deep++;
      const big = new HashAggregator({ kernels: k, schema, keys: c.keys, aggs: specs, budget: 64 << 20, spill: store });
      const mem = await collect(big.run(c.batches));
      assert.is(big.stats.spills, 0);
      const expected = c.keys.length === 0 && want.final.length === 0 ? mem : want.final;
      sameMultiset(multiset(got, ff, c.keys.length), multiset(mem, ff, c.keys.length), 'spilled vs in-memory');
      sameMultiset(multiset(mem, ff, c.keys.length), multiset(expected, ff, c.keys.length), 'in-memory vs reference');
      assert.is(store.stats.filesLive, 0, 'spill files deleted');
      assert.is(k.memory.bytesInUse, before, 'managed memory freed');
    } finally {
      await store.close();
    }
  });
  assert.ok(spilledCases > 5, `only ${spilledCases} cases spilled`);
  assert.ok(deep > 0, 'no case recursed beyond one level');
});

test('hash aggregate: many groups through a tiny budget recurse and stay exact (integers)', async () => {
  const k = await kernelsFor(false);
  const fields: RefField[] = [
    { kind: 'string', nullable: true },
    { kind: 'i64', nullable: false },
  ];
  const rows: RefValue[][] = Array.from({ length: 40000 }, (_, i) => [i % 997 === 0 ? null : `key-${(i * 7919) % 12000}`, BigInt(i)]);
  const batches: Uint8Array[] = [];
  for (let i = 0; i < rows.length; i += 500) batches.push(encodeBatch(fields, rows.slice(i, i + 500)));
  const aggs: RefAgg[] = [{ op: 'count*', field: 0 }, { op: 'sum', field: 1 }, { op: 'min', field: 1 }, { op: 'max', field: 1 }, { op: 'avg', field: 1 }];
  const store = await createMemorySpillStore();
  const agg = new HashAggregator({ kernels: k, schema: schemaOf(fields), keys: [0], aggs: aggs.map(toSpec), budget: 6 * SEGMENT_BYTES, spill: store, chunkBytes: 2048 });
  const got = await collect(agg.run(batches));
  const ff = refFinalFields(fields, [0], aggs);
  sameMultiset(multiset(got, ff, 1), multiset(refAggregate(batches, fields, [0], aggs).final, ff, 1), 'tiny budget');
  assert.ok(agg.stats.maxLevel >= 2, `recursion level ${agg.stats.maxLevel}`);
  assert.is(store.stats.filesLive, 0);
  await store.close();
});

test('hash aggregate: early stop and failure delete every spill file; own store is closed', async () => {
  const k = await kernelsFor(false);
  const fields: RefField[] = [{ kind: 'i32', nullable: false }, { kind: 'i64', nullable: false }];
  const s = schemaOf(fields);
  const batches = Array.from({ length: 40 }, (_, b) => encodeBatch(fields, Array.from({ length: 400 }, (_, i) => [b * 400 + i, 1n])));
  const store = await createMemorySpillStore();
  const before = k.memory.bytesInUse;
  const a = new HashAggregator({ kernels: k, schema: s, keys: [0], aggs: [{ op: 'count' }], budget: 5 * SEGMENT_BYTES, spill: store });
  for await (const _ of a.run(batches)) break;
  assert.ok(a.stats.spills > 0);
  assert.is(store.stats.filesLive, 0, 'early stop');
  assert.is(k.memory.bytesInUse, before);
  // an overflow after spilling has started
  const bad = [...batches, encodeBatch(fields, [[0, 2n ** 62n], [0, 2n ** 62n], [0, 2n ** 62n]])];
  const b = new HashAggregator({ kernels: k, schema: s, keys: [0], aggs: [{ op: 'sum', field: 1 }], budget: 5 * SEGMENT_BYTES, spill: store });
  try {
    await collect(b.run(bad));
    assert.unreachable('overflow');
  } catch (e) {
    assert.ok(e instanceof AggregateOverflowError, String(e));
  }
  assert.is(store.stats.filesLive, 0, 'failure');
  assert.is(k.memory.bytesInUse, before);
  await store.close();
  // a factory: the operator's own store, closed at the end
  let made: Awaited<ReturnType<typeof createMemorySpillStore>> | undefined;
  const c = new HashAggregator({
    kernels: k, schema: s, keys: [0], aggs: [{ op: 'count' }], budget: 5 * SEGMENT_BYTES,
    spill: { kind: 'memory', createSpillStore: async () => (made = await createMemorySpillStore()) },
  });
  assert.is((await collect(c.run(batches))).length, 16000);
  assert.ok(made?.closed, 'own store closed');
});

test('hash aggregate: a trusted batch of another schema is refused', async () => {
  const k = await kernelsFor(false);
  const fields: RefField[] = [{ kind: 'i32', nullable: false }, { kind: 'i64', nullable: false }];
  const other: RefField[] = [{ kind: 'i64', nullable: false }, { kind: 'i64', nullable: false }];
  const store = await createMemorySpillStore();
  const before = k.memory.bytesInUse;
  const a = new HashAggregator({ kernels: k, schema: schemaOf(fields), keys: [0], aggs: [{ op: 'count' }], budget: 5 * SEGMENT_BYTES, spill: store, trusted: true });
  try {
    await collect(a.run([encodeBatch(other, [[1n, 2n]])]));
    assert.unreachable('schema mismatch');
  } catch (e) {
    assert.ok(e instanceof SchemaMismatchError, String(e));
  }
  assert.is(k.memory.bytesInUse, before);
  await store.close();
});

test('hash aggregate: DISTINCT and a global aggregate over empty input (one row of NULLs and 0)', async () => {
  const k = await kernelsFor(false);
  const fields: RefField[] = [{ kind: 'i32', nullable: true }, { kind: 'f64', nullable: false }];
  const s = schemaOf(fields);
  const rows: RefValue[][] = Array.from({ length: 3000 }, (_, i) => [i % 7 === 0 ? null : i % 50, (i % 3) - 1 === 0 ? (i % 2 ? -0 : 0) : (i % 3) - 1]);
  const store = await createMemorySpillStore();
  const d = new HashAggregator({ kernels: k, schema: s, keys: [0, 1], aggs: [], budget: 5 * SEGMENT_BYTES, spill: store, outputBytes: 128 });
  const got = await collect(d.run([encodeBatch(fields, rows)]));
  assert.is(got.length, 51 * 3, 'distinct (i32?, f64) pairs; -0 = +0');
  const g = new HashAggregator({ kernels: k, schema: s, keys: [], aggs: [{ op: 'count' }, { op: 'sum', field: 1 }, { op: 'avg', field: 0 }], budget: 5 * SEGMENT_BYTES, spill: store });
  const empty = await collect(g.run([encodeBatch(fields, [])]));
  assert.is(empty.length, 1);
  const dv = new DataView(empty[0]!.buffer);
  assert.is(empty[0]![8], 0b110, 'sum and avg null');
  assert.is(dv.getBigInt64(16, true), 0n, 'count 0');
  await store.close();
});

test.run();
