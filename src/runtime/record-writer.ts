// Owns record writers: the output of an operator into the channels of one job edge. A writer picks a
// channel per record (forward, rebalance, rescale, shuffle, broadcast, global, hash → key group →
// subtask, custom), buffers records (and their event timestamps) per channel and ships them as
// batches of up to `batchSize`; control events (watermarks, status, end of input) go to every channel
// after the records buffered before them.

import { previewValue } from '../core/errors.ts';
import { subtaskForKeyGroup } from '../core/hash.ts';
import type { KeySelectorSpec } from '../graph/operator.ts';
import type { PartitionSpec } from '../graph/transformation.ts';
import type { ChannelEvent, OutputChannel } from './channel.ts';
import { END_OF_INPUT } from './channel.ts';
import { userFailure } from './failure.ts';
import { KeyGroupAssigner, extractKey } from './keys.ts';

/** Writes one producer subtask's records to the channels of one job edge. */
export class RecordWriter {
  private readonly buffers: unknown[][];
  /** Timestamps parallel to `buffers[c]`; undefined while no buffered record has one. */
  private readonly tsBuffers: (number[] | undefined)[];
  private nextChannel: number;
  /** Records written so far: the index that errors report for a record this writer could not route. */
  recordsWritten = 0;
  private readonly key: KeySelectorSpec | undefined;
  private readonly keyedName: string;
  private readonly assigner: KeyGroupAssigner | undefined;
  private random: number;

  constructor(
    private readonly channels: readonly OutputChannel[],
    private readonly partition: PartitionSpec,
    private readonly batchSize: number,
    private readonly maxParallelism: number,
    private readonly subtask: number,
    /** Name of the producing operator, for errors of a custom partitioner. */
    private readonly producer = '',
  ) {
    this.buffers = channels.map(() => []);
    this.tsBuffers = channels.map(() => undefined);
    this.nextChannel = subtask % channels.length; // rebalance starts at a different channel per producer
    this.key = partition.kind === 'hash' || partition.kind === 'custom' ? partition.key : undefined;
    this.keyedName = this.key ? (partition.kind === 'hash' ? `KeyBy(${this.key.description})` : producer) : '';
    this.assigner = partition.kind === 'hash' ? new KeyGroupAssigner(partition.key, maxParallelism) : undefined;
    this.random = (subtask + 1) * 0x9e3779b1;
  }

  /** Routes a batch (`timestamps` parallel to it, NaN = none). Forward batches pass through unchanged when they fit. */
  write(batch: readonly unknown[], timestamps?: readonly number[]): void {
    const n = batch.length;
    if (n === 0) return;
    const base = this.recordsWritten;
    this.recordsWritten += n;
    const kind = this.partition.kind;
    const channels = this.channels.length;
    if (kind === 'forward' || kind === 'global' || (channels === 1 && kind !== 'hash' && kind !== 'custom')) {
      const c = 0;
      if (this.buffers[c]!.length === 0 && n === this.batchSize) {
        this.channels[c]!.push({ kind: 'data', batch, timestamps });
        return;
      }
      for (let i = 0; i < n; i++) this.append(c, batch[i], timestamps?.[i]);
      return;
    }
    if (kind === 'broadcast') {
      this.flush();
      for (const ch of this.channels) ch.push({ kind: 'data', batch, timestamps });
      return;
    }
    if (kind === 'rebalance' || kind === 'rescale') {
      let c = this.nextChannel;
      for (let i = 0; i < n; i++) {
        this.append(c, batch[i], timestamps?.[i]);
        if (++c === channels) c = 0;
      }
      this.nextChannel = c;
      return;
    }
    if (kind === 'shuffle') {
      let x = this.random;
      for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        this.append((x >>> 0) % channels, batch[i], timestamps?.[i]);
      }
      this.random = x;
      return;
    }
    const spec = this.key!;
    if (kind === 'custom') {
      const partitioner = this.partition.partitioner;
      for (let i = 0; i < n; i++) {
        const r = batch[i];
        const key = extractKey(spec, r, this.keyedName, this.subtask, base + i);
        let c: unknown;
        try {
          c = partitioner(key, channels);
        } catch (e) {
          throw userFailure(e, { operator: this.producer, subtask: this.subtask, recordIndex: base + i });
        }
        if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c >= channels) {
          throw userFailure(new RangeError(`custom partitioner returned ${previewValue(c)} for key ${previewValue(key)}; expected an integer in [0, ${channels})`), {
            operator: this.producer,
            subtask: this.subtask,
            recordIndex: base + i,
          });
        }
        this.append(c, r, timestamps?.[i]);
      }
      return;
    }
    // hash: inlined loop, one key extraction and hash per record
    const assigner = this.assigner!;
    const maxP = this.maxParallelism;
    for (let i = 0; i < n; i++) {
      const r = batch[i];
      const key = extractKey(spec, r, this.keyedName, this.subtask, base + i);
      const kg = assigner.keyGroup(key, this.keyedName, this.subtask, base + i);
      this.append(subtaskForKeyGroup(kg, channels, maxP), r, timestamps?.[i]);
    }
  }

  private append(c: number, r: unknown, ts: number | undefined): void {
    const buf = this.buffers[c]!;
    let tsb = this.tsBuffers[c];
    if (ts !== undefined && !Number.isNaN(ts)) {
      if (tsb === undefined) this.tsBuffers[c] = tsb = new Array<number>(buf.length).fill(NaN);
      tsb.push(ts);
    } else if (tsb !== undefined) tsb.push(NaN);
    buf.push(r);
    if (buf.length >= this.batchSize) this.ship(c);
  }

  private ship(c: number): void {
    this.channels[c]!.push({ kind: 'data', batch: this.buffers[c]!, timestamps: this.tsBuffers[c] });
    this.buffers[c] = [];
    this.tsBuffers[c] = undefined;
  }

  /** Ships every partially filled buffer (called at the end of each scheduling step). */
  flush(): void {
    for (let c = 0; c < this.buffers.length; c++) if (this.buffers[c]!.length > 0) this.ship(c);
  }

  /** Sends a control event to every channel, after the records buffered so far. */
  broadcastEvent(ev: ChannelEvent<never>): void {
    this.flush();
    for (const ch of this.channels) ch.push(ev);
  }

  /** Flushes and sends end-of-input on every channel. */
  finish(): void {
    this.broadcastEvent(END_OF_INPUT);
  }

  /** Whether every channel can take more (false: one is over its bound; the task pauses its input). */
  get isAvailable(): boolean {
    for (const ch of this.channels) if (ch.isAvailable === false) return false;
    return true;
  }

  /** Calls `listener` once when every channel is available again. */
  whenAvailable(listener: () => void): void {
    const blocked = this.channels.find((ch) => ch.isAvailable === false);
    if (blocked === undefined || blocked.whenAvailable === undefined) listener();
    else blocked.whenAvailable(() => this.whenAvailable(listener));
  }

  /** Records buffered in all channels of this writer that the consumers have not taken yet. */
  get backlog(): number {
    let n = 0;
    for (const ch of this.channels) n += ch.bufferedRecords;
    return n;
  }
}
