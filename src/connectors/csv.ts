// Owns CSV (RFC 4180): a streaming parser over UTF-8 bytes that converts each field by the schema as
// it goes (no string per field for numbers), the parse functions of the object API, binary batches
// from CSV, and the CSV file source behind `env.readCsv`.
//
// Dialect: fields separated by `delimiter` (default `,`); records end with LF, CRLF or CR; a field
// may be quoted with `"`, inside which the delimiter, CR and LF are literal and `""` is one quote. A
// quote inside an unquoted field is literal. A UTF-8 BOM at the start of the input is skipped. Empty
// lines are skipped (`skipEmptyLines`). An unquoted empty field is null in a nullable field; a quoted
// empty field `""` is the empty string in a string field. Chunks may split the input anywhere.

import { MalformedInputError, SluiceError, type InputPosition } from '../core/errors.ts';
import { BatchWriter, type BatchWriterOptions } from '../core/batch-writer.ts';
import { TYPE_CODES, type Fields, type InferRow, type Schema } from '../core/schema.ts';
import { ADOPTED, ParserBase, parseAllSync } from './parser-base.ts';

export { recordBuilder } from './parser-base.ts';
import { encodeUtf8, readUtf8 } from '../core/utf8.ts';
import {
  PARSE_DONE,
  PARSE_FULL,
  PARSE_NEED_INPUT,
  RejectSink,
  checkOnError,
  countLf,
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

/** Options of the CSV parser and source. */
export interface CsvOptions<F extends Fields = Fields> extends TextFormatOptions {
  /** The fields of each record, converted from text by their types. */
  schema: Schema<F>;
  /**
   * `true` (default): the first record names the columns; schema fields are matched by name (any
   * order; extra columns are ignored; a missing nullable field is null, a missing non-nullable one an
   * error). `false`: columns are the schema's fields in order, and every record has exactly that many.
   */
  header?: boolean;
  /** One ASCII character (default `,`). */
  delimiter?: string;
  /** Skip lines that are completely empty (default true). */
  skipEmptyLines?: boolean;
}

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const K_I32 = TYPE_CODES.i32;
const K_I64 = TYPE_CODES.i64;
const K_F64 = TYPE_CODES.f64;
const K_BOOL = TYPE_CODES.bool;
const K_STRING = TYPE_CODES.string;
const K_BYTES = TYPE_CODES.bytes;
const K_TIMESTAMP = TYPE_CODES.timestamp;

const NEED = -1;
const EOF = -2;
const UNTERMINATED = -3;
const AFTER_QUOTE = -4;

/** Exact powers of ten (10^0 .. 10^22 are exact doubles). */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

const decoder = new TextDecoder('utf-8');

function expectedText(kind: number, big: boolean): string {
  switch (kind) {
    case K_I32: return 'expected an i32 (integer in [-2^31, 2^31))';
    case K_I64: return big ? 'expected an i64 (integer in [-2^63, 2^63))' : 'expected an i64 (safe integer, |v| <= 2^53-1)';
    case K_F64: return 'expected an f64 (decimal number)';
    case K_BOOL: return 'expected a bool (true/false/1/0)';
    case K_TIMESTAMP: return 'expected a timestamp (ISO-8601 or integer epoch milliseconds)';
    default: return 'expected a value';
  }
}

// Value converters set `convFailed` instead of throwing (errors are rare; a flag keeps them cheap).
let convFailed = false;

/** Integer of at most 15 digits from bytes; longer or malformed input sets convFailed. */
function intBytes(b: Uint8Array, s: number, e: number): number {
  let neg = false;
  if (s < e) {
    const c = b[s]!;
    if (c === 0x2d) {
      neg = true;
      s++;
    } else if (c === 0x2b) s++;
  }
  if (s >= e || e - s > 15) {
    convFailed = true;
    return 0;
  }
  let v = 0;
  // hand-inlined hot loop
  for (let i = s; i < e; i++) {
    const d = b[i]! - 48;
    if (d < 0 || d > 9) {
      convFailed = true;
      return 0;
    }
    v = v * 10 + d;
  }
  return neg ? 0 - v : v;
}

const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INF_RE = /^([+-]?)(?:inf|infinity)$/i;

/**
 * f64 from bytes. Fast path (Clinger): at most 15 significant digits and no exponent — the digits
 * as an exact integer divided by an exact power of ten, which IEEE division rounds correctly.
 */
function f64Bytes(b: Uint8Array, s: number, e: number): number {
  let i = s;
  let neg = false;
  if (i < e) {
    const c = b[i]!;
    if (c === 0x2d) {
      neg = true;
      i++;
    } else if (c === 0x2b) i++;
  }
  let m = 0;
  let digits = 0;
  let frac = 0;
  let dot = false;
  // hand-inlined hot loop
  for (; i < e; i++) {
    const c = b[i]!;
    if (c >= 48 && c <= 57) {
      m = m * 10 + (c - 48);
      digits++;
      if (dot) frac++;
    } else if (c === 46 && !dot) dot = true;
    else break;
  }
  if (i === e && digits > 0 && digits <= 15) {
    const v = frac === 0 ? m : m / POW10[frac]!;
    return neg ? -v : v;
  }
  const str = readUtf8(b, s, e - s);
  if (FLOAT_RE.test(str)) return Number(str);
  const inf = INF_RE.exec(str);
  if (inf) return inf[1] === '-' ? -Infinity : Infinity;
  if (str === 'NaN' || str === 'nan') return NaN;
  convFailed = true;
  return 0;
}

/** A 64-bit integer beyond the 15-digit fast path (as number if safe, or bigint). */
function bigIntText(str: string, big: boolean): number | bigint {
  if (!INT_RE.test(str)) {
    convFailed = true;
    return 0;
  }
  const v = BigInt(str);
  if (big) {
    if (v < -(2n ** 63n) || v > 2n ** 63n - 1n) convFailed = true;
    return v;
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n)) convFailed = true;
  return n;
}

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;
const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Milliseconds since the epoch from ISO-8601 text (`2024-05-01`, `2024-05-01T12:00:00.123Z`,
 * `2024-05-01 12:00:00+02:00`; no offset = UTC; fractions beyond milliseconds are truncated) or
 * integer epoch milliseconds. Malformed or out-of-range text sets convFailed.
 */
export function parseTimestamp(str: string): number {
  if (INT_RE.test(str)) {
    const n = Number(str);
    if (!Number.isSafeInteger(n)) convFailed = true;
    return n;
  }
  const m = ISO_RE.exec(str);
  if (!m) {
    convFailed = true;
    return 0;
  }
  const y = +m[1]!, mo = +m[2]!, d = +m[3]!;
  const h = m[4] ? +m[4] : 0, mi = m[5] ? +m[5] : 0, sec = m[6] ? +m[6] : 0;
  const ms = m[7] ? +(m[7] + '00').slice(0, 3) : 0;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (mo < 1 || mo > 12 || d < 1 || d > DAYS[mo - 1]! || (mo === 2 && d === 29 && !leap) || h > 23 || mi > 59 || sec > 59) {
    convFailed = true;
    return 0;
  }
  let off = 0;
  const z = m[8];
  if (z && z !== 'Z' && z !== 'z') {
    const sign = z[0] === '-' ? -1 : 1;
    const digits = z.slice(1).replace(':', '');
    const oh = +digits.slice(0, 2), om = digits.length > 2 ? +digits.slice(2, 4) : 0;
    if (oh > 23 || om > 59) {
      convFailed = true;
      return 0;
    }
    off = sign * (oh * 60 + om) * 60000;
  }
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d); // (Date.UTC maps years 0..99 to 1900..1999)
  t.setUTCHours(h, mi, sec, ms);
  return t.getTime() - off;
}

/** {@link parseTimestamp} answering `undefined` for text that is not a timestamp. */
export function parseTimestampChecked(str: string): number | undefined {
  convFailed = false;
  const v = parseTimestamp(str);
  const failed = convFailed;
  convFailed = false;
  return failed ? undefined : v;
}

/**
 * The streaming CSV parser: bytes in (any chunking), typed records out.
 * Cost: one pass over the bytes per record; a record split across chunks is rescanned only when the
 * buffered bytes have doubled since the last try, so a huge record costs O(its size) overall.
 */
export class CsvParser<F extends Fields = Fields> extends ParserBase<F> implements RecordParser<InferRow<F>> {
  private retryAt = 0;
  // fields of the record being scanned: [fs, fe) byte ranges, fq = 0 unquoted, 1 quoted, 3 quoted with "" inside
  private fs = new Int32Array(16);
  private fe = new Int32Array(16);
  private fq = new Uint8Array(16);
  private recEnd = 0;
  private recNl = 0;
  private badPos = 0;
  /** Column → schema field index (-1: ignored column); set from the header or the schema. */
  private colField: Int32Array = new Int32Array(0);
  private ncols = 0;
  private header: string[] | undefined;
  private needHeader: boolean;
  private readonly delim: number;
  private readonly skipEmpty: boolean;

  constructor(
    schema: Schema<F>,
    readonly sourceName: string,
    private readonly sink: RejectSink,
    opts: { header?: boolean; delimiter?: string; skipEmptyLines?: boolean } = {},
    from?: ParserPosition,
  ) {
    super(schema, from);
    this.delim = delimiterCode(opts.delimiter);
    this.skipEmpty = opts.skipEmptyLines ?? true;
    this.needHeader = opts.header ?? true;
    if (this.needHeader && from?.header) {
      this.useHeader(from.header, from.line);
      this.needHeader = false;
    } else if (!this.needHeader) {
      this.ncols = this.nf;
      this.colField = Int32Array.from({ length: this.nf }, (_, i) => i);
    }
  }

  get rejectedCount(): number {
    return this.sink.count;
  }

  position(): ParserPosition {
    const p: ParserPosition = { byteOffset: this.base + this.start, line: this.line };
    if (this.header) p.header = this.header;
    return p;
  }

  push(chunk: Uint8Array): void {
    if (this.eof) throw new SluiceError('CsvParser.push after end()', { domain: 'internal' });
    if (chunk.length === 0) return;
    const shift = this.appendChunk(chunk);
    this.retryAt = shift === ADOPTED ? 0 : this.retryAt - shift;
  }

  end(): void {
    this.eof = true;
  }

  parse(out: (InferRow<F> | RejectedRecord)[], max: number): ParseStatus {
    let produced = 0;
    if (this.atInputStart) {
      if (this.limit - this.start < 3 && !this.eof) return PARSE_NEED_INPUT;
      const b = this.buf, s = this.start;
      if (this.limit - s >= 3 && b[s] === 0xef && b[s + 1] === 0xbb && b[s + 2] === 0xbf) this.start += 3;
      this.atInputStart = false;
    }
    while (produced < max) {
      if (!this.eof && this.limit < this.retryAt) return PARSE_NEED_INPUT;
      const nf = this.scan();
      if (nf < 0) {
        if (nf === NEED) {
          // wait until the buffered bytes have doubled before scanning this record again
          this.retryAt = this.limit + Math.max(1, this.limit - this.start);
          return PARSE_NEED_INPUT;
        }
        if (nf === EOF) return PARSE_DONE;
        const rej = this.malformedRecord(nf);
        if (rej) {
          out.push(rej);
          produced++;
        }
        continue;
      }
      const startLine = this.line;
      const recStart = this.start;
      this.line += 1 + this.recNl;
      this.start = this.recEnd;
      this.retryAt = 0;
      if (nf === 1 && this.skipEmpty && this.fq[0] === 0 && this.fs[0] === this.fe[0]) continue;
      if (this.needHeader) {
        this.readHeader(nf, recStart, startLine);
        continue;
      }
      const rec = this.convert(nf, recStart, startLine);
      if (rec !== undefined) {
        out.push(rec);
        produced++;
      }
    }
    return PARSE_FULL;
  }

  /**
   * Finds the next record from `start`: its fields' byte ranges and its end (`recEnd`, after the
   * line break), or NEED / EOF / UNTERMINATED / AFTER_QUOTE.
   */
  private scan(): number {
    const b = this.buf;
    const end = this.limit;
    const D = this.delim;
    const eof = this.eof;
    let p = this.start;
    if (p >= end) return eof ? EOF : NEED;
    let nf = 0;
    let nl = 0;
    for (;;) {
      if (nf === this.fs.length) this.growFields();
      if (p < end && b[p] === QUOTE) {
        let q = p + 1;
        let flags = 1;
        for (;;) {
          // hand-inlined hot loop: to the next quote, counting line feeds
          while (q < end) {
            const c = b[q]!;
            if (c === QUOTE) break;
            if (c === LF) nl++;
            q++;
          }
          if (q >= end) return eof ? UNTERMINATED : NEED;
          if (q + 1 >= end) {
            if (!eof) return NEED;
            break;
          }
          if (b[q + 1] === QUOTE) {
            flags = 3;
            q += 2;
            continue;
          }
          break;
        }
        this.fs[nf] = p + 1;
        this.fe[nf] = q;
        this.fq[nf] = flags;
        nf++;
        p = q + 1;
        if (p >= end) {
          // eof here (otherwise NEED was returned above)
          this.recEnd = p;
          this.recNl = nl;
          return nf;
        }
        const c = b[p]!;
        if (c === D) {
          p++;
          continue;
        }
        if (c === LF) {
          this.recEnd = p + 1;
          this.recNl = nl;
          return nf;
        }
        if (c === CR) {
          if (p + 1 >= end && !eof) return NEED;
          this.recEnd = p + 1 < end && b[p + 1] === LF ? p + 2 : p + 1;
          this.recNl = nl;
          return nf;
        }
        this.badPos = p;
        this.recNl = nl;
        return AFTER_QUOTE;
      }
      let q = p;
      // hand-inlined hot loop: to the next delimiter or line break
      while (q < end) {
        const c = b[q]!;
        if (c === D || c === LF || c === CR) break;
        q++;
      }
      if (q >= end && !eof) return NEED;
      this.fs[nf] = p;
      this.fe[nf] = q;
      this.fq[nf] = 0;
      nf++;
      if (q >= end) {
        this.recEnd = q;
        this.recNl = nl;
        return nf;
      }
      const c = b[q]!;
      if (c === D) {
        p = q + 1;
        continue;
      }
      if (c === LF) {
        this.recEnd = q + 1;
        this.recNl = nl;
        return nf;
      }
      if (q + 1 >= end && !eof) return NEED;
      this.recEnd = q + 1 < end && b[q + 1] === LF ? q + 2 : q + 1;
      this.recNl = nl;
      return nf;
    }
  }

  private growFields(): void {
    const n = this.fs.length * 2;
    const fs = new Int32Array(n), fe = new Int32Array(n), fq = new Uint8Array(n);
    fs.set(this.fs);
    fe.set(this.fe);
    fq.set(this.fq);
    this.fs = fs;
    this.fe = fe;
    this.fq = fq;
  }

  /** Text of field `i` (quotes removed, `""` unescaped). */
  private fieldText(i: number): string {
    const s = this.fs[i]!, e = this.fe[i]!;
    const str = readUtf8(this.buf, s, e - s);
    return this.fq[i] === 3 ? str.replace(/""/g, '"') : str;
  }

  /** The record's raw text, without its line break. */
  private rawText(from: number, to: number): string {
    while (to > from && (this.buf[to - 1] === LF || this.buf[to - 1] === CR)) to--;
    const cut = Math.min(to, from + 65536 * 3);
    return decoder.decode(this.buf.subarray(from, cut));
  }

  private useHeader(names: string[], line: number): void {
    this.header = names;
    this.ncols = names.length;
    this.colField = new Int32Array(names.length).fill(-1);
    const seen = new Set<number>();
    names.forEach((n, c) => {
      const f = this.schema.indexOf(n);
      if (f >= 0 && !seen.has(f)) {
        this.colField[c] = f;
        seen.add(f);
      }
    });
    for (let f = 0; f < this.nf; f++) {
      if (!seen.has(f) && !this.nullable[f]) {
        throw new MalformedInputError(
          { source: this.sourceName, line: Math.max(1, line), byteOffset: 0, field: this.names[f] },
          `the header has no column '${this.names[f]}' (a non-nullable field of the schema)`,
          names.join(','),
        );
      }
    }
  }

  private readHeader(nf: number, recStart: number, line: number): void {
    const names: string[] = [];
    for (let i = 0; i < nf; i++) names.push(this.fieldText(i));
    this.needHeader = false;
    try {
      this.useHeader(names, line);
    } catch (e) {
      if (e instanceof MalformedInputError) {
        throw new MalformedInputError({ ...e.position, byteOffset: this.base + recStart }, e.reason, e.text);
      }
      throw e;
    }
  }

  /** Rejects an unterminated quote or a character after a closing quote, and resynchronises. */
  private malformedRecord(code: number): RejectedRecord | undefined {
    const b = this.buf;
    const recStart = this.start;
    // resynchronise at the first line feed after the problem (or the end of input)
    const from = code === UNTERMINATED ? recStart : this.badPos;
    let stop = from;
    while (stop < this.limit && b[stop] !== LF) stop++;
    if (stop >= this.limit && !this.eof) {
      this.retryAt = this.limit + Math.max(1, this.limit - this.start);
      return undefined; // wait for the rest of the line (nothing consumed)
    }
    const recEnd = Math.min(this.limit, stop + 1);
    const startLine = this.line;
    let pos: InputPosition, reason: string, text: string;
    if (code === UNTERMINATED) {
      // the quote that opens the unterminated field: the last field start before the end
      let q = recStart;
      let inQ = false;
      let openAt = recStart;
      for (let i = recStart; i < this.limit; i++) {
        if (b[i] === QUOTE) {
          if (!inQ) openAt = i;
          inQ = !inQ;
        }
      }
      q = openAt;
      const column = this.columnAt(recStart, q);
      pos = { source: this.sourceName, line: startLine + countLf(b, recStart, q), column, byteOffset: this.base + recStart };
      const f = this.fieldOfColumn(column);
      if (f !== undefined) pos.field = f;
      reason = 'unterminated quoted field (no closing quote before the end of input)';
      text = decoder.decode(b.subarray(q, Math.min(this.limit, q + 120)));
    } else {
      const column = this.columnAt(recStart, this.badPos);
      pos = { source: this.sourceName, line: startLine + this.recNl, column, byteOffset: this.base + recStart };
      const f = this.fieldOfColumn(column);
      if (f !== undefined) pos.field = f;
      reason = 'unexpected character after a closing quote (expected a delimiter or a line break)';
      if (this.recNl > 0) reason += ` in a record that starts at line ${startLine}`;
      let fs = this.badPos - 1;
      while (fs > recStart && b[fs - 1] !== this.delim && b[fs - 1] !== LF) fs--;
      let fe = this.badPos;
      while (fe < this.limit && fe < this.badPos + 80 && b[fe] !== this.delim && b[fe] !== LF && b[fe] !== CR) fe++;
      text = decoder.decode(b.subarray(fs, fe));
    }
    const raw = this.rawText(recStart, recEnd);
    this.line += 1 + countLf(b, recStart, stop);
    this.start = recEnd;
    this.retryAt = 0;
    if (this.needHeader) {
      throw new MalformedInputError(pos, `malformed header: ${reason}`, text);
    }
    return this.sink.reject(pos, reason, text, raw);
  }

  /** 1-based column of byte `at` of the record starting at `from` (quote-aware). */
  private columnAt(from: number, at: number): number {
    let col = 1;
    let inQ = false;
    for (let i = from; i < at; i++) {
      const c = this.buf[i];
      if (c === QUOTE) inQ = !inQ;
      else if (c === this.delim && !inQ) col++;
    }
    return col;
  }

  private fieldOfColumn(column: number): string | undefined {
    const f = this.colField[column - 1];
    if (f !== undefined && f >= 0) return this.names[f];
    return this.header?.[column - 1];
  }

  private reject(recStart: number, line: number, column: number | undefined, reason: string, text: string): RejectedRecord | undefined {
    const pos: InputPosition = { source: this.sourceName, line, byteOffset: this.base + recStart };
    if (column !== undefined) {
      pos.column = column;
      const f = this.fieldOfColumn(column);
      if (f !== undefined) pos.field = f;
    }
    return this.sink.reject(pos, reason, text, this.rawText(recStart, this.recEnd));
  }

  /** Converts the scanned record by the schema; a record that does not convert goes to the sink. */
  private convert(nf: number, recStart: number, line: number): InferRow<F> | RejectedRecord | undefined {
    if (nf !== this.ncols) {
      return this.reject(recStart, line, undefined, `expected ${this.ncols} fields${this.header ? ' (as the header)' : ''}, got ${nf}`, this.rawText(recStart, this.recEnd));
    }
    const b = this.buf;
    const vals = this.vals;
    const kinds = this.kinds;
    const colField = this.colField;
    const fs = this.fs, fe = this.fe, fq = this.fq;
    if (this.header) vals.fill(null);
    // hand-inlined hot loop: one switch per field over precomputed kinds
    for (let c = 0; c < nf; c++) {
      const f = colField[c]!;
      if (f < 0) continue;
      const s = fs[c]!, e = fe[c]!, q = fq[c]!;
      const kind = kinds[f]!;
      if (s === e && (q === 0 || kind !== K_STRING)) {
        if (this.nullable[f]) {
          vals[f] = null;
          continue;
        }
        if (kind === K_STRING) {
          vals[f] = '';
          continue;
        }
        return this.reject(recStart, line + countLf(b, recStart, s), c + 1, `${expectedText(kind, this.big[f] === 1)}, got an empty field`, '');
      }
      convFailed = false;
      let v: unknown;
      switch (kind) {
        case K_STRING:
          v = q === 3 ? readUtf8(b, s, e - s).replace(/""/g, '"') : readUtf8(b, s, e - s);
          break;
        case K_F64:
          v = f64Bytes(b, s, e);
          break;
        case K_I32: {
          const x = intBytes(b, s, e);
          if ((x | 0) !== x) convFailed = true;
          v = x;
          break;
        }
        case K_I64:
          if (e - s <= 15 && !this.big[f]) v = intBytes(b, s, e);
          else v = bigIntText(this.fieldText(c), this.big[f] === 1);
          break;
        case K_TIMESTAMP: {
          const x = intBytes(b, s, e);
          if (!convFailed) {
            v = x;
            break;
          }
          convFailed = false;
          v = parseTimestamp(this.fieldText(c));
          break;
        }
        case K_BOOL:
          v = boolBytes(b, s, e);
          break;
        case K_BYTES:
          v = q === 3 ? encodeUtf8(this.fieldText(c)) : b.slice(s, e);
          break;
        default:
          v = this.fieldText(c);
      }
      if (convFailed) {
        return this.reject(recStart, line + countLf(b, recStart, s), c + 1, expectedText(kind, this.big[f] === 1), this.fieldText(c));
      }
      vals[f] = v;
    }
    return this.build(vals) as InferRow<F>;
  }
}

function boolBytes(b: Uint8Array, s: number, e: number): boolean {
  const n = e - s;
  if (n === 1) {
    const c = b[s];
    if (c === 0x31) return true;
    if (c === 0x30) return false;
  } else if (n === 4) {
    if ((b[s]! | 0x20) === 0x74 && (b[s + 1]! | 0x20) === 0x72 && (b[s + 2]! | 0x20) === 0x75 && (b[s + 3]! | 0x20) === 0x65) return true;
  } else if (n === 5) {
    if ((b[s]! | 0x20) === 0x66 && (b[s + 1]! | 0x20) === 0x61 && (b[s + 2]! | 0x20) === 0x6c && (b[s + 3]! | 0x20) === 0x73 && (b[s + 4]! | 0x20) === 0x65) return false;
  }
  convFailed = true;
  return false;
}

function delimiterCode(d: string | undefined): number {
  if (d === undefined) return 0x2c;
  if (typeof d !== 'string' || d.length !== 1 || d.charCodeAt(0) >= 0x80 || d === '"' || d === '\n' || d === '\r') {
    throw new SluiceError(`CSV delimiter must be one ASCII character other than a quote or a line break, got ${JSON.stringify(d)}`, { domain: 'user' });
  }
  return d.charCodeAt(0);
}

function checkCsvOptions(opts: CsvOptions<Fields>, what: string): void {
  if (!opts || typeof opts !== 'object' || !opts.schema || !Array.isArray(opts.schema.names)) {
    throw new SluiceError(`${what}: options need a schema, e.g. { schema: schema({ id: t.i64(), name: t.string() }) }`, { domain: 'user' });
  }
  delimiterCode(opts.delimiter);
}

/**
 * Parses CSV into typed records, chunk by chunk, yielding arrays of up to `batch` records. A
 * malformed record throws {@link MalformedInputError} unless `onError` is a function.
 *
 * @example
 * const s = schema({ sym: t.string(), px: t.f64() });
 * for await (const recs of parseCsv('sym,px\nA,1.5\nB,2\n', { schema: s })) console.log(recs);
 */
export function parseCsv<F extends Fields>(input: ParseInput, opts: CsvOptions<F>, batch = 1024): AsyncGenerator<InferRow<F>[]> {
  checkCsvOptions(opts as CsvOptions<Fields>, 'parseCsv');
  return parseBatches<InferRow<F>>(input, (name, from, sink) => new CsvParser(opts.schema, name, sink, opts, from), opts, batch);
}

/**
 * Parses CSV that is all in memory (a string or bytes) synchronously into an array of records.
 *
 * @example
 * parseCsvSync('a,b\n1,x\n', { schema: schema({ a: t.i32(), b: t.string() }) }) // [{ a: 1, b: 'x' }]
 */
export function parseCsvSync<F extends Fields>(input: string | Uint8Array, opts: CsvOptions<F>): InferRow<F>[] {
  checkCsvOptions(opts as CsvOptions<Fields>, 'parseCsvSync');
  const p = new CsvParser(opts.schema, opts.name ?? (typeof input === 'string' ? '<text>' : '<bytes>'), new RejectSink(checkOnError(opts.onError, false, 'parseCsvSync')), opts);
  return parseAllSync(p, input);
}

/**
 * Parses CSV straight into binary row batches (see abi/abi.ts) of `batchBytes` each (default 32 KiB).
 * One scratch record is reused, so no object per row is kept.
 *
 * @example
 * for await (const batch of csvToBatches(file, { schema: s })) send(batch);
 */
export async function* csvToBatches<F extends Fields>(input: ParseInput, opts: CsvOptions<F> & BatchWriterOptions & { batchBytes?: number }): AsyncGenerator<Uint8Array> {
  const size = Math.max(64, opts.batchBytes ?? 32768) & ~7;
  let w = new BatchWriter(opts.schema, new ArrayBuffer(size), opts);
  for await (const recs of parseCsv(input, opts)) {
    for (const r of recs) {
      if (!w.write(r)) {
        yield w.bytes(w.finish());
        w = new BatchWriter(opts.schema, new ArrayBuffer(size), { ...opts, startIndex: w.recordIndex });
        w.write(r);
      }
    }
  }
  if (w.rowCount > 0) yield w.bytes(w.finish());
}

/**
 * The CSV file source behind `env.readCsv`: bounded, replayable unless it reads a stream.
 * With `onError: 'side-output'` it emits {@link RejectedRecord}s among the records (the environment
 * splits them off).
 */
export function csvSource<F extends Fields>(input: SourceInput, opts: CsvOptions<F>, env: Omit<TextSourceOptions, 'what' | 'onError' | 'chunkBytes'>): TextSourceSpec<InferRow<F>> {
  checkCsvOptions(opts as CsvOptions<Fields>, 'readCsv');
  const onError = checkOnError(opts.onError, true, 'readCsv');
  const inputs = sourceInputs(input, 'readCsv');
  if (opts.name !== undefined && inputs.length === 1 && inputs[0]!.kind !== 'path') inputs[0]!.name = opts.name;
  return textSource<InferRow<F>>(inputs, (name, from, sink) => new CsvParser(opts.schema, name, sink, opts, from), {
    ...env,
    what: 'readCsv',
    onError,
    ...(opts.chunkBytes !== undefined ? { chunkBytes: opts.chunkBytes } : {}),
  });
}


