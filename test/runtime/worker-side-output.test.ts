// Tests side outputs of errors across worker threads: keyBy's invalid-keys side output
// (InvalidKeyError) and the invalid-timestamps side output (InvalidTimestampError), rebalanced so that
// errors made on one worker are read on the other, travel in the MessagePack codec's error extension
// and reach the consuming operator as errors of their class holding the offending record — the same
// as a one-thread run. (They used to fail the job: a class instance could not be encoded.)

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidKeyError, JobDefinitionError } from '../../src/index.ts';
import { workersForRuntime } from '../../src/platform/workers.ts';
import { invalidKeys, invalidTimestamps } from './worker-jobs.ts';

const supported = workersForRuntime().supported;

const byId = <T extends { record: { id: number } }>(rows: readonly T[]): T[] => [...rows].sort((a, b) => a.record.id - b.record.id);

test('keyBy invalidKeys side output at parallelism 2 on 2 workers: InvalidKeyErrors naming the keyBy and holding the record, as on one thread', async () => {
  if (!supported) return;
  const params = { n: 2000, badEvery: 10 };
  const environment = { parallelism: 2, batchSize: 64 };
  const one = await invalidKeys.run({ params, environment });
  const two = await invalidKeys.run({ params, workers: 2, environment });

  const seen = byId(two.outputs.seen.results);
  assert.is(seen.length, params.n / params.badEvery);
  assert.equal(seen, byId(one.outputs.seen.results));
  const subtasks = new Set<number>();
  for (const s of seen) {
    assert.ok(s.isInvalidKeyError, `record ${s.record.id} arrived as an InvalidKeyError`);
    assert.ok(s.causeIsJobDefinitionError, `record ${s.record.id}: its cause is a JobDefinitionError`);
    assert.is(s.name, 'InvalidKeyError');
    assert.is(s.reason, 'missing-field');
    assert.is(s.context.operator, 'KeyBy(k)');
    assert.match(s.message, /operator KeyBy\(k\)/);
    assert.equal(s.record, { id: s.record.id, v: s.record.id });
    assert.is(s.record.id % params.badEvery, 3);
    subtasks.add(s.context.subtask!);
  }
  // both producer subtasks (one per worker) made errors, and rebalance sent each to both consumers
  assert.equal([...subtasks].sort(), [0, 1]);

  // the errors themselves reach the parent's collect handle as InvalidKeyErrors, equal to one thread's
  const errors = byId(two.outputs.errors.results);
  assert.is(errors.length, seen.length);
  const oneErrors = byId(one.outputs.errors.results);
  errors.forEach((e, i) => {
    assert.instance(e, InvalidKeyError);
    assert.instance(e.cause, JobDefinitionError);
    assert.is(e.message, oneErrors[i]!.message);
    assert.equal(e.record, oneErrors[i]!.record);
    assert.equal(e.context, oneErrors[i]!.context);
    assert.is(e.context.operator, 'KeyBy(k)');
  });

  // the good records were keyed and summed as on one thread
  const finals = (rows: readonly { k?: string; v: number }[]) => {
    const m = new Map<string, number>();
    for (const r of rows) m.set(r.k!, Math.max(m.get(r.k!) ?? 0, r.v));
    return [...m].sort();
  };
  assert.is(two.outputs.sums.results.length, params.n - seen.length);
  assert.equal(finals(two.outputs.sums.results), finals(one.outputs.sums.results));
});

test('invalid-timestamps side output on 2 workers: the errors hold record, value and context, as on one thread', async () => {
  if (!supported) return;
  const params = { n: 1000, badEvery: 10 };
  const environment = { parallelism: 2, batchSize: 64 };
  const one = await invalidTimestamps.run({ params, environment });
  const two = await invalidTimestamps.run({ params, workers: 2, environment });
  const seen = byId(two.outputs.seen.results);
  assert.is(seen.length, params.n / params.badEvery);
  assert.equal(seen, byId(one.outputs.seen.results));
  for (const s of seen) {
    assert.is(s.name, 'InvalidTimestampError');
    assert.ok(s.isInvalidTimestampError);
    assert.is(s.context.operator, 'Timestamps/Watermarks');
    assert.equal(s.record, { id: s.record.id, t: `t${s.record.id}` });
    assert.is(s.value, `t${s.record.id}`);
  }
  assert.is(two.outputs.good.results.length, params.n - seen.length);
});

test.run();
