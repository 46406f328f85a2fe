// Type-level tests of the public API: `tsc --noEmit` fails if inference breaks (positive cases via
// Equal<>, negative cases via @ts-expect-error). The runtime part only checks that the job builds.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type DataStream, type KeyedStream, type NumericField, type SingleOutputStreamOperator, StreamEnvironment } from '../../src/index.ts';

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
type ElementOf<S> = S extends DataStream<infer T> ? T : never;
function expectType<T extends true>(_ok?: T): void {}

/** Never called: only type-checked. */
function typeChecks(env: StreamEnvironment): void {

  const mapped = env.fromCollection([{ a: 1 }]).map((r) => ({ b: String(r.a) }));
  expectType<Equal<ElementOf<typeof mapped>, { b: string }>>();
  const asStream: DataStream<{ b: string }> = mapped;

  const src = env.fromCollection([{ sym: 'A', px: 1.5, qty: 2, note: null as string | null, n: 1n }]);
  type Row = { sym: string; px: number; qty: number; note: string | null; n: bigint };
  expectType<Equal<ElementOf<typeof src>, Row>>();

  const keyed = src.keyBy('sym');
  expectType<Equal<typeof keyed, KeyedStream<Row, string>>>();
  const keyedFn = src.keyBy((r) => [r.sym, r.qty] as const);
  expectType<Equal<typeof keyedFn, KeyedStream<Row, readonly [string, number]>>>();

  expectType<Equal<NumericField<Row>, 'px' | 'qty' | 'n'>>();
  const summed = keyed.sum('px');
  expectType<Equal<typeof summed, SingleOutputStreamOperator<Row>>>();
  keyed.min('qty');
  keyed.max('n');
  keyed.reduce((a, b) => ({ ...a, qty: a.qty + b.qty }));

  // @ts-expect-error: 'sym' is a string field, not numeric
  keyed.sum('sym');
  // @ts-expect-error: 'note' is nullable
  keyed.max('note');
  // @ts-expect-error: no such field
  keyed.min('price');
  // @ts-expect-error: no such field to key by
  src.keyBy('price');
  // @ts-expect-error: reduce must return the record type
  keyed.reduce((a) => a.sym);

  const words = env.fromCollection(['a b']).flatMap((s) => s.split(' '));
  expectType<Equal<ElementOf<typeof words>, string>>();
  const gen = env.fromGenerator(3, (i) => ({ i, even: i % 2 === 0 }));
  expectType<Equal<ElementOf<typeof gen>, { i: number; even: boolean }>>();
  const narrowed = env.fromCollection([1, 'x'] as (number | string)[]).filter((x): x is number => typeof x === 'number');
  expectType<Equal<ElementOf<typeof narrowed>, number>>();
  // @ts-expect-error: map's function receives a number, not a string
  gen.map((r: string) => r);

  const collected: Promise<{ b: string }[]> = mapped.executeAndCollect();
  void collected;
  const handle = words.collect();
  // @ts-expect-error: results are strings
  const wrong: number[] = handle.results;
  void wrong;
  void asStream;
}

test('the type checks build a job without running it', () => {
  assert.type(typeChecks, 'function');
  const env = StreamEnvironment.create();
  const s = env.fromCollection([{ a: 1 }]).map((r) => ({ b: String(r.a) }));
  s.collect();
  assert.match(env.getExecutionPlan(), /Source: Collection -> Map -> Sink: Collect/);
});

test.run();
