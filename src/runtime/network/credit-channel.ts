// Owns credit-based flow control between one producer subpartition and one consumer input channel,
// over two transports behind one interface: in-thread (buffers handed over by reference) and
// cross-thread over a MessagePort (buffers moved with transfer lists, never copied).
//
// The protocol (Flink's credit-based flow control, adapted to zero-copy handover):
//   - A credit is the consumer's promise to take one more buffer. It starts with `initialCredits`
//     (Flink's exclusive buffers per channel, default 2) and gets one back for every buffer it
//     recycles; a gate may grant floating credits on top (`grantCredits`) and take them back lazily
//     (`revokeCredits`).
//   - The producer sends a buffer only against a credit; buffers without one wait in the sender's
//     queue (its backlog, announced to the consumer). Events (watermarks, end-of-input, barriers) need
//     no credit, but never overtake a buffer queued before them: order is the channel's order.
//   - Buffers belong to the producer's pool until the consumer recycles them: in-thread `recycle` puts
//     the buffer straight back into that pool; cross-thread the emptied ArrayBuffer is transferred
//     back with the credit, and the sender recycles it there. So a producer's LocalBufferPool bounds
//     every buffer of its channels — being filled, queued for credit, in flight, or queued at the
//     consumer — and a slow consumer stalls the producer when that pool runs dry (backpressure),
//     while the consumer's queue never exceeds its credits.
//   (Flink's consumer copies network bytes into buffers of its own pool, so there a credit is a free
//   consumer buffer; with zero-copy handover the consumer needs no buffers of its own, and a credit is
//   a place in its queue.)
//
// Cross-thread messages (one MessagePort per channel; cost: one postMessage per burst, not per buffer —
// everything ready within one task is batched into one message in a microtask):
//   producer → consumer  { k: 0, items: (ArrayBuffer | event)[], backlog, end }   buffers transferred
//                        { k: 2 }   bye: closed and every buffer is back; both sides close the port
//   consumer → producer  { k: 1, n: credits, buffers: ArrayBuffer[] }            buffers transferred
//                        { k: 3 }   cancel: the consumer is gone; the producer drops what it sends
// Events are structured-cloned: plain small objects (watermarks, barriers) are what they are for.

/** Where the consumer's emptied buffers go: the producer's pool (`LocalBufferPool` is one). */
export interface BufferRecycler {
  recycle(buffer: ArrayBuffer): void;
}

/**
 * The structural part of a MessagePort that a channel endpoint needs: a web-standard `MessagePort`
 * (every runtime has `MessageChannel`), a `WorkerHandle` or a worker's `ParentPort` (src/platform).
 */
export interface MessagePortLike {
  postMessage(message: unknown, transfer: Transferable[]): void;
  onmessage: ((event: MessageEvent) => void) | null;
  close?(): void;
}

/** Counters of a sender (a snapshot object). */
export interface SenderStats {
  readonly buffersSent: number;
  readonly eventsSent: number;
  /** Times a buffer had to wait in the queue for a credit. */
  readonly creditWaits: number;
}

/**
 * The producer's end of a channel.
 *
 * @example
 * ```ts
 * sender.send(serializer.finish());          // leaves now if there is a credit, else queues
 * sender.sendEvent({ kind: 'watermark', timestamp: 1000 });
 * sender.sendEvent(END_OF_INPUT);
 * sender.close();
 * ```
 */
export interface CreditSender<E = unknown> {
  /**
   * Queues a sealed buffer from the producer's pool. From here the channel owns it: it leaves when
   * the consumer has a credit and comes back to the pool when the consumer recycles it.
   */
  send(buffer: ArrayBuffer): void;
  /** Queues an event behind everything sent before it; it needs no credit. */
  sendEvent(event: E): void;
  /** No more sends. The consumer sees the end after everything before it. Idempotent. */
  close(): void;
  /** Credits not yet used. */
  readonly credits: number;
  /** Buffers waiting for a credit. */
  readonly backlog: number;
  /** Buffers sent and not yet back (in flight, or held by the consumer). */
  readonly outstanding: number;
  /** Whether the consumer cancelled: sends are then recycled at once. */
  readonly isCancelled: boolean;
  readonly stats: SenderStats;
}

/**
 * The consumer's end of a channel.
 *
 * @example
 * ```ts
 * receiver.onAvailable = () => gate.markAvailable(channelIndex); // schedule, don't poll here
 * for (let item = receiver.poll(); item !== undefined; item = receiver.poll()) {
 *   if (isBuffer(item)) {
 *     const { records } = deserializer.decode(item);
 *     receiver.recycle(item); // the credit goes back with it
 *     process(records);
 *   } else handleEvent(item);
 * }
 * if (receiver.isFinished) done();
 * ```
 */
export interface CreditReceiver<E = unknown> {
  /** The next buffer or event in channel order, or undefined when none has arrived (or at the end). */
  poll(): ArrayBuffer | E | undefined;
  /** Gives a polled buffer back (to the producer's pool) and returns its credit. Exactly once per buffer. */
  recycle(buffer: ArrayBuffer): void;
  /** Items that arrived and were not polled yet. */
  readonly queued: number;
  /** Whether the producer closed the channel and every item before the close was polled. */
  readonly isFinished: boolean;
  /**
   * Called (synchronously, on the stack that delivered) when `poll()` has something again after
   * answering undefined, or the channel finished. Schedule the consumer there; don't poll in it.
   */
  onAvailable: (() => void) | null;
  /** Resolves when `poll()` would answer an item or the channel finished (at once if so now). */
  whenAvailable(): Promise<void>;
  /** Buffers the producer has waiting for credit (cross-thread: as last announced). */
  readonly backlog: number;
  /** Adds floating credits (from a gate's shared budget). */
  grantCredits(n: number): void;
  /** Takes `n` credits back: the next `n` recycled buffers return none. */
  revokeCredits(n: number): void;
  /**
   * The consumer leaves: queued buffers go back, the producer drops whatever it sends from now on.
   * Buffers already polled must still be recycled. Idempotent.
   */
  cancel(): void;
}

/** Options of a channel (both transports). */
export interface CreditChannelOptions {
  /** Credits the consumer starts with (default 2, Flink's exclusive buffers per channel). */
  initialCredits?: number;
  /** Name for errors, e.g. `"Map#0 → Sink#1"`. */
  name?: string;
}

/** Whether a polled item is a buffer (else it is an event). */
export function isBuffer(item: unknown): item is ArrayBuffer {
  return item instanceof ArrayBuffer;
}

const DEFAULT_CREDITS = 2;
/** The end-of-channel marker inside queues (never handed out). */
const END: object = Object.freeze({ end: true });

const K_ITEMS = 0;
const K_CREDIT = 1;
const K_BYE = 2;
const K_CANCEL = 3;
/** Items in one cross-thread message before it goes out without waiting for the microtask. */
const MAX_BATCH = 32;

/**
 * A FIFO with O(1) amortised push/shift: an array and a head index, compacted when half consumed.
 */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(x: T): void {
    this.items.push(x);
  }

  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head]!;
    this.items[this.head++] = undefined as T; // let it be collected
    if (this.head >= 64 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }

  drain(): T[] {
    const out = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return out;
  }
}

function checkCredits(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be an integer ≥ 0, got ${n}`);
}

/**
 * Shared by both senders: the queue, credits and their order rules. Subclasses say how an item
 * reaches the consumer (`deliver`) and what happens at the end.
 */
abstract class SenderBase<E> implements CreditSender<E> {
  protected readonly queue = new Fifo<ArrayBuffer | E | object>();
  credits = 0;
  backlog = 0;
  outstanding = 0;
  protected closed = false;
  protected cancelled = false;
  private pumping = false;
  private again = false;
  private buffersSent = 0;
  private eventsSent = 0;
  private creditWaits = 0;

  constructor(protected readonly recycler: BufferRecycler, readonly name: string) {}

  get isCancelled(): boolean {
    return this.cancelled;
  }

  get stats(): SenderStats {
    return { buffersSent: this.buffersSent, eventsSent: this.eventsSent, creditWaits: this.creditWaits };
  }

  send(buffer: ArrayBuffer): void {
    if (this.closed) throw new Error(`internal: buffer sent on closed channel ${this.name}`);
    if (this.cancelled) {
      this.recycler.recycle(buffer);
      return;
    }
    this.buffersSent++;
    if (this.queue.size === 0 && this.credits > 0) {
      this.credits--;
      this.outstanding++;
      this.deliver(buffer);
      return;
    }
    this.creditWaits++;
    this.backlog++;
    this.queue.push(buffer);
  }

  sendEvent(event: E): void {
    if (this.closed) throw new Error(`internal: event sent on closed channel ${this.name}`);
    if (this.cancelled) return;
    this.eventsSent++;
    if (this.queue.size === 0) this.deliver(event);
    else this.queue.push(event);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.cancelled) return this.ended();
    if (this.queue.size === 0) this.deliver(END);
    else this.queue.push(END);
  }

  /** Credits arrived: move what may go now. Re-entrant calls (from a listener) fold into the running one. */
  protected addCredits(n: number): void {
    this.credits += n;
    this.pump();
  }

  protected pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.again = false;
        for (let head = this.queue.peek(); head !== undefined; head = this.queue.peek()) {
          if (head instanceof ArrayBuffer) {
            if (this.credits === 0) break;
            this.credits--;
            this.backlog--;
            this.outstanding++;
          }
          this.queue.shift();
          this.deliver(head);
        }
      } while (this.again);
    } finally {
      this.pumping = false;
    }
  }

  /** The consumer cancelled: give every queued buffer back to the pool. */
  protected dropQueue(): void {
    this.cancelled = true;
    for (const item of this.queue.drain()) if (item instanceof ArrayBuffer) this.recycler.recycle(item);
    this.backlog = 0;
  }

  /** A buffer came back from the consumer. */
  protected returned(buffer: ArrayBuffer): void {
    this.outstanding--;
    this.recycler.recycle(buffer);
  }

  /** Hands an item (buffer, event or END) to the consumer's side. */
  protected abstract deliver(item: ArrayBuffer | E | object): void;
  /** Closed (or cancelled) and maybe everything is back: finish the transport. */
  protected ended(): void {}
}

/** Shared by both receivers: the queue, the end marker, listeners and credit bookkeeping. */
abstract class ReceiverBase<E> implements CreditReceiver<E> {
  protected readonly queue = new Fifo<ArrayBuffer | E | object>();
  onAvailable: (() => void) | null = null;
  private waiters: (() => void)[] = [];
  private finished = false;
  protected cancelled = false;
  /** Credits to hold back from future recycles (revoked floating credits). */
  private withheld = 0;
  abstract readonly backlog: number;

  /** Whether the end marker is in the queue (it is not an item: `queued` does not count it). */
  private endQueued = false;

  get queued(): number {
    const n = this.queue.size;
    return this.endQueued && !this.finished ? n - 1 : n;
  }

  get isFinished(): boolean {
    if (!this.finished && this.queue.peek() === END) {
      this.queue.shift();
      this.finished = true;
    }
    return this.finished;
  }

  poll(): ArrayBuffer | E | undefined {
    const item = this.queue.shift();
    if (item === END) {
      this.finished = true;
      return undefined;
    }
    return item as ArrayBuffer | E | undefined;
  }

  whenAvailable(): Promise<void> {
    if (this.queue.size > 0 || this.finished || this.cancelled) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  recycle(buffer: ArrayBuffer): void {
    if (this.withheld > 0) {
      this.withheld--;
      this.giveBack(buffer, 0);
    } else this.giveBack(buffer, 1);
  }

  grantCredits(n: number): void {
    checkCredits(n, 'grantCredits');
    if (n > 0 && !this.cancelled) this.giveCredits(n);
  }

  revokeCredits(n: number): void {
    checkCredits(n, 'revokeCredits');
    this.withheld += n;
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    for (const item of this.queue.drain()) if (item instanceof ArrayBuffer) this.giveBack(item, 0);
    this.finished = true;
    this.cancelTransport();
    this.wake();
  }

  /** Items arrived from the producer (in order). */
  protected arrive(item: ArrayBuffer | E | object): void {
    if (this.cancelled) {
      if (item instanceof ArrayBuffer) this.giveBack(item, 0);
      return;
    }
    const wasEmpty = this.queue.size === 0;
    if (item === END) this.endQueued = true;
    this.queue.push(item);
    if (wasEmpty) this.wake();
  }

  private wake(): void {
    if (this.waiters.length > 0) {
      const list = this.waiters;
      this.waiters = [];
      for (const w of list) w();
    }
    this.onAvailable?.();
  }

  /** A buffer goes back to the producer with `credits` credits. */
  protected abstract giveBack(buffer: ArrayBuffer, credits: number): void;
  /** Credits without a buffer. */
  protected abstract giveCredits(n: number): void;
  protected abstract cancelTransport(): void;
}

// ── in-thread ───────────────────────────────────────────────────────────────────────────────────────

class LocalSender<E> extends SenderBase<E> {
  receiver!: LocalReceiver<E>;

  protected deliver(item: ArrayBuffer | E | object): void {
    this.receiver.take(item);
  }

  /** @internal */
  credit(n: number): void {
    this.addCredits(n);
  }

  /** @internal */
  back(buffer: ArrayBuffer): void {
    this.returned(buffer);
  }

  /** @internal */
  cancelByConsumer(): void {
    this.dropQueue();
  }
}

class LocalReceiver<E> extends ReceiverBase<E> {
  constructor(private readonly sender: LocalSender<E>) {
    super();
  }

  get backlog(): number {
    return this.sender.backlog;
  }

  /** @internal */
  take(item: ArrayBuffer | E | object): void {
    this.arrive(item);
  }

  protected giveBack(buffer: ArrayBuffer, credits: number): void {
    this.sender.back(buffer);
    if (credits > 0 && !this.cancelled) this.sender.credit(credits);
  }

  protected giveCredits(n: number): void {
    this.sender.credit(n);
  }

  protected cancelTransport(): void {
    this.sender.cancelByConsumer();
  }
}

/**
 * A channel whose two ends live on the same thread: buffers are handed over by reference, recycling
 * puts them straight back into `recycler` (the producer's pool) and returns the credit at once.
 *
 * Cost: O(1) per buffer or event; no allocation beyond the queues' arrays.
 *
 * @example
 * ```ts
 * const { sender, receiver } = createLocalChannel<ChannelEvent>(producerPool, { initialCredits: 2 });
 * ```
 */
export function createLocalChannel<E = unknown>(recycler: BufferRecycler, options: CreditChannelOptions = {}): { sender: CreditSender<E>; receiver: CreditReceiver<E> } {
  const initial = options.initialCredits ?? DEFAULT_CREDITS;
  checkCredits(initial, 'initialCredits');
  const sender = new LocalSender<E>(recycler, options.name ?? 'local channel');
  const receiver = new LocalReceiver<E>(sender);
  sender.receiver = receiver;
  sender.credits = initial;
  return { sender, receiver };
}

// ── cross-thread ────────────────────────────────────────────────────────────────────────────────────

interface ItemsMessage {
  k: typeof K_ITEMS;
  items: unknown[];
  backlog: number;
  end: boolean;
}
interface CreditMessage {
  k: typeof K_CREDIT;
  n: number;
  buffers: ArrayBuffer[];
}

class PortSender<E> extends SenderBase<E> {
  private out: unknown[] = [];
  private transfer: ArrayBuffer[] = [];
  private endPending = false;
  private endSent = false;
  private scheduled = false;
  private bye = false;

  constructor(private readonly port: MessagePortLike, recycler: BufferRecycler, name: string) {
    super(recycler, name);
    port.onmessage = (e) => this.onMessage(e.data as CreditMessage | { k: number });
  }

  protected deliver(item: ArrayBuffer | E | object): void {
    if (item === END) this.endPending = true;
    else {
      this.out.push(item);
      if (item instanceof ArrayBuffer) this.transfer.push(item);
    }
    if (this.out.length >= MAX_BATCH || this.endPending) this.post();
    else if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => {
        this.scheduled = false;
        this.post();
      });
    }
  }

  /** A failed post (an event that cannot be cloned): thrown by the next send, sendEvent or close. */
  private failure: Error | null = null;

  override send(buffer: ArrayBuffer): void {
    if (this.failure) throw this.failure;
    super.send(buffer);
  }

  override sendEvent(event: E): void {
    if (this.failure) throw this.failure;
    super.sendEvent(event);
  }

  override close(): void {
    if (this.failure) throw this.failure;
    super.close();
  }

  private post(): void {
    if (this.bye || (this.out.length === 0 && !this.endPending)) return;
    const msg: ItemsMessage = { k: K_ITEMS, items: this.out, backlog: this.backlog, end: this.endPending };
    const transfer = this.transfer;
    this.out = [];
    this.transfer = [];
    if (this.endPending) {
      this.endPending = false;
      this.endSent = true;
    }
    try {
      this.port.postMessage(msg, transfer);
    } catch (e) {
      // Posting may run in a microtask, where a throw would be lost: keep it for the producer.
      this.failure = new Error(`channel ${this.name}: could not post to the consumer: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      return;
    }
    if (this.endSent) this.ended();
  }

  private onMessage(msg: CreditMessage | { k: number }): void {
    if (this.bye) return;
    if (msg.k === K_CREDIT) {
      const m = msg as CreditMessage;
      for (const b of m.buffers) this.returned(b);
      if (this.cancelled) this.ended();
      else if (m.n > 0) this.addCredits(m.n);
      else if (this.endSent) this.ended();
    } else if (msg.k === K_CANCEL) {
      // Buffers delivered but not yet posted are still ours: back to the pool.
      for (const b of this.transfer) {
        this.outstanding--;
        this.recycler.recycle(b);
      }
      this.out = [];
      this.transfer = [];
      this.dropQueue();
      this.ended();
    }
  }

  protected override ended(): void {
    if (this.bye || this.outstanding > 0) return;
    if (!this.endSent && !this.cancelled) return;
    this.bye = true;
    this.port.postMessage({ k: K_BYE }, []);
    this.port.onmessage = null;
    this.port.close?.();
  }

  protected override addCredits(n: number): void {
    super.addCredits(n);
    if (this.endSent) this.ended();
  }
}

class PortReceiver<E> extends ReceiverBase<E> {
  backlog = 0;
  private returns: ArrayBuffer[] = [];
  private credit = 0;
  private scheduled = false;
  private closed = false;

  constructor(private readonly port: MessagePortLike, initialCredits: number) {
    super();
    port.onmessage = (e) => this.onMessage(e.data as ItemsMessage | { k: number });
    if (initialCredits > 0) port.postMessage({ k: K_CREDIT, n: initialCredits, buffers: [] } satisfies CreditMessage, []);
  }

  private onMessage(msg: ItemsMessage | { k: number }): void {
    if (msg.k === K_ITEMS) {
      const m = msg as ItemsMessage;
      this.backlog = m.backlog;
      const items = m.items;
      for (let i = 0; i < items.length; i++) this.arrive(items[i] as ArrayBuffer | E);
      if (m.end) this.arrive(END);
    } else if (msg.k === K_BYE) {
      this.closed = true;
      this.port.onmessage = null;
      this.port.close?.();
    }
  }

  protected giveBack(buffer: ArrayBuffer, credits: number): void {
    if (this.closed) return;
    this.returns.push(buffer);
    if (!this.cancelled) this.credit += credits;
    this.schedule();
  }

  protected giveCredits(n: number): void {
    this.credit += n;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed || (this.returns.length === 0 && this.credit === 0)) return;
    const buffers = this.returns;
    const msg: CreditMessage = { k: K_CREDIT, n: this.credit, buffers };
    this.returns = [];
    this.credit = 0;
    this.port.postMessage(msg, buffers);
  }

  protected cancelTransport(): void {
    this.flush();
    if (!this.closed) this.port.postMessage({ k: K_CANCEL }, []);
  }
}

/**
 * The producer's end of a cross-thread channel over `port` (the other end: {@link connectReceiver}
 * on the entangled port, in another thread). Buffers are transferred (the sender's ArrayBuffer is
 * detached once the message is posted, in a microtask or when 32 items are ready); the consumer's
 * emptied buffers come back with its credits and go to `recycler`. When closed and every buffer is
 * back, both ends close the port.
 *
 * @example
 * ```ts
 * const { port1, port2 } = new MessageChannel();
 * await worker.postMessage({ input: port2 }, [port2]);   // the consumer calls connectReceiver(port2)
 * const sender = connectSender<ChannelEvent>(port1, pool);
 * ```
 */
export function connectSender<E = unknown>(port: MessagePortLike, recycler: BufferRecycler, options: Pick<CreditChannelOptions, 'name'> = {}): CreditSender<E> {
  return new PortSender<E>(port, recycler, options.name ?? 'port channel');
}

/**
 * The consumer's end of a cross-thread channel over `port`; announces `initialCredits` at once (the
 * message waits in the port if the sender is not connected yet).
 *
 * @example
 * ```ts
 * const receiver = connectReceiver<ChannelEvent>(port2, { initialCredits: 2 });
 * receiver.onAvailable = () => schedule();
 * ```
 */
export function connectReceiver<E = unknown>(port: MessagePortLike, options: CreditChannelOptions = {}): CreditReceiver<E> {
  const initial = options.initialCredits ?? DEFAULT_CREDITS;
  checkCredits(initial, 'initialCredits');
  return new PortReceiver<E>(port, initial);
}
