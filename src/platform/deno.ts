// Owns the Deno (2.x) platform adapter.

import { optionalKernels, performanceNow, type Platform, type PlatformOptions } from './types.ts';

/**
 * The platform for Deno. Needs no permissions: the kernels are embedded bytes, not a file read.
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
    spill: undefined,
  };
}
