// Owns the plain-TypeScript reference of the hash join: a nested-loop join over row bytes, with the
// joined row built straight from the layout of abi/abi.ts (fields of the first side, then the second;
// payloads packed in field order; a missing side all NULL; reserved word 0). Slow and obvious on
// purpose; test/kernels/join.test.ts and the operator tests hold the kernels and operator to it.

import { isVar, type RefField } from './batch.ts';
import { batchRows, refCompareKeys, refKeyValues, type RefKey } from './kernels.ts';

export type RefJoinType = 'inner' | 'left' | 'right' | 'full' | 'semi' | 'anti';

const bitmapBytes = (n: number) => Math.ceil(n / 64) * 8;
const dvOf = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** The joined row of `a` (fields af, or all NULL when null) and `b` (fields bf, or NULL). */
export function refJoinRow(a: Uint8Array | null, af: readonly RefField[], b: Uint8Array | null, bf: readonly RefField[]): Uint8Array {
  const n = af.length + bf.length;
  const w = bitmapBytes(n);
  const fixed = 8 + w + 8 * n;
  type Cell = { isNull: boolean; slot: Uint8Array; payload: Uint8Array | null };
  const cells: Cell[] = [];
  const take = (row: Uint8Array | null, fields: readonly RefField[]) => {
    const m = fields.length;
    const rw = bitmapBytes(m);
    for (let i = 0; i < m; i++) {
      if (row === null || (row[8 + (i >> 3)]! & (1 << (i & 7))) !== 0) {
        cells.push({ isNull: true, slot: new Uint8Array(8), payload: null });
        continue;
      }
      const s = 8 + rw + 8 * i;
      const slot = row.slice(s, s + 8);
      let payload: Uint8Array | null = null;
      if (isVar(fields[i]!.kind)) {
        const dv = dvOf(row);
        const off = dv.getUint32(s, true);
        payload = row.slice(off, off + dv.getUint32(s + 4, true));
      }
      cells.push({ isNull: false, slot, payload });
    }
  };
  take(a, af);
  take(b, bf);
  const varBytes = cells.reduce((s, c) => s + (c.payload?.length ?? 0), 0);
  const len = Math.ceil((fixed + varBytes) / 8) * 8;
  const out = new Uint8Array(len);
  const dv = dvOf(out);
  dv.setUint32(0, len, true);
  let pos = fixed;
  cells.forEach((c, i) => {
    if (c.isNull) {
      out[8 + (i >> 3)]! |= 1 << (i & 7);
      return;
    }
    const s = 8 + w + 8 * i;
    if (c.payload !== null) {
      dv.setUint32(s, pos, true);
      dv.setUint32(s + 4, c.payload.length, true);
      out.set(c.payload, pos);
      pos += c.payload.length;
    } else out.set(c.slot, s);
  });
  return out;
}

/**
 * Nested-loop join of the rows of `left` and `right` batches on leftKeys[i] = rightKeys[i] (the
 * compare rules of abi/abi.ts; a NULL key matches nothing). Output rows in no particular order.
 */
export function refJoin(
  type: RefJoinType,
  lf: readonly RefField[],
  rf: readonly RefField[],
  leftKeys: readonly number[],
  rightKeys: readonly number[],
  left: readonly Uint8Array[],
  right: readonly Uint8Array[],
): Uint8Array[] {
  const lk: RefKey[] = leftKeys.map((field) => ({ field }));
  const rk: RefKey[] = rightKeys.map((field) => ({ field }));
  const L = left.flatMap(batchRows).map((row) => ({ row, key: refKeyValues(row, lf, lk) }));
  const R = right.flatMap(batchRows).map((row) => ({ row, key: refKeyValues(row, rf, rk) }));
  const eq = (x: (typeof L)[number], y: (typeof R)[number]) =>
    !x.key.includes(null) && !y.key.includes(null) && refCompareKeys(x.key, y.key, lk) === 0;
  const out: Uint8Array[] = [];
  const rightMatched = new Array<boolean>(R.length).fill(false);
  for (const l of L) {
    let any = false;
    R.forEach((r, j) => {
      if (!eq(l, r)) return;
      any = true;
      rightMatched[j] = true;
      if (type !== 'semi' && type !== 'anti') out.push(refJoinRow(l.row, lf, r.row, rf));
    });
    if (type === 'semi' && any) out.push(l.row.slice());
    if (type === 'anti' && !any) out.push(l.row.slice());
    if ((type === 'left' || type === 'full') && !any) out.push(refJoinRow(l.row, lf, null, rf));
  }
  if (type === 'right' || type === 'full') R.forEach((r, j) => !rightMatched[j] && out.push(refJoinRow(null, lf, r.row, rf)));
  return out;
}

/** Row bytes as sorted hex strings: the multiset a join result is compared as. */
export function rowMultiset(rows: readonly Uint8Array[]): string[] {
  // one char per byte (injective, and much faster than hex for large results)
  return rows
    .map((r) => {
      let s = '';
      for (let i = 0; i < r.length; i += 4096) s += String.fromCharCode(...r.subarray(i, i + 4096));
      return s;
    })
    .sort();
}
