// Owns the cross-thread test of the network layer: a real worker (node:worker_threads on Node, Web
// Workers on Deno and Bun) relays 100k records through credit channels over MessagePorts in both
// directions, with events in order, buffers moved by transfer (the sender's ArrayBuffer detached),
// every buffer returned, and both pools within their size. Skipped only where the runtime has no
// workers (workerd, which does not run this runner anyway).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { detectPlatform } from '../../../src/platform/detect.ts';
import type { WorkerHandle } from '../../../src/platform/types.ts';
import { NetworkBufferPool } from '../../../src/runtime/network/buffer-pool.ts';
import { ChannelReader } from '../../../src/runtime/network/channel-reader.ts';
import { connectReceiver, connectSender, type CreditSender } from '../../../src/runtime/network/credit-channel.ts';
import { PartitionWriter } from '../../../src/runtime/network/partition-writer.ts';
import { createDeserializer } from '../../../src/runtime/network/serializer.ts';
import { rowSchema, transform, type Ev, type RelayData, type RelayReport, type Row } from './relay-common.ts';

const platform = await detectPlatform();
const RECORDS = 100_000;
const WATERMARK_EVERY = 10_000;
const BUFFER_BYTES = 8192;

/** Fails instead of hanging if the relay stalls (a guard, not a timing assertion). */
function guard<T>(p: Promise<T>, what: string, ms = 120_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no end after ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

async function relay(format: 'rows' | 'any'): Promise<void> {
  const schema = format === 'rows' ? rowSchema : undefined;
  const toWorker = new MessageChannel();
  const fromWorker = new MessageChannel();
  const data: RelayData = { input: toWorker.port2, output: fromWorker.port1, format, bufferBytes: BUFFER_BYTES, credits: 2 };
  let worker: WorkerHandle | undefined;
  try {
    worker = await platform.workers.spawn(new URL('./relay-worker.ts', import.meta.url), data, { name: `relay-${format}`, transfer: [toWorker.port2, fromWorker.port1] });
    const failed = new Promise<never>((_, reject) => {
      worker!.onerror = (e) => reject(e);
    });
    const report = new Promise<RelayReport>((resolve) => {
      worker!.onmessage = (e) => resolve(e.data as RelayReport);
    });

    const net = new NetworkBufferPool({ networkMemory: 8 * BUFFER_BYTES, bufferBytes: BUFFER_BYTES });
    const pool = net.createLocalPool({ name: 'main → relay', minBuffers: 2, maxBuffers: 4 });
    const port = connectSender<Ev>(toWorker.port1, pool);
    const sent: ArrayBuffer[] = [];
    const sender: CreditSender<Ev> = {
      send(b) {
        sent.push(b);
        port.send(b);
      },
      sendEvent: (e) => port.sendEvent(e),
      close: () => port.close(),
      get credits() { return port.credits; },
      get backlog() { return port.backlog; },
      get outstanding() { return port.outstanding; },
      get isCancelled() { return port.isCancelled; },
      get stats() { return port.stats; },
    };
    const writer = new PartitionWriter<Row, Ev>({ pool, senders: [sender], schema, bufferTimeoutMs: -1, operator: 'Source', subtask: 0 });
    const reader = new ChannelReader<Row, Ev>(connectReceiver<Ev>(fromWorker.port2, { initialCredits: 2 }), createDeserializer({ schema, operator: 'Sink', subtask: 0 }));

    const produce = async () => {
      const batch: Row[] = [];
      const stamps: number[] = [];
      for (let base = 0; base < RECORDS; base += 1000) {
        batch.length = 0;
        stamps.length = 0;
        for (let i = base; i < base + 1000; i++) {
          batch.push({ id: i, v: i + 0.5, s: `key-${i % 97}` });
          stamps.push(i * 10);
        }
        let i = 0;
        while ((i = writer.write(0, batch, stamps, i)) < batch.length) await writer.whenAvailable();
        if ((base + 1000) % WATERMARK_EVERY === 0) writer.emitEvent(0, { kind: 'watermark', timestamp: (base + 1000) * 10 - 1 });
      }
      writer.emitEvent(0, { kind: 'end-of-input' });
      writer.close();
    };

    const received: Row[] = [];
    const stamps: number[] = [];
    const timeline: string[] = [];
    const consume = async () => {
      while (!reader.isFinished) {
        await reader.whenAvailable();
        for (let item = reader.next(); item; item = reader.next()) {
          if (item.kind === 'records') {
            received.push(...item.records);
            for (const t of item.timestamps!) stamps.push(t);
          } else timeline.push(item.event.kind === 'watermark' ? `${received.length}:wm${item.event.timestamp}` : `${received.length}:eoi`);
        }
      }
    };

    const done = await guard(Promise.race([Promise.all([produce(), consume(), report]), failed]), `relay (${format})`);
    const workerReport = done[2];

    assert.is(received.length, RECORDS);
    for (let i = 0; i < RECORDS; i++) {
      const expected = transform({ id: i, v: i + 0.5, s: `key-${i % 97}` });
      const r = received[i]!;
      if (r.id !== expected.id || r.v !== expected.v || r.s !== expected.s) assert.equal(r, expected, `record ${i}`);
      if (stamps[i] !== i * 10) assert.is(stamps[i], i * 10, `timestamp ${i}`);
    }
    const expectedTimeline: string[] = [];
    for (let n = WATERMARK_EVERY; n <= RECORDS; n += WATERMARK_EVERY) expectedTimeline.push(`${n}:wm${n * 10 - 1}`);
    expectedTimeline.push(`${RECORDS}:eoi`);
    assert.equal(timeline, expectedTimeline, 'events arrive in order, after exactly the records before them');

    assert.is(workerReport.records, RECORDS);
    assert.is(workerReport.events, RECORDS / WATERMARK_EVERY + 1);
    assert.ok(sent.length > 50, `${sent.length} buffers sent to the worker`);
    assert.is(sent.filter((b) => b.byteLength === 0).length, sent.length, 'every buffer sent to the worker was transferred (detached here)');
    assert.is(workerReport.detached, workerReport.buffersSent, 'every buffer the worker sent back was transferred');
    assert.ok(workerReport.buffersSent > 50);
    assert.ok(pool.metrics.maxBuffersInUse <= pool.size && pool.size === 4);
    assert.ok(workerReport.maxBuffersInUse <= workerReport.poolSize && workerReport.poolSize === 4);
    assert.ok(net.metrics.maxBuffersInUse <= 4);
    assert.is(workerReport.buffersInUseAtEnd, 0);
    for (let i = 0; i < 1000 && pool.buffersInUse > 0; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.is(pool.buffersInUse, 0, 'every buffer came back from the worker');
  } finally {
    await worker?.terminate();
    for (const p of [toWorker.port1, toWorker.port2, fromWorker.port1, fromWorker.port2]) p.close();
  }
}

if (platform.workers.supported) {
  test(`${platform.name}: 100k records to a worker and back, MessagePack, with transfer`, () => relay('any'));
  test(`${platform.name}: 100k records to a worker and back, binary rows, with transfer`, () => relay('rows'));
} else {
  console.log(`  skipping the cross-thread network test: ${platform.name} has no workers (${platform.workers.reason})`);
  test.skip(`${platform.name}: 100k records to a worker and back (no workers: ${platform.workers.reason})`, () => {});
}

test.run();
