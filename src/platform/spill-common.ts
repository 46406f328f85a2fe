// Owns the runtime-neutral half of the spill stores: the spill file format (batches back to back, as
// they are in memory), batch framing checks on append and on read, write/read buffering, byte
// accounting and the store lifecycle (close removes everything, idempotent, on abort too).
// Each runtime supplies only a `SpillBackend` — a directory of append-then-read byte files — in
// spill-node.ts (Node, Bun), spill-deno.ts (Deno) and spill-memory.ts (workerd, browsers).
//
// ── Spill file ──────────────────────────────────────────────────────────────────────────────
// No file header: the batches themselves, in append order, each self-delimiting (abi/abi.ts):
//
//   offset 0          batch 0: u32 magic 'SLB1' | u32 byteLength | u32 rowCount | u32 schemaId | rows
//   offset len0       batch 1: …
//   …
//   offset Σ len      end (the store remembers the expected length and batch count; a file that
//                     ends early, runs on, or frames a batch wrongly is a CorruptBatchError)

import { BATCH_HEADER_BYTES, BATCH_MAGIC, BATCH_OFF_BYTE_LENGTH, BATCH_OFF_MAGIC, BATCH_OFF_ROW_COUNT } from '../../bindings/abi.generated.ts';
import { CorruptBatchError, MemoryBudgetError, SluiceError } from '../core/errors.ts';
import type {
  SpillFile,
  SpillReader,
  SpillStats,
  SpillStore,
  SpillStoreFactory,
  SpillStoreKind,
  SpillStoreOptions,
  SpillWriter,
} from './types.ts';

/** Default write/read buffer of file stores. */
export const DEFAULT_SPILL_BUFFER_BYTES = 256 * 1024;

/** A spill store was used after `close()` (or after its abort signal fired). */
export class SpillStoreClosedError extends SluiceError {
  constructor(location: string, what: string) {
    super(`spill store ${location} is closed: cannot ${what}`, { domain: 'internal' });
  }
}

// ── backend: what a runtime supplies ─────────────────────────────────────────────────────────

/** A directory of byte files, one per spill file. Everything here may assume sequential calls per file. */
export interface SpillBackend {
  readonly kind: SpillStoreKind;
  /** The directory, or `memory:<id>`. */
  readonly location: string;
  /**
   * Whether appends are gathered in a write buffer (`bufferBytes`) before `write` — for files, where
   * each `write` is a system call. The memory store copies each batch once, straight into a chunk.
   */
  readonly bufferWrites: boolean;
  /** Create a new empty file, open for appending. `fileName` is unique within the store. */
  createFile(fileName: string): Promise<BackendFile>;
  /** Remove the directory and everything in it (best effort after the files were removed). */
  removeAll(): Promise<void>;
}

/** One file of a backend. */
export interface BackendFile {
  readonly location: string;
  /** Append all of `bytes` (the backend copies them or has written them when the promise resolves). */
  write(bytes: Uint8Array): Promise<void>;
  /** Append all of `parts` in order, as one request where the runtime has vectored writes (optional). */
  writev?(parts: readonly Uint8Array[]): Promise<void>;
  /** Close for writing. */
  closeWrite(): Promise<void>;
  /** Open an independent reader (its own handle / position). */
  openRead(): Promise<BackendReader>;
  /** Delete the file (the write side is closed first if still open). Missing is fine. */
  remove(): Promise<void>;
}

/** Positional reads from one backend file. */
export interface BackendReader {
  /** Read up to `dst.length` bytes at `position` into `dst`; 0 means end of file. */
  read(dst: Uint8Array, position: number): Promise<number>;
  close(): Promise<void>;
}

// ── framing ──────────────────────────────────────────────────────────────────────────────────

const MAX_BATCH_BYTES = 0x7fff_fff8; // byteLength is a u32 multiple of 8; more than 2 GiB is not a batch we wrote

/**
 * Check the 16-byte header of a batch starting at `at` in `bytes` (at least 8 bytes available) and
 * return its byteLength. `limit` is the most bytes the batch may span. Throws CorruptBatchError
 * naming `where` and `offset` (the batch's position in its file).
 */
export function checkBatchHeader(bytes: Uint8Array, at: number, limit: number, where: string, offset: number): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset + at, Math.min(BATCH_HEADER_BYTES, bytes.length - at));
  const magic = dv.getUint32(BATCH_OFF_MAGIC, true);
  if (magic !== BATCH_MAGIC) {
    throw new CorruptBatchError(`${where}: no batch magic at byte ${offset} (found 0x${magic.toString(16).padStart(8, '0')})`);
  }
  const len = dv.getUint32(BATCH_OFF_BYTE_LENGTH, true);
  if (len < BATCH_HEADER_BYTES || len % 8 !== 0 || len > MAX_BATCH_BYTES) {
    throw new CorruptBatchError(`${where}: batch at byte ${offset} has impossible byteLength ${len}`);
  }
  if (len > limit) {
    throw new CorruptBatchError(`${where}: batch at byte ${offset} claims ${len} bytes but only ${limit} remain`);
  }
  if (dv.byteLength >= BATCH_HEADER_BYTES) {
    // Every row is at least 8 bytes: a row count beyond that cannot be real.
    const rows = dv.getUint32(BATCH_OFF_ROW_COUNT, true);
    if (rows > (len - BATCH_HEADER_BYTES) / 8) {
      throw new CorruptBatchError(`${where}: batch at byte ${offset} claims ${rows} rows in ${len} bytes`);
    }
  }
  return len;
}

// ── store ────────────────────────────────────────────────────────────────────────────────────

interface Closable {
  closeNow(): Promise<void>;
}

/**
 * A SpillStore over any backend. Adapters call this; users get stores from `Platform.spill`.
 */
export class BackendSpillStore implements SpillStore {
  readonly kind: SpillStoreKind;
  readonly location: string;
  /** @internal */ readonly backend: SpillBackend;
  /** @internal */ readonly maxBytes: number;
  /** @internal */ readonly bufferBytes: number;
  /** @internal */ readonly open = new Set<Closable>();
  /** @internal */ readonly acct = { bytesWritten: 0, batchesWritten: 0, bytesRead: 0, bytesLive: 0, filesLive: 0, filesCreated: 0 };
  private closing: Promise<void> | undefined;
  private seq = 0;
  private readonly onAbort: (() => void) | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly afterClose: (() => void) | undefined;

  constructor(backend: SpillBackend, options: SpillStoreOptions = {}, afterClose?: () => void) {
    this.backend = backend;
    this.kind = backend.kind;
    this.location = backend.location;
    this.maxBytes = options.maxBytes ?? Infinity;
    this.bufferBytes = options.bufferBytes ?? DEFAULT_SPILL_BUFFER_BYTES;
    this.afterClose = afterClose;
    this.signal = options.signal;
    if (this.signal) {
      this.onAbort = () => void this.close().catch(() => {});
      this.signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  get stats(): SpillStats {
    return { ...this.acct };
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** @internal */
  assertOpen(what: string): void {
    if (this.closing) throw new SpillStoreClosedError(this.location, what);
  }

  async create(name: string): Promise<SpillWriter> {
    this.assertOpen(`create ${JSON.stringify(name)}`);
    const fileName = `${String(this.seq++).padStart(6, '0')}-${safeName(name)}.spill`;
    const file = await this.backend.createFile(fileName);
    if (this.closing) {
      await file.remove().catch(() => {});
      throw new SpillStoreClosedError(this.location, `create ${JSON.stringify(name)}`);
    }
    this.acct.filesCreated++;
    this.acct.filesLive++;
    return new Writer(this, name, file);
  }

  close(): Promise<void> {
    if (!this.closing) {
      if (this.signal && this.onAbort) this.signal.removeEventListener('abort', this.onAbort);
      this.closing = (async () => {
        const errors: unknown[] = [];
        for (const c of [...this.open]) await c.closeNow().catch((e) => errors.push(e));
        this.open.clear();
        await this.backend.removeAll().catch((e) => errors.push(e));
        this.afterClose?.();
        if (errors.length) throw new SluiceError(`spill store ${this.location}: cleanup failed: ${String(errors[0])}`, { domain: 'external', cause: errors[0] });
      })();
    }
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function safeName(name: string): string {
  return String(name).replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 48) || 'run';
}

/** Run queued operations one after another; after a failure every later one fails the same way. */
class Queue {
  private tail: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;
  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.tail.then(() => {
      if (this.failure) throw this.failure.error;
      return op();
    });
    this.tail = result.then(
      () => {},
      (error) => {
        this.failure ??= { error };
      },
    );
    return result;
  }
  /** Settles after everything queued so far (never rejects). */
  drain(): Promise<void> {
    return this.tail;
  }
}

class Writer implements SpillWriter, Closable {
  readonly name: string;
  readonly location: string;
  byteLength = 0;
  batchCount = 0;
  private readonly store: BackendSpillStore;
  private readonly file: BackendFile;
  private readonly queue = new Queue();
  private pending = 0; // queued operations not yet settled; the buffer is theirs while > 0
  private readonly buf: Uint8Array | undefined;
  private bufLen = 0;
  private state: 'open' | 'finished' | 'aborted' = 'open';
  private finished: FinishedFile | undefined;

  constructor(store: BackendSpillStore, name: string, file: BackendFile) {
    this.store = store;
    this.name = name;
    this.file = file;
    this.location = file.location;
    const size = store.backend.bufferWrites ? store.bufferBytes : 0;
    this.buf = size > 0 ? new Uint8Array(size) : undefined;
    store.open.add(this);
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    this.pending++;
    return this.queue.run(op).finally(() => {
      this.pending--;
    });
  }

  append(batch: Uint8Array): Promise<void> {
    try {
      this.checkWritable();
      const len = this.admit(batch);
      const bytes = batch.subarray(0, len);
      this.account(len, 1);
      const buf = this.buf;
      if (buf && this.pending === 0 && len <= buf.length - this.bufLen) {
        // Nothing queued and it fits the write buffer: copy now, no I/O.
        buf.set(bytes, this.bufLen);
        this.bufLen += len;
        return Promise.resolve();
      }
      return this.enqueue(async () => {
        this.store.assertOpen(`append to ${this.location}`);
        if (buf && len <= buf.length - this.bufLen) {
          buf.set(bytes, this.bufLen);
          this.bufLen += len;
          return;
        }
        await this.flush();
        if (buf && len <= buf.length) {
          buf.set(bytes, 0);
          this.bufLen = len;
        } else {
          await this.file.write(bytes);
        }
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  appendAll(batches: readonly Uint8Array[]): Promise<void> {
    try {
      this.checkWritable();
      const parts: Uint8Array[] = [];
      let total = 0;
      for (const batch of batches) {
        const len = this.admit(batch, total);
        parts.push(batch.subarray(0, len));
        total += len;
      }
      if (parts.length === 0) return Promise.resolve();
      this.account(total, parts.length);
      // one queued operation for all of them: with a vectored write (files on Node and Bun) the runtime
      // writes them in one request, which proceeds while this thread computes
      return this.enqueue(async () => {
        this.store.assertOpen(`append to ${this.location}`);
        await this.flush();
        if (this.file.writev) await this.file.writev(parts);
        else for (const p of parts) await this.file.write(p);
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private checkWritable(): void {
    this.store.assertOpen(`append to ${this.location}`);
    if (this.state !== 'open') throw new SluiceError(`spill file ${this.location} is ${this.state}: cannot append`, { domain: 'internal' });
  }

  /**
   * Checks one batch to append (`more` bytes already admitted with it) and returns its byteLength:
   * CorruptBatchError for a bad header, MemoryBudgetError past the store's maxBytes.
   */
  private admit(batch: Uint8Array, more = 0): number {
    if (!(batch instanceof Uint8Array) || batch.length < BATCH_HEADER_BYTES) {
      throw new CorruptBatchError(`append to ${this.location}: a batch needs at least ${BATCH_HEADER_BYTES} bytes, got ${batch?.length}`);
    }
    const len = checkBatchHeader(batch, 0, batch.length, `append to ${this.location}`, this.byteLength + more);
    const acct = this.store.acct;
    if (acct.bytesLive + more + len > this.store.maxBytes) {
      throw new MemoryBudgetError(
        `spill store budget of ${this.store.maxBytes} bytes exceeded (${this.store.kind} store ${this.store.location}): ` +
          `${acct.bytesLive + more} bytes live, ${len} more appended`,
      );
    }
    return len;
  }

  /** Accounting moves at append time, so appends not awaited one by one still see each other against maxBytes. */
  private account(bytes: number, batches: number): void {
    const acct = this.store.acct;
    this.byteLength += bytes;
    this.batchCount += batches;
    acct.bytesWritten += bytes;
    acct.batchesWritten += batches;
    acct.bytesLive += bytes;
  }

  private async flush(): Promise<void> {
    if (this.buf && this.bufLen > 0) {
      const n = this.bufLen;
      this.bufLen = 0;
      await this.file.write(this.buf.subarray(0, n));
    }
  }

  finish(): Promise<SpillFile> {
    try {
      this.store.assertOpen(`finish ${this.location}`);
      if (this.state !== 'open') throw new SluiceError(`spill file ${this.location} is ${this.state}: cannot finish`, { domain: 'internal' });
    } catch (e) {
      return Promise.reject(e);
    }
    this.state = 'finished';
    return this.enqueue(async () => {
      this.store.assertOpen(`finish ${this.location}`);
      await this.flush();
      await this.file.closeWrite();
      this.store.open.delete(this);
      this.finished = new FinishedFile(this.store, this.name, this.file, this.byteLength, this.batchCount);
      return this.finished;
    });
  }

  abort(): Promise<void> {
    if (this.state !== 'open') return Promise.resolve();
    return this.closeNow();
  }

  async closeNow(): Promise<void> {
    if (this.state === 'aborted') return;
    // A writer whose finish() is under way is settled by the store's removeAll if finish fails.
    this.state = 'aborted';
    await this.queue.drain();
    this.store.open.delete(this);
    // finish() won the race with close(): the file it made owns the bytes now.
    if (this.finished) return this.finished.closeNow();
    this.store.acct.bytesLive -= this.byteLength;
    this.store.acct.filesLive--;
    await this.file.remove();
  }
}

class FinishedFile implements SpillFile, Closable {
  readonly name: string;
  readonly location: string;
  readonly byteLength: number;
  readonly batchCount: number;
  /** @internal */ readonly readers = new Set<Reader>();
  private readonly store: BackendSpillStore;
  /** @internal */ readonly file: BackendFile;
  private deleting: Promise<void> | undefined;

  constructor(store: BackendSpillStore, name: string, file: BackendFile, byteLength: number, batchCount: number) {
    this.store = store;
    this.name = name;
    this.file = file;
    this.location = file.location;
    this.byteLength = byteLength;
    this.batchCount = batchCount;
    store.open.add(this);
  }

  read(): SpillReader {
    this.store.assertOpen(`read ${this.location}`);
    if (this.deleting) throw new SluiceError(`spill file ${this.location} was deleted: cannot read`, { domain: 'internal' });
    const r = new Reader(this.store, this);
    this.readers.add(r);
    return r;
  }

  delete(): Promise<void> {
    this.deleting ??= this.closeNow();
    return this.deleting;
  }

  async closeNow(): Promise<void> {
    if (this.deleting) return this.deleting;
    this.deleting = (async () => {
      this.store.open.delete(this);
      for (const r of [...this.readers]) await r.close().catch(() => {});
      this.store.acct.bytesLive -= this.byteLength;
      this.store.acct.filesLive--;
      await this.file.remove();
    })();
    return this.deleting;
  }
}

/**
 * Sequential, buffered batch reader. Reads at most `expected` bytes, checks every header against
 * what remains, and at the end checks the file does not run on.
 */
class Reader implements SpillReader {
  private readonly store: BackendSpillStore;
  private readonly owner: FinishedFile;
  private readonly expected: number;
  private readonly queue = new Queue();
  private handle: Promise<BackendReader> | undefined;
  private buf: Uint8Array;
  private bufStart = 0; // file position of buf[0]
  private bufLen = 0;
  private pos = 0; // file position of the next batch
  private batches = 0;
  private state: 'open' | 'ended' | 'closed' = 'open';

  constructor(store: BackendSpillStore, owner: FinishedFile) {
    this.store = store;
    this.owner = owner;
    this.expected = owner.byteLength;
    const size = store.bufferBytes;
    this.buf = new Uint8Array(Math.max(BATCH_HEADER_BYTES, Math.min(size, Math.max(this.expected, BATCH_HEADER_BYTES))));
  }

  next(): Promise<Uint8Array | undefined> {
    return this.queue.run(() => this.step(false));
  }

  nextView(): Promise<Uint8Array | undefined> {
    return this.queue.run(() => this.step(true));
  }

  private corrupt(detail: string): CorruptBatchError {
    return new CorruptBatchError(`spill file ${this.owner.location}: ${detail}`);
  }

  private async step(view: boolean): Promise<Uint8Array | undefined> {
    // A reader cut off by close() or delete() must not look like a run that ended: that loses data.
    this.store.assertOpen(`read ${this.owner.location}`);
    if (this.state === 'ended') return undefined;
    if (this.state === 'closed') throw new SluiceError(`spill reader of ${this.owner.location} was closed before the end`, { domain: 'internal' });
    this.handle ??= this.owner.file.openRead();
    const h = await this.handle;
    if (this.pos === this.expected) {
      // Runs on past what we wrote? Then it is not our file any more.
      const probe = new Uint8Array(1);
      if ((await h.read(probe, this.expected)) > 0) throw this.corrupt(`longer than the ${this.expected} bytes written`);
      if (this.batches !== this.owner.batchCount) throw this.corrupt(`${this.batches} batches read, ${this.owner.batchCount} written`);
      this.state = 'ended';
      await this.release();
      return undefined;
    }
    const remaining = this.expected - this.pos;
    if (remaining < BATCH_HEADER_BYTES) throw this.corrupt(`${remaining} stray bytes at byte ${this.pos}`);
    await this.fill(h, BATCH_HEADER_BYTES);
    const at = this.pos - this.bufStart;
    const len = checkBatchHeader(this.buf, at, remaining, `spill file ${this.owner.location}`, this.pos);
    let out: Uint8Array;
    if (len <= this.buf.length) {
      await this.fill(h, len);
      const from = this.pos - this.bufStart;
      out = view ? this.buf.subarray(from, from + len) : this.buf.slice(from, from + len);
    } else {
      out = new Uint8Array(len);
      // Larger than the buffer: take what is buffered, read the rest straight into the result.
      const have = this.bufLen - at;
      out.set(this.buf.subarray(at, at + have));
      let got = have;
      while (got < len) {
        const n = await h.read(out.subarray(got), this.pos + got);
        if (n === 0) throw this.corrupt(`truncated: ends at byte ${this.pos + got} inside a ${len}-byte batch at byte ${this.pos} (${this.expected} bytes written)`);
        got += n;
      }
      this.bufStart = this.pos + len;
      this.bufLen = 0;
    }
    this.pos += len;
    this.batches++;
    this.store.acct.bytesRead += len;
    return out;
  }

  /** Make `need` bytes from `pos` available in the buffer, compacting and reading as needed. */
  private async fill(h: BackendReader, need: number): Promise<void> {
    let at = this.pos - this.bufStart;
    if (this.bufLen - at >= need) return;
    if (at > 0) {
      this.buf.copyWithin(0, at, this.bufLen);
      this.bufLen -= at;
      this.bufStart = this.pos;
      at = 0;
    }
    while (this.bufLen < need) {
      const want = Math.min(this.buf.length - this.bufLen, this.expected - (this.bufStart + this.bufLen));
      const n = want > 0 ? await h.read(this.buf.subarray(this.bufLen, this.bufLen + want), this.bufStart + this.bufLen) : 0;
      if (n === 0) {
        throw this.corrupt(`truncated: ends at byte ${this.bufStart + this.bufLen} inside the batch at byte ${this.pos} (${this.expected} bytes written)`);
      }
      this.bufLen += n;
    }
  }

  async close(): Promise<void> {
    if (this.state === 'open') this.state = 'closed';
    await this.queue.drain();
    await this.release();
  }

  private async release(): Promise<void> {
    this.owner.readers.delete(this);
    this.buf = new Uint8Array(0);
    const h = this.handle;
    this.handle = undefined;
    if (h) await (await h.catch(() => undefined))?.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    try {
      for (let b = await this.next(); b !== undefined; b = await this.next()) yield b;
    } finally {
      await this.close();
    }
  }
}

// ── helpers for users ────────────────────────────────────────────────────────────────────────

/**
 * Run `body` with a fresh spill store and close the store afterwards — on success, on a throw and
 * on cancellation alike. The `try/finally` pattern for runtimes or compilers without `await using`.
 *
 * @example
 * ```ts
 * const sorted = await withSpillStore(platform.spill, { signal }, async (store) => {
 *   const w = await store.create('run-0');
 *   await w.append(batch);
 *   const run = await w.finish();
 *   const out: Uint8Array[] = [];
 *   for await (const b of run.read()) out.push(b);
 *   return out;
 * }); // the temp directory is gone here
 * ```
 */
export async function withSpillStore<T>(
  factory: SpillStoreFactory,
  options: SpillStoreOptions | undefined,
  body: (store: SpillStore) => Promise<T>,
): Promise<T> {
  const store = await factory.createSpillStore(options);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}
