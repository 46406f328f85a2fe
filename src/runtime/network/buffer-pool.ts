// Owns network buffer memory: the global `NetworkBufferPool` of fixed-size ArrayBuffers (the job's or a
// worker's `networkMemory` budget) and the `LocalBufferPool`s it divides them among (one per result
// partition or input gate), redistributed whenever a local pool is created or destroyed.
//
// How buffers are divided (Flink's model; cost O(pools) per create/destroy, O(1) per request/recycle):
//
//   total    = floor(networkMemory / bufferBytes)              buffers in the budget
//   required = Σ min_i                                        each pool's guaranteed buffers
//   excess   = total − required                               the floating buffers
//   cap_i    = min(max_i − min_i, excess)                     what pool i could still use
//   size_i   = min_i + cap_i                      if Σ cap ≤ excess (everyone gets what they can use)
//            = min_i + ⌊excess · cap_i / Σ cap⌋   otherwise, the remainders going one buffer each to the
//                                                 largest fractions (ties: creation order)
//
// A pool may hold up to `size_i` buffers at once. When a new pool shrinks the others, a pool holding
// more than its new size simply gets no more until it is below it again: buffers go back to the global
// free list as they are recycled, and pools waiting for one are told. The global pool never hands out
// more than `total` buffers, whatever the local sizes say, so the budget is a hard bound.
//
// Buffers are plain ArrayBuffers of `bufferBytes`, allocated lazily (the first time the free list is
// empty and fewer than `total` exist) and kept on a free list afterwards. A buffer may leave the thread
// (transferred to a worker through a MessagePort); the one that comes back is a different object of
// the same size, and recycling it counts the same. A buffer of another size given to `recycle` is an
// unpooled buffer (a record larger than a pooled buffer, see serializer.ts) and is dropped.

import { SEGMENT_BYTES } from '../../../bindings/abi.generated.ts';
import { JobDefinitionError, MemoryBudgetError } from '../../core/errors.ts';
import { formatBytes, parseMemorySize, type MemorySize } from '../memory-manager.ts';

/** Bytes per network buffer unless configured: the managed-memory segment size (32 KiB). */
export const DEFAULT_BUFFER_BYTES = SEGMENT_BYTES;
/** Network memory per pool unless configured. */
export const DEFAULT_NETWORK_MEMORY = '64mb';
/** Smallest allowed buffer: room for a header and a few rows. */
export const MIN_BUFFER_BYTES = 256;

/** Options of a {@link NetworkBufferPool}. */
export interface NetworkBufferPoolOptions {
  /** Bytes for network buffers (default `'64mb'`); `floor(networkMemory / bufferBytes)` buffers. */
  networkMemory?: MemorySize;
  /** Bytes per buffer (default 32 KiB); a multiple of 8, at least 256. */
  bufferBytes?: number;
  /**
   * Monotonic milliseconds for the wait-time metric (default `performance.now`; pass `platform.now`
   * or a manual clock's `now` in tests).
   */
  now?: () => number;
}

/** Options of {@link NetworkBufferPool.createLocalPool}. */
export interface LocalBufferPoolOptions {
  /** Who uses the pool, for errors and metrics, e.g. `"Map(parse)#1 → KeyBy(user)"`. */
  name: string;
  /**
   * Buffers the pool is guaranteed (≥ 1). A producer writing to `n` channels needs `n + 1`: one
   * being filled per channel and one more, or it can stall with every buffer half full.
   */
  minBuffers: number;
  /** The most buffers it may hold when others leave floating buffers free (default: no limit). */
  maxBuffers?: number;
}

/** What a pool reports for backpressure and memory monitoring (a snapshot object). */
export interface BufferPoolMetrics {
  /** Buffers the pool may hold now (the global pool: its total). */
  readonly size: number;
  /** Buffers handed out and not yet recycled (including those sent to another thread). */
  readonly buffersInUse: number;
  /** The most buffers ever in use at once. */
  readonly maxBuffersInUse: number;
  /** Requests answered `undefined` (the requester had to wait). */
  readonly waits: number;
  /**
   * Milliseconds during which a request was unanswered: from a refused request until a buffer was
   * available again (a waiter was told, or the next request got one; an ongoing wait counts up to now). Over a window, `Δ waitTimeMs / Δ time` is
   * the backpressure share.
   */
  readonly waitTimeMs: number;
}

/**
 * The global pool of network buffers of one thread (a job on one thread, or one worker).
 *
 * Cost: request/recycle O(1) (plus the waiters told); creating or destroying a local pool O(pools).
 *
 * @example
 * ```ts
 * const network = new NetworkBufferPool({ networkMemory: '64mb' }); // 2048 buffers of 32 KiB
 * const out = network.createLocalPool({ name: 'Map#0 → Sink', minBuffers: 3, maxBuffers: 10 });
 * const buf = out.requestBuffer();
 * if (buf === undefined) await out.whenAvailable(); // backpressure: wait, then request again
 * // ... fill it, send it; whoever consumes it finally calls:
 * out.recycle(buf!);
 * out.destroy();
 * ```
 */
export class NetworkBufferPool {
  readonly bufferBytes: number;
  readonly totalBuffers: number;
  /** Buffers allocated so far (≤ totalBuffers). */
  private allocated = 0;
  private readonly free: ArrayBuffer[] = [];
  private inUse = 0;
  private maxInUse = 0;
  private readonly pools: LocalBufferPool[] = [];
  /** Local pools with waiters, told in FIFO order when a buffer comes back. */
  private readonly waiting: LocalBufferPool[] = [];
  private destroyed = false;
  /** @internal */
  readonly now: () => number;

  constructor(options: NetworkBufferPoolOptions = {}) {
    const bytes = options.bufferBytes ?? DEFAULT_BUFFER_BYTES;
    if (!Number.isSafeInteger(bytes) || bytes < MIN_BUFFER_BYTES || bytes % 8 !== 0) {
      throw new JobDefinitionError(`bufferBytes must be a multiple of 8 of at least ${MIN_BUFFER_BYTES}, got ${bytes}`);
    }
    const memory = parseMemorySize(options.networkMemory ?? DEFAULT_NETWORK_MEMORY, 'networkMemory');
    this.bufferBytes = bytes;
    this.totalBuffers = Math.floor(memory / bytes);
    this.now = options.now ?? (() => performance.now());
  }

  /** The budget, for messages: e.g. `64 MiB (2048 buffers of 32 KiB)`. */
  describe(): string {
    return `${formatBytes(this.totalBuffers * this.bufferBytes)} (${this.totalBuffers} buffers of ${formatBytes(this.bufferBytes)})`;
  }

  /**
   * A new local pool with `minBuffers` guaranteed. Throws `MemoryBudgetError` when the guarantees of
   * all pools would exceed the budget (naming the budget, the pools and a budget that would do).
   * Every live pool's size is recomputed.
   */
  createLocalPool(options: LocalBufferPoolOptions): LocalBufferPool {
    if (this.destroyed) throw new Error(`internal: network buffer pool destroyed; cannot create '${options.name}'`);
    const min = options.minBuffers;
    const max = options.maxBuffers ?? Infinity;
    if (!Number.isSafeInteger(min) || min < 1) throw new JobDefinitionError(`local buffer pool '${options.name}': minBuffers must be an integer ≥ 1, got ${min}`);
    if (!(max === Infinity || (Number.isSafeInteger(max) && max >= min))) {
      throw new JobDefinitionError(`local buffer pool '${options.name}': maxBuffers must be an integer ≥ minBuffers (${min}), got ${max}`);
    }
    let required = 0;
    for (const p of this.pools) required += p.minBuffers;
    if (required + min > this.totalBuffers) {
      const need = (required + min) * this.bufferBytes;
      throw new MemoryBudgetError(
        `networkMemory of ${this.describe()} cannot guarantee '${options.name}' its ${min} buffers: ` +
          `${required} are already guaranteed to ${this.pools.length} other pool(s)` +
          (this.pools.length ? ` (${this.pools.slice(0, 5).map((p) => `'${p.name}' ${p.minBuffers}`).join(', ')}${this.pools.length > 5 ? ', …' : ''})` : '') +
          `; set networkMemory to at least ${formatBytes(need)}`,
        { operator: options.name },
      );
    }
    const pool = new LocalBufferPool(this, options.name, min, max);
    this.pools.push(pool);
    this.redistribute();
    return pool;
  }

  /** Live local pools, in creation order. */
  get localPools(): readonly LocalBufferPool[] {
    return this.pools;
  }

  /** Buffers on the free list or not yet allocated. */
  get availableBuffers(): number {
    return this.totalBuffers - this.inUse;
  }

  /** Buffers allocated so far (lazily; never more than `totalBuffers`). */
  get allocatedBuffers(): number {
    return this.allocated;
  }

  /** The whole budget's accounting (waits are per local pool; here they are summed). */
  get metrics(): BufferPoolMetrics {
    let waits = 0;
    let waitTimeMs = 0;
    for (const p of this.pools) {
      const m = p.metrics;
      waits += m.waits;
      waitTimeMs += m.waitTimeMs;
    }
    return { size: this.totalBuffers, buffersInUse: this.inUse, maxBuffersInUse: this.maxInUse, waits, waitTimeMs };
  }

  /** Drops the free list; later requests fail. Buffers still out are not tracked any more. */
  destroy(): void {
    this.destroyed = true;
    this.free.length = 0;
    for (const p of [...this.pools]) p.destroy();
  }

  /** @internal A buffer for a local pool, or undefined when the budget is spent. */
  take(): ArrayBuffer | undefined {
    let buf = this.free.pop();
    if (buf === undefined) {
      if (this.allocated >= this.totalBuffers || this.inUse >= this.totalBuffers) return undefined;
      buf = new ArrayBuffer(this.bufferBytes);
      this.allocated++;
    }
    if (++this.inUse > this.maxInUse) this.maxInUse = this.inUse;
    return buf;
  }

  /** @internal A buffer back from a local pool. */
  give(buf: ArrayBuffer): void {
    this.inUse--;
    if (!this.destroyed) this.free.push(buf);
    if (this.waiting.length > 0) this.tellWaiting();
  }

  /** @internal Buffers that will never come back (lost with a worker): allocate replacements later. */
  lose(count: number): void {
    this.inUse -= count;
    this.allocated -= count;
    if (this.waiting.length > 0) this.tellWaiting();
  }

  /** @internal */
  addWaiting(pool: LocalBufferPool): void {
    if (!this.waiting.includes(pool)) this.waiting.push(pool);
  }

  /** @internal */
  removeWaiting(pool: LocalBufferPool): void {
    const i = this.waiting.indexOf(pool);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  private tellWaiting(): void {
    // Each pool below its size is told; it re-requests (and may lose the race to another: it then waits again).
    const list = this.waiting.splice(0);
    for (const p of list) p.tell();
  }

  /** @internal */
  remove(pool: LocalBufferPool): void {
    const i = this.pools.indexOf(pool);
    if (i >= 0) this.pools.splice(i, 1);
    this.removeWaiting(pool);
    this.redistribute();
  }

  private redistribute(): void {
    const pools = this.pools;
    let required = 0;
    for (const p of pools) required += p.minBuffers;
    const excess = this.totalBuffers - required;
    let totalCap = 0;
    const caps = new Array<number>(pools.length);
    for (let i = 0; i < pools.length; i++) {
      const p = pools[i]!;
      caps[i] = Math.min(p.maxBuffers - p.minBuffers, excess);
      totalCap += caps[i]!;
    }
    if (totalCap <= excess) {
      for (let i = 0; i < pools.length; i++) pools[i]!.resize(pools[i]!.minBuffers + caps[i]!);
      return;
    }
    // Proportional shares of the excess by capacity, whole buffers by largest remainder.
    const shares = new Array<number>(pools.length);
    const order: number[] = [];
    let given = 0;
    for (let i = 0; i < pools.length; i++) {
      shares[i] = Math.floor((excess * caps[i]!) / totalCap);
      given += shares[i]!;
      order.push(i);
    }
    const frac = (i: number) => (excess * caps[i]!) / totalCap - shares[i]!;
    order.sort((a, b) => frac(b) - frac(a) || a - b);
    for (let k = 0; given < excess && k < order.length; k++) {
      const i = order[k]!;
      if (shares[i]! < caps[i]!) {
        shares[i]!++;
        given++;
      }
    }
    for (let i = 0; i < pools.length; i++) pools[i]!.resize(pools[i]!.minBuffers + shares[i]!);
  }
}

/**
 * The share of a {@link NetworkBufferPool} one user holds: at least `minBuffers`, at most its current
 * `size` (set by redistribution, ≤ `maxBuffers`). `requestBuffer` never blocks: it answers a buffer or
 * `undefined`, and `whenAvailable` / `onAvailable` say when to ask again (that wait is backpressure).
 *
 * Recycle every buffer exactly once, to the pool it came from (for a buffer that went to another
 * thread: the one that came back). Callbacks given to `onAvailable` run synchronously inside the
 * `recycle` (or `destroy` of another pool) that freed the buffer: schedule work there, do not do it.
 */
export class LocalBufferPool {
  private sizeNow = 0;
  private inUse = 0;
  private maxInUse = 0;
  private waitCount = 0;
  private waitedMs = 0;
  /** When the current unanswered wait began, or -1. */
  private waitingSince = -1;
  private listeners: (() => void)[] = [];
  private destroyed = false;

  /** @internal use {@link NetworkBufferPool.createLocalPool} */
  constructor(
    private readonly global: NetworkBufferPool,
    readonly name: string,
    readonly minBuffers: number,
    readonly maxBuffers: number,
  ) {}

  /** Bytes per buffer. */
  get bufferBytes(): number {
    return this.global.bufferBytes;
  }

  /** Buffers this pool may hold now (set by redistribution). */
  get size(): number {
    return this.sizeNow;
  }

  /** Buffers handed out and not recycled. */
  get buffersInUse(): number {
    return this.inUse;
  }

  /** Whether `requestBuffer()` would answer a buffer now. */
  get isAvailable(): boolean {
    return !this.destroyed && this.inUse < this.sizeNow && this.global.availableBuffers > 0;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  get metrics(): BufferPoolMetrics {
    const ongoing = this.waitingSince >= 0 ? this.global.now() - this.waitingSince : 0;
    return { size: this.sizeNow, buffersInUse: this.inUse, maxBuffersInUse: this.maxInUse, waits: this.waitCount, waitTimeMs: this.waitedMs + ongoing };
  }

  /**
   * A free buffer (its old contents are garbage), or `undefined` when the pool is at its size or the
   * budget is spent — then wait for `whenAvailable()` / `onAvailable()` and ask again.
   */
  requestBuffer(): ArrayBuffer | undefined {
    if (this.destroyed) throw new Error(`internal: buffer requested from destroyed pool '${this.name}'`);
    const buf = this.inUse < this.sizeNow ? this.global.take() : undefined;
    if (buf === undefined) {
      this.waitCount++;
      if (this.waitingSince < 0) this.waitingSince = this.global.now();
      return undefined;
    }
    if (this.waitingSince >= 0) this.endWait();
    if (++this.inUse > this.maxInUse) this.maxInUse = this.inUse;
    return buf;
  }

  private endWait(): void {
    this.waitedMs += this.global.now() - this.waitingSince;
    this.waitingSince = -1;
  }

  /**
   * Gives a buffer back (from this thread, or the one that came back from another). A buffer of
   * another size than the pool's is an unpooled large-record buffer and is dropped; a detached one
   * (byteLength 0: it was transferred away) is an error.
   */
  recycle(buffer: ArrayBuffer): void {
    const n = buffer.byteLength;
    if (n !== this.global.bufferBytes) {
      if (n === 0) throw new Error(`internal: pool '${this.name}' was given a detached buffer (it was transferred to another thread; recycle the one that comes back)`);
      return; // unpooled
    }
    if (this.inUse <= 0) throw new Error(`internal: pool '${this.name}' got more buffers back than it handed out`);
    this.inUse--;
    this.global.give(buffer);
    if (this.listeners.length > 0 && !this.destroyed) this.tell();
  }

  /**
   * Declares `count` buffers handed out by this pool lost (sent to a worker that died): they stop
   * counting as in use and the global pool may allocate replacements.
   */
  discardLost(count: number): void {
    if (!(count >= 0 && count <= this.inUse)) throw new RangeError(`discardLost(${count}): pool '${this.name}' has ${this.inUse} buffers out`);
    this.inUse -= count;
    this.global.lose(count);
    if (this.listeners.length > 0 && !this.destroyed) this.tell();
  }

  /**
   * Calls `listener` once, as soon as `requestBuffer()` would answer a buffer (immediately, on this
   * stack, if it would now). Runs synchronously inside whatever freed the buffer: schedule, don't work.
   */
  onAvailable(listener: () => void): void {
    if (this.isAvailable) {
      if (this.waitingSince >= 0) this.endWait();
      listener();
      return;
    }
    this.listeners.push(listener);
    if (this.inUse < this.sizeNow) this.global.addWaiting(this); // blocked by the budget, not our size
  }

  /** Resolves once `requestBuffer()` would answer a buffer (already resolved if it would now). */
  whenAvailable(): Promise<void> {
    if (this.isAvailable) return Promise.resolve();
    return new Promise((resolve) => this.onAvailable(resolve));
  }

  /**
   * Leaves the global pool: the others' sizes grow. Buffers still out may be recycled later (they go
   * straight back to the global pool). Idempotent.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.waitingSince >= 0) this.endWait();
    this.sizeNow = 0;
    this.listeners.length = 0;
    this.global.remove(this);
  }

  /** @internal new size from redistribution */
  resize(size: number): void {
    const grew = size > this.sizeNow;
    this.sizeNow = size;
    if (grew && this.listeners.length > 0) this.tell();
  }

  /** @internal a buffer may be available: run the listeners if so, else keep waiting. */
  tell(): void {
    if (!this.isAvailable) {
      if (this.listeners.length > 0 && this.inUse < this.sizeNow) this.global.addWaiting(this);
      return;
    }
    if (this.waitingSince >= 0) this.endWait(); // the wait ends when a buffer is there, not when it is taken
    const list = this.listeners;
    this.listeners = [];
    this.global.removeWaiting(this);
    for (const l of list) l();
  }
}
