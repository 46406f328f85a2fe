// Tests the k-way merge kernel (mergeInit / mergeFeed / mergeStep behind Kernels.merger) against the
// reference merge on random sorted runs cut into random batches (empty ones too), fed in random
// interleavings of push / end / pull, with tiny output capacities; plus one run, empty runs, misuse,
// and that every byte of budget comes back, for both builds. The merge is deterministic (ties: lower
// run first), so outputs are compared exactly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JobDefinitionError, SchemaMismatchError } from '../../src/core/errors.ts';
import { concatRows, encodeBatch, fingerprint, randomFields, randomRows, schemaOf, type RefField, type RefValue } from '../reference/batch.ts';
import { BUILDS, CAPACITIES, checkOutputs, kernelsFor, randomKeys } from '../reference/harness.ts';
import { batchRows, refMerge, refSort, type RefKey } from '../reference/kernels.ts';
import { forSeeds, type Rng } from '../reference/random.ts';
import type { Kernels } from '../../bindings/index.ts';

const RUNS = 120;

/** A batch of already-encoded rows of `fields`. */
const batchOf = (rows: readonly Uint8Array[], fields: readonly RefField[]) => concatRows(rows, fingerprint(fields));

/** k runs: random rows, each run sorted by the reference and cut into batches (some empty). */
function randomRuns(rng: Rng, fields: RefField[], keys: RefKey[], k: number): Uint8Array[][] {
  const small = rng.bool(0.6);
  return Array.from({ length: k }, () => {
    const n = rng.pick([0, 1, 3, 20, 60, 300]);
    const sorted = refSort([encodeBatch(fields, randomRows(rng, fields, n, { small }))], fields, keys);
    const batches: Uint8Array[] = [];
    let i = 0;
    while (i < sorted.length || (batches.length < 2 && rng.bool(0.3))) {
      const take = rng.bool(0.1) ? 0 : rng.range(1, Math.max(1, rng.pick([1, 4, 50])));
      batches.push(batchOf(sorted.slice(i, i + take), fields));
      i += take;
    }
    return batches;
  });
}

/** Feeds the runs in a random interleaving, pulling at random moments; returns every output batch. */
function runMerge(k: Kernels, rng: Rng, fields: RefField[], keys: RefKey[], runs: Uint8Array[][], outputBytes: number): Uint8Array[] {
  // trusted (headers checked only, as for spilled runs) or not, views or copies: the same output
  const views = rng.bool(0.5);
  const m = k.merger(schemaOf(fields), keys, runs.length, { outputBytes, trusted: rng.bool(0.5), reuseOutput: views });
  const next = runs.map(() => 0);
  const ended = runs.map(() => false);
  const out: Uint8Array[] = [];
  try {
    let guard = 0;
    while (!m.done) {
      if (++guard > 100000) throw new Error('merge does not terminate');
      const open = runs.map((_, r) => r).filter((r) => !ended[r]);
      // feed what the merge asks for, or something else, or pull early
      const r = m.needs !== undefined && rng.bool(0.7) ? m.needs : open.length > 0 && rng.bool(0.6) ? rng.pick(open) : -1;
      if (r >= 0 && !ended[r]) {
        if (next[r]! < runs[r]!.length) {
          // by reference, or copied in at once (the pushed bytes are scribbled over right after)
          const b = runs[r]![next[r]!++]!;
          if (rng.bool(0.5)) m.push(r, b);
          else {
            const tmp = b.slice();
            m.pushCopy(r, tmp);
            tmp.fill(0xee);
          }
        }
        else {
          m.end(r);
          ended[r] = true;
        }
      }
      const before = m.needs;
      const got = m.pull();
      if (views) assert.ok(got.length <= 1, 'views: at most one batch per pull');
      out.push(...got.map((b) => (views ? b.slice() : b)));
      if (!m.done && !(views && got.length === 1 && m.needs === undefined)) {
        // (views: a pull that handed out a view may stop before the merge needs input; pull again)
        const need = m.needs;
        assert.ok(need !== undefined && need >= 0 && need < runs.length && !ended[need], `needs ${need} (was ${before})`);
        assert.ok(next[need!]! <= runs[need!]!.length);
      }
    }
    assert.equal(m.pull(), [], 'pull after done');
    assert.is(m.needs, undefined);
  } finally {
    m.close();
  }
  return out;
}

for (const { name, debug } of BUILDS) {
  test(`[${name}] merge == reference (random runs, batch cuts, interleavings, tiny outputs)`, async () => {
    const k = await kernelsFor(debug);
    await forSeeds('merge/random', RUNS, (rng) => {
      const fields = randomFields(rng);
      if (fields.length === 0) return;
      const keys = randomKeys(rng, fields.length);
      const nRuns = rng.pick([1, 2, 3, 4, 5, 7, 8, 16, 33]);
      const runs = randomRuns(rng, fields, keys, nRuns);
      const outputBytes = rng.pick(CAPACITIES);
      const before = k.memory.bytesInUse;
      const got = runMerge(k, rng, fields, keys, runs, outputBytes);
      assert.is(k.memory.bytesInUse, before, 'merge frees everything');
      checkOutputs(got, fields, outputBytes, refMerge(runs, fields, keys), `merge of ${nRuns} runs keys ${JSON.stringify(keys)} cap ${outputBytes}`);
    });
  });

  test(`[${name}] merge: ties come from the lower run first; equal-key runs interleave by run`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [
      { kind: 'f64', nullable: true },
      { kind: 'i32', nullable: false },
    ];
    const s = schemaOf(fields);
    const keys: RefKey[] = [{ field: 0, desc: true, nullsFirst: true }];
    // run r holds (v, r) rows for v in a sorted list (desc, nulls first): NaN first among values
    const vals: RefValue[] = [null, NaN, Infinity, 1, 0, -0, -Infinity];
    const runs = [0, 1, 2].map((r) => [encodeBatch(fields, vals.map((v) => [v, r]))]);
    const m = k.merger(s, keys, 3);
    runs.forEach((b, r) => {
      m.push(r, b[0]!);
      m.end(r);
    });
    const rows = m.pull().flatMap(batchRows);
    assert.ok(m.done);
    const got = rows.map((row) => new DataView(row.buffer, row.byteOffset).getInt32(24, true));
    // each value group holds runs 0, 1, 2 in order; 0 and -0 are one group of six
    assert.equal(got, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0, 1, 1, 2, 2, 0, 1, 2]);
    checkOutputs([batchOf(rows, fields)], fields, 1 << 30, refMerge(runs, fields, keys), 'ties');
  });

  test(`[${name}] merge: one run, empty runs, runs of empty batches, misuse, close mid-way`, async () => {
    const k = await kernelsFor(debug);
    const fields: RefField[] = [{ kind: 'string', nullable: false }];
    const s = schemaOf(fields);
    const keys: RefKey[] = [{ field: 0 }];
    const before = k.memory.bytesInUse;
    const b = (...xs: string[]) => encodeBatch(fields, xs.map((x) => [x]));

    // one run passes through unchanged
    const one = k.merger(s, keys, 1, { outputBytes: 48 });
    one.push(0, b('a', 'b'));
    one.push(0, b());
    one.push(0, b('c', 'x'.repeat(100)));
    const first = one.pull();
    assert.is(first.length, 3, 'only full batches while the run is open (one row of 32 bytes per 48-byte batch)');
    assert.is(one.needs, 0);
    one.end(0);
    checkOutputs([...first, ...one.pull()], fields, 48, batchRows(batchOf([...batchRows(b('a', 'b')), ...batchRows(b('c', 'x'.repeat(100)))], fields)), 'one run');
    assert.ok(one.done);

    // all runs empty (ended at once, or after empty batches)
    const empty = k.merger(s, keys, 4);
    empty.push(1, b());
    empty.push(2, b());
    empty.push(2, b());
    for (let r = 0; r < 4; r++) empty.end(r);
    assert.equal(empty.pull(), []);
    assert.ok(empty.done);

    // the first pull asks for run 0, then run 1 after run 0 has a batch
    const m = k.merger(s, keys, 2);
    assert.equal(m.pull(), []);
    assert.is(m.needs, 0);
    m.push(0, b('b'));
    assert.is(m.needs, undefined);
    m.pull();
    assert.is(m.needs, 1);
    m.push(1, b('a', 'c'));
    m.pull();
    assert.is(m.needs, 0, "'a' (run 1) and 'b' (run 0) are out; run 0 is used up, so 'c' waits for it");
    assert.throws(() => m.push(2, b('z')), RangeError);
    assert.throws(() => m.push(-1, b('z')), RangeError);
    m.pushCopy(0, b('d')); // copied in now, still queued when closed below: freed by close()
    m.pushCopy(0, b('e'));
    m.end(1);
    assert.throws(() => m.push(1, b('z')), (e: unknown) => e instanceof JobDefinitionError);
    assert.throws(() => m.pushCopy(1, b('z')), (e: unknown) => e instanceof JobDefinitionError);
    assert.throws(() => m.end(1), (e: unknown) => e instanceof JobDefinitionError);
    m.close(); // mid-way: frees state, buffers and the live batches
    m.close();
    assert.throws(() => m.pull());
    assert.throws(() => k.merger(s, keys, 0), RangeError);

    // trusted: a batch whose header does not match the schema still gets the full check, and its error
    const t = k.merger(s, keys, 1, { trusted: true });
    t.push(0, encodeBatch([{ kind: 'i32', nullable: false }], [[1]]));
    assert.throws(() => t.pull(), (e: unknown) => e instanceof SchemaMismatchError);
    t.close();

    assert.is(k.memory.bytesInUse, before, 'every merger gave its budget back');
  });
}

test.run();
