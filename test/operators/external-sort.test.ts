// Tests the external sort (src/operators/batch/external-sort.ts) on every runtime: seeded differential
// tests against the TS reference sort over random schemas of every field type with budgets so small
// that every run spills and the merge needs several passes (and byte-identical output to the in-memory
// kernel sort); the budget as bytes and as a MemoryReservation; the budget error; and that no spill file
// and no byte of managed memory is left behind after success, early stop, close, abort and failures;
// trusted input sorts the same, and a trusted batch of another schema is still refused.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { CorruptBatchError, JobDefinitionError, MemoryBudgetError, SchemaMismatchError } from '../../src/core/errors.ts';
import { ExternalSorter, externalSort, type ExternalSortOptions } from '../../src/operators/batch/external-sort.ts';
import { detectPlatform, memorySpill } from '../../src/platform/index.ts';
import type { SpillStore, SpillStoreFactory, SpillWriter } from '../../src/platform/types.ts';
import { MemoryManager } from '../../src/runtime/memory-manager.ts';
import { encodeBatch, KINDS, randomRows, schemaOf, type RefField } from '../reference/batch.ts';
import { BUILDS, checkOutputs, kernelsFor, randomKeys } from '../reference/harness.ts';
import { refSort, type RefKey } from '../reference/kernels.ts';
import { forSeeds, type Rng } from '../reference/random.ts';

const parent = mkdtempSync(join(tmpdir(), 'sluice-xsort-test-'));
const runtimeSpill = (await detectPlatform()).spill;
/** The runtime's file spill store, rooted under `parent` so the tests can see every temp file. */
const fileSpill: SpillStoreFactory = { kind: runtimeSpill.kind, createSpillStore: (o) => runtimeSpill.createSpillStore({ ...o, dir: parent }) };
const leftovers = () => readdirSync(parent);

/** 1–8 fields of random kinds (every kind appears across seeds), plus the random rows cut into small batches. */
function randomInput(rng: Rng, nRows: number, fields: RefField[]): Uint8Array[] {
  const rows = randomRows(rng, fields, nRows);
  const out: Uint8Array[] = [];
  for (let i = 0; i < rows.length; ) {
    const n = rng.bool(0.05) ? 0 : rng.range(1, 40);
    out.push(encodeBatch(fields, rows.slice(i, i + n)));
    i += n;
  }
  if (rng.bool(0.3)) out.push(encodeBatch(fields, []));
  return out;
}

function randomSchema(rng: Rng, seedIndex: number): RefField[] {
  const n = rng.range(1, 8);
  const fields = Array.from({ length: n }, () => ({ kind: rng.pick(KINDS), nullable: rng.bool(0.5) }));
  fields[0]!.kind = KINDS[seedIndex % KINDS.length]!; // every kind leads the key in turn
  return fields;
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const b of it) out.push(b);
  return out;
}

let seedIndex = 0;
for (const { name, debug } of BUILDS) {
  test(`[${name}] external sort == reference sort == in-memory kernel sort, every run spilled, multi-pass merges`, async () => {
    const k = await kernelsFor(debug);
    let multiPass = 0;
    await forSeeds('external-sort/random', 25, async (rng) => {
      const fields = randomSchema(rng, seedIndex++);
      const keys: RefKey[] = [{ field: 0, desc: rng.bool(), nullsFirst: rng.bool() }, ...randomKeys(rng, fields.length)];
      const forceMulti = seedIndex % 4 === 0; // a long input with the smallest budget: several merge passes
      const input = randomInput(rng, forceMulti ? 6000 : rng.pick([0, 1, 300, 1500, 4000]), fields);
      const schema = schemaOf(fields);
      const outputBytes = rng.pick([256, 1024, 4096, SEGMENT_BYTES]);
      // 4–7 segments: a run holds ≤ 2–5 segments of input, and the merge fan-in is 2–5
      const budget = (forceMulti ? 4 : rng.range(4, 7)) * SEGMENT_BYTES;
      const before = k.memory.bytesInUse;
      const sorter = new ExternalSorter({ kernels: k, schema, keys, budget, spill: rng.bool() ? fileSpill : memorySpill, outputBytes });
      for (const b of input) await sorter.add(b);
      const got = await collect(sorter.sorted());
      const st = sorter.stats;
      // trusted input (header checked, rows not validated again): the same batches
      const trusted = new ExternalSorter({ kernels: k, schema, keys, budget, spill: memorySpill, outputBytes, trusted: true });
      for (const b of input) await trusted.add(b);
      assert.equal(await collect(trusted.sorted()), got, 'trusted input: the same batches');
      // views into one output buffer when it stays in memory: the same batches (copied as they come)
      const reuse = new ExternalSorter({ kernels: k, schema, keys, budget, spill: memorySpill, outputBytes, reuseOutput: true });
      for (const b of input) await reuse.add(b);
      const views: Uint8Array[] = [];
      for await (const v of reuse.sorted()) views.push(v.slice());
      assert.equal(views, got, 'reuseOutput: the same batches');
      assert.is(k.memory.bytesInUse, before, 'reuseOutput: managed memory returned');
      const want = refSort(input, fields, keys);
      checkOutputs(got, fields, outputBytes, want, `budget ${budget} out ${outputBytes} keys ${JSON.stringify(keys)}`);
      assert.is(k.memory.bytesInUse, before, 'managed memory returned');
      assert.ok(st.peakBytes <= budget, `peak ${st.peakBytes} within budget ${budget}`);
      if (st.runs > 1) assert.is(st.spilledRuns >= st.runs, true, 'every run spilled');
      if (st.mergePasses > 1) multiPass++;
      // the same rows as the kernel's in-memory sort, byte for byte (both are stable)
      const managed = input.map((b) => k.copyIn(b, schema));
      const mem = k.sort(schema, managed, keys, { outputBytes });
      managed.forEach((b) => k.free(b));
      checkOutputs(got, fields, outputBytes, mem.flatMap((b) => refSort([b], fields, [])), 'vs in-memory');
      assert.equal(leftovers(), [], 'no spill directory left');
    });
    assert.ok(multiPass > 0, 'some seeds needed a multi-pass merge');
  });
}

test('external sort: many runs with a MemoryReservation budget, multi-pass, reservation returned', async () => {
  const k = await kernelsFor(false);
  const fields: RefField[] = [
    { kind: 'i64', nullable: true },
    { kind: 'string', nullable: true },
    { kind: 'f64', nullable: false },
  ];
  const schema = schemaOf(fields);
  const mm = MemoryManager.create({ managedMemory: 5 * SEGMENT_BYTES, consumers: [{ operator: 'Sort(f0)' }] });
  const r = mm.reservation('Sort(f0)');
  await forSeeds('external-sort/reservation', 4, async (rng) => {
    const input = randomInput(rng, 6000, fields);
    const keys: RefKey[] = [{ field: 1, desc: true }, { field: 0, nullsFirst: true }, { field: 2 }];
    const out: Uint8Array[] = [];
    const it = externalSort(input, { kernels: k, schema, keys, budget: r, spill: fileSpill, operator: 'Sort(f0)' });
    let res = await it.next();
    while (!res.done) {
      out.push(res.value);
      assert.ok(r.segmentsReserved <= 5);
      res = await it.next();
    }
    const st = res.value;
    assert.ok(st.runs >= 5 && st.mergePasses >= 2, `runs ${st.runs}, passes ${st.mergePasses}`);
    assert.ok(st.maxFanIn <= 3, `fan-in ${st.maxFanIn} fits 5 segments`);
    checkOutputs(out, fields, SEGMENT_BYTES, refSort(input, fields, keys), 'reservation');
    assert.is(r.segmentsReserved, 0);
    assert.ok(r.peakSegments <= 5);
  });
  assert.equal(leftovers(), []);
});

test('external sort: a trusted batch of another schema is refused', async () => {
  const k = await kernelsFor(false);
  const s = new ExternalSorter({ kernels: k, schema: schemaOf([{ kind: 'i32', nullable: false }]), keys: [0], budget: 1 << 20, spill: memorySpill, trusted: true });
  const before = k.memory.bytesInUse;
  await s.add(encodeBatch([{ kind: 'i64', nullable: false }], [[1n]])).then(
    () => assert.unreachable('schema mismatch'),
    (e: unknown) => assert.ok(e instanceof SchemaMismatchError, String(e)),
  );
  await s.close();
  assert.is(k.memory.bytesInUse, before);
});

test('external sort: one run in memory never touches the spill store; empty input', async () => {
  const k = await kernelsFor(false);
  const fields: RefField[] = [{ kind: 'string', nullable: false }];
  const schema = schemaOf(fields);
  const never: SpillStoreFactory = { kind: 'memory', createSpillStore: () => Promise.reject(new Error('must not spill')) };
  const input = [encodeBatch(fields, [['b'], ['a'], ['日本']]), encodeBatch(fields, [['']])];
  const s = new ExternalSorter({ kernels: k, schema, keys: [0], budget: 1 << 20, spill: never });
  for (const b of input) await s.add(b);
  checkOutputs(await collect(s.sorted()), fields, SEGMENT_BYTES, refSort(input, fields, [{ field: 0 }]), 'in memory');
  assert.equal({ ...s.stats, peakBytes: 0 }, { rows: 4, runs: 1, spilledRuns: 0, spilledBytes: 0, mergePasses: 0, maxFanIn: 0, peakBytes: 0 });
  assert.equal(await collect(externalSort([], { kernels: k, schema, keys: [0], budget: 1 << 20, spill: never })), []);
  // reuseOutput in memory: views into one buffer (rows larger than it get one of their own), same batches
  await forSeeds('external-sort/reuse', 6, async (rng) => {
    const f2: RefField[] = [{ kind: 'string', nullable: true }, { kind: 'i64', nullable: false }];
    const s2 = schemaOf(f2);
    const inp = randomInput(rng, rng.pick([0, 50, 2000]), f2);
    const desc = rng.bool();
    for (const outputBytes of [16, 64, 1024, SEGMENT_BYTES]) {
      const run = async (reuseOutput: boolean) => {
        const x = new ExternalSorter({ kernels: k, schema: s2, keys: [{ field: 0, desc }, 1], budget: 8 << 20, spill: never, outputBytes, reuseOutput });
        for (const b of inp) await x.add(b);
        const out: Uint8Array[] = [];
        for await (const v of x.sorted()) out.push(reuseOutput ? v.slice() : v);
        return out;
      };
      const before = k.memory.bytesInUse;
      assert.equal(await run(true), await run(false), `reuseOutput, out ${outputBytes}`);
      assert.is(k.memory.bytesInUse, before);
    }
  });
  await s.add(input[0]!).then(
    () => assert.unreachable('add after sorted()'),
    (e: unknown) => assert.match(String(e), /closed/),
  );
});

test('external sort: a budget that cannot hold two batches is a MemoryBudgetError naming it; so is a batch larger than the budget', async () => {
  const k = await kernelsFor(false);
  const fields: RefField[] = [{ kind: 'string', nullable: false }];
  const schema = schemaOf(fields);
  const opts = { kernels: k, schema, keys: [0], spill: memorySpill };
  assert.throws(
    () => new ExternalSorter({ ...opts, budget: 3 * SEGMENT_BYTES }),
    (e: unknown) => e instanceof MemoryBudgetError && /budget of 96 KiB is too small to hold two batches/.test(e.message),
  );
  const mm = MemoryManager.create({ managedMemory: 2 * SEGMENT_BYTES, consumers: [{ operator: 'Sort(x)', minSegments: 0 }] });
  assert.throws(
    () => new ExternalSorter({ ...opts, budget: mm.reservation('Sort(x)') }),
    (e: unknown) => e instanceof MemoryBudgetError && /share of 64 KiB \(Sort\(x\) subtask 0\)/.test(e.message),
  );
  assert.throws(() => new ExternalSorter({ ...opts, keys: [], budget: 1 << 20 }), (e: unknown) => e instanceof JobDefinitionError);
  const before = k.memory.bytesInUse;
  const s = new ExternalSorter({ ...opts, budget: 4 * SEGMENT_BYTES });
  const big = encodeBatch(fields, [['x'.repeat(5 * SEGMENT_BYTES)]]);
  try {
    await s.add(big);
    assert.unreachable();
  } catch (e) {
    assert.ok(e instanceof MemoryBudgetError && /more than the budget of 128 KiB/.test(e.message), String(e));
  }
  const s2 = new ExternalSorter({ ...opts, budget: 4 * SEGMENT_BYTES });
  const bad = encodeBatch(fields, [['a']]);
  bad[17] = 0x10; // row length runs past the batch
  try {
    await s2.add(bad);
    assert.unreachable();
  } catch (e) {
    assert.ok(e instanceof CorruptBatchError, String(e));
  }
  assert.is(k.memory.bytesInUse, before);
});

/** A store factory whose writers fail on the `failAt`-th append (counting over the store's life). */
function failingSpill(failAt: number): SpillStoreFactory {
  return {
    kind: fileSpill.kind,
    async createSpillStore(o) {
      const store = await fileSpill.createSpillStore(o);
      let n = 0;
      const wrap = (w: SpillWriter): SpillWriter =>
        Object.assign(Object.create(w) as SpillWriter, {
          append: (b: Uint8Array) => (++n === failAt ? Promise.reject(new Error('injected spill failure')) : w.append(b)),
          // a run written at once: it fails when the failing append falls inside it
          appendAll: (bs: readonly Uint8Array[]) => ((n += bs.length) >= failAt && n - bs.length < failAt ? Promise.reject(new Error('injected spill failure')) : w.appendAll(bs)),
          finish: () => w.finish(),
          abort: () => w.abort(),
        });
      return Object.assign(Object.create(store) as SpillStore, {
        create: async (name: string) => wrap(await store.create(name)),
        close: () => store.close(),
      });
    },
  };
}

test('external sort: no temp files or managed memory left after failures, early stop, close and abort', async () => {
  const k = await kernelsFor(false);
  const fields: RefField[] = [
    { kind: 'i32', nullable: false },
    { kind: 'string', nullable: true },
  ];
  const schema = schemaOf(fields);
  const before = k.memory.bytesInUse;
  await forSeeds('external-sort/failures', 6, async (rng) => {
    const input = randomInput(rng, 4000, fields);
    const base: ExternalSortOptions = { kernels: k, schema, keys: [{ field: 1 }, { field: 0, desc: true }], budget: 4 * SEGMENT_BYTES, spill: fileSpill };
    const rejects = async (p: Promise<unknown>, re: RegExp) => {
      try {
        await p;
      } catch (e) {
        assert.match(String(e), re);
        return;
      }
      assert.unreachable('should have failed');
    };

    // the input fails after some runs have spilled
    async function* failing() {
      for (const [i, b] of input.entries()) {
        if (i === Math.floor(input.length * 0.7)) throw new Error('injected input failure');
        yield b;
      }
    }
    await rejects(collect(externalSort(failing(), base)), /injected input failure/);
    assert.equal(leftovers(), [], 'after an input failure');

    // the spill store fails while writing a run, or while writing an intermediate merge
    await rejects(collect(externalSort(input, { ...base, spill: failingSpill(rng.range(1, 8)) })), /injected spill failure/);
    assert.equal(leftovers(), [], 'after a spill failure');

    // the consumer stops in the middle of the merge
    let n = 0;
    for await (const _ of externalSort(input, base)) if (++n === 3) break;
    assert.equal(leftovers(), [], 'after an early stop');

    // close() mid-merge, with a caller-owned store: the sorter deletes its own files only
    const store = await fileSpill.createSpillStore();
    const s = new ExternalSorter({ ...base, spill: store });
    for (const b of input) await s.add(b);
    const it = s.sorted();
    await it.next();
    assert.ok(store.stats.filesLive > 0);
    await s.close();
    assert.is(store.stats.filesLive, 0, 'files deleted by close()');
    await rejects(it.next(), /closed/);
    await store.close();
    assert.equal(leftovers(), [], 'after close');

    // an abort signal while adding
    const ac = new AbortController();
    const s2 = new ExternalSorter({ ...base, signal: ac.signal });
    for (const b of input.slice(0, input.length >> 1)) await s2.add(b);
    ac.abort();
    await s2.close();
    await rejects(s2.add(input[0]!), /closed/);
    assert.equal(leftovers(), [], 'after abort');
    assert.is(k.memory.bytesInUse, before, 'managed memory returned');
  });
});

test('external sort: cleanup', () => {
  assert.equal(leftovers(), []);
  rmSync(parent, { recursive: true, force: true });
});

test.run();
