// Owns the Node.js (>= 20) platform adapter.

import { optionalKernels, performanceNow, type Platform, type PlatformOptions } from './types.ts';

/**
 * The platform for Node.js. Async because `node:os` is imported on demand, so bundles for other
 * runtimes that include this file never load a Node built-in.
 *
 * @example
 * ```ts
 * import { createNodePlatform } from './node.ts';
 * const platform = await createNodePlatform();
 * platform.hardwareConcurrency; // os.availableParallelism()
 * ```
 */
export async function createNodePlatform(options?: PlatformOptions): Promise<Platform> {
  const os = await import('node:os');
  // Node 20 has no `navigator`; availableParallelism() respects CPU affinity, cpus() does not.
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return {
    name: 'node',
    hardwareConcurrency: Math.max(1, cores),
    now: performanceNow,
    wallClock: Date.now,
    loadKernelModule: optionalKernels(options),
    spill: undefined,
  };
}
