// Owns the runtime-neutral platform interface: what the engine needs from its host and gets only
// through an adapter (node.ts, deno.ts, bun.ts, workerd.ts, browser.ts; detect.ts picks one).
// Nothing outside src/platform/ names a runtime (scripts/lint-portability.ts enforces it).

/** The runtimes Sluice runs on unchanged. */
export type RuntimeName = 'node' | 'deno' | 'bun' | 'workerd' | 'browser';

/**
 * Where a spill store lives: `file` (a private temp directory on a local file system: Node, Deno, Bun)
 * or `memory` (the JS heap: workerd, browsers — spilling there frees managed memory but not the
 * isolate's heap, so a job that spills a lot needs a heap large enough for its spill, see `maxBytes`).
 */
export type SpillStoreKind = 'file' | 'memory';

/** Options for {@link SpillStoreFactory.createSpillStore}. */
export interface SpillStoreOptions {
  /**
   * File stores: the directory under which the store makes its own unique temp directory
   * (created if missing). Default: the runtime's temp directory (`os.tmpdir()`, `Deno.makeTempDir`).
   * Ignored by the memory store.
   */
  dir?: string;
  /**
   * The most live bytes the store may hold (files not yet deleted); an append beyond it throws a
   * `MemoryBudgetError` naming this limit. Default: unlimited (the disk, or the JS heap, is the limit).
   */
  maxBytes?: number;
  /**
   * Cancellation: when the signal aborts the store is closed (everything it created is removed), and
   * any operation still running or started later fails with `SpillStoreClosedError`.
   */
  signal?: AbortSignal;
  /** Buffer size for writes and reads of file stores, in bytes (default 256 KiB). */
  bufferBytes?: number;
}

/**
 * Byte accounting of a spill store. `bytes*` count batch bytes (the file format adds nothing).
 */
export interface SpillStats {
  /** Batch bytes appended over the store's life, deleted files included. */
  readonly bytesWritten: number;
  /** Batches appended over the store's life. */
  readonly batchesWritten: number;
  /** Batch bytes returned by readers over the store's life. */
  readonly bytesRead: number;
  /** Bytes held now: files being written or finished and not yet deleted (the disk or heap in use). */
  readonly bytesLive: number;
  /** Files held now (being written, or finished and not deleted). */
  readonly filesLive: number;
  /** Files created over the store's life. */
  readonly filesCreated: number;
}

/**
 * A place for runs of batches that do not fit the managed-memory budget (sort, join and aggregation
 * spill). One store per job (or per operator): it owns a private temp directory (file stores) or a
 * set of heap buffers (memory store), and `close()` removes everything it created.
 *
 * Lifecycle — close on success, failure and cancellation alike. Either `try/finally`:
 * ```ts
 * const store = await platform.spill.createSpillStore({ signal });
 * try {
 *   const w = await store.create('sort-run-0');
 *   for (const batch of batches) await w.append(batch);
 *   const run = await w.finish();
 *   for await (const batch of run.read()) consume(batch);
 *   await run.delete();
 * } finally {
 *   await store.close(); // idempotent; removes the temp directory
 * }
 * ```
 * or `await using store = await platform.spill.createSpillStore();` (the store is `AsyncDisposable`),
 * or `withSpillStore(platform.spill, async (store) => …)` from `spill-common.ts`. Aborting
 * `options.signal` closes the store too. As a last resort the file stores also remove their
 * directories when the process exits normally (Node/Bun `process.on('exit')`, Deno `unload`); a
 * killed process can leave a `sluice-spill-*` directory behind in the temp directory.
 *
 * Cost: one file (or heap chunk list) per run; appends and reads are buffered (`bufferBytes`), so a
 * batch costs a copy plus amortised I/O, not a system call each.
 */
export interface SpillStore {
  /** `file` or `memory` (see {@link SpillStoreKind}). */
  readonly kind: SpillStoreKind;
  /** The store's directory (file stores) or `memory:<id>`, for diagnostics. */
  readonly location: string;
  /** Live accounting (a snapshot object; read it again for fresh numbers). */
  readonly stats: SpillStats;
  /** Whether `close()` was called (or the signal aborted). */
  readonly closed: boolean;
  /**
   * Create an empty spill file and return its writer. `name` is a hint for diagnostics and the file
   * name; it need not be unique. Files of one store may be written and read interleaved.
   */
  create(name: string): Promise<SpillWriter>;
  /**
   * Close every writer and reader, delete every file and the store's directory. Idempotent: every
   * call returns the same promise. Further `create()` / `append()` / `next()` fail with
   * `SpillStoreClosedError`.
   */
  close(): Promise<void>;
  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Appends batches to one spill file. Appends are queued in call order; awaiting each is not required. */
export interface SpillWriter {
  /** The name given to `create()`. */
  readonly name: string;
  /** Where the file lives (a path, or `memory:<id>/<file>`), for diagnostics. */
  readonly location: string;
  /** Batch bytes appended so far. */
  readonly byteLength: number;
  /** Batches appended so far. */
  readonly batchCount: number;
  /**
   * Append one binary-row batch (see abi/abi.ts: magic, u32 byteLength at offset 4). Only the
   * batch's own `byteLength` bytes are written, so a whole managed-memory segment holding one batch
   * may be passed. A block that is not a well-formed batch header throws `CorruptBatchError`. The
   * bytes are copied or written before the promise resolves: do not change them until then.
   */
  append(batch: Uint8Array): Promise<void>;
  /**
   * Append several batches, in order, as one queued operation — for a run that is all in memory
   * already. File stores on Node and Bun hand them to the runtime as one vectored write, which
   * proceeds on the runtime's I/O threads while this thread keeps computing (a chain of single
   * appends advances only when the event loop turns). Checks and accounting are those of
   * {@link append}, all done before the promise is returned; the bytes are written (or copied)
   * before it resolves: do not change them until then.
   *
   * @example
   * await writer.appendAll(sortedRun); // Uint8Array[] of batches
   */
  appendAll(batches: readonly Uint8Array[]): Promise<void>;
  /** Flush and close for writing; the returned file can be read any number of times. */
  finish(): Promise<SpillFile>;
  /** Give up on the file: close and delete it. Idempotent. */
  abort(): Promise<void>;
}

/** A finished spill file: an immutable run of batches, readable until deleted. */
export interface SpillFile {
  readonly name: string;
  readonly location: string;
  /** Batch bytes in the file. */
  readonly byteLength: number;
  /** Batches in the file. */
  readonly batchCount: number;
  /**
   * A sequential reader over the batches in append order. Each returned batch is a fresh
   * `Uint8Array` the caller owns (offset 0 of its own buffer). Several readers may be open at once.
   * A truncated or corrupt file throws `CorruptBatchError` naming the file and the byte offset; it
   * never yields bytes that are not a whole, well-framed batch.
   */
  read(): SpillReader;
  /** Delete the file (closing its open readers). Idempotent. */
  delete(): Promise<void>;
}

/** Reads one spill file batch by batch; also an async iterable (`for await`), which closes it at the end. */
export interface SpillReader extends AsyncIterable<Uint8Array> {
  /** The next batch, or `undefined` after the last (the reader then closes itself). */
  next(): Promise<Uint8Array | undefined>;
  /**
   * As {@link next}, but the batch is a view of the reader's buffer, valid until the next call to
   * `next()`, `nextView()` or `close()` (a batch larger than the buffer comes as a fresh array). For a
   * caller that copies each batch elsewhere at once: it saves allocating and filling one more copy.
   *
   * @example
   * for (let b = await r.nextView(); b !== undefined; b = await r.nextView()) managed.set(b, ptr);
   */
  nextView(): Promise<Uint8Array | undefined>;
  /** Release the reader's handle and buffer. Idempotent. */
  close(): Promise<void>;
}

/** What each adapter offers as `Platform.spill`: the kind of store it makes, and the factory. */
export interface SpillStoreFactory {
  readonly kind: SpillStoreKind;
  /** A new, empty store with its own temp directory (or heap space). Close it when done. */
  createSpillStore(options?: SpillStoreOptions): Promise<SpillStore>;
}

/**
 * One file opened for reading at arbitrary byte positions (file sources: CSV, NDJSON). Reads at
 * different positions may be in flight at once; an adapter whose runtime has no positional read
 * serialises them internally.
 */
export interface ReadableFile {
  /** The path it was opened with, for error messages. */
  readonly path: string;
  /** Size in bytes when opened. */
  readonly size: number;
  /**
   * Reads up to `into.length` bytes at byte `position` into `into`; resolves to the number read
   * (0 at or past the end of the file).
   */
  read(into: Uint8Array, position: number): Promise<number>;
  /** Releases the handle. Idempotent. */
  close(): Promise<void>;
}

/**
 * Read access to the local file system (Node, Deno, Bun). workerd and browsers have none: their
 * `Platform.files` is `undefined`, and file sources there take a `ReadableStream`, an async iterable
 * of byte chunks, or bytes instead of a path.
 */
export interface FileAccess {
  /**
   * Opens `path` for reading. A missing or unreadable file rejects with a `SluiceError` (domain
   * `external`) naming the path and the runtime's reason.
   */
  open(path: string): Promise<ReadableFile>;
}

/**
 * A message endpoint: what a `MessagePort`, a {@link WorkerHandle} and a worker's
 * {@link ParentConnection} have in common. Events carry the message as `data`.
 */
export interface MessageEndpoint {
  /** Posts `message` (structured clone); objects in `transfer` move instead (the sender's copy is detached). */
  postMessage(message: unknown, transfer?: Transferable[]): void;
  /** Receives messages. Messages that arrive while it is null are kept and delivered once it is set. */
  onmessage: ((event: MessageEvent) => void) | null;
}

/** Options of {@link WorkerSpawner.spawn}. */
export interface WorkerSpawnOptions {
  /** A name for debuggers and error messages. */
  name?: string;
  /** Objects inside `data` to transfer rather than copy: MessagePorts (channels to the worker), ArrayBuffers. */
  transfer?: Transferable[];
}

/** The parent's handle on a started worker. */
export interface WorkerHandle extends MessageEndpoint {
  /** A name for messages (the spawn option, or the module's file name). */
  readonly name: string;
  /**
   * An uncaught error inside the worker, or the worker ending by itself with a failure. Unset, such
   * errors are reported with `console.error` (never thrown into the parent).
   */
  onerror: ((error: Error) => void) | null;
  /** Stops the worker at once (messages not yet handled are dropped). Idempotent. */
  terminate(): Promise<void>;
}

/**
 * Starts workers (threads with their own event loop and memory, talking by messages): Node
 * `worker_threads`, Web Workers on Deno, Bun and in browsers. workerd has none: `supported` is false
 * there and the engine runs single-threaded.
 *
 * The worker's module must call `connectParent()` (src/platform/workers.ts) at its top level; that
 * handshake is how `spawn` knows the worker is listening, and how `data` gets there on every runtime.
 *
 * @example
 * ```ts
 * // parent
 * const { port1, port2 } = new MessageChannel();
 * const worker = await platform.workers.spawn(new URL('./task-worker.ts', import.meta.url), { input: port2 }, { transfer: [port2] });
 * worker.onmessage = (e) => console.log('worker says', e.data);
 * // task-worker.ts
 * const { data, port } = await connectParent();
 * port.postMessage('hello');
 * ```
 */
export interface WorkerSpawner {
  /** Whether this runtime can start workers. */
  readonly supported: boolean;
  /** Why not, when `supported` is false. */
  readonly reason?: string;
  /**
   * Starts the ES module at `moduleUrl` (an absolute `file:`/`http(s):` URL, e.g. `new URL('./w.ts',
   * import.meta.url)`) in a worker and hands it `data` (structured clone; `options.transfer` moves
   * ports and buffers). Resolves once the worker is connected; rejects if it fails before that, and
   * with a `SluiceError` where workers are unsupported. On Node a `.ts` module runs through tsx's
   * loader when Node itself cannot strip types (workers do not inherit `--import tsx`).
   */
  spawn(moduleUrl: string | URL, data?: unknown, options?: WorkerSpawnOptions): Promise<WorkerHandle>;
}

/** What a worker gets from {@link WorkerSpawner.spawn}: the data and its channel to the parent. */
export interface ParentConnection extends MessageEndpoint {
  /** The `data` given to `spawn`. */
  readonly data: unknown;
  /** Stops listening to the parent; the worker ends when it has nothing else to do (web: it ends now). */
  close(): void;
}

/**
 * What differs per runtime, passed in rather than detected inside the engine.
 *
 * @example
 * ```ts
 * import { detectPlatform } from './detect.ts';
 * const platform = await detectPlatform();
 * const t0 = platform.now();
 * // ... work ...
 * console.log(platform.name, platform.hardwareConcurrency, platform.now() - t0, 'ms');
 * ```
 */
export interface Platform {
  /** Which adapter this is. */
  readonly name: RuntimeName;
  /**
   * Logical cores available to this process (at least 1): an upper bound for worker-thread
   * parallelism. 1 on workerd, which runs one isolate per request without threads.
   */
  readonly hardwareConcurrency: number;
  /**
   * Monotonic milliseconds (fractional) for measuring durations; not wall-clock time.
   * On workerd it advances only across I/O (Spectre mitigation), so CPU-bound spans read as 0.
   */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch, for processing time. */
  wallClock(): number;
  /**
   * The precompiled kernels module if the host has one, else `undefined`, meaning the bindings
   * compile the bytes embedded at build time. workerd must supply one: it refuses to compile
   * WebAssembly bytes at run time, so a `.wasm` module imported through its config is handed in.
   */
  loadKernelModule(): Promise<WebAssembly.Module | undefined>;
  /**
   * Makes spill stores: a private temp directory on Node, Deno and Bun; the JS heap on workerd and
   * in browsers (see {@link SpillStore}).
   */
  readonly spill: SpillStoreFactory;
  /**
   * Read access to local files (file sources), or `undefined` where the runtime has no file system
   * (workerd, browsers).
   */
  readonly files?: FileAccess;
  /** Starting worker threads; `supported: false` on workerd (see {@link WorkerSpawner}). */
  readonly workers: WorkerSpawner;
}

/** Options shared by every adapter factory. */
export interface PlatformOptions {
  /** A precompiled kernels module to hand to the bindings instead of compiling embedded bytes. */
  kernels?: WebAssembly.Module;
}

/** Monotonic clock from the web-standard `performance`, which every supported runtime has. */
export function performanceNow(): number {
  return performance.now();
}

/** Build the `loadKernelModule` hook for adapters where a precompiled module is optional. */
export function optionalKernels(options: PlatformOptions | undefined): () => Promise<WebAssembly.Module | undefined> {
  const mod = options?.kernels;
  return () => Promise.resolve(mod);
}
