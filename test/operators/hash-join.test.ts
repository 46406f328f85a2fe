// Tests the HybridHashJoin operator: with budgets small enough that every run spills (and recurses),
// results equal the all-in-memory join (bindings/join.ts hashJoin) as multisets, for every join type
// and both build sides; a hot key larger than the budget goes through the block-nested-loop fallback;
// small cases agree with the nested-loop reference; no spill file and no managed memory is left over,
// on success, on failure (a corrupt input batch) and on early close; reused output buffers and trusted
// inputs give the same batches, byte for byte and in order, as copies and validated inputs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hashJoin, JOIN_TYPES, loadKernels, type JoinType, type Kernels } from '../../bindings/index.ts';
import { CorruptBatchError, SchemaMismatchError } from '../../src/core/errors.ts';
import { HybridHashJoin } from '../../src/operators/batch/hash-join.ts';
import { detectPlatform } from '../../src/platform/index.ts';
import type { SpillStore } from '../../src/platform/types.ts';
import { encodeBatches, schemaOf, type RefField, type RefValue } from '../reference/batch.ts';
import { batchRows } from '../reference/kernels.ts';
import { refJoin, rowMultiset } from '../reference/join.ts';
import { forSeeds, type Rng } from '../reference/random.ts';

const BUDGET = 256 * 1024;

let kernels: Promise<Kernels> | undefined;
const k = () => (kernels ??= loadKernels({ budgetBytes: 512 << 20 }));

async function store(): Promise<SpillStore> {
  return (await detectPlatform()).spill.createSpillStore();
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const b of it) out.push(b);
  return out;
}

function cut(rng: Rng, fields: RefField[], rows: RefValue[][]): Uint8Array[] {
  return encodeBatches(rng, fields, rows, 300);
}

const LF: RefField[] = [
  { kind: 'i64', nullable: true },
  { kind: 'string', nullable: false },
  { kind: 'f64', nullable: true },
];
const RF: RefField[] = [
  { kind: 'string', nullable: true },
  { kind: 'i64', nullable: true },
];

function sides(rng: Rng, nl: number, nr: number, distinct: number) {
  const key = () => (rng.bool(0.03) ? null : BigInt(rng.int(distinct)));
  const lrows = Array.from({ length: nl }, (_, i): RefValue[] => [key(), `l${i}-${'x'.repeat(rng.int(40))}`, rng.bool(0.1) ? null : i * 0.5]);
  const rrows = Array.from({ length: nr }, (_, i): RefValue[] => [rng.bool(0.1) ? null : `r${i}${'y'.repeat(rng.int(60))}`, key()]);
  return { lb: cut(rng, LF, lrows), rb: cut(rng, RF, rrows) };
}

async function runJoin(
  type: JoinType,
  lb: Uint8Array[],
  rb: Uint8Array[],
  opts: { buildSide?: 'left' | 'right'; budget?: number; outputBytes?: number; reuseOutput?: boolean; trusted?: boolean } = {},
) {
  const kk = await k();
  const st = await store();
  const before = kk.memory.bytesInUse;
  try {
    const join = new HybridHashJoin({
      kernels: kk,
      spill: st,
      type,
      left: { schema: schemaOf(LF), keys: [0], batches: lb, trusted: opts.trusted },
      right: { schema: schemaOf(RF), keys: [1], batches: rb, trusted: opts.trusted },
      buildSide: opts.buildSide,
      budgetBytes: opts.budget ?? BUDGET,
      outputBytes: opts.outputBytes,
      reuseOutput: opts.reuseOutput,
    });
    // a reused batch is valid until the next is asked for: keep a copy
    const got: Uint8Array[] = [];
    for await (const b of join) got.push(opts.reuseOutput ? b.slice() : b);
    assert.is(st.stats.filesLive, 0, 'no spill file left');
    assert.is(kk.memory.bytesInUse, before, 'no managed memory left');
    return { batches: got, rows: got.flatMap(batchRows), stats: join.stats, written: st.stats.batchesWritten };
  } finally {
    await st.close();
  }
}

async function inMemory(type: JoinType, lb: Uint8Array[], rb: Uint8Array[]) {
  const kk = await k();
  const spec = { type, left: schemaOf(LF), right: schemaOf(RF), leftKeys: [0], rightKeys: [1] };
  return hashJoin(kk, spec, lb, rb).batches.flatMap(batchRows);
}

test('hybrid hash join: every type and build side spills and equals the in-memory join', async () => {
  await forSeeds('hybrid/spill', 2, async (rng) => {
    const { lb, rb } = sides(rng, 6000, 5000, rng.pick([300, 3000, 50000]));
    for (const type of JOIN_TYPES) {
      const want = rowMultiset(await inMemory(type, lb, rb));
      for (const buildSide of ['left', 'right'] as const) {
        const got = await runJoin(type, lb, rb, { buildSide, outputBytes: rng.pick([64, 1024, 32768]) });
        assert.ok(got.stats.spilledPartitions > 0 && got.written > 0, `${type}/${buildSide} spilled`);
        assert.equal(rowMultiset(got.rows), want, `${type} build=${buildSide}`);
      }
    }
  });
});

test('hybrid hash join: small inputs stay in memory and match the nested-loop reference', async () => {
  await forSeeds('hybrid/small', 10, async (rng) => {
    const { lb, rb } = sides(rng, rng.range(0, 200), rng.range(0, 200), rng.pick([3, 30, 1000]));
    for (const type of JOIN_TYPES) {
      const got = await runJoin(type, lb, rb, { budget: 4 << 20 });
      assert.is(got.stats.spilledPartitions, 0);
      assert.equal(rowMultiset(got.rows), rowMultiset(refJoin(type, LF, RF, [0], [1], lb, rb)), type);
    }
  });
});

test('hybrid hash join: one hot key larger than the budget (block-nested-loop fallback)', async () => {
  await forSeeds('hybrid/skew', 1, async (rng) => {
    const lrows = Array.from({ length: 400 }, (_, i): RefValue[] => [i % 8 === 0 ? 7n : BigInt(i), `l${i}`, i]);
    const rrows = Array.from({ length: 5000 }, (_, i): RefValue[] => [`r${i}-${'z'.repeat(100)}`, i % 50 === 0 ? BigInt(i) : 7n]);
    const lb = cut(rng, LF, lrows);
    const rb = cut(rng, RF, rrows);
    for (const type of JOIN_TYPES) {
      const want = rowMultiset(await inMemory(type, lb, rb));
      for (const buildSide of ['left', 'right'] as const) {
        const got = await runJoin(type, lb, rb, { buildSide });
        if (buildSide === 'right') assert.ok(got.stats.fallbackChunks > 1, `${type}: fallback in chunks (${JSON.stringify(got.stats)})`);
        assert.equal(rowMultiset(got.rows), want, `${type} build=${buildSide}`);
      }
    }
  });
});

test('hybrid hash join: reused output buffers and trusted inputs give the same batches in the same order', async () => {
  // spare output buffers take budget, so a join that spills may spill other partitions (rows then come
  // in another order): there the rows are compared as multisets, elsewhere the batches byte for byte
  const same = async (type: JoinType, lb: Uint8Array[], rb: Uint8Array[], budget: number, rng: Rng) => {
    const buildSide = rng.bool() ? 'left' : 'right';
    const outputBytes = rng.pick([64, 1024, 32768]);
    const base = await runJoin(type, lb, rb, { buildSide, budget, outputBytes });
    const what = `${type} build=${buildSide} budget ${budget} out ${outputBytes}`;
    for (const o of [{ reuseOutput: true }, { trusted: true }, { reuseOutput: true, trusted: true }]) {
      const got = await runJoin(type, lb, rb, { buildSide, budget, outputBytes, ...o });
      if (o.reuseOutput && (got.stats.spilledPartitions > 0 || base.stats.spilledPartitions > 0)) {
        assert.equal(rowMultiset(got.rows), rowMultiset(base.rows), `${what} ${JSON.stringify(o)}: rows`);
        continue;
      }
      assert.is(got.batches.length, base.batches.length, `${what} ${JSON.stringify(o)}: batch count`);
      got.batches.forEach((b, i) => assert.equal(b, base.batches[i], `${what} ${JSON.stringify(o)}: batch ${i}`));
    }
    return base.stats;
  };
  await forSeeds('hybrid/reuse', 2, async (rng) => {
    const { lb, rb } = sides(rng, 3000, 2500, rng.pick([30, 3000]));
    for (const type of JOIN_TYPES) for (const budget of [BUDGET, 16 << 20]) await same(type, lb, rb, budget, rng);
    // spilling with spare output buffers (they are taken from 2 MiB of budget on)
    const big = sides(rng, 30000, 25000, rng.pick([3000, 100000]));
    for (const type of [rng.pick(JOIN_TYPES), 'inner' as const]) {
      const st = await same(type, big.lb, big.rb, 2 << 20, rng);
      assert.ok(st.spilledPartitions > 0, `${type}: spilled at 2 MiB`);
    }
  });
  // a trusted batch still has its header checked: another schema is refused
  const kk = await k();
  const st = await store();
  const before = kk.memory.bytesInUse;
  try {
    const { lb } = sides(new (await import('../reference/random.ts')).Rng(3), 10, 0, 5);
    const join = new HybridHashJoin({
      kernels: kk,
      spill: st,
      type: 'inner',
      left: { schema: schemaOf(LF), keys: [0], batches: lb, trusted: true },
      right: { schema: schemaOf(RF), keys: [1], batches: lb, trusted: true },
      budgetBytes: BUDGET,
    });
    let err: unknown;
    try {
      await collect(join);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof SchemaMismatchError, String(err));
    assert.is(kk.memory.bytesInUse, before);
  } finally {
    await st.close();
  }
});

test('hybrid hash join: build side by estimate; corrupt input and early close leave nothing behind', async () => {
  const kk = await k();
  const rng = (await import('../reference/random.ts')).Rng;
  const { lb, rb } = sides(new rng(5), 3000, 3000, 500);
  const mk = (st: SpillStore, l: Iterable<Uint8Array>, r: Iterable<Uint8Array>, est?: [number, number]) =>
    new HybridHashJoin({
      kernels: kk,
      spill: st,
      type: 'inner',
      left: { schema: schemaOf(LF), keys: ['f0'], batches: l, estimatedBytes: est?.[0] },
      right: { schema: schemaOf(RF), keys: ['f1'], batches: r, estimatedBytes: est?.[1] },
      budgetBytes: BUDGET,
    });
  const st = await store();
  try {
    assert.is(mk(st, lb, rb, [10, 100]).plan.buildSide, 'left');
    assert.is(mk(st, lb, rb, [100, 10]).plan.buildSide, 'right');
    assert.is(mk(st, lb, rb).plan.buildSide, 'right');
    const before = kk.memory.bytesInUse;
    const bad = rb.slice();
    bad.push(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16));
    let err: unknown;
    try {
      await collect(mk(st, lb, bad));
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof CorruptBatchError, String(err));
    assert.is(st.stats.filesLive, 0);
    assert.is(kk.memory.bytesInUse, before);
    const j = mk(st, lb, rb);
    const it = j[Symbol.asyncIterator]();
    await it.next();
    await j.close();
    assert.is(st.stats.filesLive, 0);
    assert.is(kk.memory.bytesInUse, before);
  } finally {
    await st.close();
  }
});

test.run();
