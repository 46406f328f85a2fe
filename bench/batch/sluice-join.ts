// Owns the Sluice entry of the batch benchmark's join workload: build rows b(k = j, bv = j mod 1000)
// and probe rows p(k = h(i) mod buildRows, pv = i mod 1000) generated straight into binary batches
// (bench/batch/data.ts formulas; 32-byte rows, ≤ 32 KiB batches), untimed; then, timed, the
// HybridHashJoin (src/operators/batch/hash-join.ts, inner, build side = b) with a budget that holds the
// whole build side and its table (so the join stays in memory: no partition is spilled, checked), and a
// tight loop over the output batches' bytes computing count(*), sum(pv), sum(bv) — no per-row objects.
// The generated batches are validated once when they are made (untimed: that is "rows are in the
// engine") and handed to the join as `trusted`; the join yields its output buffers as views
// (`reuseOutput`), which the loop reads before asking for the next — as DuckDB streams join rows into
// its aggregate without materializing them. Output batches are 128 KiB (the operator's default is 32).
//
// Budget: 2 × (build rows × 32 B + the join table's bytes) + 4 MiB (for 100k build rows ≈ 14 MiB,
// for 1M ≈ 101 MiB); the kernel instance (one per process, reused: bench/batch/sluice-kernels.ts)
// gets that plus 8 segments.

import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { joinTableBytes } from '../../bindings/join.ts';
import { FieldType, Schema } from '../../src/core/schema.ts';
import { RowLayout } from '../../src/core/batch-writer.ts';
import { HybridHashJoin } from '../../src/operators/batch/hash-join.ts';
import { createNodePlatform } from '../../src/platform/node.ts';
import { h, since, type BatchBenchOptions, type RunResult } from './data.ts';
import { validateAll, warmKernels } from './sluice-kernels.ts';

const I64 = new FieldType('i64', false, false);
const probeSchema = new Schema({ k: I64, pv: I64 });
const buildSchema = new Schema({ k: I64, bv: I64 });
const ROW = 32; // 8 header + 8 null bitmap + 2 × 8 slots
const PER_BATCH = Math.floor((SEGMENT_BYTES - 16) / ROW);

/**
 * `n` rows of a two-i64 schema as batches of ≤ 32 KiB; `a(i)` / `b(i)` give the fields (integers in
 * [0, 2^32), so only the low words are written — the high words stay 0).
 */
export function twoI64Batches(schema: Schema, n: number, a: (i: number) => number, b: (i: number) => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let start = 0; start < n; start += PER_BATCH) {
    const m = Math.min(PER_BATCH, n - start);
    const bytes = new Uint8Array(16 + m * ROW);
    const w = new Uint32Array(bytes.buffer);
    w[0] = 0x31424c53;
    w[1] = bytes.length;
    w[2] = m;
    w[3] = schema.id;
    for (let r = 0, o = 4; r < m; r++, o += ROW / 4) {
      const i = start + r;
      w[o] = ROW;
      w[o + 4] = a(i);
      w[o + 6] = b(i);
    }
    out.push(bytes);
  }
  return out;
}

/**
 * count(*), sum(pv), sum(bv) over joined rows, a batch at a time. A class of its own rather than
 * locals of the async `run()`: those live in its heap-allocated frame, and `run`'s optimized code
 * dies with each run's objects (a full GC between runs deoptimizes it), which made this loop ~5×
 * slower in the harness than the same loop here.
 */
export class JoinSums {
  count = 0;
  sp = 0;
  sb = 0;
  constructor(
    private readonly pvAt: number,
    private readonly bvAt: number,
  ) {}

  batch(b: Uint8Array): void {
    const u32 = new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
    const i32 = new Int32Array(b.buffer, b.byteOffset, b.length >>> 2);
    const m = u32[2]!;
    const { pvAt, bvAt } = this;
    let sp = this.sp;
    let sb = this.sb;
    for (let r = 0, x = 4; r < m; r++) {
      sp += u32[x + pvAt]! + i32[x + pvAt + 1]! * 4294967296;
      sb += u32[x + bvAt]! + i32[x + bvAt + 1]! * 4294967296;
      x += u32[x]! >>> 2;
    }
    this.sp = sp;
    this.sb = sb;
    this.count += m;
  }
}

/** Inner join of `rows` probe rows with `o.buildRows` build rows, all in memory. */
export async function run(rows: number, o: BatchBenchOptions): Promise<RunResult> {
  const nb = o.buildRows;
  const build = twoI64Batches(buildSchema, nb, (j) => j, (j) => j % 1000);
  const probe = twoI64Batches(probeSchema, rows, (i) => h(i) % nb, (i) => i % 1000);
  const budget = Math.ceil((2 * (nb * ROW + joinTableBytes(nb)) + (4 << 20)) / SEGMENT_BYTES) * SEGMENT_BYTES;
  const k = await warmKernels(budget + 8 * SEGMENT_BYTES);
  validateAll(k, buildSchema, build);
  validateAll(k, probeSchema, probe);
  const platform = await createNodePlatform();
  const store = await platform.spill.createSpillStore({ dir: o.tmpDir });
  try {
    const t0 = performance.now();
    const join = new HybridHashJoin({
      kernels: k,
      spill: store,
      type: 'inner',
      left: { schema: probeSchema, keys: ['k'], batches: probe, trusted: true },
      right: { schema: buildSchema, keys: ['k'], batches: build, trusted: true },
      buildSide: 'right',
      budgetBytes: budget,
      reuseOutput: true,
      // output batches of 4 segments: a quarter of the batches (and of the per-batch hand-over) for the
      // consumer loop — ~10% of the run at 1M probe rows, no change at 10M
      outputBytes: 4 * SEGMENT_BYTES,
    });
    const L = new RowLayout(join.schema);
    const sums = new JoinSums((L.slotsOffset + 8 * join.schema.indexOf('pv')) >>> 2, (L.slotsOffset + 8 * join.schema.indexOf('bv')) >>> 2);
    try {
      for await (const b of join) sums.batch(b);
    } finally {
      await join.close();
    }
    const { count, sp, sb } = sums;
    const seconds = since(t0);
    const st = join.stats;
    if (st.spilledPartitions > 0) throw new Error(`sluice join spilled ${st.spilledPartitions} partitions with a budget of ${budget} bytes`);
    if (process.env['BENCH_VERBOSE']) console.error(`  sluice join: budget ${(budget / 2 ** 20).toFixed(1)} MiB, level ${st.maxLevel}, spilled ${st.spilledPartitions}`);
    return { seconds, check: `${count}|${sp}|${sb}` };
  } finally {
    await store.close();
  }
}
