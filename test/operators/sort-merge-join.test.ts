// Tests the SortMergeJoin operator on every runtime, with the in-memory spill store and budgets small
// enough that both sorts spill: results equal the all-in-memory hash join (bindings/join.ts hashJoin)
// and the nested-loop reference as multisets, for every join type, on random multi-field keys of every
// kind with NULLs and duplicates; output comes in key order (full joins: see the operator); presorted
// inputs (ascending and descending) skip the sort and an input declared sorted that is not fails;
// one hot key larger than the whole budget is spilled and replayed; empty inputs; and no spill file
// and no managed memory is left over on success, failure (a corrupt batch) and early close.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { hashJoin, JOIN_TYPES, loadKernels, type JoinType, type Kernels } from '../../bindings/index.ts';
import { CorruptBatchError, JobDefinitionError, MemoryBudgetError } from '../../src/core/errors.ts';
import { SortMergeJoin, type JoinKeyOrder, type SortMergeJoinStats } from '../../src/operators/batch/sort-merge-join.ts';
import { memorySpill } from '../../src/platform/index.ts';
import { MemoryManager } from '../../src/runtime/memory-manager.ts';
import { concatRows, encodeBatch, fieldsOf, fingerprint, KINDS, randomValue, schemaOf, type RefField, type RefValue } from '../reference/batch.ts';
import { batchRows, refCompareKeys, refKeyValues, refSort, type RefKey } from '../reference/kernels.ts';
import { refJoin, rowMultiset } from '../reference/join.ts';
import { forSeeds, Rng } from '../reference/random.ts';

/** The smallest budget with both inputs sorted: 4 segments per sort, 12 for the merge. */
const MIN_BUDGET = 20 * SEGMENT_BYTES;

let kernels: Promise<Kernels> | undefined;
const k = () => (kernels ??= loadKernels({ budgetBytes: 512 << 20 }));

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const b of it) out.push(b);
  return out;
}

function cut(rng: Rng, fields: readonly RefField[], rows: readonly RefValue[][], max = 300): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < rows.length; ) {
    const n = rng.bool(0.03) ? 0 : rng.range(1, max);
    out.push(encodeBatch(fields, rows.slice(i, i + n)));
    i += n;
  }
  return out;
}

/** Re-cuts sorted rows into batches of random sizes. */
function recut(rng: Rng, fields: readonly RefField[], rows: readonly Uint8Array[], max = 200): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < rows.length; ) {
    const n = rng.range(1, max);
    out.push(concatRows(rows.slice(i, i + n), fingerprint(fields)));
    i += n;
  }
  return out;
}

interface Case {
  lf: RefField[];
  rf: RefField[];
  lk: number[];
  rk: number[];
  lb: Uint8Array[];
  rb: Uint8Array[];
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

function simple(rng: Rng, nl: number, nr: number, distinct: number): Case {
  const key = () => (rng.bool(0.03) ? null : BigInt(rng.int(distinct)));
  const lrows = Array.from({ length: nl }, (_, i): RefValue[] => [key(), `l${i}-${'x'.repeat(rng.int(40))}`, rng.bool(0.1) ? null : i * 0.5]);
  const rrows = Array.from({ length: nr }, (_, i): RefValue[] => [rng.bool(0.1) ? null : `r${i}${'y'.repeat(rng.int(60))}`, key()]);
  return { lf: LF, rf: RF, lk: [0], rk: [1], lb: cut(rng, LF, lrows), rb: cut(rng, RF, rrows) };
}

/** Random schemas sharing 1–3 key fields of random kinds (at different positions), keys from small domains. */
function multiKey(rng: Rng, nl: number, nr: number): Case {
  const nk = rng.range(1, 3);
  const kinds = Array.from({ length: nk }, () => rng.pick(KINDS));
  const build = (extra: number) => {
    const fields: RefField[] = Array.from({ length: extra }, () => ({ kind: rng.pick(KINDS), nullable: rng.bool() }));
    const keys: number[] = [];
    for (const kind of kinds) {
      const at = rng.int(fields.length + 1);
      fields.splice(at, 0, { kind, nullable: rng.bool(0.7) });
      for (let j = 0; j < keys.length; j++) if (keys[j]! >= at) keys[j]!++;
      keys.push(at);
    }
    return { fields, keys };
  };
  const L = build(rng.range(0, 4));
  const R = build(rng.range(0, 4));
  const pNull = rng.pick([0, 0.05, 0.3]);
  const rows = (f: { fields: RefField[]; keys: number[] }, n: number) =>
    Array.from({ length: n }, () =>
      f.fields.map((fd, i) => {
        if (fd.nullable && rng.bool(f.keys.includes(i) ? pNull : 0.2)) return null;
        return randomValue(rng, fd.kind, f.keys.includes(i));
      }),
    );
  return { lf: L.fields, rf: R.fields, lk: L.keys, rk: R.keys, lb: cut(rng, L.fields, rows(L, nl), 60), rb: cut(rng, R.fields, rows(R, nr), 60) };
}

interface RunOpts {
  budget?: number;
  buildSide?: 'left' | 'right';
  outputBytes?: number;
  sorted?: { left?: boolean; right?: boolean };
  order?: JoinKeyOrder[];
}

async function run(type: JoinType, c: Case, opts: RunOpts = {}): Promise<{ rows: Uint8Array[]; stats: SortMergeJoinStats; written: number }> {
  const kk = await k();
  const st = await memorySpill.createSpillStore();
  const before = kk.memory.bytesInUse;
  try {
    const join = new SortMergeJoin({
      kernels: kk,
      spill: st,
      type,
      left: { schema: schemaOf(c.lf), keys: c.lk, batches: c.lb, sorted: opts.sorted?.left },
      right: { schema: schemaOf(c.rf), keys: c.rk, batches: c.rb, sorted: opts.sorted?.right },
      buildSide: opts.buildSide,
      order: opts.order,
      budgetBytes: opts.budget ?? MIN_BUDGET,
      outputBytes: opts.outputBytes,
    });
    const got = await collect(join);
    assert.is(st.stats.filesLive, 0, 'no spill file left');
    assert.is(kk.memory.bytesInUse, before, 'no managed memory left');
    const rows = got.flatMap(batchRows);
    checkOrder(type, c, join.schema.types.length, rows, opts.order);
    return { rows, stats: join.stats, written: st.stats.batchesWritten };
  } finally {
    await st.close();
  }
}

/** Output rows come in key order: the left key (right key for right joins; full joins are not checked). */
function checkOrder(type: JoinType, c: Case, nOut: number, rows: readonly Uint8Array[], order: JoinKeyOrder[] = []): void {
  if (type === 'full') return;
  const out: RefField[] = type === 'semi' || type === 'anti' ? c.lf : [...c.lf, ...c.rf].map((f) => ({ ...f, nullable: true }));
  assert.is(out.length, nOut);
  const keys: RefKey[] = (type === 'right' ? c.rk.map((f) => f + c.lf.length) : c.lk).map((field, i) => ({ field, desc: order[i]?.desc, nullsFirst: order[i]?.nullsFirst }));
  let prev: ReturnType<typeof refKeyValues> | undefined;
  rows.forEach((r, i) => {
    const kv = refKeyValues(r, out, keys);
    if (prev !== undefined && refCompareKeys(prev, kv, keys) > 0) throw new Error(`${type}: output row ${i} is out of key order`);
    prev = kv;
  });
}

async function inMemory(type: JoinType, c: Case): Promise<string[]> {
  const spec = { type, left: schemaOf(c.lf), right: schemaOf(c.rf), leftKeys: c.lk, rightKeys: c.rk };
  return rowMultiset(hashJoin(await k(), spec, c.lb, c.rb).batches.flatMap(batchRows));
}

test('sort-merge join: every type, both sorts spill, equals the in-memory hash join', async () => {
  await forSeeds('smj/spill', 2, async (rng) => {
    const c = simple(rng, 6000, 5000, rng.pick([300, 3000, 50000]));
    for (const type of JOIN_TYPES) {
      const want = await inMemory(type, c);
      const got = await run(type, c, { outputBytes: rng.pick([64, 1024, 32768]), buildSide: rng.bool() ? 'left' : 'right' });
      assert.ok(got.stats.leftSort!.spilledRuns > 0 && got.stats.rightSort!.spilledRuns > 0, `${type}: both sorts spilled`);
      assert.equal(rowMultiset(got.rows), want, type);
    }
  });
});

test('sort-merge join: random multi-field keys of every kind == nested-loop reference', async () => {
  await forSeeds('smj/multi', 12, async (rng) => {
    const c = multiKey(rng, rng.range(0, 400), rng.range(0, 400));
    for (const type of JOIN_TYPES) {
      const got = await run(type, c, { budget: rng.pick([MIN_BUDGET, 4 << 20]) });
      assert.equal(rowMultiset(got.rows), rowMultiset(refJoin(type, c.lf, c.rf, c.lk, c.rk, c.lb, c.rb)), `${type} keys ${JSON.stringify(c.lf)} ${JSON.stringify(c.lk)} / ${JSON.stringify(c.rf)} ${JSON.stringify(c.rk)}`);
    }
  });
});

test('sort-merge join: presorted inputs (ascending and descending, nulls first or last) skip the sort', async () => {
  await forSeeds('smj/presorted', 6, async (rng) => {
    const c = multiKey(rng, rng.range(0, 800), rng.range(0, 800));
    const order: JoinKeyOrder[] = c.lk.map(() => ({ desc: rng.bool(), nullsFirst: rng.bool() }));
    const sortSide = (fields: RefField[], keys: number[], batches: Uint8Array[]) =>
      recut(rng, fields, refSort(batches, fields, keys.map((field, i) => ({ field, ...order[i] }))), rng.pick([5, 50, 300]));
    const left = rng.bool(0.7);
    const right = rng.bool(0.7);
    const s: Case = { ...c, lb: left ? sortSide(c.lf, c.lk, c.lb) : c.lb, rb: right ? sortSide(c.rf, c.rk, c.rb) : c.rb };
    for (const type of JOIN_TYPES) {
      const got = await run(type, s, { sorted: { left, right }, order, budget: rng.pick([MIN_BUDGET, 1 << 20]) });
      assert.is(got.stats.leftSort === undefined, left);
      assert.is(got.stats.rightSort === undefined, right);
      assert.equal(rowMultiset(got.rows), rowMultiset(refJoin(type, c.lf, c.rf, c.lk, c.rk, c.lb, c.rb)), type);
    }
  });
});

test('sort-merge join: an input declared sorted that is not is a JobDefinitionError naming the row', async () => {
  const kk = await k();
  const rows: RefValue[][] = [[1n, 'a', 0], [2n, 'b', 0], [3n, 'c', 0], [2n, 'd', 0]];
  for (const split of [2, 3]) {
    const st = await memorySpill.createSpillStore();
    const before = kk.memory.bytesInUse;
    try {
      const join = new SortMergeJoin({
        kernels: kk,
        spill: st,
        type: 'inner',
        left: { schema: schemaOf(LF), keys: [0], batches: [encodeBatch(LF, rows.slice(0, split)), encodeBatch(LF, rows.slice(split))], sorted: true },
        right: { schema: schemaOf(RF), keys: [1], batches: [encodeBatch(RF, [['x', 1n]])] },
        budgetBytes: MIN_BUDGET,
      });
      let err: unknown;
      try {
        await collect(join);
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof JobDefinitionError && /left input was declared sorted/.test(err.message) && err.context.operator === 'SortMergeJoin', String(err));
      assert.is((err as JobDefinitionError).context.recordIndex, split === 2 ? 1 : 0);
      assert.is(st.stats.filesLive, 0);
      assert.is(kk.memory.bytesInUse, before);
    } finally {
      await st.close();
    }
  }
});

/** One hot key: `nr` right rows and `nl` left rows of key 7 (wide rows), among a few other keys. */
function hot(rng: Rng, nl: number, nr: number): Case {
  const lrows = Array.from({ length: nl + 300 }, (_, i): RefValue[] => [i < nl ? 7n : BigInt(rng.range(0, 14)), `l${i}-${'w'.repeat(rng.int(200))}`, i]);
  const rrows = Array.from({ length: nr + 300 }, (_, i): RefValue[] => [`r${i}-${'z'.repeat(300)}`, i < nr ? 7n : rng.bool(0.1) ? null : BigInt(rng.range(0, 14))]);
  return { lf: LF, rf: RF, lk: [0], rk: [1], lb: cut(rng, LF, lrows, 25), rb: cut(rng, RF, rrows, 100) };
}

test('sort-merge join: one hot key larger than the whole budget is spilled and replayed', async () => {
  await forSeeds('smj/hot', 1, async (rng) => {
    const c = hot(rng, 30, 2000); // the right group alone (~650 KiB) is larger than any budget below
    // presorted in small batches, so that both sides' groups run past a batch: the right one (buffered
    // by default) is spilled and replayed per block of the left one; buffering the left one needs no spill
    const sorted = { ...c, lb: recut(rng, LF, refSort(c.lb, LF, [{ field: 0 }]), 25), rb: recut(rng, RF, refSort(c.rb, RF, [{ field: 1 }]), 50) };
    for (const type of JOIN_TYPES) {
      const want = await inMemory(type, c);
      for (const buildSide of ['right', 'left'] as const) {
        const got = await run(type, sorted, { sorted: { left: true, right: true }, budget: 12 * SEGMENT_BYTES, buildSide });
        if (type !== 'semi' && type !== 'anti') {
          const { spilledGroups, replays, maxGroupRows } = got.stats;
          if (buildSide === 'right') assert.ok(spilledGroups >= 1 && replays >= 1 && maxGroupRows >= 2000, `${type}: group spilled (${JSON.stringify(got.stats)})`);
          else assert.ok(spilledGroups === 0 && maxGroupRows < 100, `${type}: left group buffered (${JSON.stringify(got.stats)})`);
        }
        assert.equal(rowMultiset(got.rows), want, `${type} buffer=${buildSide}`);
      }
      // sorted by the operator (the left group, complete in one sorted batch, is the one buffered)
      const got = await run(type, c);
      assert.equal(rowMultiset(got.rows), want, `${type} sorted by the operator`);
    }
  });
});

test('sort-merge join: keys longer than a segment (sharing long prefixes)', async () => {
  const rng = new Rng(21);
  const fields: RefField[] = [
    { kind: 'string', nullable: true },
    { kind: 'i32', nullable: false },
  ];
  const key = () => (rng.bool(0.1) ? null : 'k'.repeat(40000) + rng.pick(['a', 'b', 'c', 'é']));
  const rows = (n: number) => Array.from({ length: n }, (_, i): RefValue[] => [key(), i]);
  const c: Case = { lf: fields, rf: fields, lk: [0], rk: [0], lb: cut(rng, fields, rows(30), 3), rb: cut(rng, fields, rows(20), 3) };
  for (const type of JOIN_TYPES) {
    const got = await run(type, c, { budget: 4 << 20 });
    assert.equal(rowMultiset(got.rows), rowMultiset(refJoin(type, fields, fields, [0], [0], c.lb, c.rb)), type);
  }
});

test('sort-merge join: empty inputs', async () => {
  const rng = new Rng(11);
  const full = simple(rng, 500, 500, 50);
  for (const [lb, rb] of [
    [[], full.rb],
    [full.lb, []],
    [[], []],
    [[encodeBatch(LF, [])], [encodeBatch(RF, [])]],
  ] as const) {
    const c = { ...full, lb: [...lb], rb: [...rb] };
    for (const type of JOIN_TYPES) {
      const got = await run(type, c);
      assert.equal(rowMultiset(got.rows), rowMultiset(refJoin(type, LF, RF, [0], [1], c.lb, c.rb)), `${type} ${lb.length}/${rb.length}`);
    }
  }
});

test('sort-merge join: output schema as the hash join; budget errors; corrupt input and early close leave nothing', async () => {
  const kk = await k();
  const c = simple(new Rng(5), 3000, 3000, 500);
  const st = await memorySpill.createSpillStore();
  const mk = (l: Iterable<Uint8Array>, r: Iterable<Uint8Array>, budgetBytes = MIN_BUDGET) =>
    new SortMergeJoin({
      kernels: kk,
      spill: st,
      type: 'left',
      left: { schema: schemaOf(LF), keys: ['f0'], batches: l },
      right: { schema: schemaOf(RF), keys: ['f1'], batches: r },
      budgetBytes,
    });
  try {
    assert.is(mk(c.lb, c.rb).schema.toString(), '{ f0: i64(bigint)?, f1: string, f2: f64?, f0_r: string?, f1_r: i64(bigint)? }');
    assert.equal(fieldsOf(mk(c.lb, c.rb).schema), [...LF, ...RF.map((f) => ({ ...f, nullable: true }))]);
    assert.throws(() => mk(c.lb, c.rb, MIN_BUDGET - SEGMENT_BYTES), (e: unknown) => e instanceof MemoryBudgetError && /needs at least 640 KiB/.test((e as Error).message));
    const before = kk.memory.bytesInUse;
    for (const side of ['left', 'right']) {
      const bad = (side === 'left' ? c.lb : c.rb).slice();
      bad.splice(3, 0, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16));
      let err: unknown;
      try {
        await collect(side === 'left' ? mk(bad, c.rb) : mk(c.lb, bad));
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof CorruptBatchError, String(err));
      assert.is(st.stats.filesLive, 0);
      assert.is(kk.memory.bytesInUse, before);
    }
    for (const stopAfter of [0, 1, 5]) {
      const j = mk(c.lb, c.rb);
      const it = j[Symbol.asyncIterator]();
      for (let i = 0; i < stopAfter; i++) await it.next();
      await j.close();
      assert.is(st.stats.filesLive, 0);
      assert.is(kk.memory.bytesInUse, before);
    }
  } finally {
    await st.close();
  }
});

test('sort-merge join: within a MemoryReservation', async () => {
  const kk = await k();
  const mm = MemoryManager.create({ managedMemory: 24 * SEGMENT_BYTES, consumers: [{ operator: 'Join' }] });
  const r = mm.reservation('Join');
  const c = simple(new Rng(9), 4000, 4000, 700);
  const st = await memorySpill.createSpillStore();
  try {
    const join = new SortMergeJoin({ kernels: kk, spill: st, type: 'full', left: { schema: schemaOf(LF), keys: [0], batches: c.lb }, right: { schema: schemaOf(RF), keys: [1], batches: c.rb }, reservation: r });
    const got = (await collect(join)).flatMap(batchRows);
    assert.equal(rowMultiset(got), await inMemory('full', c));
    assert.is(r.segmentsReserved, 0, 'reservation released');
    assert.ok(r.peakSegments <= 24);
  } finally {
    await st.close();
  }
});

test.run();
