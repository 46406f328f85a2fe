// Owns transformations: the logical, user-built description of a job (what the API records), before
// it is turned into a stream graph. Partition transformations are virtual: they become edge properties.

import type { KeySelectorSpec, OperatorFactory, SourceSpec } from './operator.ts';

/** How records travel from one operator to the next. */
export type PartitionSpec =
  | { readonly kind: 'forward' }
  | { readonly kind: 'rebalance' }
  | { readonly kind: 'hash'; readonly key: KeySelectorSpec };

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
  readonly factory: OperatorFactory;
  /** Set for keyed operators: their input must be hash-partitioned by this key. */
  readonly keyed?: KeySelectorSpec;
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

export type Transformation = SourceTransformation | OperatorTransformation | SinkTransformation | PartitionTransformation;

/** Short text of a partitioning, e.g. `HASH(symbol)`. */
export function describePartition(p: PartitionSpec): string {
  return p.kind === 'hash' ? `HASH(${p.key.description})` : p.kind.toUpperCase();
}
