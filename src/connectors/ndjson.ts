// Owns NDJSON (newline-delimited JSON, one object per line): a streaming parser over UTF-8 bytes
// that checks each object's fields against the schema, the parse functions of the object API, and the
// NDJSON file source behind `env.readNdjson`.
//
// Lines end with LF (a CR before it is JSON whitespace). A JSON string cannot hold a raw line feed, so
// every LF byte ends a line whatever the chunking; lines are found in bytes and only whole lines are
// decoded. Blank lines are skipped.

import { SluiceError, type InputPosition } from '../core/errors.ts';
import { TYPE_CODES, type Fields, type InferRow, type Schema } from '../core/schema.ts';
import { ADOPTED, ParserBase, parseAllSync } from './parser-base.ts';
import { encodeUtf8, readUtf8 } from '../core/utf8.ts';
import { parseTimestampChecked } from './csv.ts';
import {
  PARSE_DONE,
  PARSE_FULL,
  PARSE_NEED_INPUT,
  RejectSink,
  checkOnError,
  parseBatches,
  sourceInputs,
  textSource,
  type ParseInput,
  type ParseStatus,
  type ParserPosition,
  type RecordParser,
  type RejectedRecord,
  type SourceInput,
  type TextFormatOptions,
  type TextSourceOptions,
  type TextSourceSpec,
} from './files.ts';

/** Options of the NDJSON parser and source. */
export interface NdjsonOptions<F extends Fields = Fields> extends TextFormatOptions {
  /** The fields of each record. A missing or `null` field is null if nullable, else an error. */
  schema: Schema<F>;
  /** A key the schema does not have: `'ignore'` it (default) or reject the line (`'error'`). */
  extraFields?: 'ignore' | 'error';
}

const LF = 0x0a;
const K_I32 = TYPE_CODES.i32;
const K_I64 = TYPE_CODES.i64;
const K_F64 = TYPE_CODES.f64;
const K_BOOL = TYPE_CODES.bool;
const K_STRING = TYPE_CODES.string;
const K_BYTES = TYPE_CODES.bytes;
const K_TIMESTAMP = TYPE_CODES.timestamp;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const DIGITS_RE = /^[+-]?\d+$/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Thrown inside conversion, caught per line: the reason a JSON value does not fit its field. */
const BAD = Symbol('bad');

function expected(kind: number, big: boolean): string {
  switch (kind) {
    case K_I32: return 'expected an i32 (integer in [-2^31, 2^31))';
    case K_I64: return big ? 'expected an i64 (integer, or a string of digits for values beyond 2^53)' : 'expected an i64 (safe integer)';
    case K_F64: return 'expected an f64 (number)';
    case K_BOOL: return 'expected a bool (true/false)';
    case K_STRING: return 'expected a string';
    case K_BYTES: return 'expected bytes (a base64 string)';
    case K_TIMESTAMP: return 'expected a timestamp (integer epoch milliseconds or an ISO-8601 string)';
    default: return 'expected a value';
  }
}

function convertValue(v: unknown, kind: number, big: boolean): unknown {
  switch (kind) {
    case K_F64:
      return typeof v === 'number' ? v : BAD;
    case K_STRING:
      return typeof v === 'string' ? v : BAD;
    case K_I32:
      return typeof v === 'number' && (v | 0) === v ? v : BAD;
    case K_I64:
      if (typeof v === 'number') {
        if (!Number.isSafeInteger(v)) return BAD; // JSON.parse already rounded a larger literal
        return big ? BigInt(v) : v;
      }
      if (big && typeof v === 'string' && DIGITS_RE.test(v)) {
        const b = BigInt(v);
        return b < I64_MIN || b > I64_MAX ? BAD : b;
      }
      return BAD;
    case K_BOOL:
      return typeof v === 'boolean' ? v : BAD;
    case K_TIMESTAMP:
      if (typeof v === 'number') return Number.isSafeInteger(v) ? v : BAD;
      if (typeof v === 'string') return parseTimestampChecked(v) ?? BAD;
      return BAD;
    case K_BYTES:
      if (typeof v !== 'string' || v.length % 4 !== 0 || !BASE64_RE.test(v)) return BAD;
      return Uint8Array.from(atob(v), (c) => c.charCodeAt(0));
    default:
      return v;
  }
}

/**
 * The streaming NDJSON parser: bytes in (any chunking), typed records out.
 * Cost: one native byte search per line, one decode and one `JSON.parse` per line.
 */
export class NdjsonParser<F extends Fields = Fields> extends ParserBase<F> implements RecordParser<InferRow<F>> {
  /** Bytes from `start` known to hold no LF (so a long line is not searched again from its start). */
  private searched = 0;
  private readonly known: Set<string>;
  private readonly strictKeys: boolean;

  constructor(
    schema: Schema<F>,
    readonly sourceName: string,
    private readonly sink: RejectSink,
    opts: { extraFields?: 'ignore' | 'error' } = {},
    from?: ParserPosition,
  ) {
    super(schema, from);
    this.known = new Set(this.names);
    const extra = opts.extraFields ?? 'ignore';
    if (extra !== 'ignore' && extra !== 'error') throw new SluiceError(`extraFields must be 'ignore' or 'error', got ${String(extra)}`, { domain: 'user' });
    this.strictKeys = extra === 'error';
  }

  get rejectedCount(): number {
    return this.sink.count;
  }

  position(): ParserPosition {
    return { byteOffset: this.base + this.start, line: this.line };
  }

  push(chunk: Uint8Array): void {
    if (this.eof) throw new SluiceError('NdjsonParser.push after end()', { domain: 'internal' });
    if (chunk.length === 0) return;
    // `searched` counts from `start`, so it survives compaction; an adopted chunk starts a fresh search
    if (this.appendChunk(chunk) === ADOPTED) this.searched = 0;
  }

  end(): void {
    this.eof = true;
  }

  parse(out: (InferRow<F> | RejectedRecord)[], max: number): ParseStatus {
    if (this.atInputStart) {
      if (this.limit - this.start < 3 && !this.eof) return PARSE_NEED_INPUT;
      const b = this.buf, s = this.start;
      if (this.limit - s >= 3 && b[s] === 0xef && b[s + 1] === 0xbb && b[s + 2] === 0xbf) this.start += 3;
      this.atInputStart = false;
    }
    let produced = 0;
    const b = this.buf;
    while (produced < max) {
      const s = this.start;
      if (s >= this.limit) return this.eof ? PARSE_DONE : PARSE_NEED_INPUT;
      let nl = b.indexOf(LF, s + this.searched);
      if (nl < 0 || nl >= this.limit) {
        if (!this.eof) {
          this.searched = this.limit - s;
          return PARSE_NEED_INPUT;
        }
        nl = this.limit;
      }
      this.searched = 0;
      const line = this.line;
      this.line++;
      this.start = nl < this.limit ? nl + 1 : nl;
      let e = nl;
      if (e > s && b[e - 1] === 0x0d) e--;
      if (e === s) continue;
      const text = readUtf8(b, s, e - s);
      const r = this.convert(text, s, line);
      if (r !== undefined) {
        out.push(r);
        produced++;
      }
    }
    return PARSE_FULL;
  }

  private reject(recStart: number, line: number, field: string | undefined, reason: string, text: string, raw: string): RejectedRecord | undefined {
    const pos: InputPosition = { source: this.sourceName, line, byteOffset: this.base + recStart };
    if (field !== undefined) {
      pos.field = field;
      const i = this.names.indexOf(field);
      if (i >= 0) pos.column = i + 1;
    }
    return this.sink.reject(pos, reason, text, raw);
  }

  private convert(text: string, recStart: number, line: number): InferRow<F> | RejectedRecord | undefined {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      if (text.trim() === '') return undefined; // a whitespace-only line
      return this.reject(recStart, line, undefined, `invalid JSON (${(e as Error)?.message ?? String(e)})`, text, text);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      return this.reject(recStart, line, undefined, `expected a JSON object, got ${obj === null ? 'null' : Array.isArray(obj) ? 'an array' : typeof obj}`, text, text);
    }
    const o = obj as Record<string, unknown>;
    const vals = this.vals;
    const kinds = this.kinds;
    for (let f = 0; f < this.nf; f++) {
      const name = this.names[f]!;
      const v = o[name];
      if (v === null || v === undefined) {
        if (this.nullable[f]) {
          vals[f] = null;
          continue;
        }
        return this.reject(recStart, line, name, `${expected(kinds[f]!, this.big[f] === 1)}, got ${v === null ? 'null' : 'no such key'}`, v === null ? 'null' : '', text);
      }
      const c = convertValue(v, kinds[f]!, this.big[f] === 1);
      if (c === BAD) return this.reject(recStart, line, name, expected(kinds[f]!, this.big[f] === 1), jsonPreview(v), text);
      vals[f] = c;
    }
    if (this.strictKeys) {
      for (const k in o) {
        if (!this.known.has(k)) return this.reject(recStart, line, k, 'a key the schema does not have (extraFields: error)', k, text);
      }
    }
    return this.build(vals) as InferRow<F>;
  }
}

function jsonPreview(v: unknown): string {
  try {
    const s = JSON.stringify(v) ?? String(v);
    return s.length > 200 ? s.slice(0, 200) : s;
  } catch {
    return String(v);
  }
}

function checkNdjsonOptions(opts: NdjsonOptions<Fields>, what: string): void {
  if (!opts || typeof opts !== 'object' || !opts.schema || !Array.isArray(opts.schema.names)) {
    throw new SluiceError(`${what}: options need a schema, e.g. { schema: schema({ id: t.i64(), name: t.string() }) }`, { domain: 'user' });
  }
}

/**
 * Parses NDJSON into typed records, chunk by chunk, yielding arrays of up to `batch` records. A
 * malformed line throws {@link MalformedInputError} unless `onError` is a function.
 *
 * @example
 * const s = schema({ sym: t.string(), px: t.f64() });
 * for await (const recs of parseNdjson('{"sym":"A","px":1.5}\n', { schema: s })) console.log(recs);
 */
export function parseNdjson<F extends Fields>(input: ParseInput, opts: NdjsonOptions<F>, batch = 1024): AsyncGenerator<InferRow<F>[]> {
  checkNdjsonOptions(opts as NdjsonOptions<Fields>, 'parseNdjson');
  return parseBatches<InferRow<F>>(input, (name, from, sink) => new NdjsonParser(opts.schema, name, sink, opts, from), opts, batch);
}

/**
 * Parses NDJSON that is all in memory synchronously.
 * @example parseNdjsonSync('{"a":1}\n', { schema: schema({ a: t.i32() }) }) // [{ a: 1 }]
 */
export function parseNdjsonSync<F extends Fields>(input: string | Uint8Array, opts: NdjsonOptions<F>): InferRow<F>[] {
  checkNdjsonOptions(opts as NdjsonOptions<Fields>, 'parseNdjsonSync');
  const p = new NdjsonParser(opts.schema, opts.name ?? (typeof input === 'string' ? '<text>' : '<bytes>'), new RejectSink(checkOnError(opts.onError, false, 'parseNdjsonSync')), opts);
  return parseAllSync(p, input);
}

/** The NDJSON file source behind `env.readNdjson` (see `csvSource`). */
export function ndjsonSource<F extends Fields>(input: SourceInput, opts: NdjsonOptions<F>, env: Omit<TextSourceOptions, 'what' | 'onError' | 'chunkBytes'>): TextSourceSpec<InferRow<F>> {
  checkNdjsonOptions(opts as NdjsonOptions<Fields>, 'readNdjson');
  const onError = checkOnError(opts.onError, true, 'readNdjson');
  const inputs = sourceInputs(input, 'readNdjson');
  if (opts.name !== undefined && inputs.length === 1 && inputs[0]!.kind !== 'path') inputs[0]!.name = opts.name;
  return textSource<InferRow<F>>(inputs, (name, from, sink) => new NdjsonParser(opts.schema, name, sink, opts, from), {
    ...env,
    what: 'readNdjson',
    onError,
    ...(opts.chunkBytes !== undefined ? { chunkBytes: opts.chunkBytes } : {}),
  });
}

