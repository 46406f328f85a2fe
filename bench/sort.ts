// A micro-measure (not a test, not in RESULTS.md): sorting 1M rows { k: i64, v: i64 } with the sort
// kernel (index only, and index + copy-out to batches) against Array.prototype.sort in plain JS.
//   node --import tsx bench/sort.ts [rows]
import { loadKernels } from '../bindings/index.ts';
import { FieldType, Schema } from '../src/core/schema.ts';

const N = Number(globalThis.process?.argv?.[2] ?? 1_000_000);
const schema = new Schema({ k: new FieldType('i64', false, true), v: new FieldType('i64', false, true) });
const ROW = 32; // 8 header + 8 bitmap + 2 slots
const PER_BATCH = Math.floor((32768 - 16) / ROW);

let seed = 0x12345678;
const rnd = () => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0) >>> 0);
const keys = new BigInt64Array(N);
for (let i = 0; i < N; i++) keys[i] = BigInt.asIntN(64, (BigInt(rnd()) << 32n) | BigInt(rnd()));

function batches(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let start = 0; start < N; start += PER_BATCH) {
    const n = Math.min(PER_BATCH, N - start);
    const b = new Uint8Array(16 + n * ROW);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, 0x31424c53, true);
    dv.setUint32(4, b.length, true);
    dv.setUint32(8, n, true);
    dv.setUint32(12, schema.id, true);
    for (let i = 0; i < n; i++) {
      const o = 16 + i * ROW;
      dv.setUint32(o, ROW, true);
      dv.setBigInt64(o + 16, keys[start + i]!, true);
      dv.setBigInt64(o + 24, BigInt(start + i), true);
    }
    out.push(b);
  }
  return out;
}

function time(label: string, reps: number, f: () => unknown): void {
  const t: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    f();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  console.log(`${label.padEnd(58)} median ${t[t.length >> 1]!.toFixed(1).padStart(7)} ms  (min ${t[0]!.toFixed(1)})`);
}

const k = await loadKernels({ budgetBytes: 512 << 20 });
const managed = batches().map((b) => k.copyIn(b, schema));
console.log(`${N} rows, ${managed.length} batches of ≤ ${PER_BATCH} rows`);
let check = 0;
time('kernel: sortedRowPointers (index only, radix)', 7, () => (check += k.sortedRowPointers(schema, managed, ['k']).length));
time('kernel: sort (index + gather into 32 KiB batches, copied out)', 7, () => (check += k.sort(schema, managed, ['k']).length));
time('kernel: sort desc', 5, () => (check += k.sort(schema, managed, [{ field: 'k', desc: true }]).length));
time('kernel: sort by (v, k) (v ascending already; k truncated to 4 bytes)', 5, () => (check += k.sort(schema, managed, ['v', 'k']).length));
const f64 = Float64Array.from(keys, (x) => Number(x));
time('JS: Float64Array.prototype.sort() (numeric keys only)', 7, () => (check += f64.slice().sort()[0]!));
time('JS: BigInt64Array.prototype.sort() (keys only)', 5, () => (check += Number(keys.slice().sort()[0]! & 1n)));
const objs = Array.from(keys, (kk, i) => ({ k: kk, v: BigInt(i) }));
time('JS: Array.prototype.sort on {k: bigint, v: bigint} objects', 3, () => (check += objs.slice().sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0)).length));
const objsN = Array.from(keys, (kk, i) => ({ k: Number(kk), v: i }));
time('JS: Array.prototype.sort on {k: number, v: number} objects', 3, () => (check += objsN.slice().sort((a, b) => a.k - b.k).length));
for (const b of managed) k.free(b);
console.log(`(checksum ${check})`);

// merge: the input cut into 8 runs (each sorted by the kernel), merged back into one sorted output
{
  const k2 = await loadKernels({ budgetBytes: 512 << 20 });
  const ms = batches().map((b) => k2.copyIn(b, schema));
  const per = Math.ceil(ms.length / 8);
  const runs = Array.from({ length: 8 }, (_, r) => k2.sort(schema, ms.slice(r * per, (r + 1) * per), ['k']));
  for (const b of ms) k2.free(b);
  time(`kernel: merger, 8 sorted runs, ${N} rows (copy-in+validate, merge, copy-out)`, 5, () => {
    const m = k2.merger(schema, ['k'], runs.length);
    runs.forEach((r, i) => {
      for (const b of r) m.push(i, b);
      m.end(i);
    });
    check += m.pull().length;
  });
}
