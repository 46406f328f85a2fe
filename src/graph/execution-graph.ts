// Owns the execution graph: each job vertex expanded into its parallel subtasks, and each job edge
// into the channels between subtasks (pointwise for forward and rescale edges, all-to-all otherwise).

import type { JobEdge, JobGraph, JobVertex } from './job-graph.ts';
import { isPointwise } from './transformation.ts';

/**
 * The consumers a producer feeds on a pointwise edge (forward, rescale): with as many consumers as
 * producers, the one of the same index; with more consumers, a contiguous range of them; with fewer,
 * one consumer per contiguous range of producers. Every consumer gets at least one producer.
 */
export function pointwiseTargets<T>(producer: number, producers: number, consumers: readonly T[]): T[] {
  const c = consumers.length;
  if (c === producers) return [consumers[producer]!];
  if (c < producers) return [consumers[Math.floor((producer * c) / producers)]!];
  const out: T[] = [];
  for (let j = 0; j < c; j++) if (Math.floor((j * producers) / c) === producer) out.push(consumers[j]!);
  return out;
}

/** A point-to-point channel from one producing subtask to one consuming subtask. */
export interface ExecutionChannel {
  /** Dense id in [0, channelCount). */
  readonly id: number;
  readonly edge: JobEdge;
  readonly sourceSubtask: number;
  readonly targetSubtask: number;
}

export interface ExecutionSubtask {
  readonly vertex: JobVertex;
  readonly index: number;
  /** Channels this subtask reads. */
  readonly inputs: ExecutionChannel[];
  /** Per outgoing job edge id: the channels this subtask writes, indexed by target subtask (one for forward). */
  readonly outputs: Map<number, ExecutionChannel[]>;
}

export interface ExecutionGraph {
  readonly job: JobGraph;
  /** All subtasks, vertex by vertex in topological order. */
  readonly subtasks: readonly ExecutionSubtask[];
  readonly channelCount: number;
}

/** Expands a job graph into subtasks and channels. Cost: O(subtasks + channels). */
export function buildExecutionGraph(job: JobGraph): ExecutionGraph {
  const byVertex = new Map<number, ExecutionSubtask[]>();
  const subtasks: ExecutionSubtask[] = [];
  for (const v of job.vertices) {
    const list: ExecutionSubtask[] = [];
    for (let i = 0; i < v.parallelism; i++) {
      const st: ExecutionSubtask = { vertex: v, index: i, inputs: [], outputs: new Map() };
      list.push(st);
      subtasks.push(st);
    }
    byVertex.set(v.id, list);
  }
  let channelCount = 0;
  for (const v of job.vertices) {
    for (const e of v.outputs) {
      const producers = byVertex.get(v.id)!;
      const consumers = byVertex.get(e.target.id)!;
      for (const p of producers) {
        const outs: ExecutionChannel[] = [];
        const targets = isPointwise(e.partition) ? pointwiseTargets(p.index, producers.length, consumers) : consumers;
        for (const c of targets) {
          const ch: ExecutionChannel = { id: channelCount++, edge: e, sourceSubtask: p.index, targetSubtask: c.index };
          outs.push(ch);
          c.inputs.push(ch);
        }
        p.outputs.set(e.id, outs);
      }
    }
  }
  return { job, subtasks, channelCount };
}
