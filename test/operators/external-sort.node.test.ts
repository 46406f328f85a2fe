// Tests the external sort against DuckDB (native, @duckdb/node-api) on Node: the same random rows go
// into a DuckDB table and into binary batches; `SELECT id FROM t ORDER BY <keys>, id` must give the
// same row order as the external sort by the same keys plus the unique `id` tiebreak. Data: nulls,
// duplicates, heavy skew, empty input, long and non-ASCII strings, NaN / ±inf / -0, i32 and i64
// extremes (as bigint), blobs; budgets small enough that the sort spills and merges in several passes.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DuckDBInstance, type DuckDBAppender } from '@duckdb/node-api';
import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { ExternalSorter } from '../../src/operators/batch/external-sort.ts';
import { detectPlatform } from '../../src/platform/index.ts';
import { encodeBatch, F64Bits, schemaOf, type RefField, type RefValue } from '../reference/batch.ts';
import { kernelsFor } from '../reference/harness.ts';
import { batchRows, type RefKey } from '../reference/kernels.ts';
import { forSeeds, type Rng } from '../reference/random.ts';

const SQL_TYPE: Record<string, string> = { i32: 'INTEGER', i64: 'BIGINT', timestamp: 'BIGINT', f64: 'DOUBLE', bool: 'BOOLEAN', string: 'VARCHAR', bytes: 'BLOB' };
const KINDS = Object.keys(SQL_TYPE) as RefField['kind'][];

const I64 = [-(2n ** 63n), -(2n ** 63n) + 1n, -1n, 0n, 1n, 2n ** 53n + 1n, 2n ** 63n - 1n];
const I32 = [-2147483648, -1, 0, 1, 2147483647];
const F64 = [NaN, Infinity, -Infinity, -0, 0, Number.MAX_VALUE, -Number.MIN_VALUE, 1.5];
const STR = ['', 'a', 'ab', 'é', 'e\u0301', '日本語', '😀', '\uffff', 'x'.repeat(40), 'x'.repeat(39) + 'ÿ', 'prefix-'.repeat(30) + 'z', 'Z'];

/** A value of `kind`: `skew` draws mostly one value (heavy skew), else a mix of extremes and random values. */
function value(rng: Rng, kind: RefField['kind'], skew: boolean): RefValue {
  if (skew && rng.bool(0.8)) return kind === 'i32' ? 7 : kind === 'i64' || kind === 'timestamp' ? 7n : kind === 'f64' ? 7 : kind === 'bool' ? true : kind === 'string' ? 'hot' : Uint8Array.of(7);
  switch (kind) {
    case 'i32':
      return rng.bool(0.3) ? rng.pick(I32) : rng.range(-50, 50);
    case 'i64':
    case 'timestamp':
      return rng.bool(0.3) ? rng.pick(I64) : rng.bool(0.5) ? rng.i64() : BigInt(rng.range(-50, 50));
    case 'f64':
      return rng.bool(0.4) ? rng.pick(F64) : rng.bool(0.3) ? new F64Bits(0xfff8000000000001n) : rng.range(-1000, 1000) / 8;
    case 'bool':
      return rng.bool();
    case 'string': {
      if (rng.bool(0.5)) return rng.pick(STR);
      let s = '';
      const n = rng.pick([1, 3, 12, 100, 300]);
      while (s.length < n) s += rng.pick(['a', 'b', 'é', 'ß', '日', '😀', ' ', 'Z']);
      return s;
    }
    default:
      return rng.bool(0.3) ? rng.pick([new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(0xff), Uint8Array.of(0x7f, 0xff)]) : rng.bytes(rng.range(0, 20));
  }
}

function append(a: DuckDBAppender, kind: RefField['kind'], v: RefValue): void {
  if (v === null) return a.appendNull();
  switch (kind) {
    case 'i32':
      return a.appendInteger(v as number);
    case 'i64':
    case 'timestamp':
      return a.appendBigInt(v as bigint);
    case 'f64':
      return a.appendDouble(v instanceof F64Bits ? NaN : (v as number));
    case 'bool':
      return a.appendBoolean(v as boolean);
    case 'string':
      return a.appendVarchar(v as string);
    default:
      return a.appendBlob(v as Uint8Array);
  }
}

const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();
const spill = (await detectPlatform()).spill;

test('external sort == DuckDB ORDER BY (random keys, ASC/DESC, NULLS FIRST/LAST, spilling)', async () => {
  const k = await kernelsFor(false);
  let spilled = 0;
  let seq = 0;
  await forSeeds('external-sort/duckdb', 24, async (rng, seed) => {
    const nf = rng.range(1, 5);
    const fields: RefField[] = Array.from({ length: nf }, () => ({ kind: rng.pick(KINDS), nullable: rng.bool(0.7) }));
    fields.push({ kind: 'i32', nullable: false }); // id: the unique tiebreak
    const id = nf;
    const skew = rng.bool(0.3);
    const pNull = rng.pick([0, 0.1, 0.5, 0.95]);
    const force = ++seq % 3 === 0; // every third seed: a long input and the smallest budget, so it spills and merges in passes
    const n = force ? 6000 : rng.pick([0, 1, 50, 2000, 6000]);
    const rows: RefValue[][] = Array.from({ length: n }, (_, i) => [...fields.slice(0, nf).map((f) => (f.nullable && rng.bool(pNull) ? null : value(rng, f.kind, skew))), i]);
    const keys: RefKey[] = Array.from({ length: rng.range(1, nf) }, () => ({ field: rng.int(nf), desc: rng.bool(), nullsFirst: rng.bool() }));

    const table = `t${seed}`;
    await conn.run(`CREATE TABLE ${table} (${fields.map((f, i) => `f${i} ${SQL_TYPE[f.kind]}`).join(', ')})`);
    const ap = await conn.createAppender(table);
    for (const r of rows) {
      fields.forEach((f, i) => append(ap, f.kind, r[i]!));
      ap.endRow();
    }
    ap.closeSync();
    const order = [...keys.map((kk) => `f${kk.field} ${kk.desc ? 'DESC' : 'ASC'} NULLS ${kk.nullsFirst ? 'FIRST' : 'LAST'}`), `f${id} ASC`].join(', ');
    const reader = await conn.runAndReadAll(`SELECT f${id} FROM ${table} ORDER BY ${order}`);
    const want = (reader.getColumnsJS()[0] ?? []) as number[];
    await conn.run(`DROP TABLE ${table}`);

    const batches: Uint8Array[] = [];
    for (let i = 0; i < rows.length; i += 64) batches.push(encodeBatch(fields, rows.slice(i, i + 64)));
    const sorter = new ExternalSorter({ kernels: k, schema: schemaOf(fields), keys: [...keys, { field: id }], budget: (force ? 4 : rng.range(4, 8)) * SEGMENT_BYTES, spill });
    for (const b of batches) await sorter.add(b);
    const got: number[] = [];
    const slot = 8 + Math.ceil(fields.length / 64) * 8 + 8 * id;
    for await (const b of sorter.sorted()) for (const r of batchRows(b)) got.push(new DataView(r.buffer, r.byteOffset).getInt32(slot, true));
    if (sorter.stats.spilledRuns > 0) spilled++;
    assert.is(got.length, want.length, 'row count');
    for (let i = 0; i < got.length; i++) {
      if (got[i] !== want[i]) {
        const show = (j: number) => JSON.stringify(rows[j], (_, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : typeof v === 'number' && !Number.isFinite(v) ? String(v) : Object.is(v, -0) ? '-0' : v));
        throw new Error(`ORDER BY ${order}: position ${i}: sluice row ${show(got[i]!)}, DuckDB row ${show(want[i]!)}`);
      }
    }
  });
  assert.ok(spilled >= 8, `${spilled} seeds spilled`);
});

test.after(() => {
  conn.closeSync();
});

test.run();
