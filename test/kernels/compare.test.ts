// Tests compareRowPairs against the reference key order on random batches, keys and flags, plus the
// order's fixed points (NaN greatest, -0 = +0, UTF-8 bytewise = code-point order), for both builds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { F64Bits, encodeBatch, randomBatch, schemaOf, type RefField, type RefValue } from '../reference/batch.ts';
import { BUILDS, kernelsFor, randomKeys } from '../reference/harness.ts';
import { batchRows, refCompareRows } from '../reference/kernels.ts';
import { forSeeds } from '../reference/random.ts';

const RUNS = 150;

for (const { name, debug } of BUILDS) {
  test(`[${name}] compareRowPairs == reference (random keys, flags and pairs)`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('compare/random', RUNS, (rng) => {
      const { fields, bytes, schema: s } = randomBatch(rng);
      const rows = batchRows(bytes);
      if (fields.length === 0 || rows.length === 0) return;
      const keys = randomKeys(rng, fields.length);
      const b = k.copyIn(bytes, s);
      try {
        const ptrs = k.rowPointers(b);
        const nPairs = rng.range(1, 3 * rows.length);
        const ia: number[] = [];
        const ib: number[] = [];
        const pairs = new Uint32Array(2 * nPairs);
        for (let i = 0; i < nPairs; i++) {
          ia.push(rng.int(rows.length));
          ib.push(rng.bool(0.1) ? ia[i]! : rng.int(rows.length));
          pairs[2 * i] = ptrs[ia[i]!]!;
          pairs[2 * i + 1] = ptrs[ib[i]!]!;
        }
        const got = k.compareRowPairs(s, pairs, keys);
        for (let i = 0; i < nPairs; i++) {
          const want = refCompareRows(rows[ia[i]!]!, rows[ib[i]!]!, fields, keys);
          assert.is(got[i], want, `pair ${i} (rows ${ia[i]}, ${ib[i]}) keys ${JSON.stringify(keys)}`);
        }
      } finally {
        k.free(b);
      }
    });
  });

  test(`[${name}] compare: the documented order of every kind`, async () => {
    const k = await kernelsFor(debug);
    const orderOf = (field: RefField, ascending: RefValue[], keyFlags: { desc?: boolean; nullsFirst?: boolean } = {}) => {
      const s = schemaOf([field]);
      const b = k.copyIn(encodeBatch([field], ascending.map((v) => [v])), s);
      const p = k.rowPointers(b);
      const pairs: number[] = [];
      for (let i = 0; i < p.length; i++) for (let j = 0; j < p.length; j++) pairs.push(p[i]!, p[j]!);
      const c = k.compareRowPairs(s, Uint32Array.from(pairs), [{ field: 0, ...keyFlags }]);
      k.free(b);
      return (i: number, j: number) => c[i * p.length + j]!;
    };
    // f64: -inf < -max < -1 < -0 = +0 < min < 1 < +inf < NaN = NaN(payload)
    const f = orderOf({ kind: 'f64', nullable: true }, [-Infinity, -Number.MAX_VALUE, -1, -0, 0, Number.MIN_VALUE, 1, Infinity, NaN, new F64Bits(0xfff8000000000001n), null]);
    assert.is(f(3, 4), 0, '-0 = +0');
    assert.is(f(8, 9), 0, 'NaNs equal');
    for (let i = 0; i < 10; i++) for (let j = 0; j < 10; j++) {
      const same = i === j || (i === 3 && j === 4) || (i === 4 && j === 3) || (i >= 8 && j >= 8);
      assert.is(f(i, j), same ? 0 : Math.sign(i - j), `f64 ${i} vs ${j}`);
    }
    for (let i = 0; i < 10; i++) assert.is(f(10, i), 1, 'null last');
    // nulls first, descending: null < NaN < +inf < ... (desc reverses values, not nulls)
    const fd = orderOf({ kind: 'f64', nullable: true }, [null, NaN, 1, -1], { desc: true, nullsFirst: true });
    assert.equal([fd(0, 1), fd(1, 2), fd(2, 3), fd(3, 0)], [-1, -1, -1, 1]);
    // strings: UTF-8 bytewise (code-point order; JS '<' would put U+1F600 before U+FFFF)
    const strs = ['', '\u0000', 'a', 'ab', 'b', 'x'.repeat(16), 'x'.repeat(16) + '\u0000', 'x'.repeat(17), 'é', '\uffff', '😀'];
    const sc = orderOf({ kind: 'string', nullable: false }, strs);
    for (let i = 0; i < strs.length; i++) for (let j = 0; j < strs.length; j++) assert.is(sc(i, j), Math.sign(i - j), `${JSON.stringify(strs[i])} vs ${JSON.stringify(strs[j])}`);
    const ints = orderOf({ kind: 'i64', nullable: false }, [-(2n ** 63n), -1n, 0n, 1n, 2n ** 63n - 1n]);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) assert.is(ints(i, j), Math.sign(i - j));
    const bools = orderOf({ kind: 'bool', nullable: true }, [false, true, null], { desc: true });
    assert.equal([bools(0, 1), bools(1, 0), bools(2, 0), bools(0, 2)], [1, -1, 1, -1]);
  });
}

test.run();
