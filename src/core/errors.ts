// Owns the typed errors of the engine: every failure a user can act on is a SluiceError subclass
// carrying a domain (user / external / internal), a retry hint, and where it happened.

/** Who is at fault: the job's code or data, something outside (a server, a file), or Sluice itself. */
export type ErrorDomain = 'user' | 'external' | 'internal';

/** Where an error happened, as far as it is known. */
export interface ErrorContext {
  /** Name of the operator, e.g. `"Map(parsePrice)"`. */
  operator?: string;
  /** Index of the parallel subtask. */
  subtask?: number;
  /** Index of the offending record within its batch or input. */
  recordIndex?: number;
}

/**
 * Base class of every error Sluice raises on purpose.
 *
 * @example
 * try { await env.execute(); } catch (e) {
 *   if (e instanceof SluiceError) console.error(e.domain, e.context.operator, e.message);
 * }
 */
export class SluiceError extends Error {
  readonly domain: ErrorDomain;
  readonly retryable: boolean;
  readonly context: ErrorContext;
  constructor(message: string, opts: { domain?: ErrorDomain; retryable?: boolean; context?: ErrorContext; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.domain = opts.domain ?? 'internal';
    this.retryable = opts.retryable ?? false;
    this.context = { ...opts.context };
  }
  /** A copy of this error that also names the operator/subtask it surfaced in (keeps the first one set). */
  withContext(ctx: ErrorContext): this {
    for (const k of Object.keys(ctx) as (keyof ErrorContext)[]) {
      if (this.context[k] === undefined && ctx[k] !== undefined) (this.context as Record<string, unknown>)[k] = ctx[k];
    }
    const where = describeContext(this.context);
    if (where && !this.message.includes(where)) this.message = `${this.message} [${where}]`;
    return this;
  }
}

export function describeContext(c: ErrorContext): string {
  const parts: string[] = [];
  if (c.operator !== undefined) parts.push(`operator ${c.operator}`);
  if (c.subtask !== undefined) parts.push(`subtask ${c.subtask}`);
  if (c.recordIndex !== undefined) parts.push(`record ${c.recordIndex}`);
  return parts.join(', ');
}

/** Why a value does not fit its field. */
export type FieldErrorReason = 'wrong-type' | 'overflow' | 'missing' | 'not-integer' | 'unencodable';

/**
 * A value does not fit its schema field: wrong type, integer overflow, a string in a number field,
 * a missing non-nullable field, or an `any` value MessagePack cannot encode.
 */
export class FieldValueError extends SluiceError {
  constructor(
    readonly field: string,
    readonly reason: FieldErrorReason,
    readonly expected: string,
    readonly value: unknown,
    context: ErrorContext = {},
  ) {
    super(`field '${field}' expects ${expected} but got ${previewValue(value)} (${reason})`, { domain: 'user', context });
    this.withContext(context);
  }
}

/** Batch bytes are truncated, corrupt, or not a batch at all. */
export class CorruptBatchError extends SluiceError {
  constructor(detail: string, context: ErrorContext = {}) {
    super(`corrupt batch: ${detail}`, { domain: 'external', context });
    this.withContext(context);
  }
}

/** A batch was written with a different schema than the one reading it. */
export class SchemaMismatchError extends SluiceError {
  constructor(detail: string, context: ErrorContext = {}) {
    super(`schema mismatch: ${detail}`, { domain: 'user', context });
    this.withContext(context);
  }
}

/** A user function threw; the original error is the `cause`. */
export class UserFunctionError extends SluiceError {
  constructor(cause: unknown, context: ErrorContext = {}) {
    super(`user function failed: ${cause instanceof Error ? cause.message : String(cause)}`, { domain: 'user', context, cause });
    this.withContext(context);
  }
}

/** The job was built wrongly (bad parallelism, unknown field, a cycle, ...). */
export class JobDefinitionError extends SluiceError {
  constructor(message: string, context: ErrorContext = {}) {
    super(message, { domain: 'user', context });
    this.withContext(context);
  }
}

/**
 * The job was cancelled (`JobClient.cancel()` or the `signal` given to `execute`).
 * @example
 * await job.result.catch((e) => { if (!(e instanceof JobCancelledError)) throw e; });
 */
export class JobCancelledError extends SluiceError {
  constructor(jobName: string, reason?: unknown) {
    super(`job '${jobName}' was cancelled`, { domain: 'user', cause: reason });
  }
}

/** Managed memory cannot satisfy a request within its budget. */
export class MemoryBudgetError extends SluiceError {
  constructor(message: string, context: ErrorContext = {}) {
    super(message, { domain: 'user', context });
    this.withContext(context);
  }
}

/** A record for an error message: short JSON (≤ 80 characters) for objects, else {@link previewValue}. */
export function previewRecord(record: unknown): string {
  if (record !== null && typeof record === 'object' && !(record instanceof Uint8Array)) {
    try {
      const json = JSON.stringify(record);
      if (json !== undefined) return json.length > 80 ? json.slice(0, 80) + '…' : json;
    } catch {
      // bigint or a cycle: the short form
    }
  }
  return previewValue(record);
}

/** A short, safe rendering of an offending value for an error message. */
export function previewValue(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v instanceof Uint8Array) return `Uint8Array(${v.length})`;
  if (Array.isArray(v)) return `array(${v.length})`;
  if (typeof v === 'function') return 'function';
  return typeof v === 'object' ? `object` : typeof v;
}

/** Where in a text input (a file, a stream) a malformed record was found. */
export interface InputPosition {
  /** The file path, or the name given to a stream / in-memory input. */
  source: string;
  /** 1-based line number (of the field, for a record spanning lines). */
  line: number;
  /** 1-based column (field) number, when the problem is in one field. */
  column?: number;
  /** The schema field (or header name) of that column, when known. */
  field?: string;
  /** Byte offset of the record's first byte in the input. */
  byteOffset: number;
}

/**
 * A line (record) of a text input cannot be read: an unterminated quote, a wrong number of fields,
 * a value that does not convert to its field's type, invalid JSON. Names the source, the 1-based line,
 * the column / field and the offending text (truncated to 80 characters).
 *
 * @example
 * try { await env.execute(); } catch (e) {
 *   if (e instanceof MalformedInputError) console.error(e.position.source, e.position.line, e.position.field, e.text);
 * }
 */
export class MalformedInputError extends SluiceError {
  constructor(
    readonly position: InputPosition,
    /** What is wrong, e.g. `expected an i32`. */
    readonly reason: string,
    /** The offending text (a field's text or the line), truncated. */
    readonly text: string,
    context: ErrorContext = {},
  ) {
    const where = `${position.source}:${position.line}${position.column !== undefined ? `, column ${position.column}` : ''}${position.field !== undefined ? ` ('${position.field}')` : ''}`;
    super(`malformed input at ${where}: ${reason}: ${previewText(text)}`, { domain: 'user', context });
    this.withContext(context);
  }
}

/** The first 80 characters of `s`, JSON-quoted, with an ellipsis if cut. */
export function previewText(s: string): string {
  return JSON.stringify(s.length > 80 ? s.slice(0, 80) + '…' : s);
}
