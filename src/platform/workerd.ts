// Owns the Cloudflare workerd platform adapter.

import { memorySpill } from './spill-memory.ts';
import { unsupportedWorkers } from './worker-common.ts';
import type { Platform } from './types.ts';

/** Why workerd runs single-threaded (the reason its `workers.spawn` rejects with). */
export const WORKERD_NO_WORKERS = 'workerd runs each request in one isolate and has no worker threads';

/** Options for {@link createWorkerdPlatform}: the kernels module is required here. */
export interface WorkerdPlatformOptions {
  /** The compiled kernels, imported as a module listed in the worker's config (`import mod from './kernels.wasm'`). */
  kernels: WebAssembly.Module;
}

/**
 * The platform for workerd / Cloudflare Workers. workerd forbids compiling WebAssembly bytes at run
 * time (and `eval` / `new Function`), so the kernels must come in as a precompiled module. There are
 * no threads (`workers.supported` is false) and no file system (spill
 * stores are in memory, on the JS heap); `performance.now()` advances only across I/O.
 *
 * @example
 * ```ts
 * import kernels from './kernels.wasm'; // listed as a wasm module in config.capnp
 * import { createWorkerdPlatform } from './workerd.ts';
 * export default {
 *   async fetch() {
 *     const platform = createWorkerdPlatform({ kernels });
 *     return new Response(platform.name);
 *   },
 * };
 * ```
 */
export function createWorkerdPlatform(options: WorkerdPlatformOptions): Platform {
  if (!(options?.kernels instanceof WebAssembly.Module)) {
    throw new TypeError('workerd cannot compile WebAssembly at run time: pass { kernels } imported from a .wasm module');
  }
  const kernels = options.kernels;
  return {
    name: 'workerd',
    hardwareConcurrency: 1,
    now: () => performance.now(),
    wallClock: Date.now,
    loadKernelModule: () => Promise.resolve(kernels),
    spill: memorySpill, // no file system: spilled runs live on the JS heap (see spill-memory.ts)
    workers: unsupportedWorkers(WORKERD_NO_WORKERS), // the executor runs single-threaded
  };
}
