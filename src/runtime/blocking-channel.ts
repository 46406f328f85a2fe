// Owns the blocking exchange of batch mode (Flink's BLOCKING result partition): a channel whose
// consumer sees nothing until its producer has ended, holding the events in memory up to a byte
// budget and spilling the rest to a spill store, then handing everything back in push order.
//
// Spill file layout: batches back to back, as every spill file (abi/abi.ts header: magic 'SLB1',
// byteLength, rowCount = 0, and the fourth word — a schema fingerprint elsewhere — is the frame tag):
//
//   offset  size  field
//   0       16    batch header   magic, byteLength (multiple of 8), 0, tag | more << 8 | timestamps << 9
//   16      ...   body           tag 1 (data):   a network buffer (network/serializer.ts: binary rows
//                                                 with a schema, MessagePack without; timestamps kept)
//                                tag 2 (watermark): f64 timestamp
//                                tag 3 (status):    u32 0 = idle, 1 = active, u32 0
//
// A data event larger than one frame is cut into several network buffers; every frame but its last
// has `more` set, and reading back joins them, so the consumer gets the same batches that were pushed.
// `timestamps` says the event had a timestamps array (also for an empty batch, which has none to write).

import { AnyEncoder } from '../core/any-codec.ts';
import { CorruptBatchError, SluiceError } from '../core/errors.ts';
import type { Schema } from '../core/schema.ts';
import type { SpillFile, SpillReader, SpillStore, SpillStoreFactory, SpillStoreOptions, SpillWriter } from '../platform/types.ts';
import {
  ACTIVE_STATUS,
  type ChannelEvent,
  END_OF_INPUT,
  IDLE_STATUS,
  type InputChannel,
  type OutputChannel,
  watermarkEvent,
} from './channel.ts';
import { type MemorySize, parseMemorySize } from './memory-manager.ts';
import { createDeserializer, createSerializer, type RecordDeserializer, type RecordSerializer } from './network/serializer.ts';

const BATCH_MAGIC = 0x31424c53; // abi/abi.ts BATCH_MAGIC ('S','L','B','1')
const FRAME_HEADER = 16; // abi/abi.ts BATCH_HEADER_BYTES
const TAG_DATA = 1;
const TAG_WATERMARK = 2;
const TAG_STATUS = 3;
const MORE = 0x100;
const WITH_TIMESTAMPS = 0x200; // the event had a timestamps array (an empty batch's frame cannot say so)

/** Default in-memory budget of one blocking channel. */
export const DEFAULT_BLOCKING_MEMORY = 4 * 1024 * 1024;
/** Default size of the network buffers data is serialized into when spilled (one frame each). */
export const DEFAULT_SPILL_FRAME_BYTES = 32 * 1024;

/** Options of {@link BlockingChannel}. */
export interface BlockingChannelOptions {
  /** The channel's id (as `Channel.id`). */
  id: number;
  /** `Producer#i -> Consumer#j`: named in errors and in the spill file's name. */
  description: string;
  /**
   * Where to spill. A factory: the channel creates its own store on the first spill and closes it
   * (removing its temp directory) when the consumer has read everything or on `dispose()`. A store:
   * shared with others — the channel creates one file in it and deletes that file then, but never
   * closes the store.
   */
  spill: SpillStoreFactory | SpillStore;
  /** Options for the store a factory creates (`dir`, `maxBytes`, `signal`, `bufferBytes`). */
  spillOptions?: SpillStoreOptions;
  /**
   * Bytes of events held in memory before they are spilled (default 4 MiB; `0` spills everything).
   * Counted as the events' estimated serialized size (a sample of each batch's records is encoded),
   * not their JS heap size, which is typically 2–4 times more. While a spill is being written, up to
   * this much more is buffered before the producer pauses.
   */
  memoryBytes?: MemorySize;
  /** The edge's schema: spilled as binary rows when given, as MessagePack when not. */
  schema?: Schema;
  /** Size of a spill frame (a network buffer: a multiple of 8, at least 256; default 32 KiB). */
  frameBytes?: number;
  /** How many spilled bytes reading back loads ahead of the consumer (default 256 KiB). */
  readAheadBytes?: number;
}

/**
 * The blocking exchange failed: writing or reading back its spill, or a record that cannot be
 * serialized. The message names the channel; `cause` is the original error, whose domain it keeps.
 */
export class BlockingExchangeError extends SluiceError {
  constructor(
    /** The channel's description (`Producer#i -> Consumer#j`). */
    readonly channel: string,
    /** What the channel was doing. */
    readonly phase: 'spilling' | 'reading back the spill of' | 'cleaning up',
    cause: unknown,
  ) {
    const inner = cause instanceof SluiceError ? cause : undefined;
    super(`blocking exchange ${channel}: ${phase} the channel failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      domain: inner?.domain ?? 'external',
      retryable: inner?.retryable ?? false,
      context: inner?.context,
      cause,
    });
  }
}

/**
 * A blocking exchange between two subtasks of a batch job: the producer pushes all its events, and
 * only after its `end-of-input` does the consumer see them, in push order (watermarks and status
 * events too). Events are held in memory up to `memoryBytes`; past that, everything held is
 * serialized (network/serializer.ts) and appended to one spill file, asynchronously. While such a
 * write is in flight and memory is over budget again, `isAvailable` is false (the producing task
 * pauses) and `whenAvailable` listeners fire once the write is done. After end-of-input the spill file
 * is read back (the consumer's `poll()` answers undefined while a part is loading; `external` is true
 * until end-of-input has been polled, and `onAvailable` fires when data is there), then the events
 * still in memory follow. The spill file (and a store the channel made) is removed once the consumer
 * has polled end-of-input, or on `dispose()` (failure, cancellation).
 *
 * Failures (the store, a record that cannot be serialized, a corrupt file) fail the channel with a
 * {@link BlockingExchangeError} naming it: `push` and `poll` throw it from then on, and paused
 * producers and a waiting consumer are woken so that they do.
 *
 * Cost: a push is O(1) plus encoding up to 4 sampled records for the size estimate; a spill
 * serializes its events once and copies each frame once; reading back decodes each frame once. At most
 * about `2 × memoryBytes` (+ one batch) is held on the producer side, and `memoryBytes` plus the
 * read-ahead on the consumer side. Spilled records come back as their MessagePack (or binary-row)
 * round trip — `undefined` becomes `null`, and a class instance cannot be spilled (a
 * BlockingExchangeError of domain `user`) — while events that stayed in memory are handed over as is.
 *
 * @example
 * ```ts
 * const ch = new BlockingChannel({ id: 7, description: 'Map#0 -> Reduce#1', spill: platform.spill, memoryBytes: '16mb' });
 * ch.push({ kind: 'data', batch: [1, 2, 3] });
 * ch.push(END_OF_INPUT);
 * ch.onAvailable = () => wakeConsumer();
 * for (let ev = ch.poll(); ev !== undefined; ev = ch.poll()) handle(ev); // undefined: loading
 * // ...
 * await ch.dispose(); // on failure or cancel; after the consumer read everything it awaits the cleanup
 * ```
 */
export class BlockingChannel<T = unknown> implements InputChannel<T>, OutputChannel<T> {
  readonly id: number;
  readonly description: string;
  /** The in-memory budget in bytes. */
  readonly memoryBytes: number;
  /** Records pushed and not yet polled. */
  bufferedRecords = 0;
  /** Whether end-of-input was pushed. */
  ended = false;
  /** Set by the consuming task: called when `poll()` has something again. */
  onAvailable: (() => void) | undefined = undefined;
  /** Events spilled so far (data, watermark and status events). */
  spilledEvents = 0;
  /** Spill frame bytes written so far. */
  spilledBytes = 0;
  /** Spills (writes of the in-memory part) started so far. */
  spills = 0;

  private readonly spillSource: SpillStoreFactory | SpillStore;
  private readonly spillOptions: SpillStoreOptions | undefined;
  private readonly frameBytes: number;
  private readonly readAheadBytes: number;
  private readonly serializer: RecordSerializer<T>;
  private readonly deserializer: RecordDeserializer<T>;
  private readonly sizer = new AnyEncoder();
  private netBuffer: ArrayBuffer | undefined;

  // producer side
  private tail: ChannelEvent<T>[] = [];
  private tailBytes = 0;
  private spilling = false;
  private chain: Promise<void> = Promise.resolve();
  private listeners: (() => void)[] = [];
  private store: SpillStore | undefined;
  private writer: SpillWriter | undefined;
  private file: SpillFile | undefined;

  // consumer side
  private ready = false;
  private reader: SpillReader | undefined;
  private readerDone = true;
  private loading: Promise<void> | undefined;
  private queue: ChannelEvent<T>[] = [];
  private queueHead = 0;
  private tailHead = 0;
  private consumerWaiting = false;
  private endPolled = false;

  private failure: BlockingExchangeError | undefined;
  private disposed = false;
  private releasing: Promise<void> | undefined;
  private releaseError: unknown = undefined;
  private releasedResolve!: () => void;
  /** Settles once the channel holds no spill file any more (the consumer read everything, or `dispose()`); never rejects. */
  readonly released: Promise<void>;

  constructor(options: BlockingChannelOptions) {
    this.id = options.id;
    this.description = options.description;
    this.spillSource = options.spill;
    this.spillOptions = options.spillOptions;
    this.memoryBytes = parseMemorySize(options.memoryBytes ?? DEFAULT_BLOCKING_MEMORY, 'memoryBytes');
    this.frameBytes = options.frameBytes ?? DEFAULT_SPILL_FRAME_BYTES;
    if (!Number.isSafeInteger(this.frameBytes) || this.frameBytes < 256 || this.frameBytes % 8 !== 0) {
      throw new RangeError(`frameBytes of ${this.frameBytes}: need a multiple of 8 of at least 256`);
    }
    this.readAheadBytes = Math.max(1, options.readAheadBytes ?? 256 * 1024);
    this.serializer = createSerializer<T>({ schema: options.schema });
    this.deserializer = createDeserializer<T>({ schema: options.schema });
    this.released = new Promise<void>((resolve) => (this.releasedResolve = resolve));
  }

  /** Always true until end-of-input was polled: what is left arrives without the producer's help. */
  get external(): boolean {
    return !this.endPolled && !this.disposed;
  }

  // ── producer side ─────────────────────────────────────────────────────────────────────────

  /** Takes the event; spills what is held when it is over budget. Throws the channel's failure, if any. */
  push(ev: ChannelEvent<T>): void {
    if (this.failure) throw this.failure;
    if (this.disposed) throw new SluiceError(`blocking exchange ${this.description}: push after dispose()`, { domain: 'internal' });
    if (this.ended) throw new Error(`internal: event after end-of-input on channel ${this.description}`);
    if (ev.kind === 'end-of-input') {
      this.ended = true;
      if (this.tailBytes > this.memoryBytes && !this.spilling) this.spillTail();
      if (!this.spilling) this.finishWriting();
      return;
    }
    if (ev.kind === 'data') {
      this.bufferedRecords += ev.batch.length;
      this.tailBytes += this.estimate(ev.batch, ev.timestamps);
    } else this.tailBytes += 16;
    this.tail.push(ev);
    if (this.tailBytes > this.memoryBytes && !this.spilling) this.spillTail();
  }

  /** False while a spill is being written and memory is over budget again. True once failed (the next push throws). */
  get isAvailable(): boolean {
    return this.failure !== undefined || this.disposed || !(this.spilling && this.tailBytes > this.memoryBytes);
  }

  /** Calls `listener` once the channel is available (at once if it is). */
  whenAvailable(listener: () => void): void {
    if (this.isAvailable) listener();
    else this.listeners.push(listener);
  }

  /** Estimated serialized bytes of a batch: the mean encoded size of up to 4 sampled records. */
  private estimate(batch: readonly T[], timestamps: readonly number[] | undefined): number {
    const n = batch.length;
    let bytes = 16 + (timestamps ? 8 * n : 0);
    if (n === 0) return bytes;
    const k = Math.min(n, 4);
    let sampled = 0;
    for (let i = 0; i < k; i++) {
      try {
        sampled += this.sizer.encode(batch[Math.floor((i * n) / k)]).length;
      } catch {
        sampled += 64; // not encodable: the spill (if any) reports it
      }
    }
    bytes += Math.ceil((sampled / k) * n);
    return bytes;
  }

  private notifyProducers(): void {
    if (this.listeners.length === 0 || !this.isAvailable) return;
    const ls = this.listeners;
    this.listeners = [];
    for (const l of ls) l();
  }

  /** Serializes the in-memory events now and appends them to the spill file in the background. */
  private spillTail(): void {
    const events = this.tail;
    this.tail = [];
    this.tailBytes = 0;
    let frames: Uint8Array[];
    try {
      frames = this.serialize(events);
    } catch (e) {
      this.fail('spilling', e);
      throw this.failure;
    }
    this.spills++;
    this.spilledEvents += events.length;
    for (const f of frames) this.spilledBytes += f.length;
    this.spilling = true;
    this.chain = this.chain
      .then(() => this.writeFrames(frames))
      .catch((e: unknown) => this.fail('spilling', e))
      .then(() => {
        this.spilling = false;
        if (this.failure || this.disposed) return;
        if (this.tailBytes > this.memoryBytes) {
          try {
            this.spillTail();
          } catch {
            return; // failed: recorded, and everyone woken
          }
        } else if (this.ended) this.finishWriting();
        this.notifyProducers();
      });
  }

  private async writeFrames(frames: Uint8Array[]): Promise<void> {
    if (this.disposed) return;
    if (this.writer === undefined) {
      if (this.store === undefined) {
        const s = this.spillSource;
        this.store = 'createSpillStore' in s ? await s.createSpillStore(this.spillOptions) : s;
        if (this.disposed) return;
      }
      this.writer = await this.store.create(`blocking-${this.id}`);
      if (this.disposed) return;
    }
    const w = this.writer;
    await Promise.all(frames.map((f) => w.append(f)));
  }

  /** After the last spill: finish the file and open it for reading, then let the consumer in. */
  private finishWriting(): void {
    if (this.writer === undefined && !this.failure && !this.disposed) {
      // nothing was spilled: the consumer may start at once
      this.ready = true;
      this.wakeConsumer();
      return;
    }
    this.chain = this.chain
      .then(async () => {
        if (this.disposed || this.failure || this.writer === undefined) return;
        this.file = await this.writer.finish();
        if (this.disposed) return;
        this.reader = this.file.read();
        this.readerDone = false;
      })
      .catch((e: unknown) => this.fail('spilling', e))
      .then(() => {
        if (this.failure || this.disposed) return;
        this.ready = true;
        if (!this.readerDone) this.load();
        this.wakeConsumer();
      });
  }

  /** One frame per network buffer of each data event; one per watermark or status event. */
  private serialize(events: readonly ChannelEvent<T>[]): Uint8Array[] {
    const frames: Uint8Array[] = [];
    const ser = this.serializer;
    const net = (this.netBuffer ??= new ArrayBuffer(this.frameBytes));
    for (const ev of events) {
      if (ev.kind === 'data') {
        const batch = ev.batch;
        const ts = ev.timestamps;
        const n = batch.length;
        const first = frames.length;
        let i = 0;
        ser.begin(net);
        for (;;) {
          i = ser.write(batch, ts, i, n);
          if (i >= n) break;
          if (ser.count === 0) {
            // a record larger than a frame: alone in an exactly-sized buffer
            frames.push(dataFrame(ser.encodeLarge(batch[i]!, ts?.[i])));
            i++;
          } else {
            frames.push(dataFrame(ser.finish()));
            ser.begin(net);
          }
        }
        const count = ser.count;
        const last = ser.finish();
        if (count > 0 || frames.length === first) frames.push(dataFrame(last)); // (an empty batch: one empty frame)
        const tsFlag = ts !== undefined ? WITH_TIMESTAMPS : 0;
        for (let f = first; f < frames.length; f++) setTag(frames[f]!, TAG_DATA | tsFlag | (f < frames.length - 1 ? MORE : 0));
      } else if (ev.kind === 'watermark') {
        const f = frame(TAG_WATERMARK, 8);
        new DataView(f.buffer).setFloat64(FRAME_HEADER, ev.timestamp, true);
        frames.push(f);
      } else if (ev.kind === 'watermark-status') {
        const f = frame(TAG_STATUS, 8);
        new DataView(f.buffer).setUint32(FRAME_HEADER, ev.status === 'active' ? 1 : 0, true);
        frames.push(f);
      }
    }
    return frames;
  }

  // ── consumer side ─────────────────────────────────────────────────────────────────────────

  /**
   * The next event: nothing before the producer ended; then the spilled events (undefined while the
   * next part is loading; `onAvailable` follows), the ones held in memory, and end-of-input last.
   * Throws the channel's failure, if any.
   */
  poll(): ChannelEvent<T> | undefined {
    if (this.failure) throw this.failure;
    if (this.disposed) throw new SluiceError(`blocking exchange ${this.description}: poll after dispose()`, { domain: 'internal' });
    if (!this.ready) {
      this.consumerWaiting = true;
      return undefined;
    }
    if (this.queueHead < this.queue.length) {
      const ev = this.queue[this.queueHead++]!;
      if (this.queueHead === this.queue.length) {
        this.queue = [];
        this.queueHead = 0;
        if (!this.readerDone) this.load(); // read ahead while the consumer works on this one
      }
      return this.taken(ev);
    }
    if (!this.readerDone) {
      this.consumerWaiting = true;
      this.load();
      return undefined;
    }
    if (this.tailHead < this.tail.length) {
      const ev = this.tail[this.tailHead]!;
      this.tail[this.tailHead++] = END_OF_INPUT; // let it go
      return this.taken(ev);
    }
    if (this.endPolled) return undefined;
    this.endPolled = true;
    this.tail = [];
    this.tailBytes = 0;
    void this.release();
    return END_OF_INPUT;
  }

  private taken(ev: ChannelEvent<T>): ChannelEvent<T> {
    if (ev.kind === 'data') this.bufferedRecords -= ev.batch.length;
    return ev;
  }

  private wakeConsumer(): void {
    this.consumerWaiting = false;
    this.onAvailable?.();
  }

  /** Reads frames until `readAheadBytes` are loaded (whole events) or the file ends. */
  private load(): void {
    if (this.loading !== undefined || this.readerDone || this.failure || this.disposed) return;
    const reader = this.reader!;
    this.loading = (async () => {
      let bytes = 0;
      let records: T[] | undefined;
      let ts: number[] | undefined;
      let parts = 0;
      while (bytes < this.readAheadBytes || records !== undefined) {
        const f = await reader.next();
        if (this.disposed) return;
        if (f === undefined) {
          if (records !== undefined) throw new CorruptBatchError(`spill file ${this.file?.location}: the file ends inside a data event`);
          this.readerDone = true;
          await this.file?.delete();
          return;
        }
        bytes += f.length;
        const dv = new DataView(f.buffer, f.byteOffset, f.byteLength);
        const word = dv.getUint32(12, true);
        const tag = word & 0xff;
        if (tag === TAG_DATA) {
          const d = this.deserializer.decode(f.buffer.slice(f.byteOffset + FRAME_HEADER, f.byteOffset + f.byteLength) as ArrayBuffer);
          if (records === undefined) {
            records = d.records;
            ts = d.timestamps ? Array.from(d.timestamps) : undefined;
          } else {
            if (d.timestamps && ts === undefined) ts = new Array<number>(records.length).fill(NaN);
            if (ts !== undefined) {
              if (d.timestamps) for (let i = 0; i < d.timestamps.length; i++) ts.push(d.timestamps[i]!);
              else for (let i = 0; i < d.records.length; i++) ts.push(NaN);
            }
            for (let i = 0; i < d.records.length; i++) records.push(d.records[i]!);
          }
          parts++;
          if ((word & WITH_TIMESTAMPS) !== 0 && ts === undefined) ts = new Array<number>(records.length).fill(NaN);
          if ((word & MORE) === 0) {
            this.queue.push(ts === undefined ? { kind: 'data', batch: records } : { kind: 'data', batch: records, timestamps: ts });
            records = undefined;
            ts = undefined;
            parts = 0;
          }
        } else if (records !== undefined) {
          throw new CorruptBatchError(`spill file ${this.file?.location}: a frame with tag ${tag} inside a data event of ${parts} frames`);
        } else if (tag === TAG_WATERMARK && f.byteLength === FRAME_HEADER + 8) {
          this.queue.push(watermarkEvent(dv.getFloat64(FRAME_HEADER, true)));
        } else if (tag === TAG_STATUS && f.byteLength === FRAME_HEADER + 8 && dv.getUint32(FRAME_HEADER, true) <= 1) {
          this.queue.push(dv.getUint32(FRAME_HEADER, true) === 1 ? ACTIVE_STATUS : IDLE_STATUS);
        } else {
          throw new CorruptBatchError(`spill file ${this.file?.location}: unknown frame (tag ${tag}, ${f.byteLength} bytes)`);
        }
      }
    })()
      .catch((e: unknown) => this.fail('reading back the spill of', e))
      .then(() => {
        this.loading = undefined;
        if (!this.disposed && (this.consumerWaiting || this.failure)) this.wakeConsumer();
      });
  }

  // ── failure and cleanup ──────────────────────────────────────────────────────────────────

  private fail(phase: BlockingExchangeError['phase'], e: unknown): void {
    if (this.failure || this.disposed) return;
    this.failure = e instanceof BlockingExchangeError ? e : new BlockingExchangeError(this.description, phase, e);
    this.notifyProducers();
    this.wakeConsumer();
    void this.release();
  }

  /** Removes the spill file (closes a store the channel made). Runs once; `released` settles after it. */
  private release(): Promise<void> {
    return (this.releasing ??= (async () => {
      const settled = (): void => {};
      await this.chain.then(settled, settled);
      if (this.loading) await this.loading.then(settled, settled);
      try {
        await this.reader?.close();
        if (this.store !== undefined && this.store !== this.spillSource) await this.store.close();
        else if (this.file) await this.file.delete();
        else await this.writer?.abort();
      } catch (e) {
        this.releaseError = new BlockingExchangeError(this.description, 'cleaning up', e);
      }
      this.releasedResolve();
    })());
  }

  /**
   * Gives the channel up (job failure or cancellation): stops spilling, drops what it holds and
   * removes its spill file (and its own store). Idempotent; resolves when everything is removed, and
   * rejects only if removing failed. After the consumer polled end-of-input it just awaits that
   * cleanup. `push` and `poll` throw afterwards.
   */
  dispose(): Promise<void> {
    if (!this.endPolled && !this.disposed) {
      this.disposed = true;
      this.tail = [];
      this.tailBytes = 0;
      this.queue = [];
      this.notifyProducers();
    }
    return this.release().then(() => {
      if (this.releaseError !== undefined) throw this.releaseError;
    });
  }
}

/** A frame of `bodyBytes` (rounded up to 8) with its header. */
function frame(tag: number, bodyBytes: number): Uint8Array {
  const len = FRAME_HEADER + ((bodyBytes + 7) & ~7);
  const f = new Uint8Array(len);
  const dv = new DataView(f.buffer);
  dv.setUint32(0, BATCH_MAGIC, true);
  dv.setUint32(4, len, true);
  dv.setUint32(8, 0, true);
  dv.setUint32(12, tag, true);
  return f;
}

/** A data frame holding a copy of a sealed network buffer's used bytes. */
function dataFrame(net: ArrayBuffer): Uint8Array {
  const used = new Uint32Array(net, 4, 1)[0]!;
  const f = frame(TAG_DATA, used);
  f.set(new Uint8Array(net, 0, used), FRAME_HEADER);
  return f;
}

function setTag(f: Uint8Array, word: number): void {
  new DataView(f.buffer, f.byteOffset).setUint32(12, word, true);
}

