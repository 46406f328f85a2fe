// Owns the Sluice entries of the batch benchmark's sort and external-sort workloads: rows generated
// straight into binary batches (bench/batch/data.ts formulas; 32-byte rows, 32 KiB batches), untimed;
// then, timed, the ExternalSorter (src/operators/batch/external-sort.ts) over those batches — with a
// budget that holds everything for `sort` (one in-memory run), and `budgetBytes` for `external-sort`
// (runs spilled to the Node file spill store under tmpDir, then merged) — and a check pass over the
// sorted output that verifies the order. The generated batches are validated once when they are made
// (untimed: "rows are in the engine") and added as `trusted`; the in-memory sort yields views into
// its output buffer (`reuseOutput`, read by the check before the next is asked for); the kernel
// instance is the process's warm one (bench/batch/sluice-kernels.ts).

import { FieldType, Schema } from '../../src/core/schema.ts';
import { ExternalSorter } from '../../src/operators/batch/external-sort.ts';
import { createNodePlatform } from '../../src/platform/node.ts';
import { h, since, type BatchBenchOptions, type RunResult } from './data.ts';
import { validateAll, warmKernels } from './sluice-kernels.ts';

const schema = new Schema({ k: new FieldType('i64', false, true), v: new FieldType('i64', false, true) });
const ROW = 32; // 8 header + 8 null bitmap + 2 × 8 slots
const SEG = 32768;
const PER_BATCH = Math.floor((SEG - 16) / ROW);

/** The rows as batches of ≤ 32 KiB, written with typed arrays (keys < 2^32, so the high words are 0). */
export function sortBatches(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let start = 0; start < n; start += PER_BATCH) {
    const m = Math.min(PER_BATCH, n - start);
    const b = new Uint8Array(16 + m * ROW);
    const w = new Uint32Array(b.buffer);
    w[0] = 0x31424c53;
    w[1] = b.length;
    w[2] = m;
    w[3] = schema.id;
    for (let r = 0, o = 4; r < m; r++, o += ROW / 4) {
      const i = start + r;
      w[o] = ROW;
      w[o + 4] = h(i); // k low word
      w[o + 6] = i % 4294967296; // v low word
      w[o + 7] = Math.floor(i / 4294967296);
    }
    out.push(b);
  }
  return out;
}

/**
 * Reads every row of the sorted output and checks that k never decreases; the check string is
 * `${rows}|${first k}|${last k}`. A class with the loop state in locals: as locals of the async `run`
 * they lived in its context object, a heap load and store per row (~15 → ~9 ns/row at 10M rows).
 */
export class OrderCheck {
  count = 0;
  first = '';
  prevHi = -Infinity;
  prevLo = -1;

  batch(b: Uint8Array): void {
    const w = new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
    const i32 = new Int32Array(b.buffer, b.byteOffset, b.length >>> 2);
    const m = w[2]!;
    let prevHi = this.prevHi;
    let prevLo = this.prevLo;
    let count = this.count;
    for (let r = 0, x = 4 + 4; r < m; r++, x += ROW / 4) {
      const lo = w[x]!;
      const hi = i32[x + 1]!;
      if (hi < prevHi || (hi === prevHi && lo < prevLo)) throw new Error(`sluice: not sorted at row ${count}`);
      if (count === 0) this.first = String(hi * 4294967296 + lo);
      prevHi = hi;
      prevLo = lo;
      count++;
    }
    this.prevHi = prevHi;
    this.prevLo = prevLo;
    this.count = count;
  }

  result(): string {
    return `${this.count}|${this.first}|${this.count ? this.prevHi * 4294967296 + this.prevLo : ''}`;
  }
}

/** Sort (all in memory) or external sort (within budgetBytes) of `rows` rows by k. */
export async function run(rows: number, o: BatchBenchOptions): Promise<RunResult> {
  const external = o.workload === 'external-sort';
  const input = sortBatches(rows);
  // sort: room for the whole input plus its 32-byte/row index; external: the budget (+ the kernels' scratch)
  const budget = external ? o.budgetBytes : Math.ceil((rows * (ROW + 32) + input.length * 16) / SEG) * SEG + 8 * SEG;
  const k = await warmKernels(budget + 4 * SEG);
  validateAll(k, schema, input);
  const platform = await createNodePlatform();
  const t0 = performance.now();
  const sorter = new ExternalSorter({ kernels: k, schema, keys: ['k'], budget, trusted: true, reuseOutput: true, spill: { kind: 'file', createSpillStore: (so) => platform.spill.createSpillStore({ ...so, dir: o.tmpDir }) } });
  const check = new OrderCheck();
  try {
    for (const b of input) await sorter.add(b);
    for await (const b of sorter.sorted()) check.batch(b);
  } finally {
    await sorter.close();
  }
  const seconds = since(t0);
  const st = sorter.stats;
  if (external && process.env['BENCH_VERBOSE']) console.error(`  sluice external-sort: ${st.runs} runs, ${st.mergePasses} merge passes, fan-in ${st.maxFanIn}, ${(st.spilledBytes / 2 ** 20).toFixed(0)} MiB spilled`);
  return { seconds, check: check.result() };
}
