// Tests validateBatch against its reference on random batches and on corrupted/truncated bytes
// (statuses must agree and the kernel must never trap), for both builds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { schemaDescriptor } from '../../bindings/index.ts';
import { CorruptBatchError, SchemaMismatchError } from '../../src/core/errors.ts';
import { schema, t } from '../../src/core/schema.ts';
import { encodeBatch, fingerprint, randomBatch, schemaOf, type RefField } from '../reference/batch.ts';
import { BUILDS, kernelsFor } from '../reference/harness.ts';
import { CORRUPT, DONE, SCHEMA_MISMATCH, refValidate } from '../reference/kernels.ts';
import { forSeeds, type Rng } from '../reference/random.ts';

const RUNS = 150;

/** One random corruption of valid batch bytes; returns the bytes and the length to validate. */
function corrupt(rng: Rng, bytes: Uint8Array): { bytes: Uint8Array; len: number; how: string } {
  const b = bytes.slice();
  const dv = new DataView(b.buffer);
  switch (rng.int(7)) {
    case 0: {
      const n = rng.range(1, 4);
      for (let i = 0; i < n; i++) b[rng.int(b.length)]! ^= 1 << rng.int(8);
      return { bytes: b, len: b.length, how: `flip ${n} bits` };
    }
    case 1: {
      const i = rng.int(b.length);
      b[i] = rng.u32() & 0xff;
      return { bytes: b, len: b.length, how: `set byte ${i}` };
    }
    case 2: {
      const len = rng.int(b.length);
      return { bytes: b, len, how: `truncate to ${len}` };
    }
    case 3:
      dv.setUint32(4, rng.pick([0, 8, 15, b.length - 8, b.length + 8, b.length + 1, 0xfffffff8]) >>> 0, true);
      return { bytes: b, len: b.length, how: 'byteLength' };
    case 4:
      dv.setUint32(8, (dv.getUint32(8, true) + rng.pick([1, -1, 1000, 0x7fffffff])) >>> 0, true);
      return { bytes: b, len: b.length, how: 'rowCount' };
    case 5: {
      // a row length word somewhere: random aligned word set to a random small or huge value
      const at = 16 + 8 * rng.int(Math.max(1, (b.length - 16) / 8));
      if (at + 4 <= b.length) dv.setUint32(at, rng.pick([0, 8, 16, 24, 7, 0xfffffff8, rng.u32()]) >>> 0, true);
      return { bytes: b, len: b.length, how: `word at ${at}` };
    }
    default: {
      const at = 8 * rng.int(b.length / 8);
      dv.setUint32(at + 4 * rng.int(2), rng.u32(), true);
      return { bytes: b, len: b.length, how: `random word at ${at}` };
    }
  }
}

for (const { name, debug } of BUILDS) {
  test(`[${name}] valid random batches validate; fingerprints agree`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('validate/valid', RUNS, (rng) => {
      const { fields, bytes, schema: s } = randomBatch(rng);
      assert.is(s.id, fingerprint(fields), 'Schema.id == reference fingerprint');
      const b = k.copyIn(bytes);
      try {
        assert.is(k.validateStatus(s, b.ptr, bytes.length), DONE);
        assert.is(refValidate(bytes, bytes.length, fields), DONE);
        k.validate(s, b);
        const mem = k.memory;
        const d = mem.alloc(4 * (1 + fields.length));
        mem.u32.set(schemaDescriptor(s), d >>> 2);
        assert.is(k.raw.schemaId(d) >>> 0, s.id, 'kernel fingerprint == Schema.id');
        mem.free(d);
      } finally {
        k.free(b);
      }
    });
  });

  test(`[${name}] corrupted and truncated batches: kernel status == reference, never a trap`, async () => {
    const k = await kernelsFor(debug);
    let rejected = 0;
    await forSeeds('validate/corrupt', RUNS * 4, (rng) => {
      const { fields, bytes, schema: s } = randomBatch(rng, { maxRows: 12 });
      const c = corrupt(rng, bytes);
      const b = k.copyIn(c.bytes);
      try {
        const got = k.validateStatus(s, b.ptr, c.len);
        const want = refValidate(c.bytes, c.len, fields);
        assert.is(got, want, `status after ${c.how}`);
        if (got !== DONE) rejected++;
      } finally {
        k.free(b);
      }
    });
    assert.ok(rejected > RUNS, `most corruptions are caught (${rejected})`);
  });

  test(`[${name}] targeted corruptions are rejected with typed errors`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [
      { kind: 'i32', nullable: false },
      { kind: 'bool', nullable: false },
      { kind: 'string', nullable: true },
      { kind: 'f64', nullable: true },
    ];
    const s = schemaOf(fields);
    const good = encodeBatch(fields, [
      [1, true, 'héllo', 1.5],
      [-7, false, null, null],
    ]);
    const row0 = 16;
    const w = 8;
    const row1 = row0 + new DataView(good.buffer).getUint32(row0, true);
    const slot = (i: number, row = row0) => row + 8 + w + 8 * i;
    const cases: [string, (dv: DataView, b: Uint8Array) => number | void][] = [
      ['bad magic', (dv) => dv.setUint32(0, 0x31424c54, true)],
      ['byteLength past len', (dv, b) => dv.setUint32(4, b.length + 8, true)],
      ['byteLength unaligned', (dv, b) => dv.setUint32(4, b.length - 4, true)],
      ['byteLength < header', (dv) => dv.setUint32(4, 8, true)],
      ['rowCount + 1', (dv) => dv.setUint32(8, 3, true)],
      ['rowCount - 1', (dv) => dv.setUint32(8, 1, true)],
      ['rowLength 0', (dv) => dv.setUint32(row0, 0, true)],
      ['rowLength unaligned', (dv) => dv.setUint32(row0, 44, true)],
      ['rowLength huge', (dv) => dv.setUint32(row0, 0xfffffff8, true)],
      ['i32 not sign-extended', (dv) => dv.setUint32(slot(0) + 4, 1, true)],
      ['bool = 2', (dv) => dv.setUint32(slot(1), 2, true)],
      ['null in a non-nullable field', (_, b) => void (b[row0 + 8]! |= 1)],
      ['bitmap bit past the fields', (_, b) => void (b[row0 + 8]! |= 0x10)],
      ['null with a nonzero slot', (dv) => dv.setUint32(slot(3, row1) + 4, 1, true)],
      ['string offset inside the fixed part', (dv) => dv.setUint32(slot(2), 8, true)],
      ['string past the row', (dv) => dv.setUint32(slot(2) + 4, 1000, true)],
      ['truncated', () => good.length - 8],
      ['shorter than a header', () => 12],
    ];
    for (const [what, mutate] of cases) {
      const b = good.slice();
      const len = mutate(new DataView(b.buffer), b) ?? b.length;
      assert.is(refValidate(b, len, fields), CORRUPT, `reference rejects: ${what}`);
      const m = k.copyIn(b);
      try {
        assert.is(k.validateStatus(s, m.ptr, len), CORRUPT, what);
        assert.throws(() => k.validate(s, { ptr: m.ptr, byteLength: len }), (e: unknown) => e instanceof CorruptBatchError, what);
      } finally {
        k.free(m);
      }
    }
    // a row-level error names the row
    const bad = good.slice();
    new DataView(bad.buffer).setUint32(slot(1, row1), 2, true); // row 1's bool
    try {
      k.copyIn(bad, s);
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, CorruptBatchError);
      assert.is((e as CorruptBatchError).context.recordIndex, 1);
    }
    const ok = k.copyIn(good, s);
    assert.is(k.validateStatus(s, ok.ptr, good.length), DONE);
    k.free(ok);
  });

  test(`[${name}] a batch of another schema is a SchemaMismatchError`, async () => {
    const k = await kernelsFor(debug);
    const a = schema({ id: t.i64(), name: t.string() });
    const b = schema({ id: t.i64(), name: t.string().nullable() });
    const bytes = encodeBatch([{ kind: 'i64', nullable: false }, { kind: 'string', nullable: false }], [[1n, 'x']]);
    const before = k.memory.bytesInUse;
    assert.throws(() => k.copyIn(bytes, b), (e: unknown) => e instanceof SchemaMismatchError);
    assert.is(k.memory.bytesInUse, before, 'copyIn frees the rejected copy');
    const m = k.copyIn(bytes, a);
    assert.is(k.validateStatus(b, m.ptr, bytes.length), SCHEMA_MISMATCH);
    k.free(m);
  });
}

test.run();
