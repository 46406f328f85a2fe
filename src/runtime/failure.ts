// Owns how failures inside a running job become typed errors naming the operator, subtask and record.

import { type ErrorContext, SluiceError, UserFunctionError } from '../core/errors.ts';

/**
 * The error to raise when user code (or a record it produced) failed at `ctx`: a SluiceError keeps
 * its type and gains the context; anything else becomes a UserFunctionError with it as `cause`.
 */
export function userFailure(e: unknown, ctx: ErrorContext): SluiceError {
  return e instanceof SluiceError ? e.withContext(ctx) : new UserFunctionError(e, ctx);
}

/** The error to raise when the engine itself failed at `ctx` (a bug in Sluice, not in the job). */
export function internalFailure(e: unknown, ctx: ErrorContext): SluiceError {
  if (e instanceof SluiceError) return e.withContext(ctx);
  const err = new SluiceError(`internal error: ${e instanceof Error ? e.message : String(e)}`, { domain: 'internal', context: ctx, cause: e });
  return err.withContext(ctx);
}
