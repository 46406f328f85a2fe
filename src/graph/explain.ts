// Owns the readable text of a job graph (env.getExecutionPlan()): one line per chain, its operators
// and parallelism, then the edges leaving it with their partitioner.

import type { JobGraph } from './job-graph.ts';
import { describePartition } from './transformation.ts';

/**
 * Renders a job graph, e.g.
 * ```
 * Job 'demo' (mode batch, default parallelism 2, max parallelism 128)
 * [1] Source: trades -> Map(toTrade)   (parallelism 2)
 *      --HASH(symbol)--> [2]
 * [2] Sum(price) -> Sink: Collect   (parallelism 2)
 * ```
 */
export function explainJobGraph(g: JobGraph): string {
  const c = g.config;
  const lines = [
    `Job '${c.jobName}' (mode ${c.runtimeMode}, default parallelism ${c.defaultParallelism}, max parallelism ${c.maxParallelism})`,
  ];
  for (const v of g.vertices) {
    const chained = v.nodes.length > 1 ? `, chain of ${v.nodes.length}` : '';
    lines.push(`[${v.id}] ${v.name}   (parallelism ${v.parallelism}${chained})`);
    for (const e of v.outputs) {
      const from = v.nodes.length > 1 && e.sourceNode !== v.nodes[v.nodes.length - 1] ? ` from ${e.sourceNode.name}` : '';
      const side = e.outputTag !== undefined ? ` side output '${e.outputTag}'` : '';
      const second = e.inputIndex === 1 ? ' (input 2)' : '';
      lines.push(`     --${describePartition(e.partition)}--> [${e.target.id}]${second}${from}${side}`);
    }
  }
  return lines.join('\n');
}
