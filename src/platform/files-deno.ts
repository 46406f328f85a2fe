// Owns read access to local files over the `Deno.*` file API (needs --allow-read). Loaded only
// through a dynamic import from deno.ts.

import { SluiceError } from '../core/errors.ts';
import type { FileAccess, ReadableFile } from './types.ts';

/** The part of the `Deno` namespace used here (the project type-checks without Deno's own types). */
interface DenoFsFile {
  read(p: Uint8Array): Promise<number | null>;
  seek(offset: number, whence: number): Promise<number>;
  stat(): Promise<{ size: number; isFile: boolean }>;
  close(): void;
}
interface DenoFs {
  open(path: string, options: { read?: boolean }): Promise<DenoFsFile>;
  SeekMode: { Start: number };
}

const D = (globalThis as unknown as { Deno: DenoFs }).Deno;

/**
 * Opens files with `Deno.open`. Deno has no positional read, so reads are serialised per file
 * (seek, then read until the buffer is full or the file ends).
 *
 * @example
 * ```ts
 * const f = await denoFileAccess.open('/tmp/trades.csv');
 * const n = await f.read(new Uint8Array(65536), 0);
 * await f.close();
 * ```
 */
export const denoFileAccess: FileAccess = {
  async open(path: string): Promise<ReadableFile> {
    let file: DenoFsFile;
    try {
      file = await D.open(path, { read: true });
    } catch (e) {
      throw new SluiceError(`cannot open file '${path}': ${(e as Error)?.message ?? String(e)}`, { domain: 'external', cause: e });
    }
    let size: number;
    try {
      const st = await file.stat();
      if (!st.isFile) throw new Error('not a regular file');
      size = st.size;
    } catch (e) {
      try { file.close(); } catch { /* already closed */ }
      throw new SluiceError(`cannot read file '${path}': ${(e as Error)?.message ?? String(e)}`, { domain: 'external', cause: e });
    }
    let queue: Promise<unknown> = Promise.resolve();
    let closed: Promise<void> | undefined;
    const readAt = async (into: Uint8Array, position: number): Promise<number> => {
      if (closed) throw new SluiceError(`file '${path}' is closed`, { domain: 'internal' });
      try {
        await file.seek(position, D.SeekMode.Start);
        let got = 0;
        while (got < into.length) {
          const n = await file.read(into.subarray(got));
          if (n === null) break;
          got += n;
        }
        return got;
      } catch (e) {
        throw new SluiceError(`cannot read file '${path}' at byte ${position}: ${(e as Error)?.message ?? String(e)}`, { domain: 'external', retryable: true, cause: e });
      }
    };
    return {
      path,
      size,
      read(into, position) {
        const p = queue.then(() => readAt(into, position));
        queue = p.catch(() => undefined);
        return p;
      },
      close() {
        return (closed ??= queue.then(() => {
          try { file.close(); } catch { /* already closed */ }
        }));
      },
    };
  },
};
