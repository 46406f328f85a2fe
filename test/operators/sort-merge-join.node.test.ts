// Randomized differential tests of SortMergeJoin against DuckDB (@duckdb/node-api, Node only): inner /
// left / right / full outer, semi (`WHERE EXISTS`) and anti (`WHERE NOT EXISTS`) on one- and two-field
// keys (i64, f64 with -0 / +0, strings: long, sharing long prefixes, non-ASCII), with NULL keys,
// duplicates, heavy skew, one hot key larger than the whole budget and empty inputs, under budgets
// small enough that the sorts spill to the file spill store. Results must equal DuckDB's (as sorted
// rows) and HybridHashJoin's (as a multiset of row bytes); no temp file may be left behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBAppender } from '@duckdb/node-api';
import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { JOIN_TYPES, loadKernels, type JoinType } from '../../bindings/index.ts';
import { decodeBatches, encodeBatches } from '../../src/core/rows.ts';
import { schema, t } from '../../src/core/schema.ts';
import { HybridHashJoin } from '../../src/operators/batch/hash-join.ts';
import { SortMergeJoin } from '../../src/operators/batch/sort-merge-join.ts';
import { detectPlatform } from '../../src/platform/index.ts';
import type { SpillStoreFactory } from '../../src/platform/types.ts';
import { batchRows } from '../reference/kernels.ts';
import { rowMultiset } from '../reference/join.ts';
import { forSeeds, type Rng } from '../reference/random.ts';

const L = schema({ k: t.i64().nullable(), k2: t.string().nullable(), f: t.f64().nullable(), a: t.string(), x: t.f64().nullable() });
const R = schema({ s: t.string().nullable(), k: t.i64().nullable(), k2: t.string().nullable(), f: t.f64().nullable(), y: t.i32() });
type LRow = { k: number | null; k2: string | null; f: number | null; a: string; x: number | null };
type RRow = { s: string | null; k: number | null; k2: string | null; f: number | null; y: number };

const KEYSETS = [['k'], ['k', 'k2'], ['k2'], ['f'], ['k2', 'f']] as const;

function sql(type: JoinType, keys: readonly string[]): string {
  const on = keys.map((c) => `l.${c} = r.${c}`).join(' AND ');
  switch (type) {
    case 'inner':
      return `SELECT l.*, r.* FROM l JOIN r ON ${on}`;
    case 'left':
      return `SELECT l.*, r.* FROM l LEFT JOIN r ON ${on}`;
    case 'right':
      return `SELECT l.*, r.* FROM l RIGHT JOIN r ON ${on}`;
    case 'full':
      return `SELECT l.*, r.* FROM l FULL OUTER JOIN r ON ${on}`;
    case 'semi':
      return `SELECT l.* FROM l WHERE EXISTS (SELECT 1 FROM r WHERE ${on})`;
    case 'anti':
      return `SELECT l.* FROM l WHERE NOT EXISTS (SELECT 1 FROM r WHERE ${on})`;
  }
}

const STRINGS = ['', 'a', 'ab', 'é', 'e\u0301', '日本語', '😀', 'Z', 'x'.repeat(300), 'prefix-'.repeat(30) + 'a', 'prefix-'.repeat(30) + 'b', 'ß'.repeat(40)];
const norm = (rows: unknown[][]) =>
  rows.map((r) => JSON.stringify(r.map((v) => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' && Object.is(v, -0) ? 0 : v)))).sort();

function appendRow(a: DuckDBAppender, values: unknown[], kinds: string[]): void {
  values.forEach((v, i) => {
    if (v === null) a.appendNull();
    else if (kinds[i] === 'i64') a.appendBigInt(BigInt(v as number));
    else if (kinds[i] === 'i32') a.appendInteger(v as number);
    else if (kinds[i] === 'f64') a.appendDouble(v as number);
    else a.appendVarchar(v as string);
  });
  a.endRow();
}

const parent = mkdtempSync(join(tmpdir(), 'sluice-smj-test-'));
const runtimeSpill = (await detectPlatform()).spill;
const fileSpill: SpillStoreFactory = { kind: runtimeSpill.kind, createSpillStore: (o) => runtimeSpill.createSpillStore({ ...o, dir: parent }) };
const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();

async function load(lrows: LRow[], rrows: RRow[]): Promise<void> {
  await conn.run('DROP TABLE IF EXISTS l; DROP TABLE IF EXISTS r; CREATE TABLE l (k BIGINT, k2 VARCHAR, f DOUBLE, a VARCHAR, x DOUBLE); CREATE TABLE r (s VARCHAR, k BIGINT, k2 VARCHAR, f DOUBLE, y INTEGER)');
  const la = await conn.createAppender('l');
  for (const r of lrows) appendRow(la, [r.k, r.k2, r.f, r.a, r.x], ['i64', 's', 'f64', 's', 'f64']);
  la.closeSync();
  const ra = await conn.createAppender('r');
  for (const r of rrows) appendRow(ra, [r.s, r.k, r.k2, r.f, r.y], ['s', 'i64', 's', 'f64', 'i32']);
  ra.closeSync();
}

/** Random inputs: key domain, NULL rate, skew (one value for most rows) and a hot key larger than the budget. */
function inputs(rng: Rng) {
  const distinct = rng.pick([3, 40, 800, 20000]);
  const pNull = rng.pick([0, 0.05, 0.4]);
  const skew = rng.bool(0.25);
  const hot = rng.bool(0.3); // 1500 right rows of one key (~400 KiB), a few on the left
  // (output sizes stay in the 100k-row range: the skewed and tiny domains get fewer rows)
  const max = skew || distinct === 3 ? 600 : 3000;
  const nl = rng.bool(0.1) ? 0 : rng.range(1, max);
  const nr = rng.bool(0.1) ? 0 : rng.range(1, max);
  const kv = () => (rng.bool(pNull) ? null : skew && rng.bool(0.6) ? 7 : rng.int(distinct));
  const sv = () => (rng.bool(pNull) ? null : skew && rng.bool(0.6) ? 'hot' : rng.bool(0.1) ? rng.pick(STRINGS) : `s${rng.int(distinct)}`);
  const fv = () => (rng.bool(pNull) ? null : rng.bool(0.05) ? rng.pick([0, -0, Infinity, -Infinity, 1e300]) : rng.int(distinct) / 4);
  const pad = (i: number, c: string) => `${c}${i}${c.repeat(rng.int(rng.bool(0.05) ? 2000 : 60))}é`;
  const lrows: LRow[] = Array.from({ length: nl }, (_, i) => ({ k: kv(), k2: sv(), f: fv(), a: pad(i, 'p'), x: rng.bool(0.1) ? null : i / 4 }));
  const rrows: RRow[] = Array.from({ length: nr }, (_, i) => ({ s: rng.bool(0.1) ? null : pad(i, 'q'), k: kv(), k2: sv(), f: fv(), y: i }));
  if (hot) {
    for (let i = 0; i < 1500; i++) rrows.push({ s: `hot${i}${'h'.repeat(250)}`, k: 99, k2: 'hot-日本', f: 99, y: nr + i });
    for (let i = 0; i < rng.range(1, 40); i++) lrows.push({ k: 99, k2: 'hot-日本', f: 99, a: `hot${i}${'g'.repeat(rng.int(1000))}`, x: i });
  }
  return { lrows, rrows, desc: `${nl}×${nr}, ${distinct} keys, nulls ${pNull}${skew ? ', skewed' : ''}${hot ? ', hot key' : ''}` };
}

test('sort-merge join == DuckDB == hybrid hash join (every join type, keys of several kinds, spilling budget)', async () => {
  const k = await loadKernels({ budgetBytes: 256 << 20 });
  let spilledSorts = 0;
  let spilledGroups = 0;
  await forSeeds('smj/duckdb', 5, async (rng) => {
    const { lrows, rrows, desc } = inputs(rng);
    await load(lrows, rrows);
    const lb = encodeBatches(L, lrows, { batchBytes: rng.pick([8192, 65536]) });
    const rb = encodeBatches(R, rrows, { batchBytes: rng.pick([8192, 65536]) });
    const keys = rng.pick(KEYSETS);
    for (const type of JOIN_TYPES) {
      const want = norm((await conn.runAndReadAll(sql(type, keys))).getRows() as unknown[][]);
      const store = await fileSpill.createSpillStore();
      try {
        const join = new SortMergeJoin({
          kernels: k,
          spill: store,
          type,
          left: { schema: L, keys, batches: lb },
          right: { schema: R, keys, batches: rb },
          buildSide: rng.bool() ? 'left' : 'right',
          budgetBytes: rng.range(20, 32) * SEGMENT_BYTES,
        });
        const out: Uint8Array[] = [];
        for await (const b of join) out.push(b);
        const got = norm(decodeBatches(join.schema, out).map((o) => Object.values(o as Record<string, unknown>)));
        assert.equal(got, want, `${type} on ${keys.join(', ')} (${desc})`);
        assert.is(store.stats.filesLive, 0, 'no spill file left');
        if ((join.stats.leftSort?.spilledRuns ?? 0) + (join.stats.rightSort?.spilledRuns ?? 0) > 0) spilledSorts++;
        if (join.stats.spilledGroups > 0) spilledGroups++;
        const hhj = new HybridHashJoin({ kernels: k, spill: store, type, left: { schema: L, keys, batches: lb }, right: { schema: R, keys, batches: rb }, budgetBytes: 1 << 20 });
        const hout: Uint8Array[] = [];
        for await (const b of hhj) hout.push(b);
        assert.equal(rowMultiset(out.flatMap(batchRows)), rowMultiset(hout.flatMap(batchRows)), `${type}: same rows as the hash join`);
      } finally {
        await store.close();
      }
      assert.equal(readdirSync(parent), [], 'no temp directory left');
    }
  });
  assert.ok(spilledSorts > 0, 'some sorts spilled');
  console.log(`  (${spilledSorts} joins with spilled sorts, ${spilledGroups} with a spilled key group)`);
});

test('sort-merge join: a hot key larger than the budget on both sides, presorted, == DuckDB', async () => {
  const k = await loadKernels({ budgetBytes: 256 << 20 });
  await forSeeds('smj/duckdb-hot', 1, async (rng) => {
    const lrows: LRow[] = Array.from({ length: 200 }, (_, i) => ({ k: i < 60 ? 5 : rng.int(10), k2: null, f: null, a: `l${i}${'é'.repeat(rng.int(100))}`, x: i }));
    const rrows: RRow[] = Array.from({ length: 2500 }, (_, i) => ({ s: `r${i}${'日'.repeat(60)}`, k: i < 2200 ? 5 : rng.bool(0.1) ? null : rng.int(10), k2: null, f: null, y: i }));
    await load(lrows, rrows);
    const byKey = <T extends { k: number | null }>(rows: T[]) => [...rows].sort((a, b) => (a.k === null ? 1 : b.k === null ? -1 : a.k - b.k));
    const lb = encodeBatches(L, byKey(lrows), { batchBytes: 4096 });
    const rb = encodeBatches(R, byKey(rrows), { batchBytes: 4096 });
    for (const type of JOIN_TYPES) {
      const want = norm((await conn.runAndReadAll(sql(type, ['k']))).getRows() as unknown[][]);
      const store = await fileSpill.createSpillStore();
      try {
        const join = new SortMergeJoin({ kernels: k, spill: store, type, left: { schema: L, keys: ['k'], batches: lb, sorted: true }, right: { schema: R, keys: ['k'], batches: rb, sorted: true }, budgetBytes: 12 * SEGMENT_BYTES });
        const out: Uint8Array[] = [];
        for await (const b of join) out.push(b);
        assert.equal(norm(decodeBatches(join.schema, out).map((o) => Object.values(o as Record<string, unknown>))), want, type);
        if (type !== 'semi' && type !== 'anti') assert.ok(join.stats.spilledGroups === 1 && join.stats.maxGroupRows >= 2200, JSON.stringify(join.stats));
        assert.is(store.stats.filesLive, 0);
      } finally {
        await store.close();
      }
    }
  });
  assert.equal(readdirSync(parent), []);
});

test.after(() => {
  conn.closeSync();
  rmSync(parent, { recursive: true, force: true });
});

test.run();
