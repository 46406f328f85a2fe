// Owns the worker side of a job run on worker threads (the parent side is src/runtime/cluster.ts):
// it imports the job's module, builds the same job, checks the graph against the parent's, and runs
// its share of the subtasks with channels to the other workers over the MessagePorts it was given;
// then reports the result (or the failure) and the collect sinks' records to the parent.

import { JobDefinitionError, SluiceError } from '../core/errors.ts';
import { buildExecutionGraph, type ExecutionChannel } from '../graph/execution-graph.ts';
import { explainJobGraph } from '../graph/explain.ts';
import { connectParent } from '../platform/workers.ts';
import type { ChannelEvent } from '../runtime/channel.ts';
import { SystemClock } from '../runtime/clock.ts';
import { packCollected, serializeError, workerOf, type ParentMessage, type WorkerJobData, type WorkerMessage } from '../runtime/cluster.ts';
import { channelDescription, executeGraph } from '../runtime/executor.ts';
import { liveMetrics } from '../runtime/job-result.ts';
import { NetworkBufferPool } from '../runtime/network/buffer-pool.ts';
import { connectReceiver, connectSender } from '../runtime/network/credit-channel.ts';
import { RemoteInputChannel, RemoteOutputs } from '../runtime/remote-channel.ts';
import type { Task } from '../runtime/task.ts';
import { batchCleanupSettled } from '../operators/batch/batch-operators.ts';
import { StreamEnvironment, type EnvironmentOptions } from './environment.ts';
import { loadDefinition } from './job-definition.ts';

const parent = await connectParent();
const data = parent.data as WorkerJobData;
const post = (m: WorkerMessage): void => parent.postMessage(m);
const ctl = new AbortController();
parent.onmessage = (e) => {
  const m = e.data as ParentMessage;
  if (m.type === 'cancel') ctl.abort(m.reason);
};

let metricsTimer: ReturnType<typeof setInterval> | undefined;
try {
  const def = await loadDefinition(data.moduleUrl, data.definition);
  const env = StreamEnvironment.create(data.envOptions as EnvironmentOptions);
  def.build(env, data.params);
  const { graph, sinks, batchSize, bufferTimeoutMs } = env._prepare(data.jobName);
  const fingerprint = explainJobGraph(graph);
  if (fingerprint !== data.fingerprint) {
    throw new JobDefinitionError(
      `worker ${data.worker} built a different job graph than the parent: the job's builder must build the same graph from the same params every time\n` +
        `parent:\n${data.fingerprint}\nworker:\n${fingerprint}`,
    );
  }
  const eg = buildExecutionGraph(graph);
  const clock = new SystemClock();
  const net = new NetworkBufferPool(data.networkMemory === undefined ? {} : { networkMemory: data.networkMemory });
  // one RemoteOutputs per producer subtask and job edge, over the channels of it that leave this worker
  const partitions = new Map<string, { outs: RemoteOutputs; subOf: Map<number, number> }>();
  const remoteOutput = (c: ExecutionChannel, description: string) => {
    const key = `${c.edge.id}/${c.sourceSubtask}`;
    let p = partitions.get(key);
    if (!p) {
      const producer = eg.subtasks.find((st) => st.vertex.id === c.edge.source.id && st.index === c.sourceSubtask)!;
      const remote = producer.outputs.get(c.edge.id)!.filter((x) => data.outPorts[x.id] !== undefined);
      const pool = net.createLocalPool({ name: `${c.edge.source.name}#${c.sourceSubtask} -> ${c.edge.target.name}`, minBuffers: remote.length + 1, maxBuffers: 2 * remote.length + 8 });
      const senders = remote.map((x) => connectSender<ChannelEvent>(data.outPorts[x.id]!, pool, { name: channelDescription(x) }));
      const subOf = new Map(remote.map((x, i) => [x.id, i]));
      const outs = new RemoteOutputs({ pool, senders, bufferTimeoutMs, clock, operator: c.edge.sourceNode.name, subtask: c.sourceSubtask });
      partitions.set(key, (p = { outs, subOf }));
    }
    return p.outs.channel(p.subOf.get(c.id)!, description);
  };
  const inputs: RemoteInputChannel[] = [];
  const remoteInput = (c: ExecutionChannel, description: string) => {
    const ch = new RemoteInputChannel(connectReceiver<ChannelEvent>(data.inPorts[c.id]!, { initialCredits: 2, name: description }), description, c.edge.target.name, c.targetSubtask);
    inputs.push(ch);
    return ch;
  };
  let tasks: readonly Task[] = [];
  const started = clock.now();
  metricsTimer = setInterval(() => {
    const now = clock.now();
    post({ type: 'metrics', elapsedMs: now - started, operators: liveMetrics(tasks, now - started, now) });
  }, data.metricsEveryMs);
  let result;
  try {
    result = await executeGraph(eg, {
      batchSize,
      blocking: env._blockingExchanges(graph.config.runtimeMode, eg.channelCount),
      clock,
      signal: ctl.signal,
      runsHere: (_vertex, index) => workerOf({ index }, data.workers) === data.worker,
      remoteInput,
      remoteOutput,
      onTasks: (t) => {
        tasks = t;
      },
    });
  } catch (e) {
    for (const ch of inputs) ch.cancel();
    await batchCleanupSettled(); // spill files of the closed operators are gone before the parent terminates us
    throw e;
  }
  await batchCleanupSettled();
  clearInterval(metricsTimer);
  post({ type: 'done', durationMs: result.durationMs, operators: [...result.operators], collected: sinks.map((s) => (s.collected ? packCollected(s.collected) : null)) });
} catch (e) {
  clearInterval(metricsTimer);
  const error = e instanceof Error ? e : new SluiceError(String(e));
  post({ type: 'failed', error: serializeError(error) });
}
