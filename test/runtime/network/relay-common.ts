// Owns what the cross-thread network test and its worker (relay-worker.ts) agree on: the record
// shape and schema, the events, the transformation the worker applies, and the messages they exchange.

import { schema, t } from '../../../src/core/schema.ts';

export interface Row {
  id: number;
  v: number;
  s: string;
}

export const rowSchema = schema({ id: t.i32(), v: t.f64(), s: t.string() });

export type Ev = { kind: 'watermark'; timestamp: number } | { kind: 'end-of-input' };

/** What the worker does to each record on its way back. */
export function transform(r: Row): Row {
  return { id: r.id, v: r.v * 2, s: r.s.toUpperCase() };
}

/** The data the test hands the worker at spawn. */
export interface RelayData {
  input: MessagePort;
  output: MessagePort;
  /** 'rows' (binary rows with rowSchema) or 'any' (MessagePack). */
  format: 'rows' | 'any';
  bufferBytes: number;
  credits: number;
}

/** What the worker reports when its input has ended and every buffer it sent came back. */
export interface RelayReport {
  records: number;
  events: number;
  buffersSent: number;
  /** Sent buffers whose ArrayBuffer was detached by the transfer (all of them, if nothing was copied). */
  detached: number;
  maxBuffersInUse: number;
  poolSize: number;
  buffersInUseAtEnd: number;
}
