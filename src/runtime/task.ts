// Owns the task of one subtask of a job vertex: its chain of operator instances (records pass between
// them by direct call, a batch at a time), its input channels with their watermark valve, its record
// writers, and its mailbox (actions that run between batches: clock callbacks, async results).

import type { JobConfig, StreamNode } from '../graph/stream-graph.ts';
import type { ExecutionSubtask } from '../graph/execution-graph.ts';
import type { KeyedStateStore, MaybePromise, OperatorContext, Output, SourceReader, StreamOperator } from '../graph/operator.ts';
import type { InputChannel, OutputChannel, WatermarkStatus } from './channel.ts';
import { ACTIVE_STATUS, IDLE_STATUS, watermarkEvent } from './channel.ts';
import type { ProcessingClock } from './clock.ts';
import { internalFailure, userFailure } from './failure.ts';
import { HeapKeyedState } from './keyed-state.ts';
import { BatchOutput } from './output.ts';
import { RecordWriter } from './record-writer.ts';
import { MAX_WATERMARK, MIN_WATERMARK, WatermarkValve } from './watermark-valve.ts';

const monotonicNow: () => number =
  typeof globalThis.performance?.now === 'function' ? () => globalThis.performance.now() : () => Date.now();

/** Runs `next` after `r` (at once when `r` is not a promise). */
function then(r: MaybePromise, next: () => MaybePromise): MaybePromise {
  return r === undefined ? next() : r.then(next);
}

/** Calls `f` on each item in order, waiting for each promise before the next call. */
function eachInOrder<T>(items: readonly T[], f: (item: T) => MaybePromise, from = 0): MaybePromise {
  for (let i = from; i < items.length; i++) {
    const r = f(items[i]!);
    if (r !== undefined) return r.then(() => eachInOrder(items, f, i + 1));
  }
  return undefined;
}

/** What a task offers its operators: the clock, its mailbox and the executor's wake-up. */
export interface TaskServices {
  readonly clock: ProcessingClock;
  mailbox(action: () => MaybePromise): void;
  scheduleAt(at: number, action: (now: number) => MaybePromise): () => void;
  track(p: Promise<unknown>): void;
  /** A promise while some output channel of the task is over its bound (undefined: none is). */
  outputsBlocked(): Promise<void> | undefined;
}

/** One operator instance inside a task, with its chained successors and the writers it feeds. */
export class ChainedOperator {
  recordsIn = 0;
  recordsIn2 = 0;
  recordsOut = 0;
  /** The operator's current input watermark. */
  watermark = MIN_WATERMARK;
  /** Successors on the main output, called directly. */
  readonly chained: ChainedOperator[] = [];
  readonly writers: RecordWriter[] = [];
  /** Successors and writers of side outputs, by tag id. */
  readonly sideChained = new Map<string, ChainedOperator[]>();
  readonly sideWriters = new Map<string, RecordWriter[]>();
  /** Keyed state by name, kept here so that a checkpoint can snapshot it. */
  readonly keyedState = new Map<string, HeapKeyedState<unknown>>();
  readonly ctx: OperatorContext;
  private readonly forwards: boolean;
  /** Emits a flushed part of an output, then waits while the task's outputs are over their bound. */
  private readonly emitPart: (out: BatchOutput) => MaybePromise;

  constructor(
    readonly node: StreamNode,
    readonly op: StreamOperator | undefined,
    readonly subtaskIndex: number,
    config: JobConfig,
    services: TaskServices,
  ) {
    this.forwards = op?.forwardsWatermarks !== false;
    this.emitPart = (out) => then(this.emit(out), () => services.outputsBlocked());
    const keyedState = this.keyedState;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.ctx = {
      operatorName: node.name,
      operatorId: node.id,
      subtaskIndex,
      parallelism: node.parallelism,
      maxParallelism: config.maxParallelism,
      runtimeMode: config.runtimeMode,
      clock: services.clock,
      get currentWatermark() {
        return self.watermark;
      },
      getKeyedState<V>(name: string): KeyedStateStore<V> {
        let s = keyedState.get(name);
        if (!s) keyedState.set(name, (s = new HeapKeyedState<unknown>()));
        return s as HeapKeyedState<V>;
      },
      mailbox: (action) => services.mailbox(() => this.runMail(action)),
      scheduleAt: (at, action) => services.scheduleAt(at, (now) => this.runMail((out) => action(out, now))),
      track: (p) => services.track(p),
    };
  }

  private where(): { operator: string; subtask: number } {
    return { operator: this.node.name, subtask: this.subtaskIndex };
  }

  private guard(r: MaybePromise): MaybePromise {
    return r === undefined
      ? undefined
      : r.then(undefined, (e: unknown) => {
          throw internalFailure(e, this.where());
        });
  }

  /** Runs a batch of input `input` (0 or 1) through this operator and on down the chain. */
  push(batch: readonly unknown[], timestamps: readonly number[] | undefined, input: 0 | 1 = 0): MaybePromise {
    const out = new BatchOutput(this.emitPart);
    let r: MaybePromise;
    try {
      if (input === 0) {
        const first = this.recordsIn;
        this.recordsIn += batch.length;
        r = this.op!.processBatch(batch, out, first, timestamps);
      } else {
        const first = this.recordsIn2;
        this.recordsIn2 += batch.length;
        r = this.op!.processBatch2!(batch, out, first, timestamps);
      }
    } catch (e) {
      throw internalFailure(e, this.where());
    }
    return then(this.guard(r), () => this.emit(out));
  }

  /** The input watermark advanced: the operator reacts (timers), then the watermark moves on. */
  pushWatermark(wm: number): MaybePromise {
    if (wm <= this.watermark) return undefined;
    this.watermark = wm;
    const op = this.op;
    if (op?.processWatermark) {
      const out = new BatchOutput(this.emitPart);
      let r: MaybePromise;
      try {
        r = op.processWatermark(wm, out);
      } catch (e) {
        throw internalFailure(e, this.where());
      }
      return then(this.guard(r), () => then(this.emit(out), () => (this.forwards ? this.forwardWatermark(wm) : undefined)));
    }
    return this.forwards ? this.forwardWatermark(wm) : undefined;
  }

  /** The input became idle or active (only forwarded: idleness matters to downstream valves). */
  pushStatus(status: WatermarkStatus): MaybePromise {
    return this.forwards ? this.forwardStatus(status) : undefined;
  }

  /** Chained successors on the main output and on every side output. */
  private successors(): readonly ChainedOperator[] {
    return this.sideChained.size === 0 ? this.chained : [...this.chained, ...[...this.sideChained.values()].flat()];
  }

  private forwardWatermark(wm: number): MaybePromise {
    if (this.writers.length > 0) {
      const ev = watermarkEvent(wm);
      for (const w of this.writers) w.broadcastEvent(ev);
    }
    for (const ws of this.sideWriters.values()) for (const w of ws) w.broadcastEvent(watermarkEvent(wm));
    return eachInOrder(this.successors(), (c) => c.pushWatermark(wm));
  }

  private forwardStatus(status: WatermarkStatus): MaybePromise {
    const ev = status === 'idle' ? IDLE_STATUS : ACTIVE_STATUS;
    for (const w of this.writers) w.broadcastEvent(ev);
    for (const ws of this.sideWriters.values()) for (const w of ws) w.broadcastEvent(ev);
    return eachInOrder(this.successors(), (c) => c.pushStatus(status));
  }

  /** Hands this operator's output to chained operators (direct call) and record writers. */
  emit(out: BatchOutput): MaybePromise {
    let r: MaybePromise;
    const marks = out.marks;
    if (marks === undefined) r = this.emitRecords(out.records, out.timestamps);
    else {
      // watermarks/status the operator generated, each after the records emitted before it
      let prev = 0;
      const steps: (() => MaybePromise)[] = [];
      for (const m of marks) {
        const from = prev;
        const to = m.at;
        if (to > from) steps.push(() => this.emitRecords(out.records.slice(from, to), out.timestamps?.slice(from, to)));
        prev = to;
        steps.push(() => (m.kind === 'watermark' ? this.forwardWatermark(m.watermark) : this.forwardStatus(m.status)));
      }
      if (out.records.length > prev) steps.push(() => this.emitRecords(out.records.slice(prev), out.timestamps?.slice(prev)));
      r = eachInOrder(steps, (s) => s());
    }
    const side = out.side;
    if (side === undefined) return r;
    return then(r, () =>
      eachInOrder([...side], ([tag, buf]) => {
        this.recordsOut += buf.length;
        for (const w of this.sideWriters.get(tag) ?? []) w.write(buf.records, buf.timestamps);
        return eachInOrder(this.sideChained.get(tag) ?? [], (c) => c.push(buf.records, buf.timestamps));
      }),
    );
  }

  private emitRecords(records: readonly unknown[], timestamps: readonly number[] | undefined): MaybePromise {
    if (records.length === 0) return undefined;
    this.recordsOut += records.length;
    for (const w of this.writers) w.write(records, timestamps);
    const chained = this.chained;
    if (chained.length === 1) return chained[0]!.push(records, timestamps);
    return eachInOrder(chained, (c) => c.push(records, timestamps));
  }

  /** Runs a mailbox action with a fresh output and emits what it produced. */
  runMail(action: (out: Output<any>) => MaybePromise): MaybePromise {
    const out = new BatchOutput(this.emitPart);
    let r: MaybePromise;
    try {
      r = action(out);
    } catch (e) {
      throw internalFailure(e, this.where());
    }
    return then(this.guard(r), () => this.emit(out));
  }

  /** End of input: lets the operator emit what it holds, then finishes its successors in order. */
  finish(): MaybePromise {
    let r: MaybePromise = undefined;
    const out = new BatchOutput(this.emitPart);
    if (this.op?.endInput) {
      try {
        r = this.op.endInput(out);
      } catch (e) {
        throw internalFailure(e, this.where());
      }
    }
    return then(this.guard(r), () =>
      then(this.emit(out), () => {
        return then(
          eachInOrder(this.successors(), (c) => c.finish()),
          () => {
            for (const w of this.writers) w.finish();
            for (const ws of this.sideWriters.values()) for (const w of ws) w.finish();
          },
        );
      }),
    );
  }

  flush(): void {
    for (const w of this.writers) w.flush();
    for (const ws of this.sideWriters.values()) for (const w of ws) w.flush();
  }
}

/** A running subtask: a chain head fed either by a source reader or by input channels. */
export class Task {
  readonly operators: ChainedOperator[] = [];
  readonly head: ChainedOperator;
  private readonly reader: SourceReader | undefined;
  private readonly inputIndex: (0 | 1)[];
  private readonly valve: WatermarkValve | undefined;
  /** Watermarks/status the valve decided while events were fed to it, applied in order. */
  private valveOut: (number | WatermarkStatus)[] = [];
  private endedInputs = 0;
  private opened = false;
  finished = false;
  /**
   * Set while the source reader waits for I/O (its `ready()` promise has not settled): `step()` then
   * does not poll it. Cleared when the promise settles, which also calls `onWake`.
   */
  blocked = false;
  /** Mailbox actions waiting to run (clock callbacks, async results). */
  private readonly mail: (() => MaybePromise)[] = [];
  /** Clock callbacks armed by operators, cancelled when the task ends. */
  private readonly scheduled = new Set<() => void>();
  /** In-flight async calls operators told the executor about. */
  pending = 0;
  /** Called when something this task waited for happened (the executor's wake-up). */
  onWake: () => void = () => undefined;
  /** Every record writer of the chain (main and side outputs). */
  private readonly allWriters: RecordWriter[] = [];
  /** Set while an output channel is over its bound and the task waits for it (backpressure). */
  private awaitingOutput = false;
  private backpressuredSince = 0;
  /** Milliseconds (real time) this task spent unable to write because an output was over its bound. */
  backpressuredMs = 0;

  constructor(
    readonly subtask: ExecutionSubtask,
    private readonly inputs: readonly InputChannel[],
    outputChannels: (channelIds: readonly number[]) => OutputChannel[],
    config: JobConfig,
    private readonly batchSize: number,
    clock: ProcessingClock,
  ) {
    const v = subtask.vertex;
    const services: TaskServices = {
      clock,
      mailbox: (action) => {
        if (this.finished) return;
        this.mail.push(action);
        this.onWake();
      },
      scheduleAt: (at, action) => {
        let cancel: (() => void) | undefined = undefined;
        const c = clock.schedule(at, (now) => {
          if (cancel) this.scheduled.delete(cancel);
          services.mailbox(() => action(now));
        });
        cancel = () => {
          this.scheduled.delete(cancel!);
          c();
        };
        this.scheduled.add(cancel);
        return cancel;
      },
      track: (p) => {
        this.pending++;
        const done = (): void => {
          this.pending--;
          this.onWake();
        };
        p.then(done, done);
      },
      outputsBlocked: () => {
        for (const w of this.allWriters) {
          if (!w.isAvailable) return new Promise<void>((resolve) => w.whenAvailable(resolve)).then(() => services.outputsBlocked());
        }
        return undefined;
      },
    };
    const byNode = new Map<number, ChainedOperator>();
    for (const node of v.nodes) {
      let op: StreamOperator | undefined;
      if (node.kind !== 'source') op = node.factory!();
      const co = new ChainedOperator(node, op, subtask.index, config, services);
      byNode.set(node.id, co);
      this.operators.push(co);
      const inEdge = node.inEdges[0];
      if (node !== v.nodes[0] && inEdge) {
        const up = byNode.get(inEdge.source.id)!;
        if (inEdge.outputTag === undefined) up.chained.push(co);
        else {
          const list = up.sideChained.get(inEdge.outputTag) ?? [];
          list.push(co);
          up.sideChained.set(inEdge.outputTag, list);
        }
      }
    }
    for (const e of v.outputs) {
      const chans = outputChannels(subtask.outputs.get(e.id)!.map((c) => c.id));
      const up = byNode.get(e.sourceNode.id)!;
      const w = new RecordWriter(chans, e.partition, batchSize, config.maxParallelism, subtask.index, e.sourceNode.name);
      this.allWriters.push(w);
      if (e.outputTag === undefined) up.writers.push(w);
      else {
        const list = up.sideWriters.get(e.outputTag) ?? [];
        list.push(w);
        up.sideWriters.set(e.outputTag, list);
      }
    }
    this.head = this.operators[0]!;
    this.reader = this.head.node.source?.createReader(subtask.index, v.parallelism);
    this.inputIndex = subtask.inputs.map((c) => c.edge.inputIndex);
    // every input wakes the task when it gets events: another thread, I/O, or a busy task of this thread
    for (const ch of inputs) ch.onAvailable = () => this.onWake();
    this.valve =
      inputs.length > 0
        ? new WatermarkValve(inputs.length, {
            emitWatermark: (t) => this.valveOut.push(t),
            emitStatus: (s) => this.valveOut.push(s),
          })
        : undefined;
  }

  get name(): string {
    return `${this.subtask.vertex.name} (${this.subtask.index + 1}/${this.subtask.vertex.parallelism})`;
  }

  /** Whether the task waits for something outside the executor (I/O, the clock, async calls). */
  get waiting(): boolean {
    if (this.finished) return false;
    if (this.busy || this.blocked || this.awaitingOutput || this.pending > 0 || this.scheduled.size > 0 || this.mail.length > 0) return true;
    for (const ch of this.inputs) if (ch.external === true) return true;
    return false;
  }

  /** Backpressure share so far: backpressured ms, including a wait still going on. */
  backpressureMs(at: number = monotonicNow()): number {
    return this.backpressuredMs + (this.awaitingOutput ? at - this.backpressuredSince : 0);
  }

  /**
   * Whether every output channel can take more. If not, the task waits (counted as backpressure)
   * until they can, and the executor is woken then.
   */
  private outputsAvailable(): boolean {
    if (this.awaitingOutput) return false;
    for (const w of this.allWriters) {
      if (!w.isAvailable) {
        this.awaitingOutput = true;
        this.backpressuredSince = monotonicNow();
        w.whenAvailable(() => {
          this.awaitingOutput = false;
          this.backpressuredMs += monotonicNow() - this.backpressuredSince;
          this.onWake();
        });
        return false;
      }
    }
    return true;
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
   * One scheduling step: pending mailbox actions run; then a source emits one batch, other tasks drain
   * their inputs. Answers whether it did work (a source without `ready()` always counts as working
   * while it is not exhausted); false for a source waiting for I/O (`blocked` is then set until its
   * `ready()` promise settles) or a task whose outputs are over their bound.
   *
   * Synchronous unless an operator call returns a promise (async sink, spill I/O, a flush waiting for
   * an output): the step then stops there and answers a promise of `true`. The task is `busy` until
   * it settles; the executor runs other tasks meanwhile and calls `step()` again afterwards, which
   * goes on where this one stopped (channels are queues, and the valve's pending watermarks are
   * applied before more input is read).
   */
  step(): boolean | Promise<boolean> {
    if (this.finished) return false;
    let progressed = false;
    while (this.mail.length > 0 && !this.finished) {
      progressed = true;
      const r = this.mail.shift()!();
      if (r !== undefined) return this.suspend(r);
    }
    if (this.valveOut.length > 0) {
      progressed = true;
      const r = this.applyValve();
      if (r !== undefined) return this.suspend(r);
    }
    if (this.finished || this.blocked || !this.outputsAvailable()) {
      if (progressed) this.flush();
      return progressed;
    }
    if (this.reader) {
      const r = this.stepSource(this.reader);
      return r === false ? progressed : r;
    }
    const head = this.head;
    const valve = this.valve!;
    for (let ci = 0; ci < this.inputs.length; ci++) {
      const ch = this.inputs[ci]!;
      for (let ev = ch.poll(); ev !== undefined; ev = ch.poll()) {
        progressed = true;
        if (ev.kind === 'data') {
          const r = head.push(ev.batch, ev.timestamps, this.inputIndex[ci]!);
          if (r !== undefined) return this.suspend(r);
          // an output over its bound: stop taking input (the rest stays queued in the channels)
          if (!this.outputsAvailable()) {
            this.flush();
            return true;
          }
        } else {
          valve.input(ci, ev);
          if (ev.kind === 'end-of-input') this.endedInputs++;
          if (this.valveOut.length > 0) {
            const r = this.applyValve();
            if (r !== undefined) return this.suspend(r);
          }
        }
      }
    }
    if (this.endedInputs === this.inputs.length) {
      const r = this.finishAll();
      if (r !== undefined) return this.suspend(r);
    } else if (progressed) this.flush();
    return progressed;
  }

  /** Whether a step is suspended in an operator's promise (the executor does not step the task then). */
  busy = false;

  /** The step stopped at a pending operator call: the task is busy until it settles. */
  private suspend(r: Promise<unknown>): Promise<boolean> {
    this.busy = true;
    return r.then(
      () => {
        this.busy = false;
        if (!this.finished) this.flush();
        return true;
      },
      (e: unknown) => {
        this.busy = false;
        throw e;
      },
    );
  }

  /** Applies the watermarks/status the valve decided, in order; a promise if one of them is pending. */
  private applyValve(): MaybePromise {
    const q = this.valveOut;
    while (q.length > 0) {
      const x = q.shift()!;
      const r = typeof x === 'number' ? this.head.pushWatermark(x) : this.head.pushStatus(x);
      if (r !== undefined) return r.then(() => this.applyValve());
    }
    return undefined;
  }

  private flush(): void {
    for (const co of this.operators) co.flush();
  }

  /** A source's step: one batch. True/false as `step()`, or a promise of true while an emit is pending. */
  private stepSource(reader: SourceReader): boolean | Promise<boolean> {
    const out: unknown[] = [];
    let more: boolean;
    try {
      more = reader.poll(out, this.batchSize);
    } catch (e) {
      throw userFailure(e, { operator: this.head.node.name, subtask: this.subtask.index });
    }
    const emitted = out.length > 0 ? this.head.emit(sourceOutput(out)) : undefined;
    if (!more) {
      // a bounded source's end is the end of event time: pending event-time timers fire downstream
      const r = then(emitted, () => then(this.head.pushWatermark(MAX_WATERMARK), () => this.finishAll()));
      return r === undefined ? true : this.suspend(r);
    }
    if (emitted !== undefined) return this.suspend(emitted);
    this.flush();
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
      this.onWake();
    };
    // a rejection only wakes the task: the reader reports its failure from the next poll()
    Promise.resolve(pending).then(unblock, unblock);
    return false;
  }

  private finishAll(): MaybePromise {
    return then(this.head.finish(), () => {
      this.finished = true;
      this.cancelScheduled();
      this.mail.length = 0;
    });
  }

  private cancelScheduled(): void {
    for (const c of [...this.scheduled]) c();
    this.scheduled.clear();
  }

  /** Closes every operator; the first failure is returned (not thrown) so that all get closed. */
  close(): unknown {
    this.cancelScheduled();
    this.mail.length = 0;
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

/** Wraps a source's records (no timestamps) as an operator output. */
function sourceOutput(records: unknown[]): BatchOutput {
  const o = new BatchOutput();
  o.records = records;
  return o;
}
