// Tests that the blocking batch operators (join, aggregate, distinct, sort, top-n) hand their
// end-of-input result downstream in chunks through `Output.flush` — many flushes, none much larger
// than a kernel batch, a flush awaited before the next chunk is made — and that the result is still
// complete and correct (against a JS reference); also on an Output without `flush` (everything at the
// end) and with a flush that refuses to settle until the test lets it (backpressure).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { aggregatePlan, type AggSpec } from '../../bindings/aggregate.ts';
import { planJoin } from '../../bindings/join.ts';
import { schema, t } from '../../src/index.ts';
import type { Schema } from '../../src/core/schema.ts';
import type { MaybePromise, OperatorContext, Output, StreamOperator } from '../../src/graph/operator.ts';
import {
  BatchAggregateOperator,
  BatchJoinOperator,
  BatchSortOperator,
  batchCleanupSettled,
  FLUSH_MIN_ROWS,
  type JoinEmit,
} from '../../src/operators/batch/batch-operators.ts';
import { ManualClock } from '../../src/runtime/clock.ts';
import { Rng } from '../reference/random.ts';

const L = schema({ k: t.i64(), lv: t.i64(), s: t.string().nullable() });
const R = schema({ k: t.i64(), rv: t.f64() });
type LRow = { k: number; lv: number; s: string | null };
type RRow = { k: number; rv: number };

function ctx(name: string): OperatorContext {
  return {
    operatorName: name,
    operatorId: 1,
    subtaskIndex: 0,
    parallelism: 1,
    maxParallelism: 128,
    runtimeMode: 'batch',
    clock: new ManualClock(0),
    currentWatermark: Number.MIN_SAFE_INTEGER,
    getKeyedState: () => {
      throw new Error('no keyed state here');
    },
    mailbox: () => {},
    scheduleAt: () => () => {},
    track: () => {},
  };
}

/** An Output that records what is pushed and the size of each flushed chunk. */
class RecordingOutput implements Output {
  readonly all: unknown[] = [];
  pending = 0;
  readonly chunks: number[] = [];
  /** Flushes whose promise has not settled yet (must stay 0 when pushing: the operator awaits). */
  unsettled = 0;
  pushedWhileUnsettled = 0;
  constructor(private readonly slow = false) {}
  push(record: unknown): void {
    if (this.unsettled > 0) this.pushedWhileUnsettled++;
    this.all.push(record);
    this.pending++;
  }
  pushSide(): void {}
  pushWatermark(): void {}
  pushStatus(): void {}
  flush(): MaybePromise {
    this.chunks.push(this.pending);
    this.pending = 0;
    // every other flush waits (as one over the outputs' bound does) for a macrotask
    if (!this.slow || this.chunks.length % 2 === 0) return undefined;
    this.unsettled++;
    return new Promise<void>((resolve) => setTimeout(resolve, 0)).then(() => void this.unsettled--);
  }
}

/** An Output without `flush` (one that cannot flush): everything comes out when `endInput` returns. */
class PlainOutput implements Output {
  readonly all: unknown[] = [];
  push(record: unknown): void {
    this.all.push(record);
  }
  pushSide(): void {}
  pushWatermark(): void {}
  pushStatus(): void {}
}

async function run(op: StreamOperator, name: string, left: readonly unknown[], right: readonly unknown[] | undefined, out: Output): Promise<void> {
  op.open!(ctx(name));
  for (let i = 0; i < left.length; i += 1000) await op.processBatch(left.slice(i, i + 1000), out, i, undefined);
  if (right) for (let i = 0; i < right.length; i += 1000) await op.processBatch2!(right.slice(i, i + 1000), out, i, undefined);
  await op.endInput!(out);
}

const settings = () => ({});
const noRef = {};

function gen(seed: number, nl: number, nr: number): { left: LRow[]; right: RRow[] } {
  const rng = new Rng(seed);
  const left = Array.from({ length: nl }, (_, i) => ({ k: rng.int(nr), lv: i, s: rng.bool(0.1) ? null : `s${rng.int(50)}` }));
  const right = Array.from({ length: nr }, (_, j) => ({ k: j % Math.max(1, nr - 7), rv: j / 4 }));
  return { left, right };
}

function joinOp(emit: JoinEmit): BatchJoinOperator {
  const output = planJoin({ type: 'inner', left: L, right: R, leftKeys: ['k'], rightKeys: ['k'] }).output;
  return new BatchJoinOperator(
    {
      settings,
      type: 'inner',
      left: { schema: L, keys: ['k'] },
      right: { schema: R, keys: ['k'] },
      local: 'hybrid-hash',
      buildSide: 'right',
      sorted: { left: false, right: false },
      order: [{ desc: false, nullsFirst: false }],
      output,
      emit,
    },
    noRef,
  );
}

/** Chunks: several, each at least FLUSH_MIN_ROWS (but the last) and at most a few kernel batches. */
function checkChunks(out: RecordingOutput, total: number, what: string): void {
  assert.ok(out.chunks.length >= 4, `${what}: ${out.chunks.length} flushes for ${total} rows`);
  const flushed = out.chunks.reduce((a, b) => a + b, 0);
  assert.is(flushed + out.pending, total, `${what}: flushed + still pending = all rows`);
  for (const c of out.chunks) assert.ok(c >= FLUSH_MIN_ROWS, `${what}: a chunk of ${c} rows is below ${FLUSH_MIN_ROWS}`);
  const max = Math.max(...out.chunks);
  assert.ok(max <= total / 4, `${what}: largest chunk ${max} of ${total} rows`);
  assert.is(out.pushedWhileUnsettled, 0, `${what}: rows pushed while a flush was pending`);
}

const byJson = (a: unknown, b: unknown) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1);

test('join: the joined rows come out in chunks, complete', async () => {
  const { left, right } = gen(11, 30_000, 4_000);
  const byKey = new Map<number, RRow[]>();
  for (const r of right) byKey.set(r.k, [...(byKey.get(r.k) ?? []), r]);
  const expected: unknown[] = [];
  for (const l of left) for (const r of byKey.get(l.k) ?? []) expected.push({ k: l.k, lv: l.lv, s: l.s, k_r: r.k, rv: r.rv });
  for (const slow of [false, true]) {
    const out = new RecordingOutput(slow);
    await run(joinOp({ kind: 'rows' }), 'Join(inner)', left, right, out);
    checkChunks(out, expected.length, `rows, slow=${slow}`);
    assert.equal([...out.all].sort(byJson), [...expected].sort(byJson));
  }
  const plain = new PlainOutput();
  await run(joinOp({ kind: 'rows' }), 'Join(inner)', left, right, plain);
  assert.equal(plain.all.sort(byJson), [...expected].sort(byJson), 'an Output without flush gets everything');
  await batchCleanupSettled();
});

test('join with a function: its results come out in chunks, complete', async () => {
  const { left, right } = gen(12, 20_000, 3_000);
  const rightKeys = new Map<number, number>();
  for (const r of right) rightKeys.set(r.k, (rightKeys.get(r.k) ?? 0) + 1);
  let expected = 0;
  let sum = 0;
  for (const l of left) {
    const m = rightKeys.get(l.k) ?? 0;
    expected += m;
    sum += m * l.lv;
  }
  const out = new RecordingOutput(true);
  const emit: JoinEmit = {
    kind: 'with',
    fn: (l: LRow, r: RRow) => ({ lv: l.lv, same: l.k === r.k }),
    leftFields: L.names.map((n) => [n, n] as const),
    rightFields: R.names.map((n) => [n, n === 'k' ? 'k_r' : n] as const),
  };
  await run(joinOp(emit), 'Join(inner)', left, right, out);
  checkChunks(out, expected, 'with');
  const got = out.all as { lv: number; same: boolean }[];
  assert.ok(got.every((x) => x.same), 'each pair has equal keys');
  assert.is(got.reduce((a, x) => a + x.lv, 0), sum);
  await batchCleanupSettled();
});

test('aggregate and distinct: groups come out in chunks, complete', async () => {
  const rng = new Rng(13);
  const rows = Array.from({ length: 40_000 }, (_, i) => ({ k: rng.int(12_000), lv: i, s: null }));
  const aggs: AggSpec[] = [
    { op: 'count', as: 'n' },
    { op: 'sum', field: 'lv', as: 'total' },
  ];
  const output = aggregatePlan(L, ['k'], aggs).finalSchema;
  const expected = new Map<number, { n: number; total: number }>();
  for (const r of rows) {
    const e = expected.get(r.k) ?? { n: 0, total: 0 };
    e.n++;
    e.total += r.lv;
    expected.set(r.k, e);
  }
  const out = new RecordingOutput(true);
  await run(new BatchAggregateOperator({ settings, schema: L, keys: ['k'], aggs, output }, noRef), 'HashAggregate', rows, undefined, out);
  checkChunks(out, expected.size, 'aggregate');
  const got = new Map((out.all as { k: number; n: number; total: number }[]).map((g) => [g.k, { n: g.n, total: g.total }]));
  assert.equal(got, expected);

  const ks = schema({ k: t.i64() });
  const keys = rows.map((r) => ({ k: r.k }));
  const dout = new RecordingOutput();
  await run(new BatchAggregateOperator({ settings, schema: ks, keys: ['k'], aggs: [], output: aggregatePlan(ks, ['k'], []).finalSchema }, noRef), 'Distinct', keys, undefined, dout);
  checkChunks(dout, expected.size, 'distinct');
  assert.equal((dout.all as { k: number }[]).map((r) => r.k).sort((a, b) => a - b), [...expected.keys()].sort((a, b) => a - b));
  await batchCleanupSettled();
});

test('sort and top-n: rows come out in chunks, in order', async () => {
  const rng = new Rng(14);
  const rows: LRow[] = Array.from({ length: 30_000 }, (_, i) => ({ k: rng.int(1000), lv: i, s: rng.bool(0.2) ? null : `v${rng.int(100)}` }));
  const cmp = (a: LRow, b: LRow) => b.k - a.k || a.lv - b.lv;
  const expected = [...rows].sort(cmp);
  const keys = [
    { field: 'k', desc: true },
    { field: 'lv', desc: false },
  ];
  const out = new RecordingOutput(true);
  await run(new BatchSortOperator({ settings, schema: L as Schema, keys }, noRef), 'SortPartition', rows, undefined, out);
  checkChunks(out, rows.length, 'sort');
  assert.equal(out.all, expected);

  const tout = new RecordingOutput();
  await run(new BatchSortOperator({ settings, schema: L as Schema, keys, limit: 12_000, offset: 100 }, noRef), 'TopN', rows, undefined, tout);
  checkChunks(tout, 12_000, 'top-n');
  assert.equal(tout.all, expected.slice(100, 12_100));
  await batchCleanupSettled();
});

test.run();
