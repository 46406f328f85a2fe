// Tests RowDecoder (src/operators/batch/row-decoder.ts), the decoder of kernel-made result batches, on
// every runtime: seeded differential test against BatchReader (the validating reader) on random
// batches of every field type — whole rows, and rows split into two parts of random fields with a
// presence rule (null when all presence fields are null) — including an i64 beyond the safe range
// (the same FieldValueError), a batch not 8-byte aligned, and a batch with a bad header (refused).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BatchReader } from '../../src/core/batch-reader.ts';
import { CorruptBatchError, FieldValueError, SchemaMismatchError } from '../../src/core/errors.ts';
import { RowDecoder } from '../../src/operators/batch/row-decoder.ts';
import { randomBatch } from '../reference/batch.ts';
import { forSeeds, Rng } from '../reference/random.ts';

function outcome(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    if (e instanceof FieldValueError) return `FieldValueError ${e.field} ${e.reason}`;
    throw e;
  }
}

test('RowDecoder == BatchReader on random batches (whole rows, two parts with presence)', async () => {
  let compared = 0;
  await forSeeds('row-decoder/random', 200, (rng) => {
    const { schema, bytes } = randomBatch(rng, { maxRows: 80 });
    let reader: BatchReader;
    try {
      reader = new BatchReader(schema, bytes);
    } catch (e) {
      if (e instanceof CorruptBatchError) return; // e.g. a non-zero reserved word: not a kernel-made batch
      throw e;
    }
    const n = schema.names.length;
    const all = schema.names.map((_, i) => i);
    const whole = new RowDecoder(schema, [{ fields: all, names: schema.names }]);
    const want = outcome(() => reader.readAll());
    const got = outcome(() => {
      const rows: unknown[] = [];
      whole.decode(bytes, (a) => rows.push(a));
      return rows;
    });
    assert.equal(got, want, 'whole rows');
    if (typeof want === 'string') return; // an i64 beyond the safe range: the parts may not include it
    // two parts: random subsets (renamed), presence by random fields
    const pick = () => all.filter(() => rng.bool(0.5));
    const f0 = pick();
    const f1 = pick();
    const pres = pick();
    const two = new RowDecoder(schema, [
      { fields: f0, names: f0.map((f) => `a${f}`) },
      { fields: f1, names: f1.map((f) => `b${f}`), presence: pres },
    ]);
    const want2 = outcome(() =>
      reader.readAll().map((r, i) => {
        const vals = schema.names.map((name) => (r as Record<string, unknown>)[name]);
        const a = Object.fromEntries(f0.map((f) => [`a${f}`, vals[f]]));
        // by the null bits (an `any` field may hold a MessagePack nil: null, but not a NULL field)
        const present = pres.length === 0 || pres.some((f) => !reader.isNull(i, f));
        return [a, present ? Object.fromEntries(f1.map((f) => [`b${f}`, vals[f]])) : null];
      }),
    );
    const got2 = outcome(() => {
      const rows: unknown[] = [];
      two.decode(bytes, (a, b) => rows.push([a, b]));
      return rows;
    });
    assert.equal(got2, want2, `two parts of ${n} fields`);
    // not 8-byte aligned: copied, same rows
    const shifted = new Uint8Array(bytes.length + 4);
    shifted.set(bytes, 4);
    const got3 = outcome(() => {
      const rows: unknown[] = [];
      whole.decode(shifted.subarray(4), (a) => rows.push(a));
      return rows;
    });
    assert.equal(got3, want, 'unaligned');
    compared++;
  });
  assert.ok(compared > 100, `${compared} batches compared`);
});

test('RowDecoder refuses a batch with a bad header (the validating reader error)', () => {
  let seed = 1;
  let rngBatch = randomBatch(new Rng(seed));
  while (rngBatch.rows.length === 0) rngBatch = randomBatch(new Rng(++seed));
  const { schema, bytes } = rngBatch;
  const d = new RowDecoder(schema, [{ fields: schema.names.map((_, i) => i), names: schema.names }]);
  const bad = bytes.slice();
  bad[0] = bad[0]! ^ 0xff;
  assert.throws(() => d.decode(bad, () => {}), (e: unknown) => e instanceof CorruptBatchError);
  const other = bytes.slice();
  other[12] = other[12]! ^ 0xff; // schema id
  assert.throws(() => d.decode(other, () => {}), (e: unknown) => e instanceof SchemaMismatchError);
});

test.run();
