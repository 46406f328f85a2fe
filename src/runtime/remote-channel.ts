// Owns the channels between subtasks on different threads: the producer side of one job edge for one
// producer subtask (its remote subpartitions, through a PartitionWriter into credit channels over
// MessagePorts) and the consumer side (a ChannelReader decoding buffers back into batches), both
// behind the executor's OutputChannel / InputChannel interfaces.

import type { CreditReceiver, CreditSender } from './network/credit-channel.ts';
import type { LocalBufferPool } from './network/buffer-pool.ts';
import { ChannelReader } from './network/channel-reader.ts';
import { PartitionWriter } from './network/partition-writer.ts';
import { createDeserializer } from './network/serializer.ts';
import type { ProcessingClock } from './clock.ts';
import type { ChannelEvent, DataEvent, InputChannel, OutputChannel } from './channel.ts';

/** A push that did not fit in the pool yet: the rest of a batch from `from`, or an event. */
interface Pending {
  readonly sub: number;
  readonly ev: ChannelEvent;
  from: number;
}

/** Options of {@link RemoteOutputs}. */
export interface RemoteOutputsOptions {
  /** The producer's buffers: at least `senders.length + 1`. Its size bounds everything in flight. */
  pool: LocalBufferPool;
  /** One credit channel per remote consumer subtask. */
  senders: readonly CreditSender<ChannelEvent>[];
  /** ms a partly filled buffer may wait (0 = after every write, -1 = only when full). */
  bufferTimeoutMs: number;
  clock: ProcessingClock;
  /** Producer operator and subtask named in errors. */
  operator: string;
  subtask: number;
}

/**
 * The remote subpartitions of one producer subtask on one job edge. A record writer pushes into
 * {@link channel}s; batches are serialized into network buffers from the producer's pool. When the pool
 * is dry, the rest of the batch (and everything pushed after it, in order) waits here and every
 * channel of the partition answers `isAvailable` false, so the producing task pauses until the
 * consumers have given buffers back (backpressure bounded by the pool, plus one batch).
 *
 * @example
 * ```ts
 * const outs = new RemoteOutputs({ pool, senders, bufferTimeoutMs: 100, clock, operator: 'Map', subtask: 0 });
 * const ch = outs.channel(0, 'Map#0 -> Sink#1');   // an OutputChannel for a RecordWriter
 * ```
 */
export class RemoteOutputs {
  private readonly writer: PartitionWriter<unknown, ChannelEvent>;
  private readonly pending: Pending[] = [];
  private pendingRecords = 0;
  private listeners: (() => void)[] = [];
  private ended = 0;
  private waiting = false;

  constructor(private readonly options: RemoteOutputsOptions) {
    this.writer = new PartitionWriter<unknown, ChannelEvent>({
      pool: options.pool,
      senders: options.senders,
      bufferTimeoutMs: options.bufferTimeoutMs,
      clock: options.clock,
      operator: options.operator,
      subtask: options.subtask,
    });
  }

  /** The output channel of remote subpartition `sub`. */
  channel(sub: number, description: string): OutputChannel {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const outs = this;
    return {
      description,
      push: (ev) => outs.push(sub, ev),
      get bufferedRecords() {
        return outs.pendingRecords;
      },
      get isAvailable() {
        return outs.pending.length === 0;
      },
      whenAvailable: (listener) => outs.whenAvailable(listener),
    };
  }

  /** Backpressure and traffic counters of the producer's pool and writer. */
  get stats(): { waitTimeMs: number; buffersSent: number; timedFlushes: number } {
    const w = this.writer.stats;
    return { waitTimeMs: this.options.pool.metrics.waitTimeMs, buffersSent: w.buffersSent, timedFlushes: w.timedFlushes };
  }

  private push(sub: number, ev: ChannelEvent): void {
    if (this.pending.length > 0) {
      this.queue({ sub, ev, from: 0 });
      return;
    }
    const from = this.deliver(sub, ev, 0);
    if (from >= 0) this.queue({ sub, ev, from });
  }

  private queue(p: Pending): void {
    this.pending.push(p);
    if (p.ev.kind === 'data') this.pendingRecords += p.ev.batch.length - p.from;
    if (!this.waiting) {
      this.waiting = true;
      this.writer.onAvailable(this.drain);
    }
  }

  /** Writes `ev` from record `from`; answers -1 when all of it went, else the first record that did not. */
  private deliver(sub: number, ev: ChannelEvent, from: number): number {
    if (ev.kind === 'data') {
      const n = ev.batch.length;
      const i = this.writer.write(sub, ev.batch, ev.timestamps, from, n);
      return i < n ? i : -1;
    }
    this.writer.emitEvent(sub, ev);
    if (ev.kind === 'end-of-input' && ++this.ended === this.options.senders.length) this.writer.close();
    return -1;
  }

  private readonly drain = (): void => {
    this.waiting = false;
    const q = this.pending;
    while (q.length > 0) {
      const p = q[0]!;
      const before = p.from;
      const at = this.deliver(p.sub, p.ev, p.from);
      if (at >= 0) {
        this.pendingRecords -= at - before;
        p.from = at;
        this.waiting = true;
        this.writer.onAvailable(this.drain);
        return;
      }
      if (p.ev.kind === 'data') this.pendingRecords -= p.ev.batch.length - before;
      q.shift();
    }
    const ls = this.listeners;
    this.listeners = [];
    for (const l of ls) l();
  };

  private whenAvailable(listener: () => void): void {
    if (this.pending.length === 0) listener();
    else this.listeners.push(listener);
  }
}

/**
 * The consumer side of a channel from another thread: decodes each network buffer into a data event
 * (recycling the buffer at once, so its credit goes back while the batch is processed) and passes
 * events through. `external` until end-of-input was polled.
 *
 * @example
 * ```ts
 * const input = new RemoteInputChannel(connectReceiver(port, { initialCredits: 2 }), 'Map#0 -> Sink#1', 'Sink', 1);
 * ```
 */
export class RemoteInputChannel implements InputChannel {
  private readonly reader: ChannelReader<unknown, ChannelEvent>;
  private ended = false;

  constructor(
    private readonly receiver: CreditReceiver<ChannelEvent>,
    readonly description: string,
    operator: string,
    subtask: number,
  ) {
    this.reader = new ChannelReader(receiver, createDeserializer({ operator, subtask }));
  }

  get external(): boolean {
    return !this.ended;
  }

  set onAvailable(listener: (() => void) | undefined) {
    this.receiver.onAvailable = listener ?? null;
  }

  get onAvailable(): (() => void) | undefined {
    return this.receiver.onAvailable ?? undefined;
  }

  poll(): ChannelEvent | undefined {
    const item = this.reader.next();
    if (item === undefined) return undefined;
    if (item.kind === 'records') {
      const ev: DataEvent = { kind: 'data', batch: item.records, timestamps: item.timestamps === undefined ? undefined : Array.from(item.timestamps) };
      return ev;
    }
    if (item.event.kind === 'end-of-input') this.ended = true;
    return item.event;
  }

  /** The consumer leaves early (failure, cancel): queued buffers go back, the producer drops the rest. */
  cancel(): void {
    this.receiver.cancel();
  }
}
