// Tests the hash aggregation kernels (assembly/agg.ts through bindings/aggregate.ts) against the TS
// reference (test/reference/aggregate.ts) on random data, for both builds: every key type, nulls in
// keys and values, heavy skew, empty input, many groups with tiny chunks and directories (FULL →
// grow / rehash on every few rows), tiny output capacities, refused growth (the spill path: emit
// partials, clear, resume), merging partials, DISTINCT, integer overflow, and one dense integer key
// (the direct directory, keys leaving its window, the NULL group).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AggTable, AggregateOverflowError, aggregatePlan, type Kernels, type ManagedBatch } from '../../bindings/index.ts';
import { encodeBatch, encodeBatches, schemaOf, type RefField, type RefValue } from '../reference/batch.ts';
import { BUILDS, assertBytes, kernelsFor } from '../reference/harness.ts';
import { batchRows } from '../reference/kernels.ts';
import { RefOverflow, canonicalRow, canonicalRows, randomCase, refAggregate, refFinalFields, refPartialFields, toSpec, type Case, type RefAgg } from '../reference/aggregate.ts';
import { forSeeds } from '../reference/random.ts';

const RUNS = 80;
function sameRows(actual: Uint8Array[], expected: Uint8Array[], fields: readonly RefField[], what: string): void {
  assert.is(actual.length, expected.length, `${what}: row count`);
  actual.forEach((r, i) => assertBytes(r, canonicalRow(expected[i]!, fields), `${what}: row ${i}`));
}

/** Feeds every batch into a table; on refused growth spills (collect partials, clear) and resumes. */
function runTable(k: Kernels, c: Case, t: AggTable, mode: 'raw' | 'merge', batches: readonly Uint8Array[], spilled: Uint8Array[]): void {
  const s = mode === 'raw' ? t.plan.input : t.plan.partialSchema;
  for (const bytes of batches) {
    const b: ManagedBatch = k.copyIn(bytes, s);
    try {
      let pos = t.feed(b);
      while (pos !== undefined) {
        const before = t.groups;
        spilled.push(...t.collect(false));
        t.clear();
        pos = t.feed(b, pos);
        if (before === 0) throw new Error('no progress with an empty table');
      }
    } finally {
      k.free(b);
    }
  }
  void c;
}

for (const { name, debug } of BUILDS) {
  test(`[${name}] aggregate == reference (random keys of every type, nulls, skew, tiny chunks/directories/outputs)`, async () => {
    const k = await kernelsFor(debug);
    let overflowCases = 0;
    await forSeeds('aggregate/random', RUNS, (rng) => {
      const c = randomCase(rng);
      const before = k.memory.bytesInUse;
      const plan = aggregatePlan(schemaOf(c.fields), c.keys, c.aggs.map(toSpec));
      const t = new AggTable(k, plan, 'raw', { chunkBytes: rng.pick([64, 128, 256, 1024, 32768]), dirSlots: rng.pick([2, 4, 16, 1024]), outputBytes: rng.pick([16, 48, 256, 32768]) });
      let want: ReturnType<typeof refAggregate> | undefined;
      try {
        want = refAggregate(c.batches, c.fields, c.keys, c.aggs);
      } catch (e) {
        if (!(e instanceof RefOverflow)) throw e;
      }
      try {
        const spilled: Uint8Array[] = [];
        try {
          runTable(k, c, t, 'raw', c.batches, spilled);
        } catch (e) {
          if (!(e instanceof AggregateOverflowError)) throw e;
          assert.ok(want === undefined, 'kernel overflowed, reference did not');
          overflowCases++;
          return;
        }
        assert.ok(want !== undefined, 'reference overflowed, kernel did not');
        assert.is(spilled.length, 0);
        assert.is(t.groups, want.final.length);
        const pf = refPartialFields(c.fields, c.keys, c.aggs);
        const ff = refFinalFields(c.fields, c.keys, c.aggs);
        sameRows(canonicalRows(t.collect(false), pf), want.partial, pf, 'partial');
        sameRows(canonicalRows(t.collect(true), ff), want.final, ff, 'final');
        // batches carry the right schema ids
        for (const b of t.collect(true)) assert.is(new DataView(b.buffer).getUint32(12, true), plan.finalSchema.id);
      } finally {
        t.close();
        assert.is(k.memory.bytesInUse, before, 'table frees its memory');
      }
    });
    assert.ok(overflowCases < RUNS / 2, `too many overflow cases: ${overflowCases}`);
  });

  test(`[${name}] aggregate: refused growth (spill rounds) + merge of partials == reference merge`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('aggregate/merge', RUNS, (rng) => {
      const c = randomCase(rng);
      if (c.batches.every((b) => b.length === 16)) return;
      const before = k.memory.bytesInUse;
      const plan = aggregatePlan(schemaOf(c.fields), c.keys, c.aggs.map(toSpec));
      let want: ReturnType<typeof refAggregate>;
      try {
        want = refAggregate(c.batches, c.fields, c.keys, c.aggs);
      } catch (e) {
        if (e instanceof RefOverflow) return;
        throw e;
      }
      // a table allowed only a few chunks beyond its first: spills partial rounds
      let grants = rng.range(1, 3);
      // (an empty table may always grow: a single group must fit)
      const t: AggTable = new AggTable(k, plan, 'raw', { chunkBytes: rng.pick([128, 256, 512]), dirSlots: rng.pick([2, 1024]), canGrow: () => t.groups === 0 || grants-- > 0 });
      const spilled: Uint8Array[] = [];
      try {
        runTable(k, c, t, 'raw', c.batches, spilled);
        spilled.push(...t.collect(false));
      } finally {
        t.close();
      }
      const pf = refPartialFields(c.fields, c.keys, c.aggs);
      // every spilled row is a valid partial row; merging them gives the reference merge exactly
      const merged = refAggregate(spilled, c.fields, c.keys, c.aggs, 'merge');
      const m = new AggTable(k, plan, 'merge', { chunkBytes: rng.pick([64, 256, 32768]), dirSlots: rng.pick([2, 1024]), outputBytes: rng.pick([16, 32768]) });
      try {
        const again: Uint8Array[] = [];
        runTable(k, c, m, 'merge', spilled, again);
        assert.is(again.length, 0);
        const ff = refFinalFields(c.fields, c.keys, c.aggs);
        sameRows(canonicalRows(m.collect(true), ff), merged.final, ff, 'merged final');
        sameRows(canonicalRows(m.collect(false), pf), merged.partial, pf, 'merged partial');
        // same groups as the one-pass aggregation (f64 sums may differ in the last bits: association)
        assert.is(m.groups, want.final.length);
      } finally {
        m.close();
      }
      assert.is(k.memory.bytesInUse, before);
    });
  });

  test(`[${name}] aggregate: one dense integer key (direct directory), keys leaving its window, NULL group, merge`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('aggregate/direct', 60, (rng) => {
      const kind = rng.pick(['i64', 'i32', 'timestamp', 'bool'] as const);
      const fields: RefField[] = [
        { kind, nullable: rng.bool(0.5) },
        { kind: 'i64', nullable: rng.bool(0.3) },
        { kind: 'f64', nullable: false },
      ];
      const aggs: RefAgg[] = [{ op: 'count*', field: 0 }, { op: 'sum', field: 1 }, { op: 'min', field: 2 }, { op: 'avg', field: 1 }, { op: 'max', field: 1 }];
      const span = rng.pick([1, 5, 60, 700, 3000]);
      const base = kind === 'bool' ? 0 : rng.pick([0, 100, -5000, 2 ** 40]);
      const order = rng.pick(['random', 'asc', 'desc'] as const);
      const nr = rng.pick([10, 300, 3000]);
      const rows: RefValue[][] = [];
      for (let i = 0; i < nr; i++) {
        let v = order === 'random' ? rng.int(span) : order === 'asc' ? Math.floor((i * span) / nr) : span - 1 - Math.floor((i * span) / nr);
        if (rng.bool(0.01)) v += rng.pick([10000, -10000, 2 ** 20]); // outside the window
        let key: RefValue = kind === 'i64' ? BigInt(base + v) : kind === 'i32' ? (base % 1e6) + v : kind === 'timestamp' ? Math.max(0, base + v) : v % 2 === 1;
        if (fields[0]!.nullable && rng.bool(0.05)) key = null;
        rows.push([key, fields[1]!.nullable && rng.bool(0.1) ? null : BigInt(rng.int(1000)), rng.int(100) / 4]);
      }
      const batches = encodeBatches(rng, fields, rows, 400);
      const c: Case = { fields, keys: [0], aggs, batches };
      const want = refAggregate(batches, fields, [0], aggs);
      const plan = aggregatePlan(schemaOf(fields), [0], aggs.map(toSpec));
      let grants = rng.bool(0.3) ? rng.range(1, 4) : Infinity;
      const t: AggTable = new AggTable(k, plan, 'raw', { dirSlots: rng.pick([2, 4, 16, 1024]), chunkBytes: rng.pick([128, 1024, 32768]), canGrow: () => t.groups === 0 || grants-- > 0 });
      const spilled: Uint8Array[] = [];
      const pf = refPartialFields(fields, [0], aggs);
      const ff = refFinalFields(fields, [0], aggs);
      try {
        runTable(k, c, t, 'raw', batches, spilled);
        if (spilled.length === 0) {
          sameRows(canonicalRows(t.collect(true), ff), want.final, ff, `${kind} ${order} span ${span}: final`);
          return;
        }
        spilled.push(...t.collect(false));
      } finally {
        t.close();
      }
      // spilled rounds: merging the partials (a table of the same kind) gives the reference merge
      const merged = refAggregate(spilled, fields, [0], aggs, 'merge');
      const m = new AggTable(k, plan, 'merge', { dirSlots: rng.pick([2, 1024]) });
      try {
        const again: Uint8Array[] = [];
        runTable(k, c, m, 'merge', spilled, again);
        sameRows(canonicalRows(m.collect(true), ff), merged.final, ff, `${kind} ${order} span ${span}: merged`);
        assert.is(m.groups, want.final.length);
      } finally {
        m.close();
      }
      void pf;
    });
  });

  test(`[${name}] aggregate: a direct directory of 2^18+ slots (entries loaded a block ahead) == reference`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('aggregate/direct-large', 2, (rng) => {
      const fields: RefField[] = [
        { kind: 'i64', nullable: true },
        { kind: 'i64', nullable: false },
      ];
      const aggs: RefAgg[] = [{ op: 'count*', field: 0 }, { op: 'sum', field: 1 }];
      const nGroups = 140_000 + rng.int(20_000);
      const base = rng.pick([0, -70_000, 2 ** 40]);
      const rows: RefValue[][] = [];
      while (rows.length < 2 * nGroups) {
        // runs of one key, so a group made by an earlier row of a block is met again in that block
        const key = rng.bool(0.001) ? null : BigInt(base + rng.int(nGroups));
        for (let j = rng.range(1, 4); j > 0; j--) rows.push([key, BigInt(rng.int(1000))]);
      }
      const batches = encodeBatches(rng, fields, rows, 2000);
      const c: Case = { fields, keys: [0], aggs, batches };
      const plan = aggregatePlan(schemaOf(fields), [0], aggs.map(toSpec));
      const t = new AggTable(k, plan, 'raw', {});
      const spilled: Uint8Array[] = [];
      try {
        runTable(k, c, t, 'raw', batches, spilled);
        assert.is(spilled.length, 0, 'no spill');
        // the state: +4 directory slots, +16 mode (1: direct)
        const st = (t as unknown as { region: number }).region >>> 2;
        assert.is(k.memory.u32[st + 4], 1, 'direct directory');
        assert.ok(k.memory.u32[st + 1]! >= 1 << 18, `directory of ${k.memory.u32[st + 1]} slots`);
        const ff = refFinalFields(fields, [0], aggs);
        sameRows(canonicalRows(t.collect(true), ff), refAggregate(batches, fields, [0], aggs).final, ff, `${nGroups} groups from ${base}`);
      } finally {
        t.close();
      }
    });
  });

  test(`[${name}] aggregate: DISTINCT, empty input, global aggregate, NULL groups, f64 -0/NaN keys`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [
      { kind: 'f64', nullable: true },
      { kind: 'string', nullable: true },
    ];
    const rows: RefValue[][] = [[0, 'a'], [-0, 'a'], [NaN, null], [NaN, null], [null, null], [null, 'a'], [1, 'b'], [null, null]];
    const s = schemaOf(fields);
    const plan = aggregatePlan(s, [0, 1], []);
    const t = new AggTable(k, plan, 'raw');
    try {
      const b = k.copyIn(encodeBatch(fields, rows), s);
      t.feed(b);
      k.free(b);
      assert.is(t.groups, 5, '(0,a) (NaN,null) (null,null) (null,a) (1,b)');
      sameRows(canonicalRows(t.collect(true), fields), refAggregate([encodeBatch(fields, rows)], fields, [0, 1], []).final, fields, 'distinct');
    } finally {
      t.close();
    }
    // empty input: no groups, no batches; global aggregate: one group
    const g = new AggTable(k, aggregatePlan(s, [], [{ op: 'count' }, { op: 'sum', field: 0 }]), 'raw');
    try {
      const e = k.copyIn(encodeBatch(fields, []), s);
      assert.is(g.feed(e), undefined);
      assert.equal(g.collect(true), []);
      k.free(e);
      const b = k.copyIn(encodeBatch(fields, rows), s);
      g.feed(b);
      k.free(b);
      assert.is(g.groups, 1);
    } finally {
      g.close();
    }
  });

  test(`[${name}] aggregate: i64 sum overflow is an AggregateOverflowError, not a wrap`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [{ kind: 'i32', nullable: false }, { kind: 'i64', nullable: false }];
    const s = schemaOf(fields);
    for (const op of ['sum', 'avg'] as const) {
      const t = new AggTable(k, aggregatePlan(s, [0], [{ op, field: 1 }]), 'raw');
      const b = k.copyIn(encodeBatch(fields, [[1, 2n ** 62n], [1, 2n ** 62n]]), s);
      try {
        assert.throws(() => t.feed(b), (e: unknown) => e instanceof AggregateOverflowError);
      } finally {
        k.free(b);
        t.close();
      }
    }
    const t = new AggTable(k, aggregatePlan(s, [0], [{ op: 'sum', field: 1 }]), 'raw');
    const b = k.copyIn(encodeBatch(fields, [[1, 2n ** 62n], [1, 2n ** 62n - 1n], [1, 2n ** 62n]] ), s);
    try {
      assert.throws(() => t.feed(b), (e: unknown) => e instanceof AggregateOverflowError);
      const ok = k.copyIn(encodeBatch(fields, [[2, -(2n ** 62n)], [2, -(2n ** 62n)]]), s);
      const t2 = new AggTable(k, aggregatePlan(s, [0], [{ op: 'sum', field: 1 }]), 'raw');
      t2.feed(ok);
      k.free(ok);
      const row = batchRows(t2.collect(true)[0]!)[0]!;
      assert.is(new DataView(row.buffer, row.byteOffset).getBigInt64(8 + 8 + 8, true), -(2n ** 63n), 'exactly i64 min is fine');
      t2.close();
    } finally {
      k.free(b);
      t.close();
    }
  });
}

test.run();
