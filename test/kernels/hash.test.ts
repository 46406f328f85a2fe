// Tests hashBatch against the reference hash on random batches and keys, and against the key-hash
// spec in src/core/hash.ts (hashJsKey and friends), for both builds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hashF64, hashJsKey, hashNull } from '../../src/core/hash.ts';
import { F64Bits, encodeBatch, randomBatch, randomRows, schemaOf, type RefField, type RefValue } from '../reference/batch.ts';
import { BUILDS, kernelsFor, randomKeys } from '../reference/harness.ts';
import { refHashBatch } from '../reference/kernels.ts';
import { forSeeds } from '../reference/random.ts';

const RUNS = 150;

/** The spec's hash step of one decoded value of a field kind, via src/core/hash.ts. */
function specStep(kind: RefField['kind'], v: RefValue, h: number): number {
  if (v === null) return hashNull(h);
  if (kind === 'f64') {
    if (v instanceof F64Bits) return hashF64(NaN, h); // every payload is a NaN here
    return hashF64(v as number, h);
  }
  if (kind === 'i32' || kind === 'i64' || kind === 'timestamp') return hashJsKey(BigInt(v as number | bigint), h);
  if (kind === 'string') return hashJsKey(v as string, h);
  if (kind === 'bool') return hashJsKey(v as boolean, h);
  return hashJsKey(v as Uint8Array, h); // bytes, and any as its MessagePack bytes
}

for (const { name, debug } of BUILDS) {
  test(`[${name}] hashBatch == reference on random batches and keys`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('hash/random', RUNS, (rng) => {
      const { fields, bytes, schema: s } = randomBatch(rng);
      if (fields.length === 0) return;
      const keys = randomKeys(rng, fields.length);
      const b = k.copyIn(bytes, s);
      try {
        const got = k.hash(s, b, keys.map((x) => x.field));
        assert.equal(Array.from(got), refHashBatch(bytes, fields, keys));
      } finally {
        k.free(b);
      }
    });
  });

  test(`[${name}] hashBatch == src/core/hash.ts (hashJsKey) for single and composite keys`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('hash/spec', RUNS, (rng) => {
      const fields: RefField[] = Array.from({ length: rng.range(1, 5) }, () => ({
        kind: rng.pick(['i32', 'i64', 'f64', 'bool', 'string', 'bytes', 'timestamp', 'any'] as const),
        nullable: rng.bool(),
      }));
      const rows = randomRows(rng, fields, rng.range(0, 30));
      const s = schemaOf(fields);
      const bytes = encodeBatch(fields, rows);
      const b = k.copyIn(bytes, s);
      try {
        // every single-field key
        fields.forEach((f, i) => {
          const got = k.hash(s, b, [`f${i}`]);
          rows.forEach((r, j) => assert.is(got[j], specStep(f.kind, r[i]!, 42) >>> 0, `row ${j} field ${i} (${f.kind})`));
        });
        // the composite key of all fields, chained in key order (reversed order too)
        const order = fields.map((_, i) => i);
        if (rng.bool()) order.reverse();
        const got = k.hash(s, b, order);
        rows.forEach((r, j) => {
          let h = 42;
          for (const i of order) h = specStep(fields[i]!.kind, r[i]!, h);
          assert.is(got[j], h >>> 0, `composite row ${j}`);
        });
      } finally {
        k.free(b);
      }
    });
  });

  test(`[${name}] hash canonicalisation: NaNs equal, -0 == +0, JS keys match typed fields`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [
      { kind: 'f64', nullable: true },
      { kind: 'i64', nullable: false },
      { kind: 'string', nullable: false },
    ];
    const rows: RefValue[][] = [
      [NaN, 5n, ''],
      [new F64Bits(0xfff8000000000000n), -5n, 'é'],
      [new F64Bits(0x7ff0000000000001n), 2n ** 63n - 1n, '日本'],
      [0, -(2n ** 63n), 'user-42'],
      [-0, 0n, 'x'.repeat(33)],
      [null, 1n, '😀'],
    ];
    const s = schemaOf(fields);
    const b = k.copyIn(encodeBatch(fields, rows), s);
    const f = k.hash(s, b, [0]);
    assert.is(f[0], f[1]);
    assert.is(f[1], f[2]);
    assert.is(f[3], f[4]);
    assert.is.not(f[0], f[3]);
    assert.is(f[5], hashJsKey(null) >>> 0);
    const i = k.hash(s, b, ['f1']);
    assert.is(i[0], hashJsKey(5) >>> 0);
    assert.is(i[1], hashJsKey(-5) >>> 0);
    assert.is(i[2], hashJsKey(2n ** 63n - 1n) >>> 0);
    const st = k.hash(s, b, [2]);
    rows.forEach((r, j) => assert.is(st[j], hashJsKey(r[2]) >>> 0));
    const both = k.hash(s, b, [1, 2]);
    assert.is(both[3], hashJsKey([-(2n ** 63n), 'user-42']) >>> 0);
    assert.equal(Array.from(k.hash(s, b, [])), rows.map(() => 42), 'no key fields: the seed');
    k.free(b);
  });
}

test.run();
