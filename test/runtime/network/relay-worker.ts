// Owns the worker side of the cross-thread network test (started by cross-thread.test.ts): reads
// records from one credit channel, transforms them, and writes them back on another with its own
// buffer pool, forwarding events in order; then reports what it saw.

import { connectParent } from '../../../src/platform/workers.ts';
import { NetworkBufferPool } from '../../../src/runtime/network/buffer-pool.ts';
import { ChannelReader } from '../../../src/runtime/network/channel-reader.ts';
import { connectReceiver, connectSender, type CreditSender } from '../../../src/runtime/network/credit-channel.ts';
import { PartitionWriter } from '../../../src/runtime/network/partition-writer.ts';
import { createDeserializer } from '../../../src/runtime/network/serializer.ts';
import { rowSchema, transform, type Ev, type RelayData, type RelayReport, type Row } from './relay-common.ts';

const parent = await connectParent();
const data = parent.data as RelayData;
const schema = data.format === 'rows' ? rowSchema : undefined;

const net = new NetworkBufferPool({ networkMemory: 8 * data.bufferBytes, bufferBytes: data.bufferBytes });
const pool = net.createLocalPool({ name: 'relay → main', minBuffers: 2, maxBuffers: 4 });
const receiver = connectReceiver<Ev>(data.input, { initialCredits: data.credits });
const port = connectSender<Ev>(data.output, pool);
// Keep every buffer handed to the channel, to check afterwards that the transfer detached it.
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
const reader = new ChannelReader<Row, Ev>(receiver, createDeserializer({ schema, operator: 'Relay', subtask: 0 }));
const writer = new PartitionWriter<Row, Ev>({ pool, senders: [sender], schema, bufferTimeoutMs: -1, operator: 'Relay', subtask: 0 });

let records = 0;
let events = 0;
while (!reader.isFinished) {
  await reader.whenAvailable();
  for (let item = reader.next(); item; item = reader.next()) {
    if (item.kind === 'records') {
      const out = item.records.map(transform);
      records += out.length;
      let i = 0;
      while ((i = writer.write(0, out, item.timestamps, i)) < out.length) await writer.whenAvailable();
    } else {
      events++;
      writer.emitEvent(0, item.event);
    }
  }
}
writer.close();
while (pool.buffersInUse > 0) await new Promise((resolve) => setTimeout(resolve, 1));

const report: RelayReport = {
  records,
  events,
  buffersSent: sent.length,
  detached: sent.filter((b) => b.byteLength === 0).length,
  maxBuffersInUse: pool.metrics.maxBuffersInUse,
  poolSize: pool.size,
  buffersInUseAtEnd: pool.buffersInUse,
};
parent.postMessage(report);
