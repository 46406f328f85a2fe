// Owns the browser (window or web worker) platform adapter.

import { memorySpill } from './spill-memory.ts';
import { webWorkers } from './workers-web.ts';
import { optionalKernels, performanceNow, type Platform, type PlatformOptions } from './types.ts';

/**
 * The platform for browsers. Also the fallback for an unrecognised runtime with web-standard
 * globals: it assumes nothing beyond `performance`, `navigator` (optional) and `WebAssembly`.
 *
 * @example
 * ```ts
 * import { createBrowserPlatform } from './browser.ts';
 * const platform = createBrowserPlatform();
 * platform.hardwareConcurrency; // navigator.hardwareConcurrency, or 1 if unknown
 * ```
 */
export function createBrowserPlatform(options?: PlatformOptions): Platform {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return {
    name: 'browser',
    hardwareConcurrency: Math.max(1, nav?.hardwareConcurrency || 1),
    now: performanceNow,
    wallClock: Date.now,
    loadKernelModule: optionalKernels(options),
    spill: memorySpill, // spilled runs live on the JS heap (see spill-memory.ts)
    workers: webWorkers(), // module workers; unsupported where there is no Worker
  };
}
