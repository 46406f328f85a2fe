// Owns the Bun (1.x) platform adapter.

import { nodeFileSpill, nodeFiles } from './node.ts';
import { webWorkers } from './workers-web.ts';
import { optionalKernels, performanceNow, type Platform, type PlatformOptions } from './types.ts';

/**
 * The platform for Bun. Spill stores are the Node file store (spill-node.ts).
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
    spill: nodeFileSpill, // Bun's node:fs is native: the Node file store as is
    files: nodeFiles,
    workers: webWorkers(), // Bun's Web Workers (module workers run TypeScript natively)
  };
}
