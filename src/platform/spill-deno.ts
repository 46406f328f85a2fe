// Owns the file spill store of Deno, on the `Deno.*` file API (needs --allow-read and --allow-write
// for the temp directory). Loaded only through a dynamic import from deno.ts.
//
// Each store makes its own directory with `Deno.makeTempDir({ prefix: 'sluice-spill-' })` (under
// `options.dir` if given), one file per spill run. `close()` removes it; so does a normal exit for
// stores never closed (a synchronous `Deno.removeSync` in an `unload` listener).

import { type BackendFile, type BackendReader, BackendSpillStore, type SpillBackend } from './spill-common.ts';
import type { SpillStore, SpillStoreFactory, SpillStoreOptions } from './types.ts';

/** The part of the `Deno` namespace used here (the project type-checks without Deno's own types). */
interface DenoFsFile {
  write(p: Uint8Array): Promise<number>;
  read(p: Uint8Array): Promise<number | null>;
  seek(offset: number, whence: number): Promise<number>;
  close(): void;
}
interface DenoFs {
  makeTempDir(options?: { dir?: string; prefix?: string }): Promise<string>;
  mkdir(path: string, options?: { recursive?: boolean }): Promise<void>;
  open(path: string, options: { read?: boolean; write?: boolean; createNew?: boolean }): Promise<DenoFsFile>;
  remove(path: string, options?: { recursive?: boolean }): Promise<void>;
  removeSync(path: string, options?: { recursive?: boolean }): void;
  SeekMode: { Start: number };
}

const D = (globalThis as unknown as { Deno: DenoFs }).Deno;

const liveDirs = new Set<string>();
let exitHooked = false;

function track(dir: string): void {
  if (!exitHooked) {
    exitHooked = true;
    globalThis.addEventListener('unload', () => {
      for (const d of liveDirs) {
        try {
          D.removeSync(d, { recursive: true });
        } catch {
          // Exiting anyway.
        }
      }
    });
  }
  liveDirs.add(dir);
}

async function removeIfThere(path: string, recursive: boolean): Promise<void> {
  try {
    await D.remove(path, { recursive });
  } catch (e) {
    if ((e as Error)?.name !== 'NotFound') throw e;
  }
}

function closeQuietly(f: DenoFsFile): void {
  try {
    f.close();
  } catch {
    // Already closed (BadResource).
  }
}

class DenoFile implements BackendFile {
  readonly location: string;
  private fh: DenoFsFile | undefined;

  constructor(path: string, fh: DenoFsFile) {
    this.location = path;
    this.fh = fh;
  }

  async write(bytes: Uint8Array): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error(`${this.location} is not open for writing`);
    let off = 0;
    while (off < bytes.length) {
      const n = await fh.write(bytes.subarray(off));
      if (n <= 0) throw new Error('write made no progress');
      off += n;
    }
  }

  closeWrite(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh) closeQuietly(fh);
    return Promise.resolve();
  }

  async openRead(): Promise<BackendReader> {
    const fh = await D.open(this.location, { read: true });
    let at = 0; // the handle's position, so sequential reads need no seek
    return {
      read: async (dst, position) => {
        if (position !== at) {
          await fh.seek(position, D.SeekMode.Start);
          at = position;
        }
        const n = (await fh.read(dst)) ?? 0;
        at += n;
        return n;
      },
      close: () => {
        closeQuietly(fh);
        return Promise.resolve();
      },
    };
  }

  async remove(): Promise<void> {
    await this.closeWrite();
    await removeIfThere(this.location, false);
  }
}

class DenoBackend implements SpillBackend {
  readonly kind = 'file' as const;
  readonly location: string;
  readonly bufferWrites = true;

  constructor(dir: string) {
    this.location = dir;
  }

  async createFile(fileName: string): Promise<BackendFile> {
    const path = `${this.location}/${fileName}`;
    return new DenoFile(path, await D.open(path, { write: true, createNew: true }));
  }

  async removeAll(): Promise<void> {
    await removeIfThere(this.location, true);
    liveDirs.delete(this.location);
  }
}

/**
 * A file spill store in a fresh Deno temp directory (see the file comment).
 *
 * @example
 * ```ts
 * import { createDenoSpillStore } from './spill-deno.ts';
 * await using store = await createDenoSpillStore();
 * ```
 */
export async function createDenoSpillStore(options?: SpillStoreOptions): Promise<SpillStore> {
  options?.signal?.throwIfAborted();
  if (options?.dir !== undefined) await D.mkdir(options.dir, { recursive: true });
  const dir = await D.makeTempDir({ prefix: 'sluice-spill-', ...(options?.dir !== undefined ? { dir: options.dir } : {}) });
  track(dir);
  const store = new BackendSpillStore(new DenoBackend(dir), options);
  if (options?.signal?.aborted) await store.close();
  return store;
}

/** `Platform.spill` of Deno. */
export const denoSpill: SpillStoreFactory = { kind: 'file', createSpillStore: createDenoSpillStore };
