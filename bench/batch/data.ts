// Owns what every engine of the batch benchmark (bench/batch.ts) agrees on: the workloads, the
// formulas that generate their rows inside each engine, the contract of an engine entry, and the
// `check` string every engine must produce for the same workload and size.
//
// Rows (i = 0 … n-1; MUL = 2654435761, P = 4294967291 (prime); h(i) = (i · MUL) mod P, a bijection
// on [0, P), so keys look random and never repeat within a workload):
//   sort, external-sort   t(k i64 = h(i), v i64 = i)                  ORDER BY k
//   join                  build b(k i64 = j, bv i64 = j mod 1000), j < buildRows   (unique keys)
//                         probe p(k i64 = h(i) mod buildRows, pv i64 = i mod 1000) — every probe matches once
//                         SELECT count(*), sum(pv), sum(bv) FROM p JOIN b USING (k)
//   groupby               g(k i64 = h(i) mod groups, v i64 = i mod 1000)
//                         SELECT k, sum(v) AS s, count(*) AS c FROM g GROUP BY k   (materialized)
// check strings (decimal integers joined by '|'):
//   sort, external-sort   `${rows}|${first k}|${last k}`
//   join                  `${count}|${sum pv}|${sum bv}`
//   groupby               `${number of groups}|${sum of s}|${max of c}`

export type Workload = 'sort' | 'join' | 'groupby' | 'external-sort';
export type Engine = 'sluice' | 'duckdb' | 'duckdb-wasm' | 'arquero' | 'js';
export const WORKLOADS: readonly Workload[] = ['sort', 'join', 'groupby', 'external-sort'];

/** The sizes of one workload run (already scaled by `--scale`). */
export interface BatchBenchOptions {
  workload: Workload;
  /** Rows of the main input (sort/external-sort input, join probe side, groupby input). */
  rows: number;
  /** join: rows of the build side (unique keys 0 … buildRows-1). */
  buildRows: number;
  /** groupby: number of distinct keys. */
  groups: number;
  /** external-sort: the managed-memory budget in bytes (DuckDB: memory_limit). */
  budgetBytes: number;
  /** Threads the engine may use (DuckDB native: 1 or 2; everyone else runs on one). */
  threads: number;
  /** A directory for spill / temp files, removed by the harness afterwards. */
  tmpDir: string;
}

/** What an engine entry returns: the timed seconds (data generation excluded) and the check string. */
export interface RunResult {
  seconds: number;
  check: string;
}

/** An engine entry: generates the rows inside the engine (untimed), then times the workload. */
export type RunFn = (rows: number, opts: BatchBenchOptions) => Promise<RunResult>;

export const MUL = 2654435761;
export const P = 4294967291;
const MUL_HI = Math.floor(MUL / 65536); // 40503
const MUL_LO = MUL % 65536; // 31153

/** h(i) = (i · MUL) mod P in doubles without overflow for i < 2^37 (every partial product < 2^53). */
export function h(i: number): number {
  return (((i * MUL_HI) % P) * 65536 + i * MUL_LO) % P;
}

/** SQL for h(range) (BIGINT arithmetic: range · MUL < 2^63 for range < 3.4e9). */
export const H_SQL = `((range * ${MUL}) % ${P})`;

/** The check string every engine must produce (computed from the formulas, for the harness to verify). */
export function expectedCheck(o: BatchBenchOptions): string {
  const n = o.rows;
  if (o.workload === 'sort' || o.workload === 'external-sort') {
    if (n === 0) return '0||';
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const k = h(i);
      if (k < min) min = k;
      if (k > max) max = k;
    }
    return `${n}|${min}|${max}`;
  }
  if (o.workload === 'join') {
    let sp = 0;
    let sb = 0;
    for (let i = 0; i < n; i++) {
      sp += i % 1000;
      sb += (h(i) % o.buildRows) % 1000;
    }
    return `${n}|${sp}|${sb}`;
  }
  const counts = new Uint32Array(o.groups);
  let s = 0;
  for (let i = 0; i < n; i++) {
    counts[h(i) % o.groups]!++;
    s += i % 1000;
  }
  let groups = 0;
  let max = 0;
  for (const c of counts) {
    if (c > 0) groups++;
    if (c > max) max = c;
  }
  return `${groups}|${s}|${max}`;
}

/** Seconds since `t0` (performance.now() milliseconds). */
export function since(t0: number): number {
  return (performance.now() - t0) / 1000;
}
