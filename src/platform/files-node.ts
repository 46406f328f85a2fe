// Owns read access to local files over `node:fs/promises`: Node, and Bun (whose node:fs is native).
// Loaded only through a dynamic import from node.ts / bun.ts, so other runtimes never see `node:`.

import { SluiceError } from '../core/errors.ts';
import type { FileAccess, ReadableFile } from './types.ts';

/**
 * Opens files with `FileHandle.read(buffer, offset, length, position)` (pread: reads at several
 * positions may be in flight at once, each on libuv's thread pool).
 *
 * @example
 * ```ts
 * const f = await nodeFileAccess.open('/tmp/trades.csv');
 * const buf = new Uint8Array(65536);
 * const n = await f.read(buf, 0);
 * await f.close();
 * ```
 */
export const nodeFileAccess: FileAccess = {
  async open(path: string): Promise<ReadableFile> {
    let handle;
    try {
      // imported here, not at the top: a bundler inlining this module must not hoist a static `node:`
      // import into bundles for runtimes without it (workerd, browsers)
      const { open } = await import('node:fs/promises');
      handle = await open(path, 'r');
    } catch (e) {
      throw new SluiceError(`cannot open file '${path}': ${(e as Error)?.message ?? String(e)}`, { domain: 'external', cause: e });
    }
    let size: number;
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new Error('not a regular file');
      size = st.size;
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw new SluiceError(`cannot read file '${path}': ${(e as Error)?.message ?? String(e)}`, { domain: 'external', cause: e });
    }
    let closed: Promise<void> | undefined;
    const h = handle;
    return {
      path,
      size,
      async read(into, position) {
        if (closed) throw new SluiceError(`file '${path}' is closed`, { domain: 'internal' });
        try {
          const { bytesRead } = await h.read(into, 0, into.length, position);
          return bytesRead;
        } catch (e) {
          throw new SluiceError(`cannot read file '${path}' at byte ${position}: ${(e as Error)?.message ?? String(e)}`, { domain: 'external', retryable: true, cause: e });
        }
      },
      close() {
        return (closed ??= h.close().catch(() => undefined));
      },
    };
  },
};
