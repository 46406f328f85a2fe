// Owns record writers: the output of an operator into the channels of one job edge. A writer picks a
// channel per record (forward, round-robin rebalance, hash → key group → subtask), buffers records per
// channel and ships them as batches of up to `batchSize`.

import { subtaskForKeyGroup } from '../core/hash.ts';
import type { KeySelectorSpec } from '../graph/operator.ts';
import type { PartitionSpec } from '../graph/transformation.ts';
import type { Channel } from './channel.ts';
import { END_OF_INPUT } from './channel.ts';
import { KeyGroupAssigner, extractKey } from './keys.ts';

/** Writes one producer subtask's records to the channels of one job edge. */
export class RecordWriter {
  private readonly buffers: unknown[][];
  private nextChannel: number;
  /** Records written so far: the index that errors report for a record this writer could not route. */
  recordsWritten = 0;
  private readonly key: KeySelectorSpec | undefined;
  private readonly keyedName: string;
  private readonly assigner: KeyGroupAssigner | undefined;

  constructor(
    private readonly channels: readonly Channel[],
    private readonly partition: PartitionSpec,
    private readonly batchSize: number,
    private readonly maxParallelism: number,
    private readonly subtask: number,
  ) {
    this.buffers = channels.map(() => []);
    this.nextChannel = subtask % channels.length; // rebalance starts at a different channel per producer
    this.key = partition.kind === 'hash' ? partition.key : undefined;
    this.keyedName = this.key ? `KeyBy(${this.key.description})` : '';
    this.assigner = this.key ? new KeyGroupAssigner(this.key, maxParallelism) : undefined;
  }

  /** Routes a batch. Forward batches pass through unchanged when they fit. */
  write(batch: readonly unknown[]): void {
    const n = batch.length;
    if (n === 0) return;
    const base = this.recordsWritten;
    this.recordsWritten += n;
    const kind = this.partition.kind;
    if (kind === 'forward') {
      const buf = this.buffers[0]!;
      if (buf.length === 0 && n === this.batchSize) {
        this.channels[0]!.push({ kind: 'data', batch });
        return;
      }
      for (let i = 0; i < n; i++) this.append(0, batch[i]);
      return;
    }
    const channels = this.channels.length;
    if (kind === 'rebalance') {
      let c = this.nextChannel;
      for (let i = 0; i < n; i++) {
        this.append(c, batch[i]);
        if (++c === channels) c = 0;
      }
      this.nextChannel = c;
      return;
    }
    // hash: inlined loop, one key extraction and hash per record
    const spec = this.key!;
    const assigner = this.assigner!;
    const maxP = this.maxParallelism;
    for (let i = 0; i < n; i++) {
      const r = batch[i];
      const key = extractKey(spec, r, this.keyedName, this.subtask, base + i);
      const kg = assigner.keyGroup(key, this.keyedName, this.subtask, base + i);
      this.append(subtaskForKeyGroup(kg, channels, maxP), r);
    }
  }

  private append(c: number, r: unknown): void {
    const buf = this.buffers[c]!;
    buf.push(r);
    if (buf.length >= this.batchSize) {
      this.channels[c]!.push({ kind: 'data', batch: buf });
      this.buffers[c] = [];
    }
  }

  /** Ships every partially filled buffer (called at the end of each scheduling step). */
  flush(): void {
    for (let c = 0; c < this.buffers.length; c++) {
      const buf = this.buffers[c]!;
      if (buf.length > 0) {
        this.channels[c]!.push({ kind: 'data', batch: buf });
        this.buffers[c] = [];
      }
    }
  }

  /** Flushes and sends end-of-input on every channel. */
  finish(): void {
    this.flush();
    for (const ch of this.channels) ch.push(END_OF_INPUT);
  }
}
