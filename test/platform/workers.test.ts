// Owns the worker adapter tests: a real worker of the running runtime gets its spawn data (ports and
// buffers transferred), talks both ways, reports its errors to the parent; a module that fails to load
// rejects the spawn; workerd (and any runtime without workers) reports "unsupported".

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createWorkerdPlatform, detectPlatform, unsupportedWorkers, WorkersUnsupportedError, WorkerStartError } from '../../src/platform/index.ts';
import { connectParent, spawnWorker } from '../../src/platform/workers.ts';

const platform = await detectPlatform();
const echo = new URL('./echo-worker.ts', import.meta.url);

function next(worker: { onmessage: ((e: MessageEvent) => void) | null }): Promise<any> {
  return new Promise((resolve) => {
    worker.onmessage = (e) => resolve(e.data);
  });
}

test('Node, Deno and Bun can start workers', () => {
  assert.ok(platform.workers.supported, `${platform.name}: ${platform.workers.reason}`);
});

test('a worker gets its data (with a transferred port and buffer) and talks both ways', async () => {
  const { port1, port2 } = new MessageChannel();
  const bytes = new ArrayBuffer(64);
  const worker = await platform.workers.spawn(echo, { greeting: 'hi', port: port2, bytes }, { transfer: [port2, bytes] });
  try {
    assert.is(bytes.byteLength, 0, 'the buffer moved to the worker');
    assert.equal(await next(worker), { kind: 'hello', greeting: 'hi', bytes: 64 });
    const answer = next(worker);
    worker.postMessage({ kind: 'echo', value: { a: [1, 'two'] } });
    assert.equal(await answer, { kind: 'echo', value: { a: [1, 'two'] } });
    const back = next(worker);
    const sent = new Uint8Array([1, 2, 3]).buffer;
    worker.postMessage({ kind: 'buffer', value: sent }, [sent]);
    assert.is(sent.byteLength, 0);
    const got = await back;
    assert.is(got.size, 3);
    assert.equal([...new Uint8Array(got.value)], [1, 2, 3]);
    const viaPort = new Promise((resolve) => {
      port1.onmessage = (e) => resolve(e.data);
    });
    port1.postMessage('ping');
    assert.equal(await viaPort, { portEcho: 'ping' });
  } finally {
    port1.close();
    await worker.terminate();
    await worker.terminate(); // idempotent
  }
});

test('messages that arrive before onmessage is set are kept', async () => {
  const worker = await spawnWorker(echo, { greeting: 'early' });
  try {
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the hello arrive unhandled
    assert.equal(await next(worker), { kind: 'hello', greeting: 'early', bytes: -1 });
  } finally {
    await worker.terminate();
  }
});

test('an uncaught error in a running worker reaches onerror', async () => {
  const worker = await platform.workers.spawn(echo, { greeting: 'x' }, { name: 'echo-1' });
  try {
    assert.is(worker.name, 'echo-1');
    const failed = new Promise<Error>((resolve) => {
      worker.onerror = resolve;
    });
    worker.postMessage({ kind: 'boom' });
    assert.match((await failed).message, /boom in worker/);
  } finally {
    await worker.terminate();
  }
});

test('a module that fails to load rejects the spawn with a WorkerStartError', async () => {
  try {
    await platform.workers.spawn(new URL('./broken-worker.ts', import.meta.url), {});
    assert.unreachable('spawn should reject');
  } catch (e) {
    assert.ok(e instanceof WorkerStartError, String(e));
    assert.match((e as Error).message, /broken-worker\.ts failed to start: [\s\S]*broken worker module/);
  }
});

test('workerd reports workers unsupported; spawning there rejects with the reason', async () => {
  const workerd = createWorkerdPlatform({ kernels: new WebAssembly.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])) });
  assert.is(workerd.workers.supported, false);
  assert.match(workerd.workers.reason!, /no worker threads/);
  try {
    await workerd.workers.spawn(echo, {});
    assert.unreachable('spawn should reject');
  } catch (e) {
    assert.ok(e instanceof WorkersUnsupportedError);
    assert.match((e as Error).message, /no worker threads/);
  }
  assert.is(unsupportedWorkers('none here').reason, 'none here');
});

test('connectParent outside a worker rejects', async () => {
  try {
    await connectParent();
    assert.unreachable('should reject');
  } catch (e) {
    assert.match((e as Error).message, /not running inside a worker/);
  }
});

test.run();
