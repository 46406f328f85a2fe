// Owns the in-memory sort (Flink's NormalizedKeySorter): rows stay where they are; an index of
// fixed-width (normalized-key prefix, row pointer) entries is sorted instead, then `gatherSorted`
// copies rows out in index order, resumable on STATUS_FULL.
//
// ── Index entry (16 bytes, little-endian words) ──────────────────────────────────────────────
//   +0   u64  prefix bytes 0..7  as a big-endian number (byte 0 most significant)
//   +8   u32  row address
//   +12  u32  prefix bytes 8..11 as a big-endian number
// so (u64 at +0, u32 at +12) compared as unsigned words is the 12-byte prefix compared bytewise.
//
// ── Normalized key (the prefix) ──────────────────────────────────────────────────────────────
// The key fields are encoded one after another until 12 bytes are used; unsigned bytewise order of
// the encoding agrees with compareRows (abi/abi.ts) wherever it differs, and is "not decisive" (ties)
// otherwise:
//   nullable field   one byte first: 0 for the side that sorts first (null if KEY_NULLS_FIRST,
//                    non-null otherwise), 1 for the other; a null's value bytes are all zero
//   i32              4 bytes: the value with its sign bit flipped, big-endian
//   i64, timestamp   8 bytes: likewise
//   f64              8 bytes: -0 → +0, every NaN → 0x7FF8…; then negative: all bits inverted,
//                    otherwise the sign bit set (so -inf < … < +inf < NaN as unsigned)
//   bool             1 byte
//   string/bytes/any every remaining byte: the payload's first bytes, zero-padded. Not decisive
//                    ("ab" and "ab\0" pad alike), so nothing is encoded after it.
//   KEY_DESC         inverts the field's value bytes (never its null byte: nulls keep their place).
// A field that does not fit whole is truncated (still weakly ordered) and ends the prefix.
// The key is "covered" when every key field is encoded whole and none is variable-length: then equal
// prefixes mean equal keys and the rows are never looked at.
//
// ── Algorithm ──────────────────────────────────────────────────────────────────────────────────
// Below RADIX_MIN entries: a stable merge sort (insertion-sorted blocks) comparing prefix words, then
// compareRows on a prefix tie unless covered. Otherwise an LSD radix sort on the prefix bytes: the
// 256-bucket histograms of all bytes are counted while the prefixes are built, and a byte on which
// every entry agrees (a constant high byte, the unused tail of the prefix) costs no pass. LSD radix is
// stable and branch-free per entry; on 1M rows it does ≤ 8 linear passes where a comparison sort does
// ~20 data-dependent compares per row. When the key is not covered, each run of equal prefixes is
// then merge-sorted with compareRows. Both stages are stable, so the result is fully deterministic:
// rows with equal keys keep their input order (batch by batch, row by row).

import { KEY_DESC, KEY_NULLS_FIRST, STATUS_DONE, STATUS_FULL, TYPE_BOOL, TYPE_F64, TYPE_I32 } from './abi.generated';
import { compareRows } from './compare';
import { setResult } from './result';
import {
  batchRowCount,
  bitmapBytes,
  copyRow,
  descFieldCount,
  descNullable,
  descType,
  firstRow,
  isNull,
  isVarType,
  keyCount,
  keyField,
  keyFlags,
  reserveRow,
  rowLength,
  slotAt,
} from './row';

// @ts-ignore: decorator
@inline export const PREFIX_BYTES: u32 = 12;
// @ts-ignore: decorator
@inline export const ENTRY_BYTES: u32 = 16;
// @ts-ignore: decorator
@inline const RADIX_MIN: u32 = 256;
// @ts-ignore: decorator
@inline const BLOCK: u32 = 16;

// The encoding plan of one call: at most PREFIX_BYTES fields (each takes ≥ 1 byte).
//   +0 field  +4 type  +8 flags | nullable << 8  +12 position of the field's first byte
const plan: usize = memory.data(<i32>(PREFIX_BYTES * 16), 16);
// 256 u32 counters per prefix byte
const hist: usize = memory.data(<i32>(PREFIX_BYTES * 256 * 4), 16);
const held: usize = memory.data(16, 16);

let planCount: u32 = 0;
let planBytes: u32 = 0; // prefix bytes that may be nonzero
let covered = false;
let gW: u32 = 0;
let gSchema: usize = 0;
let gKeys: usize = 0;

const E_FIELD = 'sortIndex: key field out of range';

function makePlan(schema: usize, keys: usize): void {
  const nk = keyCount(keys);
  let pos: u32 = 0;
  planCount = 0;
  covered = true;
  for (let k: u32 = 0; k < nk; k++) {
    if (pos >= PREFIX_BYTES) {
      covered = false;
      break;
    }
    const f = keyField(keys, k);
    if (f >= descFieldCount(schema)) throw new Error(E_FIELD);
    const t = descType(schema, f);
    const nullable = descNullable(schema, f);
    const p = plan + (<usize>planCount << 4);
    store<u32>(p, f);
    store<u32>(p, t, 4);
    store<u32>(p, keyFlags(keys, k) | (nullable ? 0x100 : 0), 8);
    store<u32>(p, pos, 12);
    planCount++;
    const width: u32 = (nullable ? 1 : 0) + (isVarType(t) ? PREFIX_BYTES : t == TYPE_BOOL ? 1 : t == TYPE_I32 ? 4 : 8);
    if (isVarType(t) || pos + width > PREFIX_BYTES) {
      covered = false;
      pos = PREFIX_BYTES;
      break;
    }
    pos += width;
  }
  planBytes = pos;
}

// The prefix being built: bytes 0..7 in pHi, bytes 8..11 in the top half of pLo.
let pHi: u64 = 0;
let pLo: u64 = 0;

/** ORs `v` (its bytes most-significant first, already masked) into the prefix at byte `p`. */
// @ts-ignore: decorator
@inline function place(v: u64, p: u32): void {
  if (p == 0) {
    pHi |= v;
  } else if (p < 8) {
    pHi |= v >> (<u64>p << 3);
    pLo |= v << (<u64>(8 - p) << 3);
  } else {
    pLo |= v >> (<u64>(p - 8) << 3);
  }
}

/** A u64 with its top `n` bytes set, 1 ≤ n ≤ 8. */
// @ts-ignore: decorator
@inline function topBytes(n: u32): u64 {
  return n >= 8 ? u64.MAX_VALUE : ~(u64.MAX_VALUE >> (<u64>n << 3));
}

/** Builds the prefix of `row` into pHi / pLo (pLo's low half zero). */
function buildPrefix(row: usize): void {
  pHi = 0;
  pLo = 0;
  const w = gW;
  for (let j: u32 = 0; j < planCount; j++) {
    const e = plan + (<usize>j << 4);
    const f = load<u32>(e);
    const t = load<u32>(e, 4);
    const flags = load<u32>(e, 8);
    let p = load<u32>(e, 12);
    if ((flags & 0x100) != 0) {
      const nul = isNull(row, f);
      if (nul != ((flags & KEY_NULLS_FIRST) != 0)) place(<u64>1 << 56, p);
      p++;
      if (nul) continue;
    }
    const rem = PREFIX_BYTES - p;
    if (rem == 0) return;
    const s = slotAt(row, w, f);
    if (isVarType(t)) {
      const src = row + load<u32>(s);
      const len = load<u32>(s, 4);
      if (p == 0 && len >= PREFIX_BYTES) {
        pHi = bswap<u64>(load<u64>(src));
        pLo = <u64>bswap<u32>(load<u32>(src, 8)) << 32;
      } else {
        const n = min(len, rem);
        for (let i: u32 = 0; i < n; i++) place(<u64>load<u8>(src + i) << 56, p + i);
      }
      if ((flags & KEY_DESC) != 0) {
        // invert every byte from p on, padding included
        if (p < 8) pHi ^= u64.MAX_VALUE >> (<u64>p << 3);
        pLo ^= p <= 8 ? 0xffffffff00000000 : (0xffffffff00000000 >> (<u64>(p - 8) << 3)) & 0xffffffff00000000;
      }
      return;
    }
    let v: u64;
    let width: u32;
    if (t == TYPE_F64) {
      let b = load<u64>(s);
      const x = reinterpret<f64>(b);
      if (x != x) b = 0x7ff8000000000000;
      else if (x == 0) b = 0;
      v = (b >> 63) != 0 ? ~b : b | 0x8000000000000000;
      width = 8;
    } else if (t == TYPE_BOOL) {
      v = load<u64>(s) << 56;
      width = 1;
    } else if (t == TYPE_I32) {
      v = <u64>(load<u32>(s) ^ 0x80000000) << 32;
      width = 4;
    } else {
      v = load<u64>(s) ^ 0x8000000000000000;
      width = 8;
    }
    if ((flags & KEY_DESC) != 0) v = ~v;
    place(v & topBytes(min(width, rem)), p);
  }
}

/** Entry order: prefix words, then (unless the key is covered) the rows' full key compare. */
// @ts-ignore: decorator
@inline function compareEntries(a: usize, b: usize): i32 {
  const ha = load<u64>(a);
  const hb = load<u64>(b);
  if (ha != hb) return ha < hb ? -1 : 1;
  const la = load<u32>(a, 12);
  const lb = load<u32>(b, 12);
  if (la != lb) return la < lb ? -1 : 1;
  if (covered) return 0;
  return compareRows(<usize>load<u32>(a, 8), <usize>load<u32>(b, 8), gW, gSchema, gKeys);
}

// @ts-ignore: decorator
@inline function entryAt(base: usize, i: u32): usize {
  return base + (<usize>i << 4);
}

/** Stable insertion sort of entries [lo, hi) of `a`. */
function insertionSort(a: usize, lo: u32, hi: u32): void {
  for (let i = lo + 1; i < hi; i++) {
    const x = v128.load(entryAt(a, i));
    // the entry being inserted gets a fixed home, since its slot is overwritten by the shift
    v128.store(held, x);
    let j = i;
    while (j > lo && compareEntries(held, entryAt(a, j - 1)) < 0) {
      v128.store(entryAt(a, j), v128.load(entryAt(a, j - 1)));
      j--;
    }
    if (j != i) v128.store(entryAt(a, j), x);
  }
}

/** Stable merge of src[lo, mid) and src[mid, hi) into dst[lo, hi). */
function mergeRuns(src: usize, dst: usize, lo: u32, mid: u32, hi: u32): void {
  let i = lo;
  let j = mid;
  let o = lo;
  if (i < mid && j < hi && compareEntries(entryAt(src, mid - 1), entryAt(src, mid)) <= 0) {
    // already in order: one copy
    memory.copy(entryAt(dst, lo), entryAt(src, lo), <usize>(hi - lo) << 4);
    return;
  }
  while (i < mid && j < hi) {
    if (compareEntries(entryAt(src, j), entryAt(src, i)) < 0) {
      v128.store(entryAt(dst, o), v128.load(entryAt(src, j)));
      j++;
    } else {
      v128.store(entryAt(dst, o), v128.load(entryAt(src, i)));
      i++;
    }
    o++;
  }
  if (i < mid) memory.copy(entryAt(dst, o), entryAt(src, i), <usize>(mid - i) << 4);
  if (j < hi) memory.copy(entryAt(dst, o), entryAt(src, j), <usize>(hi - j) << 4);
}

/** Stable bottom-up merge sort of n entries at `a`, using n entries at `tmp`; the result is in `a`. */
function mergeSort(a: usize, tmp: usize, n: u32): void {
  for (let lo: u32 = 0; lo < n; lo += BLOCK) insertionSort(a, lo, min(lo + BLOCK, n));
  let src = a;
  let dst = tmp;
  for (let width = BLOCK; width < n; width <<= 1) {
    for (let lo: u32 = 0; lo < n; lo += width << 1) {
      const mid = min(lo + width, n);
      const hi = min(lo + (width << 1), n);
      if (mid >= hi) memory.copy(entryAt(dst, lo), entryAt(src, lo), <usize>(hi - lo) << 4);
      else mergeRuns(src, dst, lo, mid, hi);
    }
    const t = src;
    src = dst;
    dst = t;
  }
  if (src != a) memory.copy(a, src, <usize>n << 4);
}

/** Byte b (0 = most significant) of an entry's prefix. */
// @ts-ignore: decorator
@inline function prefixByte(e: usize, b: u32): u32 {
  return b < 8 ? <u32>(load<u64>(e) >> (<u64>(7 - b) << 3)) & 0xff : (load<u32>(e, 12) >> ((11 - b) << 3)) & 0xff;
}

/** LSD radix sort of n entries on prefix bytes [0, planBytes); the result is in `a`. */
function radixSort(a: usize, tmp: usize, n: u32): void {
  let src = a;
  let dst = tmp;
  for (let b = <i32>planBytes - 1; b >= 0; b--) {
    const h = hist + (<usize>b << 10);
    // a byte every entry shares needs no pass
    if (load<u32>(h + (<usize>prefixByte(src, <u32>b) << 2)) == n) continue;
    let sum: u32 = 0;
    for (let i: u32 = 0; i < 256; i++) {
      const c = load<u32>(h + (<usize>i << 2));
      store<u32>(h + (<usize>i << 2), sum);
      sum += c;
    }
    // hot loop inlined by hand: one bucket lookup and one 16-byte move per entry
    if (b < 8) {
      const shift = <u64>(7 - b) << 3;
      for (let i: u32 = 0; i < n; i++) {
        const e = src + (<usize>i << 4);
        const slot = h + (<usize>(<u32>(load<u64>(e) >> shift) & 0xff) << 2);
        const o = load<u32>(slot);
        store<u32>(slot, o + 1);
        v128.store(dst + (<usize>o << 4), v128.load(e));
      }
    } else {
      const shift = <u32>(11 - b) << 3;
      for (let i: u32 = 0; i < n; i++) {
        const e = src + (<usize>i << 4);
        const slot = h + (<usize>((load<u32>(e, 12) >> shift) & 0xff) << 2);
        const o = load<u32>(slot);
        store<u32>(slot, o + 1);
        v128.store(dst + (<usize>o << 4), v128.load(e));
      }
    }
    const t = src;
    src = dst;
    dst = t;
  }
  if (src != a) memory.copy(a, src, <usize>n << 4);
}

/** Merge-sorts (with compareRows) every run of entries whose prefixes are equal. */
function sortTies(a: usize, tmp: usize, n: u32): void {
  let start: u32 = 0;
  while (start < n) {
    const s = entryAt(a, start);
    const h = load<u64>(s);
    const l = load<u32>(s, 12);
    let end = start + 1;
    while (end < n && load<u64>(entryAt(a, end)) == h && load<u32>(entryAt(a, end), 12) == l) end++;
    if (end - start > 1) mergeSort(entryAt(a, start), entryAt(tmp, start), end - start);
    start = end;
  }
}

/**
 * Sorts the rows of the batches listed at `batches` (nBatches × u32 address; all of schema
 * `schema`) by the key descriptor `keys`, writing one 16-byte index entry per row at `index` (see
 * the layout above) in key order. `scratch` must hold as many entries. Stable: equal keys keep input
 * order. Returns the number of entries (the total row count).
 */
export function sortIndex(batches: usize, nBatches: u32, schema: usize, keys: usize, index: usize, scratch: usize): u32 {
  gW = bitmapBytes(descFieldCount(schema));
  gSchema = schema;
  gKeys = keys;
  makePlan(schema, keys);
  let n: u32 = 0;
  for (let i: u32 = 0; i < nBatches; i++) n += batchRowCount(<usize>load<u32>(batches + (<usize>i << 2)));
  const radix = n >= RADIX_MIN && planBytes > 0;
  if (radix) memory.fill(hist, 0, <usize>planBytes << 10);
  let e = index;
  for (let i: u32 = 0; i < nBatches; i++) {
    const batch = <usize>load<u32>(batches + (<usize>i << 2));
    const rows = batchRowCount(batch);
    let row = firstRow(batch);
    for (let r: u32 = 0; r < rows; r++) {
      buildPrefix(row);
      store<u64>(e, pHi);
      store<u32>(e, <u32>row, 8);
      store<u32>(e, <u32>(pLo >> 32), 12);
      if (radix) {
        // hot loop inlined by hand: count every prefix byte now, so no pass is spent on histograms
        for (let b: u32 = 0; b < planBytes; b++) {
          const v = b < 8 ? <u32>(pHi >> (<u64>(7 - b) << 3)) & 0xff : <u32>(pLo >> (<u64>(15 - b) << 3)) & 0xff;
          const slot = hist + (<usize>b << 10) + (<usize>v << 2);
          store<u32>(slot, load<u32>(slot) + 1);
        }
      }
      e += ENTRY_BYTES;
      row += rowLength(row);
    }
  }
  if (n < 2) return n;
  if (!radix) {
    mergeSort(index, scratch, n);
  } else {
    radixSort(index, scratch, n);
    if (!covered) sortTies(index, scratch, n);
  }
  return n;
}

/**
 * Copies the rows of index entries [startIdx, count) (see sortIndex) to the batch at `out`
 * (capacity `cap`). Returns STATUS_DONE, or STATUS_FULL with resultRow = the entry to resume from
 * and resultBytes = the size of its row.
 */
export function gatherSorted(index: usize, count: u32, startIdx: u32, out: usize, cap: u32): u32 {
  for (let i = startIdx; i < count; i++) {
    const row = <usize>load<u32>(entryAt(index, i), 8);
    const len = rowLength(row);
    const dst = reserveRow(out, cap, len);
    if (dst == 0) {
      setResult(i, 0, 0, len);
      return STATUS_FULL;
    }
    copyRow(dst, row, len);
  }
  setResult(count, 0, 0, 0);
  return STATUS_DONE;
}

/** Writes the row address of index entries [0, count) as u32 at `out` (the sorted order, no copy). */
export function sortedRowPointers(index: usize, count: u32, out: usize): void {
  for (let i: u32 = 0; i < count; i++) store<u32>(out + (<usize>i << 2), load<u32>(entryAt(index, i), 8));
}
