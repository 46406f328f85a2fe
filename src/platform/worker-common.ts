// Owns what every worker adapter shares (runtime-neutral): the spawn handshake, the parent-side
// handle over a runtime's raw worker, the worker-side connection, and the spawner of runtimes that
// have no workers.
//
// The handshake (the same on every runtime; Web Workers have no `workerData`, and a module worker may
// not be listening yet when the parent's first message would arrive):
//   worker → parent   { [TAG]: 'ready' }            sent by connectParent() once it listens
//   parent → worker   { [TAG]: 'init', data }       with the spawn's transfer list
// After it, every message is the caller's.

import { SluiceError } from '../core/errors.ts';
import type { ParentConnection, WorkerHandle, WorkerSpawner } from './types.ts';

/** The handshake's property name (a string: messages are structured clones). */
export const HANDSHAKE = '__sluiceWorker__';

/** A runtime's worker reduced to what the handle needs (Node's `Worker`, a Web `Worker`). */
export interface RawWorker {
  post(message: unknown, transfer: Transferable[]): void;
  /** Sets the receivers of messages and failures (an uncaught error, an unexpected exit). */
  listen(onMessage: (event: MessageEvent) => void, onError: (error: Error) => void): void;
  terminate(): Promise<void>;
}

/** Workers are not available on this runtime (workerd). */
export class WorkersUnsupportedError extends SluiceError {
  constructor(reason: string) {
    super(`cannot start a worker: ${reason}`, { domain: 'user' });
  }
}

/** A worker failed before it connected, or its module could not be loaded. */
export class WorkerStartError extends SluiceError {
  constructor(name: string, cause: unknown) {
    super(`worker ${name} failed to start: ${cause instanceof Error ? cause.message : String(cause)}`, { domain: 'user', cause });
  }
}

/**
 * Delivers messages to `onmessage`, keeping those that arrive while it is null (a worker may answer
 * before the caller has set its handler).
 */
class Inbox {
  private held: MessageEvent[] = [];
  private handler: ((event: MessageEvent) => void) | null = null;

  get onmessage(): ((event: MessageEvent) => void) | null {
    return this.handler;
  }

  set onmessage(h: ((event: MessageEvent) => void) | null) {
    this.handler = h;
    while (this.handler !== null && this.held.length > 0) this.handler(this.held.shift()!);
  }

  deliver(e: MessageEvent): void {
    if (this.handler) this.handler(e);
    else this.held.push(e);
  }
}

class SpawnedWorker implements WorkerHandle {
  private readonly inbox = new Inbox();
  onerror: ((error: Error) => void) | null = null;
  private terminated = false;

  constructor(readonly name: string, private readonly raw: RawWorker) {}

  get onmessage(): ((event: MessageEvent) => void) | null {
    return this.inbox.onmessage;
  }

  set onmessage(h: ((event: MessageEvent) => void) | null) {
    this.inbox.onmessage = h;
  }

  postMessage(message: unknown, transfer: Transferable[] = []): void {
    this.raw.post(message, transfer);
  }

  terminate(): Promise<void> {
    if (this.terminated) return Promise.resolve();
    this.terminated = true;
    return this.raw.terminate();
  }

  /** @internal */
  message(e: MessageEvent): void {
    this.inbox.deliver(e);
  }

  /** @internal */
  failure(error: Error): void {
    if (this.terminated) return;
    if (this.onerror) this.onerror(error);
    else console.error(`[sluice] worker ${this.name}: ${error.stack ?? error.message}`);
  }
}

/** A short name for a module URL: its file name. */
export function workerName(moduleUrl: string | URL, name?: string): string {
  if (name) return name;
  const href = typeof moduleUrl === 'string' ? moduleUrl : moduleUrl.href;
  return href.slice(href.lastIndexOf('/') + 1) || href;
}

/**
 * Runs the handshake over a started raw worker: waits for `ready`, sends `init` with `data`, and
 * resolves to the handle. A failure before `ready` terminates the worker and rejects.
 */
export function handshake(name: string, raw: RawWorker, data: unknown, transfer: Transferable[]): Promise<WorkerHandle> {
  const handle = new SpawnedWorker(name, raw);
  return new Promise<WorkerHandle>((resolve, reject) => {
    let connected = false;
    raw.listen(
      (e) => {
        if (connected) return handle.message(e);
        const d = e.data as Record<string, unknown> | null;
        if (d && typeof d === 'object' && d[HANDSHAKE] === 'ready') {
          connected = true;
          raw.post({ [HANDSHAKE]: 'init', data }, transfer);
          resolve(handle);
        }
      },
      (error) => {
        if (connected) return handle.failure(error);
        connected = true; // nothing after this is for the caller
        void raw.terminate();
        reject(new WorkerStartError(name, error));
      },
    );
  });
}

/** What a worker needs of its side of the channel to the parent (Node's `parentPort`, a worker's global scope). */
export interface RawParent {
  post(message: unknown, transfer: Transferable[]): void;
  listen(onMessage: (event: MessageEvent) => void): void;
  close(): void;
}

class Parent implements ParentConnection {
  private readonly inbox = new Inbox();

  constructor(readonly data: unknown, private readonly raw: RawParent) {}

  get onmessage(): ((event: MessageEvent) => void) | null {
    return this.inbox.onmessage;
  }

  set onmessage(h: ((event: MessageEvent) => void) | null) {
    this.inbox.onmessage = h;
  }

  postMessage(message: unknown, transfer: Transferable[] = []): void {
    this.raw.post(message, transfer);
  }

  close(): void {
    this.raw.close();
  }

  /** @internal */
  message(e: MessageEvent): void {
    this.inbox.deliver(e);
  }
}

/** The worker side of the handshake: listen, say `ready`, wait for `init`. */
export function connect(raw: RawParent): Promise<ParentConnection> {
  return new Promise((resolve) => {
    let parent: Parent | null = null;
    raw.listen((e) => {
      if (parent) return parent.message(e);
      const d = e.data as Record<string, unknown> | null;
      if (d && typeof d === 'object' && d[HANDSHAKE] === 'init') {
        parent = new Parent(d.data, raw);
        resolve(parent);
      }
    });
    raw.post({ [HANDSHAKE]: 'ready' }, []);
  });
}

/**
 * The spawner of a runtime without workers: `supported` is false and `spawn` rejects with a
 * `WorkersUnsupportedError` carrying `reason`.
 *
 * @example
 * ```ts
 * const workers = unsupportedWorkers('workerd has no worker threads');
 * if (!workers.supported) runSingleThreaded();
 * ```
 */
export function unsupportedWorkers(reason: string): WorkerSpawner {
  return {
    supported: false,
    reason,
    spawn: () => Promise.reject(new WorkersUnsupportedError(reason)),
  };
}
