// Owns the typed errors of the state layer: misuse of a state handle (no current key, a write to
// read-only broadcast state, a descriptor re-registered with another kind) and unreadable snapshots.

import { SluiceError, type ErrorContext } from '../core/errors.ts';

/**
 * A state handle was used in a way its contract forbids: keyed state with no current key, a key
 * outside the backend's key groups, writing read-only broadcast state, a name registered twice with
 * different kinds, or a state kind the backend does not support.
 */
export class StateAccessError extends SluiceError {
  constructor(message: string, context: ErrorContext = {}) {
    super(message, { domain: 'user', context });
    this.withContext(context);
  }
}

/** A state value cannot be written into a snapshot (MessagePack cannot encode it); names the state. */
export class StateSerializationError extends SluiceError {
  constructor(
    readonly stateName: string,
    detail: string,
    context: ErrorContext = {},
    cause?: unknown,
  ) {
    super(`state '${stateName}' cannot be snapshotted: ${detail} (give the descriptor a 'codec' to turn values into plain data)`, {
      domain: 'user',
      context,
      cause,
    });
    this.withContext(context);
  }
}

/** Snapshot bytes are not a snapshot of this kind, or are corrupt / from an incompatible version. */
export class CorruptSnapshotError extends SluiceError {
  constructor(detail: string, context: ErrorContext = {}) {
    super(`corrupt state snapshot: ${detail}`, { domain: 'external', context });
    this.withContext(context);
  }
}
