// Owns the job graph: stream nodes fused into chains (job vertices) by Flink's chaining rule, and the
// job edges between vertices that records cross as batches through channels.

import type { JobConfig, StreamEdge, StreamGraph, StreamNode } from './stream-graph.ts';
import type { PartitionSpec } from './transformation.ts';

/** A chain of operators that runs as one task per subtask; records pass between them by direct call. */
export interface JobVertex {
  /** 1-based, in topological order. */
  readonly id: number;
  /** The chain's operator names joined with ` -> `. */
  readonly name: string;
  readonly parallelism: number;
  /** The chain's operators, head first, every operator after its chained input. */
  readonly nodes: readonly StreamNode[];
  readonly inputs: JobEdge[];
  readonly outputs: JobEdge[];
}

export interface JobEdge {
  readonly id: number;
  readonly source: JobVertex;
  readonly target: JobVertex;
  /** The operator inside `source` that produces the records. */
  readonly sourceNode: StreamNode;
  /** The operator inside `target` that consumes them (the chain head). */
  readonly targetNode: StreamNode;
  readonly partition: PartitionSpec;
  /** Set when the edge carries a side output of `sourceNode` (the tag id). */
  readonly outputTag?: string;
  /** Which input of `targetNode` it feeds (1 = the second input of a two-input operator). */
  readonly inputIndex: 0 | 1;
}

export interface JobGraph {
  readonly config: JobConfig;
  /** Vertices in topological order. */
  readonly vertices: readonly JobVertex[];
}

/**
 * Flink's chaining rule: forward edge, same parallelism, the downstream operator has exactly one
 * input and may chain to its predecessor, the upstream one may chain to successors.
 */
export function isChainable(edge: StreamEdge): boolean {
  const { source: up, target: down } = edge;
  return (
    edge.partition.kind === 'forward' &&
    down.inEdges.length === 1 &&
    up.parallelism === down.parallelism &&
    up.chaining !== 'never' &&
    down.chaining === 'always'
  );
}

/** Fuses chainable operators into job vertices. Cost: O(nodes + edges). */
export function buildJobGraph(sg: StreamGraph): JobGraph {
  const vertexOf = new Map<number, { nodes: StreamNode[]; id: number }>();
  const chains: { nodes: StreamNode[]; id: number }[] = [];
  for (const node of sg.nodes) {
    const inEdge = node.inEdges.length === 1 ? node.inEdges[0]! : undefined;
    const chain = inEdge && isChainable(inEdge) ? vertexOf.get(inEdge.source.id) : undefined;
    if (chain) {
      chain.nodes.push(node);
      vertexOf.set(node.id, chain);
    } else {
      const c = { nodes: [node], id: chains.length + 1 };
      chains.push(c);
      vertexOf.set(node.id, c);
    }
  }
  const vertices: JobVertex[] = chains.map((c) => ({
    id: c.id,
    name: c.nodes.map((n) => n.name).join(' -> '),
    parallelism: c.nodes[0]!.parallelism,
    nodes: c.nodes,
    inputs: [],
    outputs: [],
  }));
  let edgeId = 0;
  for (const node of sg.nodes) {
    for (const e of node.outEdges) {
      const from = vertices[vertexOf.get(e.source.id)!.id - 1]!;
      const to = vertices[vertexOf.get(e.target.id)!.id - 1]!;
      if (from === to) continue; // chained
      const je: JobEdge = {
        id: ++edgeId,
        source: from,
        target: to,
        sourceNode: e.source,
        targetNode: e.target,
        partition: e.partition,
        inputIndex: e.inputIndex,
        ...(e.outputTag !== undefined ? { outputTag: e.outputTag } : {}),
      };
      from.outputs.push(je);
      to.inputs.push(je);
    }
  }
  return { config: sg.config, vertices };
}
