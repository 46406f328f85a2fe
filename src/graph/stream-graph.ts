// Owns the stream graph: one node per (non-virtual) transformation with its resolved parallelism, and
// edges carrying the partitioner (forward, rebalance, hash by key). Validates the job definition.

import { JobDefinitionError } from '../core/errors.ts';
import type { OperatorFactory, RuntimeMode, SourceSpec } from './operator.ts';
import type { KeySelectorSpec } from './operator.ts';
import type { ChainingStrategy, OperatorTransformation, PartitionSpec, SinkTransformation, SourceTransformation, Transformation } from './transformation.ts';

/** Job-wide settings the graph is built with. */
export interface JobConfig {
  readonly jobName: string;
  readonly defaultParallelism: number;
  readonly maxParallelism: number;
  readonly runtimeMode: RuntimeMode;
}

export interface StreamNode {
  readonly id: number;
  readonly name: string;
  readonly kind: 'source' | 'operator' | 'sink';
  readonly parallelism: number;
  readonly chaining: ChainingStrategy;
  readonly source?: SourceSpec;
  readonly factory?: OperatorFactory;
  readonly inEdges: StreamEdge[];
  readonly outEdges: StreamEdge[];
}

export interface StreamEdge {
  readonly source: StreamNode;
  readonly target: StreamNode;
  readonly partition: PartitionSpec;
  /** Set when the edge carries a side output of `source` (the tag id), not its main output. */
  readonly outputTag?: string;
  /** Which input of `target` the edge feeds: 0, or 1 for the second input of a two-input operator. */
  readonly inputIndex: 0 | 1;
}

/** Nodes in topological order (every node after its inputs). */
export interface StreamGraph {
  readonly config: JobConfig;
  readonly nodes: readonly StreamNode[];
}

/** Largest max parallelism (number of key groups) Sluice accepts, as Flink. */
export const UPPER_MAX_PARALLELISM = 32768;

/** Throws JobDefinitionError unless `p` is an integer in [1, maxParallelism]. */
export function checkParallelism(p: number, maxParallelism: number, what: string): void {
  if (!Number.isInteger(p) || p < 1) {
    throw new JobDefinitionError(`parallelism of ${what} must be an integer >= 1, got ${p}`, { operator: what });
  }
  if (p > maxParallelism) {
    throw new JobDefinitionError(
      `parallelism of ${what} is ${p}, above the max parallelism ${maxParallelism} (the number of key groups)`,
      { operator: what },
    );
  }
}

/** Throws JobDefinitionError unless the job-wide settings are valid. */
export function checkJobConfig(c: JobConfig): void {
  const m = c.maxParallelism;
  if (!Number.isInteger(m) || m < 1 || m > UPPER_MAX_PARALLELISM) {
    throw new JobDefinitionError(`max parallelism must be an integer in [1, ${UPPER_MAX_PARALLELISM}], got ${m}`);
  }
  checkParallelism(c.defaultParallelism, m, 'the environment (default)');
  if (c.runtimeMode !== 'streaming' && c.runtimeMode !== 'batch') {
    throw new JobDefinitionError(`runtime mode must be 'streaming' or 'batch', got ${String(c.runtimeMode)}`);
  }
}

/**
 * Builds the stream graph of everything the sinks read from. Cost: O(transformations).
 * A forward edge between operators of different parallelism becomes a rebalance (as Flink does for
 * the default partitioner).
 */
export function buildStreamGraph(sinks: readonly Transformation[], config: JobConfig): StreamGraph {
  checkJobConfig(config);
  if (sinks.length === 0) {
    throw new JobDefinitionError(
      `job '${config.jobName}' is empty: add a sink (collect(), print(), addSink()) before executing it`,
    );
  }
  const nodes = new Map<number, StreamNode>();

  interface Upstream {
    node: StreamNode;
    partition?: PartitionSpec;
    tag?: string;
  }
  const resolve = (t: Transformation): Upstream[] => {
    switch (t.kind) {
      case 'partition':
        return resolve(t.input).map((u) => ({ ...u, partition: t.partition }));
      case 'side-output':
        return resolve(t.input).map((u) => {
          if (u.tag !== undefined) throw new JobDefinitionError(`${t.name}: a side output of a side output is not a stream operator's output`, { operator: t.name });
          return { ...u, tag: t.tag };
        });
      case 'union':
        return t.inputs.flatMap(resolve);
      default:
        return [{ node: nodeOf(t) }];
    }
  };

  const connect = (ups: Upstream[], node: StreamNode, inputIndex: 0 | 1, keyed: KeySelectorSpec | undefined): void => {
    for (const up of ups) {
      let partition = up.partition ?? { kind: 'forward' as const };
      if (keyed && partition.kind !== 'hash') {
        throw new JobDefinitionError(
          `${node.name} is a keyed operator but its ${inputIndex === 0 ? 'input' : 'second input'} from ${up.node.name} is not keyed`,
          { operator: node.name },
        );
      }
      if (partition.kind === 'forward' && up.node.parallelism !== node.parallelism) partition = { kind: 'rebalance' };
      const edge: StreamEdge = { source: up.node, target: node, partition, inputIndex, ...(up.tag !== undefined ? { outputTag: up.tag } : {}) };
      up.node.outEdges.push(edge);
      node.inEdges.push(edge);
    }
  };

  const nodeOf = (t: SourceTransformation | OperatorTransformation | SinkTransformation): StreamNode => {
    const seen = nodes.get(t.id);
    if (seen) return seen;
    const parallelism = t.parallelism ?? config.defaultParallelism;
    checkParallelism(parallelism, config.maxParallelism, t.name);
    if (t.kind === 'source' && config.runtimeMode === 'batch' && !t.source.bounded) {
      throw new JobDefinitionError(`source ${t.name} is unbounded; batch mode needs bounded sources`, { operator: t.name });
    }
    const input = t.kind === 'source' ? undefined : resolve(t.input);
    const input2 = t.kind === 'operator' && t.input2 ? resolve(t.input2) : undefined;
    const node: StreamNode = {
      id: t.id,
      name: t.name,
      kind: t.kind,
      parallelism,
      chaining: t.chaining,
      ...(t.kind === 'source' ? { source: t.source } : { factory: t.factory }),
      inEdges: [],
      outEdges: [],
    };
    if (input) connect(input, node, 0, t.kind === 'operator' ? t.keyed : undefined);
    if (input2) connect(input2, node, 1, t.kind === 'operator' ? t.keyed2 : undefined);
    nodes.set(t.id, node);
    return node;
  };

  for (const s of sinks) resolve(s);
  const ordered = [...nodes.values()].sort((a, b) => a.id - b.id); // ids grow with creation: topological
  return { config, nodes: ordered };
}
