// Tests the top-n operator against DuckDB (native, @duckdb/node-api) on Node: the same random rows go
// into a DuckDB table and into binary batches; `SELECT id FROM t ORDER BY <keys>, id LIMIT n OFFSET m`
// must give the same ids in the same order as the top-n by the same keys plus the unique `id`
// tiebreak (the sort is total, so ties cannot differ). Data: nulls, duplicates, heavy skew, empty
// input, long and non-ASCII strings, NaN / ±inf / -0, i32 and i64 extremes, blobs; budgets small
// enough that the top-n compacts many times, and limits large enough that it falls back to a
// spilling external sort (the runtime's file spill store: no temp file may be left behind).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBAppender } from '@duckdb/node-api';
import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { TopN } from '../../src/operators/batch/top-n.ts';
import { detectPlatform } from '../../src/platform/index.ts';
import type { SpillStoreFactory } from '../../src/platform/types.ts';
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

const parent = mkdtempSync(join(tmpdir(), 'sluice-topn-test-'));
const runtimeSpill = (await detectPlatform()).spill;
const fileSpill: SpillStoreFactory = { kind: runtimeSpill.kind, createSpillStore: (o) => runtimeSpill.createSpillStore({ ...o, dir: parent }) };
const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();

test('top-n == DuckDB ORDER BY … LIMIT n OFFSET m (random keys, ASC/DESC, NULLS FIRST/LAST, compacting and falling back)', async () => {
  const k = await kernelsFor(false);
  let fellBack = 0;
  let compacted = 0;
  await forSeeds('top-n/duckdb', 20, async (rng, seed) => {
    const nf = rng.range(1, 5);
    const fields: RefField[] = Array.from({ length: nf }, () => ({ kind: rng.pick(KINDS), nullable: rng.bool(0.7) }));
    fields.push({ kind: 'i32', nullable: false }); // id: the unique tiebreak
    const id = nf;
    const skew = rng.bool(0.3);
    const pNull = rng.pick([0, 0.1, 0.5, 0.95]);
    // every fourth seed: a long input and a small limit (many compactions); every fifth: a large limit (the fallback)
    const compact = seed % 4 === 0;
    const fallBack = seed % 5 === 0;
    const n = compact || fallBack ? 12000 : rng.pick([0, 1, 50, 3000, 12000]);
    const rows: RefValue[][] = Array.from({ length: n }, (_, i) => [...fields.slice(0, nf).map((f) => (f.nullable && rng.bool(pNull) ? null : value(rng, f.kind, skew))), i]);
    const keys: RefKey[] = Array.from({ length: rng.range(1, nf) }, () => ({ field: rng.int(nf), desc: rng.bool(), nullsFirst: rng.bool() }));
    const limit = compact ? rng.pick([1, 10, 100]) : fallBack ? 100000 : rng.pick([0, 1, 10, 500, 5000, 100000]);
    const offset = rng.pick([0, 0, 1, 100, 2999]);

    const table = `t${seed}`;
    await conn.run(`CREATE TABLE ${table} (${fields.map((f, i) => `f${i} ${SQL_TYPE[f.kind]}`).join(', ')})`);
    const ap = await conn.createAppender(table);
    for (const r of rows) {
      fields.forEach((f, i) => append(ap, f.kind, r[i]!));
      ap.endRow();
    }
    ap.closeSync();
    const order = [...keys.map((kk) => `f${kk.field} ${kk.desc ? 'DESC' : 'ASC'} NULLS ${kk.nullsFirst ? 'FIRST' : 'LAST'}`), `f${id} ASC`].join(', ');
    const reader = await conn.runAndReadAll(`SELECT f${id} FROM ${table} ORDER BY ${order} LIMIT ${limit} OFFSET ${offset}`);
    const want = (reader.getColumnsJS()[0] ?? []) as number[];
    await conn.run(`DROP TABLE ${table}`);

    const batches: Uint8Array[] = [];
    for (let i = 0; i < rows.length; i += 64) batches.push(encodeBatch(fields, rows.slice(i, i + 64)));
    const top = new TopN({ kernels: k, schema: schemaOf(fields), keys: [...keys, { field: id }], limit, offset, budget: (compact ? 4 : rng.range(4, 10)) * SEGMENT_BYTES, spill: fileSpill });
    for (const b of batches) await top.add(b);
    const got: number[] = [];
    const slot = 8 + Math.ceil(fields.length / 64) * 8 + 8 * id;
    for await (const b of top.sorted()) for (const r of batchRows(b)) got.push(new DataView(r.buffer, r.byteOffset).getInt32(slot, true));
    if (top.stats.fellBack) fellBack++;
    if (top.stats.compactions > 1) compacted++;
    assert.equal(got, want, `ORDER BY ${order} LIMIT ${limit} OFFSET ${offset} (${n} rows)`);
    assert.equal(readdirSync(parent), [], 'no temp directory left');
  });
  assert.ok(compacted >= 2, `${compacted} seeds compacted more than once`);
  assert.ok(fellBack >= 1, `${fellBack} seeds fell back to the external sort`);
});

test.after(() => {
  conn.closeSync();
  rmSync(parent, { recursive: true, force: true });
});

test.run();
