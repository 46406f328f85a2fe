// Owns the plain-TypeScript reference of the hash aggregation kernels (assembly/agg.ts): GROUP BY with
// count(*), count, sum, min, max, avg over raw rows, and the merge of partial rows, written from the
// rules in bindings/aggregate.ts and abi/abi.ts (DataView, BigInt, a Map keyed by canonical key text),
// not from the kernel. Groups come out in first-seen order, as the kernel's do, so rows compare exactly.

import type { AggSpec } from '../../bindings/aggregate.ts';
import { encodeBatch, encodeRow, F64Bits, isVar, KINDS, randomValue, type RefField, type RefValue } from './batch.ts';
import type { Rng } from './random.ts';

export type RefAggOp = 'count*' | 'count' | 'sum' | 'min' | 'max' | 'avg';

export interface RefAgg {
  op: RefAggOp;
  field: number; // ignored by count*
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/** Partial schema fields: group fields, then accumulator slots (bindings/aggregate.ts). */
export function refPartialFields(fields: readonly RefField[], keys: readonly number[], aggs: readonly RefAgg[]): RefField[] {
  const out: RefField[] = keys.map((k) => fields[k]!);
  for (const a of aggs) {
    if (a.op === 'count*' || a.op === 'count') out.push({ kind: 'i64', nullable: false });
    else {
      const f0 = fields[a.field]!;
      const f = { kind: f0.kind, nullable: f0.nullable || keys.length === 0 };
      const sumKind = f.kind === 'f64' ? 'f64' : 'i64';
      if (a.op === 'sum') out.push({ kind: sumKind, nullable: f.nullable });
      else if (a.op === 'avg') out.push({ kind: sumKind, nullable: false }, { kind: 'i64', nullable: false });
      else out.push(f);
    }
  }
  return out;
}

/** Final schema fields: group fields, then one field per aggregate. */
export function refFinalFields(fields: readonly RefField[], keys: readonly number[], aggs: readonly RefAgg[]): RefField[] {
  const out: RefField[] = keys.map((k) => fields[k]!);
  for (const a of aggs) {
    if (a.op === 'count*' || a.op === 'count') out.push({ kind: 'i64', nullable: false });
    else {
      const f0 = fields[a.field]!;
      const f = { kind: f0.kind, nullable: f0.nullable || keys.length === 0 };
      if (a.op === 'sum') out.push({ kind: f.kind === 'f64' ? 'f64' : 'i64', nullable: f.nullable });
      else if (a.op === 'avg') out.push({ kind: 'f64', nullable: f.nullable });
      else out.push(f);
    }
  }
  return out;
}

type Acc =
  | { op: 'count'; n: bigint }
  | { op: 'sum' | 'min' | 'max'; float: boolean; v: bigint | number | F64Bits | null }
  | { op: 'avg'; float: boolean; sum: bigint | number; n: bigint };

/** A field value as the reference reads it: null; bigint (ints, ts, bool); F64Bits (f64, raw); bytes. */
function readValue(row: Uint8Array, n: number, i: number, kind: string): RefValue {
  if ((row[8 + (i >> 3)]! & (1 << (i & 7))) !== 0) return null;
  const dv = new DataView(row.buffer, row.byteOffset, row.byteLength);
  const s = 8 + Math.ceil(n / 64) * 8 + 8 * i;
  if (kind === 'f64') return new F64Bits(dv.getBigUint64(s, true));
  if (kind === 'string' || kind === 'bytes' || kind === 'any') return row.slice(dv.getUint32(s, true), dv.getUint32(s, true) + dv.getUint32(s + 4, true));
  if (kind === 'bool') return dv.getBigUint64(s, true) !== 0n;
  return dv.getBigInt64(s, true);
}

const f64 = (b: F64Bits): number => new DataView(new BigUint64Array([b.bits]).buffer).getFloat64(0, true);
const bitsOf = (x: number): F64Bits => new F64Bits(new DataView(new Float64Array([x]).buffer).getBigUint64(0, true));

function keyText(v: RefValue, kind: string): string {
  if (v === null) return 'N';
  if (kind === 'f64') {
    const x = f64(v as F64Bits);
    return Number.isNaN(x) ? 'nan' : x === 0 ? 'f0' : `f${(v as F64Bits).bits}`;
  }
  if (v instanceof Uint8Array) return `b${Array.from(v).join(',')}`;
  return `i${String(v)}`;
}

/** f64 order: NaN greatest, -0 = +0. */
function lessF64(x: number, y: number): boolean {
  if (Number.isNaN(x)) return false;
  if (Number.isNaN(y)) return true;
  return x < y;
}

function checked(v: bigint): bigint {
  if (v < I64_MIN || v > I64_MAX) throw new RefOverflow();
  return v;
}

/** An integer sum left the i64 range (the kernel answers STATUS_OVERFLOW). */
export class RefOverflow extends Error {
  constructor() {
    super('i64 overflow');
  }
}

function rowsOf(batch: Uint8Array): Uint8Array[] {
  const dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const rows: Uint8Array[] = [];
  let off = 16;
  for (let i = 0, n = dv.getUint32(8, true); i < n; i++) {
    const len = dv.getUint32(off, true);
    rows.push(batch.subarray(off, off + len));
    off += len;
  }
  return rows;
}

/**
 * Reference GROUP BY. `mode` 'raw': `batches` are of `fields`, grouped by `keys` with `aggs`;
 * 'merge': `batches` are partial rows (of refPartialFields(fields, keys, aggs)) to combine.
 * Returns the groups in first-seen order as encoded partial and final rows. Throws RefOverflow.
 */
export function refAggregate(
  batches: readonly Uint8Array[],
  fields: readonly RefField[],
  keys: readonly number[],
  aggs: readonly RefAgg[],
  mode: 'raw' | 'merge' = 'raw',
): { partial: Uint8Array[]; final: Uint8Array[] } {
  const pf = refPartialFields(fields, keys, aggs);
  const inFields = mode === 'raw' ? fields : pf;
  const n = inFields.length;
  const groups = new Map<string, { key: RefValue[]; accs: Acc[] }>();
  for (const b of batches) {
    for (const row of rowsOf(b)) {
      const keyVals = keys.map((k, i) => (mode === 'raw' ? readValue(row, n, k, fields[k]!.kind) : readValue(row, n, i, pf[i]!.kind)));
      const text = keyVals.map((v, i) => keyText(v, fields[keys[i]!]!.kind)).join('|');
      let g = groups.get(text);
      if (!g) {
        g = {
          key: keyVals,
          accs: aggs.map((a): Acc => {
            const float = a.op !== 'count*' && fields[a.field]!.kind === 'f64';
            if (a.op === 'count*' || a.op === 'count') return { op: 'count', n: 0n };
            if (a.op === 'avg') return { op: 'avg', float, sum: float ? 0 : 0n, n: 0n };
            return { op: a.op, float, v: null };
          }),
        };
        groups.set(text, g);
      }
      let slot = keys.length;
      aggs.forEach((a, j) => {
        const acc = g!.accs[j]!;
        const fk = mode === 'raw' ? a.field : slot;
        const kind = a.op === 'count*' ? 'i64' : inFields[fk]!.kind;
        const v = a.op === 'count*' && mode === 'raw' ? 1n : readValue(row, n, fk, kind);
        slot += a.op === 'avg' ? 2 : 1;
        if (acc.op === 'count') {
          if (mode === 'merge') acc.n += v as bigint;
          else if (a.op === 'count*' || v !== null) acc.n += 1n;
          return;
        }
        if (v === null) return;
        if (acc.op === 'avg') {
          if (acc.float) acc.sum = (acc.sum as number) + f64(v as F64Bits);
          else acc.sum = checked((acc.sum as bigint) + (v as bigint));
          acc.n += mode === 'raw' ? 1n : (readValue(row, n, fk + 1, 'i64') as bigint);
          return;
        }
        if (acc.v === null) {
          acc.v = v as bigint | F64Bits;
          return;
        }
        if (acc.op === 'sum') {
          if (acc.float) acc.v = bitsOf(f64(acc.v as F64Bits) + f64(v as F64Bits));
          else acc.v = checked((acc.v as bigint) + (v as bigint));
        } else if (acc.float) {
          const x = f64(v as F64Bits);
          const cur = f64(acc.v as F64Bits);
          if (acc.op === 'min' ? lessF64(x, cur) : lessF64(cur, x)) acc.v = v as F64Bits;
        } else if (acc.op === 'min' ? (v as bigint) < (acc.v as bigint) : (v as bigint) > (acc.v as bigint)) {
          acc.v = v as bigint;
        }
      });
    }
  }
  const ff = refFinalFields(fields, keys, aggs);
  const partial: Uint8Array[] = [];
  const final: Uint8Array[] = [];
  for (const g of groups.values()) {
    const key = g.key.map((v, i) => (v instanceof Uint8Array && fields[keys[i]!]!.kind === 'string' ? new TextDecoder().decode(v) : v));
    const pv: RefValue[] = [...key];
    const fv: RefValue[] = [...key];
    for (const acc of g.accs) {
      if (acc.op === 'count') {
        pv.push(acc.n);
        fv.push(acc.n);
      } else if (acc.op === 'avg') {
        pv.push(acc.float ? acc.sum : acc.sum, acc.n);
        fv.push(acc.n === 0n ? null : (acc.float ? (acc.sum as number) : Number(acc.sum as bigint)) / Number(acc.n));
      } else {
        pv.push(acc.v);
        fv.push(acc.v);
      }
    }
    partial.push(encodeRow(pf, pv.map((v, i) => asField(v, pf[i]!))));
    final.push(encodeRow(ff, fv.map((v, i) => asField(v, ff[i]!))));
  }
  return { partial, final };
}

/** Adapts a value to what encodeRow expects for the field (i32 as number; strings decoded). */
function asField(v: RefValue, f: RefField): RefValue {
  if (v === null) return null;
  if (f.kind === 'i32') return Number(v as bigint);
  if (isVar(f.kind) && f.kind !== 'string' && !(v instanceof Uint8Array)) return v;
  return v;
}

// ── random cases shared by the kernel and operator tests ─────────────────────────────────────

let seq = 0;
const NUMERIC = ['i32', 'i64', 'f64', 'timestamp'] as const;

export interface Case {
  fields: RefField[];
  keys: number[];
  aggs: RefAgg[];
  batches: Uint8Array[];
}

export function toSpec(a: RefAgg): AggSpec {
  if (a.op === 'count*') return { op: 'count', as: `a${seq++}` };
  return { op: a.op, field: a.field, as: `a${seq++}` };
}

/** Random group fields (any kind, small value pools so groups repeat), numeric value fields, aggs. */
export function randomCase(rng: Rng): Case {
  const nk = rng.pick([0, 1, 1, 2, 2, 3, 4]);
  const nv = rng.range(0, 4);
  const fields: RefField[] = [];
  for (let i = 0; i < nk; i++) fields.push({ kind: rng.pick(KINDS), nullable: rng.bool(0.5) });
  for (let i = 0; i < nv; i++) fields.push({ kind: rng.pick(NUMERIC), nullable: rng.bool(0.5) });
  if (rng.bool(0.3)) fields.reverse();
  const keyIdx = fields.map((_, i) => i).filter((i) => (fields.length - 1 - i < nv) === false || rng.bool(0.1));
  const keys = rng.bool(0.7) ? keyIdx : keyIdx.slice().reverse();
  const valueFields = fields.map((f, i) => ({ f, i })).filter(({ f }) => (NUMERIC as readonly string[]).includes(f.kind));
  const aggs: RefAgg[] = [];
  const na = rng.range(0, 6);
  for (let j = 0; j < na; j++) {
    const op = rng.pick(['count*', 'count', 'sum', 'min', 'max', 'avg'] as const);
    if (op === 'count*') aggs.push({ op, field: 0 });
    else if (op === 'count' && fields.length > 0) aggs.push({ op, field: rng.int(fields.length) });
    else if (valueFields.length > 0) {
      const cands = valueFields.filter(({ f }) => f.kind !== 'timestamp' || op === 'min' || op === 'max' || op === 'count');
      if (cands.length > 0) aggs.push({ op, field: rng.pick(cands).i });
    }
  }
  // value pools per key field: few distinct values (repeats), or many (groups > table capacity)
  const poolSize = rng.pick([1, 3, 10, 50, 400]);
  const pools = fields.map((f) => Array.from({ length: poolSize }, () => randomValue(rng, f.kind, rng.bool(0.3))));
  const total = rng.pick([0, 1, 5, 50, 300, 1200]);
  const skew = rng.bool(0.3);
  const small = rng.bool(0.85); // value fields: small values, so sums seldom overflow
  const rows: RefValue[][] = [];
  for (let r = 0; r < total; r++) {
    const hot = skew && rng.bool(0.9);
    rows.push(
      fields.map((f, i) => {
        if (f.nullable && rng.bool(0.15)) return null;
        if (keys.includes(i)) return hot ? pools[i]![0]! : rng.pick(pools[i]!);
        return randomValue(rng, f.kind, small);
      }),
    );
  }
  const batches: Uint8Array[] = [];
  let i = 0;
  const nb = rng.range(1, 5);
  for (let b = 0; b < nb; b++) {
    const take = b === nb - 1 ? total - i : rng.int(total - i + 1);
    batches.push(encodeBatch(fields, rows.slice(i, i + take)));
    i += take;
  }
  return { fields, keys, aggs, batches };
}

/** Rows of batches with every f64 NaN made canonical (NaN payloads through f64 arithmetic are not portable). */
export function canonicalRows(batches: readonly Uint8Array[], fields: readonly RefField[]): Uint8Array[] {
  return batches.flatMap(rowsOf).map((r) => canonicalRow(r, fields));
}

export function canonicalRow(row: Uint8Array, fields: readonly RefField[]): Uint8Array {
  const c = row.slice();
  const dv = new DataView(c.buffer);
  const w = Math.ceil(fields.length / 64) * 8;
  fields.forEach((f, i) => {
    if (f.kind !== 'f64') return;
    const s = 8 + w + 8 * i;
    if (Number.isNaN(dv.getFloat64(s, true))) dv.setBigUint64(s, 0x7ff8000000000000n, true);
  });
  return c;
}

