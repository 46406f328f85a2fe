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
import { ProcessOperator } from '../operators/process.ts';
import { TimestampsAndWatermarksOperator } from '../operators/timestamps.ts';
import { KeyCheckOperator } from '../operators/key-check.ts';
import type { MapStateDescriptor } from '../state/descriptors.ts';
import { BroadcastStream, ConnectedStreams, BroadcastConnectedStream } from './connected.ts';
import type { KeyByOptions, KeyedProcessFunction, OutputTag, ProcessFunction } from './functions.ts';
import type { WatermarkStrategy } from './watermarks.ts';
import type { StreamEnvironment } from './environment.ts';
import type { KeyField, NumericField } from './types.ts';
import type { Fields, InferRow, Schema } from '../core/schema.ts';
import {
  distinctStream,
  groupStream,
  joinBuilder,
  sortPartitionStream,
  topNStream,
  withSchemaOf,
  type AggregateSpec,
  type AggregateValue,
  type GroupedStream,
  type JoinBuilder,
  type JoinHints,
  type SortKey,
} from './batch.ts';

/** `Kind(fnName)`, or `Kind` for an anonymous function. */
function label(kind: string, fn: { readonly name: string }): string {
  return fn.name ? `${kind}(${fn.name})` : kind;
}

/** @internal `Kind(ClassName)` for a class instance, `Kind` for an object literal. */
export function objectLabel(kind: string, fn: object): string {
  const ctor = (Object.getPrototypeOf(fn) as { constructor?: { name?: string } } | null)?.constructor;
  return ctor && ctor !== Object && ctor.name ? `${kind}(${ctor.name})` : kind;
}

function checkFunction(fn: unknown, what: string): void {
  if (typeof fn !== 'function') throw new JobDefinitionError(`${what} expects a function, got ${typeof fn}`);
}

/** @internal Checks that a process function object has the methods it needs. */
export function checkProcessFunction(fn: unknown, methods: readonly string[], what: string): void {
  if (fn === null || typeof fn !== 'object') throw new JobDefinitionError(`${what} expects a function object with ${methods.join(', ')}, got ${typeof fn}`);
  for (const m of methods) {
    if (typeof (fn as Record<string, unknown>)[m] !== 'function') throw new JobDefinitionError(`${what}: the function object has no ${m}(value, ctx, out) method`);
  }
}

/** @internal A key given as a field name or a selector function. */
export function keySpec(key: unknown): KeySelectorSpec {
  if (typeof key === 'string') {
    if (key === '') throw new JobDefinitionError('keyBy field name must not be empty');
    return { fn: (r: Record<string, unknown>) => r[key], description: key, field: key };
  }
  if (typeof key === 'function') return { fn: key as (r: unknown) => unknown, description: key.name || 'key' };
  throw new JobDefinitionError(`keyBy expects a field name or a key selector function, got ${typeof key}`);
}

/** @internal Records an operator transformation and returns its stream. */
export function addOperatorTo<O>(
  env: StreamEnvironment,
  name: string,
  factory: OperatorFactory,
  inputs: { input: Transformation; input2?: Transformation; keyed?: KeySelectorSpec; keyed2?: KeySelectorSpec },
): SingleOutputStreamOperator<O> {
  const t: OperatorTransformation = { kind: 'operator', id: env._nextId(), name, parallelism: undefined, chaining: 'always', factory, ...inputs };
  return new SingleOutputStreamOperator<O>(env, t);
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
    return addOperatorTo<O>(this.env, name, factory, { input: this.transformation, ...(keyed ? { keyed } : {}) });
  }

  /**
   * Assigns event timestamps and generates watermarks with a strategy (Flink semantics: the
   * operator's watermarks replace upstream ones; idleness and periodic emission run on the job clock).
   * Records whose timestamp cannot be assigned fail the job, are dropped, or go to a side output, by
   * the strategy's `withInvalidTimestamps` policy.
   *
   * @example
   * const bids = env.fromCollection(raw).assignTimestampsAndWatermarks(
   *   WatermarkStrategy.forBoundedOutOfOrderness<Bid>(5_000).withTimestampAssigner((b) => b.time),
   * );
   */
  assignTimestampsAndWatermarks(strategy: WatermarkStrategy<T>): SingleOutputStreamOperator<T> {
    if (strategy == null || typeof (strategy as WatermarkStrategy<T>).createWatermarker !== 'function') {
      throw new JobDefinitionError('assignTimestampsAndWatermarks expects a WatermarkStrategy');
    }
    const tag = strategy.invalidTimestampTag;
    return this.addOperator<T>('Timestamps/Watermarks', () => new TimestampsAndWatermarksOperator<T>(strategy, tag));
  }

  /**
   * Runs a {@link ProcessFunction} on every record: emit any number of records, read the record's
   * timestamp, write side outputs. (Keyed state and timers need `keyBy(...).process(...)`.)
   * @example
   * const errors = new OutputTag<string>('errors');
   * const parsed = lines.process<Row>({
   *   processElement(line, ctx, out) { try { out.collect(parse(line)); } catch { ctx.output(errors, line); } },
   * });
   * parsed.getSideOutput(errors).print('bad');
   */
  process<O>(fn: ProcessFunction<T, O>): SingleOutputStreamOperator<O> {
    checkProcessFunction(fn, ['processElement'], 'process');
    return this.addOperator<O>(objectLabel('Process', fn), () => new ProcessOperator({ shape: 'one', fn }));
  }

  /**
   * One stream of the records of this and the other streams (same type), without ordering between them.
   * @example const all = eu.union(us, apac);
   */
  union(...others: DataStream<T>[]): DataStream<T> {
    for (const o of others) {
      if (!(o instanceof DataStream) || o.env !== this.env) throw new JobDefinitionError('union expects streams of the same environment');
    }
    return new DataStream<T>(this.env, { kind: 'union', id: this.env._nextId(), name: 'Union', parallelism: undefined, chaining: 'always', inputs: [this.transformation, ...others.map((o) => o.transformation)] });
  }

  /**
   * Connects two streams of possibly different types for a two-input function (`process`, `map`,
   * `flatMap`); with a broadcast stream, the broadcast state pattern.
   * @example orders.connect(rates).map((o) => ({ order: o }), (r) => ({ rate: r }));
   */
  connect<U>(other: BroadcastStream<U>): BroadcastConnectedStream<T, U>;
  connect<U>(other: DataStream<U>): ConnectedStreams<T, U>;
  connect<U>(other: DataStream<U> | BroadcastStream<U>): ConnectedStreams<T, U> | BroadcastConnectedStream<T, U> {
    if (other instanceof BroadcastStream) {
      if (other.env !== this.env) throw new JobDefinitionError('connect expects a stream of the same environment');
      return new BroadcastConnectedStream<T, U>(this.env, this, other);
    }
    if (!(other instanceof DataStream) || other.env !== this.env) throw new JobDefinitionError('connect expects a stream of the same environment');
    return new ConnectedStreams<T, U>(this.env, this, other);
  }

  /**
   * Without arguments: every record goes to every downstream subtask. With map state descriptors: a
   * broadcast stream for the broadcast state pattern (`keyed.connect(rules.broadcast(desc))`).
   * @example const rules = ruleStream.broadcast(new MapStateDescriptor<string, Rule>('rules'));
   */
  broadcast(): DataStream<T>;
  broadcast(...descriptors: MapStateDescriptor<any, any>[]): BroadcastStream<T>;
  broadcast(...descriptors: MapStateDescriptor<any, any>[]): DataStream<T> | BroadcastStream<T> {
    const t = this.partitioned({ kind: 'broadcast' });
    if (descriptors.length === 0) return new DataStream<T>(this.env, t);
    return new BroadcastStream<T>(this.env, t, descriptors);
  }

  /**
   * Round-robin over a local subset of downstream subtasks (fewer channels than rebalance: producer i
   * feeds only "its" consumers).
   * @example env.fromSource(src, 'events', { parallelism: 2 }).rescale().map(f).setParallelism(4)
   */
  rescale(): DataStream<T> {
    return new DataStream<T>(this.env, this.partitioned({ kind: 'rescale' }));
  }

  /** Each record to a uniformly random downstream subtask. @example stream.shuffle().map(f) */
  shuffle(): DataStream<T> {
    return new DataStream<T>(this.env, this.partitioned({ kind: 'shuffle' }));
  }

  /** Every record to the first downstream subtask. @example stream.global().map(f) */
  global(): DataStream<T> {
    return new DataStream<T>(this.env, this.partitioned({ kind: 'global' }));
  }

  /** Subtask i to subtask i (the default between operators of equal parallelism). @example stream.forward().map(f) */
  forward(): DataStream<T> {
    return new DataStream<T>(this.env, this.partitioned({ kind: 'forward' }));
  }

  /**
   * Picks the downstream subtask of each record with `partitioner(key, numPartitions)`.
   * @example stream.partitionCustom((k: string, n) => k.length % n, (r) => r.name)
   */
  partitionCustom<K>(partitioner: (key: K, numPartitions: number) => number, key: ((value: T) => K) | string): DataStream<T> {
    checkFunction(partitioner, 'partitionCustom');
    const spec = keySpec(key);
    return new DataStream<T>(this.env, this.partitioned({ kind: 'custom', key: spec, partitioner, description: partitioner.name || 'partitioner' }));
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
   * booleans, null, undefined, Dates, Uint8Arrays or arrays of these (composite keys). A record whose
   * key cannot be used (no such field, the selector threw, an unhashable key) fails the job by default;
   * `{ invalidKeys: 'drop' }` skips it and `{ invalidKeys: tag }` sends it, wrapped in an
   * `InvalidKeyError`, to the keyed stream's side output `tag` (see {@link KeyByOptions}).
   * @example
   * env.fromCollection(trades).keyBy('symbol').sum('price');
   * env.fromCollection(trades).keyBy((t) => [t.symbol, t.venue]).max('price');
   * const badKeys = new OutputTag<InvalidKeyError<Trade>>('bad-keys');
   * const bySymbol = env.fromCollection(trades).keyBy((t) => t.symbol, { invalidKeys: badKeys });
   * bySymbol.getSideOutput(badKeys).print('unroutable');
   */
  keyBy<F extends KeyField<T>>(field: F, options?: KeyByOptions<T>): KeyedStream<T, T[F]>;
  keyBy<K>(selector: (value: T) => K, options?: KeyByOptions<T>): KeyedStream<T, K>;
  keyBy(key: string | ((value: T) => unknown), options?: KeyByOptions<T>): KeyedStream<T, unknown> {
    const spec = keySpec(key);
    const policy = invalidKeysPolicy(options);
    if (policy === 'fail') return new KeyedStream(this.env, this.partitioned({ kind: 'hash', key: spec }), spec);
    // A check chained before the exchange sets bad records aside, so the record writer never sees them.
    const tag = policy === 'drop' ? undefined : policy;
    const checks = keyChecks(this.env, this.transformation, spec, `KeyBy(${spec.description})`, tag);
    const checked = checks.length === 1 ? checks[0]! : unionOf(this.env, checks);
    const partition = new DataStream<T>(this.env, checked).partitioned({ kind: 'hash', key: spec });
    return new KeyedStream(this.env, partition, spec, tag === undefined ? undefined : { tag, checks });
  }

  /**
   * Distributes records round-robin over the downstream subtasks (evens out skew).
   * @example env.fromGenerator(1000, (i) => i, { parallelism: 1 }).rebalance().map(heavy).setParallelism(4)
   */
  rebalance(): DataStream<T> {
    return new DataStream<T>(this.env, this.partitioned({ kind: 'rebalance' }));
  }

  /** @internal */
  partitioned(partition: PartitionSpec): Transformation {
    return {
      kind: 'partition',
      id: this.env._nextId(),
      name: partition.kind === 'hash' ? `KeyBy(${partition.key.description})` : partition.kind[0]!.toUpperCase() + partition.kind.slice(1),
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
    this.env._addSink(t, () => h._complete(), results as unknown[]);
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

  // ── batch API (batch mode; the logic lives in ./batch.ts) ──────────────────────────────────

  /**
   * Declares the schema of the records: batch operators (join, groupBy, distinct, sortPartition, topN)
   * encode records into binary rows with it. File sources (`readCsv`, `readNdjson`) have one already.
   * @example env.fromCollection(rows).withSchema(schema({ id: t.i64(), name: t.string() })).join(other)
   */
  withSchema<F extends Fields>(schema: Schema<F>): DataStream<InferRow<F>> {
    return withSchemaOf(this, schema);
  }

  /**
   * Inner join with `other` on key fields: `where(...leftKeys).equalTo(...rightKeys)`, optionally
   * `.with((l, r) => out)`. The optimizer picks broadcast or repartition, hybrid hash or sort-merge,
   * and the build side (`explain()` shows them); `hints` override it. Batch mode; both inputs need a schema.
   * @example orders.join(users).where('user').equalTo('id').with((o, u) => ({ order: o.id, name: u.name }))
   */
  join<R>(other: DataStream<R>, hints?: JoinHints): JoinBuilder<T, R, 'inner'> {
    return joinBuilder(this, other, 'inner', hints);
  }
  /** Left outer join: every left record, `null` (or null fields) where it has no partner. @example a.leftOuterJoin(b).where('k').equalTo('k') */
  leftOuterJoin<R>(other: DataStream<R>, hints?: JoinHints): JoinBuilder<T, R, 'left'> {
    return joinBuilder(this, other, 'left', hints);
  }
  /** Right outer join: every right record. @example a.rightOuterJoin(b).where('k').equalTo('k') */
  rightOuterJoin<R>(other: DataStream<R>, hints?: JoinHints): JoinBuilder<T, R, 'right'> {
    return joinBuilder(this, other, 'right', hints);
  }
  /** Full outer join: every record of both inputs. @example a.fullOuterJoin(b).where('k').equalTo('k').with((l, r) => l ?? r) */
  fullOuterJoin<R>(other: DataStream<R>, hints?: JoinHints): JoinBuilder<T, R, 'full'> {
    return joinBuilder(this, other, 'full', hints);
  }
  /** The records of this stream that have a partner in `other` (each once). @example users.semiJoin(orders).where('id').equalTo('user') */
  semiJoin<R>(other: DataStream<R>, hints?: JoinHints): JoinBuilder<T, R, 'semi'> {
    return joinBuilder(this, other, 'semi', hints);
  }
  /** The records of this stream without a partner in `other`. @example users.antiJoin(orders).where('id').equalTo('user') */
  antiJoin<R>(other: DataStream<R>, hints?: JoinHints): JoinBuilder<T, R, 'anti'> {
    return joinBuilder(this, other, 'anti', hints);
  }

  /**
   * Groups by fields for a batch aggregation (`.aggregate({...})`); no fields: one group.
   * @example trades.groupBy('sym').aggregate({ total: sum('qty'), n: count(), mean: avg('px') })
   */
  groupBy<K extends KeyField<T>>(...fields: K[]): GroupedStream<T, K> {
    return groupStream<T, K>(this, fields);
  }

  /** Every distinct record once (batch mode). @example env.readCsv(path, { schema: s }).distinct() */
  distinct(): SingleOutputStreamOperator<T> {
    return distinctStream(this);
  }

  /**
   * Sorts each parallel partition by the key(s) (at the input's parallelism; at parallelism 1 the whole
   * stream). Nulls last unless a key says `nulls: 'first'`. Batch mode.
   * @example stream.sortPartition('price', 'desc'); stream.sortPartition([{ field: 'day' }, { field: 'px', order: 'desc' }])
   */
  sortPartition(key: SortKey<T> | readonly SortKey<T>[], order?: 'asc' | 'desc'): SingleOutputStreamOperator<T> {
    return sortPartitionStream(this, key, order);
  }

  /**
   * The first `n` records by the key(s) (after `offset`), in that order: a top-n per partition, then
   * one over those at parallelism 1. Ties keep no particular order across partitions. Batch mode.
   * @example trades.topN(10, { field: 'qty', order: 'desc' })
   */
  topN(n: number, key: SortKey<T> | readonly SortKey<T>[], opts?: { offset?: number }): SingleOutputStreamOperator<T> {
    return topNStream(this, n, key, opts);
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

  /**
   * The records this operator emitted to side output `tag` (`ctx.output(tag, x)` in a process
   * function; invalid timestamps with `withInvalidTimestamps({ sideOutput: tag })`).
   * @example main.getSideOutput(new OutputTag<Trade>('late')).print('late')
   */
  getSideOutput<X>(tag: OutputTag<X>): DataStream<X> {
    if (tag === null || typeof tag !== 'object' || typeof tag.id !== 'string') throw new JobDefinitionError('getSideOutput expects an OutputTag');
    return new DataStream<X>(this.env, {
      kind: 'side-output',
      id: this.env._nextId(),
      name: `SideOutput(${tag.id})`,
      parallelism: undefined,
      chaining: 'always',
      input: this.transformation,
      tag: tag.id,
    });
  }
}

/** `keyBy`'s invalidKeys option as `'fail'`, `'drop'` or the side output's tag id. */
function invalidKeysPolicy(options: unknown): 'fail' | 'drop' | string {
  if (options === undefined) return 'fail';
  if (options === null || typeof options !== 'object') throw new JobDefinitionError(`keyBy options must be an object, got ${options === null ? 'null' : typeof options}`);
  const p = (options as { invalidKeys?: unknown }).invalidKeys;
  if (p === undefined || p === 'fail') return 'fail';
  if (p === 'drop') return 'drop';
  if (p !== null && typeof p === 'object' && typeof (p as { id?: unknown }).id === 'string') return (p as { id: string }).id;
  throw new JobDefinitionError(`keyBy invalidKeys must be 'fail', 'drop' or an OutputTag, got ${typeof p === 'string' ? `'${p}'` : typeof p}`);
}

/** Parallelism a transformation's records are produced at (undefined: the job's default). */
function producedAt(t: Transformation): number | undefined {
  return t.kind === 'partition' || t.kind === 'side-output' ? producedAt(t.input) : t.kind === 'union' ? undefined : t.parallelism;
}

/**
 * The key checks of a keyBy with an invalidKeys policy: one per union input (partitions before the
 * keyBy are skipped, the hash exchange replaces them), each at its input's parallelism — read when
 * the graph is built, so a later `setParallelism` upstream counts — so that it chains to its input.
 */
function keyChecks(env: StreamEnvironment, t: Transformation, key: KeySelectorSpec, keyByName: string, tag: string | undefined): OperatorTransformation[] {
  while (t.kind === 'partition') t = t.input;
  if (t.kind === 'union') return t.inputs.flatMap((i) => keyChecks(env, i, key, keyByName, tag));
  const input = t;
  let explicit: number | undefined;
  const check: OperatorTransformation = {
    kind: 'operator',
    id: env._nextId(),
    name: `KeyCheck(${key.description})`,
    get parallelism(): number | undefined {
      return explicit ?? producedAt(input);
    },
    set parallelism(p: number | undefined) {
      explicit = p;
    },
    chaining: 'always',
    input,
    factory: () => new KeyCheckOperator(key, keyByName, tag),
  };
  return [check];
}

function unionOf(env: StreamEnvironment, inputs: readonly Transformation[]): Transformation {
  return { kind: 'union', id: env._nextId(), name: 'Union', parallelism: undefined, chaining: 'always', inputs: [...inputs] };
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
  constructor(
    env: StreamEnvironment,
    transformation: Transformation,
    readonly keySelector: KeySelectorSpec,
    /** @internal the invalidKeys side output: its tag id and the key checks that emit it */
    private readonly invalidKeys?: { readonly tag: string; readonly checks: readonly Transformation[] },
  ) {
    super(env, transformation);
  }

  /**
   * The records `keyBy(key, { invalidKeys: tag })` set aside, each an `InvalidKeyError` holding the
   * record and why its key could not be used. The keyed stream has no other side output.
   * @example
   * const badKeys = new OutputTag<InvalidKeyError<Trade>>('bad-keys');
   * const keyed = trades.keyBy('account', { invalidKeys: badKeys });
   * keyed.getSideOutput(badKeys).map((e) => e.record).addSink(deadLetters);
   */
  getSideOutput<X>(tag: OutputTag<X>): DataStream<X> {
    if (tag === null || typeof tag !== 'object' || typeof tag.id !== 'string') throw new JobDefinitionError('getSideOutput expects an OutputTag');
    const inv = this.invalidKeys;
    if (inv === undefined || inv.tag !== tag.id) {
      throw new JobDefinitionError(
        `${this.transformation.name} has no side output '${tag.id}': a keyed stream's only side output is the tag given as keyBy(key, { invalidKeys: tag })`,
        { operator: this.transformation.name },
      );
    }
    const sides: Transformation[] = inv.checks.map((input) => ({
      kind: 'side-output',
      id: this.env._nextId(),
      name: `SideOutput(${tag.id})`,
      parallelism: undefined,
      chaining: 'always',
      input,
      tag: tag.id,
    }));
    return new DataStream<X>(this.env, sides.length === 1 ? sides[0]! : unionOf(this.env, sides));
  }

  /**
   * Batch aggregation per key: one record per key with the key field and the aggregates, as
   * `groupBy(field).aggregate(spec)` on this keyBy's partitioning (no second exchange). Needs a key
   * field (`keyBy('field')`, not a selector function) and a schema (`withSchema`, or a file source's).
   * @example orders.keyBy('user').aggregate({ n: count(), total: sum('amount') })
   */
  aggregate<S extends AggregateSpec<T>>(spec: S): SingleOutputStreamOperator<{ [field: string]: unknown } & { [P in keyof S]: AggregateValue<T, S[P]> }> {
    const field = this.keySelector.field;
    if (field === undefined) {
      throw new JobDefinitionError(
        `aggregate on a keyed stream needs a key field (keyBy('field')), not a key selector function (${this.keySelector.description}): use groupBy(...fields).aggregate(...)`,
        { operator: `KeyBy(${this.keySelector.description})` },
      );
    }
    return this.groupBy(field as KeyField<T>).aggregate(spec) as SingleOutputStreamOperator<any>;
  }

  /** Adds a rolling keyed aggregate (reduce, sum, min, max, minBy, maxBy). Not `aggregate`: that name is the batch API's. */
  private rollingAggregate<A>(name: string, agg: RollingAggregate<T, A>): SingleOutputStreamOperator<T> {
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
    return this.rollingAggregate(label('Reduce', fn), reduceAggregate(fn));
  }
  /**
   * Runs a {@link KeyedProcessFunction}: per-key state (`ctx.getState` in `open`), event- and
   * processing-time timers per key (`onTimer`), side outputs.
   * @example
   * keyed.process<Alert>({
   *   processElement(e, ctx, out) { ctx.timerService().registerEventTimeTimer(ctx.timestamp()! + 60_000); },
   *   onTimer(ts, ctx, out) { out.collect({ key: ctx.getCurrentKey(), at: ts }); },
   * });
   */
  override process<O>(fn: KeyedProcessFunction<K, T, O>): SingleOutputStreamOperator<O> {
    checkProcessFunction(fn, ['processElement'], 'process');
    const key = this.keySelector;
    return this.addOperator<O>(objectLabel('KeyedProcess', fn), () => new ProcessOperator({ shape: 'one', fn, key }), key);
  }

  /** Running sum of a numeric field. @example keyed.sum('price') */
  sum(field: NumericField<T>): SingleOutputStreamOperator<T> {
    const f = this.checkField('sum', field);
    return this.rollingAggregate(`Sum(${f})`, sumAggregate<T>(f));
  }
  /** Running minimum of a numeric field (other fields from the first record). @example keyed.min('price') */
  min(field: NumericField<T>): SingleOutputStreamOperator<T> {
    const f = this.checkField('min', field);
    return this.rollingAggregate(`Min(${f})`, extremeAggregate<T>(f, 'min'));
  }
  /** Running maximum of a numeric field (other fields from the first record). @example keyed.max('price') */
  max(field: NumericField<T>): SingleOutputStreamOperator<T> {
    const f = this.checkField('max', field);
    return this.rollingAggregate(`Max(${f})`, extremeAggregate<T>(f, 'max'));
  }
  /** The whole record with the smallest value of a field (first one on ties). @example keyed.minBy('price') */
  minBy(field: NumericField<T>): SingleOutputStreamOperator<T> {
    const f = this.checkField('minBy', field);
    return this.rollingAggregate(`MinBy(${f})`, extremeByAggregate<T>(f, 'min'));
  }
  /** The whole record with the largest value of a field (first one on ties). @example keyed.maxBy('price') */
  maxBy(field: NumericField<T>): SingleOutputStreamOperator<T> {
    const f = this.checkField('maxBy', field);
    return this.rollingAggregate(`MaxBy(${f})`, extremeByAggregate<T>(f, 'max'));
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
