// Owns the public surface of src/platform/: the interface, the adapters and detection.

export type {
  FileAccess,
  Platform,
  ReadableFile,
  PlatformOptions,
  RuntimeName,
  SpillFile,
  SpillReader,
  SpillStats,
  SpillStore,
  SpillStoreFactory,
  SpillStoreKind,
  SpillStoreOptions,
  SpillWriter,
  MessageEndpoint,
  ParentConnection,
  WorkerHandle,
  WorkerSpawner,
  WorkerSpawnOptions,
} from './types.ts';
export { connectParent, spawnWorker, workersForRuntime } from './workers.ts';
export { unsupportedWorkers, WorkersUnsupportedError, WorkerStartError } from './worker-common.ts';
export { SpillStoreClosedError, withSpillStore } from './spill-common.ts';
export { createMemorySpillStore, memorySpill } from './spill-memory.ts';
export { createNodePlatform } from './node.ts';
export { createDenoPlatform } from './deno.ts';
export { createBunPlatform } from './bun.ts';
export { createWorkerdPlatform, type WorkerdPlatformOptions } from './workerd.ts';
export { createBrowserPlatform } from './browser.ts';
export { detectPlatform, detectRuntime } from './detect.ts';
