// Tests HashAggregator against DuckDB (native, @duckdb/node-api) on Node, with the file spill store:
//   SELECT k1, k2, count(*), count(v), sum(v), min(v), max(v), avg(v) FROM t GROUP BY k1, k2
// and SELECT DISTINCT k1, k2, compared as multisets of rows keyed by (k1, k2). Budgets are small
// enough that most runs spill (and recurse). Integer results must be equal; f64 sums and every avg
// are compared with a relative tolerance of 1e-9 (of the larger magnitude, at least 1): DuckDB adds
// in its own (parallel) order and averages HUGEINT sums, we add in input/partition order in f64 or
// i64, so the last bits of a float result may differ. No temp file may be left behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBAppender } from '@duckdb/node-api';
import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { HashAggregator } from '../../src/operators/batch/hash-aggregate.ts';
import { decodeBatches, encodeBatches } from '../../src/core/rows.ts';
import { FieldType, Schema, type Fields } from '../../src/core/schema.ts';
import { nodeFileSpill } from '../../src/platform/node.ts';
import { kernelsFor } from '../reference/harness.ts';
import { forSeeds, type Rng } from '../reference/random.ts';

type Kind = 'i32' | 'i64' | 'f64' | 'bool' | 'string';
const SQL: Record<Kind, string> = { i32: 'INTEGER', i64: 'BIGINT', f64: 'DOUBLE', bool: 'BOOLEAN', string: 'VARCHAR' };
const KEY_KINDS: Kind[] = ['i32', 'i64', 'f64', 'bool', 'string'];
const VAL_KINDS: Kind[] = ['i32', 'i64', 'f64'];

function value(rng: Rng, kind: Kind, domain: number, isKey: boolean): unknown {
  switch (kind) {
    case 'i32':
      return isKey ? rng.int(domain) - 3 : rng.range(-1e6, 1e6);
    case 'i64':
      return isKey ? BigInt(rng.int(domain)) * 1000003n - 5n : BigInt(rng.range(-1e9, 1e9)) * 1000n;
    case 'f64':
      if (rng.bool(0.03)) return rng.pick([NaN, Infinity, -Infinity, -0]);
      return isKey ? rng.int(domain) / 4 : rng.range(-1e6, 1e6) / 64;
    case 'bool':
      return rng.bool();
    case 'string':
      return rng.pick(['', 'é', '日本', 'x'.repeat(20)]) + String(rng.int(domain));
  }
}

function append(a: DuckDBAppender, kind: Kind, v: unknown): void {
  if (v === null) return a.appendNull();
  if (kind === 'i32') return a.appendInteger(v as number);
  if (kind === 'i64') return a.appendBigInt(v as bigint);
  if (kind === 'f64') return a.appendDouble(v as number);
  if (kind === 'bool') return a.appendBoolean(v as boolean);
  return a.appendVarchar(v as string);
}

/** A cell as comparable text or a number (floats). Keys: -0 = 0, all NaN alike. */
function cell(v: unknown): string | number {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return `i${v}`;
  if (typeof v === 'number') return Number.isInteger(v) && !Object.is(v, -0) ? `i${v}` : Object.is(v, -0) ? 'i0' : v;
  return JSON.stringify(v);
}

function near(a: string | number, b: string | number): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a === b;
  const x = typeof a === 'number' ? a : Number(a.slice(1));
  const y = typeof b === 'number' ? b : Number(b.slice(1));
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) && Number.isNaN(y);
  if (!Number.isFinite(x) || !Number.isFinite(y)) return x === y;
  return Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(x), Math.abs(y));
}

function byKey(rows: unknown[][]): Map<string, (string | number)[]> {
  const m = new Map<string, (string | number)[]>();
  for (const r of rows) {
    const key = JSON.stringify(r.slice(0, 2).map((v) => (typeof v === 'number' && Number.isNaN(v) ? 'NaN' : String(cell(v)))));
    if (m.has(key)) throw new Error(`group ${key} twice`);
    m.set(key, r.slice(2).map(cell));
  }
  return m;
}

const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();

test('hash aggregate == DuckDB GROUP BY k1, k2 (count, count(v), sum, min, max, avg) and DISTINCT, spilling to files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-agg-test-'));
  const spill = { kind: 'file' as const, createSpillStore: () => nodeFileSpill.createSpillStore({ dir }) };
  let spilled = 0;
  const k = await kernelsFor(false);
  try {
    await forSeeds('hash-aggregate/duckdb', 32, async (rng, seed) => {
      const k1 = rng.pick(KEY_KINDS);
      const k2 = rng.pick(KEY_KINDS);
      const vk = rng.pick(VAL_KINDS);
      const domain = rng.pick([1, 5, 60, 3000]);
      const n = rng.pick([0, 1, 100, 5000, 12000]);
      const pNull = rng.pick([0, 0.1, 0.5]);
      const skew = rng.bool(0.3);
      const rows = Array.from({ length: n }, () => {
        const hot = skew && rng.bool(0.8);
        return {
          k1: rng.bool(pNull) ? null : hot ? value(rng, k1, 1, true) : value(rng, k1, domain, true),
          k2: rng.bool(pNull) ? null : value(rng, k2, hot ? 1 : domain, true),
          v: rng.bool(pNull) ? null : value(rng, vk, domain, false),
        };
      });
      const table = `t${seed}`;
      await conn.run(`CREATE TABLE ${table} (k1 ${SQL[k1]}, k2 ${SQL[k2]}, v ${SQL[vk]})`);
      const ap = await conn.createAppender(table);
      for (const r of rows) {
        append(ap, k1, r.k1);
        append(ap, k2, r.k2);
        append(ap, vk, r.v);
        ap.endRow();
      }
      ap.closeSync();
      const want = (await conn.runAndReadAll(`SELECT k1, k2, count(*), count(v), sum(v), min(v), max(v), avg(v) FROM ${table} GROUP BY k1, k2`)).getRowsJS() as unknown[][];
      const wantDistinct = (await conn.runAndReadAll(`SELECT DISTINCT k1, k2 FROM ${table}`)).getRowsJS() as unknown[][];
      await conn.run(`DROP TABLE ${table}`);

      const ty = (k: Kind) => new FieldType(k, true, k === 'i64');
      const fields: Fields = { k1: ty(k1), k2: ty(k2), v: ty(vk) };
      const schema = new Schema(fields);
      const batches = encodeBatches(schema, rows, { batchBytes: 8192 });
      const agg = new HashAggregator({
        kernels: k,
        schema,
        keys: ['k1', 'k2'],
        aggs: [{ op: 'count' }, { op: 'count', field: 'v' }, { op: 'sum', field: 'v' }, { op: 'min', field: 'v' }, { op: 'max', field: 'v' }, { op: 'avg', field: 'v' }],
        budget: rng.range(5, 8) * SEGMENT_BYTES,
        spill,
        chunkBytes: rng.pick([512, 4096, 32768]),
      });
      const out: Uint8Array[] = [];
      for await (const b of agg.run(batches)) out.push(b);
      const got = decodeBatches(agg.outputSchema, out).map((r) => Object.values(r));
      const a = byKey(got);
      const b = byKey(want);
      assert.is(a.size, b.size, `${k1}, ${k2}, v ${vk}: group count`);
      for (const [key, va] of a) {
        const vb = b.get(key);
        if (!vb || !va.every((x, i) => near(x, vb[i]!))) throw new Error(`${k1}, ${k2}, v ${vk}: group ${key}: sluice ${JSON.stringify(va)} DuckDB ${JSON.stringify(vb)}`);
      }

      const d = new HashAggregator({ kernels: k, schema, keys: ['k1', 'k2'], aggs: [], budget: 5 * SEGMENT_BYTES, spill, chunkBytes: 1024 });
      const dout: Uint8Array[] = [];
      for await (const x of d.run(batches)) dout.push(x);
      // a seed counts as covering the spill path if either the aggregate or the DISTINCT spilled
      if (agg.stats.spills > 0 || d.stats.spills > 0) spilled++;
      const dd = byKey(decodeBatches(d.outputSchema, dout).map((r) => Object.values(r)));
      const wd = byKey(wantDistinct);
      assert.is(dd.size, wd.size, 'distinct count');
      for (const key of dd.keys()) assert.ok(wd.has(key), `distinct ${key}`);
      assert.equal(await readdir(dir), [], 'no spill directory left');
    });
    assert.ok(spilled >= 3, `${spilled} seeds spilled`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.after(() => {
  conn.closeSync();
});

test.run();
