// Owns the plain-JavaScript and arquero peers of the batch benchmark: columns as Float64Arrays built
// from the bench/batch/data.ts formulas (untimed), then the workload in idiomatic code — a typed index
// sort, a Map-based hash join and group-by — or arquero verbs (orderby / join / groupby + rollup).
// Neither has a memory budget: external-sort runs in memory for them (the table says so).

import * as aq from 'arquero';
import { h, since, type BatchBenchOptions, type RunResult } from './data.ts';

function columns(n: number, f: (i: number) => number, g: (i: number) => number): [Float64Array, Float64Array] {
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    a[i] = f(i);
    b[i] = g(i);
  }
  return [a, b];
}

/** Plain JS: sort an index by key and gather both columns; Map join; Map group-by. */
export async function runJs(rows: number, o: BatchBenchOptions): Promise<RunResult> {
  if (o.workload === 'sort' || o.workload === 'external-sort') {
    const [k, v] = columns(rows, h, (i) => i);
    const t0 = performance.now();
    const idx = new Uint32Array(rows);
    for (let i = 0; i < rows; i++) idx[i] = i;
    idx.sort((a, b) => k[a]! - k[b]!);
    const sk = new Float64Array(rows);
    const sv = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      sk[i] = k[idx[i]!]!;
      sv[i] = v[idx[i]!]!;
    }
    for (let i = 1; i < rows; i++) if (sk[i - 1]! > sk[i]!) throw new Error('js: not sorted');
    const check = `${rows}|${rows ? sk[0] : ''}|${rows ? sk[rows - 1] : ''}`;
    return { seconds: since(t0), check };
  }
  if (o.workload === 'join') {
    const B = o.buildRows;
    const [bk, bv] = columns(B, (j) => j, (j) => j % 1000);
    const [pk, pv] = columns(rows, (i) => h(i) % B, (i) => i % 1000);
    const t0 = performance.now();
    const table = new Map<number, number>();
    for (let j = 0; j < B; j++) table.set(bk[j]!, bv[j]!);
    let n = 0;
    let sp = 0;
    let sb = 0;
    for (let i = 0; i < rows; i++) {
      const m = table.get(pk[i]!);
      if (m !== undefined) {
        n++;
        sp += pv[i]!;
        sb += m;
      }
    }
    return { seconds: since(t0), check: `${n}|${sp}|${sb}` };
  }
  const [gk, gv] = columns(rows, (i) => h(i) % o.groups, (i) => i % 1000);
  const t0 = performance.now();
  const slot = new Map<number, number>();
  const sums: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < rows; i++) {
    let s = slot.get(gk[i]!);
    if (s === undefined) {
      s = sums.length;
      slot.set(gk[i]!, s);
      sums.push(0);
      counts.push(0);
    }
    sums[s]! += gv[i]!;
    counts[s]!++;
  }
  let total = 0;
  let max = 0;
  for (let s = 0; s < sums.length; s++) {
    total += sums[s]!;
    if (counts[s]! > max) max = counts[s]!;
  }
  return { seconds: since(t0), check: `${sums.length}|${total}|${max}` };
}

/** arquero: orderby + reify; join + rollup; groupby + rollup. */
export async function runArquero(rows: number, o: BatchBenchOptions): Promise<RunResult> {
  const op = aq.op;
  if (o.workload === 'sort' || o.workload === 'external-sort') {
    const [k, v] = columns(rows, h, (i) => i);
    const t = aq.table({ k, v });
    const t0 = performance.now();
    const r = t.orderby('k').reify();
    const check = `${r.numRows()}|${rows ? r.get('k', 0) : ''}|${rows ? r.get('k', rows - 1) : ''}`;
    return { seconds: since(t0), check };
  }
  if (o.workload === 'join') {
    const B = o.buildRows;
    const [bk, bv] = columns(B, (j) => j, (j) => j % 1000);
    const [pk, pv] = columns(rows, (i) => h(i) % B, (i) => i % 1000);
    const b = aq.table({ k: bk, bv });
    const p = aq.table({ k: pk, pv });
    const t0 = performance.now();
    const r = p.join(b, 'k').rollup({ n: op.count(), sp: op.sum('pv'), sb: op.sum('bv') });
    const check = `${r.get('n', 0)}|${r.get('sp', 0) ?? 0}|${r.get('sb', 0) ?? 0}`;
    return { seconds: since(t0), check };
  }
  const [gk, gv] = columns(rows, (i) => h(i) % o.groups, (i) => i % 1000);
  const g = aq.table({ k: gk, v: gv });
  const t0 = performance.now();
  const r = g.groupby('k').rollup({ s: op.sum('v'), c: op.count() });
  const tot = r.rollup({ n: op.count(), s: op.sum('s'), m: op.max('c') });
  const check = `${tot.get('n', 0)}|${tot.get('s', 0) ?? 0}|${tot.get('m', 0) ?? 0}`;
  return { seconds: since(t0), check };
}
