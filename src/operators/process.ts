// Owns the process operators: one operator class runs ProcessFunction, KeyedProcessFunction, the
// (keyed) CoProcessFunctions and the broadcast process functions — user code per record with
// timestamps, side outputs, keyed state (heap backend, TTL) and event-/processing-time timers.

import { SluiceError } from '../core/errors.ts';
import type { KeySelectorSpec, MaybePromise, OperatorContext, Output, StreamOperator } from '../graph/operator.ts';
import type { ProcessingClock } from '../runtime/clock.ts';
import { userFailure } from '../runtime/failure.ts';
import { KeyGroupAssigner, extractKey } from '../runtime/keys.ts';
import { type Timer, TimerService } from '../runtime/timer-service.ts';
import { HeapKeyedStateBackend, type KeyedStateBackend } from '../state/heap-backend.ts';
import { keyGroupRangeForSubtask } from '../state/key-groups.ts';
import { OperatorStateBackend } from '../state/operator-state.ts';
import type { MapStateDescriptor, StateDescriptor } from '../state/descriptors.ts';
import type { OutputTag, RuntimeContext, TimeDomain, TimerService as UserTimerService } from '../api/functions.ts';
import { copyFunction } from '../api/functions.ts';

/** Which process function an operator runs and how its inputs are keyed. */
export interface ProcessSpec {
  /** `one`: processElement. `co`: processElement1/2. `broadcast`: processElement + processBroadcastElement. */
  readonly shape: 'one' | 'co' | 'broadcast';
  readonly fn: object;
  /** Key of input 1 (keyed functions). */
  readonly key?: KeySelectorSpec;
  /** Key of input 2 (keyed co-process). */
  readonly key2?: KeySelectorSpec;
}

/** Timers and keyed state need a keyed stream; a process function that asks for them otherwise gets this. */
export class KeyedContextRequiredError extends SluiceError {
  constructor(what: string, operator: string) {
    super(`${what} needs a keyed stream (use keyBy(...) before process(...))`, { domain: 'user', context: { operator } });
  }
}

type AnyFn = Record<string, ((...args: any[]) => any) | undefined>;

/** Runs a process function. Cost per record: one call; keyed: key extraction, key group (memoized for strings), one state-key switch. */
export class ProcessOperator implements StreamOperator<unknown, unknown> {
  private fn!: AnyFn;
  private ctx!: OperatorContext;
  private backend: KeyedStateBackend | undefined;
  private timers: TimerService<unknown, null> | undefined;
  private assigner: KeyGroupAssigner | undefined;
  private assigner2: KeyGroupAssigner | undefined;
  private opState: OperatorStateBackend | undefined;
  // the record or timer being processed
  private out: Output<unknown> | undefined;
  private ts: number | undefined;
  private key: unknown;
  private domain: TimeDomain = 'event-time';
  /** True while processBroadcastElement runs: broadcast state is writable only then. */
  private broadcastSide = false;
  private readonly collector = { collect: (r: unknown): void => this.out!.push(r, this.ts) };
  private readonly userCtx: Record<string, unknown>;
  private readonly timerView: UserTimerService;

  constructor(private readonly spec: ProcessSpec) {
    const self = this;
    this.timerView = {
      currentProcessingTime: () => self.ctx.clock.now(),
      currentWatermark: () => self.ctx.currentWatermark,
      registerEventTimeTimer: (t) => self.needTimers('registerEventTimeTimer').registerEventTimeTimer(self.key, t),
      registerProcessingTimeTimer: (t) => self.needTimers('registerProcessingTimeTimer').registerProcessingTimeTimer(self.key, t),
      deleteEventTimeTimer: (t) => self.needTimers('deleteEventTimeTimer').deleteEventTimeTimer(self.key, t),
      deleteProcessingTimeTimer: (t) => self.needTimers('deleteProcessingTimeTimer').deleteProcessingTimeTimer(self.key, t),
    };
    this.userCtx = {
      timestamp: () => self.ts,
      timerService: () => self.timerView,
      output: (tag: OutputTag<unknown>, value: unknown) => self.out!.pushSide(tag.id, value, self.ts),
      getCurrentKey: () => self.key,
      timeDomain: () => self.domain,
      getBroadcastState: (d: MapStateDescriptor<unknown, unknown>) => self.broadcastState(d),
    };
  }

  private get keyed(): boolean {
    return this.spec.key !== undefined;
  }

  private needTimers(what: string): TimerService<unknown, null> {
    if (!this.timers) throw new KeyedContextRequiredError(`timerService().${what}`, this.ctx.operatorName);
    return this.timers;
  }

  open(ctx: OperatorContext): void {
    this.ctx = ctx;
    const spec = this.spec;
    this.fn = copyFunction(spec.fn) as AnyFn;
    const where = { operator: ctx.operatorName, subtask: ctx.subtaskIndex };
    if (spec.key) {
      this.assigner = new KeyGroupAssigner(spec.key, ctx.maxParallelism);
      if (spec.key2) this.assigner2 = new KeyGroupAssigner(spec.key2, ctx.maxParallelism);
      this.backend = new HeapKeyedStateBackend({
        maxParallelism: ctx.maxParallelism,
        keyGroupRange: keyGroupRangeForSubtask(ctx.maxParallelism, ctx.parallelism, ctx.subtaskIndex),
        clock: () => ctx.clock.now(),
        operator: ctx.operatorName,
        subtask: ctx.subtaskIndex,
      });
      // processing-time timers wake up through the task's mailbox, between batches
      const clock: ProcessingClock = {
        now: () => ctx.clock.now(),
        schedule: (at, callback) =>
          ctx.scheduleAt(at, (out, now) => {
            this.out = out;
            callback(now);
          }),
      };
      const kgOf = (key: unknown): number => (key === this.key ? this.backend!.currentKeyGroup : this.assigner!.keyGroup(key, ctx.operatorName, ctx.subtaskIndex, -1));
      this.timers = new TimerService<unknown, null>({ keyGroupOf: kgOf, clock, onProcessingTime: (t) => this.fire(t) });
    }
    if (spec.shape === 'broadcast') this.opState = new OperatorStateBackend(where);
    const runtime: RuntimeContext = {
      operatorName: ctx.operatorName,
      subtaskIndex: ctx.subtaskIndex,
      parallelism: ctx.parallelism,
      maxParallelism: ctx.maxParallelism,
      getState: <D extends StateDescriptor<any, any>>(d: D) => {
        if (!this.backend) throw new KeyedContextRequiredError(`getState('${d.name}')`, ctx.operatorName);
        return this.backend.getState(d);
      },
    };
    try {
      this.fn.open?.call(this.fn, runtime);
    } catch (e) {
      throw userFailure(e, where);
    }
  }

  private broadcastState(d: MapStateDescriptor<unknown, unknown>): unknown {
    if (!this.opState) throw new SluiceError('getBroadcastState is only available in a broadcast process function', { domain: 'user', context: { operator: this.ctx.operatorName } });
    return this.broadcastSide ? this.opState.getBroadcastState(d) : this.opState.getReadOnlyBroadcastState(d);
  }

  processBatch(batch: readonly unknown[], out: Output<unknown>, firstIndex: number, timestamps: readonly number[] | undefined): MaybePromise {
    const method = this.spec.shape === 'co' ? 'processElement1' : 'processElement';
    this.run(batch, out, firstIndex, timestamps, method, this.spec.key, this.assigner);
  }

  processBatch2(batch: readonly unknown[], out: Output<unknown>, firstIndex: number, timestamps: readonly number[] | undefined): MaybePromise {
    if (this.spec.shape === 'broadcast') {
      this.broadcastSide = true;
      try {
        this.run(batch, out, firstIndex, timestamps, 'processBroadcastElement', undefined, undefined);
      } finally {
        this.broadcastSide = false;
      }
    }
    else this.run(batch, out, firstIndex, timestamps, 'processElement2', this.spec.key2 ?? this.spec.key, this.assigner2 ?? this.assigner);
  }

  private run(
    batch: readonly unknown[],
    out: Output<unknown>,
    firstIndex: number,
    timestamps: readonly number[] | undefined,
    method: string,
    keySpec: KeySelectorSpec | undefined,
    assigner: KeyGroupAssigner | undefined,
  ): void {
    const fn = this.fn;
    const f = fn[method];
    if (typeof f !== 'function') {
      throw new SluiceError(`the process function of ${this.ctx.operatorName} has no ${method} method`, { domain: 'user', context: { operator: this.ctx.operatorName } });
    }
    const operator = this.ctx.operatorName;
    const subtask = this.ctx.subtaskIndex;
    const backend = this.backend;
    const userCtx = this.userCtx;
    const collector = this.collector;
    this.out = out;
    this.key = undefined;
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i];
      const t = timestamps === undefined ? NaN : timestamps[i]!;
      this.ts = t === t ? t : undefined;
      if (keySpec !== undefined) {
        const key = extractKey(keySpec, r, operator, subtask, firstIndex + i);
        const kg = assigner!.keyGroup(key, operator, subtask, firstIndex + i);
        backend!.setCurrentKey(key, kg);
        this.key = key;
      }
      try {
        f.call(fn, r, userCtx, collector);
      } catch (e) {
        throw userFailure(e, { operator, subtask, recordIndex: firstIndex + i });
      }
    }
  }

  processWatermark(watermark: number, out: Output<unknown>): MaybePromise {
    const timers = this.timers;
    if (!timers || timers.eventTimeTimers === 0) return;
    this.out = out;
    timers.advanceWatermark(watermark, (t) => this.fire(t));
  }

  private fire(timer: Timer<unknown, null>): void {
    const onTimer = this.fn.onTimer;
    if (typeof onTimer !== 'function') return;
    this.backend!.setCurrentKey(timer.key, timer.keyGroup);
    this.key = timer.key;
    this.domain = timer.domain;
    this.ts = timer.domain === 'event-time' ? timer.timestamp : undefined;
    try {
      onTimer.call(this.fn, timer.timestamp, this.userCtx, this.collector);
    } catch (e) {
      throw userFailure(e, { operator: this.ctx.operatorName, subtask: this.ctx.subtaskIndex });
    } finally {
      this.domain = 'event-time';
    }
  }

  close(): void {
    this.timers?.close();
    try {
      this.fn?.close?.call(this.fn);
    } finally {
      this.backend?.dispose();
    }
  }
}
