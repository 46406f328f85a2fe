// Tests the sort kernel (sortIndex + gatherSorted, and the sorted row pointers) against the reference
// sort on random batches, keys and flags, on both sides of the radix threshold, with tiny output
// capacities; plus the edge values of every key type, long shared string prefixes, empty and single
// inputs and many batches, for both builds. The kernel is stable, so outputs are compared exactly;
// sortedViews (one output buffer, yielded as views) gives the same batches as sort.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { SchemaMismatchError } from '../../src/core/errors.ts';
import type { Kernels, ManagedBatch } from '../../bindings/index.ts';
import { F64Bits, KINDS, encodeBatch, randomFields, randomRows, schemaOf, type RefField, type RefValue } from '../reference/batch.ts';
import { BUILDS, CAPACITIES, checkOutputs, kernelsFor, randomKeys } from '../reference/harness.ts';
import { batchRows, refCompareRows, refSort, type RefKey } from '../reference/kernels.ts';
import { forSeeds, type Rng } from '../reference/random.ts';

const RUNS = 120;

/** Sorts `batches` with the kernel and checks the result (bytes, sizes, order) and the pointer order. */
function checkSort(k: Kernels, fields: RefField[], batches: Uint8Array[], keys: RefKey[], outputBytes: number, what: string): void {
  const s = schemaOf(fields);
  const managed: ManagedBatch[] = [];
  try {
    for (const b of batches) managed.push(k.copyIn(b, s));
    const before = k.memory.bytesInUse;
    const got = k.sort(s, managed, keys, { outputBytes });
    assert.is(k.memory.bytesInUse, before, `${what}: sort frees its buffers`);
    // the same batches gathered one at a time into one buffer, as views
    const views: Uint8Array[] = [];
    for (const v of k.sortedViews(s, managed, keys, { outputBytes })) views.push(v.slice());
    assert.equal(views, got, `${what}: sortedViews == sort`);
    assert.is(k.memory.bytesInUse, before, `${what}: sortedViews frees its buffers`);
    const want = refSort(batches, fields, keys);
    checkOutputs(got, fields, outputBytes, want, `${what} keys ${JSON.stringify(keys)} cap ${outputBytes}`);
    // the pointer order names the same rows (rows are compared by their bytes in managed memory)
    const ptrs = k.sortedRowPointers(s, managed, keys);
    assert.is(ptrs.length, want.length);
    const u8 = k.memory.u8;
    for (let i = 0; i < ptrs.length; i++) {
      const len = k.memory.u32[ptrs[i]! >>> 2]!;
      const row = u8.subarray(ptrs[i]!, ptrs[i]! + len);
      if (refCompareRows(row, want[i]!, fields, keys) !== 0 || len !== want[i]!.length) throw new Error(`${what}: pointer ${i} names a different row`);
    }
  } finally {
    for (const b of managed) k.free(b);
  }
}

/** Random rows cut into 1–8 batches (some empty), total often above the radix threshold (256). */
function randomInput(rng: Rng, fields: RefField[]): Uint8Array[] {
  const total = rng.pick([0, 1, 2, 5, 40, 200, 255, 256, 257, 600, 1500]);
  const rows = randomRows(rng, fields, total);
  const batches: Uint8Array[] = [];
  let i = 0;
  const nb = rng.range(1, 8);
  for (let b = 0; b < nb; b++) {
    const take = b === nb - 1 ? total - i : rng.int(total - i + 1);
    batches.push(encodeBatch(fields, rows.slice(i, i + take)));
    i += take;
  }
  return batches;
}

const F64_ORDERED: RefValue[] = [-Infinity, -Number.MAX_VALUE, -1, -Number.MIN_VALUE, -0, 0, Number.MIN_VALUE, 1, 2 ** 60, Infinity, NaN, new F64Bits(0xfff8000000000001n), new F64Bits(0x7ff0000000000001n)];

/** Edge values per kind (each list repeated to cross the radix threshold in the large case). */
const EDGES: Record<string, RefValue[]> = {
  i32: [-2147483648, -2147483647, -65536, -1, 0, 1, 255, 256, 2147483646, 2147483647],
  i64: [-(2n ** 63n), -(2n ** 63n) + 1n, -(2n ** 32n), -1n, 0n, 1n, 2n ** 32n, 2n ** 56n, 2n ** 56n + 1n, 2n ** 63n - 2n, 2n ** 63n - 1n],
  timestamp: [-(2n ** 63n), -86400000n, 0n, 1700000000000n, 1700000000001n, 2n ** 63n - 1n],
  f64: F64_ORDERED,
  bool: [false, true],
  string: ['', '\u0000', 'a', 'a\u0000', 'ab', 'abc', 'x'.repeat(11), 'x'.repeat(12), 'x'.repeat(12) + '\u0000', 'x'.repeat(13), 'x'.repeat(100) + 'a', 'x'.repeat(100) + 'b', 'x'.repeat(101), 'é', 'e\u0301', '日本語', '😀', '\uffff', '\u007f', '\u0080'],
  bytes: [new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(0, 0), Uint8Array.of(0xff), Uint8Array.of(0xff, 0), new Uint8Array(12).fill(0xff), new Uint8Array(13).fill(0xff), new Uint8Array(30).fill(7)],
  any: [Uint8Array.of(0xc0), Uint8Array.of(0x01), Uint8Array.of(0xa1, 0x61), Uint8Array.of(0x92, 0x01, 0x02), new Uint8Array(20).fill(0x90)],
};

for (const { name, debug } of BUILDS) {
  test(`[${name}] sort == reference (random schemas, keys, flags, batch splits, tiny outputs)`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('sort/random', RUNS, (rng) => {
      const fields = randomFields(rng);
      if (fields.length === 0) return;
      const keys = randomKeys(rng, fields.length);
      checkSort(k, fields, randomInput(rng, fields), keys, rng.pick(CAPACITIES), 'random');
    });
  });

  test(`[${name}] sort: fixed-width keys that the prefix covers, and ones it does not`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('sort/prefix', 60, (rng) => {
      // two or three numeric / bool keys: sometimes inside 12 bytes (covered), sometimes truncated
      const numeric = ['i32', 'i64', 'f64', 'bool', 'timestamp'] as const;
      const fields: RefField[] = Array.from({ length: rng.range(2, 4) }, () => ({ kind: rng.pick(numeric), nullable: rng.bool(0.4) }));
      const keys: RefKey[] = fields.map((_, i) => ({ field: i, desc: rng.bool(), nullsFirst: rng.bool() }));
      const rows = randomRows(rng, fields, rng.pick([30, 300, 1000]), { small: rng.bool(0.7) });
      checkSort(k, fields, [encodeBatch(fields, rows)], keys, 32768, 'prefix');
    });
  });

  test(`[${name}] sort: edge values of every key type, asc/desc, nulls first/last, below and above the radix threshold`, async () => {
    const k = await kernelsFor(debug);
    for (const kind of KINDS) {
      const values = EDGES[kind]!;
      for (const nullable of [false, true]) {
        const fields: RefField[] = [
          { kind, nullable },
          { kind: 'i32', nullable: false },
        ];
        const vals = nullable ? [...values, null] : values;
        for (const copies of [1, 3, 40]) {
          // reversed and interleaved input, with a tiebreak field counting down
          const rows: RefValue[][] = [];
          for (let c = 0; c < copies; c++) for (let i = vals.length - 1; i >= 0; i--) rows.push([vals[(i * 7 + c) % vals.length]!, rows.length % 5]);
          for (const desc of [false, true]) {
            for (const nullsFirst of [false, true]) {
              const batches = [encodeBatch(fields, rows.slice(0, 7)), encodeBatch(fields, rows.slice(7))];
              checkSort(k, fields, batches, [{ field: 0, desc, nullsFirst }], 4096, `${kind}${nullable ? '?' : ''} x${copies}`);
              checkSort(k, fields, batches, [{ field: 0, desc, nullsFirst }, { field: 1, desc: !desc }], 96, `${kind} + i32 x${copies}`);
            }
          }
        }
      }
    }
  });

  test(`[${name}] sort: the documented order of f64 and strings, by position`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [{ kind: 'f64', nullable: true }];
    const s = schemaOf(fields);
    const shuffled = [5, 0, 12, 3, 10, 8, 1, 11, 4, 7, 2, 9, 6].map((i) => [F64_ORDERED[i]!]);
    const rows = [...shuffled, [null]].concat(Array.from({ length: 300 }, (_, i) => [i % 2 ? -0 : 0]));
    const b = k.copyIn(encodeBatch(fields, rows), s);
    const got = k.sort(s, [b], [0]).flatMap(batchRows).map((r) => new DataView(r.buffer, r.byteOffset).getFloat64(16, true));
    k.free(b);
    // -inf, -max, -1, -min, then -0/+0 (equal: input order kept), min, 1, 2^60, inf, three NaNs, null
    assert.equal(got.slice(0, 4), [-Infinity, -Number.MAX_VALUE, -1, -Number.MIN_VALUE]);
    const zeros = got.slice(4, 306);
    assert.ok(zeros.every((z) => z === 0));
    assert.equal(zeros.map((z) => Object.is(z, -0)), [false, true, ...Array.from({ length: 300 }, (_, i) => i % 2 === 1)], 'stable across -0/+0');
    assert.equal(got.slice(306, 310), [Number.MIN_VALUE, 1, 2 ** 60, Infinity]);
    assert.ok(got.slice(310, 313).every(Number.isNaN));
    assert.is(got.length, 314);

    const sf: RefField[] = [{ kind: 'string', nullable: false }];
    const ss = schemaOf(sf);
    const strs = ['😀', '\uffff', 'é', 'x'.repeat(11) + 'y', 'x'.repeat(40) + 'b', 'x'.repeat(40) + 'a', 'x'.repeat(40), 'x'.repeat(12), 'ab', 'a', '\u0000', ''];
    const sb = k.copyIn(encodeBatch(sf, strs.map((x) => [x])), ss);
    const dec = new TextDecoder();
    const sorted = k.sort(ss, [sb], [0]).flatMap(batchRows).map((r) => {
      const dv = new DataView(r.buffer, r.byteOffset);
      return dec.decode(r.subarray(dv.getUint32(16, true), dv.getUint32(16, true) + dv.getUint32(20, true)));
    });
    k.free(sb);
    assert.equal(sorted, [...strs].reverse(), 'UTF-8 bytewise (code point) order');
  });

  test(`[${name}] sort: long strings sharing long prefixes, non-ASCII, many ties`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('sort/strings', 25, (rng) => {
      const fields: RefField[] = [
        { kind: 'string', nullable: true },
        { kind: 'i64', nullable: false },
        { kind: 'bytes', nullable: false },
      ];
      const stems = ['', 'x'.repeat(11), 'x'.repeat(12), 'prefix-'.repeat(9), 'é'.repeat(20), '日本'.repeat(8)];
      const tails = ['', 'a', 'b', 'é', '😀', '\u0000', 'ab'];
      const rows: RefValue[][] = Array.from({ length: rng.pick([10, 300, 900]) }, () => [
        rng.bool(0.05) ? null : rng.pick(stems) + rng.pick(tails) + (rng.bool(0.3) ? rng.pick(tails) : ''),
        BigInt(rng.range(-3, 3)),
        rng.bool(0.5) ? new Uint8Array(rng.range(10, 20)).fill(0x41) : Uint8Array.of(0x41, rng.int(256)),
      ]);
      const keys: RefKey[] = rng.pick([[{ field: 0 }], [{ field: 0, desc: true, nullsFirst: true }, { field: 1 }], [{ field: 2 }, { field: 0, desc: true }], [{ field: 1 }, { field: 0 }]]);
      const cut = rng.int(rows.length);
      checkSort(k, fields, [encodeBatch(fields, rows.slice(0, cut)), encodeBatch(fields, rows.slice(cut))], keys, rng.pick(CAPACITIES), 'strings');
    });
  });

  test(`[${name}] sort: large inputs past the MSD threshold (32768 entries): wide, narrow, skewed, tied and truncated keys`, async () => {
    const k = await kernelsFor(debug);
    // each case: key fields, then an i32 counting up (the input position) so stability shows in the bytes
    type Case = { fields: RefField[]; keys: RefKey[]; value: (rng: Rng) => RefValue[] };
    const cases: Record<string, Case> = {
      'i64 wide': { fields: [{ kind: 'i64', nullable: false }], keys: [{ field: 0 }], value: (r) => [r.i64()] },
      'i64 < 2^32 with ties': { fields: [{ kind: 'i64', nullable: false }], keys: [{ field: 0 }], value: (r) => [BigInt(r.bool(0.2) ? r.int(50) : r.u32())] },
      'i64 desc, < 2^16 (two varying bytes)': { fields: [{ kind: 'i64', nullable: false }], keys: [{ field: 0, desc: true }], value: (r) => [BigInt(r.int(65536))] },
      'i64 one varying byte': { fields: [{ kind: 'i64', nullable: false }], keys: [{ field: 0 }], value: (r) => [BigInt(r.int(256)) - 128n] },
      'i64 skewed (most in one bucket)': { fields: [{ kind: 'i64', nullable: false }], keys: [{ field: 0 }], value: (r) => [r.bool(0.9) ? 7n + BigInt(r.int(1000)) : r.i64()] },
      'timestamp desc': { fields: [{ kind: 'timestamp', nullable: false }], keys: [{ field: 0, desc: true }], value: (r) => [1700000000000n + BigInt(r.int(1e9))] },
      'i32? nulls first + i64 (truncated)': {
        fields: [
          { kind: 'i32', nullable: true },
          { kind: 'i64', nullable: false },
        ],
        keys: [{ field: 0, nullsFirst: true }, { field: 1, desc: true }],
        value: (r) => [r.bool(0.05) ? null : r.int(3000) - 1500, r.i64()],
      },
      'f64?': { fields: [{ kind: 'f64', nullable: true }], keys: [{ field: 0 }], value: (r) => [r.bool(0.02) ? null : r.bool(0.05) ? r.pick([NaN, -0, 0, Infinity, -Infinity]) : (r.u32() - 2 ** 31) / r.range(1, 1000)] },
      'string (not covered)': { fields: [{ kind: 'string', nullable: false }], keys: [{ field: 0 }], value: (r) => [r.pick(['', 'x'.repeat(12), 'prefix-'.repeat(3), 'é']) + r.u32().toString(36)] },
    };
    await forSeeds('sort/large', 1, (rng) => {
      for (const [what, c] of Object.entries(cases)) {
        const fields: RefField[] = [...c.fields, { kind: 'i32', nullable: false }];
        const total = rng.range(33000, 70000);
        const rows = Array.from({ length: total }, (_, i) => [...c.value(rng), i]);
        const batches: Uint8Array[] = [];
        for (let i = 0; i < total; ) {
          const take = Math.min(total - i, rng.range(1, 3000));
          batches.push(encodeBatch(fields, rows.slice(i, i + take)));
          i += take;
        }
        checkSort(k, fields, batches, c.keys, 32768, `large ${what}`);
      }
    });
  });

  test(`[${name}] sort: empty input, one row, many batches, schema mismatch`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [
      { kind: 'i64', nullable: false },
      { kind: 'string', nullable: true },
    ];
    const s = schemaOf(fields);
    const before = k.memory.bytesInUse;
    assert.equal(k.sort(s, [], [0]), []);
    assert.equal(k.sortedRowPointers(s, [], [0]).length, 0);
    checkSort(k, fields, [encodeBatch(fields, [])], [{ field: 0 }], 64, 'one empty batch');
    checkSort(k, fields, [encodeBatch(fields, []), encodeBatch(fields, [])], [{ field: 1, desc: true }], 64, 'two empty batches');
    checkSort(k, fields, [encodeBatch(fields, [[5n, 'x'.repeat(300)]])], [{ field: 1 }], 16, 'one oversized row');
    checkSort(k, fields, [encodeBatch(fields, []), encodeBatch(fields, [[5n, null]]), encodeBatch(fields, [])], [{ field: 1 }, { field: 0 }], 64, 'one row among empties');
    const many = Array.from({ length: 150 }, (_, i) => encodeBatch(fields, Array.from({ length: i % 4 }, (_, j) => [BigInt((i * 37 + j * 11) % 17), j % 2 ? null : `r${i % 9}`])));
    checkSort(k, fields, many, [{ field: 1, nullsFirst: true }, { field: 0, desc: true }], 256, '150 batches');
    checkSort(k, fields, many, [{ field: 0 }], 32768, '150 batches, covered key');
    checkSort(k, fields, many, [], 32768, 'no key fields (input order)');
    const other = schemaOf([{ kind: 'i32', nullable: false }]);
    const b = k.copyIn(encodeBatch(fields, [[1n, 'a']]), s);
    assert.throws(() => k.sort(other, [b], [0]), (e: unknown) => e instanceof SchemaMismatchError);
    k.free(b);
    assert.is(k.memory.bytesInUse, before);
  });

  test(`[${name}] sort: property — output is an ordered permutation of the input (fast-check)`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [
      { kind: 'i32', nullable: true },
      { kind: 'f64', nullable: false },
      { kind: 'string', nullable: false },
    ];
    const s = schemaOf(fields);
    const row = fc.tuple(
      fc.option(fc.integer({ min: -5, max: 5 }), { nil: null }),
      fc.oneof(fc.double(), fc.constantFrom(0, -0, NaN, Infinity)),
      fc.string({ unit: 'grapheme', maxLength: 20 }),
    );
    const key = fc.record({ field: fc.integer({ min: 0, max: 2 }), desc: fc.boolean(), nullsFirst: fc.boolean() });
    fc.assert(
      fc.property(fc.array(row, { maxLength: 400 }), fc.array(key, { minLength: 1, maxLength: 3 }), (rows, keys) => {
        const b = k.copyIn(encodeBatch(fields, rows as RefValue[][]), s);
        try {
          const out = k.sort(s, [b], keys).flatMap(batchRows);
          const input = batchRows(encodeBatch(fields, rows as RefValue[][]));
          if (out.length !== input.length) return false;
          for (let i = 1; i < out.length; i++) if (refCompareRows(out[i - 1]!, out[i]!, fields, keys) > 0) return false;
          const hex = (r: Uint8Array) => Array.from(r, (x) => x.toString(16).padStart(2, '0')).join('');
          return input.map(hex).sort().join() === out.map(hex).sort().join();
        } finally {
          k.free(b);
        }
      }),
      { numRuns: 60 },
    );
  });
}

test.run();
