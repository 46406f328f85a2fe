// Owns the DuckDB peers of the batch benchmark: native DuckDB (@duckdb/node-api) with a chosen thread
// count, and duckdb-wasm (@duckdb/duckdb-wasm, blocking Node bindings, one thread). Both generate the
// rows with SQL (bench/batch/data.ts formulas) into a loaded table, untimed, then time the workload
// query that materializes its result (`CREATE TABLE r AS …`) plus the check query.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { H_SQL, since, type BatchBenchOptions, type RunResult } from './data.ts';

/** The SQL of one workload: statements that load (untimed), then the timed statements and the check. */
function sql(o: BatchBenchOptions): { load: string[]; run: string[]; check: string; cleanup: string[] } {
  const n = o.rows;
  switch (o.workload) {
    case 'sort':
    case 'external-sort':
      return {
        load: [`CREATE OR REPLACE TABLE t AS SELECT ${H_SQL} AS k, range AS v FROM range(${n})`],
        run: ['CREATE OR REPLACE TABLE r AS SELECT * FROM t ORDER BY k'],
        check: `SELECT (SELECT count(*) FROM r)::VARCHAR || '|' || coalesce((SELECT k FROM r LIMIT 1)::VARCHAR, '') || '|' || coalesce((SELECT k FROM r LIMIT 1 OFFSET ${Math.max(0, n - 1)})::VARCHAR, '') AS c`,
        cleanup: ['DROP TABLE IF EXISTS r', 'DROP TABLE IF EXISTS t'],
      };
    case 'join':
      return {
        load: [
          `CREATE OR REPLACE TABLE b AS SELECT range AS k, range % 1000 AS bv FROM range(${o.buildRows})`,
          `CREATE OR REPLACE TABLE p AS SELECT ${H_SQL} % ${o.buildRows} AS k, range % 1000 AS pv FROM range(${n})`,
        ],
        run: ['CREATE OR REPLACE TABLE r AS SELECT count(*) AS n, sum(pv) AS sp, sum(bv) AS sb FROM p JOIN b USING (k)'],
        check: `SELECT n::VARCHAR || '|' || coalesce(sp, 0)::VARCHAR || '|' || coalesce(sb, 0)::VARCHAR AS c FROM r`,
        cleanup: ['DROP TABLE IF EXISTS r', 'DROP TABLE IF EXISTS p', 'DROP TABLE IF EXISTS b'],
      };
    case 'groupby':
      return {
        load: [`CREATE OR REPLACE TABLE g AS SELECT ${H_SQL} % ${o.groups} AS k, range % 1000 AS v FROM range(${n})`],
        run: ['CREATE OR REPLACE TABLE r AS SELECT k, sum(v) AS s, count(*) AS c FROM g GROUP BY k'],
        check: `SELECT count(*)::VARCHAR || '|' || coalesce(sum(s), 0)::VARCHAR || '|' || coalesce(max(c), 0)::VARCHAR AS c FROM r`,
        cleanup: ['DROP TABLE IF EXISTS r', 'DROP TABLE IF EXISTS g'],
      };
  }
}

let dbSeq = 0;

/**
 * Native DuckDB with `opts.threads` threads. external-sort uses a file-backed database (so the loaded
 * table need not stay in memory), `memory_limit` = the budget and a temp directory for its spill.
 */
export async function runDuckdb(rows: number, o: BatchBenchOptions): Promise<RunResult> {
  const external = o.workload === 'external-sort';
  const path = external ? join(o.tmpDir, `duckdb-${process.pid}-${dbSeq++}.db`) : ':memory:';
  const db = await DuckDBInstance.create(path);
  const conn = await db.connect();
  try {
    await conn.run(`SET threads = ${o.threads}`);
    await conn.run('SET preserve_insertion_order = true');
    if (external) {
      await conn.run(`SET temp_directory = '${join(o.tmpDir, `duckdb-tmp-${dbSeq}`)}'`);
      await conn.run(`SET memory_limit = '${Math.floor(o.budgetBytes / (1 << 20))}MB'`);
    }
    const q = sql({ ...o, rows });
    for (const s of q.load) await conn.run(s);
    if (external) await conn.run('CHECKPOINT');
    const t0 = performance.now();
    for (const s of q.run) await conn.run(s);
    const check = String((await conn.runAndReadAll(q.check)).getColumnsJS()[0]![0]);
    const seconds = since(t0);
    for (const s of q.cleanup) await conn.run(s);
    return { seconds, check };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

interface WasmConn {
  query(sql: string): { toArray(): { toJSON(): Record<string, unknown> }[] };
  close(): void;
}
interface WasmDb {
  instantiate(progress?: () => void): Promise<unknown>;
  connect(): WasmConn;
  reset?(): void;
}

let wasmDb: Promise<WasmDb> | undefined;

function duckdbWasm(): Promise<WasmDb> {
  return (wasmDb ??= (async () => {
    const require = createRequire(import.meta.url);
    const mod = require('@duckdb/duckdb-wasm/dist/duckdb-node-blocking.cjs') as {
      createDuckDB(bundles: unknown, logger: unknown, runtime: unknown): Promise<WasmDb>;
      VoidLogger: new () => unknown;
      NODE_RUNTIME: unknown;
    };
    const dist = join(require.resolve('@duckdb/duckdb-wasm/dist/duckdb-node-blocking.cjs'), '..');
    const db = await mod.createDuckDB(
      {
        mvp: { mainModule: join(dist, 'duckdb-mvp.wasm'), mainWorker: join(dist, 'duckdb-node-mvp.worker.cjs') },
        eh: { mainModule: join(dist, 'duckdb-eh.wasm'), mainWorker: join(dist, 'duckdb-node-eh.worker.cjs') },
      },
      new mod.VoidLogger(),
      mod.NODE_RUNTIME,
    );
    await db.instantiate(() => undefined);
    return db;
  })());
}

/** duckdb-wasm under Node (blocking bindings, one thread); external-sort sets memory_limit too. */
export async function runDuckdbWasm(rows: number, o: BatchBenchOptions): Promise<RunResult> {
  const db = await duckdbWasm();
  const conn = db.connect();
  try {
    conn.query('SET preserve_insertion_order = true');
    conn.query(o.workload === 'external-sort' ? `SET memory_limit = '${Math.floor(o.budgetBytes / (1 << 20))}MB'` : "SET memory_limit = '3GB'");
    const q = sql({ ...o, rows });
    for (const s of q.load) conn.query(s);
    const t0 = performance.now();
    for (const s of q.run) conn.query(s);
    const check = String(conn.query(q.check).toArray()[0]!.toJSON()['c']);
    const seconds = since(t0);
    for (const s of q.cleanup) conn.query(s);
    return { seconds, check };
  } catch (e) {
    for (const s of sql(o).cleanup) {
      try {
        conn.query(s);
      } catch {
        /* best effort */
      }
    }
    throw e;
  } finally {
    conn.close();
  }
}
