// Owns the hash aggregation kernels: a hash table keyed by group fields (any type; NULL is a group of
// its own, as in SQL GROUP BY) whose entries are rows of the *partial schema* — the group fields,
// then fixed-width accumulator slots — updated in place; emission of those rows as partial batches
// (spillable, and re-aggregated by the same kernel in merge mode) or as final batches.
//
// ── Descriptors ──────────────────────────────────────────────────────────────────────────────
//   key descriptor   as everywhere (abi/abi.ts); flags are ignored (equality only)
//   agg descriptor   u32[] = [nAggs, op, field, op, field, ...]; op is AGG_* (abi/abi.ts)
//
// ── Partial schema (an entry, and a partial output row) ───────────────────────────────────────
//   fields 0..nk-1   the group fields, types as in the input (var payloads in the row's var part)
//   then, per agg    COUNT_STAR, COUNT, MERGE_COUNT  i64 count, never null
//                    SUM           i64 (integer input, overflow → STATUS_OVERFLOW) or f64; null until
//                                  a non-null value arrives
//                    MIN, MAX      the input's type (i32/i64/timestamp/f64); null until a value arrives
//                    AVG, MERGE_AVG two slots: sum (i64 or f64, as SUM but starting at 0, never null)
//                                  and count (i64, never null)
// ── Final schema ─────────────────────────────────────────────────────────────────────────────
//   the group fields, then one field per agg: counts i64, SUM/MIN/MAX as in the partial schema,
//   AVG f64 = sum / count (null when count is 0).
//
// ── Table memory (all of it handed in by the host) ────────────────────────────────────────────
//   state (AGG_STATE_BYTES)  +0 dir | +4 dirCap (slots, a power of two) | +8 groups | +12 chunk
//                            +16 directory mode (0 by hash, 1 direct) | +20 1 if the group key is one
//                            integer field (set by aggFeed) | +24 offset of that key's slot in an
//                            entry | +28 the NULL group's entry (direct mode) | +32 i64 smallest and
//                            +40 i64 largest key of a group so far | +48 1 once there is one |
//                            +52 reserved | +56 i64 key of directory slot 0 (direct mode)
//   directory                dirCap × (u32 hash, u32 entry address); address 0 = empty slot;
//                            linear probing, at most half full (then FULL/AGG_FULL_DIRECTORY: the
//                            host gives a directory twice as large to aggRehash). The hash is the
//                            table's own (see hashKeyFixed), not the canonical key hash.
//                            Direct mode ("perfect hashing", as DuckDB does for small integer key
//                            ranges): for one integer key whose groups span fewer values than the
//                            directory has slots, aggRehash lays the directory out by key: slot =
//                            key − base, no hash, no probing, no key compare. A key outside the
//                            window turns the directory back to hashing in place (no memory asked
//                            for, so spilling happens exactly where it would by hash); the next
//                            growth may pick direct again. Groups keep first-seen order either way.
//   chunk                    +0 u32 used bytes (header included) | +4 u32 capacity | +8 entries,
//                            each an 8-aligned partial row, in insertion order. A full chunk answers
//                            FULL/AGG_FULL_HEAP; the host adds a chunk (aggAddChunk) or spills.
// Cost: one hash and an expected O(1) probe per input row (key compare only on equal 32-bit hashes);
// rehash O(groups); emission O(bytes). Groups come out in first-seen order (chunk by chunk).

import {
  AGG_AVG,
  AGG_COUNT,
  AGG_COUNT_STAR,
  AGG_FULL_DIRECTORY,
  AGG_FULL_HEAP,
  AGG_MAX,
  AGG_MERGE_AVG,
  AGG_MERGE_COUNT,
  AGG_MIN,
  AGG_SUM,
  HASH_NULL,
  HASH_SEED,
  ROW_HEADER_BYTES,
  STATUS_DONE,
  STATUS_FULL,
  STATUS_OVERFLOW,
  AGG_STATE_BYTES,
  TYPE_BOOL,
  TYPE_F64,
  TYPE_I32,
  TYPE_I64,
  TYPE_TIMESTAMP,
} from './abi.generated';
import { fmix32, hashRow } from './hash';
import { resultOffset, resultRow, setResult } from './result';
import { batchRowCount, bitmapBytes, descFieldCount, descType, fixedEnd, isNull, isVarType, keyCount, keyField, reserveRow, rowLength, slotAt } from './row';

const E_OP = 'agg: unknown aggregate op';

// @ts-ignore: decorator
@inline function aggCount(aggs: usize): u32 {
  return load<u32>(aggs);
}
// @ts-ignore: decorator
@inline function aggOp(aggs: usize, a: u32): u32 {
  return load<u32>(aggs + 4 + (<usize>a << 3));
}
// @ts-ignore: decorator
@inline function aggField(aggs: usize, a: u32): u32 {
  return load<u32>(aggs + 8 + (<usize>a << 3));
}

// @ts-ignore: decorator
@inline function slotsOf(op: u32): u32 {
  return op == AGG_AVG || op == AGG_MERGE_AVG ? 2 : 1;
}

/** Fields of the partial schema: group fields plus accumulator slots. */
export function partialFieldCount(nk: u32, aggs: usize): u32 {
  let m = nk;
  const na = aggCount(aggs);
  for (let a: u32 = 0; a < na; a++) m += slotsOf(aggOp(aggs, a));
  return m;
}

// @ts-ignore: decorator
@inline function setNullBit(row: usize, i: u32): void {
  const b = row + ROW_HEADER_BYTES + (i >> 3);
  store<u8>(b, <u8>(<u32>load<u8>(b) | (<u32>1 << (i & 7))));
}
// @ts-ignore: decorator
@inline function clearNullBit(row: usize, i: u32): void {
  const b = row + ROW_HEADER_BYTES + (i >> 3);
  store<u8>(b, <u8>(<u32>load<u8>(b) & ~(<u32>1 << (i & 7))));
}

/** Group-key equality of an input row and an entry (f64: -0 = +0, NaN = NaN; null = null). */
function keysEqual(row: usize, w: u32, schema: usize, keys: usize, entry: usize, we: u32): bool {
  const nk = keyCount(keys);
  for (let k: u32 = 0; k < nk; k++) {
    const f = keyField(keys, k);
    const na = isNull(row, f);
    if (na != isNull(entry, k)) return false;
    if (na) continue;
    const t = descType(schema, f);
    const sa = slotAt(row, w, f);
    const sb = slotAt(entry, we, k);
    if (isVarType(t)) {
      const la = load<u32>(sa, 4);
      if (la != load<u32>(sb, 4)) return false;
      if (memory.compare(row + load<u32>(sa), entry + load<u32>(sb), la) != 0) return false;
    } else if (t == TYPE_F64) {
      const x = load<f64>(sa);
      const y = load<f64>(sb);
      if (!(x == y || (x != x && y != y))) return false;
    } else if (load<u64>(sa) != load<u64>(sb)) {
      return false;
    }
  }
  return true;
}

/** Starts an empty table: `dir` holds dirCap (a power of two) slots of 8 bytes. */
export function aggInit(state: usize, dir: usize, dirCap: u32): void {
  assert(dirCap >= 2 && (dirCap & (dirCap - 1)) == 0, 'aggInit: dirCap must be a power of two ≥ 2');
  memory.fill(dir, 0, <usize>dirCap << 3);
  memory.fill(state, 0, AGG_STATE_BYTES);
  store<u32>(state, <u32>dir);
  store<u32>(state, dirCap, 4);
}

/** Makes `chunk` (`bytes` long) the chunk new entries go to. */
export function aggAddChunk(state: usize, chunk: usize, bytes: u32): void {
  assert(bytes >= 16 && (bytes & 7) == 0, 'aggAddChunk: bad chunk size');
  store<u32>(chunk, 8);
  store<u32>(chunk, bytes, 4);
  store<u32>(state, <u32>chunk, 12);
}

/**
 * Moves every entry of the directory into `dir` (newCap slots, a power of two, > 2 × groups): by key
 * (direct mode) when the group key is one integer field and the keys so far span fewer than newCap
 * values, the window centred on them; else by hash.
 */
export function aggRehash(state: usize, dir: usize, newCap: u32): void {
  assert(newCap >= 2 && (newCap & (newCap - 1)) == 0 && newCap >= 2 * load<u32>(state, 8), 'aggRehash: bad capacity');
  memory.fill(dir, 0, <usize>newCap << 3);
  const old = <usize>load<u32>(state);
  const oldCap = load<u32>(state, 4);
  const wasDirect = load<u32>(state, 16) == DIR_DIRECT;
  const keyOff = <usize>load<u32>(state, 24);
  const lo = load<i64>(state, 32);
  const span = <u64>load<i64>(state, 40) - <u64>lo;
  const direct = load<u32>(state, 20) != 0 && load<u32>(state, 48) != 0 && span < <u64>newCap;
  // direct: slot = key − base, base leaving half the spare slots below the smallest key
  const base = <u64>lo - ((<u64>newCap - 1 - span) >> 1);
  const mask = newCap - 1;
  let nullEntry = wasDirect ? load<u32>(state, 28) : 0;
  for (let i: u32 = 0; i <= oldCap; i++) {
    let e: u32;
    let h: u32 = 0;
    if (i < oldCap) {
      const p = old + (<usize>i << 3);
      e = load<u32>(p, 4);
      if (e == 0) continue;
      if (!wasDirect) h = load<u32>(p);
      else h = entryKeyHash(<usize>e, keyOff);
    } else {
      // last: a direct directory's NULL group
      e = wasDirect ? nullEntry : 0;
      if (e == 0) continue;
      nullEntry = 0;
      h = entryKeyHash(<usize>e, keyOff);
    }
    if (direct) {
      if (isNull(<usize>e, 0)) nullEntry = e;
      else store<u32>(dir + (<usize>(<u32>(<u64>load<i64>(<usize>e + keyOff) - base)) << 3), e, 4);
      continue;
    }
    let s = h & mask;
    while (load<u32>(dir + (<usize>s << 3), 4) != 0) s = (s + 1) & mask;
    store<u32>(dir + (<usize>s << 3), h);
    store<u32>(dir + (<usize>s << 3), e, 4);
  }
  store<u32>(state, <u32>dir);
  store<u32>(state, newCap, 4);
  store<u32>(state, direct ? DIR_DIRECT : DIR_BY_HASH, 16);
  store<u32>(state, direct ? nullEntry : 0, 28);
  store<u64>(state, direct ? base : 0, 56);
}

/** Forgets every group (the directory is cleared and goes back to hashing; the host reclaims or re-adds chunks). */
export function aggClear(state: usize): void {
  memory.fill(<usize>load<u32>(state), 0, <usize>load<u32>(state, 4) << 3);
  store<u32>(state, 0, 8);
  store<u32>(state, 0, 12);
  store<u32>(state, DIR_BY_HASH, 16);
  store<u32>(state, 0, 28);
  store<u32>(state, 0, 48);
  store<u64>(state, 0, 56);
}

/** Groups in the table. */
export function aggGroups(state: usize): u32 {
  return load<u32>(state, 8);
}

/** Bytes a new entry for `row` needs: the partial row's fixed part plus the key payloads, padded. */
// @ts-ignore: decorator
@inline function entrySize(row: usize, w: u32, schema: usize, keys: usize, m: u32): u32 {
  let size = fixedEnd(m);
  const nk = keyCount(keys);
  for (let k: u32 = 0; k < nk; k++) {
    const f = keyField(keys, k);
    if (isVarType(descType(schema, f)) && !isNull(row, f)) size += load<u32>(slotAt(row, w, f), 4);
  }
  return (size + 7) & ~7;
}

/** Writes a fresh entry for `row` at `e` (size bytes): group fields copied, accumulators empty. */
function writeEntry(e: usize, size: u32, row: usize, w: u32, schema: usize, keys: usize, aggs: usize, m: u32): void {
  const we = bitmapBytes(m);
  store<u32>(e, size);
  store<u32>(e, 0, 4);
  memory.fill(e + ROW_HEADER_BYTES, 0, <usize>we + (<usize>m << 3));
  const nk = keyCount(keys);
  let pos = fixedEnd(m);
  for (let k: u32 = 0; k < nk; k++) {
    const f = keyField(keys, k);
    const slot = slotAt(e, we, k);
    if (isNull(row, f)) {
      setNullBit(e, k);
      continue;
    }
    const src = slotAt(row, w, f);
    if (isVarType(descType(schema, f))) {
      const len = load<u32>(src, 4);
      memory.copy(e + pos, row + load<u32>(src), len);
      store<u32>(slot, pos);
      store<u32>(slot, len, 4);
      pos += len;
    } else {
      store<u64>(slot, load<u64>(src));
    }
  }
  memory.fill(e + pos, 0, size - pos);
  // SUM, MIN and MAX start null (the first non-null value replaces them); counts and avg start at 0
  const na = aggCount(aggs);
  let s = nk;
  for (let a: u32 = 0; a < na; a++) {
    const op = aggOp(aggs, a);
    if (op == AGG_SUM || op == AGG_MIN || op == AGG_MAX) setNullBit(e, s);
    s += slotsOf(op);
  }
}

// @ts-ignore: decorator
@inline function addI64(slot: usize, v: i64): bool {
  const a = load<i64>(slot);
  const r = a + v;
  if (((a ^ r) & (v ^ r)) < 0) return false;
  store<i64>(slot, r);
  return true;
}

/** f64 order of abi/abi.ts: NaN greatest, -0 = +0. x < y? */
// @ts-ignore: decorator
@inline function f64Less(x: f64, y: f64): bool {
  if (x != x) return false;
  if (y != y) return true;
  return x < y;
}

/** Folds `row` into the accumulators of entry `e`. False on integer overflow (the entry is then torn). */
function accumulate(e: usize, we: u32, row: usize, w: u32, schema: usize, aggs: usize, nk: u32): bool {
  const na = aggCount(aggs);
  let s = nk;
  for (let a: u32 = 0; a < na; a++) {
    const op = aggOp(aggs, a);
    const slot = slotAt(e, we, s);
    if (op == AGG_COUNT_STAR) {
      store<i64>(slot, load<i64>(slot) + 1);
      s++;
      continue;
    }
    const f = aggField(aggs, a);
    if (isNull(row, f)) {
      s += slotsOf(op);
      continue;
    }
    const src = slotAt(row, w, f);
    const isF = descType(schema, f) == TYPE_F64;
    if (op == AGG_COUNT) {
      store<i64>(slot, load<i64>(slot) + 1);
    } else if (op == AGG_MERGE_COUNT) {
      store<i64>(slot, load<i64>(slot) + load<i64>(src));
    } else if (op == AGG_SUM) {
      if (isNull(e, s)) {
        clearNullBit(e, s);
        store<u64>(slot, load<u64>(src));
      } else if (isF) {
        store<f64>(slot, load<f64>(slot) + load<f64>(src));
      } else if (!addI64(slot, load<i64>(src))) {
        return false;
      }
    } else if (op == AGG_MIN || op == AGG_MAX) {
      if (isNull(e, s)) {
        clearNullBit(e, s);
        store<u64>(slot, load<u64>(src));
      } else if (isF) {
        const v = load<f64>(src);
        const cur = load<f64>(slot);
        if (op == AGG_MIN ? f64Less(v, cur) : f64Less(cur, v)) store<f64>(slot, v);
      } else {
        const v = load<i64>(src);
        const cur = load<i64>(slot);
        if (op == AGG_MIN ? v < cur : v > cur) store<i64>(slot, v);
      }
    } else if (op == AGG_AVG || op == AGG_MERGE_AVG) {
      if (isF) store<f64>(slot, load<f64>(slot) + load<f64>(src));
      else if (!addI64(slot, load<i64>(src))) return false;
      const cnt = slot + 8;
      if (op == AGG_AVG) store<i64>(cnt, load<i64>(cnt) + 1);
      else store<i64>(cnt, load<i64>(cnt) + load<i64>(slotAt(row, w, f + 1)));
    } else {
      throw new Error(E_OP);
    }
    s += slotsOf(op);
  }
  return true;
}

// ── aggFeed ──────────────────────────────────────────────────────────────────────────────────
// The feed loop works a block of rows at a time: pass 1 hashes the block (and records row addresses),
// pass 2 finds or inserts each row's entry, pass 3 updates the accumulators, so the directory/entry
// loads of successive rows are independent of any hashing work and can overlap. Keys are hashed and
// compared inline when every group field is fixed-width (one instantiation for a single key, one for
// several); var-width keys go through hashRow / keysEqual. Aggregates are compiled once per call into
// a compact table of (code, input field, entry slot), and pass 3 runs one aggregate at a time over the
// whole block: one dispatch per aggregate and block instead of per row (10M rows into 10k groups:
// the feed 112 -> 95 ms; with the block raised from 64 to 256 rows, 100k groups 140 -> 128 ms).

// @ts-ignore: decorator
@inline const BLOCK: u32 = 256;
/** Salt of the directory hash over the canonical hash (var-width keys). */
// @ts-ignore: decorator
@inline const DIR_SALT: u32 = 0x5bd1e995;
const blockHash: usize = memory.data(<i32>(BLOCK * 4), 16);
const blockRow: usize = memory.data(<i32>(BLOCK * 4), 16);
/** Directory slots from which the direct feed loads a block's entries in a pass of their own. */
// @ts-ignore: decorator
@inline const DIRECT_EARLY_SLOTS: u32 = 1 << 18;
/**
 * Each row's group entry: pass 2 writes it for every row (pass 3 reads it); in direct mode pass 1b
 * fills it first with the directory slot's entry (0: none yet, or a NULL / outside mark).
 */
const blockEntry: usize = memory.data(<i32>(BLOCK * 4), 16);
// compiled aggregates: u32 code, u32 input field, u32 entry slot index, u32 pad
// @ts-ignore: decorator
@inline const MAX_FAST_AGGS: u32 = 64;
const aggPlan: usize = memory.data(<i32>(MAX_FAST_AGGS * 16), 16);

// @ts-ignore: decorator
@inline const C_COUNT_STAR: u32 = 0;
// @ts-ignore: decorator
@inline const C_COUNT: u32 = 1;
// @ts-ignore: decorator
@inline const C_MERGE_COUNT: u32 = 2;
// @ts-ignore: decorator
@inline const C_SUM_I: u32 = 3;
// @ts-ignore: decorator
@inline const C_SUM_F: u32 = 4;
// @ts-ignore: decorator
@inline const C_MIN_I: u32 = 5;
// @ts-ignore: decorator
@inline const C_MAX_I: u32 = 6;
// @ts-ignore: decorator
@inline const C_MIN_F: u32 = 7;
// @ts-ignore: decorator
@inline const C_MAX_F: u32 = 8;
// @ts-ignore: decorator
@inline const C_AVG_I: u32 = 9;
// @ts-ignore: decorator
@inline const C_AVG_F: u32 = 10;
// @ts-ignore: decorator
@inline const C_MERGE_AVG_I: u32 = 11;
// @ts-ignore: decorator
@inline const C_MERGE_AVG_F: u32 = 12;

/** Compiles `aggs` into aggPlan (na ≤ MAX_FAST_AGGS). */
function compileAggs(schema: usize, aggs: usize, nk: u32): void {
  const na = aggCount(aggs);
  let s = nk;
  for (let a: u32 = 0; a < na; a++) {
    const op = aggOp(aggs, a);
    const f = aggField(aggs, a);
    const isF = op != AGG_COUNT_STAR && descType(schema, f) == TYPE_F64;
    let c: u32;
    if (op == AGG_COUNT_STAR) c = C_COUNT_STAR;
    else if (op == AGG_COUNT) c = C_COUNT;
    else if (op == AGG_MERGE_COUNT) c = C_MERGE_COUNT;
    else if (op == AGG_SUM) c = isF ? C_SUM_F : C_SUM_I;
    else if (op == AGG_MIN) c = isF ? C_MIN_F : C_MIN_I;
    else if (op == AGG_MAX) c = isF ? C_MAX_F : C_MAX_I;
    else if (op == AGG_AVG) c = isF ? C_AVG_F : C_AVG_I;
    else if (op == AGG_MERGE_AVG) c = isF ? C_MERGE_AVG_F : C_MERGE_AVG_I;
    else throw new Error(E_OP);
    const p = aggPlan + (<usize>a << 4);
    store<u32>(p, c);
    store<u32>(p, f, 4);
    store<u32>(p, s, 8);
    s += slotsOf(op);
  }
}

/** accumulateBlock's f64 SUM over rows [0, cnt) of the block. */
// @ts-ignore: decorator
@inline function sumFloatBlock(cnt: u32, f: u32, s: u32, so: usize, fo: usize): void {
  for (let i: u32 = 0; i < cnt; i++) {
    const rw = <usize>load<u32>(blockRow + (<usize>i << 2));
    if (isNull(rw, f)) continue;
    const e = <usize>load<u32>(blockEntry + (<usize>i << 2));
    if (isNull(e, s)) {
      clearNullBit(e, s);
      store<u64>(e + so, load<u64>(rw + fo));
    } else {
      store<f64>(e + so, load<f64>(e + so) + load<f64>(rw + fo));
    }
  }
}

/** accumulateBlock's MIN / MAX over rows [0, cnt) of the block: i64 (integers) or f64 (abi order). */
// @ts-ignore: decorator
@inline function minMaxBlock<T>(cnt: u32, f: u32, s: u32, so: usize, fo: usize, isMin: bool): void {
  for (let i: u32 = 0; i < cnt; i++) {
    const rw = <usize>load<u32>(blockRow + (<usize>i << 2));
    if (isNull(rw, f)) continue;
    const e = <usize>load<u32>(blockEntry + (<usize>i << 2));
    const v = load<T>(rw + fo);
    if (isNull(e, s)) {
      clearNullBit(e, s);
      store<T>(e + so, v);
      continue;
    }
    const cur = load<T>(e + so);
    let better: bool;
    if (isFloat<T>()) better = isMin ? f64Less(<f64>v, <f64>cur) : f64Less(<f64>cur, <f64>v);
    else better = isMin ? v < cur : v > cur;
    if (better) store<T>(e + so, v);
  }
}

/**
 * Folds rows [0, cnt) of the block (blockRow: the input rows, blockEntry: their entries) into their
 * entries, driven by aggPlan an aggregate at a time: one dispatch per aggregate and block, then a tight
 * loop over the block's rows (as DuckDB updates an aggregate over a vector). Each accumulator still
 * sees its rows in input order, so float sums are unchanged. Returns cnt, or the block index of a row
 * whose integer sum left the i64 range (the table is then torn).
 */
// @ts-ignore: decorator
@inline function accumulateBlock(cnt: u32, we: u32, w: u32, na: u32): u32 {
  for (let a: u32 = 0; a < na; a++) {
    const p = aggPlan + (<usize>a << 4);
    const c = load<u32>(p);
    const f = load<u32>(p, 4);
    const s = load<u32>(p, 8);
    const so = <usize>(ROW_HEADER_BYTES + we) + (<usize>s << 3); // the accumulator in an entry
    const fo = <usize>(ROW_HEADER_BYTES + w) + (<usize>f << 3); // the input field in a row
    switch (c) {
      case C_COUNT_STAR: {
        for (let i: u32 = 0; i < cnt; i++) {
          const slot = <usize>load<u32>(blockEntry + (<usize>i << 2)) + so;
          store<i64>(slot, load<i64>(slot) + 1);
        }
        break;
      }
      case C_COUNT:
      case C_MERGE_COUNT: {
        for (let i: u32 = 0; i < cnt; i++) {
          const rw = <usize>load<u32>(blockRow + (<usize>i << 2));
          if (isNull(rw, f)) continue;
          const slot = <usize>load<u32>(blockEntry + (<usize>i << 2)) + so;
          store<i64>(slot, load<i64>(slot) + (c == C_COUNT ? 1 : load<i64>(rw + fo)));
        }
        break;
      }
      case C_SUM_I: {
        for (let i: u32 = 0; i < cnt; i++) {
          const rw = <usize>load<u32>(blockRow + (<usize>i << 2));
          if (isNull(rw, f)) continue;
          const e = <usize>load<u32>(blockEntry + (<usize>i << 2));
          if (isNull(e, s)) {
            clearNullBit(e, s);
            store<u64>(e + so, load<u64>(rw + fo));
          } else if (!addI64(e + so, load<i64>(rw + fo))) {
            return i;
          }
        }
        break;
      }
      case C_SUM_F: {
        sumFloatBlock(cnt, f, s, so, fo);
        break;
      }
      case C_MIN_I:
      case C_MAX_I: {
        minMaxBlock<i64>(cnt, f, s, so, fo, c == C_MIN_I);
        break;
      }
      case C_MIN_F:
      case C_MAX_F: {
        minMaxBlock<f64>(cnt, f, s, so, fo, c == C_MIN_F);
        break;
      }
      case C_AVG_I:
      case C_MERGE_AVG_I: {
        for (let i: u32 = 0; i < cnt; i++) {
          const rw = <usize>load<u32>(blockRow + (<usize>i << 2));
          if (isNull(rw, f)) continue;
          const slot = <usize>load<u32>(blockEntry + (<usize>i << 2)) + so;
          if (!addI64(slot, load<i64>(rw + fo))) return i;
          store<i64>(slot, load<i64>(slot, 8) + (c == C_AVG_I ? 1 : load<i64>(rw + fo, 8)), 8);
        }
        break;
      }
      case C_AVG_F:
      case C_MERGE_AVG_F: {
        for (let i: u32 = 0; i < cnt; i++) {
          const rw = <usize>load<u32>(blockRow + (<usize>i << 2));
          if (isNull(rw, f)) continue;
          const slot = <usize>load<u32>(blockEntry + (<usize>i << 2)) + so;
          store<f64>(slot, load<f64>(slot) + load<f64>(rw + fo));
          store<i64>(slot, load<i64>(slot, 8) + (c == C_AVG_F ? 1 : load<i64>(rw + fo, 8)), 8);
        }
        break;
      }
      default:
        unreachable();
    }
  }
  return cnt;
}

/**
 * The directory hash of one fixed-width key field, chained from `h`: the field's canonical 8 bytes
 * (f64: -0 as +0, one NaN) mixed by fmix32 — a third of murmur's multiplies. Internal to the table
 * (group order is first-seen order whatever the hash), and unlike the canonical key hash it is not
 * correlated with the hash bits that route groups to spill partitions.
 */
// @ts-ignore: decorator
@inline function hashKeyFixed(h: u32, row: usize, w: u32, f: u32, isF: bool): u32 {
  if (isNull(row, f)) return fmix32(h ^ HASH_NULL);
  const slot = slotAt(row, w, f);
  let lo = load<u32>(slot);
  let hi = load<u32>(slot, 4);
  if (isF) {
    const v = load<f64>(slot);
    if (v != v) {
      lo = 0;
      hi = 0x7ff80000;
    } else if (v == 0) {
      lo = 0;
      hi = 0;
    }
  }
  return dirHashWord(h, lo, hi);
}

/** The directory hash of a key word (lo, hi) chained from `h`. */
// @ts-ignore: decorator
@inline function dirHashWord(h: u32, lo: u32, hi: u32): u32 {
  return fmix32(lo ^ rotl<u32>((hi ^ h) * 0x9e3779b1, 16));
}

/** The directory hash of a direct-eligible entry's one integer key (as hashKeyFixed on input rows). */
// @ts-ignore: decorator
@inline function entryKeyHash(e: usize, keyOff: usize): u32 {
  if (isNull(e, 0)) return fmix32(HASH_SEED ^ HASH_NULL);
  return dirHashWord(HASH_SEED, load<u32>(e + keyOff), load<u32>(e + keyOff, 4));
}

/** keysEqual for one fixed-width key field: input field f against entry field k. */
// @ts-ignore: decorator
@inline function keyEqualFixed(row: usize, w: u32, f: u32, isF: bool, entry: usize, we: u32, k: u32): bool {
  const na = isNull(row, f);
  if (na != isNull(entry, k)) return false;
  if (na) return true;
  const sa = slotAt(row, w, f);
  const sb = slotAt(entry, we, k);
  if (isF) {
    const x = load<f64>(sa);
    const y = load<f64>(sb);
    return x == y || (x != x && y != y);
  }
  return load<u64>(sa) == load<u64>(sb);
}

// @ts-ignore: decorator
@inline const MODE_ONE: u32 = 0; // exactly one fixed-width key field
// @ts-ignore: decorator
@inline const MODE_FIXED: u32 = 1; // any number (0 included) of fixed-width key fields
// @ts-ignore: decorator
@inline const MODE_GENERIC: u32 = 2; // some var-width key field
// @ts-ignore: decorator
@inline const MODE_DIRECT: u32 = 3; // one integer key field, directory in direct mode

// @ts-ignore: decorator
@inline const DIR_BY_HASH: u32 = 0;
// @ts-ignore: decorator
@inline const DIR_DIRECT: u32 = 1;
/** pass-1 marks of the direct feed: a NULL key, a key outside the directory's window. */
// @ts-ignore: decorator
@inline const MARK_NULL: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const MARK_OUTSIDE: u32 = 0xfffffffe;

/** feedLoop(MODE_DIRECT) met a key outside the window (internal: aggFeed handles it). */
// @ts-ignore: decorator
@inline const OUTSIDE_WINDOW: u32 = 0xff;

/**
 * Turns a direct directory into a hash directory of the same capacity, in place: each entry not yet
 * placed is taken out and inserted by linear probing, taking over any slot whose entry is not placed
 * yet (which is then inserted in turn). Placed entries carry bit 0 of their (8-aligned) address until
 * the end, so a probe path only ever crosses placed entries, as linear probing requires. Then the
 * NULL group joins. O(capacity).
 */
function directToHash(state: usize): void {
  const dir = <usize>load<u32>(state);
  const cap = load<u32>(state, 4);
  const mask = cap - 1;
  const keyOff = <usize>load<u32>(state, 24);
  for (let i: u32 = 0; i < cap; i++) {
    const p = dir + (<usize>i << 3);
    let cur = load<u32>(p, 4);
    if (cur == 0 || (cur & 1) != 0) continue;
    store<u64>(p, 0);
    while (cur != 0) {
      const h = entryKeyHash(<usize>cur, keyOff);
      let s = h & mask;
      for (;;) {
        const q = dir + (<usize>s << 3);
        const a = load<u32>(q, 4);
        if (a == 0 || (a & 1) == 0) {
          store<u32>(q, h);
          store<u32>(q, cur | 1, 4);
          cur = a; // 0: done; else the displaced entry goes next
          break;
        }
        s = (s + 1) & mask;
      }
    }
  }
  for (let i: u32 = 0; i < cap; i++) {
    const p = dir + (<usize>i << 3);
    store<u32>(p, load<u32>(p, 4) & ~1, 4);
  }
  const nul = load<u32>(state, 28);
  if (nul != 0) {
    const h = entryKeyHash(<usize>nul, keyOff);
    let s = h & mask;
    while (load<u32>(dir + (<usize>s << 3), 4) != 0) s = (s + 1) & mask;
    store<u32>(dir + (<usize>s << 3), h);
    store<u32>(dir + (<usize>s << 3), nul, 4);
  }
  store<u32>(state, DIR_BY_HASH, 16);
  store<u32>(state, 0, 28);
  store<u64>(state, 0, 56);
}

/** Widens the key range of the table's groups to `v`. */
// @ts-ignore: decorator
@inline function noteKey(state: usize, v: i64): void {
  if (load<u32>(state, 48) == 0) {
    store<i64>(state, v, 32);
    store<i64>(state, v, 40);
    store<u32>(state, 1, 48);
  } else {
    if (v < load<i64>(state, 32)) store<i64>(state, v, 32);
    if (v > load<i64>(state, 40)) store<i64>(state, v, 40);
  }
}

/** True when the key fields of `keys` are all fixed-width. */
function keysFixed(schema: usize, keys: usize): bool {
  const nk = keyCount(keys);
  for (let k: u32 = 0; k < nk; k++) if (isVarType(descType(schema, keyField(keys, k)))) return false;
  return true;
}

// @ts-ignore: decorator
@inline function feedLoop(mode: u32, state: usize, batch: usize, schema: usize, keys: usize, aggs: usize, startRow: u32, startOffset: u32, fastAggs: bool): u32 {
  const n = batchRowCount(batch);
  const w = bitmapBytes(descFieldCount(schema));
  const nk = keyCount(keys);
  const m = partialFieldCount(nk, aggs);
  const we = bitmapBytes(m);
  const na = aggCount(aggs);
  const dir = <usize>load<u32>(state);
  const mask = load<u32>(state, 4) - 1;
  const f0 = nk > 0 ? keyField(keys, 0) : 0;
  const isF0 = nk > 0 && descType(schema, f0) == TYPE_F64;
  const intKey = load<u32>(state, 20) != 0; // track the key range (for direct mode)
  const base = load<u64>(state, 56);
  const k0 = <usize>(ROW_HEADER_BYTES + w) + (<usize>f0 << 3);
  let row = batch + startOffset;
  let r = startRow;
  while (r < n) {
    const cnt = min(BLOCK, n - r);
    // pass 1: hashes (direct: slot indexes) and row addresses
    for (let i: u32 = 0; i < cnt; i++) {
      let h: u32;
      if (mode == MODE_DIRECT) {
        const d = load<u64>(row + k0) - base;
        h = isNull(row, f0) ? MARK_NULL : d > <u64>mask ? MARK_OUTSIDE : <u32>d;
      } else if (mode == MODE_ONE) {
        h = hashKeyFixed(HASH_SEED, row, w, f0, isF0);
      } else if (mode == MODE_FIXED) {
        h = HASH_SEED;
        for (let k: u32 = 0; k < nk; k++) {
          const f = keyField(keys, k);
          h = hashKeyFixed(h, row, w, f, descType(schema, f) == TYPE_F64);
        }
      } else {
        // decorrelated from the canonical hash's low bits, which pick spill partitions
        h = fmix32(hashRow(row, w, schema, keys) ^ DIR_SALT);
      }
      store<u32>(blockHash + (<usize>i << 2), h);
      store<u32>(blockRow + (<usize>i << 2), <u32>row);
      row += rowLength(row);
    }
    // pass 1b (direct, a directory past the caches' comfort): the directory slots' entries, loaded
    // back to back so their misses overlap (measured: 100k groups 221 -> 180 ms per 10M rows; at 10k
    // groups, all in cache, the extra pass cost 10%, hence the size limit)
    const early = mode == MODE_DIRECT && mask >= DIRECT_EARLY_SLOTS - 1;
    if (early) {
      for (let i: u32 = 0; i < cnt; i++) {
        const h = load<u32>(blockHash + (<usize>i << 2));
        store<u32>(blockEntry + (<usize>i << 2), h > mask ? 0 : load<u32>(dir + (<usize>h << 3), 4));
      }
    }
    // pass 2: each row's entry, found or inserted. An exit (a full directory or heap, a key outside
    // the direct window) stops the block at its row; pass 3 still folds in the rows before it.
    let done = cnt;
    let exit: u32 = STATUS_DONE;
    for (let i: u32 = 0; i < cnt; i++) {
      const h = load<u32>(blockHash + (<usize>i << 2));
      const rw = <usize>load<u32>(blockRow + (<usize>i << 2));
      let s = h & mask;
      let e: usize = 0;
      if (mode == MODE_DIRECT) {
        if (h == MARK_OUTSIDE) {
          // a key outside the window: aggFeed turns the directory to hashing and resumes here
          setResult(r + i, <u32>(rw - batch), 0, 0);
          exit = OUTSIDE_WINDOW;
          done = i;
          break;
        }
        // pass 1b's entry, unless the group was new then (an earlier row of the block may have made it)
        e = h == MARK_NULL ? <usize>load<u32>(state, 28) : early ? <usize>load<u32>(blockEntry + (<usize>i << 2)) : 0;
        if (e == 0 && h != MARK_NULL) e = <usize>load<u32>(dir + (<usize>h << 3), 4);
      } else for (;;) {
        const p = dir + (<usize>s << 3);
        const a = load<u32>(p, 4);
        if (a == 0) break;
        if (load<u32>(p) == h) {
          let eq: bool;
          if (mode == MODE_ONE) {
            eq = keyEqualFixed(rw, w, f0, isF0, <usize>a, we, 0);
          } else if (mode == MODE_FIXED) {
            eq = true;
            for (let k: u32 = 0; k < nk; k++) {
              const f = keyField(keys, k);
              if (!keyEqualFixed(rw, w, f, descType(schema, f) == TYPE_F64, <usize>a, we, k)) {
                eq = false;
                break;
              }
            }
          } else {
            eq = keysEqual(rw, w, schema, keys, <usize>a, we);
          }
          if (eq) {
            e = <usize>a;
            break;
          }
        }
        s = (s + 1) & mask;
      }
      if (e == 0) {
        const groups = load<u32>(state, 8);
        if ((<u64>groups + 1) * 2 > <u64>mask + 1) {
          setResult(r + i, <u32>(rw - batch), AGG_FULL_DIRECTORY, 0);
          exit = STATUS_FULL;
          done = i;
          break;
        }
        const size = entrySize(rw, w, schema, keys, m);
        const chunk = <usize>load<u32>(state, 12);
        const used = chunk == 0 ? 0 : load<u32>(chunk);
        if (chunk == 0 || <u64>used + <u64>size > <u64>load<u32>(chunk, 4)) {
          setResult(r + i, <u32>(rw - batch), AGG_FULL_HEAP, size);
          exit = STATUS_FULL;
          done = i;
          break;
        }
        e = chunk + used;
        store<u32>(chunk, used + size);
        writeEntry(e, size, rw, w, schema, keys, aggs, m);
        if (mode == MODE_DIRECT) {
          if (h == MARK_NULL) store<u32>(state, <u32>e, 28);
          else store<u32>(dir + (<usize>h << 3), <u32>e, 4);
        } else {
          const p = dir + (<usize>s << 3);
          store<u32>(p, h);
          store<u32>(p, <u32>e, 4);
        }
        if (intKey && !isNull(rw, f0)) noteKey(state, load<i64>(rw + k0));
        store<u32>(state, groups + 1, 8);
      }
      store<u32>(blockEntry + (<usize>i << 2), <u32>e);
    }
    // pass 3: the accumulators of rows [0, done)
    let bad = done;
    if (fastAggs) {
      bad = accumulateBlock(done, we, w, na);
    } else {
      for (let i: u32 = 0; i < done; i++) {
        const e = <usize>load<u32>(blockEntry + (<usize>i << 2));
        if (!accumulate(e, we, <usize>load<u32>(blockRow + (<usize>i << 2)), w, schema, aggs, nk)) {
          bad = i;
          break;
        }
      }
    }
    if (bad < done) {
      setResult(r + bad, load<u32>(blockRow + (<usize>bad << 2)) - <u32>batch, 0, 0);
      return STATUS_OVERFLOW;
    }
    if (exit != STATUS_DONE) return exit;
    r += cnt;
  }
  setResult(n, <u32>(row - batch), 0, 0);
  return STATUS_DONE;
}

/**
 * Folds rows [startRow, rowCount) of `batch` (startRow at byte offset `startOffset`) into the table:
 * each row's group (by `keys`) is found or inserted, then its accumulators updated by `aggs` (raw
 * ops on input rows; MERGE ops, with the group fields first, on partial rows).
 * Returns STATUS_DONE; STATUS_FULL with resultRow/resultOffset (the row to resume from; nothing of it
 * was applied), resultIndex AGG_FULL_HEAP (resultBytes: the entry size; add a chunk) or
 * AGG_FULL_DIRECTORY (rehash into a larger directory); or STATUS_OVERFLOW with resultRow (an integer
 * sum left the i64 range; the table is no longer consistent).
 */
export function aggFeed(state: usize, batch: usize, schema: usize, keys: usize, aggs: usize, startRow: u32, startOffset: u32): u32 {
  const nk = keyCount(keys);
  const fast = aggCount(aggs) <= MAX_FAST_AGGS;
  // one integer key field: the table tracks its key range, and aggRehash may go direct
  let intKey = false;
  if (nk == 1 && fast) {
    const t = descType(schema, keyField(keys, 0));
    intKey = t == TYPE_I64 || t == TYPE_I32 || t == TYPE_TIMESTAMP || t == TYPE_BOOL;
  }
  store<u32>(state, intKey ? 1 : 0, 20);
  store<u32>(state, ROW_HEADER_BYTES + bitmapBytes(partialFieldCount(nk, aggs)), 24);
  if (fast) {
    compileAggs(schema, aggs, nk);
    if (intKey && load<u32>(state, 16) == DIR_DIRECT) {
      const st = feedLoop(MODE_DIRECT, state, batch, schema, keys, aggs, startRow, startOffset, true);
      if (st != OUTSIDE_WINDOW) return st;
      directToHash(state);
      return feedLoop(MODE_ONE, state, batch, schema, keys, aggs, resultRow(), resultOffset(), true);
    }
    if (!keysFixed(schema, keys)) return feedLoop(MODE_GENERIC, state, batch, schema, keys, aggs, startRow, startOffset, true);
    if (nk == 1) return feedLoop(MODE_ONE, state, batch, schema, keys, aggs, startRow, startOffset, true);
    return feedLoop(MODE_FIXED, state, batch, schema, keys, aggs, startRow, startOffset, true);
  }
  return feedLoop(MODE_GENERIC, state, batch, schema, keys, aggs, startRow, startOffset, false);
}

/**
 * Appends the entries of `chunk` from byte offset `startOffset` (8 = the first) to the batch at `out`
 * (capacity `cap`, header valid for the partial or final schema): as partial rows (copies) when
 * `final` is 0, else as final rows (AVG computed, key payload offsets moved). `pschema` is the
 * partial schema's descriptor, `aggs` the table's agg descriptor, `nk` the number of group fields.
 * Returns STATUS_DONE (resultOffset = the chunk's end) or STATUS_FULL (resultOffset: the entry to
 * resume from; resultBytes: its output size).
 */
export function aggEmit(chunk: usize, startOffset: u32, pschema: usize, nk: u32, aggs: usize, final: u32, out: usize, cap: u32): u32 {
  const used = load<u32>(chunk);
  const m = descFieldCount(pschema);
  const we = bitmapBytes(m);
  const na = aggCount(aggs);
  const mf = nk + na;
  const wf = bitmapBytes(mf);
  const delta = <i32>fixedEnd(mf) - <i32>fixedEnd(m);
  let off = startOffset;
  while (off < used) {
    const e = chunk + off;
    const len = rowLength(e);
    if (final == 0) {
      const dst = reserveRow(out, cap, len);
      if (dst == 0) {
        setResult(0, off, 0, len);
        return STATUS_FULL;
      }
      memory.copy(dst, e, len);
      off += len;
      continue;
    }
    const size = <u32>(<i32>len + delta);
    const dst = reserveRow(out, cap, size);
    if (dst == 0) {
      setResult(0, off, 0, size);
      return STATUS_FULL;
    }
    store<u32>(dst, size);
    store<u32>(dst, 0, 4);
    memory.fill(dst + ROW_HEADER_BYTES, 0, wf);
    for (let k: u32 = 0; k < nk; k++) {
      const src = slotAt(e, we, k);
      const slot = slotAt(dst, wf, k);
      if (isNull(e, k)) {
        setNullBit(dst, k);
        store<u64>(slot, 0);
      } else if (isVarType(descType(pschema, k))) {
        store<u32>(slot, <u32>(<i32>load<u32>(src) + delta));
        store<u32>(slot, load<u32>(src, 4), 4);
      } else {
        store<u64>(slot, load<u64>(src));
      }
    }
    let s = nk;
    for (let a: u32 = 0; a < na; a++) {
      const op = aggOp(aggs, a);
      const src = slotAt(e, we, s);
      const slot = slotAt(dst, wf, nk + a);
      if (op == AGG_AVG || op == AGG_MERGE_AVG) {
        const cnt = load<i64>(src, 8);
        if (cnt == 0) {
          setNullBit(dst, nk + a);
          store<u64>(slot, 0);
        } else {
          const sum = descType(pschema, s) == TYPE_F64 ? load<f64>(src) : <f64>load<i64>(src);
          store<f64>(slot, sum / <f64>cnt);
        }
      } else {
        if (isNull(e, s)) setNullBit(dst, nk + a);
        store<u64>(slot, load<u64>(src));
      }
      s += slotsOf(op);
    }
    const fe = fixedEnd(m);
    if (len > fe) memory.copy(dst + fixedEnd(mf), e + fe, len - fe);
    off += len;
  }
  setResult(0, used, 0, 0);
  return STATUS_DONE;
}
