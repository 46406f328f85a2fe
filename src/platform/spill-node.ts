// Owns the file spill store over `node:fs/promises`: Node, and Bun (whose node:fs is native).
// Loaded only through a dynamic import from node.ts / bun.ts, so other runtimes never see `node:`.
//
// Each store makes its own directory, `<dir or os.tmpdir()>/sluice-spill-XXXXXX/`, holding one file per
// spill run (`000001-<name>.spill`). `close()` removes the directory; so does a normal process exit
// for stores never closed (a synchronous `rmSync` in a `process.on('exit')` hook).

import type { FileHandle } from 'node:fs/promises';

// The `node:` modules are loaded on first use (createNodeSpillStore awaits them), not imported at the
// top: a bundler inlining this module must not hoist static `node:` imports into bundles for runtimes
// without them (workerd, browsers), where this file is never called.
let mkdir: typeof import('node:fs/promises').mkdir;
let mkdtemp: typeof import('node:fs/promises').mkdtemp;
let open: typeof import('node:fs/promises').open;
let rm: typeof import('node:fs/promises').rm;
let rmSync: typeof import('node:fs').rmSync;
let tmpdir: typeof import('node:os').tmpdir;
let join: typeof import('node:path').join;
let process: typeof import('node:process');
let loaded: Promise<void> | undefined;

function loadNodeModules(): Promise<void> {
  return (loaded ??= (async () => {
    const [fsp, fs, os, path, proc] = await Promise.all([
      import('node:fs/promises'),
      import('node:fs'),
      import('node:os'),
      import('node:path'),
      import('node:process'),
    ]);
    ({ mkdir, mkdtemp, open, rm } = fsp);
    rmSync = fs.rmSync;
    tmpdir = os.tmpdir;
    join = path.join;
    process = proc.default;
  })());
}
import { type BackendFile, type BackendReader, BackendSpillStore, type SpillBackend } from './spill-common.ts';
import type { SpillStore, SpillStoreFactory, SpillStoreOptions } from './types.ts';

const liveDirs = new Set<string>();
let exitHooked = false;

function track(dir: string): void {
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => {
      for (const d of liveDirs) {
        try {
          rmSync(d, { recursive: true, force: true });
        } catch {
          // Exiting anyway; nothing better to do with the error.
        }
      }
    });
  }
  liveDirs.add(dir);
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, off, bytes.length - off, null);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    off += bytesWritten;
  }
}

/**
 * Buffers per vectored write request. libuv loops over IOV_MAX-sized slices of one request on its
 * own thread, so this only bounds the array handed over (a 512 MiB run is 16k batches of 32 KiB).
 */
const WRITEV_PARTS = 65536;

/** What is left of `parts` after the first `written` bytes. */
function rest(parts: readonly Uint8Array[], written: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of parts) {
    if (written >= p.length) {
      written -= p.length;
      continue;
    }
    out.push(written > 0 ? p.subarray(written) : p);
    written = 0;
  }
  return out;
}

class NodeFile implements BackendFile {
  readonly location: string;
  private fh: FileHandle | undefined;

  constructor(path: string, fh: FileHandle) {
    this.location = path;
    this.fh = fh;
  }

  write(bytes: Uint8Array): Promise<void> {
    if (!this.fh) return Promise.reject(new Error(`${this.location} is not open for writing`));
    return writeAll(this.fh, bytes);
  }

  async writev(parts: readonly Uint8Array[]): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error(`${this.location} is not open for writing`);
    // one request per WRITEV_PARTS buffers (libuv writes a request's buffers to the end, on its threads)
    for (let i = 0; i < parts.length; i += WRITEV_PARTS) {
      const group = parts.slice(i, i + WRITEV_PARTS);
      let want = 0;
      for (const p of group) want += p.length;
      const { bytesWritten } = await fh.writev(group);
      if (bytesWritten !== want) for (const p of rest(group, bytesWritten)) await writeAll(fh, p);
    }
  }

  async closeWrite(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  async openRead(): Promise<BackendReader> {
    const fh = await open(this.location, 'r');
    return {
      read: async (dst, position) => (await fh.read(dst, 0, dst.length, position)).bytesRead,
      close: () => fh.close(),
    };
  }

  async remove(): Promise<void> {
    await this.closeWrite().catch(() => {});
    await rm(this.location, { force: true });
  }
}

class NodeBackend implements SpillBackend {
  readonly kind = 'file' as const;
  readonly location: string;
  readonly bufferWrites = true;

  constructor(dir: string) {
    this.location = dir;
  }

  async createFile(fileName: string): Promise<BackendFile> {
    const path = join(this.location, fileName);
    return new NodeFile(path, await open(path, 'wx'));
  }

  async removeAll(): Promise<void> {
    await rm(this.location, { recursive: true, force: true, maxRetries: 3 });
    liveDirs.delete(this.location);
  }
}

/**
 * A file spill store in a fresh temp directory (see the file comment).
 *
 * @example
 * ```ts
 * import { createNodeSpillStore } from './spill-node.ts';
 * const store = await createNodeSpillStore({ dir: '/mnt/scratch' });
 * try { … } finally { await store.close(); }
 * ```
 */
export async function createNodeSpillStore(options?: SpillStoreOptions): Promise<SpillStore> {
  options?.signal?.throwIfAborted();
  await loadNodeModules();
  const parent = options?.dir ?? tmpdir();
  if (options?.dir !== undefined) await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, 'sluice-spill-'));
  track(dir);
  const store = new BackendSpillStore(new NodeBackend(dir), options);
  // Aborted while the directory was being made: the listener was added too late to fire.
  if (options?.signal?.aborted) await store.close();
  return store;
}

/** `Platform.spill` of Node and Bun. */
export const nodeSpill: SpillStoreFactory = { kind: 'file', createSpillStore: createNodeSpillStore };
