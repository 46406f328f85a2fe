// Owns what the text-file connectors (csv.ts, ndjson.ts) share: the inputs they accept (paths,
// bytes, strings, web ReadableStreams, async iterables of chunks), reading those inputs chunk by chunk
// with read-ahead, rejected records and the error policy, and the bounded, replayable source that
// drives an incremental record parser from the runtime's synchronous `poll()`.
//
// Replay position of a file source = (input index, byte offset of the next record, its 1-based line,
// the header's column names when the format has one), so a restored reader seeks to the byte and
// continues without re-reading the prefix.

import { MalformedInputError, SluiceError, type ErrorContext, type InputPosition } from '../core/errors.ts';
import { encodeUtf8 } from '../core/utf8.ts';
import type { OperatorContext, SourceReader, SourceSpec } from '../graph/operator.ts';
import type { FileAccess, ReadableFile } from '../platform/types.ts';
import { userFailure } from '../runtime/failure.ts';
import { splitRange } from './collection.ts';

// ---------------------------------------------------------------------------------------------
// Inputs

/** Web-standard byte chunks of an input, in order. A `string` chunk is taken as UTF-8 text. */
export type ChunkIterable = AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>;

/**
 * What a parser function (`parseCsv`, `parseNdjson`) reads: the text itself, its UTF-8 bytes, a web
 * `ReadableStream` of bytes, or an (async) iterable of chunks. String chunks must not split a
 * surrogate pair; byte chunks may split anything (a quote, a CRLF, a multi-byte character).
 */
export type ParseInput = string | Uint8Array | ReadableStream<Uint8Array> | ChunkIterable;

/**
 * What a file source (`env.readCsv`, `env.readNdjson`) reads: a path (on runtimes with a file system:
 * Node, Deno, Bun), several paths (split over the source's subtasks), `{ text }` or `{ bytes }` held in
 * memory, or a stream / async iterable of byte chunks (read once: not replayable).
 */
export type SourceInput =
  | string
  | readonly string[]
  | { path: string }
  | { text: string; name?: string }
  | { bytes: Uint8Array; name?: string }
  | { stream: ReadableStream<Uint8Array> | ChunkIterable; name?: string }
  | ReadableStream<Uint8Array>
  | Uint8Array;

/** One input of a source, normalised. */
export type InputRef =
  | { kind: 'path'; name: string }
  | { kind: 'bytes'; name: string; bytes: Uint8Array }
  | { kind: 'stream'; name: string; stream: ReadableStream<Uint8Array> | ChunkIterable };

/** Normalises a {@link SourceInput} into a list of inputs (a file source may read several). */
export function sourceInputs(input: SourceInput, what: string): InputRef[] {
  if (typeof input === 'string') return [{ kind: 'path', name: input }];
  if (Array.isArray(input)) {
    if (input.length === 0) throw new SluiceError(`${what}: the list of paths is empty`, { domain: 'user' });
    return input.map((p) => {
      if (typeof p !== 'string') throw new SluiceError(`${what}: expected a list of paths, got ${typeof p}`, { domain: 'user' });
      return { kind: 'path', name: p } as const;
    });
  }
  if (input instanceof Uint8Array) return [{ kind: 'bytes', name: '<bytes>', bytes: input }];
  if (isReadableStream(input)) return [{ kind: 'stream', name: '<stream>', stream: input }];
  if (input !== null && typeof input === 'object') {
    const o = input as Record<string, unknown>;
    if (typeof o.path === 'string') return [{ kind: 'path', name: o.path }];
    const name = typeof o.name === 'string' ? o.name : undefined;
    if (typeof o.text === 'string') return [{ kind: 'bytes', name: name ?? '<text>', bytes: encodeUtf8(o.text) }];
    if (o.bytes instanceof Uint8Array) return [{ kind: 'bytes', name: name ?? '<bytes>', bytes: o.bytes }];
    if (o.stream !== undefined && (isReadableStream(o.stream) || isIterable(o.stream))) {
      return [{ kind: 'stream', name: name ?? '<stream>', stream: o.stream as ReadableStream<Uint8Array> | ChunkIterable }];
    }
  }
  throw new SluiceError(
    `${what}: expected a path, a list of paths, { text }, { bytes }, { stream }, a ReadableStream or a Uint8Array`,
    { domain: 'user' },
  );
}

function isReadableStream(x: unknown): x is ReadableStream<Uint8Array> {
  return typeof ReadableStream !== 'undefined' && x instanceof ReadableStream;
}

function isIterable(x: unknown): x is ChunkIterable {
  return x != null && (typeof (x as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' || typeof (x as Iterable<unknown>)[Symbol.iterator] === 'function');
}

// ---------------------------------------------------------------------------------------------
// Chunk readers: synchronous `take()` over asynchronous reads (the runtime's poll is synchronous)

/** Bytes per file read (and per chunk of in-memory input handed to a parser). */
export const DEFAULT_CHUNK_BYTES = 1 << 20;
/** File reads in flight at once: the executor yields to the event loop about every 10 ms, and every
 * read that completed meanwhile is delivered at once, so depth × chunk bounds the bytes per yield. */
const FILE_READ_AHEAD = 4;
/** Chunks a stream reader may hold ahead of the parser. */
const STREAM_READ_AHEAD = 4;

/**
 * Chunks of one input in order. `take()` answers at once: a chunk, `null` at the end, or `undefined`
 * while the next chunk is still being read (read-ahead keeps going in the background).
 * Cost: at most `readAhead` chunks held at a time.
 */
export interface ChunkReader {
  take(): Uint8Array | null | undefined;
  /** Resolves when `take()` has something (a chunk, the end, or an error) to answer. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

interface Slot {
  settled: boolean;
  value: Uint8Array | null;
  error: unknown;
  promise: Promise<void>;
}

/** A queue of reads started in order and consumed in order, whichever finishes first. */
class ReadAheadQueue implements ChunkReader {
  private readonly slots: Slot[] = [];
  private ended = false;
  private closed = false;
  constructor(
    private readonly pull: () => Promise<Uint8Array | null>,
    private readonly depth: number,
    private readonly onClose: () => Promise<void>,
  ) {}

  private fill(): void {
    while (!this.ended && !this.closed && this.slots.length < this.depth) {
      const slot: Slot = { settled: false, value: null, error: undefined, promise: undefined as unknown as Promise<void> };
      slot.promise = this.pull().then(
        (v) => {
          slot.settled = true;
          slot.value = v;
        },
        (e) => {
          slot.settled = true;
          slot.error = e ?? new Error('read failed');
        },
      );
      this.slots.push(slot);
      // a read answered `null` ends the input; later slots (if any) are never started
      if (this.depth === 1) break;
    }
  }

  take(): Uint8Array | null | undefined {
    if (this.closed) return null;
    this.fill();
    const head = this.slots[0];
    if (head === undefined) return this.ended ? null : undefined;
    if (!head.settled) return undefined;
    this.slots.shift();
    if (head.error !== undefined) {
      this.ended = true;
      throw head.error;
    }
    if (head.value === null) {
      this.ended = true;
      this.slots.length = 0;
      return null;
    }
    this.fill();
    return head.value;
  }

  ready(): Promise<void> {
    this.fill();
    return this.slots[0]?.promise ?? Promise.resolve();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.slots.length = 0;
    return this.onClose();
  }
}

/** In-memory bytes, handed out in `chunkBytes` slices (no copy). */
class BytesReader implements ChunkReader {
  private pos: number;
  constructor(private readonly bytes: Uint8Array, start: number, private readonly chunkBytes: number) {
    this.pos = start;
  }
  take(): Uint8Array | null {
    if (this.pos >= this.bytes.length) return null;
    const end = Math.min(this.bytes.length, this.pos + this.chunkBytes);
    const c = this.bytes.subarray(this.pos, end);
    this.pos = end;
    return c;
  }
  ready(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A synchronous iterable of chunks: answered at once, no read-ahead needed. */
class SyncIterReader implements ChunkReader {
  constructor(private readonly it: Iterator<Uint8Array | string>) {}
  take(): Uint8Array | null {
    for (;;) {
      const r = this.it.next();
      if (r.done) return null;
      const c = toBytes(r.value);
      if (c.length > 0) return c;
    }
  }
  ready(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.it.return?.();
    return Promise.resolve();
  }
}

function toBytes(c: Uint8Array | string): Uint8Array {
  if (typeof c === 'string') return encodeUtf8(c);
  if (c instanceof Uint8Array) return c;
  throw new SluiceError(`input chunks must be Uint8Array or string, got ${typeof c}`, { domain: 'user' });
}

/** Reads a file from `start` in `chunkBytes` reads, `FILE_READ_AHEAD` in flight. Each chunk is a fresh buffer. */
export function fileChunkReader(file: ReadableFile, start: number, chunkBytes = DEFAULT_CHUNK_BYTES): ChunkReader {
  let next = start;
  return new ReadAheadQueue(
    async () => {
      const pos = next;
      if (pos >= file.size) return null;
      const len = Math.min(chunkBytes, file.size - pos);
      next = pos + len;
      const buf = new Uint8Array(len);
      let got = 0;
      while (got < len) {
        const n = await file.read(got === 0 ? buf : buf.subarray(got), pos + got);
        if (n <= 0) break; // the file shrank since it was opened
        got += n;
      }
      if (got === 0) return null;
      return got < len ? buf.subarray(0, got) : buf;
    },
    FILE_READ_AHEAD,
    () => file.close(),
  );
}

/** A chunk reader over any {@link ParseInput}. `start` skips that many bytes (in-memory inputs only). */
export function chunkReader(input: ParseInput, chunkBytes = DEFAULT_CHUNK_BYTES, start = 0): ChunkReader {
  if (typeof input === 'string') return new BytesReader(encodeUtf8(input), start, chunkBytes);
  if (input instanceof Uint8Array) return new BytesReader(input, start, chunkBytes);
  if (start !== 0) throw new SluiceError('a stream input cannot be started at a byte offset (it is not replayable)', { domain: 'user' });
  if (isReadableStream(input)) {
    const reader = input.getReader();
    return new ReadAheadQueue(
      async () => {
        for (;;) {
          const r = await reader.read();
          if (r.done) return null;
          const c = toBytes(r.value);
          if (c.length > 0) return c;
        }
      },
      STREAM_READ_AHEAD,
      async () => {
        await reader.cancel().catch(() => undefined);
      },
    );
  }
  if (typeof (input as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    const it = (input as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
    return new ReadAheadQueue(
      async () => {
        for (;;) {
          const r = await it.next();
          if (r.done) return null;
          const c = toBytes(r.value);
          if (c.length > 0) return c;
        }
      },
      1, // a generic async iterator need not support overlapping next() calls
      async () => {
        await it.return?.();
      },
    );
  }
  if (typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return new SyncIterReader((input as Iterable<Uint8Array | string>)[Symbol.iterator]());
  }
  throw new SluiceError('expected a string, a Uint8Array, a ReadableStream or an (async) iterable of chunks', { domain: 'user' });
}

// ---------------------------------------------------------------------------------------------
// Rejected records and the error policy

/**
 * A record that could not be read, with everything needed to find and fix it: where it is, what is
 * wrong, and its raw text. What a source with `onError: 'side-output'` emits on `.rejected`, and what
 * an `onError` callback receives.
 */
export class RejectedRecord {
  constructor(
    /** The error that would have failed the job (`position`, `reason`, `text`). */
    readonly error: MalformedInputError,
    /** The record's raw text (up to 64 KiB; longer records are cut). */
    readonly raw: string,
  ) {}
  /** File path or input name. */
  get source(): string {
    return this.error.position.source;
  }
  /** 1-based line number. */
  get line(): number {
    return this.error.position.line;
  }
  /** 1-based column (field) number, if the problem is in one field. */
  get column(): number | undefined {
    return this.error.position.column;
  }
  /** Schema field or header name, if known. */
  get field(): string | undefined {
    return this.error.position.field;
  }
  /** Byte offset of the record in its input. */
  get byteOffset(): number {
    return this.error.position.byteOffset;
  }
  get reason(): string {
    return this.error.reason;
  }
  toString(): string {
    return this.error.message;
  }
}

/** The most raw text a rejected record keeps. */
export const MAX_RAW_CHARS = 65536;

/**
 * What a parser does with a record it cannot read:
 * - `'fail'` (default): throw a {@link MalformedInputError} (the job fails naming source, line, field);
 * - `'side-output'` (sources only): emit it as a {@link RejectedRecord} on the source's `.rejected` stream;
 * - a function: called with the {@link RejectedRecord}; reading goes on. It may throw to fail the job.
 */
export type OnError = 'fail' | 'side-output' | ((rejected: RejectedRecord) => void);

/** Options every text format shares. */
export interface TextFormatOptions {
  /** Name for errors when the input is not a file (default `<text>`, `<bytes>`, `<stream>`). */
  name?: string;
  /** See {@link OnError}. */
  onError?: OnError;
  /** Bytes per chunk read from a file or sliced from in-memory input (default 1 MiB). */
  chunkBytes?: number;
}

/** Where a parser stands: the next record's byte offset (in the input) and 1-based line. */
export interface ParserPosition {
  byteOffset: number;
  line: number;
  /** Column names of a header already read (CSV with a header). */
  header?: string[];
}

/** `parse` produced `max` records; call again. */
export const PARSE_FULL = 0;
/** `parse` consumed every buffered byte up to an incomplete record: push more input (or `end()`). */
export const PARSE_NEED_INPUT = 1;
/** `parse` reached the end of input; everything is parsed. */
export const PARSE_DONE = 2;
/** Status of {@link RecordParser.parse}. */
export type ParseStatus = typeof PARSE_FULL | typeof PARSE_NEED_INPUT | typeof PARSE_DONE;

/**
 * An incremental parser from bytes to records. Push chunks as they come, `end()` at the end;
 * `parse` appends up to `max` records (or rejected records, when the policy says so) to `out`.
 */
export interface RecordParser<T> {
  push(chunk: Uint8Array): void;
  end(): void;
  parse(out: (T | RejectedRecord)[], max: number): ParseStatus;
  /** Where the next unconsumed record starts. */
  position(): ParserPosition;
  /** Records rejected so far (all policies but `'fail'`). */
  readonly rejectedCount: number;
}

/** How a format makes a parser for one input, starting at `from` (a restored position) or the start. */
export type ParserFactory<T> = (sourceName: string, from: ParserPosition | undefined, sink: RejectSink) => RecordParser<T>;

/**
 * Where a parser sends a malformed record: throws (policy `'fail'`), or hands back a RejectedRecord
 * for the parser to emit (`'side-output'`), or calls the user's function and answers undefined.
 */
export class RejectSink {
  count = 0;
  constructor(private readonly policy: OnError, private readonly context: ErrorContext = {}) {}
  /** Returns the rejected record to emit, or undefined if nothing is to be emitted. Throws for `'fail'`. */
  reject(pos: InputPosition, reason: string, text: string, raw: string): RejectedRecord | undefined {
    const err = new MalformedInputError(pos, reason, text, this.context);
    if (this.policy === 'fail') throw err;
    this.count++;
    const rec = new RejectedRecord(err, raw.length > MAX_RAW_CHARS ? raw.slice(0, MAX_RAW_CHARS) : raw);
    if (this.policy === 'side-output') return rec;
    this.policy(rec);
    return undefined;
  }
}

export function checkOnError(onError: unknown, allowSideOutput: boolean, what: string): OnError {
  if (onError === undefined) return 'fail';
  if (onError === 'fail' || typeof onError === 'function') return onError as OnError;
  if (onError === 'side-output') {
    if (!allowSideOutput) throw new SluiceError(`${what}: onError 'side-output' needs a source (env.readCsv / env.readNdjson); pass a function to collect rejected records here`, { domain: 'user' });
    return 'side-output';
  }
  throw new SluiceError(`${what}: onError must be 'fail', 'side-output' or a function, got ${String(onError)}`, { domain: 'user' });
}

// ---------------------------------------------------------------------------------------------
// Running a parser over a whole input (the parse functions of the object API)

/**
 * Parses a whole input, yielding arrays of records (up to `batch` each) as chunks arrive.
 * Rejected records go to the policy (here `'fail'` or a function).
 */
export async function* parseBatches<T>(input: ParseInput, factory: ParserFactory<T>, opts: TextFormatOptions, batch = 1024): AsyncGenerator<T[]> {
  const name = opts.name ?? (typeof input === 'string' ? '<text>' : input instanceof Uint8Array ? '<bytes>' : '<stream>');
  const sink = new RejectSink(checkOnError(opts.onError, false, 'parse'));
  const parser = factory(name, undefined, sink);
  const reader = chunkReader(input, opts.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  try {
    let out: T[] = [];
    for (;;) {
      const st = parser.parse(out as (T | RejectedRecord)[], batch - out.length);
      if (st === PARSE_FULL) {
        yield out;
        out = [];
        continue;
      }
      if (st === PARSE_DONE) break;
      let c = reader.take();
      while (c === undefined) {
        await reader.ready();
        c = reader.take();
      }
      if (c === null) parser.end();
      else parser.push(c);
    }
    if (out.length > 0) yield out;
  } finally {
    await reader.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The source

/** A source's replay position: which of its inputs, and where in it. */
export interface TextSourcePosition extends ParserPosition {
  /** Index of the input in the source's list of inputs. */
  input: number;
}

/** Options of {@link textSource}. */
export interface TextSourceOptions {
  /** Display name of the format for messages, e.g. `readCsv`. */
  what: string;
  onError: OnError;
  chunkBytes?: number;
  /** Where paths are opened: the platform's file access (undefined: no file system here). */
  files?: () => Promise<FileAccess | undefined>;
}

/** A file source; `createReader` also takes a position to resume from (a restored checkpoint). */
export interface TextSourceSpec<T> extends SourceSpec<T | RejectedRecord> {
  createReader(subtaskIndex: number, parallelism: number, from?: TextSourcePosition): Omit<SourceReader<T | RejectedRecord>, 'position'> & { position(): TextSourcePosition };
  /** The inputs, in order (subtask s of p reads a contiguous slice of them). */
  readonly inputs: readonly InputRef[];
}

/**
 * A bounded source over one or more inputs of one format. Replayable when every input is (paths and
 * in-memory inputs are, streams are not). Several inputs are split over subtasks in contiguous
 * slices; a single input is read by subtask 0 (the others end at once).
 *
 * The runtime's `poll()` is synchronous and file reads are not: while the file is being opened or the
 * next chunk is on its way, `poll()` answers with no records (and `true`) and `ready()` hands the
 * executor the promise of that open or read, so it sleeps instead of polling again; read-ahead keeps
 * several reads in flight so that the chunks completed meanwhile arrive together.
 */
export function textSource<T>(inputs: InputRef[], factory: ParserFactory<T>, opts: TextSourceOptions): TextSourceSpec<T> {
  const replayable = inputs.every((i) => i.kind !== 'stream');
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new SluiceError(`${opts.what}: chunkBytes must be an integer >= 1`, { domain: 'user' });
  return {
    bounded: true,
    replayable,
    inputs,
    createReader(subtask, parallelism, from) {
      const [first, last] = splitRange(inputs.length, subtask, parallelism);
      let index = from ? Math.max(first, from.input) : first;
      let restore: ParserPosition | undefined = from && from.input === index ? from : undefined;
      let parser: RecordParser<T> | undefined;
      let reader: ChunkReader | undefined;
      let opening: Promise<void> | undefined;
      let openError: unknown;
      let failed = false;
      /** What the last poll() stopped on: the file being opened or the next chunk being read. */
      let waiting: Promise<void> | undefined;
      let context: ErrorContext = { subtask };
      let sink = new RejectSink(opts.onError, context);
      const closeReader = (): void => {
        const r = reader;
        reader = undefined;
        void r?.close().catch(() => undefined);
      };
      const startInput = (): void => {
        const input = inputs[index]!;
        const start = restore?.byteOffset ?? 0;
        parser = factory(input.name, restore, sink);
        restore = undefined;
        if (input.kind === 'bytes') reader = chunkReader(input.bytes, chunkBytes, start);
        else if (input.kind === 'stream') {
          if (start !== 0) throw new SluiceError(`${opts.what}: cannot resume '${input.name}' at byte ${start}: a stream is not replayable`, { domain: 'user', context });
          reader = chunkReader(input.stream, chunkBytes);
        } else {
          const path = input.name;
          opening = (async () => {
            const fa = await opts.files?.();
            if (!fa) {
              throw new SluiceError(
                `${opts.what}('${path}'): this runtime has no file system; pass the data as { text }, { bytes } or a ReadableStream`,
                { domain: 'user', context },
              );
            }
            const file = await fa.open(path);
            reader = fileChunkReader(file, start, chunkBytes);
          })().then(
            () => {
              opening = undefined;
            },
            (e) => {
              opening = undefined;
              openError = e;
            },
          );
        }
      };
      return {
        open(ctx: OperatorContext) {
          context = { operator: ctx.operatorName, subtask: ctx.subtaskIndex };
          sink = new RejectSink(opts.onError, context);
        },
        poll(out, max) {
          waiting = undefined;
          if (failed) return false;
          const goal = out.length + max; // `out` need not be empty
          try {
            while (index < last) {
              if (parser === undefined) startInput();
              if (openError !== undefined) throw openError;
              if (opening !== undefined) {
                waiting = opening; // still opening the file
                return true;
              }
              const p = parser!;
              const st = p.parse(out, goal - out.length);
              if (st === PARSE_FULL) return true;
              if (st === PARSE_DONE) {
                closeReader();
                parser = undefined;
                index++;
                continue;
              }
              const c = reader!.take();
              if (c === undefined) {
                waiting = reader!.ready(); // the next chunk is on its way
                return true;
              }
              if (c === null) p.end();
              else p.push(c);
            }
            return false;
          } catch (e) {
            failed = true;
            closeReader();
            throw e instanceof SluiceError ? e.withContext(context) : userFailure(e, context);
          }
        },
        ready() {
          return waiting;
        },
        position(): TextSourcePosition {
          if (index >= last) return { input: last, byteOffset: 0, line: 1 };
          if (parser === undefined) return { input: index, byteOffset: restore?.byteOffset ?? 0, line: restore?.line ?? 1, ...(restore?.header ? { header: restore.header } : {}) };
          return { input: index, ...parser.position() };
        },
        close() {
          closeReader();
        },
      };
    },
  };
}

/** Counts line feeds in `b[from, to)`: the line number of a position inside a record. */
export function countLf(b: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) if (b[i] === 0x0a) n++;
  return n;
}

/**
 * The file access of `platform`, or of the detected platform; `undefined` where there is no file
 * system (workerd, browsers).
 */
export async function platformFiles(platform?: { readonly files?: FileAccess }): Promise<FileAccess | undefined> {
  if (platform) return platform.files;
  try {
    const { detectPlatform } = await import('../platform/detect.ts');
    return (await detectPlatform()).files;
  } catch {
    return undefined; // e.g. workerd without kernels handed in: no file system there either
  }
}
