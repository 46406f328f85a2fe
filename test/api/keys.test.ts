// Tests keyBy's handling of records whose key cannot be used (missing field, throwing selector,
// unhashable key): failing the job by default, and `{ invalidKeys: 'drop' | tag }`, which routes them
// through a key check chained before the hash exchange, at parallelism 1, 2 and 4.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  JobDefinitionError,
  OutputTag,
  SluiceError,
  StreamEnvironment,
  UnhashableKeyError,
  UserFunctionError,
  WatermarkStrategy,
  hashJsKey,
  keyGroupOf,
  subtaskForKeyGroup,
} from '../../src/index.ts';
import { InvalidKeyError } from '../../src/runtime/keys.ts';

interface Row {
  id: number;
  k?: unknown;
  v: number;
}

const SYMBOL = Symbol('s');
/** 400 rows, every 7th with a bad key of some kind (ids of bad rows are multiples of 7). */
const rows: Row[] = Array.from({ length: 400 }, (_, id) => {
  if (id % 7 !== 0) return { id, k: id % 3 === 0 ? `key-${id % 13}` : id % 3 === 1 ? id % 11 : [`c${id % 4}`, id % 2], v: id };
  switch ((id / 7) % 5) {
    case 0:
      return { id, k: { nested: id }, v: id }; // unhashable object
    case 1:
      return { id, v: id }; // no field k
    case 2:
      return { id, k: () => id, v: id }; // a function
    case 3:
      return { id, k: ['ok', new Map()], v: id }; // composite with an unhashable element
    default:
      return { id, k: SYMBOL, v: id };
  }
});
const badIds = rows.filter((r) => r.id % 7 === 0).map((r) => r.id);
const expectedReason = (id: number): string => ((id / 7) % 5 === 1 ? 'missing-field' : 'unhashable');

async function failure(run: () => Promise<unknown>): Promise<SluiceError> {
  try {
    await run();
  } catch (e) {
    assert.instance(e, SluiceError);
    return e as SluiceError;
  }
  throw new Error('expected the job to fail');
}

/** Final sum of v per key (keys compared by their hash input: JSON of the key). */
function expectedSums(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows) {
    if (r.id % 7 === 0) continue;
    const k = JSON.stringify(r.k);
    m.set(k, (m.get(k) ?? 0) + r.v);
  }
  return m;
}

test('default: a bad key fails the job naming the keyBy and the record, with or without invalidKeys: fail', async () => {
  for (const opts of [undefined, { invalidKeys: 'fail' as const }]) {
    const env = StreamEnvironment.create({ parallelism: 2 });
    const e = await failure(() => env.fromCollection(rows.slice(0, 20), { parallelism: 1 }).filter((r) => r.id > 0).setParallelism(1).keyBy('k', opts).sum('v').executeAndCollect());
    // the first bad row after the filter is id 7 (missing field k), index 6 of the keyBy's input
    assert.instance(e, JobDefinitionError);
    assert.equal(e.context, { operator: 'KeyBy(k)', subtask: 0, recordIndex: 6 });
    assert.match(e.message, /record has no field 'k'/);
  }
  const env = StreamEnvironment.create({ parallelism: 4 });
  const e = await failure(() => env.fromCollection([{ k: 'a' }, { k: 'b' }, { k: { x: 1 } }], { parallelism: 1 }).keyBy(function pickK(r) { return r.k; }).reduce((a) => a).executeAndCollect());
  assert.instance(e, UnhashableKeyError);
  assert.equal(e.context, { operator: 'KeyBy(pickK)', subtask: 0, recordIndex: 2 });
  assert.match(e.message, /key \(pickK\)/);
});

for (const p of [1, 2, 4]) {
  test(`invalidKeys: tag at parallelism ${p} — bad records on the side output, good ones keyed to their key group's subtask`, async () => {
    const env = StreamEnvironment.create({ parallelism: p, maxParallelism: 32, batchSize: 16 });
    const bad = new OutputTag<InvalidKeyError<Row>>('bad-keys');
    const keyed = env.fromCollection(rows, { parallelism: 1 }).keyBy('k', { invalidKeys: bad });
    const where: { k: unknown; subtask: number; v: number }[] = [];
    keyed.sum('v').addSink({ invoke: (r, ctx) => void where.push({ k: r.k, v: r.v, subtask: ctx.subtaskIndex }) });
    const side = keyed.getSideOutput(bad).collect();
    await env.execute();

    const last = new Map<string, number>();
    for (const w of where) {
      assert.is(w.subtask, subtaskForKeyGroup(keyGroupOf(hashJsKey(w.k), 32), p, 32), `key ${JSON.stringify(w.k)}`);
      last.set(JSON.stringify(w.k), w.v); // one source subtask: each key's updates arrive in order
    }
    assert.equal(last, expectedSums());
    assert.is(where.length, rows.length - badIds.length);

    const errs = [...side.results].sort((a, b) => a.record.id - b.record.id);
    assert.equal(errs.map((e) => e.record.id), badIds);
    for (const e of errs) {
      assert.instance(e, InvalidKeyError);
      assert.instance(e, SluiceError);
      assert.is(e.reason, expectedReason(e.record.id));
      assert.is(e.record, rows[e.record.id]); // the record itself, not a copy
      assert.equal(e.context, { operator: 'KeyBy(k)', subtask: 0, recordIndex: e.record.id });
      assert.match(e.message, new RegExp(`"id":${e.record.id}\\b`));
      assert.match(e.message, /operator KeyBy\(k\)/);
      if (e.reason === 'missing-field') {
        assert.instance(e.cause, JobDefinitionError);
        assert.is(e.key, undefined);
      } else {
        assert.instance(e.cause, UnhashableKeyError);
        assert.is(e.key, rows[e.record.id]!.k);
      }
    }
  });
}

test('invalidKeys with a key selector: a throwing selector and an unhashable key are set aside; parallel sources, union input', async () => {
  for (const p of [1, 2, 4]) {
    const env = StreamEnvironment.create({ parallelism: p });
    const bad = new OutputTag<InvalidKeyError<Row>>('bad');
    const a = env.fromGenerator(200, (i) => rows[i]!, { parallelism: p });
    const b = env.fromCollection(rows.slice(200), { parallelism: 1 }).map((r) => r);
    const keyed = a.union(b).keyBy(
      function key(r: Row): unknown {
        if (r.id % 7 === 1 && r.id % 2 === 1) throw new Error(`no key for ${r.id}`);
        return r.k;
      },
      { invalidKeys: bad },
    );
    const sums = keyed.sum('v').collect();
    const side = keyed.getSideOutput(bad).collect();
    await env.execute();
    const thrown = rows.filter((r) => r.id % 7 === 1 && r.id % 2 === 1).map((r) => r.id);
    // by selector, a missing field is just an undefined key, which hashes like null
    const want = [...badIds.filter((id) => expectedReason(id) !== 'missing-field'), ...thrown].sort((x, y) => x - y);
    const errs = [...side.results].sort((x, y) => x.record.id - y.record.id);
    assert.equal(errs.map((e) => e.record.id), want, `parallelism ${p}`);
    for (const e of errs) {
      if (thrown.includes(e.record.id)) {
        assert.is(e.reason, 'selector-failed');
        assert.instance(e.cause, UserFunctionError);
        assert.match(e.message, new RegExp(`the key selector threw: no key for ${e.record.id}`));
      } else {
        assert.is(e.reason, 'unhashable');
        assert.instance(e.cause, UnhashableKeyError);
        assert.match(e.message, /key \(key\)/);
      }
      assert.is(e.context.operator, 'KeyBy(key)');
      assert.ok(e.context.subtask! < p && e.context.recordIndex! >= 0);
    }
    // sums: the final value per key (the largest running sum, since v >= 0)
    const got = new Map<string, number>();
    for (const r of sums.results) got.set(JSON.stringify(r.k), Math.max(got.get(JSON.stringify(r.k)) ?? 0, r.v));
    const wantSums = new Map<string, number>();
    for (const r of rows) {
      if (want.includes(r.id)) continue;
      const k = JSON.stringify(r.k);
      wantSums.set(k, (wantSums.get(k) ?? 0) + r.v);
    }
    assert.equal(got, wantSums, `parallelism ${p}`);
  }
});

test("invalidKeys: 'drop' skips bad records; event timestamps survive the check on both outputs", async () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  const out = await env
    .fromCollection(rows, { parallelism: 1 })
    .keyBy('k', { invalidKeys: 'drop' })
    .reduce((acc, r) => ({ ...acc, v: acc.v + r.v }))
    .executeAndCollect();
  const last = new Map<string, number>();
  for (const r of out) last.set(JSON.stringify(r.k), Math.max(last.get(JSON.stringify(r.k)) ?? 0, r.v));
  assert.equal(last, expectedSums());

  const env2 = StreamEnvironment.create({ parallelism: 2 });
  const bad = new OutputTag<InvalidKeyError<Row>>('bad');
  const keyed = env2
    .fromCollection(rows, { parallelism: 1 })
    .assignTimestampsAndWatermarks(WatermarkStrategy.forMonotonousTimestamps<Row>().withTimestampAssigner((r) => 1000 + r.id))
    .keyBy('k', { invalidKeys: bad });
  const mainTs: [number, number | undefined][] = [];
  const sideTs: [number, number | undefined][] = [];
  keyed.process<Row>({ processElement: (r, ctx, o) => { mainTs.push([r.id, ctx.timestamp()]); o.collect(r); } }).collect();
  keyed.getSideOutput(bad).process<Row>({ processElement: (e, ctx, o) => { sideTs.push([e.record.id, ctx.timestamp()]); o.collect(e.record); } }).collect();
  await env2.execute();
  assert.is(mainTs.length + sideTs.length, rows.length);
  for (const [id, t] of [...mainTs, ...sideTs]) assert.is(t, 1000 + id);
  assert.equal(sideTs.map(([id]) => id).sort((x, y) => x - y), badIds);
});

test('the key check chains to its input and the plan shows it; a keyBy without the option adds nothing', () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  const bad = new OutputTag<InvalidKeyError<Row>>('bad');
  const src = env.fromCollection(rows).map((r) => r).setParallelism(3);
  const keyed = src.keyBy('k', { invalidKeys: bad });
  keyed.sum('v').print();
  keyed.getSideOutput(bad).print();
  const plan = env.explain();
  assert.match(plan, /Map -> KeyCheck\(k\)\s+\(parallelism 3, chain of 2\)/);
  assert.match(plan, /--HASH\(k\)-->/);
  assert.match(plan, /side output 'bad'/);

  const env2 = StreamEnvironment.create({ parallelism: 2 });
  env2.fromCollection(rows).keyBy('k').sum('v').print();
  assert.not.match(env2.explain(), /KeyCheck/);
});

test('misuse: an unknown side output tag, bad options', () => {
  const env = StreamEnvironment.create();
  const s = env.fromCollection(rows);
  const bad = new OutputTag<InvalidKeyError<Row>>('bad');
  assert.throws(() => s.keyBy('k').getSideOutput(bad), (e: unknown) => e instanceof JobDefinitionError && /no side output 'bad'/.test(e.message));
  assert.throws(() => s.keyBy('k', { invalidKeys: new OutputTag('other') }).getSideOutput(bad), (e: unknown) => e instanceof JobDefinitionError);
  assert.throws(() => s.keyBy('k', { invalidKeys: 'skip' as 'drop' }), (e: unknown) => e instanceof JobDefinitionError && /'fail', 'drop' or an OutputTag/.test(e.message));
  assert.throws(() => s.keyBy('k', 5 as unknown as {}), (e: unknown) => e instanceof JobDefinitionError);
});

test.run();
