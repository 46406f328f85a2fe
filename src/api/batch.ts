// Owns the batch API on DataStreams: joins (inner, left/right/full outer, semi, anti), group-by
// aggregates (count, sum, min, max, avg), distinct, sortPartition and topN in batch mode, the aggregate
// functions, `withSchema`, and the glue between transformations and the planner: what each input is
// known to be (schema, size, partitioning, sort order, from sources and upstream batch operators) and
// turning the planner's decisions — made when the plan is built, so that parallelism set later counts —
// into edges (forward / broadcast / hash) and operators.
//
// Laziness: a batch operator's transformation answers `name`, `factory` (and its input edges'
// `partition`) through getters that run the planner (src/graph/planner.ts) when the stream graph is
// built; `explain()` therefore shows the strategies the job will run with.

import { aggregatePlan, type AggSpec } from '../../bindings/aggregate.ts';
import { planJoin as planJoinKernels } from '../../bindings/join.ts';
import { JobDefinitionError, SluiceError } from '../core/errors.ts';
import { FieldType, Schema, type Fields, type InferRow } from '../core/schema.ts';
import type { KeySelectorSpec, OperatorFactory } from '../graph/operator.ts';
import {
  describeJoin,
  describeOneShip,
  planGroupBy,
  planJoinStrategy,
  recordStreamFacts,
  streamFacts,
  type JoinHints,
  type JoinKind,
  type JoinStrategy,
  type PhysicalProps,
  type Ship,
  type SizeEstimate,
  type SortField,
} from '../graph/planner.ts';
import type { ChainingStrategy, OperatorTransformation, PartitionSpec, PartitionTransformation, Transformation } from '../graph/transformation.ts';
import { FilterOperator, MapOperator } from '../operators/basic.ts';
import {
  BatchAggregateOperator,
  BatchJoinOperator,
  BatchSortOperator,
  batchOperatorFactory,
  joinMinSegments,
  type BatchRuntimeSettings,
  type JoinEmit,
} from '../operators/batch/batch-operators.ts';
import { DataStream, SingleOutputStreamOperator } from './datastream.ts';
import type { StreamEnvironment } from './environment.ts';
import type { KeyField } from './types.ts';

// the batch API's public surface re-exported here, so that src/index.ts takes it from one place
export {
  describeJoin,
  planGroupBy,
  planJoinStrategy,
  type GroupByStrategy,
  type JoinHints,
  type JoinKind,
  type JoinStrategy,
  type PhysicalProps,
  type Ship,
  type SizeEstimate,
  type SortField,
} from '../graph/planner.ts';
export type { BatchRuntimeSettings } from '../operators/batch/batch-operators.ts';
export { parseMemorySize, type MemorySize } from '../runtime/memory-manager.ts';

// ---------------------------------------------------------------------------------------------
// Runtime settings per environment

const settingsByEnv = new WeakMap<StreamEnvironment, BatchRuntimeSettings>();

/**
 * Sets where the batch operators of `env`'s jobs spill and which platform they run on (default: the
 * detected platform's spill store in the system temp directory). On workerd, pass the platform made
 * with the precompiled kernels module.
 *
 * @example
 * configureBatchRuntime(env, { spill: { dir: '/mnt/scratch' } });
 * configureBatchRuntime(env, { platform: createWorkerdPlatform({ kernels }) });
 */
export function configureBatchRuntime(env: StreamEnvironment, settings: BatchRuntimeSettings): void {
  settingsByEnv.set(env, { ...settings });
}

const settingsOf = (env: StreamEnvironment) => (): BatchRuntimeSettings => settingsByEnv.get(env) ?? {};

// ---------------------------------------------------------------------------------------------
// What is known about a stream

/** A stream's schema (if known) and physical properties, where an operator reads it. */
export interface StreamInfo {
  readonly schema?: Schema;
  readonly props: PhysicalProps;
}

type Memo = Map<Transformation, StreamInfo>;

/** Batch operators' transformations and how to describe their output. */
const planned = new WeakMap<Transformation, (memo: Memo) => StreamInfo>();
/** Key selectors made from fields here (or by keyBy(field)): their fields. */
const keyFields = new WeakMap<KeySelectorSpec, readonly string[]>();
const opKinds = new WeakMap<Transformation, 'map' | 'filter' | 'other'>();

/** @internal Estimated bytes of one binary row of `s`: header, null bitmap, 8-byte slots, some var payload. */
export function rowBytesOf(s: Schema): number {
  let varFields = 0;
  for (const ty of s.types) if (ty.kind === 'string' || ty.kind === 'bytes' || ty.kind === 'any') varFields++;
  return 8 + 8 * Math.ceil(s.types.length / 64) + 8 * s.types.length + 16 * varFields;
}

const parallelismOf = (env: StreamEnvironment, t: Transformation): number => t.parallelism ?? env.getParallelism();

/** What an operator at parallelism `q` reading the stream through a forward edge sees. */
function seenBy(p: PhysicalProps, q: number): PhysicalProps {
  if (p.parallelism === 'edge') {
    // an explicit edge: a hash edge partitions for the consumer; the order of several producers is lost
    const { sortedBy: _s, ...rest } = p;
    return { ...rest, parallelism: q };
  }
  if (p.parallelism === q) return p;
  // forward between different parallelisms is a rebalance
  return { parallelism: q, estimate: p.estimate, ...(p.rowBytes !== undefined ? { rowBytes: p.rowBytes } : {}) };
}

function operatorKind(t: OperatorTransformation): 'map' | 'filter' | 'other' {
  let k = opKinds.get(t);
  if (k === undefined) {
    try {
      const op = t.factory();
      k = op instanceof MapOperator ? 'map' : op instanceof FilterOperator ? 'filter' : 'other';
    } catch {
      k = 'other';
    }
    opKinds.set(t, k);
  }
  return k;
}

function structuralInfo(env: StreamEnvironment, t: Transformation, memo: Memo): StreamInfo {
  const own = planned.get(t);
  if (own) return own(memo);
  switch (t.kind) {
    case 'source':
      return { props: { parallelism: parallelismOf(env, t), estimate: {} } };
    case 'partition': {
      const inner = streamInfo(env, t.input, memo);
      const spec = t.partition;
      const base = { estimate: inner.props.estimate, ...(inner.props.rowBytes !== undefined ? { rowBytes: inner.props.rowBytes } : {}) };
      let props: PhysicalProps;
      if (spec.kind === 'forward') props = inner.props;
      else if (spec.kind === 'hash') {
        const fields = keyFields.get(spec.key) ?? (spec.key.field !== undefined ? [spec.key.field] : undefined);
        props = { ...base, parallelism: 'edge', ...(fields ? { partitionedBy: fields } : {}) };
      } else props = { ...base, parallelism: 'edge' };
      return { ...(inner.schema ? { schema: inner.schema } : {}), props };
    }
    case 'union': {
      const ins = t.inputs.map((i) => streamInfo(env, i, memo));
      const sum = (f: (e: SizeEstimate) => number | undefined) => (ins.every((i) => f(i.props.estimate) !== undefined) ? ins.reduce((s, i) => s + f(i.props.estimate)!, 0) : undefined);
      const rows = sum((e) => e.rows);
      const bytes = sum((e) => e.bytes);
      const s0 = ins[0]?.schema;
      const same = s0 !== undefined && ins.every((i) => i.schema !== undefined && i.schema.id === s0.id && i.schema.names.join() === s0.names.join());
      return { ...(same ? { schema: s0 } : {}), props: { parallelism: 'edge', estimate: { ...(rows !== undefined ? { rows } : {}), ...(bytes !== undefined ? { bytes } : {}) } } };
    }
    case 'operator': {
      const q = parallelismOf(env, t);
      if (t.input2 === undefined) {
        const kind = operatorKind(t);
        const inner = streamInfo(env, t.input, memo);
        if (kind === 'filter') return { ...(inner.schema ? { schema: inner.schema } : {}), props: seenBy(inner.props, q) };
        if (kind === 'map') return { props: { parallelism: q, estimate: inner.props.estimate.rows !== undefined ? { rows: inner.props.estimate.rows } : {} } };
      }
      return { props: { parallelism: q, estimate: {} } };
    }
    default:
      return { props: { parallelism: 'edge', estimate: {} } };
  }
}

/**
 * What is known about the stream of `t` (schema, parallelism, partitioning, order, size), from the
 * sources' facts, `withSchema`, and the batch operators upstream. Cost: O(transformations upstream).
 */
export function streamInfo(env: StreamEnvironment, t: Transformation, memo: Memo = new Map()): StreamInfo {
  const hit = memo.get(t);
  if (hit) return hit;
  let info = structuralInfo(env, t, memo);
  const f = streamFacts(t);
  if (f) {
    const estimate = { ...info.props.estimate, ...(f.rows !== undefined ? { rows: f.rows } : {}), ...(f.bytes !== undefined ? { bytes: f.bytes } : {}) };
    info = { ...info, ...(f.schema ? { schema: f.schema } : {}), props: { ...info.props, estimate } };
  }
  if (info.schema) info = { ...info, props: { ...info.props, rowBytes: rowBytesOf(info.schema) } };
  memo.set(t, info);
  return info;
}

// ---------------------------------------------------------------------------------------------
// Building lazily planned transformations

/** A key selector over fields (one field: its value; several: an array), hashed like a typed key. */
function fieldsKey(fields: readonly string[]): KeySelectorSpec {
  const f0 = fields[0]!;
  const spec: KeySelectorSpec =
    fields.length === 1
      ? { fn: (r: Record<string, unknown>) => r[f0] ?? null, description: f0 }
      : { fn: (r: Record<string, unknown>) => fields.map((f) => r[f] ?? null), description: fields.join(', ') };
  keyFields.set(spec, fields);
  return spec;
}

function partitionOf(ship: Ship, input: Transformation): PartitionSpec {
  if (ship.kind === 'broadcast') return { kind: 'broadcast' };
  if (ship.kind === 'hash') return { kind: 'hash', key: fieldsKey(ship.fields) };
  // forward keeps an explicit partitioning of the input (a keyBy the plan reuses)
  return input.kind === 'partition' ? input.partition : { kind: 'forward' };
}

/** An edge into a batch operator whose partitioning the planner decides when the graph is built. */
function shipEdge(env: StreamEnvironment, input: Transformation, ship: () => Ship): PartitionTransformation {
  return {
    kind: 'partition',
    id: env._nextId(),
    name: 'Ship',
    parallelism: undefined,
    chaining: 'always',
    input,
    get partition(): PartitionSpec {
      return partitionOf(ship(), input);
    },
  };
}

interface LazyOperatorSpec {
  readonly input: Transformation;
  readonly input2?: Transformation;
  /** Name before planning (and if planning fails). */
  readonly baseName: string;
  readonly describe: () => string;
  readonly factory: () => OperatorFactory;
  /** Parallelism when the user sets none (default: the environment's). */
  readonly defaultParallelism?: () => number | undefined;
}

/** An operator transformation whose name, factory and default parallelism are computed when read. */
function lazyOperator(env: StreamEnvironment, spec: LazyOperatorSpec): OperatorTransformation {
  let name: string | undefined;
  let parallelism: number | undefined;
  const t = {
    kind: 'operator' as const,
    id: env._nextId(),
    chaining: 'always' as ChainingStrategy,
    input: spec.input,
    ...(spec.input2 ? { input2: spec.input2 } : {}),
    get name(): string {
      if (name !== undefined) return name;
      try {
        return spec.describe();
      } catch {
        return spec.baseName; // the planner's error surfaces from `factory`
      }
    },
    set name(v: string) {
      name = v;
    },
    get parallelism(): number | undefined {
      return parallelism ?? spec.defaultParallelism?.();
    },
    set parallelism(v: number | undefined) {
      parallelism = v;
    },
    get factory(): OperatorFactory {
      if (env.getRuntimeMode() !== 'batch') throw streamingError(spec.baseName);
      return spec.factory();
    },
  };
  return t;
}

function streamingError(operator: string): JobDefinitionError {
  return new JobDefinitionError(
    `${operator} is a batch operator (it emits at end of input) and the environment is in streaming mode; ` +
      `create it with runtimeMode: 'batch' (windowed joins and aggregates for streams are a later step)`,
    { operator },
  );
}

function checkBatch(env: StreamEnvironment, operator: string): void {
  if (env.getRuntimeMode() !== 'batch') throw streamingError(operator);
}

function requireSchema(info: StreamInfo, operator: string, which: string): Schema {
  if (info.schema) return info.schema;
  throw new JobDefinitionError(
    `${operator}: the ${which} has no schema, and batch operators encode records into binary rows; ` +
      `read it with readCsv/readNdjson({ schema }) or declare one with .withSchema(schema(...)) before ${operator}`,
    { operator },
  );
}

function checkFields(schema: Schema, fields: readonly string[], operator: string, what: string): void {
  for (const f of fields) {
    if (typeof f !== 'string' || schema.indexOf(f) < 0) {
      throw new JobDefinitionError(`${operator}: ${what} ${JSON.stringify(f)} is not a field of ${schema}`, { operator });
    }
  }
}

function withOperator<T>(operator: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof SluiceError) throw e.withContext({ operator });
    throw e;
  }
}

function checkStream(x: unknown, env: StreamEnvironment, what: string): void {
  if (!(x instanceof DataStream) || x.env !== env) throw new JobDefinitionError(`${what} expects a stream of the same environment`);
}

// ---------------------------------------------------------------------------------------------
// withSchema

/** Declares the schema of a stream's records (what batch operators encode them with). */
export function withSchemaOf<F extends Fields>(stream: DataStream<any>, s: Schema<F>): DataStream<InferRow<F>> {
  if (!(s instanceof Schema)) throw new JobDefinitionError('withSchema expects a schema, e.g. schema({ id: t.i64(), name: t.string() })');
  recordStreamFacts(stream, { schema: s });
  return new DataStream<InferRow<F>>(stream.env, stream.transformation);
}

// ---------------------------------------------------------------------------------------------
// Joins

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type NullableFields<T> = { [K in keyof T]: T[K] | null };
type Renamed<L, R> = { [K in keyof R as K extends keyof L ? `${K & string}_r` : K]: R[K] };

/** A joined row: the left fields, then the right fields (a name the left side has gets `_r`). */
export type JoinedRow<L, R> = Simplify<L & Renamed<L, R>>;

/** The record a join of kind `J` emits without `with`: the joined row, a missing side's fields null. */
export type JoinRow<L, R, J extends JoinKind> = J extends 'inner'
  ? JoinedRow<L, R>
  : J extends 'left'
    ? JoinedRow<L, NullableFields<R>>
    : J extends 'right'
      ? JoinedRow<NullableFields<L>, R>
      : J extends 'full'
        ? JoinedRow<NullableFields<L>, NullableFields<R>>
        : L;

/** The function of `with`: both records, `null` for a side an outer join is missing. */
export type JoinFunction<L, R, J extends JoinKind, O> = J extends 'inner'
  ? (left: L, right: R) => O
  : J extends 'left'
    ? (left: L, right: R | null) => O
    : J extends 'right'
      ? (left: L | null, right: R) => O
      : (left: L | null, right: R | null) => O;

/**
 * The fields of each side a `with` function reads (a side not named: all of its fields). Only those
 * (and the join keys) are encoded, joined and decoded: the records `fn` gets have just these fields.
 */
export interface JoinFields<LF extends string, RF extends string> {
  readonly left?: readonly LF[];
  readonly right?: readonly RF[];
}

/** The result of `equalTo`: the joined rows, or with `with(fn)` whatever `fn` makes of each pair. */
export type JoinedStream<L, R, J extends JoinKind> = J extends 'semi' | 'anti'
  ? SingleOutputStreamOperator<L>
  : SingleOutputStreamOperator<JoinRow<L, R, J>> & {
      /**
       * Emits `fn(left, right)` for each joined pair instead of the joined row. With `fields`, `fn`
       * gets only the named fields of a side (a projection: the other fields are never encoded into
       * binary rows, joined or decoded, which saves most of the cost of wide records).
       * @example
       * users.join(orders).where('id').equalTo('user').with((u, o) => ({ name: u.name, total: o.total }))
       * users.join(orders).where('id').equalTo('user').with((u, o) => ({ name: u.name, total: o.total }), { left: ['name'], right: ['total'] })
       */
      with<O, LF extends keyof L & string = keyof L & string, RF extends keyof R & string = keyof R & string>(
        fn: JoinFunction<Pick<L, LF>, Pick<R, RF>, J, O>,
        fields?: JoinFields<LF, RF>,
      ): SingleOutputStreamOperator<O>;
    };

/**
 * The first step of a join: `where(...leftKeys)`.
 * @example orders.join(users).where('user').equalTo('id')
 */
export class JoinBuilder<L, R, J extends JoinKind> {
  /** @internal */
  constructor(
    private readonly left: DataStream<L>,
    private readonly right: DataStream<R>,
    private readonly type: J,
    private readonly hints: JoinHints = {},
  ) {
    checkStream(right, left.env, `${type} join`);
  }

  /** The left input's key fields (one or more). @example .where('user') */
  where(...fields: KeyField<L>[]): JoinKeys<L, R, J> {
    return new JoinKeys(this.left, this.right, this.type, this.hints, fields);
  }
}

/**
 * The second step of a join: `equalTo(...rightKeys)` (as many fields as `where`, pairwise of one type).
 * @example orders.leftOuterJoin(users).where('user').equalTo('id')
 */
export class JoinKeys<L, R, J extends JoinKind> {
  /** @internal */
  constructor(
    private readonly left: DataStream<L>,
    private readonly right: DataStream<R>,
    private readonly type: J,
    private readonly hints: JoinHints,
    private readonly leftKeys: readonly string[],
  ) {}

  /** The right input's key fields; the join's result (see {@link JoinedStream}). @example .equalTo('id') */
  equalTo(...fields: KeyField<R>[]): JoinedStream<L, R, J> {
    const rows = defineJoin(this.left, this.right, this.type, this.hints, this.leftKeys, fields, undefined);
    if (this.type === 'semi' || this.type === 'anti') return rows as unknown as JoinedStream<L, R, J>;
    const withFn = (fn: (l: unknown, r: unknown) => unknown, project?: JoinFields<string, string>) => {
      if (typeof fn !== 'function') throw new JobDefinitionError('join(...).with expects a function (left, right) => record');
      if (project !== undefined && (project === null || typeof project !== 'object')) {
        throw new JobDefinitionError("join(...).with: the second argument names the fields each side's function reads, e.g. { left: ['name'], right: ['total'] }");
      }
      return defineJoin(this.left, this.right, this.type, this.hints, this.leftKeys, fields, fn, project);
    };
    return Object.assign(rows, { with: withFn }) as unknown as JoinedStream<L, R, J>;
  }
}

const MARKER = '__sluice_present';

/** The output field names of a joined row: left names as they are, right names with `_r` on a clash. */
function joinedNames(left: readonly string[], right: readonly string[]): { left: string[]; right: string[] } {
  const taken = new Set(left);
  const r = right.map((n) => {
    let name = n;
    while (taken.has(name)) name += '_r';
    taken.add(name);
    return name;
  });
  return { left: [...left], right: r };
}

/** The fields of `s` that are keys or in `keep`, in schema order: what a projected side encodes. */
function projected(s: Schema, keys: readonly string[], keep: readonly string[], operator: string, which: string): Schema {
  if (!Array.isArray(keep)) throw new JobDefinitionError(`${operator}: with(fn, { ${which} }) expects an array of field names`, { operator });
  checkFields(s, keep, operator, `${which} field`);
  return narrowed(s, new Set([...keys, ...keep]));
}

/** The fields of `s` in `wanted`, in schema order (`s` itself when that is all of them). */
function narrowed(s: Schema, wanted: ReadonlySet<string>): Schema {
  if (s.names.every((n) => wanted.has(n))) return s;
  const fields: Fields = {};
  s.names.forEach((n, i) => {
    if (wanted.has(n)) fields[n] = s.types[i]!;
  });
  return new Schema(fields);
}

/** The schema a side is encoded with: its own, plus a presence marker when `with` must tell a missing side apart. */
function withMarker(s: Schema): Schema {
  const fields: Fields = {};
  s.names.forEach((n, i) => (fields[n] = s.types[i]!));
  let name = MARKER;
  while (name in fields) name += '_';
  fields[name] = new FieldType('bool', false, false);
  return new Schema(fields);
}

function defineJoin(
  leftStream: DataStream<any>,
  rightStream: DataStream<any>,
  type: JoinKind,
  hints: JoinHints,
  leftKeys: readonly string[],
  rightKeys: readonly string[],
  fn: ((l: unknown, r: unknown) => unknown) | undefined,
  project?: JoinFields<string, string>,
): SingleOutputStreamOperator<unknown> {
  const env = leftStream.env;
  const baseName = `Join(${type})`;
  checkBatch(env, baseName);
  if (leftKeys.length === 0 || leftKeys.length !== rightKeys.length) {
    throw new JobDefinitionError(`${baseName}: where(...) and equalTo(...) need the same number (≥ 1) of key fields, got ${leftKeys.length} and ${rightKeys.length}`, { operator: baseName });
  }
  const lt = leftStream.transformation;
  const rt = rightStream.transformation;
  const lFull = requireSchema(streamInfo(env, lt), baseName, 'left input');
  const rFull = requireSchema(streamInfo(env, rt), baseName, 'right input');
  checkFields(lFull, leftKeys, baseName, 'left key');
  checkFields(rFull, rightKeys, baseName, 'right key');
  // a `with` projection: a side encodes its keys and the fields its function reads, nothing else
  const lSchema = project?.left !== undefined ? projected(lFull, leftKeys, project.left, baseName, 'left') : lFull;
  // a semi / anti join emits left rows only: its right side encodes just its keys
  const rSchema =
    project?.right !== undefined
      ? projected(rFull, rightKeys, project.right, baseName, 'right')
      : type === 'semi' || type === 'anti'
        ? narrowed(rFull, new Set(rightKeys))
        : rFull;
  const lRead = new Set(project?.left ?? lFull.names);
  const rRead = new Set(project?.right ?? rFull.names);

  // presence of each side in a `with` call: a non-nullable field of it, else (left/right joins) its
  // keys (a matched row has non-null keys), else a marker field added to its encoding
  const leftMayMiss = type === 'right' || type === 'full';
  const rightMayMiss = type === 'left' || type === 'full';
  const needsMarker = (s: Schema, mayMiss: boolean) => fn !== undefined && mayMiss && type === 'full' && s.types.every((ty) => ty.isNullable);
  const lEnc = needsMarker(lSchema, leftMayMiss) ? withMarker(lSchema) : lSchema;
  const rEnc = needsMarker(rSchema, rightMayMiss) ? withMarker(rSchema) : rSchema;
  const lMarker = lEnc !== lSchema ? lEnc.names[lEnc.names.length - 1] : undefined;
  const rMarker = rEnc !== rSchema ? rEnc.names[rEnc.names.length - 1] : undefined;
  const output = withOperator(baseName, () => planJoinKernels({ type, left: lEnc, right: rEnc, leftKeys, rightKeys }).output);
  const names = joinedNames(lEnc.names, rEnc.names);
  if (output.names.join() !== (type === 'semi' || type === 'anti' ? names.left : [...names.left, ...names.right]).join()) {
    throw new SluiceError(`${baseName}: joined field names ${output.names.join(', ')} differ from the expected ones`, { domain: 'internal' });
  }
  let emit: JoinEmit = { kind: 'rows' };
  if (fn) {
    const presence = (s: Schema, enc: Schema, outNames: readonly string[], keys: readonly string[], mayMiss: boolean): readonly string[] | undefined => {
      if (!mayMiss) return undefined;
      const nonNull = s.types.findIndex((ty) => !ty.isNullable);
      if (nonNull >= 0) return [outNames[nonNull]!];
      if (enc !== s) return [outNames[outNames.length - 1]!];
      return keys.map((k) => outNames[s.indexOf(k)]!);
    };
    emit = {
      kind: 'with',
      fn,
      leftFields: lSchema.names.flatMap((n, i) => (lRead.has(n) ? [[n, names.left[i]!] as const] : [])),
      rightFields: rSchema.names.flatMap((n, i) => (rRead.has(n) ? [[n, names.right[i]!] as const] : [])),
      ...(leftMayMiss ? { leftPresence: presence(lSchema, lEnc, names.left, leftKeys, true)! } : {}),
      ...(rightMayMiss ? { rightPresence: presence(rSchema, rEnc, names.right, rightKeys, true)! } : {}),
    };
  }

  // the plan, made from what is known when it is asked for
  let self: OperatorTransformation | undefined;
  const strategy = (memo: Memo = new Map()): JoinStrategy =>
    withOperator(baseName, () =>
      planJoinStrategy({
        type,
        left: streamInfo(env, lt, memo).props,
        right: streamInfo(env, rt, memo).props,
        leftKeys,
        rightKeys,
        parallelism: self ? parallelismOf(env, self) : env.getParallelism(),
        managedMemoryBytes: env.getManagedMemory(),
        hints,
      }),
    );
  strategy(); // hints the join type cannot honour fail here
  const on = leftKeys.map((k, i) => (k === rightKeys[i] ? k : `${k} = ${rightKeys[i]}`)).join(', ');
  const settings = settingsOf(env);
  const t = lazyOperator(env, {
    input: shipEdge(env, lt, () => strategy().left),
    input2: shipEdge(env, rt, () => strategy().right),
    baseName,
    describe: () => describeJoin(type, strategy(), on),
    factory: () => {
      const s = strategy();
      return batchOperatorFactory(
        { weight: 1, minSegments: joinMinSegments(s.local, s.sorted) },
        (ref) =>
          new BatchJoinOperator(
            {
              settings,
              type,
              left: { schema: lEnc, keys: leftKeys, ...(lMarker ? { marker: lMarker } : {}) },
              right: { schema: rEnc, keys: rightKeys, ...(rMarker ? { marker: rMarker } : {}) },
              local: s.local,
              buildSide: s.buildSide,
              sorted: s.sorted,
              order: s.order,
              output,
              emit,
            },
            ref,
          ),
      );
    },
  });
  self = t;

  planned.set(t, (memo) => {
    const s = strategy(memo);
    const q = parallelismOf(env, t);
    const li = streamInfo(env, lt, memo).props;
    const ri = streamInfo(env, rt, memo).props;
    const lr = li.estimate.rows;
    const rr = ri.estimate.rows;
    const rows = type === 'semi' || type === 'anti' ? lr : lr !== undefined && rr !== undefined ? (type === 'full' ? lr + rr : Math.max(lr, rr)) : undefined;
    const estimate: SizeEstimate = rows !== undefined ? { rows } : {};
    if (fn) return { props: { parallelism: q, estimate } };
    // partitioning and order of the joined rows, by the side whose key values every row carries
    const byRight = type === 'right' || (type === 'inner' && s.left.kind === 'broadcast');
    const keep = type === 'full' ? undefined : byRight ? ('right' as const) : ('left' as const);
    let partitionedBy: readonly string[] | undefined;
    let sortedBy: readonly SortField[] | undefined;
    if (keep !== undefined && q > 1) {
      const ship = keep === 'left' ? s.left : s.right;
      const props = keep === 'left' ? li : ri;
      const outNames = keep === 'left' ? names.left : names.right;
      const schema = keep === 'left' ? lEnc : rEnc;
      const fields = ship.kind === 'hash' ? ship.fields : ship.kind === 'forward' ? (ship.reused ?? seenBy(props, q).partitionedBy) : undefined;
      if (fields) partitionedBy = fields.map((f) => outNames[schema.indexOf(f)]!);
    }
    if (keep !== undefined && s.local === 'sort-merge') {
      const keys = keep === 'left' ? leftKeys : rightKeys;
      const outNames = keep === 'left' ? names.left : names.right;
      const schema = keep === 'left' ? lEnc : rEnc;
      sortedBy = keys.map((k, i) => ({ field: outNames[schema.indexOf(k)]!, desc: s.order[i]!.desc, nullsFirst: s.order[i]!.nullsFirst }));
    }
    return {
      schema: output,
      props: { parallelism: q, estimate, ...(partitionedBy ? { partitionedBy } : {}), ...(sortedBy ? { sortedBy } : {}) },
    };
  });
  return new SingleOutputStreamOperator<unknown>(env, t);
}

// ---------------------------------------------------------------------------------------------
// Aggregates

/** One aggregate of a group-by: `count()`, `count(field)`, `sum`, `min`, `max`, `avg`. */
export interface AggregateFunction<Op extends AggSpec['op'] = AggSpec['op'], F extends string | undefined = string | undefined> {
  readonly op: Op;
  readonly field: F;
}

/**
 * `count()`: rows per group (SQL count(*)); `count(field)`: rows whose field is not null.
 * @example stream.groupBy('sym').aggregate({ n: count(), priced: count('price') })
 */
export function count(): AggregateFunction<'count', undefined>;
export function count<F extends string>(field: F): AggregateFunction<'count', F>;
export function count(field?: string): AggregateFunction<'count', string | undefined> {
  return { op: 'count', field };
}
/** Sum of a numeric field (exact i64 for integer fields; null values skipped). @example { total: sum('qty') } */
export function sum<F extends string>(field: F): AggregateFunction<'sum', F> {
  return { op: 'sum', field };
}
/** Smallest non-null value of a numeric or timestamp field. @example { lo: min('price') } */
export function min<F extends string>(field: F): AggregateFunction<'min', F> {
  return { op: 'min', field };
}
/** Largest non-null value of a numeric or timestamp field. @example { hi: max('price') } */
export function max<F extends string>(field: F): AggregateFunction<'max', F> {
  return { op: 'max', field };
}
/** Mean of the non-null values of a numeric field (null when there are none). @example { mean: avg('price') } */
export function avg<F extends string>(field: F): AggregateFunction<'avg', F> {
  return { op: 'avg', field };
}

/** The value type an aggregate produces over records `T`. */
export type AggregateValue<T, A> =
  A extends AggregateFunction<'count', any>
    ? number
    : A extends AggregateFunction<'sum', infer F>
      ? F extends keyof T
        ? NonNullable<T[F]> extends bigint
          ? bigint
          : number
        : number
      : A extends AggregateFunction<'min' | 'max', infer F>
        ? F extends keyof T
          ? T[F]
          : unknown
        : A extends AggregateFunction<'avg', infer F>
          ? F extends keyof T
            ? null extends T[F]
              ? number | null
              : number
            : number | null
          : never;

/** Aggregates by output field name. */
export type AggregateSpec<T> = Record<string, AggregateFunction<AggSpec['op'], (keyof T & string) | undefined>>;

/**
 * A stream grouped by fields for batch aggregation (`groupBy(...).aggregate({...})`).
 * @example env.readCsv('trades.csv', { schema: trades }).groupBy('sym').aggregate({ n: count(), total: sum('qty') })
 */
export class GroupedStream<T, K extends keyof T> {
  /** @internal */
  constructor(
    private readonly stream: DataStream<T>,
    private readonly keys: readonly string[],
  ) {}

  /**
   * One record per group: the group fields, then one field per aggregate (named by the spec's keys).
   * Without group fields (`groupBy()`), one record for the whole input (also for an empty input: counts
   * 0, the rest null), computed at parallelism 1. Integer sums are exact i64 (overflow is an error).
   *
   * @example
   * stream.groupBy('sym').aggregate({ total: sum('qty'), n: count(), lo: min('px'), hi: max('px'), mean: avg('px') })
   */
  aggregate<S extends AggregateSpec<T>>(spec: S): SingleOutputStreamOperator<Simplify<Pick<T, K> & { [P in keyof S]: AggregateValue<T, S[P]> }>> {
    if (spec === null || typeof spec !== 'object') throw new JobDefinitionError('aggregate expects an object of aggregates, e.g. { n: count(), total: sum("qty") }');
    const aggs: AggSpec[] = Object.entries(spec).map(([as, a]) => {
      if (!a || typeof a !== 'object' || !['count', 'sum', 'min', 'max', 'avg'].includes(a.op)) {
        throw new JobDefinitionError(`aggregate ${JSON.stringify(as)}: expected count(), sum(field), min(field), max(field) or avg(field)`);
      }
      return a.field === undefined ? { op: a.op, as } : { op: a.op, field: a.field, as };
    });
    if (aggs.length === 0) throw new JobDefinitionError('aggregate needs at least one aggregate (use distinct() for the distinct groups)');
    return defineGroupBy(this.stream, this.keys, aggs, 'aggregate') as SingleOutputStreamOperator<any>;
  }
}

/**
 * The schema an aggregation's input is encoded with: its group fields and aggregated fields only (the
 * rest is never encoded); one fixed-width field when it reads none (a global `count()`).
 */
function aggregateInput(schema: Schema, keys: readonly string[], aggs: readonly AggSpec[], output: Schema): Schema {
  if (aggs.some((a) => typeof a.field === 'number')) return schema; // by position: the positions must stay
  const used = new Set<string>([...keys, ...aggs.flatMap((a) => (typeof a.field === 'string' ? [a.field] : []))]);
  if (used.size === 0) {
    const fixed = schema.types.findIndex((ty) => ty.kind !== 'string' && ty.kind !== 'bytes' && ty.kind !== 'any');
    used.add(schema.names[Math.max(0, fixed)]!);
  }
  const encoded = narrowed(schema, used);
  // the aggregate's output depends on the fields it reads only; keep the whole input if not so
  const out = aggregatePlan(encoded, keys, aggs).finalSchema;
  return out.id === output.id && out.names.join() === output.names.join() ? encoded : schema;
}

/** Group fields by which a stream may be hashed (`any` values cannot be). */
function hashableFields(s: Schema, fields: readonly string[]): string[] {
  return fields.filter((f) => s.types[s.indexOf(f)]!.kind !== 'any');
}

function defineGroupBy(stream: DataStream<any>, keys: readonly string[], aggs: readonly AggSpec[], kind: 'aggregate' | 'distinct'): SingleOutputStreamOperator<unknown> {
  const env = stream.env;
  const baseName = kind === 'distinct' ? 'Distinct' : 'HashAggregate';
  checkBatch(env, baseName);
  const it = stream.transformation;
  const schema = requireSchema(streamInfo(env, it), baseName, 'input');
  checkFields(schema, keys, baseName, 'group field');
  const output = withOperator(baseName, () => aggregatePlan(schema, keys, aggs).finalSchema);
  const encoded = aggregateInput(schema, keys, aggs, output);
  const hashKeys = hashableFields(schema, keys);
  if (keys.length > 0 && hashKeys.length === 0) {
    throw new JobDefinitionError(`${baseName}: the group fields are all of type any, which cannot be hashed to partition the input`, { operator: baseName });
  }
  let self: OperatorTransformation | undefined;
  const global = keys.length === 0;
  const strategy = (memo: Memo = new Map()) =>
    withOperator(baseName, () => planGroupBy({ input: streamInfo(env, it, memo).props, keys: hashKeys, parallelism: self ? parallelismOf(env, self) : global ? 1 : env.getParallelism() }));
  const aggText = aggs.map((a) => (a.field === undefined ? a.op : `${a.op}(${a.field})`)).join(', ');
  const what = kind === 'distinct' ? '' : global ? `${aggText}; ` : `by ${keys.join(', ')}: ${aggText}; `;
  const settings = settingsOf(env);
  const t = lazyOperator(env, {
    input: shipEdge(env, it, () => strategy().ship),
    baseName,
    describe: () => `${baseName}(${what}${describeOneShip(strategy().ship)})`,
    factory: () => {
      strategy(); // a global aggregate set to parallelism > 1 fails here
      return batchOperatorFactory({ weight: 1, minSegments: 5 }, (ref) => new BatchAggregateOperator({ settings, schema: encoded, keys, aggs, output }, ref));
    },
    ...(global ? { defaultParallelism: () => 1 } : {}),
  });
  self = t;
  planned.set(t, (memo) => {
    const s = strategy(memo).ship;
    const q = parallelismOf(env, t);
    const input = streamInfo(env, it, memo).props;
    const partitionedBy = q > 1 ? (s.kind === 'hash' ? s.fields : s.kind === 'forward' ? s.reused : undefined) : undefined;
    return { schema: output, props: { parallelism: q, estimate: input.estimate.rows !== undefined ? { rows: input.estimate.rows } : {}, ...(partitionedBy ? { partitionedBy } : {}) } };
  });
  return new SingleOutputStreamOperator<unknown>(env, t);
}

/** @internal `stream.groupBy(...fields)`. */
export function groupStream<T, K extends keyof T>(stream: DataStream<T>, fields: readonly string[]): GroupedStream<T, K> {
  for (const f of fields) if (typeof f !== 'string' || f === '') throw new JobDefinitionError(`groupBy expects field names, got ${String(f)}`);
  return new GroupedStream<T, K>(stream, fields);
}

/** @internal `stream.distinct()`: every distinct record once (group by every field, no aggregates). */
export function distinctStream<T>(stream: DataStream<T>): SingleOutputStreamOperator<T> {
  const info = streamInfo(stream.env, stream.transformation);
  const schema = requireSchema(info, 'Distinct', 'input');
  return defineGroupBy(stream, schema.names, [], 'distinct') as SingleOutputStreamOperator<T>;
}

// ---------------------------------------------------------------------------------------------
// Sort and top-n

/** A sort key: a field (ascending, nulls last), or a field with an order and where nulls go. */
export type SortKey<T> = KeyField<T> | { readonly field: KeyField<T>; readonly order?: 'asc' | 'desc'; readonly nulls?: 'first' | 'last' };

function sortFields(keys: unknown, order: unknown, operator: string): SortField[] {
  const list = Array.isArray(keys) ? keys : [keys];
  if (list.length === 0) throw new JobDefinitionError(`${operator} needs at least one sort field`, { operator });
  if (order !== undefined && order !== 'asc' && order !== 'desc') throw new JobDefinitionError(`${operator}: order must be 'asc' or 'desc', got ${String(order)}`, { operator });
  return list.map((k): SortField => {
    if (typeof k === 'string') return { field: k, desc: order === 'desc', nullsFirst: false };
    if (k && typeof k === 'object' && typeof (k as { field?: unknown }).field === 'string') {
      const o = k as { field: string; order?: string; nulls?: string };
      if (o.order !== undefined && o.order !== 'asc' && o.order !== 'desc') throw new JobDefinitionError(`${operator}: order must be 'asc' or 'desc', got ${String(o.order)}`, { operator });
      if (o.nulls !== undefined && o.nulls !== 'first' && o.nulls !== 'last') throw new JobDefinitionError(`${operator}: nulls must be 'first' or 'last', got ${String(o.nulls)}`, { operator });
      return { field: o.field, desc: o.order === 'desc', nullsFirst: o.nulls === 'first' };
    }
    throw new JobDefinitionError(`${operator}: a sort key is a field name or { field, order?, nulls? }, got ${String(k)}`, { operator });
  });
}

const sortText = (fields: readonly SortField[]) => fields.map((f) => `${f.field}${f.desc ? ' desc' : ''}${f.nullsFirst ? ' nulls first' : ''}`).join(', ');

/** A sort (or top-n when `limit` is set) of each partition of `input`, at the input's parallelism by default. */
function defineSort(
  stream: DataStream<any>,
  input: Transformation,
  fields: readonly SortField[],
  schema: Schema,
  name: () => string,
  baseName: string,
  top?: { limit: number; offset: number },
  parallelism?: number,
): SingleOutputStreamOperator<unknown> {
  const env = stream.env;
  const settings = settingsOf(env);
  const keys = fields.map((f) => ({ field: f.field, desc: f.desc, nullsFirst: f.nullsFirst }));
  const t = lazyOperator(env, {
    input,
    baseName,
    describe: name,
    factory: () => {
      if (parallelism !== undefined && parallelismOf(env, t) !== parallelism) {
        throw new JobDefinitionError(`${baseName} runs at parallelism ${parallelism}, not ${parallelismOf(env, t)}`, { operator: baseName });
      }
      return batchOperatorFactory({ weight: 1, minSegments: 4 }, (ref) => new BatchSortOperator({ settings, schema, keys, ...(top ? { limit: top.limit, offset: top.offset } : {}) }, ref));
    },
    defaultParallelism: () => {
      if (parallelism !== undefined) return parallelism;
      const p = streamInfo(env, input).props.parallelism;
      return p === 'edge' ? undefined : p;
    },
  });
  planned.set(t, (memo) => {
    const q = parallelismOf(env, t);
    const inp = seenBy(streamInfo(env, input, memo).props, q);
    const estimate = top ? { rows: inp.estimate.rows !== undefined ? Math.min(inp.estimate.rows, top.limit) : top.limit } : inp.estimate;
    return { schema, props: { ...inp, estimate, sortedBy: fields } };
  });
  return new SingleOutputStreamOperator<unknown>(env, t);
}

/** @internal `stream.sortPartition(keys, order)`. */
export function sortPartitionStream<T>(stream: DataStream<T>, keys: unknown, order: unknown): SingleOutputStreamOperator<T> {
  const env = stream.env;
  checkBatch(env, 'SortPartition');
  const fields = sortFields(keys, order, 'SortPartition');
  const schema = requireSchema(streamInfo(env, stream.transformation), 'SortPartition', 'input');
  checkFields(schema, fields.map((f) => f.field), 'SortPartition', 'sort field');
  const name = `SortPartition(${sortText(fields)})`;
  return defineSort(stream, stream.transformation, fields, schema, () => name, 'SortPartition') as SingleOutputStreamOperator<T>;
}

/** @internal `stream.topN(n, keys, { offset })`: a top-n per partition, then one over those at parallelism 1. */
export function topNStream<T>(stream: DataStream<T>, n: unknown, keys: unknown, opts: { offset?: number } = {}): SingleOutputStreamOperator<T> {
  const env = stream.env;
  checkBatch(env, 'TopN');
  const offset = opts.offset ?? 0;
  for (const [what, v] of [['n', n], ['offset', offset]] as const) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new JobDefinitionError(`topN: ${what} must be a whole number ≥ 0, got ${String(v)}`, { operator: 'TopN' });
  }
  const limit = n as number;
  const fields = sortFields(keys, undefined, 'TopN');
  const schema = requireSchema(streamInfo(env, stream.transformation), 'TopN', 'input');
  checkFields(schema, fields.map((f) => f.field), 'TopN', 'sort field');
  const what = `${limit}${offset > 0 ? ` offset ${offset}` : ''} by ${sortText(fields)}`;
  const local = defineSort(stream, stream.transformation, fields, schema, () => `TopN(local, ${limit + offset} by ${sortText(fields)})`, 'TopN(local)', { limit: limit + offset, offset: 0 });
  return defineSort(local, local.transformation, fields, schema, () => `TopN(${what})`, 'TopN', { limit, offset }, 1) as SingleOutputStreamOperator<T>;
}

/** @internal Builders for the DataStream methods (datastream.ts stays a thin hand-off). */
export function joinBuilder<L, R, J extends JoinKind>(left: DataStream<L>, right: DataStream<R>, type: J, hints?: JoinHints): JoinBuilder<L, R, J> {
  return new JoinBuilder<L, R, J>(left, right, type, hints ?? {});
}
