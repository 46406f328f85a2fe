// Owns the runtime-neutral entry points for workers: `spawnWorker` (parent side) and `connectParent`
// (worker side), dispatching to the adapter of the runtime running this code. The engine uses
// `platform.workers` (types.ts); these are for worker entry modules and for tests.

import { detectRuntime } from './detect.ts';
import { nodeWorkers } from './node.ts';
import { unsupportedWorkers } from './worker-common.ts';
import { WORKERD_NO_WORKERS } from './workerd.ts';
import type { ParentConnection, WorkerHandle, WorkerSpawner, WorkerSpawnOptions } from './types.ts';
import { connectWebParent, webWorkers } from './workers-web.ts';

/**
 * The spawner of the runtime running this code (what `platform.workers` is).
 *
 * @example
 * ```ts
 * if (!workersForRuntime().supported) console.log('single-threaded here');
 * ```
 */
export function workersForRuntime(): WorkerSpawner {
  switch (detectRuntime()) {
    case 'node': return nodeWorkers;
    case 'workerd': return unsupportedWorkers(WORKERD_NO_WORKERS);
    default: return webWorkers();
  }
}

/**
 * Starts `moduleUrl` in a worker of this runtime and hands it `data`; the module must call
 * {@link connectParent}. Rejects with `WorkersUnsupportedError` on workerd.
 *
 * @example
 * ```ts
 * const { port1, port2 } = new MessageChannel();
 * const worker = await spawnWorker(new URL('./relay.ts', import.meta.url), { port: port2 }, { transfer: [port2] });
 * worker.onerror = (e) => fail(e);
 * // ... later
 * await worker.terminate();
 * ```
 */
export function spawnWorker(moduleUrl: string | URL, data?: unknown, options?: WorkerSpawnOptions): Promise<WorkerHandle> {
  return workersForRuntime().spawn(moduleUrl, data, options);
}

/**
 * Inside a worker started by {@link spawnWorker} (or `platform.workers.spawn`): connects to the
 * parent and resolves to the spawn's `data` and the channel to the parent. Call it at the top level
 * of the worker's module.
 *
 * @example
 * ```ts
 * const parent = await connectParent();
 * const { port } = parent.data as { port: MessagePort };
 * parent.onmessage = (e) => console.log('parent says', e.data);
 * parent.postMessage({ ready: true });
 * ```
 */
export async function connectParent(): Promise<ParentConnection> {
  if (detectRuntime() === 'node') return (await import('./workers-node.ts')).connectNodeParent();
  return connectWebParent();
}
