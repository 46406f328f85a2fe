// Owns the plain-TypeScript reference of every WASM kernel (validate, hash, partition, project,
// gather, compare, segment pool bookkeeping is checked directly in its test). Written from the layout
// and rules in abi/abi.ts, reading bytes with DataView, without looking at assembly/: slow and obvious
// on purpose. The differential tests in test/kernels/ hold the kernels to these.

import type { FieldKind } from '../../src/core/schema.ts';
import { fingerprint, isVar, type RefField } from './batch.ts';

export const DONE = 0;
export const FULL = 1;
export const CORRUPT = 2;
export const SCHEMA_MISMATCH = 3;

/** A resolved key field. */
export interface RefKey {
  field: number;
  desc?: boolean;
  nullsFirst?: boolean;
}

const dvOf = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const bitmapBytes = (n: number) => Math.ceil(n / 64) * 8;
const slotOffset = (n: number, i: number) => 8 + bitmapBytes(n) + 8 * i;

function rowIsNull(row: Uint8Array, i: number): boolean {
  return (row[8 + Math.floor(i / 8)]! & (1 << i % 8)) !== 0;
}

/** Rows of a valid batch as sub-arrays (row bytes, header included). */
export function batchRows(batch: Uint8Array): Uint8Array[] {
  const dv = dvOf(batch);
  const count = dv.getUint32(8, true);
  const rows: Uint8Array[] = [];
  let off = 16;
  for (let i = 0; i < count; i++) {
    const len = dv.getUint32(off, true);
    rows.push(batch.subarray(off, off + len));
    off += len;
  }
  return rows;
}

/** Header fields of a batch. */
export function batchHeader(batch: Uint8Array) {
  const dv = dvOf(batch);
  return { magic: dv.getUint32(0, true), byteLength: dv.getUint32(4, true), rowCount: dv.getUint32(8, true), schemaId: dv.getUint32(12, true) };
}

// ── validate ─────────────────────────────────────────────────────────────────────────────────

/**
 * Reference of validateBatch over the first `len` bytes of `bytes`. Header (magic, byteLength) →
 * CORRUPT; schema id → SCHEMA_MISMATCH; then each row → CORRUPT.
 */
export function refValidate(bytes: Uint8Array, len: number, fields: readonly RefField[]): number {
  if (len < 16 || len > bytes.length) return CORRUPT;
  const dv = dvOf(bytes);
  if (dv.getUint32(0, true) !== 0x31424c53) return CORRUPT;
  const byteLength = dv.getUint32(4, true);
  if (byteLength < 16 || byteLength > len || byteLength % 8 !== 0) return CORRUPT;
  if (dv.getUint32(12, true) !== fingerprint(fields)) return SCHEMA_MISMATCH;
  const n = fields.length;
  const w = bitmapBytes(n);
  const fixed = 8 + w + 8 * n;
  const count = dv.getUint32(8, true);
  let off = 16;
  for (let r = 0; r < count; r++) {
    if (off + 8 > byteLength) return CORRUPT;
    const rl = dv.getUint32(off, true);
    if (rl % 8 !== 0 || rl < fixed || off + rl > byteLength) return CORRUPT;
    const row = bytes.subarray(off, off + rl);
    const rdv = dvOf(row);
    // bitmap bits past the last field must be clear
    for (let bit = n; bit < w * 8; bit++) if (rowIsNull(row, bit)) return CORRUPT;
    for (let i = 0; i < n; i++) {
      const s = slotOffset(n, i);
      const f = fields[i]!;
      if (rowIsNull(row, i)) {
        if (!f.nullable || rdv.getBigUint64(s, true) !== 0n) return CORRUPT;
        continue;
      }
      if (isVar(f.kind)) {
        const o = rdv.getUint32(s, true);
        const l = rdv.getUint32(s + 4, true);
        if (o < fixed || o + l > rl) return CORRUPT;
      } else if (f.kind === 'bool') {
        if (rdv.getBigUint64(s, true) > 1n) return CORRUPT;
      } else if (f.kind === 'i32') {
        const v = rdv.getBigInt64(s, true);
        if (v < -(2n ** 31n) || v >= 2n ** 31n) return CORRUPT;
      }
    }
    off += rl;
  }
  return off === byteLength ? DONE : CORRUPT;
}

// ── hash ─────────────────────────────────────────────────────────────────────────────────────

function mul32(a: number, b: number): number {
  // exact 32-bit product without Math.imul: split b into 16-bit halves
  return (((a * (b & 0xffff)) >>> 0) + (((a * (b >>> 16)) & 0xffff) << 16)) >>> 0;
}
const rotl32 = (x: number, r: number) => ((x << r) | (x >>> (32 - r))) >>> 0;

function finalMix(h: number): number {
  h = (h ^ (h >>> 16)) >>> 0;
  h = mul32(h, 0x85ebca6b);
  h = (h ^ (h >>> 13)) >>> 0;
  h = mul32(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** murmur3_x86_32 straight from Appleby's description: blocks, tail, finalization. */
export function refMurmur3(data: Uint8Array, seed: number): number {
  let h = seed >>> 0;
  const nblocks = Math.floor(data.length / 4);
  const dv = dvOf(data);
  const scramble = (k: number) => mul32(rotl32(mul32(k, 0xcc9e2d51), 15), 0x1b873593);
  for (let i = 0; i < nblocks; i++) {
    h = (h ^ scramble(dv.getUint32(i * 4, true))) >>> 0;
    h = rotl32(h, 13);
    h = (mul32(h, 5) + 0xe6546b64) >>> 0;
  }
  const tail = data.subarray(nblocks * 4);
  if (tail.length > 0) {
    let k = 0;
    for (let i = tail.length - 1; i >= 0; i--) k = ((k << 8) | tail[i]!) >>> 0;
    h = (h ^ scramble(k)) >>> 0;
  }
  return finalMix((h ^ data.length) >>> 0);
}

/** Canonical hash bytes of a non-null field of a row. */
function canonicalBytes(row: Uint8Array, n: number, i: number, kind: FieldKind): Uint8Array {
  const s = slotOffset(n, i);
  const dv = dvOf(row);
  if (isVar(kind)) return row.subarray(dv.getUint32(s, true), dv.getUint32(s, true) + dv.getUint32(s + 4, true));
  const out = new Uint8Array(8);
  if (kind === 'f64') {
    const v = dv.getFloat64(s, true);
    if (Number.isNaN(v)) dvOf(out).setBigUint64(0, 0x7ff8000000000000n, true);
    else if (v !== 0) out.set(row.subarray(s, s + 8));
    return out;
  }
  if (kind === 'i32') {
    dvOf(out).setBigInt64(0, BigInt(dv.getInt32(s, true)), true); // sign extension of the low word
    return out;
  }
  out.set(row.subarray(s, s + 8));
  return out;
}

export function refHashRow(row: Uint8Array, fields: readonly RefField[], keys: readonly RefKey[]): number {
  let h = 0x2a;
  for (const k of keys) {
    if (rowIsNull(row, k.field)) h = finalMix((h ^ 0x85ebca6b) >>> 0);
    else h = refMurmur3(canonicalBytes(row, fields.length, k.field, fields[k.field]!.kind), h);
  }
  return h >>> 0;
}

export function refHashBatch(batch: Uint8Array, fields: readonly RefField[], keys: readonly RefKey[]): number[] {
  return batchRows(batch).map((r) => refHashRow(r, fields, keys));
}

// ── partition ────────────────────────────────────────────────────────────────────────────────

/** Rows of each partition, in input order. */
export function refPartition(batch: Uint8Array, fields: readonly RefField[], keys: readonly RefKey[], parallelism: number, maxParallelism: number): Uint8Array[][] {
  const parts: Uint8Array[][] = Array.from({ length: parallelism }, () => []);
  for (const row of batchRows(batch)) {
    const kg = refHashRow(row, fields, keys) % maxParallelism;
    const p = Number((BigInt(kg) * BigInt(parallelism)) / BigInt(maxParallelism));
    parts[p]!.push(row);
  }
  return parts;
}

// ── project / gather ─────────────────────────────────────────────────────────────────────────

/** The projected row, rebuilt field by field (reserved word kept). */
export function refProjectRow(row: Uint8Array, fields: readonly RefField[], idx: readonly number[]): Uint8Array {
  const n = fields.length;
  const m = idx.length;
  const w2 = bitmapBytes(m);
  const fixed2 = 8 + w2 + 8 * m;
  const dv = dvOf(row);
  const parts: Uint8Array[] = [];
  let varLen = 0;
  for (const f of idx) {
    if (isVar(fields[f]!.kind) && !rowIsNull(row, f)) {
      const s = slotOffset(n, f);
      const o = dv.getUint32(s, true);
      const p = row.subarray(o, o + dv.getUint32(s + 4, true));
      parts.push(p);
      varLen += p.length;
    } else parts.push(new Uint8Array(0));
  }
  const len = Math.ceil((fixed2 + varLen) / 8) * 8;
  const out = new Uint8Array(len);
  const odv = dvOf(out);
  odv.setUint32(0, len, true);
  odv.setUint32(4, dv.getUint32(4, true), true);
  let pos = fixed2;
  idx.forEach((f, j) => {
    const s2 = 8 + w2 + 8 * j;
    if (rowIsNull(row, f)) {
      out[8 + (j >> 3)]! |= 1 << (j & 7);
    } else if (isVar(fields[f]!.kind)) {
      const p = parts[j]!;
      odv.setUint32(s2, pos, true);
      odv.setUint32(s2 + 4, p.length, true);
      out.set(p, pos);
      pos += p.length;
    } else {
      const s = slotOffset(n, f);
      out.set(row.subarray(s, s + 8), s2);
    }
  });
  return out;
}

export function refProject(batch: Uint8Array, fields: readonly RefField[], idx: readonly number[]): Uint8Array[] {
  return batchRows(batch).map((r) => refProjectRow(r, fields, idx));
}

export function refGather(batch: Uint8Array, selection: ArrayLike<number>): Uint8Array[] {
  const rows = batchRows(batch);
  return Array.from(selection, (i) => rows[i]!);
}

// ── compare ──────────────────────────────────────────────────────────────────────────────────

function cmpNum<T extends number | bigint>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function cmpF64(a: number, b: number): number {
  const an = Number.isNaN(a);
  const bn = Number.isNaN(b);
  if (an && bn) return 0;
  if (an) return 1;
  if (bn) return -1;
  return a === b ? 0 : a < b ? -1 : 1; // -0 === +0
}

function cmpBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return cmpNum(a.length, b.length);
}

/** Reference key order of abi/abi.ts: -1, 0 or 1. */
export function refCompareRows(a: Uint8Array, b: Uint8Array, fields: readonly RefField[], keys: readonly RefKey[]): number {
  const n = fields.length;
  for (const k of keys) {
    const na = rowIsNull(a, k.field);
    const nb = rowIsNull(b, k.field);
    if (na && nb) continue;
    if (na || nb) {
      const aFirst = na === !!k.nullsFirst; // a null and nulls first, or b null and nulls last
      return aFirst ? -1 : 1;
    }
    const kind = fields[k.field]!.kind;
    const s = slotOffset(n, k.field);
    const da = dvOf(a);
    const db = dvOf(b);
    let c: number;
    if (isVar(kind)) {
      const pa = a.subarray(da.getUint32(s, true), da.getUint32(s, true) + da.getUint32(s + 4, true));
      const pb = b.subarray(db.getUint32(s, true), db.getUint32(s, true) + db.getUint32(s + 4, true));
      c = cmpBytes(pa, pb);
    } else if (kind === 'f64') c = cmpF64(da.getFloat64(s, true), db.getFloat64(s, true));
    else if (kind === 'bool') c = cmpNum(da.getBigUint64(s, true), db.getBigUint64(s, true));
    else c = cmpNum(da.getBigInt64(s, true), db.getBigInt64(s, true));
    if (c !== 0) return k.desc ? -c : c;
  }
  return 0;
}

// ── sort / merge ─────────────────────────────────────────────────────────────────────────────

/** A key field's value lifted out of the row: null, bigint (ints, timestamp, bool), number (f64), bytes. */
type KeyValue = null | bigint | number | Uint8Array;

/** Materializes the key fields of a row (in key order). */
export function refKeyValues(row: Uint8Array, fields: readonly RefField[], keys: readonly RefKey[]): KeyValue[] {
  const n = fields.length;
  const dv = dvOf(row);
  return keys.map((k) => {
    if (rowIsNull(row, k.field)) return null;
    const s = slotOffset(n, k.field);
    const kind = fields[k.field]!.kind;
    if (isVar(kind)) return row.subarray(dv.getUint32(s, true), dv.getUint32(s, true) + dv.getUint32(s + 4, true));
    if (kind === 'f64') return dv.getFloat64(s, true);
    return dv.getBigInt64(s, true); // i32 is stored sign-extended; bool is 0 or 1
  });
}

/** The abi/abi.ts order over materialized keys. */
export function refCompareKeys(a: readonly KeyValue[], b: readonly KeyValue[], keys: readonly RefKey[]): number {
  for (let i = 0; i < keys.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const k = keys[i]!;
    if (x === null || y === null) {
      if (x === y) continue;
      return (x === null) === !!k.nullsFirst ? -1 : 1;
    }
    let c: number;
    if (typeof x === 'number') c = cmpF64(x, y as number);
    else if (typeof x === 'bigint') c = cmpNum(x, y as bigint);
    else c = cmpBytes(x, y as Uint8Array);
    if (c !== 0) return k.desc ? -c : c;
  }
  return 0;
}

/** Rows of all batches, in key order; equal keys keep input order (Array.prototype.sort is stable). */
export function refSort(batches: readonly Uint8Array[], fields: readonly RefField[], keys: readonly RefKey[]): Uint8Array[] {
  const rows = batches.flatMap((b) => batchRows(b)).map((row) => ({ row, key: refKeyValues(row, fields, keys) }));
  rows.sort((p, q) => refCompareKeys(p.key, q.key, keys));
  return rows.map((r) => r.row);
}

/**
 * The merge of sorted runs (each a list of batches): by key, ties from the lower run first, each
 * run's rows in their order — which is the stable sort of the runs concatenated in run order.
 */
export function refMerge(runs: readonly (readonly Uint8Array[])[], fields: readonly RefField[], keys: readonly RefKey[]): Uint8Array[] {
  return refSort(runs.flat(), fields, keys);
}
