// Owns the tests of credit-based channels and the partition writer over them: buffers leave only
// against credits while events need none and never overtake; a slow consumer stalls the producer with
// the buffer pool never exceeding its size; cancellation; the MessagePort transport (same thread,
// real transfers); and the buffer timeout on a manual clock.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { schema, t } from '../../../src/core/schema.ts';
import { ManualClock } from '../../../src/runtime/clock.ts';
import { NetworkBufferPool } from '../../../src/runtime/network/buffer-pool.ts';
import { ChannelReader } from '../../../src/runtime/network/channel-reader.ts';
import {
  connectReceiver,
  connectSender,
  createLocalChannel,
  isBuffer,
  type CreditReceiver,
  type CreditSender,
} from '../../../src/runtime/network/credit-channel.ts';
import { checkBufferTimeout } from '../../../src/runtime/network/output-flusher.ts';
import { PartitionWriter } from '../../../src/runtime/network/partition-writer.ts';
import { createDeserializer } from '../../../src/runtime/network/serializer.ts';
import { forSeeds } from '../../reference/random.ts';

type Ev = { kind: 'watermark'; timestamp: number } | { kind: 'end-of-input' };
const EOI: Ev = { kind: 'end-of-input' };
const wm = (timestamp: number): Ev => ({ kind: 'watermark', timestamp });

/** A pool whose buffers are tagged with a number in their first word, to follow them through a channel. */
function taggedPool(buffers: number) {
  const net = new NetworkBufferPool({ networkMemory: buffers * 1024, bufferBytes: 1024 });
  const pool = net.createLocalPool({ name: 'producer', minBuffers: 1 });
  let n = 0;
  const next = (): ArrayBuffer => {
    const b = pool.requestBuffer();
    if (!b) throw new Error('pool dry');
    new Int32Array(b)[0] = n++;
    return b;
  };
  return { net, pool, next };
}

const tag = (b: ArrayBuffer) => new Int32Array(b)[0];

function drain<E>(receiver: CreditReceiver<E>, recycle = true): (number | E)[] {
  const out: (number | E)[] = [];
  for (let item = receiver.poll(); item !== undefined; item = receiver.poll()) {
    if (isBuffer(item)) {
      out.push(tag(item)!);
      if (recycle) receiver.recycle(item);
    } else out.push(item);
  }
  return out;
}

test('buffers leave only against credits; the rest wait as backlog; recycling returns the credit', () => {
  const { pool, next } = taggedPool(16);
  const { sender, receiver } = createLocalChannel<Ev>(pool, { initialCredits: 2 });
  for (let i = 0; i < 5; i++) sender.send(next());
  assert.is(receiver.queued, 2);
  assert.is(sender.backlog, 3);
  assert.is(receiver.backlog, 3);
  assert.is(sender.credits, 0);
  assert.is(sender.outstanding, 2);
  assert.is(sender.stats.creditWaits, 3);
  const first = receiver.poll() as ArrayBuffer;
  assert.is(tag(first), 0);
  assert.is(receiver.queued, 1, 'polling alone returns no credit');
  receiver.recycle(first);
  assert.is(receiver.queued, 2, 'the recycled buffer\'s credit let the next one through');
  assert.is(sender.backlog, 2);
  assert.equal(drain(receiver), [1, 2, 3, 4]);
  assert.is(sender.credits, 2);
  assert.is(pool.buffersInUse, 0);
});

test('events need no credit but never overtake a buffer queued before them', () => {
  const { pool, next } = taggedPool(16);
  const { sender, receiver } = createLocalChannel<Ev>(pool, { initialCredits: 1 });
  sender.sendEvent(wm(1)); // no backlog: goes at once
  sender.send(next()); // the credit
  sender.sendEvent(wm(2)); // goes: nothing queued before it
  assert.is(receiver.queued, 3);
  sender.send(next()); // no credit: waits
  sender.sendEvent(wm(3)); // behind the waiting buffer
  assert.is(receiver.queued, 3);
  assert.equal(drain(receiver, false), [wm(1), 0, wm(2)]);
  sender.close();
  assert.not.ok(receiver.isFinished);
  assert.is(receiver.queued, 0);
});

test('random sends, events and consumer pace keep channel order, and the consumer never holds more than its credits', async () => {
  await forSeeds('channel order', 20, (rng) => {
    const { pool, next } = taggedPool(64);
    const credits = rng.range(1, 4);
    const { sender, receiver } = createLocalChannel<Ev>(pool, { initialCredits: credits });
    const sent: (number | Ev)[] = [];
    const got: (number | Ev)[] = [];
    const held: ArrayBuffer[] = [];
    let nextTag = 0;
    let ts = 0;
    for (let step = 0; step < 500; step++) {
      const op = rng.int(6);
      if (op <= 1 && pool.isAvailable) {
        sender.send(next());
        sent.push(nextTag++);
      } else if (op === 2) {
        const e = wm(ts++);
        sender.sendEvent(e);
        sent.push(e);
      } else if (op === 3) {
        const item = receiver.poll();
        if (item !== undefined) {
          if (isBuffer(item)) {
            got.push(tag(item)!);
            held.push(item);
          } else got.push(item);
        }
      } else if (held.length > 0) receiver.recycle(held.shift()!);
      assert.ok(sender.outstanding <= credits, 'the consumer holds (queued or polled) at most its credits');
      assert.ok(held.length <= sender.outstanding && sender.outstanding <= held.length + receiver.queued);
    }
    sender.sendEvent(EOI);
    sent.push(EOI);
    sender.close();
    for (const h of held) receiver.recycle(h);
    got.push(...drain(receiver));
    assert.ok(receiver.isFinished);
    assert.equal(got, sent);
    assert.is(pool.buffersInUse, 0);
  });
});

test('floating credits can be granted and taken back', () => {
  const { pool, next } = taggedPool(16);
  const { sender, receiver } = createLocalChannel<Ev>(pool, { initialCredits: 1 });
  for (let i = 0; i < 4; i++) sender.send(next());
  assert.is(receiver.queued, 1);
  receiver.grantCredits(2);
  assert.is(receiver.queued, 3);
  receiver.revokeCredits(2);
  const items = [receiver.poll(), receiver.poll()] as ArrayBuffer[];
  for (const b of items) receiver.recycle(b); // both credits withheld
  assert.is(receiver.queued, 1);
  assert.is(sender.backlog, 1);
  receiver.recycle(receiver.poll() as ArrayBuffer); // back to one credit
  assert.is(receiver.queued, 1);
  assert.is(sender.backlog, 0);
  assert.throws(() => receiver.grantCredits(-1), RangeError);
});

test('cancel: queued buffers go back to the pool and later sends are dropped', () => {
  const { pool, next } = taggedPool(16);
  const { sender, receiver } = createLocalChannel<Ev>(pool, { initialCredits: 2 });
  for (let i = 0; i < 5; i++) sender.send(next());
  const polled = receiver.poll() as ArrayBuffer;
  receiver.cancel();
  assert.ok(sender.isCancelled);
  assert.is(sender.backlog, 0);
  assert.is(pool.buffersInUse, 1, 'only the polled buffer is still out');
  sender.send(next());
  sender.sendEvent(EOI);
  assert.is(pool.buffersInUse, 1);
  receiver.recycle(polled);
  assert.is(pool.buffersInUse, 0);
  assert.ok(receiver.isFinished);
  sender.close();
});

test('onAvailable and whenAvailable fire when something arrives after the queue ran empty, and at the end', async () => {
  const { pool, next } = taggedPool(16);
  const { sender, receiver } = createLocalChannel<Ev>(pool);
  let calls = 0;
  receiver.onAvailable = () => calls++;
  const woken = receiver.whenAvailable();
  sender.sendEvent(wm(1));
  assert.is(calls, 1);
  sender.sendEvent(wm(2));
  assert.is(calls, 1, 'only on empty → non-empty');
  await woken;
  drain(receiver);
  sender.send(next());
  assert.is(calls, 2);
  drain(receiver);
  const ended = receiver.whenAvailable();
  sender.close();
  assert.is(calls, 3);
  await ended;
  assert.ok(receiver.isFinished);
  assert.is(receiver.poll(), undefined);
});

// ── the partition writer ─────────────────────────────────────────────────────────────────────────────

function rig(opts: { subpartitions?: number; bufferTimeoutMs?: number; credits?: number; poolBuffers?: [number, number]; bufferBytes?: number; schema?: boolean } = {}) {
  const n = opts.subpartitions ?? 1;
  const clock = new ManualClock(0);
  const net = new NetworkBufferPool({ networkMemory: 256 * 1024, bufferBytes: opts.bufferBytes ?? 1024 });
  const [min, max] = opts.poolBuffers ?? [n + 1, n + 1];
  const pool = net.createLocalPool({ name: 'Map#0 → Sink', minBuffers: min, maxBuffers: max });
  const s = opts.schema ? schema({ id: t.i32(), name: t.string() }) : undefined;
  const channels = Array.from({ length: n }, () => createLocalChannel<Ev>(pool, { initialCredits: opts.credits ?? 2 }));
  const writer = new PartitionWriter<{ id: number; name: string }, Ev>({
    pool,
    senders: channels.map((c) => c.sender),
    schema: s,
    bufferTimeoutMs: opts.bufferTimeoutMs ?? 100,
    clock,
    operator: 'Map',
    subtask: 0,
  });
  const readers = channels.map((c) => new ChannelReader<{ id: number; name: string }, Ev>(c.receiver, createDeserializer({ schema: s, operator: 'Sink', subtask: 0 })));
  return { clock, net, pool, writer, readers, channels };
}

function readAll(reader: ChannelReader<{ id: number; name: string }, Ev>) {
  const records: { id: number; name: string }[] = [];
  const events: Ev[] = [];
  const timeline: (string | number)[] = [];
  let buffers = 0;
  for (let item = reader.next(); item; item = reader.next()) {
    if (item.kind === 'records') {
      buffers++;
      records.push(...item.records);
      timeline.push(item.records.length);
    } else {
      events.push(item.event);
      timeline.push(item.event.kind === 'watermark' ? `wm${item.event.timestamp}` : 'eoi');
    }
  }
  return { records, events, buffers, timeline };
}

const rec = (i: number) => ({ id: i, name: `r${i}` });

test('a slow sink keeps memory bounded: the producer stalls and the buffer pool never exceeds its size', async () => {
  for (const useSchema of [false, true]) {
    const { pool, net, writer, readers } = rig({ poolBuffers: [3, 4], schema: useSchema, bufferTimeoutMs: -1 });
    const total = 20_000;
    const records = Array.from({ length: total }, (_, i) => rec(i));
    const received: { id: number; name: string }[] = [];
    let stalls = 0;
    let maxInUse = 0;
    let written = 0;
    // The producer writes as fast as the pool lets it; the consumer reads one buffer per turn.
    for (let turn = 0; written < total || !readers[0]!.isFinished; turn++) {
      if (written < total) {
        written = writer.write(0, records, undefined, written, total);
        if (written < total) stalls++;
        else {
          writer.broadcastEvent(EOI);
          writer.close();
        }
      }
      maxInUse = Math.max(maxInUse, pool.buffersInUse);
      assert.ok(pool.buffersInUse <= pool.size, `turn ${turn}: ${pool.buffersInUse} buffers in use, pool size ${pool.size}`);
      const item = readers[0]!.next();
      if (item?.kind === 'records') received.push(...item.records);
      assert.ok(turn < 100_000, 'no progress');
    }
    assert.ok(stalls > 100, `the producer stalled ${stalls} times`);
    assert.ok(pool.metrics.waits >= stalls);
    assert.is(maxInUse, pool.size, 'the pool was used to its size, never beyond');
    assert.ok(pool.metrics.maxBuffersInUse <= pool.size);
    assert.ok(net.metrics.maxBuffersInUse <= pool.size);
    assert.equal(received, records);
    assert.is(pool.buffersInUse, 0, 'every buffer came back');
  }
});

test('the buffer timeout sends a partly filled buffer once it expires (manual clock)', () => {
  const { clock, writer, readers } = rig({ bufferTimeoutMs: 100 });
  writer.write(0, [rec(0), rec(1), rec(2)]);
  assert.is(readers[0]!.receiver.queued, 0);
  assert.is(clock.pendingCount, 1, 'one timer for the pending data');
  clock.advance(60);
  writer.write(0, [rec(3)]); // joins the pending buffer; no new timer
  assert.is(clock.pendingCount, 1);
  clock.advance(39);
  assert.is(readers[0]!.receiver.queued, 0);
  clock.advance(1);
  const got = readAll(readers[0]!);
  assert.equal(got.timeline, [4], 'the first record waited exactly the timeout; the later one went early');
  assert.is(writer.stats.timedFlushes, 1);
  assert.is(clock.pendingCount, 0, 'no timer while nothing is pending');
  clock.advance(1000);
  assert.is(writer.stats.timedFlushes, 1);
});

test('buffer timeout 0 flushes after every write; -1 only when full or flushed; full buffers never wait', () => {
  {
    const { clock, writer, readers } = rig({ bufferTimeoutMs: 0, credits: 100, poolBuffers: [2, 100] });
    writer.write(0, [rec(0), rec(1)]);
    writer.writeOne(0, rec(2));
    writer.writeOne(0, rec(3));
    assert.equal(readAll(readers[0]!).timeline, [2, 1, 1]);
    assert.is(clock.pendingCount, 0);
  }
  {
    const { clock, writer, readers } = rig({ bufferTimeoutMs: -1, credits: 100, poolBuffers: [2, 100] });
    const many = Array.from({ length: 200 }, (_, i) => rec(i));
    writer.write(0, many);
    assert.is(clock.pendingCount, 0, '-1 sets no timer');
    clock.advance(10_000);
    const full = readAll(readers[0]!);
    assert.ok(full.buffers >= 2, 'full buffers went at once');
    assert.ok(full.records.length < 200, 'the partly filled one waits');
    writer.flush();
    const rest = readAll(readers[0]!);
    assert.equal([...full.records, ...rest.records], many);
  }
  assert.throws(() => checkBufferTimeout(-2), /bufferTimeoutMs/);
  assert.throws(() => checkBufferTimeout(1.5), /bufferTimeoutMs/);
});

test('events flush the partly filled buffer first, per subpartition; end-of-input closes in order', () => {
  const { writer, readers, clock } = rig({ subpartitions: 2, bufferTimeoutMs: 100 });
  writer.write(0, [rec(0), rec(1)]);
  writer.write(1, [rec(10)]);
  writer.emitEvent(0, wm(5));
  assert.equal(readAll(readers[0]!).timeline, [2, 'wm5']);
  assert.is(readers[1]!.receiver.queued, 0, 'the other subpartition keeps its buffer');
  assert.is(clock.pendingCount, 1, 'still pending on subpartition 1');
  writer.write(0, [rec(2)]);
  writer.broadcastEvent(wm(6));
  assert.is(clock.pendingCount, 0);
  writer.broadcastEvent(EOI);
  writer.close();
  assert.equal(readAll(readers[0]!).timeline, [1, 'wm6', 'eoi']);
  assert.equal(readAll(readers[1]!).timeline, [1, 'wm6', 'eoi']);
  assert.ok(readers[0]!.isFinished && readers[1]!.isFinished);
});

test('a timed flush can be routed through the caller (a mailbox)', () => {
  const clock = new ManualClock(0);
  const net = new NetworkBufferPool({ networkMemory: 8192, bufferBytes: 1024 });
  const pool = net.createLocalPool({ name: 'p', minBuffers: 2 });
  const { sender, receiver } = createLocalChannel<Ev>(pool);
  const mailbox: (() => void)[] = [];
  const writer = new PartitionWriter<number, Ev>({ pool, senders: [sender], clock, bufferTimeoutMs: 10, runFlush: (f) => mailbox.push(f) });
  writer.write(0, [1, 2]);
  clock.advance(10);
  assert.is(receiver.queued, 0);
  assert.is(mailbox.length, 1);
  mailbox.shift()!();
  assert.is(receiver.queued, 1);
});

test('a record larger than a buffer goes alone, outside the pool, in order', () => {
  const { writer, readers, pool } = rig({ bufferTimeoutMs: -1, credits: 10, schema: true });
  const big = { id: 99, name: 'x'.repeat(3000) };
  writer.write(0, [rec(0), big, rec(1)], [1, 2, 3]);
  writer.flush();
  const got = readAll(readers[0]!);
  assert.equal(got.records, [rec(0), big, rec(1)]);
  assert.equal(got.timeline, [1, 1, 1]);
  assert.is(writer.stats.largeRecords, 1);
  assert.is(pool.buffersInUse, 0, 'the large record\'s buffer was dropped, not pooled');
});

// ── the MessagePort transport, in one thread ─────────────────────────────────────────────────────────

function portPair(pool: { recycle(b: ArrayBuffer): void }, credits = 2): { sender: CreditSender<Ev>; receiver: CreditReceiver<Ev>; ports: MessagePort[] } {
  const { port1, port2 } = new MessageChannel();
  const sender = connectSender<Ev>(port1, pool);
  const receiver = connectReceiver<Ev>(port2, { initialCredits: credits });
  return { sender, receiver, ports: [port1, port2] };
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await tick();
  assert.ok(cond(), what);
}

test('over a MessagePort: credits, order, transferred (detached) buffers coming back, and the port closing at the end', async () => {
  const { pool, next } = taggedPool(16);
  const { sender, receiver } = portPair(pool, 2);
  await until(() => sender.credits === 2, 'initial credits arrive');
  const sent: ArrayBuffer[] = [];
  for (let i = 0; i < 5; i++) {
    const b = next();
    sent.push(b);
    sender.send(b);
    if (i === 1) sender.sendEvent(wm(1));
  }
  sender.sendEvent(EOI);
  sender.close();
  assert.is(sender.backlog, 3);
  await until(() => receiver.queued === 3, 'two buffers and the event arrive');
  assert.is(sent[0]!.byteLength, 0, 'the first buffer was transferred, not copied');
  assert.is(sent[4]!.byteLength, 1024, 'a buffer without credit is still here');
  assert.is(receiver.backlog, 3);
  const got: (number | Ev)[] = [];
  while (!receiver.isFinished) {
    await receiver.whenAvailable();
    for (let item = receiver.poll(); item !== undefined; item = receiver.poll()) {
      if (isBuffer(item)) {
        got.push(tag(item)!);
        receiver.recycle(item);
      } else got.push(item);
    }
  }
  assert.equal(got, [0, 1, wm(1), 2, 3, 4, EOI]);
  await until(() => pool.buffersInUse === 0, 'every buffer came back to the pool');
  assert.is(sender.outstanding, 0);
});

test('over a MessagePort: a slow consumer throttles a writer; the pool bound holds', async () => {
  const net = new NetworkBufferPool({ networkMemory: 64 * 1024, bufferBytes: 1024 });
  const pool = net.createLocalPool({ name: 'p', minBuffers: 3, maxBuffers: 3 });
  const { sender, receiver } = portPair(pool, 2);
  const writer = new PartitionWriter<{ id: number; name: string }, Ev>({ pool, senders: [sender], bufferTimeoutMs: -1 });
  const reader = new ChannelReader<{ id: number; name: string }, Ev>(receiver, createDeserializer());
  const records = Array.from({ length: 5000 }, (_, i) => rec(i));
  const received: unknown[] = [];
  const producer = (async () => {
    let i = 0;
    while ((i = writer.write(0, records, undefined, i)) < records.length) {
      assert.ok(pool.buffersInUse <= 3);
      await writer.whenAvailable();
    }
    writer.broadcastEvent(EOI);
    writer.close();
  })();
  const consumer = (async () => {
    while (!reader.isFinished) {
      await reader.whenAvailable();
      const item = reader.next(); // one buffer per wake-up: slower than the producer
      if (item?.kind === 'records') received.push(...item.records);
      await tick();
    }
  })();
  await Promise.all([producer, consumer]);
  assert.equal(received, records);
  assert.ok(pool.metrics.waits > 10, `producer waited ${pool.metrics.waits} times`);
  assert.ok(net.metrics.maxBuffersInUse <= 3);
  await until(() => pool.buffersInUse === 0, 'all buffers back');
});

test('over a MessagePort: cancel returns everything and the sender drops later sends', async () => {
  const { pool, next } = taggedPool(16);
  const { sender, receiver } = portPair(pool, 2);
  await until(() => sender.credits === 2, 'credits');
  for (let i = 0; i < 4; i++) sender.send(next());
  await until(() => receiver.queued === 2, 'two arrive');
  receiver.cancel();
  await until(() => sender.isCancelled, 'the sender hears of it');
  sender.send(next());
  await until(() => pool.buffersInUse === 0, 'everything is back in the pool');
});

test('over a MessagePort: an event that cannot be posted fails the next send instead of vanishing in a microtask', async () => {
  const { pool } = taggedPool(4);
  const { sender } = portPair(pool, 2);
  sender.sendEvent({ kind: 'watermark', timestamp: 1, fn: () => 1 } as unknown as Ev);
  await tick();
  assert.throws(() => sender.sendEvent(wm(2)), /could not post to the consumer/);
});

test.run();
