// Tests the hash join kernels (joinBuild / joinProbe / joinScan behind bindings/join.ts hashJoin, and
// joinPartition) against the nested-loop reference (test/reference/join.ts) on random inputs: every
// join type, both build sides, every key type, composite keys, NULL keys, duplicates on both sides,
// empty inputs, tiny output capacities (resume mid-match-list), for the release and debug builds.
// Join output order is not specified: results are compared as multisets of row bytes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hashJoin, JOIN_TYPES, JoinTable, JoinOutput, partitionForJoin, planJoin, schemaDescriptor, keyDescriptor, type JoinType } from '../../bindings/index.ts';
import { JobDefinitionError } from '../../src/core/errors.ts';
import { encodeBatch, encodeBatches, fieldsOf, KINDS, randomRows, randomValue, schemaOf, type RefField, type RefValue } from '../reference/batch.ts';
import { BUILDS, CAPACITIES, hex, kernelsFor } from '../reference/harness.ts';
import { batchRows, DONE, refValidate } from '../reference/kernels.ts';
import { refJoin, rowMultiset } from '../reference/join.ts';
import { forSeeds, type Rng } from '../reference/random.ts';
import type { FieldKind } from '../../src/core/schema.ts';

const RUNS = 150;

/** A random side: some fields, with key fields of the given kinds at random positions. */
function randomSide(rng: Rng, keyKinds: FieldKind[]): { fields: RefField[]; keys: number[] } {
  const extra = rng.bool(0.05) ? rng.range(60, 80) : rng.range(0, 4);
  const fields: RefField[] = Array.from({ length: extra }, () => ({ kind: rng.pick(KINDS), nullable: rng.bool(0.5) }));
  const keys: number[] = [];
  for (const kind of keyKinds) {
    const at = rng.int(fields.length + 1);
    fields.splice(at, 0, { kind, nullable: rng.bool(0.6) });
    for (let i = 0; i < keys.length; i++) if (keys[i]! >= at) keys[i]!++;
    keys.push(at);
  }
  return { fields, keys };
}

/** Rows whose key fields draw from a few values (so they match and repeat). */
function sideBatches(rng: Rng, side: { fields: RefField[]; keys: number[] }, nRows: number): Uint8Array[] {
  const rows = randomRows(rng, side.fields, nRows, { small: rng.bool(0.3) });
  const pNull = rng.pick([0, 0.1, 0.3]);
  for (const r of rows) {
    for (const k of side.keys) {
      const f = side.fields[k]!;
      r[k] = f.nullable && rng.bool(pNull) ? null : randomValue(rng, f.kind, true);
    }
  }
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < rows.length) {
    const take = rng.range(1, Math.max(1, rng.pick([1, 7, 40, 200])));
    out.push(encodeBatch(side.fields, rows.slice(i, i + take)));
    i += take;
  }
  if (rng.bool(0.1)) out.push(encodeBatch(side.fields, []));
  return out;
}

function checkBatches(batches: Uint8Array[], fields: RefField[], cap: number, what: string): Uint8Array[] {
  const rows: Uint8Array[] = [];
  batches.forEach((b, i) => {
    const st = refValidate(b, b.length, fields);
    if (st !== DONE) throw new Error(`${what}: output batch ${i} fails validation (${st})`);
    const n = new DataView(b.buffer, b.byteOffset).getUint32(8, true);
    if (n === 0) throw new Error(`${what}: empty output batch`);
    if (b.length > cap && n !== 1) throw new Error(`${what}: output batch of ${b.length} bytes > ${cap} with ${n} rows`);
    rows.push(...batchRows(b));
  });
  return rows;
}

for (const { name, debug } of BUILDS) {
  test(`[${name}] hash join == nested-loop reference (all types, both build sides, all key types, tiny outputs)`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('join/random', RUNS, (rng) => {
      const nk = rng.pick([1, 1, 1, 2, 3]);
      const keyKinds = Array.from({ length: nk }, () => rng.pick(KINDS));
      const L = randomSide(rng, keyKinds);
      const R = randomSide(rng, keyKinds);
      const type = rng.pick(JOIN_TYPES);
      const buildSide = rng.bool() ? 'left' : 'right';
      const lb = sideBatches(rng, L, rng.pick([0, 1, 5, 30, 120]));
      const rb = sideBatches(rng, R, rng.pick([0, 1, 5, 30, 120]));
      const cap = rng.pick(CAPACITIES);
      const before = k.memory.bytesInUse;
      const spec = { type, left: schemaOf(L.fields), right: schemaOf(R.fields), leftKeys: L.keys, rightKeys: R.keys, buildSide } as const;
      const { schema, batches } = hashJoin(k, spec, lb, rb, { outputBytes: cap });
      assert.is(k.memory.bytesInUse, before, 'join frees everything');
      const what = `${type} build=${buildSide} keys ${keyKinds} cap ${cap}`;
      const got = checkBatches(batches, fieldsOf(schema), cap, what);
      const want = refJoin(type, L.fields, R.fields, L.keys, R.keys, lb, rb);
      assert.equal(rowMultiset(got), rowMultiset(want), what);
    });
  });

  test(`[${name}] hash join: one hot key (many matches per probe row) resumes mid-match-list`, async () => {
    const k = await kernelsFor(debug);
    const f: RefField[] = [
      { kind: 'string', nullable: true },
      { kind: 'i64', nullable: false },
    ];
    const s = schemaOf(f);
    const build = [encodeBatch(f, Array.from({ length: 300 }, (_, i): RefValue[] => ['hot', BigInt(i)]))];
    const probe = [encodeBatch(f, [['hot', 1n], [null, 2n], ['cold', 3n], ['hot', 4n]])];
    for (const type of JOIN_TYPES) {
      for (const cap of [16, 64, 200, 32768]) {
        for (const buildSide of ['left', 'right'] as const) {
          const spec = { type, left: s, right: s, leftKeys: [0], rightKeys: [0], buildSide };
          const [lb, rb] = buildSide === 'right' ? [probe, build] : [build, probe];
          const { schema, batches } = hashJoin(k, spec, lb, rb, { outputBytes: cap });
          const got = checkBatches(batches, fieldsOf(schema), cap, `${type}/${cap}`);
          assert.equal(rowMultiset(got), rowMultiset(refJoin(type, f, f, [0], [0], lb, rb)), `${type} cap ${cap} build ${buildSide}`);
        }
      }
    }
  });

  test(`[${name}] hash join: f64 keys join -0 with +0 and NaN with NaN; NULL never matches`, async () => {
    const k = await kernelsFor(debug);
    const f: RefField[] = [{ kind: 'f64', nullable: true }];
    const s = schemaOf(f);
    const lb = [encodeBatch(f, [[0], [NaN], [null], [1.5]])];
    const rb = [encodeBatch(f, [[-0], [NaN], [null], [2.5]])];
    const { batches } = hashJoin(k, { type: 'inner', left: s, right: s, leftKeys: [0], rightKeys: [0] }, lb, rb);
    assert.is(batches.flatMap(batchRows).length, 2);
    const full = hashJoin(k, { type: 'full', left: s, right: s, leftKeys: [0], rightKeys: [0] }, lb, rb);
    assert.is(full.batches.flatMap(batchRows).length, 6);
    const anti = hashJoin(k, { type: 'anti', left: s, right: s, leftKeys: [0], rightKeys: [0], buildSide: 'left' }, lb, rb);
    assert.is(anti.batches.flatMap(batchRows).length, 2);
  });

  test(`[${name}] hash join: empty inputs, output schema, plan errors`, async () => {
    const k = await kernelsFor(debug);
    const f: RefField[] = [{ kind: 'i32', nullable: false }];
    const s = schemaOf(f);
    const one = [encodeBatch(f, [[1]])];
    for (const type of JOIN_TYPES) {
      for (const buildSide of ['left', 'right'] as const) {
        const spec = { type, left: s, right: s, leftKeys: [0], rightKeys: [0], buildSide };
        for (const [lb, rb] of [[[], []], [one, []], [[], one]] as Uint8Array[][][]) {
          const { batches } = hashJoin(k, spec, lb!, rb!);
          const want = refJoin(type, f, f, [0], [0], lb!, rb!);
          assert.is(batches.flatMap(batchRows).length, want.length, `${type} ${buildSide}`);
        }
      }
    }
    const plan = planJoin({ type: 'full', left: s, right: s, leftKeys: ['f0'], rightKeys: [0] });
    assert.is(plan.output.toString(), '{ f0: i32?, f0_r: i32? }');
    assert.is(planJoin({ type: 'semi', left: s, right: s, leftKeys: [0], rightKeys: [0] }).output.toString(), '{ f0: i32 }');
    const s2 = schemaOf([{ kind: 'i64', nullable: false }]);
    assert.throws(() => planJoin({ type: 'inner', left: s, right: s2, leftKeys: [0], rightKeys: [0] }), (e: unknown) => e instanceof JobDefinitionError);
    assert.throws(() => planJoin({ type: 'inner', left: s, right: s, leftKeys: [0], rightKeys: [] }), (e: unknown) => e instanceof JobDefinitionError);
    assert.throws(() => planJoin({ type: 'cross' as JoinType, left: s, right: s, leftKeys: [0], rightKeys: [0] }), (e: unknown) => e instanceof JobDefinitionError);
  });

  test(`[${name}] join partitioner: every row once, equal keys together, seeds split differently`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('join/partition', 30, (rng) => {
      const L = randomSide(rng, [rng.pick(KINDS)]);
      const schema = schemaOf(L.fields);
      const batch = sideBatches(rng, L, 200)[0]!;
      const bits = rng.range(0, 5);
      const seed = rng.u32();
      const drop = rng.bool();
      const mb = k.copyIn(batch, schema);
      const nOut = 1 << bits;
      const capOut = rng.pick([24, 256, 32768]);
      const region = k.memory.alloc(nOut * capOut + 8 * nOut + 8192);
      const table = region + nOut * capOut;
      const descs = table + 8 * nOut;
      const got: Uint8Array[][] = Array.from({ length: nOut }, () => []);
      const own: number[] = [];
      try {
        const sd = schemaDescriptor(schema);
        k.memory.u32.set(sd, descs >>> 2);
        k.memory.u32.set(keyDescriptor(schema, L.keys), (descs >>> 2) + sd.length);
        const reset = (p: number, ptr: number, cap: number) => {
          k.raw.initBatch(ptr, schema.id);
          k.memory.u32[(table >>> 2) + 2 * p] = ptr;
          k.memory.u32[(table >>> 2) + 2 * p + 1] = cap;
        };
        for (let p = 0; p < nOut; p++) reset(p, region + p * capOut, capOut);
        const flush = (p: number) => {
          const ptr = k.memory.u32[(table >>> 2) + 2 * p]!;
          got[p]!.push(...batchRows(k.memory.u8.slice(ptr, ptr + k.memory.u32[(ptr >>> 2) + 1]!)));
          return ptr;
        };
        partitionForJoin(k, schema, L.keys, mb, seed, bits, drop, table, (p, need) => {
          const ptr = k.memory.u32[(table >>> 2) + 2 * p]!;
          if (k.memory.u32[(ptr >>> 2) + 2]! > 0) {
            flush(p);
            reset(p, region + p * capOut, capOut);
          } else {
            const big = k.memory.alloc(16 + need);
            own.push(big);
            reset(p, big, 16 + need);
          }
        }, descs);
        for (let p = 0; p < nOut; p++) flush(p);
      } finally {
        for (const p of own) k.memory.free(p);
        k.memory.free(region);
        k.free(mb);
      }
      const rows = batchRows(batch);
      const keyNull = (r: Uint8Array) => L.keys.some((f) => (r[8 + (f >> 3)]! & (1 << (f & 7))) !== 0);
      const kept = drop ? rows.filter((r) => !keyNull(r)) : rows;
      assert.equal(rowMultiset(got.flat()), rowMultiset(kept));
    });
  });
  test(`[${name}] hash join: dense integer keys (direct buckets), the inner-join fast path, inserts after probing`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('join/direct', 60, (rng) => {
      const kind = rng.pick(['i32', 'i64', 'timestamp', 'bool'] as const);
      const extra = (): RefField[] => Array.from({ length: rng.range(0, 3) }, () => ({ kind: rng.pick(['i32', 'i64', 'f64', 'bool'] as const), nullable: rng.bool(0.3) }));
      const L: RefField[] = [{ kind, nullable: rng.bool(0.5) }, ...extra()];
      const R: RefField[] = [...extra(), { kind, nullable: rng.bool(0.5) }];
      const rk = R.length - 1;
      const base = kind === 'bool' ? 0 : rng.pick([0, 7, -40, 1_000_000]);
      const span = kind === 'bool' ? 2 : rng.pick([1, 4, 50, 300]);
      const key = (f: RefField): RefValue => {
        if (f.nullable && rng.bool(0.1)) return null;
        const v = Math.max(kind === 'timestamp' ? 0 : -Infinity, base + rng.int(span + (rng.bool(0.1) ? 20 : 0)) - (rng.bool(0.05) ? 10 : 0));
        return kind === 'bool' ? v % 2 === 1 : kind === 'i64' ? BigInt(v) : v;
      };
      // unique build keys (a shuffled range, a few NULLs): the probe's row-address buckets
      const unique = kind !== 'bool' && rng.bool(0.5);
      const side = (f: RefField[], ki: number, n: number, distinct = false): Uint8Array[] => {
        const rows = randomRows(rng, f, n, { small: true });
        const pool = Array.from({ length: n }, (_, i) => base + i);
        for (let i = pool.length - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          [pool[i], pool[j]] = [pool[j]!, pool[i]!];
        }
        rows.forEach((r, i) => {
          const v = Math.max(kind === 'timestamp' ? 0 : -Infinity, pool[i]!);
          r[ki] = !distinct ? key(f[ki]!) : f[ki]!.nullable && rng.bool(0.05) ? null : kind === 'i64' ? BigInt(v) : v;
        });
        return encodeBatches(rng, f, rows, 80);
      };
      const lb = side(L, 0, rng.pick([1, 20, 200]));
      const rb = side(R, rk, rng.pick([1, 20, 200]), unique);
      const type = rng.bool(0.5) ? 'inner' : rng.pick(JOIN_TYPES);
      const buildSide = rng.bool(0.7) ? 'right' : 'left';
      const cap = rng.pick(CAPACITIES);
      const spec = { type, left: schemaOf(L), right: schemaOf(R), leftKeys: [0], rightKeys: [rk], buildSide } as const;
      const { schema, batches } = hashJoin(k, spec, lb, rb, { outputBytes: cap });
      const what = `${type} ${kind} build=${buildSide} cap ${cap}`;
      assert.equal(rowMultiset(checkBatches(batches, fieldsOf(schema), cap, what)), rowMultiset(refJoin(type, L, R, [0], [rk], lb, rb)), what);
      // a table probed (direct buckets), then given more rows (relinked by hash), then probed again
      const plan = planJoin({ ...spec, type: 'inner', buildSide: 'right' });
      const more = side(R, rk, 30);
      const held = [...rb, ...more].map((b) => k.copyIn(b, plan.build.schema));
      const pb = lb.map((b) => k.copyIn(b, plan.probe.schema));
      const t = new JoinTable(k, plan.build.schema, plan.build.keys, held.reduce((s, b) => s + k.rowCount(b), 0));
      const out = new JoinOutput(k, plan.output.id, cap);
      try {
        for (const b of held.slice(0, rb.length)) t.insert(b);
        for (const b of pb) t.probe(plan.probe.schema, plan.probe.keys, b, plan.probeMode, out);
        out.flush();
        const first = out.drain().flatMap(batchRows);
        assert.equal(rowMultiset(first), rowMultiset(refJoin('inner', L, R, [0], [rk], lb, rb)), `${what}: before more rows`);
        for (const b of held.slice(rb.length)) t.insert(b);
        for (const b of pb) t.probe(plan.probe.schema, plan.probe.keys, b, plan.probeMode, out);
        out.flush();
        const second = out.drain().flatMap(batchRows);
        assert.equal(rowMultiset(second), rowMultiset(refJoin('inner', L, R, [0], [rk], lb, [...rb, ...more])), `${what}: after more rows`);
      } finally {
        t.close();
        out.dispose();
        for (const b of [...held, ...pb]) k.free(b);
      }
    });
  });
  test(`[${name}] hash join: the dense image (unique integer keys) gives the same bytes as the buckets`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('join/dense', 60, (rng) => {
      const kind = rng.pick(['i32', 'i64', 'timestamp'] as const);
      const fixed = (): RefField[] => Array.from({ length: rng.range(0, 4) }, () => ({ kind: rng.pick(['i32', 'i64', 'f64', 'bool', 'timestamp'] as const), nullable: rng.bool(0.4) }));
      // the key anywhere among the build fields; sometimes wide rows (up to 63 fields in all)
      const wide = rng.bool(0.1);
      const P: RefField[] = [{ kind, nullable: rng.bool(0.5) }, ...(wide ? Array.from({ length: 30 }, () => ({ kind: 'i64' as const, nullable: false })) : fixed())];
      const B: RefField[] = wide ? Array.from({ length: 31 }, () => ({ kind: 'f64' as const, nullable: rng.bool(0.5) })) : fixed();
      const bk = rng.int(B.length + 1);
      B.splice(bk, 0, { kind, nullable: rng.bool(0.5) });
      const base = rng.pick(kind === 'timestamp' ? [0, 5, 1_000_000] : [0, 5, -1000, 1_000_000]);
      const nb = rng.pick([1, 30, 300, 1200]);
      const pool = Array.from({ length: nb }, (_, i) => Math.max(kind === 'timestamp' ? 0 : -Infinity, base + i));
      for (let i = pool.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      }
      const asKey = (v: number): RefValue => (kind === 'i64' ? BigInt(v) : v);
      const pNull = rng.pick([0, 0, 0.2]);
      const brows = randomRows(rng, B, nb, { small: true, pNull });
      brows.forEach((r, i) => (r[bk] = B[bk]!.nullable && rng.bool(0.03) ? null : asKey(pool[i]!)));
      const prows = randomRows(rng, P, rng.pick([1, 50, 700]), { small: true, pNull });
      // keys inside, below and above the build range, and NULLs
      for (const r of prows) r[0] = P[0]!.nullable && rng.bool(0.05) ? null : asKey(Math.max(kind === 'timestamp' ? 0 : -Infinity, base - 3 + rng.int(nb + 6)));
      const pb = encodeBatches(rng, P, prows, 500);
      const bb = encodeBatches(rng, B, brows, 500);
      const buildFirst = rng.bool(0.5);
      const spec = buildFirst
        ? ({ type: 'inner', left: schemaOf(B), right: schemaOf(P), leftKeys: [bk], rightKeys: [0], buildSide: 'left' } as const)
        : ({ type: 'inner', left: schemaOf(P), right: schemaOf(B), leftKeys: [0], rightKeys: [bk], buildSide: 'right' } as const);
      const plan = planJoin(spec);
      const cap = rng.pick(CAPACITIES);
      const held = bb.map((b) => k.copyIn(b, plan.build.schema));
      const probes = pb.map((b) => k.copyIn(b, plan.probe.schema));
      const run = (dense: boolean): { bytes: Uint8Array[]; isDense: boolean } => {
        const t = new JoinTable(k, plan.build.schema, plan.build.keys, nb, undefined, undefined, dense ? undefined : () => 0);
        const out = new JoinOutput(k, plan.output.id, cap);
        try {
          for (const b of held) t.insert(b);
          for (const b of probes) t.probe(plan.probe.schema, plan.probe.keys, b, plan.probeMode, out);
          out.flush();
          return { bytes: out.drain(), isDense: t.isDense };
        } finally {
          t.close();
          out.dispose();
        }
      };
      try {
        const what = `${kind} nb=${nb} buildFirst=${buildFirst} cap=${cap} wide=${wide}`;
        const a = run(true);
        const b = run(false);
        // (a build side whose keys are all NULL has no key range: no direct buckets, no image)
        assert.is(a.isDense, brows.some((r) => r[bk] !== null), `${what}: the table has a dense image`);
        assert.not.ok(b.isDense, `${what}: refused, no dense image`);
        assert.equal(a.bytes.map(hex), b.bytes.map(hex), `${what}: same output bytes`);
        const L = buildFirst ? B : P;
        const R = buildFirst ? P : B;
        const expected = refJoin('inner', L, R, buildFirst ? [bk] : [0], buildFirst ? [0] : [bk], buildFirst ? bb : pb, buildFirst ? pb : bb);
        assert.equal(rowMultiset(checkBatches(a.bytes, fieldsOf(plan.output), cap, what)), rowMultiset(expected), `${what}: == reference`);
      } finally {
        for (const b of [...held, ...probes]) k.free(b);
      }
    });
  });
}

test('join: JoinTable / JoinOutput free their memory', async () => {
  const k = await kernelsFor(false);
  const s = schemaOf([{ kind: 'i64', nullable: false }]);
  const before = k.memory.bytesInUse;
  const t = new JoinTable(k, s, [0], 1000);
  const o = new JoinOutput(k, s.id, 64);
  t.close();
  t.close();
  o.dispose();
  assert.is(k.memory.bytesInUse, before);
});

test.run();
