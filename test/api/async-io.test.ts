// Tests async I/O (AsyncDataStream / AsyncWaitOperator): ordered and unordered output under seeded
// random completion orders, the capacity bound and its backpressure, watermark boundaries, timeouts on
// a manual clock (failure or fallback), rejected calls, the flush at end of input, parallelism 2, and
// the operator's own contract driven by a small harness (mailbox vs. waiting calls, timestamps).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AsyncDataStream,
  AsyncTimeoutError,
  JobDefinitionError,
  ManualClock,
  MIN_WATERMARK,
  SingleOutputStreamOperator,
  StreamEnvironment,
  UserFunctionError,
  type DataStream,
  type OperatorContext,
  type StreamOperator,
} from '../../src/index.ts';
import type { MaybePromise, Output } from '../../src/graph/operator.ts';
import type { OperatorTransformation } from '../../src/graph/transformation.ts';
import { buildExecutionGraph } from '../../src/graph/execution-graph.ts';
import { executeGraph } from '../../src/runtime/executor.ts';
import { AsyncWaitOperator, type AsyncWaitConfig } from '../../src/operators/async-io.ts';
import { Rng } from '../reference/random.ts';

/** Resolves after `n` microtask hops: a deterministic, seeded completion order without timers. */
async function hops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await null;
}

const macrotask = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Adds a hand-made operator to a stream (what the API does for its own operators). */
function withOperator<T, O>(stream: DataStream<T>, name: string, factory: () => StreamOperator<T, O>, chaining: 'always' | 'never' = 'always'): SingleOutputStreamOperator<O> {
  const t: OperatorTransformation = { kind: 'operator', id: stream.env._nextId(), name, parallelism: undefined, chaining, input: stream.transformation, factory };
  return new SingleOutputStreamOperator<O>(stream.env, t);
}

/** Runs the environment's job on a given clock (the executor's option; independent of env settings). */
function runWithClock(env: StreamEnvironment, clock: ManualClock): Promise<unknown> {
  return executeGraph(buildExecutionGraph(env.getJobGraph()), { clock });
}

const SEEDS = [1, 7, 42, 1234];

for (const seed of SEEDS) {
  test(`ordered: output order = input order under random completion (seed ${seed})`, async () => {
    const rng = new Rng(seed);
    const env = StreamEnvironment.create({ batchSize: 16 });
    const input = Array.from({ length: 400 }, (_, i) => i);
    const out = await AsyncDataStream.orderedWait(
      env.fromCollection(input),
      async (x: number) => {
        await hops(rng.int(30));
        // 0, 1 or 2 results per record
        return x % 3 === 0 ? [] : x % 3 === 1 ? [x] : [x, -x];
      },
      { capacity: 1 + rng.int(20) },
    ).executeAndCollect();
    assert.equal(out, input.flatMap((x) => (x % 3 === 0 ? [] : x % 3 === 1 ? [x] : [x, -x])));
  });

  test(`unordered: output is a permutation of the input (seed ${seed})`, async () => {
    const rng = new Rng(seed);
    const env = StreamEnvironment.create({ batchSize: 16 });
    const input = Array.from({ length: 400 }, (_, i) => i);
    const out = await AsyncDataStream.unorderedWait(
      env.fromCollection(input),
      async (x: number) => {
        await hops(rng.int(30));
        return [x * 2];
      },
      { capacity: 20 },
    ).executeAndCollect();
    assert.is(out.length, input.length);
    assert.equal([...out].sort((a, b) => a - b), input.map((x) => x * 2));
    assert.not.equal(out, input.map((x) => x * 2), 'random completions reorder the output');
  });
}

test('capacity: never more calls in flight than capacity, and the bound is reached', async () => {
  for (const mode of ['ordered', 'unordered'] as const) {
    for (const capacity of [1, 3, 17]) {
      const rng = new Rng(capacity);
      let inFlight = 0;
      let maxInFlight = 0;
      const env = StreamEnvironment.create({ batchSize: 64 });
      const fn = async (x: number): Promise<number[]> => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await hops(1 + rng.int(10));
        inFlight--;
        return [x];
      };
      const src = env.fromGenerator(300, (i) => i);
      const s = mode === 'ordered' ? AsyncDataStream.orderedWait(src, fn, { capacity }) : AsyncDataStream.unorderedWait(src, fn, { capacity });
      const out = await s.executeAndCollect();
      assert.is(out.length, 300, `${mode} ${capacity}`);
      assert.ok(maxInFlight <= capacity, `${mode}: ${maxInFlight} calls in flight > capacity ${capacity}`);
      assert.is(maxInFlight, capacity, `${mode}: the bound is reached`);
    }
  }
});

/** Stamps each record with its own value as timestamp and emits watermark k after every 10th record k. */
class StampAndMark implements StreamOperator<number, number> {
  readonly forwardsWatermarks = false;
  processBatch(batch: readonly number[], out: Output<number>): void {
    for (const x of batch) {
      out.push(x, x);
      if (x % 10 === 9) out.pushWatermark(x);
    }
  }
}

/** Passes records on and logs records and watermarks in the order they arrive. */
class Observe implements StreamOperator<number, number> {
  constructor(private readonly log: (number | string)[], private readonly stamps: number[]) {}
  processBatch(batch: readonly number[], out: Output<number>, _first: number, timestamps: readonly number[] | undefined): void {
    batch.forEach((x, i) => {
      this.log.push(x);
      this.stamps.push(timestamps ? timestamps[i]! : NaN);
      out.push(x);
    });
  }
  processWatermark(wm: number): void {
    this.log.push(`wm ${wm}`);
  }
}

for (const chaining of ['always', 'never'] as const) {
  test(`unordered: records are reordered only between watermarks; results keep their timestamps (chaining ${chaining})`, async () => {
    const rng = new Rng(99);
    const env = StreamEnvironment.create({ batchSize: 7 });
    const log: (number | string)[] = [];
    const stamps: number[] = [];
    const stamped = withOperator<number, number>(env.fromGenerator(200, (i) => i), 'StampAndMark', () => new StampAndMark());
    const asyncOut = AsyncDataStream.unorderedWait(
      stamped,
      async (x: number) => {
        await hops(rng.int(40));
        return [x];
      },
      { capacity: 25 },
    );
    if (chaining === 'never') asyncOut.disableChaining();
    const observed = withOperator<number, number>(asyncOut, 'Observe', () => new Observe(log, stamps), chaining);
    observed.addSink(() => undefined);
    await env.execute();

    const records = log.filter((x): x is number => typeof x === 'number');
    assert.equal([...records].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i));
    assert.not.equal(records, Array.from({ length: 200 }, (_, i) => i), 'some reordering happened');
    // every record carries its input's timestamp (= its value)
    records.forEach((x, i) => assert.is(stamps[i], x));
    // watermark W follows every record ≤ W and precedes every record > W
    let seenMax = -1;
    let watermarks = 0;
    const seen = new Set<number>();
    for (const e of log) {
      if (typeof e === 'number') {
        seen.add(e);
        seenMax = Math.max(seenMax, e);
        continue;
      }
      const w = Number(e.slice(3));
      if (w > 1e9) continue; // the end-of-input watermark
      watermarks++;
      for (let k = 0; k <= w; k++) assert.ok(seen.has(k), `record ${k} before ${e}`);
      assert.ok(seenMax <= w, `no record after ${e} came before it (saw ${seenMax})`);
    }
    assert.is(watermarks, 20);
  });
}

test('ordered: watermarks stay in place too', async () => {
  const rng = new Rng(5);
  const env = StreamEnvironment.create({ batchSize: 5 });
  const log: (number | string)[] = [];
  const stamped = withOperator<number, number>(env.fromGenerator(100, (i) => i), 'StampAndMark', () => new StampAndMark());
  const asyncOut = AsyncDataStream.orderedWait(stamped, async (x: number) => (await hops(rng.int(20)), [x]), { capacity: 8 });
  withOperator<number, number>(asyncOut, 'Observe', () => new Observe(log, [])).addSink(() => undefined);
  await env.execute();
  const expected: (number | string)[] = [];
  for (let i = 0; i < 100; i++) {
    expected.push(i);
    if (i % 10 === 9) expected.push(`wm ${i}`);
  }
  assert.equal(log.filter((e) => typeof e === 'number' || !e.startsWith('wm 9007')), expected);
});

test('timeout on the job clock: AsyncTimeoutError naming the operator and the record', async () => {
  const clock = new ManualClock(1_000);
  const env = StreamEnvironment.create();
  const reached = deferred<void>();
  const out: number[] = [];
  AsyncDataStream.orderedWait(
    env.fromCollection([0, 1, 2, 3, 4]),
    function lookup(x: number): Promise<number[]> {
      if (x !== 3) return Promise.resolve([x]);
      reached.resolve();
      return new Promise(() => undefined); // never answers
    },
    { timeoutMs: 500 },
  ).addSink((x) => void out.push(x));
  const job = runWithClock(env, clock);
  let settled = false;
  job.then(
    () => (settled = true),
    () => (settled = true),
  );
  await reached.promise;
  clock.advance(499);
  for (let i = 0; i < 5; i++) await macrotask();
  assert.not.ok(settled, 'not yet due: the job keeps waiting for record 3');
  clock.advance(1);
  try {
    await job;
    assert.unreachable('the job must fail');
  } catch (e) {
    assert.instance(e, AsyncTimeoutError);
    const err = e as AsyncTimeoutError;
    assert.is(err.context.operator, 'AsyncWait(lookup)');
    assert.is(err.context.recordIndex, 3);
    assert.is(err.timeoutMs, 500);
    assert.is(err.domain, 'external');
    assert.match(err.message, /timed out after 500 ms for record 3/);
    assert.match(err.message, /operator AsyncWait\(lookup\)/);
  }
  assert.ok(!out.includes(3) && !out.includes(4), 'ordered: neither the stuck head nor what follows it was emitted');
});

test('timeout with a fallback: the timeout handler supplies the results; the late answer is ignored', async () => {
  const clock = new ManualClock(0);
  const env = StreamEnvironment.create();
  const late = deferred<string[]>();
  const reached = deferred<void>();
  const out: string[] = [];
  AsyncDataStream.orderedWait(
    env.fromCollection(['a', 'slow', 'b']),
    {
      asyncInvoke(x: string): Promise<string[]> {
        if (x !== 'slow') return Promise.resolve([x.toUpperCase()]);
        reached.resolve();
        return late.promise;
      },
      timeout: (x: string) => [`${x}: timed out`],
    },
    { timeoutMs: 100 },
  ).addSink((x) => void out.push(x));
  const job = runWithClock(env, clock);
  await reached.promise;
  await macrotask(); // the answers that came at once ('a', 'b') are in before the clock moves
  clock.advance(100);
  await job;
  late.resolve(['too late']);
  await macrotask();
  assert.equal(out, ['A', 'slow: timed out', 'B']);
});

test('timeouts are cancelled when calls answer in time (no clock callbacks left)', async () => {
  const clock = new ManualClock(0);
  const env = StreamEnvironment.create({ batchSize: 8 });
  const out: number[] = [];
  AsyncDataStream.unorderedWait(env.fromGenerator(50, (i) => i), async (x: number) => (await hops(x % 5), [x]), { timeoutMs: 10 }).addSink(
    (x) => void out.push(x),
  );
  await runWithClock(env, clock);
  assert.is(out.length, 50);
  assert.is(clock.pendingCount, 0);
});

test('a rejected call fails the job with a UserFunctionError naming the operator and the record', async () => {
  for (const mode of ['ordered', 'unordered'] as const) {
    const env = StreamEnvironment.create({ batchSize: 4 });
    const fn = async function enrich(x: number): Promise<number[]> {
      await hops(x % 3);
      if (x === 13) throw new Error('service said no');
      return [x];
    };
    const src = env.fromGenerator(40, (i) => i);
    const s = mode === 'ordered' ? AsyncDataStream.orderedWait(src, fn) : AsyncDataStream.unorderedWait(src, fn);
    try {
      await s.executeAndCollect();
      assert.unreachable('the job must fail');
    } catch (e) {
      assert.instance(e, UserFunctionError, mode);
      const err = e as UserFunctionError;
      assert.is(err.context.operator, 'AsyncWait(enrich)');
      assert.is(err.context.recordIndex, 13);
      assert.match(err.message, /service said no/);
      assert.match(err.message, /record 13/);
    }
  }
});

test('a synchronous throw or a non-iterable answer is a failure naming the record', async () => {
  const env = StreamEnvironment.create();
  try {
    await AsyncDataStream.unorderedWait(env.fromCollection([1, 2, 3]), (x: number) => {
      if (x === 2) throw new Error('boom');
      return Promise.resolve([x]);
    }).executeAndCollect();
    assert.unreachable();
  } catch (e) {
    assert.instance(e, UserFunctionError);
    assert.is((e as UserFunctionError).context.recordIndex, 1);
  }
  const env2 = StreamEnvironment.create();
  try {
    // a string is iterable, but emitting its characters is never what was meant
    await AsyncDataStream.orderedWait(env2.fromCollection([1, 2]), async (x: number) => (x === 2 ? ('two' as unknown as string[]) : [String(x)])).executeAndCollect();
    assert.unreachable();
  } catch (e) {
    assert.instance(e, UserFunctionError);
    assert.is((e as UserFunctionError).context.recordIndex, 1);
    assert.match((e as Error).message, /iterable of results.*a string/);
  }
});

test('end of input waits for every call and emits everything (calls answered on later macrotasks)', async () => {
  for (const mode of ['ordered', 'unordered'] as const) {
    const env = StreamEnvironment.create();
    const input = Array.from({ length: 60 }, (_, i) => i);
    const fn = (x: number): Promise<number[]> => new Promise((resolve) => setTimeout(() => resolve([x + 1000]), x % 4));
    const src = env.fromCollection(input);
    const s = mode === 'ordered' ? AsyncDataStream.orderedWait(src, fn, { capacity: 100 }) : AsyncDataStream.unorderedWait(src, fn, { capacity: 100 });
    const out = await s.executeAndCollect();
    const expected = input.map((x) => x + 1000);
    if (mode === 'ordered') assert.equal(out, expected);
    else assert.equal([...out].sort((a, b) => a - b), expected);
  }
});

test('parallelism 2: each subtask keeps its slice in order; iterables and class-based functions work', async () => {
  class Lookup {
    calls = 0;
    async asyncInvoke(x: number): Promise<Iterable<number>> {
      this.calls++;
      await hops((x * 7) % 11);
      return new Set([x]);
    }
  }
  const fn = new Lookup();
  const env = StreamEnvironment.create({ parallelism: 2, batchSize: 8 });
  const input = Array.from({ length: 200 }, (_, i) => i);
  const s = AsyncDataStream.orderedWait(env.fromCollection(input), fn, { capacity: 5 });
  assert.is(s.getName(), 'AsyncWait(Lookup)');
  const out = await s.executeAndCollect();
  assert.is(fn.calls, 200);
  assert.equal([...out].sort((a, b) => a - b), input);
  // fromCollection splits into contiguous slices, one per subtask
  assert.equal(out.filter((x) => x < 100), input.slice(0, 100));
  assert.equal(out.filter((x) => x >= 100), input.slice(100));
});

const isDefinitionError = (e: unknown): boolean => e instanceof JobDefinitionError;

test('invalid options and functions are JobDefinitionErrors', () => {
  const env = StreamEnvironment.create();
  const src = env.fromCollection([1]);
  const ok = async (x: number): Promise<number[]> => [x];
  assert.throws(() => AsyncDataStream.orderedWait(src, ok, { capacity: 0 }), (e: unknown) => e instanceof JobDefinitionError && /capacity/.test((e as Error).message));
  assert.throws(() => AsyncDataStream.orderedWait(src, ok, { capacity: 1.5 }), isDefinitionError);
  assert.throws(() => AsyncDataStream.unorderedWait(src, ok, { timeoutMs: 0 }), (e: unknown) => e instanceof JobDefinitionError && /timeoutMs/.test((e as Error).message));
  assert.throws(() => AsyncDataStream.unorderedWait(src, ok, { timeoutMs: NaN }), isDefinitionError);
  assert.throws(() => AsyncDataStream.orderedWait(src, {} as never), isDefinitionError);
  assert.is(AsyncDataStream.orderedWait(src, ok).getName(), 'AsyncWait(ok)');
  assert.is(AsyncDataStream.orderedWait(src, { asyncInvoke: ok }).getName(), 'AsyncWait');
});

// ---- the operator's contract, driven directly ----

interface Harness {
  op: AsyncWaitOperator<string, string>;
  clock: ManualClock;
  /** What the operator emitted, `value@timestamp` (no timestamp: just the value). */
  emitted: string[];
  out: Output<string>;
  /** Runs the pending mailbox actions. */
  runMail(): void;
  mailCount(): number;
  tracked: Promise<unknown>[];
}

function harness(config: Partial<AsyncWaitConfig>, fn: (x: string) => Promise<string[]>): Harness {
  const clock = new ManualClock(0);
  const emitted: string[] = [];
  const out: Output<string> = {
    push: (r, t) => void emitted.push(t === undefined ? r : `${r}@${t}`),
    pushSide: () => assert.unreachable('no side output'),
    pushWatermark: () => assert.unreachable('watermarks are forwarded by the runtime'),
    pushStatus: () => assert.unreachable('status is forwarded by the runtime'),
  };
  const mail: ((o: Output<string>) => MaybePromise)[] = [];
  const tracked: Promise<unknown>[] = [];
  const ctx: OperatorContext = {
    operatorName: 'AsyncWait(test)',
    operatorId: 1,
    subtaskIndex: 0,
    parallelism: 1,
    maxParallelism: 128,
    runtimeMode: 'streaming',
    clock,
    currentWatermark: MIN_WATERMARK,
    getKeyedState: () => {
      throw new Error('no keyed state');
    },
    mailbox: (a) => void mail.push(a),
    scheduleAt: () => {
      throw new Error('timeouts use the clock directly');
    },
    track: (p) => void tracked.push(p),
  };
  const op = new AsyncWaitOperator<string, string>(fn, { mode: 'ordered', capacity: 10, timeoutMs: Infinity, ...config });
  op.open(ctx);
  return {
    op,
    clock,
    emitted,
    out,
    tracked,
    runMail: () => {
      for (const a of mail.splice(0)) assert.is(a(out), undefined);
    },
    mailCount: () => mail.length,
  };
}

/** Lets pending promise reactions run. */
const settle = async (): Promise<void> => {
  await macrotask();
};

/** A function whose calls the test answers by hand. */
function manual(): { fn: (x: string) => Promise<string[]>; calls: string[]; answer(x: string, r?: string[]): void; fail(x: string, e: unknown): void } {
  const pending = new Map<string, Deferred<string[]>>();
  const calls: string[] = [];
  return {
    calls,
    fn: (x) => {
      calls.push(x);
      const d = deferred<string[]>();
      pending.set(x, d);
      return d.promise;
    },
    answer: (x, r = [x.toUpperCase()]) => pending.get(x)!.resolve(r),
    fail: (x, e) => pending.get(x)!.reject(e),
  };
}

test('operator: a full queue makes processBatch wait (backpressure); ordered frees a slot only at the head', async () => {
  const m = manual();
  const h = harness({ mode: 'ordered', capacity: 2 }, m.fn);
  const r = h.op.processBatch(['a', 'b', 'c', 'd'], h.out, 0, undefined);
  assert.ok(r instanceof Promise, 'capacity 2 < 4 records: the call waits');
  let done = false;
  void r!.then(() => (done = true));
  assert.equal(m.calls, ['a', 'b']);
  m.answer('b');
  await settle();
  assert.equal(m.calls, ['a', 'b'], 'b is done but a (the head) is not: no slot');
  assert.equal(h.emitted, []);
  m.answer('a');
  await settle();
  assert.equal(m.calls, ['a', 'b', 'c', 'd']);
  assert.ok(done, 'all four submitted');
  assert.equal(h.emitted, ['A', 'B'], 'emitted into the waiting call output');
  assert.is(h.mailCount(), 0, 'nothing went through the mailbox while the call waited');
  m.answer('d');
  m.answer('c');
  await settle();
  assert.is(h.mailCount(), 1, 'idle: completions post one mailbox drain');
  h.runMail();
  assert.equal(h.emitted, ['A', 'B', 'C', 'D']);
  assert.is(h.op.endInput(h.out), undefined, 'nothing left: endInput answers at once');
  h.runMail();
  assert.equal(h.emitted, ['A', 'B', 'C', 'D'], 'never emitted twice');
});

test('operator: unordered emits in completion order, holds a watermark until everything before it is out', async () => {
  const m = manual();
  const h = harness({ mode: 'unordered', capacity: 10 }, m.fn);
  assert.is(h.op.processBatch(['a', 'b', 'c'], h.out, 0, [10, 20, 30]), undefined);
  m.answer('c');
  m.answer('a');
  await settle();
  h.runMail();
  assert.equal(h.emitted, ['C@30', 'A@10'], 'completion order, input timestamps kept');
  const w = h.op.processWatermark!(25, h.out);
  assert.ok(w instanceof Promise, 'b is still in flight: the watermark waits');
  let passed = false;
  void w!.then(() => (passed = true));
  await settle();
  assert.not.ok(passed);
  m.answer('b');
  await settle();
  assert.ok(passed);
  assert.equal(h.emitted, ['C@30', 'A@10', 'B@20']);
  assert.is(h.op.processWatermark!(26, h.out), undefined, 'nothing in flight: no wait');
  assert.is(h.mailCount(), 0);
});

test('operator: timeout fires on the clock even while a call waits for a slot; the late answer is ignored', async () => {
  const m = manual();
  const h = harness({ mode: 'ordered', capacity: 1, timeoutMs: 50 }, m.fn);
  const r = h.op.processBatch(['a', 'b'], h.out, 7, undefined);
  assert.ok(r instanceof Promise);
  h.clock.advance(50);
  try {
    await r;
    assert.unreachable();
  } catch (e) {
    assert.instance(e, AsyncTimeoutError);
    assert.is((e as AsyncTimeoutError).context.recordIndex, 7);
    assert.is((e as AsyncTimeoutError).context.operator, 'AsyncWait(test)');
  }
  m.answer('a');
  await settle();
  assert.equal(h.emitted, []);
  h.op.close();
  assert.is(h.clock.pendingCount, 0);
  await Promise.all(h.tracked); // settled: the executor is not left waiting
});

test('operator: a rejection while idle fails through the mailbox; later calls fail with it too', async () => {
  const m = manual();
  const h = harness({ mode: 'unordered' }, m.fn);
  h.op.processBatch(['a', 'b'], h.out, 100, undefined);
  m.fail('b', new Error('nope'));
  await settle();
  assert.is(h.mailCount(), 1);
  assert.throws(() => h.runMail(), (e: unknown) => e instanceof UserFunctionError && e.context.recordIndex === 101 && /nope/.test(e.message));
  assert.throws(() => h.op.processBatch(['c'], h.out, 102, undefined), (e: unknown) => e instanceof UserFunctionError);
  assert.equal(m.calls, ['a', 'b'], 'a failed operator starts no more calls');
});

test.run();
