// Owns the single-threaded executor: runs every subtask of a bounded job to completion on the calling
// thread, round by round, yielding to the event loop regularly so the host stays responsive.

import { JobCancelledError, SluiceError } from '../core/errors.ts';
import type { ExecutionChannel, ExecutionGraph } from '../graph/execution-graph.ts';
import type { SpillStoreFactory } from '../platform/types.ts';
import { BlockingChannel } from './blocking-channel.ts';
import { Channel, type InputChannel, type OutputChannel } from './channel.ts';
import { internalFailure } from './failure.ts';
import { JobResult, type OperatorMetrics } from './job-result.ts';
import { Task } from './task.ts';
import { type ProcessingClock, SystemClock } from './clock.ts';

export interface ExecutorOptions {
  /** Largest number of records in a batch between job vertices (default 1024). */
  batchSize?: number;
  /** Yield to the event loop after running this long (default 10 ms). */
  yieldEveryMs?: number;
  /** Cancels the job: it stops at the next round (or wake-up, while waiting for I/O) and rejects. */
  signal?: AbortSignal;
  /** Processing time for operators (timers, periodic watermarks, TTL). Default: the system clock. */
  clock?: ProcessingClock;
  /** Receives the live tasks once they are created (metrics of a running job). */
  onTasks?: (tasks: readonly Task[]) => void;
  /** Whether subtask `index` of job vertex `vertex` runs on this thread (default: all do); the others run on other threads. */
  runsHere?: (vertex: number, index: number) => boolean;
  /** The input of a subtask here whose producer runs on another thread. */
  remoteInput?: (channel: ExecutionChannel, description: string) => InputChannel;
  /** The output of a subtask here whose consumer runs on another thread. */
  remoteOutput?: (channel: ExecutionChannel, description: string) => OutputChannel;
  /**
   * Blocking exchanges (batch mode): every channel between two subtasks on this thread is a
   * {@link BlockingChannel} — its consumer starts reading when the producer has finished — holding
   * up to `memoryBytes` per channel and spilling the rest to a store from `spill`.
   */
  blocking?: { readonly spill: SpillStoreFactory; readonly memoryBytes: number };
}

/** `Producer#i -> Consumer#j`. */
export function channelDescription(c: ExecutionChannel): string {
  return `${c.edge.source.name}#${c.sourceSubtask} -> ${c.edge.target.name}#${c.targetSubtask}`;
}

const now: () => number = typeof globalThis.performance?.now === 'function' ? () => globalThis.performance.now() : () => Date.now();

/**
 * Lets the event loop run (I/O, messages, timers) and comes back soon: usually a message to itself over
 * a fresh MessageChannel (closed on arrival, so it never keeps the process alive), since `setTimeout(0)`
 * is clamped to ≥ 1 ms (9–12% idle on CPU-bound jobs that yield every 10 ms). But a message may come
 * back before the host runs its timers (Deno), so at least every {@link TIMER_YIELD_MS} the yield is a
 * `setTimeout(0)`: timers (user code, periodic watermarks) never starve.
 */
const TIMER_YIELD_MS = 50;
let lastTimerYield = 0;
const timerYield = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
const yieldToEventLoop: () => Promise<void> =
  typeof MessageChannel === 'function'
    ? () => {
        const t = now();
        if (t - lastTimerYield >= TIMER_YIELD_MS) {
          lastTimerYield = t;
          return timerYield();
        }
        return new Promise((resolve) => {
          const { port1, port2 } = new MessageChannel();
          port1.onmessage = () => {
            port1.close();
            resolve();
          };
          port2.postMessage(null);
        });
      }
    : timerYield;

/**
 * Runs a job: every subtask becomes a task; each round, every source emits one batch and every other
 * task (in topological order) drains its input channels, so a round's data reaches the sinks in the
 * same round and channels hold at most about a round's worth of batches. A job ends when every task
 * saw end-of-input on all its inputs. The first failure closes all tasks and rejects.
 *
 * A source reader waiting for I/O (its `ready()` answers a promise) is not polled until that promise
 * settles; when a round does no work and some source is waiting, the executor awaits the first of
 * them to settle instead of spinning. A round with no work and no source waiting is a stall (a bug).
 */
export async function executeGraph(eg: ExecutionGraph, opts: ExecutorOptions = {}): Promise<JobResult> {
  const batchSize = opts.batchSize ?? 1024;
  const yieldEvery = opts.yieldEveryMs ?? 10;
  const config = eg.job.config;
  const runsHere = opts.runsHere ?? (() => true);
  const mine = eg.subtasks.filter((st) => runsHere(st.vertex.id, st.index));
  const blocking: BlockingChannel[] = [];
  const inputs: InputChannel[] = [];
  const outputs: OutputChannel[] = [];
  for (const st of mine) {
    for (const c of st.inputs) {
      const description = channelDescription(c);
      if (runsHere(c.edge.source.id, c.sourceSubtask)) {
        const ch = opts.blocking
          ? new BlockingChannel({ id: c.id, description, spill: opts.blocking.spill, memoryBytes: opts.blocking.memoryBytes })
          : new Channel(c.id, description, batchSize);
        if (ch instanceof BlockingChannel) blocking.push(ch);
        inputs[c.id] = ch;
        outputs[c.id] = ch;
      } else {
        if (!opts.remoteInput) throw new Error(`internal: channel ${description} comes from another thread, and no remote channels were given`);
        inputs[c.id] = opts.remoteInput(c, description);
      }
    }
    for (const chans of st.outputs.values()) {
      for (const c of chans) {
        if (runsHere(c.edge.target.id, c.targetSubtask)) continue; // made with the consumer's inputs
        if (!opts.remoteOutput) throw new Error(`internal: channel ${channelDescription(c)} goes to another thread, and no remote channels were given`);
        outputs[c.id] = opts.remoteOutput(c, channelDescription(c));
      }
    }
  }
  const clock = opts.clock ?? new SystemClock();
  const tasks = mine.map(
    (st) => new Task(st, st.inputs.map((c) => inputs[c.id]!), (ids) => ids.map((id) => outputs[id]!), config, batchSize, clock),
  );
  opts.onTasks?.(tasks);

  // resolves the executor's wait for I/O: a waiting source became ready, or the job was cancelled
  let wake: (() => void) | undefined;
  const wakeUp = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  // a wake-up that comes while the executor is busy is remembered, so the next idle round does not sleep
  let woken = false;
  const onWake = (): void => {
    woken = true;
    wakeUp();
  };
  for (const t of tasks) t.onWake = onWake;
  const signal = opts.signal;
  signal?.addEventListener('abort', wakeUp);

  // a task whose step is suspended in an operator's promise (async sink, spill I/O, an output over its
  // bound) is busy: the other tasks go on meanwhile; its failure fails the job at the next round
  let asyncFailure: { error: unknown } | undefined;
  const onStepSettled = (): void => onWake();
  const onStepFailed = (e: unknown): void => {
    asyncFailure ??= { error: e };
    wakeUp();
  };

  const start = now();
  let failure: unknown;
  await undefined; // the job starts after the caller got its handle (executeAsync)
  try {
    for (const t of tasks) t.open();
    let lastYield = now();
    let running = tasks.length;
    while (running > 0) {
      if (signal?.aborted) {
        throw new JobCancelledError(config.jobName, signal.reason);
      }
      if (asyncFailure) throw asyncFailure.error;
      let progressed = false;
      woken = false;
      for (const t of tasks) {
        if (t.finished || t.busy) continue;
        const r = t.step();
        if (r === true) progressed = true;
        else if (r !== false) {
          progressed = true;
          r.then(onStepSettled, onStepFailed);
        }
      }
      running = tasks.reduce((n, t) => (t.finished ? n : n + 1), 0);
      if (tasks.every((t) => t.finished || t.busy)) progressed = false;
      else if (tasks.some((t) => t.busy)) await Promise.resolve(); // lets a settled async step resume soon
      if (!progressed && running > 0 && !woken && !asyncFailure) {
        if (!tasks.some((t) => t.waiting)) {
          throw new SluiceError(`internal error: job '${config.jobName}' stalled with ${running} unfinished tasks`, { domain: 'internal' });
        }
        // every task that could work waits for I/O, the clock, an async call or another thread: sleep until one is done
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      if (now() - lastYield >= yieldEvery) {
        await yieldToEventLoop();
        lastYield = now();
      }
    }
  } catch (e) {
    failure = e instanceof SluiceError ? e : internalFailure(e, {});
  } finally {
    signal?.removeEventListener('abort', wakeUp);
    wake = undefined;
  }
  for (const t of tasks) {
    const closeFailure = t.close();
    failure ??= closeFailure;
  }
  // blocking exchanges: spill files are gone before the job settles (read to the end, or dropped)
  for (const ch of blocking) {
    if (failure !== undefined) await ch.dispose().catch(() => undefined);
    else await ch.released;
  }
  if (failure !== undefined) throw failure;
  const durationMs = now() - start;

  const metrics = new Map<number, { -readonly [P in keyof OperatorMetrics]: OperatorMetrics[P] }>();
  for (const t of tasks) {
    for (const co of t.operators) {
      let m = metrics.get(co.node.id);
      if (!m) {
        m = { id: co.node.id, name: co.node.name, vertex: t.subtask.vertex.id, parallelism: co.node.parallelism, recordsIn: 0, recordsOut: 0, backpressureMs: 0 };
        metrics.set(co.node.id, m);
      }
      m.recordsIn += co.recordsIn + co.recordsIn2;
      m.recordsOut += co.recordsOut;
      m.backpressureMs += t.backpressuredMs;
    }
  }
  const ops = [...metrics.values()].sort((a, b) => a.id - b.id);
  return new JobResult(config.jobName, config.runtimeMode, durationMs, ops);
}
