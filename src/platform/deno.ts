// Owns the Deno (2.x) platform adapter.

import { webWorkers } from './workers-web.ts';
import { optionalKernels, performanceNow, type FileAccess, type Platform, type PlatformOptions, type SpillStoreFactory } from './types.ts';

/** File spill stores over the Deno file API, loaded on first use (needs read/write permission). */
export const denoFileSpill: SpillStoreFactory = {
  kind: 'file',
  createSpillStore: async (options) => (await import('./spill-deno.ts')).createDenoSpillStore(options),
};

/** Local file reads over the Deno file API, loaded on first use (needs --allow-read). */
export const denoFiles: FileAccess = {
  open: async (path) => (await import('./files-deno.ts')).denoFileAccess.open(path),
};

/**
 * The platform for Deno. Needs no permissions to start: the kernels are embedded bytes, not a file
 * read. Spilling needs --allow-read and --allow-write for the temp directory.
 *
 * @example
 * ```ts
 * import { createDenoPlatform } from './deno.ts';
 * const platform = createDenoPlatform();
 * platform.name; // 'deno'
 * ```
 */
export function createDenoPlatform(options?: PlatformOptions): Platform {
  return {
    name: 'deno',
    hardwareConcurrency: Math.max(1, navigator.hardwareConcurrency || 1),
    now: performanceNow,
    wallClock: Date.now,
    loadKernelModule: optionalKernels(options),
    spill: denoFileSpill,
    files: denoFiles,
    workers: webWorkers(), // Web Workers (module workers run TypeScript natively)
  };
}
