// Tests that failures surface as typed errors naming the operator, the subtask and the record.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  FieldValueError,
  JobDefinitionError,
  SluiceError,
  StreamEnvironment,
  UnhashableKeyError,
  UserFunctionError,
} from '../../src/index.ts';

async function failure(run: () => Promise<unknown>): Promise<SluiceError> {
  try {
    await run();
  } catch (e) {
    assert.instance(e, SluiceError);
    return e as SluiceError;
  }
  throw new Error('expected the job to fail');
}

test('a throwing map fails with UserFunctionError naming operator, subtask and record', async () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  const boom = new Error('bad price');
  const parse = (n: number) => {
    if (n === 7) throw boom;
    return n;
  };
  const e = await failure(() => env.fromGenerator(10, (i) => i).map(parse).executeAndCollect());
  assert.instance(e, UserFunctionError);
  assert.is(e.cause, boom);
  assert.is(e.domain, 'user');
  // 10 records split 5/5: record 7 is the third record (index 2) of subtask 1
  assert.equal(e.context, { operator: 'Map(parse)', subtask: 1, recordIndex: 2 });
  assert.match(e.message, 'user function failed: bad price [operator Map(parse), subtask 1, record 2]');
});

test('the name() of an operator is what errors report; filter, flatMap, reduce and sinks too', async () => {
  const cases: [string, (env: StreamEnvironment) => void, string][] = [
    ['filter', (env) => env.fromCollection([1, 2]).filter((x) => { if (x === 2) throw new Error('f'); return true; }).name('check').collect(), 'check'],
    ['flatMap', (env) => env.fromCollection([1, 2]).flatMap(() => 5 as unknown as number[]).collect(), 'FlatMap'],
    ['reduce', (env) => env.fromCollection([{ k: 1 }, { k: 1 }]).keyBy('k').reduce(() => { throw new Error('r'); }).collect(), 'Reduce'],
    ['sink', (env) => env.fromCollection([1, 2]).addSink(function store(x) { if (x === 2) throw new Error('s'); }), 'Sink: store'],
    ['generator', (env) => env.fromGenerator(5, (i) => { if (i === 3) throw new Error('g'); return i; }, { name: 'gen' }).collect(), 'gen'],
  ];
  for (const [what, build, operator] of cases) {
    const env = StreamEnvironment.create();
    build(env);
    const e = await failure(() => env.execute());
    assert.instance(e, UserFunctionError, what);
    assert.is(e.context.operator, operator, what);
    assert.is(e.context.subtask, 0, what);
    assert.ok(e.context.recordIndex !== undefined, what);
  }
});

test('flatMap returning a non-iterable says so', async () => {
  const env = StreamEnvironment.create();
  const e = await failure(() => env.fromCollection([1]).flatMap(() => 5 as unknown as number[]).executeAndCollect());
  assert.match(e.message, /flatMap function must return an iterable/);
});

test('an unhashable key fails with UnhashableKeyError naming the keyBy and the record', async () => {
  for (const bad of [{ nested: true }, () => 1, Symbol('s')]) {
    const env = StreamEnvironment.create({ parallelism: 2 });
    const rows = [{ k: 'a' as unknown }, { k: 'b' as unknown }, { k: bad }];
    const e = await failure(() => env.fromCollection(rows, { parallelism: 1 }).keyBy('k').reduce((a) => a).executeAndCollect());
    assert.instance(e, UnhashableKeyError);
    assert.instance(e, FieldValueError);
    assert.is((e as FieldValueError).field, 'k');
    assert.equal(e.context, { operator: 'KeyBy(k)', subtask: 0, recordIndex: 2 });
  }
  const env = StreamEnvironment.create();
  const e = await failure(() => env.fromCollection([1, 2]).keyBy(function owner(n) { return n === 2 ? new Map() : n; }).reduce((a) => a).executeAndCollect());
  assert.instance(e, UnhashableKeyError);
  assert.match(e.message, /key \(owner\)/);
  assert.is(e.context.recordIndex, 1);
});

test('a throwing key selector is a UserFunctionError', async () => {
  const env = StreamEnvironment.create();
  const e = await failure(() =>
    env
      .fromCollection([1, 2, 3])
      .keyBy(function pick(n): number {
        if (n === 3) throw new Error('no key');
        return n;
      })
      .reduce((a, b) => a + b)
      .executeAndCollect(),
  );
  assert.instance(e, UserFunctionError);
  assert.equal(e.context, { operator: 'KeyBy(pick)', subtask: 0, recordIndex: 2 });
});

test('keyBy on a field the records do not have is a JobDefinitionError', async () => {
  const env = StreamEnvironment.create();
  const rows = [{ a: 1 }] as { a: number; b: string }[];
  const e = await failure(() => env.fromCollection(rows).keyBy('b').reduce((x) => x).executeAndCollect());
  assert.instance(e, JobDefinitionError);
  assert.match(e.message, /keyBy\('b'\): record has no field 'b'/);
  assert.is(e.context.recordIndex, 0);
});

test('sum on a non-numeric value is a FieldValueError naming the field and record', async () => {
  const env = StreamEnvironment.create();
  const rows = [{ k: 'a', v: 1 }, { k: 'a', v: 2 }, { k: 'a', v: 'three' as unknown as number }];
  const e = await failure(() => env.fromCollection(rows).keyBy('k').sum('v').executeAndCollect());
  assert.instance(e, FieldValueError);
  const f = e as FieldValueError;
  assert.is(f.field, 'v');
  assert.is(f.reason, 'wrong-type');
  assert.equal(f.context, { operator: 'Sum(v)', subtask: 0, recordIndex: 2 });
  assert.match(f.message, `field 'v' expects number or bigint but got "three"`);

  const env2 = StreamEnvironment.create();
  const e2 = await failure(() => env2.fromCollection([{ k: 1 } as { k: number; v: number }]).keyBy('k').max('v').executeAndCollect());
  assert.is((e2 as FieldValueError).reason, 'missing');
});

test('a failing job closes its operators and delivers no collect results', async () => {
  const env = StreamEnvironment.create();
  let closed = 0;
  env.fromCollection([1, 2, 3]).map((x) => { if (x === 3) throw new Error('x'); return x; }).addSink({ invoke: () => {}, close: () => void closed++ });
  const h = env.fromCollection([1]).collect();
  await failure(() => env.execute());
  assert.is(closed, 1);
  assert.is(h.isComplete, false);
});

test.run();
