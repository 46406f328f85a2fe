// Tests the top-n operator (src/operators/batch/top-n.ts) on every runtime: seeded differential tests
// against the stable reference sort (rows [offset, offset + limit) of it, byte for byte, so ties must
// keep their input order) over random schemas of every field type, random keys (direction, nulls
// first / last) and small key domains (many ties), with budgets small enough to compact many times;
// the fallback to an external sort (offset + limit rows larger than half the budget) spilling to the
// in-memory store; limit 0, offset past the end, empty input; a MemoryReservation budget; and that no
// managed memory is left after success, early stop, close and a corrupt batch.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { CorruptBatchError, JobDefinitionError, MemoryBudgetError } from '../../src/core/errors.ts';
import { TopN, topN, type TopNOptions, type TopNStats } from '../../src/operators/batch/top-n.ts';
import { memorySpill } from '../../src/platform/index.ts';
import type { SpillStoreFactory } from '../../src/platform/types.ts';
import { MemoryManager } from '../../src/runtime/memory-manager.ts';
import { encodeBatch, KINDS, randomRows, schemaOf, type RefField } from '../reference/batch.ts';
import { checkOutputs, kernelsFor, randomKeys } from '../reference/harness.ts';
import { refSort, type RefKey } from '../reference/kernels.ts';
import { forSeeds, type Rng } from '../reference/random.ts';

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const b of it) out.push(b);
  return out;
}

function randomInput(rng: Rng, fields: RefField[], nRows: number): Uint8Array[] {
  const rows = randomRows(rng, fields, nRows);
  const out: Uint8Array[] = [];
  for (let i = 0; i < rows.length; ) {
    const n = rng.bool(0.05) ? 0 : rng.range(1, rng.pick([10, 60, 400]));
    out.push(encodeBatch(fields, rows.slice(i, i + n)));
    i += n;
  }
  return out;
}

/** Runs a top-n through the class API and checks it against the reference; returns its stats. */
async function check(rng: Rng, fields: RefField[], keys: RefKey[], input: Uint8Array[], opts: Partial<TopNOptions> & { limit: number; budget: number }): Promise<TopNStats> {
  const k = await kernelsFor(rng.bool(0.2));
  const before = k.memory.bytesInUse;
  const outputBytes = rng.pick([256, 4096, SEGMENT_BYTES]);
  const top = new TopN({ kernels: k, schema: schemaOf(fields), keys, spill: memorySpill, outputBytes, ...opts });
  for (const b of input) await top.add(b);
  const got = await collect(top.sorted());
  const offset = opts.offset ?? 0;
  const want = refSort(input, fields, keys).slice(offset, offset + opts.limit);
  checkOutputs(got, fields, outputBytes, want, `limit ${opts.limit} offset ${offset} budget ${opts.budget} keys ${JSON.stringify(keys)}`);
  assert.is(k.memory.bytesInUse, before, 'managed memory returned');
  const st = top.stats;
  assert.ok(st.peakBytes <= opts.budget, `peak ${st.peakBytes} within budget ${opts.budget}`);
  return st;
}

test('top-n == rows [offset, offset + limit) of the stable reference sort (random schemas, keys, ties)', async () => {
  let compacted = 0;
  let fellBack = 0;
  let seedIndex = 0;
  await forSeeds('top-n/random', 30, async (rng) => {
    const n = rng.range(1, 6);
    const fields: RefField[] = Array.from({ length: n }, () => ({ kind: rng.pick(KINDS), nullable: rng.bool(0.5) }));
    fields[0]!.kind = KINDS[seedIndex++ % KINDS.length]!;
    const keys = randomKeys(rng, n);
    // every third seed: a long input, a small limit and a small budget (many compactions); every
    // fifth: a limit larger than the budget holds (the fallback)
    const compact = seedIndex % 3 === 0;
    const fallBack = seedIndex % 5 === 0;
    const input = randomInput(rng, fields, compact || fallBack ? 8000 : rng.pick([0, 1, 500, 3000, 8000]));
    const limit = compact ? rng.pick([1, 5, 100]) : fallBack ? 20000 : rng.pick([0, 1, 5, 100, 1000, 20000]);
    const offset = rng.pick([0, 0, 3, 250, 5000]);
    const budget = (compact ? 4 : rng.range(4, 12)) * SEGMENT_BYTES;
    const st = await check(rng, fields, keys, input, { limit, offset, budget });
    if (st.compactions > 1) compacted++;
    if (st.fellBack) fellBack++;
  });
  assert.ok(compacted >= 3, `${compacted} seeds compacted more than once`);
  assert.ok(fellBack >= 1, `${fellBack} seeds fell back to the external sort`);
});

test('top-n: small limit over a long input compacts in place; large limit falls back to a spilling sort', async () => {
  await forSeeds('top-n/modes', 3, async (rng) => {
    const fields: RefField[] = [
      { kind: 'string', nullable: true },
      { kind: 'i64', nullable: false },
      { kind: 'f64', nullable: true },
    ];
    const keys: RefKey[] = [{ field: 0, desc: rng.bool(), nullsFirst: rng.bool() }, { field: 2 }];
    const input = randomInput(rng, fields, 20000);
    const small = await check(rng, fields, keys, input, { limit: 10, offset: 5, budget: 6 * SEGMENT_BYTES });
    assert.ok(!small.fellBack && small.compactions >= 5, JSON.stringify(small));
    const large = await check(rng, fields, keys, input, { limit: 15000, offset: 10, budget: 6 * SEGMENT_BYTES });
    assert.ok(large.fellBack && large.sort!.spilledRuns > 0, JSON.stringify(large));
  });
});

test('top-n: limit 0 reads nothing, offset past the end, empty input, the topN() function', async () => {
  const k = await kernelsFor(false);
  const fields: RefField[] = [{ kind: 'i32', nullable: false }];
  const schema = schemaOf(fields);
  const never: SpillStoreFactory = { kind: 'memory', createSpillStore: () => Promise.reject(new Error('must not spill')) };
  const input = [encodeBatch(fields, [[3], [1], [2]]), encodeBatch(fields, [[1]])];
  const opts = { kernels: k, schema, keys: [0], budget: 1 << 20, spill: never };
  let read = false;
  const poisoned = (async function* () {
    read = true;
    yield* input;
  })();
  assert.equal(await collect(topN(poisoned, { ...opts, limit: 0 })), []);
  assert.is(read, false, 'limit 0 reads no input');
  assert.equal(await collect(topN(input, { ...opts, limit: 2, offset: 4 })), []);
  assert.equal(await collect(topN([], { ...opts, limit: 2 })), []);
  const it = topN(input, { ...opts, limit: 2, offset: 1 });
  const got: Uint8Array[] = [];
  let r = await it.next();
  while (!r.done) {
    got.push(r.value);
    r = await it.next();
  }
  checkOutputs(got, fields, SEGMENT_BYTES, refSort(input, fields, [{ field: 0 }]).slice(1, 3), 'topN()');
  assert.equal({ ...r.value, peakBytes: 0 }, { rows: 4, compactions: 1, fellBack: false, sort: undefined, peakBytes: 0 });
});

test('top-n: a MemoryReservation budget, returned at the end; errors; nothing left after close and failures', async () => {
  const k = await kernelsFor(false);
  const fields: RefField[] = [
    { kind: 'i64', nullable: true },
    { kind: 'string', nullable: true },
  ];
  const schema = schemaOf(fields);
  const mm = MemoryManager.create({ managedMemory: 5 * SEGMENT_BYTES, consumers: [{ operator: 'TopN(f1)' }] });
  const r = mm.reservation('TopN(f1)');
  await forSeeds('top-n/reservation', 3, async (rng) => {
    const input = randomInput(rng, fields, 5000);
    const keys: RefKey[] = [{ field: 1, desc: true }, { field: 0, nullsFirst: true }];
    for (const limit of [7, 4000]) {
      const out = await collect(topN(input, { kernels: k, schema, keys, limit, budget: r, spill: memorySpill, operator: 'TopN(f1)' }));
      checkOutputs(out, fields, SEGMENT_BYTES, refSort(input, fields, keys).slice(0, limit), `reservation, limit ${limit}`);
      assert.is(r.segmentsReserved, 0);
      assert.ok(r.peakSegments <= 5);
    }
  });
  const base = { kernels: k, schema, keys: [1], spill: memorySpill, budget: 8 * SEGMENT_BYTES };
  assert.throws(() => new TopN({ ...base, limit: -1 }), (e: unknown) => e instanceof JobDefinitionError && /limit must be a whole number/.test((e as Error).message));
  assert.throws(() => new TopN({ ...base, limit: 1, offset: 0.5 }), (e: unknown) => e instanceof JobDefinitionError);
  assert.throws(() => new TopN({ ...base, limit: 1, keys: [] }), (e: unknown) => e instanceof JobDefinitionError);
  assert.throws(() => new TopN({ ...base, limit: 1, keys: ['nope'] }), (e: unknown) => e instanceof JobDefinitionError);
  assert.throws(() => new TopN({ ...base, limit: 1, budget: 3 * SEGMENT_BYTES }), (e: unknown) => e instanceof MemoryBudgetError && /at least 128 KiB/.test((e as Error).message));
  const before = k.memory.bytesInUse;
  const input = randomInput(new (await import('../reference/random.ts')).Rng(3), fields, 3000);
  for (const limit of [5, 2500]) {
    // corrupt batch
    const bad = input.slice();
    bad.splice(4, 0, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16));
    let err: unknown;
    try {
      await collect(topN(bad, { ...base, limit }));
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof CorruptBatchError, String(err));
    assert.is(k.memory.bytesInUse, before);
    // early stop and close
    const it = topN(input, { ...base, limit, outputBytes: 256 });
    await it.next();
    await it.return(undefined as never);
    assert.is(k.memory.bytesInUse, before);
    const t = new TopN({ ...base, limit });
    for (const b of input.slice(0, 20)) await t.add(b);
    await t.close();
    await t.add(input[0]!).then(
      () => assert.unreachable('add after close'),
      (e: unknown) => assert.match(String(e), /closed/),
    );
    assert.is(k.memory.bytesInUse, before);
  }
});

test.run();
