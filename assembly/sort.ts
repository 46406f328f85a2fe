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
// compareRows on a prefix tie unless covered. Otherwise a radix sort on the prefix bytes. While the
// prefixes are built, their OR and AND are kept: a byte on which every entry agrees (a constant high
// byte, the unused tail of the prefix) costs no pass and no histogram. With at least MSD_MIN entries
// and two varying bytes, one MSD pass partitions the index on the first varying byte into 256
// buckets, and each bucket is then sorted on the later bytes by LSD passes of its own, in cache
// (1/256 of the index); otherwise LSD passes run over the whole index. Radix passes are stable and
// branch-free per entry, with a histogram pass before each. When the key is not covered, each
// run of equal prefixes is then merge-sorted with compareRows. Every stage is stable, so the result
// is fully deterministic:
// rows with equal keys keep their input order (batch by batch, row by row).

import { BATCH_OFF_BYTE_LENGTH, BATCH_OFF_ROW_COUNT, KEY_DESC, KEY_NULLS_FIRST, STATUS_DONE, STATUS_FULL, TYPE_BOOL, TYPE_F64, TYPE_I32, TYPE_I64, TYPE_TIMESTAMP } from './abi.generated';
import { compareRows } from './compare';
import { setResult } from './result';
import {
  batchByteLength,
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
// @ts-ignore: decorator
@inline const MSD_MIN: u32 = 1 << 15;
// @ts-ignore: decorator
@inline const SMALL_BUCKET: u32 = 32;
// @ts-ignore: decorator
@inline const GATHER_BLOCK: u32 = 128;
// keeps the gather's touching loads from being optimized away
let gatherSink: u32 = 0;

// The encoding plan of one call: at most PREFIX_BYTES fields (each takes ≥ 1 byte).
//   +0 field  +4 type  +8 flags | nullable << 8  +12 position of the field's first byte
const plan: usize = memory.data(<i32>(PREFIX_BYTES * 16), 16);
// 256 u32 counters per prefix byte
const hist: usize = memory.data(<i32>(PREFIX_BYTES * 256 * 4), 16);
const held: usize = memory.data(16, 16);
// the MSD pass's 256 bucket starts and the end (u32 each)
const bounds: usize = memory.data(257 * 4, 16);

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
  buildPrefixWith(row, plan, planCount, gW);
}

/** buildPrefix under the plan of `count` entries at `pl` (rows with null bitmaps of `w` bytes). */
// @ts-ignore: decorator
@inline function buildPrefixWith(row: usize, pl: usize, count: u32, w: u32): void {
  pHi = 0;
  pLo = 0;
  for (let j: u32 = 0; j < count; j++) {
    const e = pl + (<usize>j << 4);
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

// ── Prefixes for the merge (assembly/merge.ts): the same encoding, under a plan kept by the caller,
// so a merge and a sort can interleave. Plan area (PREFIX_PLAN_BYTES): u32 entries, u32 1 if the
// prefix covers the key (equal prefixes = equal keys), u32 W, u32 reserved, then the entries.

// @ts-ignore: decorator
@inline export const PREFIX_PLAN_BYTES: u32 = 16 + PREFIX_BYTES * 16;

/** Writes the prefix plan of (schema, keys) at `pl` (PREFIX_PLAN_BYTES bytes). */
export function prefixPlanInit(pl: usize, schema: usize, keys: usize): void {
  makePlan(schema, keys);
  store<u32>(pl, planCount);
  store<u32>(pl, covered ? 1 : 0, 4);
  store<u32>(pl, bitmapBytes(descFieldCount(schema)), 8);
  store<u32>(pl, 0, 12);
  memory.copy(pl + 16, plan, <usize>planCount << 4);
}

/** The prefix of `row` under the plan at `pl`: u64 at dst (bytes 0–7), u32 at dst + 8 (bytes 8–11), as compared. */
export function rowPrefix(pl: usize, row: usize, dst: usize): void {
  buildPrefixWith(row, pl + 16, load<u32>(pl), load<u32>(pl, 8));
  store<u64>(dst, pHi);
  store<u32>(dst, <u32>(pLo >> 32), 8);
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

// Bytes of the prefix on which the entries differ: the XOR of the OR and the AND of all prefixes,
// accumulated while they are built (bytes 0..7 in diffHi, bytes 8..11 in diffLo's top three quarters).
let diffHi: u64 = 0;
let diffLo: u32 = 0;

/** Whether prefix byte b (0 = most significant) differs between some entries. */
// @ts-ignore: decorator
@inline function varies(b: u32): bool {
  return b < 8 ? ((diffHi >> (<u64>(7 - b) << 3)) & 0xff) != 0 : ((diffLo >> ((11 - b) << 3)) & 0xff) != 0;
}

/** Counts the 256-bucket histograms (in `hist`) of the varying prefix bytes in [from, to) over n entries at src. */
function countBytes(src: usize, n: u32, from: u32, to: u32): void {
  for (let b = from; b < to; b++) {
    if (!varies(b)) continue;
    const h = hist + (<usize>b << 10);
    memory.fill(h, 0, 1024);
    // hot loops inlined by hand: one byte per pass (the entries are in cache after the first)
    if (b < 8) {
      const shift = <u64>(7 - b) << 3;
      for (let i: u32 = 0; i < n; i++) {
        const slot = h + (<usize>(<u32>(load<u64>(src + (<usize>i << 4)) >> shift) & 0xff) << 2);
        store<u32>(slot, load<u32>(slot) + 1);
      }
    } else {
      const shift = <u32>(11 - b) << 3;
      for (let i: u32 = 0; i < n; i++) {
        const slot = h + (<usize>((load<u32>(src + (<usize>i << 4), 12) >> shift) & 0xff) << 2);
        store<u32>(slot, load<u32>(slot) + 1);
      }
    }
  }
}

/**
 * One stable scatter of `n` 16-byte index entries from `src` to `dst` by prefix byte `b` (0–11), `h`
 * holding the 256 buckets' running offsets: one bucket lookup and one 16-byte move per entry. The
 * hot loop of every radix pass, inlined into each.
 */
// @ts-ignore: decorator
@inline function scatterByByte(src: usize, dst: usize, n: u32, h: usize, b: u32): void {
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
}

/**
 * LSD radix passes over n entries at src on the prefix bytes in [from, to) (histograms counted by
 * countBytes), ping-ponging between src and dst; a byte the n entries share costs no pass. Returns
 * where the sorted entries are (src or dst).
 */
function lsdPasses(src: usize, dst: usize, n: u32, from: u32, to: u32): usize {
  for (let b = <i32>to - 1; b >= <i32>from; b--) {
    if (!varies(<u32>b)) continue;
    const h = hist + (<usize>b << 10);
    // a byte every entry shares needs no pass
    if (load<u32>(h + (<usize>prefixByte(src, <u32>b) << 2)) == n) continue;
    let sum: u32 = 0;
    for (let i: u32 = 0; i < 256; i++) {
      const c = load<u32>(h + (<usize>i << 2));
      store<u32>(h + (<usize>i << 2), sum);
      sum += c;
    }
    scatterByByte(src, dst, n, h, b);
    const t = src;
    src = dst;
    dst = t;
  }
  return src;
}

/** Stable insertion sort of n entries at `a` by their prefix words only. */
function insertionSortPrefix(a: usize, n: u32): void {
  for (let i: u32 = 1; i < n; i++) {
    const x = v128.load(entryAt(a, i));
    const xh = load<u64>(entryAt(a, i));
    const xl = load<u32>(entryAt(a, i), 12);
    let j = i;
    while (j > 0) {
      const p = entryAt(a, j - 1);
      const ph = load<u64>(p);
      if (ph < xh || (ph == xh && load<u32>(p, 12) <= xl)) break;
      v128.store(entryAt(a, j), v128.load(p));
      j--;
    }
    if (j != i) v128.store(entryAt(a, j), x);
  }
}

/**
 * Radix sort of n entries on their varying prefix bytes; the result is in `a`. Small inputs, or
 * prefixes varying in one byte only: LSD passes over everything. Otherwise MSD first: one pass
 * partitions the entries on their first varying byte into 256 buckets, then each bucket is sorted
 * on the bytes after it by LSD passes of its own — a bucket is 1/256 of the index, so those passes
 * run in cache instead of streaming the whole index through memory once per byte.
 */
function radixSort(a: usize, tmp: usize, n: u32): void {
  let first: i32 = -1;
  let nv: u32 = 0;
  for (let b: u32 = 0; b < planBytes; b++) {
    if (varies(b)) {
      if (first < 0) first = <i32>b;
      nv++;
    }
  }
  if (nv == 0) return;
  if (n < MSD_MIN || nv == 1) {
    countBytes(a, n, 0, planBytes);
    const r = lsdPasses(a, tmp, n, 0, planBytes);
    if (r != a) memory.copy(a, r, <usize>n << 4);
    return;
  }
  const t = <u32>first;
  countBytes(a, n, t, t + 1);
  const h = hist + (<usize>t << 10);
  let sum: u32 = 0;
  for (let i: u32 = 0; i < 256; i++) {
    const c = load<u32>(h + (<usize>i << 2));
    store<u32>(h + (<usize>i << 2), sum);
    store<u32>(bounds + (<usize>i << 2), sum);
    sum += c;
  }
  store<u32>(bounds + (256 << 2), sum);
  scatterByByte(a, tmp, n, h, t);
  for (let c: u32 = 0; c < 256; c++) {
    const s = load<u32>(bounds + (<usize>c << 2));
    const m = load<u32>(bounds + (<usize>(c + 1) << 2)) - s;
    if (m == 0) continue;
    const bs = entryAt(tmp, s);
    const ba = entryAt(a, s);
    if (m <= SMALL_BUCKET) {
      memory.copy(ba, bs, <usize>m << 4);
      insertionSortPrefix(ba, m);
    } else {
      countBytes(bs, m, t + 1, planBytes);
      const r = lsdPasses(bs, ba, m, t + 1, planBytes);
      if (r != ba) memory.copy(ba, r, <usize>m << 4);
    }
  }
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
  let orHi: u64 = 0;
  let andHi: u64 = u64.MAX_VALUE;
  let orLo: u32 = 0;
  let andLo: u32 = u32.MAX_VALUE;
  let e = index;
  // one non-nullable i64 / timestamp key (the common case): the prefix is the value with its sign bit
  // flipped (and every bit inverted if descending), made inline instead of by buildPrefix
  const t0 = load<u32>(plan, 4);
  const f0 = load<u32>(plan);
  const flags0 = load<u32>(plan, 8);
  const fast = planCount == 1 && (flags0 & 0x100) == 0 && (t0 == TYPE_I64 || t0 == TYPE_TIMESTAMP);
  const flip: u64 = (flags0 & KEY_DESC) != 0 ? 0x7fffffffffffffff : 0x8000000000000000;
  for (let i: u32 = 0; i < nBatches; i++) {
    const batch = <usize>load<u32>(batches + (<usize>i << 2));
    const rows = batchRowCount(batch);
    let row = firstRow(batch);
    if (fast) {
      // hot loop inlined by hand
      for (let r: u32 = 0; r < rows; r++) {
        const v = load<u64>(slotAt(row, gW, f0)) ^ flip;
        store<u64>(e, v);
        store<u32>(e, <u32>row, 8);
        store<u32>(e, 0, 12);
        orHi |= v;
        andHi &= v;
        e += ENTRY_BYTES;
        row += rowLength(row);
      }
      continue;
    }
    for (let r: u32 = 0; r < rows; r++) {
      buildPrefix(row);
      const lo = <u32>(pLo >> 32);
      store<u64>(e, pHi);
      store<u32>(e, <u32>row, 8);
      store<u32>(e, lo, 12);
      orHi |= pHi;
      andHi &= pHi;
      orLo |= lo;
      andLo &= lo;
      e += ENTRY_BYTES;
      row += rowLength(row);
    }
  }
  diffHi = orHi ^ andHi;
  diffLo = fast ? 0 : orLo ^ andLo;
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
  // the batch header is kept in locals and written once: no store → load chain from row to row
  let used = batchByteLength(out);
  let rows = batchRowCount(out);
  let i = startIdx;
  let full = false;
  let need: u32 = 0;
  let touched: u32 = 0;
  // hot loop inlined by hand. The rows are read in random order (a cache and TLB miss each once the
  // rows outgrow the caches): before copying a block of up to GATHER_BLOCK rows, a tight loop touches
  // the first and last word of each (as far as the output has room), so their misses overlap instead
  // of being taken one row at a time
  let blockEnd = i;
  for (; i < count; i++) {
    if (i == blockEnd) {
      const end = min(count, i + GATHER_BLOCK);
      let ahead = <u64>used;
      while (blockEnd < end) {
        const r = <usize>load<u32>(entryAt(index, blockEnd), 8);
        const l = load<u32>(r);
        touched += load<u32>(r + <usize>l - 4);
        blockEnd++;
        ahead += l;
        if (ahead > <u64>cap) break;
      }
    }
    const row = <usize>load<u32>(entryAt(index, i), 8);
    const len = rowLength(row);
    if (<u64>used + <u64>len > <u64>cap) {
      full = true;
      need = len;
      break;
    }
    copyRow(out + used, row, len);
    used += len;
    rows++;
  }
  store<u32>(out + BATCH_OFF_BYTE_LENGTH, used);
  store<u32>(out + BATCH_OFF_ROW_COUNT, rows);
  gatherSink = touched;
  if (full) {
    setResult(i, 0, 0, need);
    return STATUS_FULL;
  }
  setResult(count, 0, 0, 0);
  return STATUS_DONE;
}

/** Writes the row address of index entries [0, count) as u32 at `out` (the sorted order, no copy). */
export function sortedRowPointers(index: usize, count: u32, out: usize): void {
  for (let i: u32 = 0; i < count; i++) store<u32>(out + (<usize>i << 2), load<u32>(entryAt(index, i), 8));
}
