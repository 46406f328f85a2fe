// Owns how an Error crosses a thread boundary: taking one apart into name, message, stack, own
// properties and cause, and putting it back together as an instance of its class (found by name among
// Sluice's error classes, the standard errors and classes registered with registerErrorClass). Used by
// the MessagePack codec (errors inside records, any-codec.ts) and by the worker failure report
// (structured clone, src/runtime/cluster.ts), so both revive errors the same way.

import * as coreErrors from './errors.ts';
import { SluiceError } from './errors.ts';

/** A class whose instances are errors; its constructor is not run when an error is revived. */
export type ErrorClass = abstract new (...args: any[]) => Error;

const CLASSES = new Map<string, ErrorClass>();

/**
 * Lets errors named `cls.name` be revived as instances of `cls` when they cross threads (a record
 * holding one, or a worker's failure). Sluice's own error classes in src/core/errors.ts and the
 * standard errors are known already; register other classes at module level in the module that
 * defines them, which every thread imports. The last registration of a name wins.
 *
 * @example
 * class BadTrade extends Error { constructor(readonly trade: Trade) { super('bad trade'); this.name = 'BadTrade'; } }
 * registerErrorClass(BadTrade);
 */
export function registerErrorClass(...classes: ErrorClass[]): void {
  for (const c of classes) CLASSES.set(c.name, c);
}

for (const v of Object.values(coreErrors)) {
  if (typeof v === 'function' && v.prototype instanceof Error) registerErrorClass(v as unknown as ErrorClass);
}
registerErrorClass(Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError);

/** The class an error named `name` is revived as: its registered class, else SluiceError. */
export function errorClass(name: string): ErrorClass {
  return CLASSES.get(name) ?? SluiceError;
}

/** An error taken apart. `props` are its own enumerable properties but name, message, stack and cause. */
export interface ErrorParts {
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  readonly props: Record<string, unknown>;
  /** Whether the error has a cause (which may itself be undefined). */
  readonly hasCause: boolean;
  readonly cause: unknown;
}

const SKIPPED = new Set(['name', 'message', 'stack', 'cause']);

/** Takes `e` apart (property values as they are: the caller encodes or clones them). */
export function errorParts(e: Error): ErrorParts {
  const props: Record<string, unknown> = {};
  for (const k of Object.keys(e)) {
    if (SKIPPED.has(k)) continue;
    try {
      props[k] = (e as unknown as Record<string, unknown>)[k];
    } catch (x) {
      props[k] = `[property getter threw: ${x instanceof Error ? x.message : typeof x}]`; // a getter: say so rather than fail
    }
  }
  const stack = typeof e.stack === 'string' ? e.stack : undefined;
  return { name: String(e.name), message: String(e.message), stack, props, hasCause: 'cause' in e, cause: (e as { cause?: unknown }).cause };
}

/**
 * An instance of the class of `p.name` (see {@link errorClass}) with `p`'s message, name, stack,
 * properties and cause, made without running that class's constructor. It is a genuine Error object
 * (made by Error with the class as new.target, not by Object.create), so a structured clone or a
 * debugger still treats it as an error. Never throws for any parts.
 */
export function reviveErrorParts(p: ErrorParts): Error {
  const e = Reflect.construct(Error, [], errorClass(p.name)) as Error;
  const hidden = (k: string, value: unknown): void => {
    Object.defineProperty(e, k, { value, writable: true, configurable: true, enumerable: false });
  };
  hidden('message', p.message);
  hidden('name', p.name);
  if (p.stack !== undefined) hidden('stack', p.stack);
  else delete (e as { stack?: string }).stack; // the stack of this call is nobody's
  // defineProperty, not assignment: a property named __proto__ stays a property
  for (const [k, value] of Object.entries(p.props)) Object.defineProperty(e, k, { value, writable: true, configurable: true, enumerable: true });
  if (p.hasCause) hidden('cause', p.cause);
  return e;
}

/** An error as it crosses threads in a structured clone (a worker's failure report). */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string | undefined;
  /** Own properties that survived a structured clone (domain, context, field, ...). */
  readonly props: Record<string, unknown>;
  readonly cause?: SerializedError | undefined;
}

/** Turns an error into something a structured clone keeps (its class is restored by name on the other side). */
export function serializeError(e: unknown, depth = 0): SerializedError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e), props: {} };
  const p = errorParts(e);
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p.props)) {
    try {
      props[k] = structuredClone(v);
    } catch {
      props[k] = String(v);
    }
  }
  return { name: p.name, message: p.message, stack: p.stack, props, cause: p.cause !== undefined && depth < 3 ? serializeError(p.cause, depth + 1) : undefined };
}

/** The error a worker reported, as an instance of its class where this thread knows it (else a SluiceError with its name). */
export function reviveError(s: SerializedError): Error {
  const cause = s.cause ? reviveError(s.cause) : undefined;
  return reviveErrorParts({ name: s.name, message: s.message, stack: s.stack, props: s.props, hasCause: cause !== undefined, cause });
}
