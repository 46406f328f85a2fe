// Owns the Node.js (>= 20) platform adapter.

import { optionalKernels, performanceNow, type FileAccess, type Platform, type PlatformOptions, type SpillStoreFactory, type WorkerSpawner } from './types.ts';

/** File spill stores over node:fs, loaded on first use. Bun shares it (bun.ts). */
export const nodeFileSpill: SpillStoreFactory = {
  kind: 'file',
  createSpillStore: async (options) => (await import('./spill-node.ts')).createNodeSpillStore(options),
};

/** Local file reads over node:fs, loaded on first use. Bun shares it (bun.ts). */
export const nodeFiles: FileAccess = {
  open: async (path) => (await import('./files-node.ts')).nodeFileAccess.open(path),
};

/** Workers over node:worker_threads, loaded on first spawn (workers-node.ts). */
export const nodeWorkers: WorkerSpawner = {
  supported: true,
  spawn: async (moduleUrl, data, options) => (await import('./workers-node.ts')).spawnNodeWorker(moduleUrl, data, options),
};

/**
 * The platform for Node.js. Async because `node:os` is imported on demand, so bundles for other
 * runtimes that include this file never load a Node built-in.
 *
 * @example
 * ```ts
 * import { createNodePlatform } from './node.ts';
 * const platform = await createNodePlatform();
 * platform.hardwareConcurrency; // os.availableParallelism()
 * const store = await platform.spill.createSpillStore(); // a temp directory under os.tmpdir()
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
    spill: nodeFileSpill,
    files: nodeFiles,
    workers: nodeWorkers,
  };
}
