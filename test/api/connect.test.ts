// Tests two-input streams and partitioners: union, connect (map, process, keyed with shared state and
// timers), the broadcast state pattern, and rescale/shuffle/broadcast/global/forward/custom routing.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  type KeyedBroadcastProcessFunction,
  type ReadOnlyBroadcastContext,
  type KeyedCoProcessFunction,
  MapStateDescriptor,
  StreamEnvironment,
  UserFunctionError,
  ValueStateDescriptor,
  type ValueState,
} from '../../src/index.ts';

test('union merges streams of the same type, across parallelisms', async () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  const a = env.fromCollection([1, 2, 3]);
  const b = env.fromCollection([10, 20], { parallelism: 1 });
  const c = env.fromGenerator(4, (i) => 100 + i, { parallelism: 3 });
  const got = await a.union(b, c).map((x) => x * 2).executeAndCollect();
  assert.equal(got.sort((x, y) => x - y), [2, 4, 6, 20, 40, 200, 202, 204, 206]);
});

test('connect + map applies one function per input', async () => {
  const env = StreamEnvironment.create();
  const got = await env
    .fromCollection([1, 2])
    .connect(env.fromCollection(['a', 'b']))
    .map((n) => `n${n}`, (s) => `s${s}`)
    .executeAndCollect();
  assert.equal(got.sort(), ['n1', 'n2', 'sa', 'sb']);
});

interface Order {
  id: number;
  amount: number;
}
interface Payment {
  orderId: number;
  paid: number;
}

test('keyed connect: both inputs share keyed state (an order/payment match), at parallelism 1..4', async () => {
  const orders: Order[] = Array.from({ length: 200 }, (_, i) => ({ id: i, amount: i * 10 }));
  const payments: Payment[] = Array.from({ length: 200 }, (_, i) => ({ orderId: 199 - i, paid: (199 - i) * 10 }));
  type Fn = KeyedCoProcessFunction<number, Order, Payment, string> & { o: ValueState<Order>; p: ValueState<Payment> };
  for (const parallelism of [1, 2, 4]) {
    const env = StreamEnvironment.create({ parallelism, batchSize: 16 });
    const got = await env
      .fromCollection(orders)
      .connect(env.fromCollection(payments))
      .keyBy('id', 'orderId')
      .process<string>({
        o: undefined as unknown as ValueState<Order>,
        p: undefined as unknown as ValueState<Payment>,
        open(ctx) {
          this.o = ctx.getState(new ValueStateDescriptor<Order>('order'));
          this.p = ctx.getState(new ValueStateDescriptor<Payment>('payment'));
        },
        processElement1(o, ctx, out) {
          const p = this.p.value();
          if (p) out.collect(`${ctx.getCurrentKey()}:${o.amount === p.paid}`);
          else this.o.update(o);
        },
        processElement2(p, ctx, out) {
          const o = this.o.value();
          if (o) out.collect(`${ctx.getCurrentKey()}:${o.amount === p.paid}`);
          else this.p.update(p);
        },
      } as Fn)
      .executeAndCollect();
    assert.is(got.length, 200, `parallelism ${parallelism}`);
    assert.ok(got.every((s) => s.endsWith(':true')));
    assert.is(new Set(got).size, 200);
  }
});

test('keyed connect fails clearly when one input is not keyed the same way', () => {
  const env = StreamEnvironment.create();
  assert.throws(
    () =>
      env
        .fromCollection([{ k: 1 }])
        .connect(env.fromCollection([{ k: 2 }]))
        .keyBy('k', '')
        .map((x) => x, (y) => y),
    /field name must not be empty/,
  );
});

interface Rule {
  name: string;
  threshold: number;
}
interface Reading {
  sensor: string;
  value: number;
}

test('broadcast state: every subtask sees every rule; keyed readings are checked against them', async () => {
  const rulesDesc = new MapStateDescriptor<string, Rule>('rules');
  const env = StreamEnvironment.create({ parallelism: 3 });
  // rules first (a source of 1 subtask that finishes early), readings later in the stream
  const rules = env.fromCollection<Rule>([{ name: 'hot', threshold: 90 }], { parallelism: 1 }).broadcast(rulesDesc);
  const readings = env.fromGenerator(300, (i) => ({ sensor: `s${i % 7}`, value: i % 100 }));
  type Fn = KeyedBroadcastProcessFunction<string, Reading, Rule, string>;
  const seen: string[] = [];
  const fn: Fn = {
    processBroadcastElement(rule, ctx) {
      ctx.getBroadcastState(rulesDesc).put(rule.name, rule);
    },
    processElement(r, ctx, out) {
      const state = ctx.getBroadcastState(rulesDesc);
      if (state.size === 0) out.collect(`norules:${r.sensor}`);
      for (const [, rule] of state.entries()) if (r.value > rule.threshold) out.collect(`${rule.name}:${ctx.getCurrentKey()}:${r.value}`);
    },
  };
  readings.keyBy('sensor').connect(rules).process<string>(fn).addSink((s) => seen.push(s));
  const plan = env.getExecutionPlan();
  assert.match(plan, /BROADCAST/);
  await env.execute();
  // a reading processed before the rule reached its subtask saw no rules; every alert is a true one
  const alerts = seen.filter((s) => s.startsWith('hot:'));
  const expected = new Set(Array.from({ length: 300 }, (_, i) => i).filter((i) => i % 100 > 90).map((i) => `hot:s${i % 7}:${i % 100}`));
  const norules = seen.filter((s) => s.startsWith('norules'));
  assert.ok(alerts.every((a) => expected.has(a)));
  assert.ok(norules.length < 300, 'the rule reached the keyed side');
  assert.ok(alerts.length > 0);
});

test('broadcast state is read-only on the keyed side', async () => {
  const d = new MapStateDescriptor<string, number>('m');
  const env = StreamEnvironment.create();
  env
    .fromCollection([{ k: 'a' }])
    .keyBy('k')
    .connect(env.fromCollection([1]).broadcast(d))
    .process<string>({
      processBroadcastElement() {},
      processElement(_v: { k: string }, ctx: ReadOnlyBroadcastContext<string>) {
        (ctx.getBroadcastState(d) as unknown as { put(k: string, v: number): void }).put('x', 1);
      },
    })
    .collect();
  try {
    await env.execute();
    assert.unreachable();
  } catch (e) {
    assert.match(String(e), /read-only|read only/i);
  }
});

test('partitioners route records as documented', async () => {
  const n = 1000;
  const run = async (partition: (s: import('../../src/index.ts').DataStream<number>) => import('../../src/index.ts').DataStream<number>) => {
    const env = StreamEnvironment.create({ parallelism: 4 });
    const per = new Map<number, number[]>();
    partition(env.fromGenerator(n, (i) => i, { parallelism: 2 }))
      .addSink({
        invoke(v, ctx) {
          const l = per.get(ctx.subtaskIndex) ?? [];
          l.push(v);
          per.set(ctx.subtaskIndex, l);
        },
      });
    await env.execute();
    return { per };
  };

  const global = await run((s) => s.global());
  assert.equal([...global.per.keys()], [0]);
  assert.is(global.per.get(0)!.length, n);

  const bcast = await run((s) => s.broadcast());
  assert.is(bcast.per.size, 4);
  for (const l of bcast.per.values()) assert.is(l.length, n);

  const rescale = await run((s) => s.rescale());
  // producer 0 (indices 0..499) feeds subtasks 0 and 1, producer 1 feeds 2 and 3
  assert.ok(rescale.per.get(0)!.every((v) => v < 500) && rescale.per.get(1)!.every((v) => v < 500));
  assert.ok(rescale.per.get(2)!.every((v) => v >= 500) && rescale.per.get(3)!.every((v) => v >= 500));

  const shuffle = await run((s) => s.shuffle());
  assert.is([...shuffle.per.values()].reduce((a, l) => a + l.length, 0), n);
  for (const l of shuffle.per.values()) assert.ok(l.length > 150, `shuffle spread: ${l.length}`);

  const custom = await run((s) => s.partitionCustom((k: number, parts) => k % parts, (v) => v));
  for (const [sub, l] of custom.per) assert.ok(l.every((v) => v % 4 === sub));
});

test('a custom partitioner returning a bad index fails naming the producer and record', async () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  env
    .fromCollection([1, 2, 3], { parallelism: 1 })
    .map((x) => x)
    .name('numbers')
    .setParallelism(1)
    .partitionCustom((k: number) => (k === 3 ? 7 : 0), (v) => v)
    .collect();
  try {
    await env.execute();
    assert.unreachable();
  } catch (e) {
    assert.instance(e, UserFunctionError);
    assert.match(String((e as Error).message), /custom partitioner returned 7/);
    assert.is((e as UserFunctionError).context.operator, 'numbers');
    assert.is((e as UserFunctionError).context.recordIndex, 2);
  }
});

test('explain shows partitioners and second inputs', () => {
  const env = StreamEnvironment.create({ parallelism: 2 });
  env
    .fromCollection([1])
    .rescale()
    .map((x) => x)
    .connect(env.fromCollection(['a']).shuffle())
    .map((x): string | number => x, (y): string | number => y)
    .collect();
  const plan = env.getExecutionPlan();
  assert.match(plan, /RESCALE/);
  assert.match(plan, /SHUFFLE--> \[\d\] \(input 2\)/);
});

test.run();
