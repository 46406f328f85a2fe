// Owns the public stream types: DataStream, SingleOutputStreamOperator, KeyedStream, DataStreamSink and
// CollectHandle. Each method records a transformation and hands off to an operator; nothing runs here.

import { JobDefinitionError } from '../core/errors.ts';
import type { KeySelectorSpec, OperatorFactory } from '../graph/operator.ts';
import type { ChainingStrategy, OperatorTransformation, PartitionSpec, SinkTransformation, Transformation } from '../graph/transformation.ts';
import { FilterOperator, FlatMapOperator, MapOperator } from '../operators/basic.ts';
import {
  KeyedAggregateOperator,
  type RollingAggregate,
  extremeAggregate,
  extremeByAggregate,
  reduceAggregate,
  sumAggregate,
} from '../operators/keyed.ts';
import { CollectOperator, PrintOperator, type SinkContext, type SinkFunction, SinkOperator } from '../operators/sinks.ts';
import type { StreamEnvironment } from './environment.ts';
import type { KeyField, NumericField } from './types.ts';

/** `Kind(fnName)`, or `Kind` for an anonymous function. */
function label(kind: string, fn: { readonly name: string }): string {
  return fn.name ? `${kind}(${fn.name})` : kind;
}

function checkFunction(fn: unknown, what: string): void {
  if (typeof fn !== 'function') throw new JobDefinitionError(`${what} expects a function, got ${typeof fn}`);
}

/**
 * A stream of records of type `T`. Transformations return new streams; nothing runs until
 * `env.execute()`.
 *
 * @example
 * const env = StreamEnvironment.create();
 * const words = env.fromCollection(['a b', 'c']).flatMap((line) => line.split(' '));
 * console.log(await words.executeAndCollect()); // ['a', 'b', 'c']
 */
export class DataStream<T> {
  /** @internal */
  constructor(
    /** The environment this stream belongs to. */
    readonly env: StreamEnvironment,
    /** @internal the transformation producing this stream */
    readonly transformation: Transformation,
  ) {}

  /** @internal */
  protected addOperator<O>(name: string, factory: OperatorFactory, keyed?: KeySelectorSpec): SingleOutputStreamOperator<O> {
    const t: OperatorTransformation = {
      kind: 'operator',
      id: this.env._nextId(),
      name,
      parallelism: undefined,
      chaining: 'always',
      input: this.transformation,
      factory,
      ...(keyed ? { keyed } : {}),
    };
    return new SingleOutputStreamOperator<O>(this.env, t);
  }

  /**
   * Applies `fn` to every record.
   * @example env.fromCollection([{ a: 1 }]).map((r) => ({ b: String(r.a) })) // DataStream<{ b: string }>
   */
  map<O>(fn: (value: T) => O): SingleOutputStreamOperator<O> {
    checkFunction(fn, 'map');
    return this.addOperator(label('Map', fn), () => new MapOperator(fn));
  }

  /**
   * Keeps the records for which `fn` returns true. A type guard narrows the stream's type.
   * @example env.fromCollection([1, 2, 3]).filter((n) => n % 2 === 1) // 1, 3
   */
  filter<S extends T>(fn: (value: T) => value is S): SingleOutputStreamOperator<S>;
  filter(fn: (value: T) => boolean): SingleOutputStreamOperator<T>;
  filter(fn: (value: T) => unknown): SingleOutputStreamOperator<T> {
    checkFunction(fn, 'filter');
    return this.addOperator(label('Filter', fn), () => new FilterOperator(fn));
  }

  /**
   * Emits every element of the iterable (array, generator, set…) `fn` returns for each record.
   * @example env.fromCollection(['a b', 'c']).flatMap((s) => s.split(' ')) // 'a', 'b', 'c'
   */
  flatMap<O>(fn: (value: T) => Iterable<O>): SingleOutputStreamOperator<O> {
    checkFunction(fn, 'flatMap');
    return this.addOperator(label('FlatMap', fn), () => new FlatMapOperator(fn));
  }

  /**
   * Partitions the stream by key: records with equal keys go to the same subtask (key → hash → key
   * group → subtask). Key by a field name or by a selector; keys must be strings, numbers, bigints,
   * booleans, null, Dates, Uint8Arrays or arrays of these (composite keys).
   * @example
   * env.fromCollection(trades).keyBy('symbol').sum('price');
   * env.fromCollection(trades).keyBy((t) => [t.symbol, t.venue]).max('price');
   */
  keyBy<F extends KeyField<T>>(field: F): KeyedStream<T, T[F]>;
  keyBy<K>(selector: (value: T) => K): KeyedStream<T, K>;
  keyBy(key: string | ((value: T) => unknown)): KeyedStream<T, unknown> {
    let spec: KeySelectorSpec;
    if (typeof key === 'string') {
      if (key === '') throw new JobDefinitionError('keyBy field name must not be empty');
      spec = { fn: (r: Record<string, unknown>) => r[key], description: key, field: key };
    } else if (typeof key === 'function') {
      spec = { fn: key, description: key.name || 'key' };
    } else {
      throw new JobDefinitionError(`keyBy expects a field name or a key selector function, got ${typeof key}`);
    }
    return new KeyedStream(this.env, this.partitioned({ kind: 'hash', key: spec }), spec);
  }

  /**
   * Distributes records round-robin over the downstream subtasks (evens out skew).
   * @example env.fromGenerator(1000, (i) => i, { parallelism: 1 }).rebalance().map(heavy).setParallelism(4)
   */
  rebalance(): DataStream<T> {
    return new DataStream<T>(this.env, this.partitioned({ kind: 'rebalance' }));
  }

  /** @internal */
  protected partitioned(partition: PartitionSpec): Transformation {
    return {
      kind: 'partition',
      id: this.env._nextId(),
      name: partition.kind === 'hash' ? `KeyBy(${partition.key.description})` : 'Rebalance',
      parallelism: undefined,
      chaining: 'always',
      input: this.transformation,
      partition,
    };
  }

  /** @internal */
  protected addSinkOperator(name: string, factory: OperatorFactory): SinkTransformation {
    const t: SinkTransformation = {
      kind: 'sink',
      id: this.env._nextId(),
      name,
      parallelism: undefined,
      chaining: 'always',
      input: this.transformation,
      factory,
    };
    return t;
  }

  /**
   * Collects every record into an array, available as `handle.results` once `env.execute()` finished.
   * With parallelism > 1 the order across subtasks is not defined.
   * @example
   * const out = stream.collect();
   * await env.execute();
   * console.log(out.results);
   */
  collect(): CollectHandle<T> {
    const results: T[] = [];
    const t = this.addSinkOperator('Sink: Collect', () => new CollectOperator(results));
    const h = new CollectHandle<T>(this.env, t, results);
    this.env._addSink(t, () => h._complete());
    return h;
  }

  /**
   * Adds a collect sink, executes the environment's job and returns the records.
   * @example const rows = await env.fromCollection([1, 2]).map((n) => n * 10).executeAndCollect(); // [10, 20]
   */
  async executeAndCollect(jobName?: string): Promise<T[]> {
    const h = this.collect();
    await this.env.execute(jobName);
    return h.results;
  }

  /**
   * Prints every record with `console.log` (`prefix:subtask> record` as Flink does).
   * @example stream.print('trade');
   */
  print(prefix?: string): DataStreamSink<T> {
    const t = this.addSinkOperator(prefix ? `Sink: Print(${prefix})` : 'Sink: Print', () => new PrintOperator(prefix));
    this.env._addSink(t);
    return new DataStreamSink<T>(this.env, t);
  }

  /**
   * Sends every record to a sink function or object.
   * @example
   * const seen: number[] = [];
   * env.fromCollection([1, 2, 3]).addSink((n) => seen.push(n));
   */
  addSink(sink: SinkFunction<T> | ((value: T, context: SinkContext) => unknown)): DataStreamSink<T> {
    let fnSink: SinkFunction<T>;
    let name: string;
    if (typeof sink === 'function') {
      fnSink = { invoke: sink };
      name = sink.name ? `Sink: ${sink.name}` : 'Sink: Function';
    } else if (sink && typeof sink === 'object' && typeof sink.invoke === 'function') {
      fnSink = sink;
      name = 'Sink: Function';
    } else {
      throw new JobDefinitionError('addSink expects a function or an object with an invoke(value) method');
    }
    const t = this.addSinkOperator(name, () => new SinkOperator(fnSink));
    this.env._addSink(t);
    return new DataStreamSink<T>(this.env, t);
  }
}

/** Settings shared by operators and sinks: name, parallelism, chaining. */
function configure(env: StreamEnvironment, t: Transformation, what: 'name' | 'parallelism' | 'chaining', v: unknown): void {
  if (what === 'name') {
    if (typeof v !== 'string' || v === '') throw new JobDefinitionError(`name of ${t.name} must be a non-empty string`);
    t.name = v;
  } else if (what === 'parallelism') {
    env._checkParallelism(v as number, t.name);
    t.parallelism = v as number;
  } else t.chaining = v as ChainingStrategy;
}

/**
 * The stream produced by an operator (or source), which can be configured: name, parallelism,
 * chaining.
 *
 * @example
 * env.fromCollection(lines).map(parse).name('parse').setParallelism(4).disableChaining();
 */
export class SingleOutputStreamOperator<T> extends DataStream<T> {
  /** Sets the operator's display name (used by the plan, metrics and errors). */
  name(name: string): this {
    configure(this.env, this.transformation, 'name', name);
    return this;
  }
  /** The operator's display name. */
  getName(): string {
    return this.transformation.name;
  }
  /** Sets how many parallel subtasks run this operator (1 ≤ p ≤ max parallelism). */
  setParallelism(parallelism: number): this {
    configure(this.env, this.transformation, 'parallelism', parallelism);
    return this;
  }
  /** Never chain this operator to its predecessor or successor. */
  disableChaining(): this {
    configure(this.env, this.transformation, 'chaining', 'never');
    return this;
  }
  /** Start a new chain at this operator (successors may still chain to it). */
  startNewChain(): this {
    configure(this.env, this.transformation, 'chaining', 'head');
    return this;
  }
}

/**
 * A stream partitioned by key `K`: keyed aggregates keep one accumulator per key. In streaming mode
 * they emit the updated record for every input; in batch mode only the final record per key.
 * `sum`, `min` and `max` keep the other fields of the key's first record (Flink semantics).
 *
 * @example
 * env.fromCollection([{ k: 'a', n: 1 }, { k: 'a', n: 2 }]).keyBy('k').sum('n');
 * // streaming: { k: 'a', n: 1 }, { k: 'a', n: 3 } — batch: { k: 'a', n: 3 }
 */
export class KeyedStream<T, K> extends DataStream<T> {
  /** @internal phantom for the key type */
  declare readonly __key?: K;
  /** @internal */
  constructor(env: StreamEnvironment, transformation: Transformation, readonly keySelector: KeySelectorSpec) {
    super(env, transformation);
  }

  private aggregate<A>(name: string, agg: RollingAggregate<T, A>): SingleOutputStreamOperator<T> {
    const key = this.keySelector;
    return this.addOperator<T>(name, () => new KeyedAggregateOperator(key, agg), key);
  }

  private checkField(op: string, field: unknown): string {
    if (typeof field !== 'string' || field === '') throw new JobDefinitionError(`${op} expects a field name, got ${String(field)}`);
    return field;
  }

  /**
   * Combines each record with the key's accumulated value: `fn(acc, value)`.
   * @example keyed.reduce((a, b) => ({ ...a, qty: a.qty + b.qty }))
   */
  reduce(fn: (acc: T, value: T) => T): SingleOutputStreamOperator<T> {
    checkFunction(fn, 'reduce');
    return this.aggregate(label('Reduce', fn), reduceAggregate(fn));
  }
  /** Running sum of a numeric field. @example keyed.sum('price') */
  sum(field: NumericField<T>): SingleOutputStreamOperator<T> {
    const f = this.checkField('sum', field);
    return this.aggregate(`Sum(${f})`, sumAggregate<T>(f));
  }
  /** Running minimum of a numeric field (other fields from the first record). @example keyed.min('price') */
  min(field: NumericField<T>): SingleOutputStreamOperator<T> {
    const f = this.checkField('min', field);
    return this.aggregate(`Min(${f})`, extremeAggregate<T>(f, 'min'));
  }
  /** Running maximum of a numeric field (other fields from the first record). @example keyed.max('price') */
  max(field: NumericField<T>): SingleOutputStreamOperator<T> {
    const f = this.checkField('max', field);
    return this.aggregate(`Max(${f})`, extremeAggregate<T>(f, 'max'));
  }
  /** The whole record with the smallest value of a field (first one on ties). @example keyed.minBy('price') */
  minBy(field: NumericField<T>): SingleOutputStreamOperator<T> {
    const f = this.checkField('minBy', field);
    return this.aggregate(`MinBy(${f})`, extremeByAggregate<T>(f, 'min'));
  }
  /** The whole record with the largest value of a field (first one on ties). @example keyed.maxBy('price') */
  maxBy(field: NumericField<T>): SingleOutputStreamOperator<T> {
    const f = this.checkField('maxBy', field);
    return this.aggregate(`MaxBy(${f})`, extremeByAggregate<T>(f, 'max'));
  }
}

/**
 * The end of a stream: a sink. Configure it like an operator.
 * @example stream.print().name('console').setParallelism(1);
 */
export class DataStreamSink<T> {
  /** @internal */
  constructor(
    readonly env: StreamEnvironment,
    /** @internal */
    readonly transformation: SinkTransformation,
  ) {}
  /** @internal phantom for the record type */
  declare readonly __type?: T;
  /** Sets the sink's display name. @example stream.print().name('console') */
  name(name: string): this {
    configure(this.env, this.transformation, 'name', name);
    return this;
  }
  /** Sets the sink's parallelism. @example stream.collect().setParallelism(1) */
  setParallelism(parallelism: number): this {
    configure(this.env, this.transformation, 'parallelism', parallelism);
    return this;
  }
  /** Never chain the sink to its predecessor. @example stream.addSink(fn).disableChaining() */
  disableChaining(): this {
    configure(this.env, this.transformation, 'chaining', 'never');
    return this;
  }
}

/**
 * The handle of a `collect()` sink: its `results` are there once the job has run.
 * @example
 * const h = env.fromCollection([1, 2]).collect();
 * await env.execute();
 * h.results; // [1, 2]
 */
export class CollectHandle<T> extends DataStreamSink<T> {
  private done = false;
  /** @internal */
  constructor(env: StreamEnvironment, transformation: SinkTransformation, private readonly values: T[]) {
    super(env, transformation);
  }
  /** @internal called by the environment when the job finished */
  _complete(): void {
    this.done = true;
  }
  /** Whether the job that ran this sink has finished. */
  get isComplete(): boolean {
    return this.done;
  }
  /** The collected records; throws a JobDefinitionError before the job has finished. */
  get results(): T[] {
    if (!this.done) {
      throw new JobDefinitionError(`collect() results are available after env.execute() has finished`, { operator: this.transformation.name });
    }
    return this.values;
  }
}
