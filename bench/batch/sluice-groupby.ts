// Owns the Sluice entry of the batch benchmark's groupby workload: rows g(k = h(i) mod groups,
// v = i mod 1000) generated straight into binary batches (bench/batch/data.ts formulas; 32-byte rows,
// ≤ 32 KiB batches), untimed; then, timed, the HashAggregator (src/operators/batch/hash-aggregate.ts:
// GROUP BY k, sum(v) AS s, count(*) AS c) with a budget that holds every group (so nothing spills:
// checked), and a tight loop over the final output batches' bytes computing the number of groups,
// sum(s) and max(c) — no per-row objects. The generated batches are validated once when they are made
// (untimed: "rows are in the engine") and handed to the aggregation as `trusted`.
//
// Budget: groups × 160 B (entries ≈ 48 B, directory 16 B per group, doubled while it rehashes, ×2
// slack) + 4 MiB (for 10k groups ≈ 5.5 MiB, for 100k ≈ 19 MiB); the kernel instance (one per process,
// reused: bench/batch/sluice-kernels.ts) gets that plus 8 segments.

import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { FieldType, Schema } from '../../src/core/schema.ts';
import { RowLayout } from '../../src/core/batch-writer.ts';
import { HashAggregator } from '../../src/operators/batch/hash-aggregate.ts';
import { createNodePlatform } from '../../src/platform/node.ts';
import { h, since, type BatchBenchOptions, type RunResult } from './data.ts';
import { twoI64Batches } from './sluice-join.ts';
import { validateAll, warmKernels } from './sluice-kernels.ts';

const I64 = new FieldType('i64', false, false);
const schema = new Schema({ k: I64, v: I64 });

/**
 * The number of groups, sum(s) and max(c) over final rows, a batch at a time. A class rather than
 * locals of the async `run()`, as JoinSums (bench/batch/sluice-join.ts): the harness's GC between runs
 * deoptimizes `run()`'s code with its dead objects, and a loop inside it re-warms every run.
 */
class GroupSums {
  groups = 0;
  sum = 0;
  max = 0;
  constructor(
    private readonly sAt: number,
    private readonly cAt: number,
  ) {}

  batch(b: Uint8Array): void {
    const u32 = new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
    const i32 = new Int32Array(b.buffer, b.byteOffset, b.length >>> 2);
    const m = u32[2]!;
    const { sAt, cAt } = this;
    let sum = this.sum;
    let max = this.max;
    for (let r = 0, x = 4; r < m; r++) {
      sum += u32[x + sAt]! + i32[x + sAt + 1]! * 4294967296;
      const c = u32[x + cAt]! + i32[x + cAt + 1]! * 4294967296;
      if (c > max) max = c;
      x += u32[x]! >>> 2;
    }
    this.sum = sum;
    this.max = max;
    this.groups += m;
  }
}

/** GROUP BY k of `rows` rows into `o.groups` keys, all in memory. */
export async function run(rows: number, o: BatchBenchOptions): Promise<RunResult> {
  const g = o.groups;
  const input = twoI64Batches(schema, rows, (i) => h(i) % g, (i) => i % 1000);
  const budget = Math.ceil((g * 160 + (4 << 20)) / SEGMENT_BYTES) * SEGMENT_BYTES;
  const k = await warmKernels(budget + 8 * SEGMENT_BYTES);
  validateAll(k, schema, input);
  const platform = await createNodePlatform();
  const t0 = performance.now();
  const agg = new HashAggregator({
    kernels: k,
    schema,
    keys: ['k'],
    aggs: [
      { op: 'sum', field: 'v', as: 's' },
      { op: 'count', as: 'c' },
    ],
    budget,
    trusted: true,
    spill: { kind: 'file', createSpillStore: (so) => platform.spill.createSpillStore({ ...so, dir: o.tmpDir }) },
  });
  const out = agg.outputSchema;
  const L = new RowLayout(out);
  const sums = new GroupSums((L.slotsOffset + 8 * out.indexOf('s')) >>> 2, (L.slotsOffset + 8 * out.indexOf('c')) >>> 2);
  try {
    for await (const b of agg.run(input)) sums.batch(b);
  } finally {
    await agg.close();
  }
  const { groups, sum, max } = sums;
  const seconds = since(t0);
  const st = agg.stats;
  if (st.spills > 0) throw new Error(`sluice groupby spilled ${st.spills} times with a budget of ${budget} bytes`);
  if (process.env['BENCH_VERBOSE']) console.error(`  sluice groupby: budget ${(budget / 2 ** 20).toFixed(1)} MiB, ${st.groups} groups, ${st.spills} spills`);
  return { seconds, check: `${groups}|${sum}|${max}` };
}
