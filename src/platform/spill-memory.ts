// Owns the in-memory spill store: the store of runtimes without a file system (workerd, browsers),
// and a fallback anywhere else. Web-standard only.
//
// Honest about what it is: spilled batches are copied into ordinary JS heap memory (ArrayBuffers
// outside the WASM linear memory). Spilling still does its job for managed memory — the segment
// pool is freed and stays within its budget — but the isolate's heap grows by every live spilled
// byte (`stats.bytesLive`). On workerd (128 MB per isolate) set `maxBytes` so an oversized job fails
// with a MemoryBudgetError naming the limit instead of the isolate being killed.

import { type BackendFile, type BackendReader, BackendSpillStore, type SpillBackend } from './spill-common.ts';
import type { SpillStore, SpillStoreFactory, SpillStoreOptions } from './types.ts';

let storeIds = 0;

/** One spilled file: the appended blocks (copies) and where each starts. Reads binary-search the starts. */
class MemoryFile implements BackendFile {
  readonly location: string;
  private chunks: Uint8Array[] = [];
  private starts: number[] = [];
  private size = 0;
  private writable = true;
  private removed = false;

  constructor(location: string) {
    this.location = location;
  }

  write(bytes: Uint8Array): Promise<void> {
    if (!this.writable || this.removed) return Promise.reject(new Error(`${this.location} is not open for writing`));
    this.starts.push(this.size);
    this.chunks.push(bytes.slice()); // a copy: the caller reuses its segment
    this.size += bytes.length;
    return Promise.resolve();
  }

  closeWrite(): Promise<void> {
    this.writable = false;
    return Promise.resolve();
  }

  openRead(): Promise<BackendReader> {
    if (this.removed) return Promise.reject(new Error(`${this.location} was deleted`));
    return Promise.resolve({
      read: (dst, position) => Promise.resolve(this.readAt(dst, position)),
      close: () => Promise.resolve(),
    });
  }

  private readAt(dst: Uint8Array, position: number): number {
    if (this.removed) throw new Error(`${this.location} was deleted`);
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= position) lo = mid;
      else hi = mid - 1;
    }
    let n = 0;
    for (let i = lo; i < this.chunks.length && n < dst.length; i++) {
      const chunk = this.chunks[i]!;
      const from = Math.max(0, position + n - this.starts[i]!);
      if (from >= chunk.length) continue;
      const take = Math.min(chunk.length - from, dst.length - n);
      dst.set(chunk.subarray(from, from + take), n);
      n += take;
    }
    return n;
  }

  remove(): Promise<void> {
    this.removed = true;
    this.writable = false;
    this.chunks = [];
    this.starts = [];
    return Promise.resolve();
  }

  /** @internal Test hook: the bytes as stored, to simulate corruption (the memory store cannot truncate by itself). */
  tamper(edit: (bytes: Uint8Array) => Uint8Array): void {
    const all = new Uint8Array(this.size);
    this.readAt(all, 0);
    const edited = edit(all);
    this.chunks = [edited];
    this.starts = [0];
    this.size = edited.length;
  }
}

class MemoryBackend implements SpillBackend {
  readonly kind = 'memory' as const;
  readonly location: string;
  readonly bufferWrites = false;
  /** @internal */ readonly files = new Map<string, MemoryFile>();

  constructor() {
    this.location = `memory:${++storeIds}`;
  }

  createFile(fileName: string): Promise<BackendFile> {
    const file = new MemoryFile(`${this.location}/${fileName}`);
    this.files.set(file.location, file);
    const remove = file.remove.bind(file);
    file.remove = () => {
      this.files.delete(file.location);
      return remove();
    };
    return Promise.resolve(file);
  }

  async removeAll(): Promise<void> {
    for (const f of [...this.files.values()]) await f.remove();
    this.files.clear();
  }
}

/**
 * A spill store on the JS heap (see the file comment for what that costs).
 *
 * @example
 * ```ts
 * import { createMemorySpillStore } from './spill-memory.ts';
 * await using store = await createMemorySpillStore({ maxBytes: 64 << 20 });
 * const w = await store.create('run');
 * await w.append(batch);
 * for await (const b of (await w.finish()).read()) use(b);
 * ```
 */
export async function createMemorySpillStore(options?: SpillStoreOptions): Promise<SpillStore> {
  options?.signal?.throwIfAborted();
  return new BackendSpillStore(new MemoryBackend(), options);
}

/** `Platform.spill` of workerd and browsers. */
export const memorySpill: SpillStoreFactory = { kind: 'memory', createSpillStore: createMemorySpillStore };

/** @internal Test hook: rewrite the stored bytes of a memory spill file (by its `location`). */
export function tamperMemorySpillFile(store: SpillStore, location: string, edit: (bytes: Uint8Array) => Uint8Array): void {
  const backend = (store as BackendSpillStore).backend;
  const file = backend instanceof MemoryBackend ? backend.files.get(location) : undefined;
  if (!file) throw new Error(`no memory spill file ${location}`);
  file.tamper(edit);
}
