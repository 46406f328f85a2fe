// Tests keyed.aggregate: the batch aggregation per keyBy field equals groupBy(field).aggregate record
// for record at parallelism 1 and 2, reuses the keyBy's partitioning (no second exchange in the plan),
// and a keyBy on a selector function is refused with a typed error.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { count, JobDefinitionError, schema, StreamEnvironment, sum, t } from '../../src/index.ts';

const ORDERS = schema({ user: t.string(), amount: t.i64() });
const orders = Array.from({ length: 2000 }, (_, i) => ({ user: `u${(i * 37) % 53}`, amount: (i * 7) % 100 }));

type Row = { user: string; n: number; total: number };
const byUser = (rows: Row[]): Row[] => [...rows].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));

test('keyBy(field).aggregate equals groupBy(field).aggregate at parallelism 1 and 2, on the keyBy partitioning', async () => {
  for (const parallelism of [1, 2]) {
    const env = StreamEnvironment.create({ runtimeMode: 'batch', parallelism });
    const src = env.fromCollection(orders).withSchema(ORDERS);
    const keyed = src.keyBy('user').aggregate({ n: count(), total: sum('amount') }).collect();
    const grouped = src.groupBy('user').aggregate({ n: count(), total: sum('amount') }).collect();
    const plan = env.explain();
    await env.execute();
    assert.equal(byUser(keyed.results as unknown as Row[]), byUser(grouped.results as unknown as Row[]), `parallelism ${parallelism}`);
    assert.is(keyed.results.length, 53);
    if (parallelism === 2) assert.match(plan, 'ship=FORWARD (reuse HASH(user))');
  }
});

test('keyed.aggregate needs a key field, not a selector function', () => {
  const env = StreamEnvironment.create({ runtimeMode: 'batch' });
  const src = env.fromCollection(orders).withSchema(ORDERS);
  assert.throws(
    () => src.keyBy((o) => o.user).aggregate({ n: count() }),
    (e: unknown) => e instanceof JobDefinitionError && /key field/.test((e as Error).message),
  );
});

test.run();
