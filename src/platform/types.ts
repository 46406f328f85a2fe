// Owns the runtime-neutral platform interface: what the engine needs from its host and gets only
// through an adapter (node.ts, deno.ts, bun.ts, workerd.ts, browser.ts; detect.ts picks one).
// Nothing outside src/platform/ names a runtime (scripts/lint-portability.ts enforces it).

/** The runtimes Sluice runs on unchanged. */
export type RuntimeName = 'node' | 'deno' | 'bun' | 'workerd' | 'browser';

/**
 * A place for runs that do not fit the managed-memory budget (sort, join, aggregation spill).
 * Placeholder: the interface is fixed now so operators can be written against it; no adapter
 * implements it yet (`Platform.spill` is `undefined`), and an operator that must spill without a
 * store raises a memory-budget error instead.
 */
export interface SpillStore {
  /** Create an empty spill file; `name` is a hint for diagnostics only. */
  create(name: string): Promise<SpillFile>;
}

/** An append-then-read sequence of byte blocks, deleted by `dispose()`. */
export interface SpillFile {
  /** Append one block (the bytes are copied or written before the promise resolves). */
  append(block: Uint8Array): Promise<void>;
  /** Read the blocks back in append order. */
  read(): AsyncIterable<Uint8Array>;
  /** Delete the file; further calls fail. */
  dispose(): Promise<void>;
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
  /** Spill store, or `undefined` where none exists yet (see {@link SpillStore}). */
  readonly spill: SpillStore | undefined;
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
