// Owns the envelope of state snapshots: MessagePack (core/any-codec.ts) of a small header object
// plus opaque per-key-group payloads, so a restoring subtask decodes only the key groups it owns.
//
//   keyed snapshot  = msgpack { format, version, maxParallelism, states: [{ name, kind, ttl }],
//                               groups: [[keyGroup, payload: bin], ...] }         (key groups ascending)
//   operator snapshot = msgpack { format, version, lists: [...], broadcast: [...] }
//
// Payload layouts belong to the backend that wrote them (heap-backend.ts, binary-backend.ts).

import { AnyEncodeError, AnyEncoder, decodeAny } from '../core/any-codec.ts';
import { CorruptBatchError, type ErrorContext } from '../core/errors.ts';
import { CorruptSnapshotError, StateSerializationError } from './errors.ts';
import type { StateKind } from './descriptors.ts';

export const SNAPSHOT_VERSION = 1;

/** A fresh copy of a MessagePack encoding (the encoder reuses its buffer). */
export function encodePlain(value: unknown, stateName: string, ctx: ErrorContext = {}): Uint8Array {
  try {
    return new AnyEncoder().encode(value).slice();
  } catch (e) {
    if (e instanceof AnyEncodeError) throw new StateSerializationError(stateName, e.message, ctx, e);
    throw e;
  }
}

export function decodePlain(bytes: Uint8Array, what: string, ctx: ErrorContext = {}): unknown {
  try {
    return decodeAny(bytes, 0, bytes.byteLength);
  } catch (e) {
    if (e instanceof CorruptBatchError) throw new CorruptSnapshotError(`${what}: ${e.message}`, ctx);
    throw e;
  }
}

export interface StateMeta {
  name: string;
  kind: StateKind;
  /** Entries carry last-access timestamps. */
  ttl: boolean;
}

export interface KeyedSnapshot {
  format: string;
  version: number;
  maxParallelism: number;
  states: StateMeta[];
  groups: Array<[number, Uint8Array]>;
}

/** Reads and checks a keyed snapshot envelope of the expected `format`. */
export function readKeyedSnapshot(bytes: Uint8Array, format: string, maxParallelism: number, ctx: ErrorContext = {}): KeyedSnapshot {
  if (!(bytes instanceof Uint8Array)) throw new CorruptSnapshotError('a snapshot must be a Uint8Array', ctx);
  const s = decodePlain(bytes, 'envelope', ctx) as Partial<KeyedSnapshot> | null;
  if (s === null || typeof s !== 'object' || typeof s.format !== 'string') throw new CorruptSnapshotError('not a Sluice state snapshot', ctx);
  if (s.format !== format) throw new CorruptSnapshotError(`snapshot format '${s.format}' cannot be restored by a '${format}' backend`, ctx);
  if (s.version !== SNAPSHOT_VERSION) throw new CorruptSnapshotError(`snapshot version ${String(s.version)} is not supported (expected ${SNAPSHOT_VERSION})`, ctx);
  if (s.maxParallelism !== maxParallelism) {
    throw new CorruptSnapshotError(`snapshot was taken with maxParallelism ${String(s.maxParallelism)}, the job has ${maxParallelism}; max parallelism cannot change across a restore`, ctx);
  }
  if (!Array.isArray(s.states) || !Array.isArray(s.groups)) throw new CorruptSnapshotError('snapshot lacks states or groups', ctx);
  for (const m of s.states) {
    if (!m || typeof m.name !== 'string' || typeof m.kind !== 'string') throw new CorruptSnapshotError('bad state entry in snapshot header', ctx);
  }
  for (const g of s.groups) {
    if (!Array.isArray(g) || typeof g[0] !== 'number' || !(g[1] instanceof Uint8Array) || g[0] < 0 || g[0] >= maxParallelism) {
      throw new CorruptSnapshotError('bad key-group entry in snapshot', ctx);
    }
  }
  return s as KeyedSnapshot;
}
