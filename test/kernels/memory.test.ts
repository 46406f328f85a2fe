// Tests the segment pool and ManagedMemory: alignment, no overlap, contents kept across allocations
// and growth, segmentsInUse bookkeeping, coalescing of freed runs (no growth when a free run fits),
// the byte budget, and views rebuilt after memory grows — against both builds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadKernels } from '../../bindings/index.ts';
import { MemoryBudgetError } from '../../src/core/errors.ts';
import { BUILDS } from '../reference/harness.ts';
import { forSeeds } from '../reference/random.ts';

const SEG = 32768;

for (const { name, debug } of BUILDS) {
  test(`[${name}] random alloc/free: aligned, disjoint, contents kept, runs reused`, async () => {
    await forSeeds('memory/random', 12, async (rng) => {
      const k = await loadKernels({ debug, budgetBytes: 64 * SEG });
      const m = k.memory;
      const baseInUse = m.segmentsInUse; // the bindings' scratch segment
      const live = new Map<number, { n: number; tag: number }>();
      for (let step = 0; step < 300; step++) {
        if (live.size > 0 && rng.bool(0.45)) {
          const ptrs = [...live.keys()];
          const p = rng.pick(ptrs);
          const { n, tag } = live.get(p)!;
          // contents survived every other allocation and growth
          const u8 = m.u8;
          assert.is(u8[p], tag);
          assert.is(u8[p + n * SEG - 1], tag);
          m.free(p);
          live.delete(p);
        } else {
          const n = rng.pick([1, 1, 1, 2, 3, 5, 8]);
          const inUse = [...live.values()].reduce((s, a) => s + a.n, 0);
          if ((inUse + n) * SEG > m.budgetBytes) {
            assert.throws(() => m.alloc(n * SEG - rng.int(SEG)), (e: unknown) => e instanceof MemoryBudgetError);
            continue;
          }
          // would a free run of n segments fit without growing? (model of the pool from the live set)
          const backed = m.segmentsBacked;
          const base = m.u8.length - backed * SEG;
          const used = new Array<boolean>(backed).fill(false);
          for (const [p, a] of live) for (let i = 0; i < a.n; i++) used[(p - base) / SEG + i] = true;
          for (let i = 0; i < baseInUse; i++) used[i] = true; // scratch: the first segment(s)
          let run = 0;
          let fits = false;
          for (const u of used) if ((run = u ? 0 : run + 1) >= n) fits = true;
          const p = m.alloc(n * SEG - rng.int(SEG));
          if (fits) assert.is(m.segmentsBacked, backed, `a free run of ${n} existed: no growth`);
          assert.is(p % SEG, 0, 'segment aligned');
          for (const [q, a] of live) assert.ok(p + n * SEG <= q || q + a.n * SEG <= p, 'disjoint');
          const tag = rng.range(1, 255);
          m.u8.fill(tag, p, p + n * SEG);
          live.set(p, { n, tag });
        }
        const inUse = [...live.values()].reduce((s, a) => s + a.n, 0);
        assert.is(m.segmentsInUse, baseInUse + inUse, 'segmentsInUse');
        assert.is(m.bytesInUse, inUse * SEG, 'bytesInUse');
      }
      for (const p of [...live.keys()]) m.free(p);
      assert.is(m.segmentsInUse, baseInUse);
    });
  });

  test(`[${name}] budget errors name the budget; views follow memory growth`, async () => {
    const k = await loadKernels({ debug, budgetBytes: 100_000 });
    const m = k.memory;
    const a = m.alloc(3 * SEG);
    try {
      m.alloc(1);
      assert.unreachable('over budget');
    } catch (e) {
      assert.instance(e, MemoryBudgetError);
      assert.match((e as Error).message, '100000');
    }
    m.free(a);
    assert.throws(() => m.free(a), RangeError, 'double free');
    assert.throws(() => m.alloc(-1), RangeError);
    const big = await loadKernels({ debug, budgetBytes: 1 << 30 });
    const u8 = big.memory.u8;
    const p = big.memory.alloc(SEG);
    big.memory.u8[p] = 7;
    const q = big.memory.alloc(64 * SEG); // grows linear memory
    assert.is.not(big.memory.u8, u8, 'views rebuilt after growth');
    assert.is(big.memory.u8, big.memory.u8, 'and not rebuilt without it');
    assert.is(big.memory.u8[p], 7);
    big.memory.u8[q + 64 * SEG - 1] = 9;
    assert.is(big.memory.dv.getUint8(q + 64 * SEG - 1), 9);
    big.memory.free(p);
    big.memory.free(q);
  });

  test(`[${name}] copyIn / copyOut round trip`, async () => {
    const k = await loadKernels({ debug, budgetBytes: 1 << 20 });
    const bytes = new Uint8Array(40);
    new DataView(bytes.buffer).setUint32(4, 40, true);
    bytes[39] = 0xab;
    const b = k.copyIn(bytes);
    assert.equal(k.copyOut(b), bytes);
    k.free(b);
    assert.is(k.memory.bytesInUse, 0);
  });
}

test.run();
