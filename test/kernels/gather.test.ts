// Tests gatherBatch against the reference on random batches and selection vectors (repeats, reversed,
// empty), with tiny output capacities for the FULL/resume path, for both builds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeBatch, randomBatch, schemaOf, type RefField } from '../reference/batch.ts';
import { BUILDS, CAPACITIES, checkOutputs, kernelsFor } from '../reference/harness.ts';
import { refGather } from '../reference/kernels.ts';
import { forSeeds } from '../reference/random.ts';

const RUNS = 150;

for (const { name, debug } of BUILDS) {
  test(`[${name}] gatherBatch == reference (random selections, tiny outputs)`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('gather/random', RUNS, (rng) => {
      const { fields, bytes, schema: s } = randomBatch(rng);
      const n = new DataView(bytes.buffer).getUint32(8, true);
      let sel: number[];
      switch (n === 0 ? 0 : rng.int(4)) {
        case 0:
          sel = [];
          break;
        case 1:
          sel = Array.from({ length: n }, (_, i) => n - 1 - i);
          break;
        case 2:
          sel = Array.from({ length: n }, (_, i) => i).filter(() => rng.bool());
          break;
        default:
          sel = Array.from({ length: rng.int(2 * n + 1) }, () => rng.int(n));
      }
      const selection = rng.bool() ? Uint32Array.from(sel) : sel;
      const outputBytes = rng.pick(CAPACITIES);
      const b = k.copyIn(bytes, s);
      const before = k.memory.bytesInUse;
      try {
        const got = k.gather(s, b, selection, { outputBytes });
        assert.is(k.memory.bytesInUse, before, 'gather frees its buffers');
        checkOutputs(got, fields, outputBytes, refGather(bytes, sel), `gather of ${sel.length} cap ${outputBytes}`);
      } finally {
        k.free(b);
      }
    });
  });

  test(`[${name}] gather: out-of-range selection is a RangeError`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [{ kind: 'i32', nullable: false }];
    const s = schemaOf(fields);
    const b = k.copyIn(encodeBatch(fields, [[1], [2]]), s);
    assert.throws(() => k.gather(s, b, [0, 2]), RangeError);
    assert.throws(() => k.gather(s, b, [-1]), RangeError);
    assert.throws(() => k.gather(s, b, [0.5]), RangeError);
    assert.is(k.gather(s, b, [1, 1, 0]).length, 1);
    // the raw kernel treats it as a broken invariant: a trap, after which the instance still works
    const m = k.memory;
    const scratch = m.alloc(4096);
    k.raw.rowPointers(b.ptr, scratch);
    m.u32[(scratch >>> 2) + 8] = 2;
    k.raw.initBatch(scratch + 1024, s.id);
    assert.throws(() => k.raw.gatherBatch(b.ptr, scratch, scratch + 32, 1, 0, scratch + 1024, 1024), (e: unknown) => e instanceof WebAssembly.RuntimeError);
    m.free(scratch);
    assert.is(k.gather(s, b, [1]).length, 1);
    k.free(b);
  });
}

test.run();
