// Owns the Bun (1.x) platform adapter.

import { optionalKernels, performanceNow, type Platform, type PlatformOptions } from './types.ts';

/**
 * The platform for Bun.
 *
 * @example
 * ```ts
 * import { createBunPlatform } from './bun.ts';
 * const platform = createBunPlatform();
 * platform.name; // 'bun'
 * ```
 */
export function createBunPlatform(options?: PlatformOptions): Platform {
  return {
    name: 'bun',
    hardwareConcurrency: Math.max(1, navigator.hardwareConcurrency || 1),
    now: performanceNow,
    wallClock: Date.now,
    loadKernelModule: optionalKernels(options),
    spill: undefined,
  };
}
