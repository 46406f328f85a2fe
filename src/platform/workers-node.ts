// Owns workers on Node (`node:worker_threads`), both sides. Loaded only through a dynamic import from
// node.ts / workers.ts, and `node:` modules are imported inside the functions (see spill-node.ts and
// test/platform/bundle-safety.node.test.ts: a bundler must never hoist a static `node:` import into a
// bundle for workerd or browsers).
//
// TypeScript workers: a worker does not inherit the parent's loader hooks (`--import tsx` registers
// them for the main thread only, and Node 20 refuses loaders in a worker's `execArgv`). When the module
// is a `.ts` file and Node cannot strip types itself, the worker starts from a tiny bootstrap that
// registers tsx's loader (`tsx/esm/api`) in the worker and then imports the module. Compiled `.js`
// modules start directly.

import { connect, handshake, workerName, type RawParent, type RawWorker } from './worker-common.ts';
import type { ParentConnection, WorkerHandle, WorkerSpawnOptions } from './types.ts';

const TS_MODULE = /\.[mc]?tsx?$/;

/** How to start `href` in a worker: directly, or through the tsx bootstrap (or why neither works). */
async function entry(href: string): Promise<{ code: string } | { url: URL }> {
  const url = new URL(href);
  if (!TS_MODULE.test(url.pathname)) return { url };
  const { default: process } = await import('node:process');
  if ((process.features as { typescript?: unknown }).typescript) return { url }; // Node strips types itself
  let api: string;
  try {
    api = import.meta.resolve('tsx/esm/api');
  } catch {
    throw new Error(`${href} is TypeScript and this Node cannot load it without a loader: run the compiled .js module, or install tsx`);
  }
  // A CommonJS script (eval: true): register tsx's hooks in this thread, then import the module.
  // An error re-thrown outside the promise reaches the parent as the worker's 'error' event.
  const code =
    `import(${JSON.stringify(api)})` +
    `.then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })` +
    `.catch((e) => { setImmediate(() => { throw e; }); });`;
  return { code };
}

/**
 * Starts `moduleUrl` in a `node:worker_threads` Worker and runs the handshake (see worker-common.ts).
 *
 * @example
 * ```ts
 * const worker = await spawnNodeWorker(new URL('./task.ts', import.meta.url), { id: 1 });
 * ```
 */
export async function spawnNodeWorker(moduleUrl: string | URL, data: unknown, options: WorkerSpawnOptions = {}): Promise<WorkerHandle> {
  const { Worker } = await import('node:worker_threads');
  const name = workerName(moduleUrl, options.name);
  const start = await entry(typeof moduleUrl === 'string' ? moduleUrl : moduleUrl.href);
  const worker = 'code' in start ? new Worker(start.code, { eval: true, name }) : new Worker(start.url, { name });
  let terminating = false;
  const raw: RawWorker = {
    post: (message, transfer) => worker.postMessage(message, transfer as never),
    listen(onMessage, onError) {
      worker.on('message', (data: unknown) => onMessage({ data } as MessageEvent));
      worker.on('messageerror', () => onError(new Error('a message from the worker could not be deserialized')));
      worker.on('error', (e: unknown) => onError(e instanceof Error ? e : new Error(String(e))));
      worker.on('exit', (code: number) => {
        if (!terminating && code !== 0) onError(new Error(`worker exited with code ${code}`));
      });
    },
    async terminate() {
      terminating = true;
      await worker.terminate();
    },
  };
  return handshake(name, raw, data, options.transfer ?? []);
}

/** The worker side on Node: `parentPort` is the channel to the parent. */
export async function connectNodeParent(): Promise<ParentConnection> {
  const { parentPort } = await import('node:worker_threads');
  if (!parentPort) throw new Error('connectParent(): not running inside a worker');
  const port = parentPort;
  const raw: RawParent = {
    post: (message, transfer) => port.postMessage(message, transfer as never),
    listen(onMessage) {
      port.on('message', (data: unknown) => onMessage({ data } as MessageEvent));
    },
    close: () => port.close(),
  };
  return connect(raw);
}
