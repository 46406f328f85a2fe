// Tests projectBatch against the reference on random batches and field lists (reordered, subsets,
// empty), with tiny output capacities for the FULL/resume path, for both builds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobDefinitionError } from '../../src/core/errors.ts';
import { encodeBatch, fieldsOf, randomBatch, schemaOf, type RefField } from '../reference/batch.ts';
import { BUILDS, CAPACITIES, checkOutputs, kernelsFor } from '../reference/harness.ts';
import { batchRows, refProject, refProjectRow } from '../reference/kernels.ts';
import { forSeeds } from '../reference/random.ts';

const RUNS = 150;

for (const { name, debug } of BUILDS) {
  test(`[${name}] projectBatch == reference (random field lists, tiny outputs)`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('project/random', RUNS, (rng) => {
      const { fields, bytes, schema: s } = randomBatch(rng);
      // a random subset in random order (Fisher–Yates prefix), sometimes empty
      const all = fields.map((_, i) => i);
      for (let i = all.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [all[i], all[j]] = [all[j]!, all[i]!];
      }
      const idx = all.slice(0, rng.bool(0.1) ? 0 : rng.range(0, all.length));
      const outputBytes = rng.pick(CAPACITIES);
      const useNames = rng.bool();
      const b = k.copyIn(bytes, s);
      const before = k.memory.bytesInUse;
      try {
        const got = k.project(s, b, useNames ? idx.map((i) => s.names[i]!) : idx, { outputBytes });
        assert.is(k.memory.bytesInUse, before, 'project frees its buffers');
        const outFields = idx.map((i) => fields[i]!);
        assert.equal(fieldsOf(got.schema), outFields);
        assert.equal(got.schema.names, idx.map((i) => s.names[i]!));
        checkOutputs(got.batches, outFields, outputBytes, refProject(bytes, fields, idx), `project ${JSON.stringify(idx)} cap ${outputBytes}`);
      } finally {
        k.free(b);
      }
    });
  });

  test(`[${name}] project: empty batch, repeated fields through the raw kernel, bad fields`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [
      { kind: 'string', nullable: true },
      { kind: 'f64', nullable: false },
      { kind: 'bytes', nullable: false },
    ];
    const s = schemaOf(fields);
    const empty = k.copyIn(encodeBatch(fields, []), s);
    assert.equal(k.project(s, empty, [2, 0]).batches, []);
    k.free(empty);
    const bytes = encodeBatch(fields, [
      ['日本', -0, Uint8Array.of(1, 2, 3)],
      [null, NaN, new Uint8Array(0)],
    ]);
    const b = k.copyIn(bytes, s);
    assert.throws(() => k.project(s, b, [0, 0]), (e: unknown) => e instanceof JobDefinitionError);
    assert.throws(() => k.project(s, b, [3]), (e: unknown) => e instanceof JobDefinitionError);
    // the kernel itself allows repeats: [2, 0, 2]
    const m = k.memory;
    const fd = m.alloc(16);
    const out = m.alloc(1024);
    m.u32.set([3, 2, 0, 2], fd >>> 2);
    const idx = [2, 0, 2];
    const outFields = idx.map((i) => fields[i]!);
    k.raw.initBatch(out, schemaOf(outFields).id);
    const sd = m.alloc(16);
    m.u32.set([3, 5 | 0x100, 3, 6], sd >>> 2);
    assert.is(k.raw.projectBatch(b.ptr, sd, fd, out, 1024, 0, 16), 0);
    const len = m.u32[(out >>> 2) + 1]!;
    checkOutputs([m.u8.slice(out, out + len)], outFields, 1024, batchRows(bytes).map((r) => refProjectRow(r, fields, idx)), 'repeats');
    for (const p of [fd, out, sd]) m.free(p);
    k.free(b);
  });
}

test.run();
