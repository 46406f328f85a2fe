// Randomized differential tests of HybridHashJoin against DuckDB (@duckdb/node-api, Node only):
// inner / left / right / full outer, semi (`WHERE EXISTS`) and anti (`WHERE NOT EXISTS`), on random
// tables with NULL and duplicate keys, with a budget small enough to spill; compared as sorted multisets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DuckDBInstance } from '@duckdb/node-api';
import { JOIN_TYPES, loadKernels, type JoinType } from '../../bindings/index.ts';
import { decodeBatches, encodeBatches } from '../../src/core/rows.ts';
import { schema, t } from '../../src/core/schema.ts';
import { HybridHashJoin } from '../../src/operators/batch/hash-join.ts';
import { detectPlatform } from '../../src/platform/index.ts';
import { forSeeds } from '../reference/random.ts';

const L = schema({ k: t.i64().nullable(), a: t.string(), x: t.f64().nullable() });
const R = schema({ s: t.string().nullable(), k: t.i64().nullable(), y: t.i32() });

const SQL: Record<JoinType, string> = {
  inner: 'SELECT l.*, r.* FROM l JOIN r ON l.k = r.k',
  left: 'SELECT l.*, r.* FROM l LEFT JOIN r ON l.k = r.k',
  right: 'SELECT l.*, r.* FROM l RIGHT JOIN r ON l.k = r.k',
  full: 'SELECT l.*, r.* FROM l FULL OUTER JOIN r ON l.k = r.k',
  semi: 'SELECT l.* FROM l WHERE EXISTS (SELECT 1 FROM r WHERE r.k = l.k)',
  anti: 'SELECT l.* FROM l WHERE NOT EXISTS (SELECT 1 FROM r WHERE r.k = l.k)',
};

const norm = (rows: unknown[][]) => rows.map((r) => JSON.stringify(r.map((v) => (typeof v === 'bigint' ? Number(v) : v)))).sort();
const sqlVal = (v: unknown) => (v === null ? 'NULL' : typeof v === 'string' ? `'${v}'` : String(v));

test('hybrid hash join == DuckDB (every join type, spilling budget)', async () => {
  const k = await loadKernels({ budgetBytes: 256 << 20 });
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const platform = await detectPlatform();
  await forSeeds('hybrid/duckdb', 3, async (rng) => {
    const distinct = rng.pick([20, 500, 5000]);
    const key = () => (rng.bool(0.05) ? null : rng.int(distinct));
    const lrows = Array.from({ length: rng.range(0, 4000) }, (_, i) => ({ k: key(), a: `a${i}${'p'.repeat(rng.int(50))}`, x: rng.bool(0.1) ? null : i / 4 }));
    const rrows = Array.from({ length: rng.range(0, 4000) }, (_, i) => ({ s: rng.bool(0.1) ? null : `s${i}${'q'.repeat(rng.int(50))}`, k: key(), y: i }));
    await conn.run('DROP TABLE IF EXISTS l; DROP TABLE IF EXISTS r; CREATE TABLE l (k BIGINT, a VARCHAR, x DOUBLE); CREATE TABLE r (s VARCHAR, k BIGINT, y INTEGER)');
    for (let i = 0; i < lrows.length; i += 1000) {
      await conn.run(`INSERT INTO l VALUES ${lrows.slice(i, i + 1000).map((r) => `(${sqlVal(r.k)}, ${sqlVal(r.a)}, ${sqlVal(r.x)})`).join(',')}`);
    }
    for (let i = 0; i < rrows.length; i += 1000) {
      await conn.run(`INSERT INTO r VALUES ${rrows.slice(i, i + 1000).map((r) => `(${sqlVal(r.s)}, ${sqlVal(r.k)}, ${sqlVal(r.y)})`).join(',')}`);
    }
    const lb = encodeBatches(L, lrows, { batchBytes: 8192 });
    const rb = encodeBatches(R, rrows, { batchBytes: 8192 });
    for (const type of JOIN_TYPES) {
      const want = norm((await conn.runAndReadAll(SQL[type])).getRows() as unknown[][]);
      const store = await platform.spill.createSpillStore();
      try {
        const join = new HybridHashJoin({
          kernels: k,
          spill: store,
          type,
          left: { schema: L, keys: ['k'], batches: lb },
          right: { schema: R, keys: ['k'], batches: rb },
          buildSide: rng.bool() ? 'left' : 'right',
          budgetBytes: 256 * 1024,
        });
        const out: Uint8Array[] = [];
        for await (const b of join) out.push(b);
        const got = norm(decodeBatches(join.schema, out).map((o) => Object.values(o as Record<string, unknown>)));
        assert.equal(got, want, `${type} (${lrows.length} × ${rrows.length}, ${distinct} keys, build ${join.plan.buildSide})`);
        assert.is(store.stats.filesLive, 0);
      } finally {
        await store.close();
      }
    }
  });
  conn.closeSync?.();
});

test.run();
