// Owns workers on runtimes with the web-standard `Worker` (Deno, Bun, browsers): module workers
// started with `new Worker(url, { type: 'module' })`, and the worker side over the worker's global
// scope (`postMessage` / `onmessage` / `close`).

import { connect, handshake, unsupportedWorkers, workerName, type RawParent, type RawWorker } from './worker-common.ts';
import type { ParentConnection, WorkerSpawner } from './types.ts';

/** The parts of the web `Worker` constructor and instance used here. */
interface WebWorker {
  postMessage(message: unknown, transfer: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
  onerror: ((e: ErrorEvent) => void) | null;
  onmessageerror: ((e: MessageEvent) => void) | null;
  terminate(): void;
}
type WebWorkerConstructor = new (url: string | URL, options: { type: 'module'; name?: string }) => WebWorker;

/** The worker's global scope as seen from inside a web worker (Bun's has no `close`). */
interface WorkerScope {
  postMessage(message: unknown, transfer: Transferable[]): void;
  onmessage: ((e: MessageEvent) => void) | null;
  close?(): void;
}

/**
 * Whether this code runs inside a web worker: an instance of `WorkerGlobalScope` (Deno, browsers), or
 * Bun's `isMainThread` false (Bun has no WorkerGlobalScope). A window also has `postMessage` and
 * `close`, so those alone would not tell.
 */
function insideWebWorker(): boolean {
  const g = globalThis as { WorkerGlobalScope?: abstract new () => unknown; Bun?: { isMainThread?: boolean } };
  if (typeof g.WorkerGlobalScope === 'function') return globalThis instanceof g.WorkerGlobalScope;
  return g.Bun?.isMainThread === false;
}

function rawWebWorker(worker: WebWorker): RawWorker {
  return {
    post: (message, transfer) => worker.postMessage(message, transfer),
    listen(onMessage, onError) {
      worker.onmessage = onMessage;
      worker.onerror = (e) => {
        // Deno ends the parent process on an unhandled worker error unless it is prevented.
        e.preventDefault();
        const err = e.error instanceof Error ? e.error : new Error(e.message || 'uncaught error in worker');
        onError(err);
      };
      worker.onmessageerror = () => onError(new Error('a message from the worker could not be deserialized'));
    },
    terminate() {
      worker.terminate();
      return Promise.resolve();
    },
  };
}

/**
 * The spawner over the global `Worker` (Deno, Bun, browsers); unsupported where there is none (a
 * browser context without `Worker`).
 *
 * @example
 * ```ts
 * const worker = await webWorkers().spawn(new URL('./task.ts', import.meta.url), { id: 1 });
 * ```
 */
export function webWorkers(): WorkerSpawner {
  const Ctor = (globalThis as { Worker?: WebWorkerConstructor }).Worker;
  if (typeof Ctor !== 'function') return unsupportedWorkers('this runtime has no Worker constructor');
  return {
    supported: true,
    async spawn(moduleUrl, data, options = {}) {
      const name = workerName(moduleUrl, options.name);
      const worker = new Ctor(moduleUrl, { type: 'module', name });
      return handshake(name, rawWebWorker(worker), data, options.transfer ?? []);
    },
  };
}

/** The worker side inside a web worker: its global scope is the channel to the parent. */
export function connectWebParent(): Promise<ParentConnection> {
  if (!insideWebWorker()) return Promise.reject(new Error('connectParent(): not running inside a worker'));
  const scope = globalThis as unknown as WorkerScope;
  const raw: RawParent = {
    post: (message, transfer) => scope.postMessage(message, transfer),
    listen(onMessage) {
      scope.onmessage = onMessage;
    },
    close() {
      scope.onmessage = null;
      scope.close?.(); // Bun has none: the worker then ends when the parent terminates it
    },
  };
  return connect(raw);
}
