// Owns the task of one subtask of a job vertex: its chain of operator instances (records pass between
// them by direct call, a batch at a time), its input channels and its record writers.

import type { JobConfig, StreamNode } from '../graph/stream-graph.ts';
import type { ExecutionSubtask } from '../graph/execution-graph.ts';
import type { KeyedStateStore, OperatorContext, SourceReader, StreamOperator } from '../graph/operator.ts';
import type { Channel } from './channel.ts';
import { internalFailure, userFailure } from './failure.ts';
import { HeapKeyedState } from './keyed-state.ts';
import { RecordWriter } from './record-writer.ts';

/** One operator instance inside a task, with its chained successors and the writers it feeds. */
export class ChainedOperator {
  recordsIn = 0;
  recordsOut = 0;
  readonly chained: ChainedOperator[] = [];
  readonly writers: RecordWriter[] = [];
  /** Keyed state by name, kept here so that a checkpoint can snapshot it. */
  readonly keyedState = new Map<string, HeapKeyedState<unknown>>();
  readonly ctx: OperatorContext;

  constructor(
    readonly node: StreamNode,
    readonly op: StreamOperator | undefined,
    readonly subtaskIndex: number,
    config: JobConfig,
  ) {
    const keyedState = this.keyedState;
    this.ctx = {
      operatorName: node.name,
      operatorId: node.id,
      subtaskIndex,
      parallelism: node.parallelism,
      maxParallelism: config.maxParallelism,
      runtimeMode: config.runtimeMode,
      getKeyedState<V>(name: string): KeyedStateStore<V> {
        let s = keyedState.get(name);
        if (!s) keyedState.set(name, (s = new HeapKeyedState<unknown>()));
        return s as HeapKeyedState<V>;
      },
    };
  }

  private where(): { operator: string; subtask: number } {
    return { operator: this.node.name, subtask: this.subtaskIndex };
  }

  /** Runs a batch through this operator and on down the chain. */
  push(batch: readonly unknown[]): void {
    const first = this.recordsIn;
    this.recordsIn += batch.length;
    const out: unknown[] = [];
    try {
      this.op!.processBatch(batch, out, first);
    } catch (e) {
      throw internalFailure(e, this.where());
    }
    this.emit(out);
  }

  /** Hands this operator's output to chained operators (direct call) and record writers. */
  emit(out: readonly unknown[]): void {
    if (out.length === 0) return;
    this.recordsOut += out.length;
    for (const c of this.chained) c.push(out);
    for (const w of this.writers) w.write(out);
  }

  /** End of input: lets the operator emit what it holds, then finishes its successors in order. */
  finish(): void {
    if (this.op?.endInput) {
      const out: unknown[] = [];
      try {
        this.op.endInput(out);
      } catch (e) {
        throw internalFailure(e, this.where());
      }
      this.emit(out);
    }
    for (const c of this.chained) c.finish();
    for (const w of this.writers) w.finish();
  }

  flush(): void {
    for (const w of this.writers) w.flush();
  }
}

/** A running subtask: a chain head fed either by a source reader or by input channels. */
export class Task {
  readonly operators: ChainedOperator[] = [];
  readonly head: ChainedOperator;
  private readonly reader: SourceReader | undefined;
  private endedInputs = 0;
  private opened = false;
  finished = false;
  /**
   * Set while the source reader waits for I/O (its `ready()` promise has not settled): `step()` then
   * does not poll it. Cleared when the promise settles, which also calls `onUnblocked`.
   */
  blocked = false;
  /** Called when a blocked source reader becomes ready (the executor's wake-up). */
  onUnblocked: () => void = () => undefined;

  constructor(
    readonly subtask: ExecutionSubtask,
    private readonly inputs: readonly Channel[],
    outputChannels: (channelIds: readonly number[]) => Channel[],
    config: JobConfig,
    private readonly batchSize: number,
  ) {
    const v = subtask.vertex;
    const byNode = new Map<number, ChainedOperator>();
    for (const node of v.nodes) {
      let op: StreamOperator | undefined;
      if (node.kind !== 'source') op = node.factory!();
      const co = new ChainedOperator(node, op, subtask.index, config);
      byNode.set(node.id, co);
      this.operators.push(co);
      const inEdge = node.inEdges[0];
      if (node !== v.nodes[0] && inEdge) byNode.get(inEdge.source.id)!.chained.push(co);
    }
    for (const e of v.outputs) {
      const chans = outputChannels(subtask.outputs.get(e.id)!.map((c) => c.id));
      byNode.get(e.sourceNode.id)!.writers.push(new RecordWriter(chans, e.partition, batchSize, config.maxParallelism, subtask.index));
    }
    this.head = this.operators[0]!;
    this.reader = this.head.node.source?.createReader(subtask.index, v.parallelism);
  }

  get name(): string {
    return `${this.subtask.vertex.name} (${this.subtask.index + 1}/${this.subtask.vertex.parallelism})`;
  }

  open(): void {
    this.opened = true;
    // tail first, as Flink: an operator is ready before its predecessor can emit to it
    for (let i = this.operators.length - 1; i >= 0; i--) {
      const co = this.operators[i]!;
      try {
        if (i === 0 && this.reader) this.reader.open?.(co.ctx);
        else co.op!.open?.(co.ctx);
      } catch (e) {
        throw userFailure(e, { operator: co.node.name, subtask: this.subtask.index });
      }
    }
  }

  /**
   * One scheduling step: a source emits one batch; other tasks drain their inputs. True if it did work
   * (a source without `ready()` always counts as working while it is not exhausted). False for a source
   * waiting for I/O: `blocked` is then set until its `ready()` promise settles.
   */
  step(): boolean {
    if (this.finished || this.blocked) return false;
    if (this.reader) return this.stepSource(this.reader);
    let progressed = false;
    for (const ch of this.inputs) {
      for (let ev = ch.poll(); ev !== undefined; ev = ch.poll()) {
        progressed = true;
        if (ev.kind === 'data') this.head.push(ev.batch);
        else if (ev.kind === 'end-of-input') this.endedInputs++;
      }
    }
    if (this.endedInputs === this.inputs.length) this.finishAll();
    else if (progressed) for (const co of this.operators) co.flush();
    return progressed;
  }

  private stepSource(reader: SourceReader): boolean {
    const out: unknown[] = [];
    let more: boolean;
    try {
      more = reader.poll(out, this.batchSize);
    } catch (e) {
      throw userFailure(e, { operator: this.head.node.name, subtask: this.subtask.index });
    }
    this.head.emit(out);
    if (!more) {
      this.finishAll();
      return true;
    }
    for (const co of this.operators) co.flush();
    if (out.length > 0 || reader.ready === undefined) return true;
    let pending: Promise<void> | undefined;
    try {
      pending = reader.ready();
    } catch (e) {
      throw userFailure(e, { operator: this.head.node.name, subtask: this.subtask.index });
    }
    if (pending === undefined) return true;
    this.blocked = true;
    const unblock = (): void => {
      this.blocked = false;
      this.onUnblocked();
    };
    // a rejection only wakes the task: the reader reports its failure from the next poll()
    Promise.resolve(pending).then(unblock, unblock);
    return false;
  }

  private finishAll(): void {
    this.head.finish();
    this.finished = true;
  }

  /** Closes every operator; the first failure is returned (not thrown) so that all get closed. */
  close(): unknown {
    if (!this.opened) return undefined;
    this.opened = false;
    let failure: unknown;
    for (let i = 0; i < this.operators.length; i++) {
      const co = this.operators[i]!;
      try {
        if (i === 0 && this.reader) this.reader.close?.();
        else co.op!.close?.();
      } catch (e) {
        failure ??= userFailure(e, { operator: co.node.name, subtask: this.subtask.index });
      }
    }
    return failure;
  }
}
