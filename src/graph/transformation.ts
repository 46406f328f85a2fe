// Owns transformations: the logical, user-built description of a job (what the API records), before
// it is turned into a stream graph. Partition transformations are virtual: they become edge properties.

import type { KeySelectorSpec, OperatorFactory, SourceSpec } from './operator.ts';

/** How records travel from one operator to the next. */
export type PartitionSpec =
  | { readonly kind: 'forward' }
  /** Round-robin over all downstream subtasks. */
  | { readonly kind: 'rebalance' }
  /** Round-robin over a local subset of downstream subtasks (pointwise channels, as Flink's rescale). */
  | { readonly kind: 'rescale' }
  /** Uniformly random downstream subtask. */
  | { readonly kind: 'shuffle' }
  /** Every record to every downstream subtask. */
  | { readonly kind: 'broadcast' }
  /** Every record to downstream subtask 0. */
  | { readonly kind: 'global' }
  | { readonly kind: 'hash'; readonly key: KeySelectorSpec }
  /** `partitioner(key, numPartitions)` picks the downstream subtask. */
  | { readonly kind: 'custom'; readonly key: KeySelectorSpec; readonly partitioner: (key: any, numPartitions: number) => number; readonly description: string };

/**
 * Flink's chaining strategies: `always` chains to predecessor and successor where the edge allows,
 * `head` starts a new chain (but successors may chain to it), `never` chains to nothing.
 */
export type ChainingStrategy = 'always' | 'head' | 'never';

interface TransformationBase {
  readonly id: number;
  /** Display name; errors and the plan name the operator with it. */
  name: string;
  /** Explicit parallelism, or undefined for the environment's default. */
  parallelism: number | undefined;
  chaining: ChainingStrategy;
}

export interface SourceTransformation extends TransformationBase {
  readonly kind: 'source';
  readonly source: SourceSpec;
}

export interface OperatorTransformation extends TransformationBase {
  readonly kind: 'operator';
  readonly input: Transformation;
  /** The second input of a two-input operator (`connect`). */
  readonly input2?: Transformation;
  readonly factory: OperatorFactory;
  /** Set for keyed operators: their input must be hash-partitioned by this key. */
  readonly keyed?: KeySelectorSpec;
  /** Set for keyed two-input operators: the second input's key. */
  readonly keyed2?: KeySelectorSpec;
}

export interface SinkTransformation extends TransformationBase {
  readonly kind: 'sink';
  readonly input: Transformation;
  readonly factory: OperatorFactory;
}

export interface PartitionTransformation extends TransformationBase {
  readonly kind: 'partition';
  readonly input: Transformation;
  readonly partition: PartitionSpec;
}

/** Virtual: the records of a side output (`getSideOutput(tag)`) of `input`. */
export interface SideOutputTransformation extends TransformationBase {
  readonly kind: 'side-output';
  readonly input: Transformation;
  readonly tag: string;
}

/** Virtual: several streams of the same type read as one (`union`). */
export interface UnionTransformation extends TransformationBase {
  readonly kind: 'union';
  readonly inputs: readonly Transformation[];
}

export type Transformation =
  | SourceTransformation
  | OperatorTransformation
  | SinkTransformation
  | PartitionTransformation
  | SideOutputTransformation
  | UnionTransformation;

/** Short text of a partitioning, e.g. `HASH(symbol)`. */
export function describePartition(p: PartitionSpec): string {
  if (p.kind === 'hash') return `HASH(${p.key.description})`;
  if (p.kind === 'custom') return `CUSTOM(${p.description}, ${p.key.description})`;
  return p.kind.toUpperCase();
}

/** Whether an edge with this partitioning connects subtask i only to a subset of consumers (pointwise). */
export function isPointwise(p: PartitionSpec): boolean {
  return p.kind === 'forward' || p.kind === 'rescale';
}
