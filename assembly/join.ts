// Owns the hash join kernels: a chained hash table of (hash, row address) entries over build-side rows
// that stay in their batches, the probe kernel that writes joined rows (resumable mid-match-list), the
// scan of build rows by their matched bit (outer / semi / anti on the build side), and the seeded
// hash partitioner the hybrid hash join uses to split both inputs (a different seed per recursion level).
//
// ── Table (host-allocated, joinTableBytes(capacity, nBuckets) bytes, u32 words) ─────────────────
//   +0   mask = nBuckets - 1 (nBuckets a power of two)
//   +4   capacity (entries)          +8   count (entries used)
//   +12  build schema descriptor     +16  build key descriptor
//   +20  W (null bitmap bytes) of the build schema      +24  build field count
//   +28  buckets address             +32  entries address        +36  matched bitmap address
//   +40  1 if the build schema has string/bytes/any fields
//   +44  bucket mode: 0 = by hash (bucket = hash & mask), 1 = direct (see joinFinish), 2 = direct
//        with each bucket holding its one entry's row address instead of the entry index + 1,
//        3 = not linked yet (rows inserted since the last joinFinish)
//   +48  i64 smallest key (direct modes)    +56  1 if no direct chain has two entries
//   +60  dense image address (0: none; see joinDense)   +64 its stride S   +68 1 if each image starts
//        with the build row's null-bitmap word          +72 entries whose hash is stored  +76 reserved
//   +80  buckets: nBuckets × u32, entry index + 1 of the chain head (0: empty)
//   then entries: capacity × 12 bytes { u32 hash, u32 row address, u32 next entry index + 1 (0: end) }
//   then the matched bitmap: one bit per entry, ceil(capacity / 64) × 8 bytes
// A build row with a NULL key field gets an entry (so outer scans can emit it) but joins no chain:
// NULL keys never match (SQL). Cost: 12 bytes per entry + 4 per bucket + 1 bit; insert O(1);
// probe O(1 + chain length), with the stored hash rejecting most non-matches before a key compare.
// Inserts only append entries; joinFinish (called before probing, and by joinProbe itself if not)
// links them once — direct or by hash — so a table never pays for both, and a direct table hashes
// no key at all (hashes are computed when a by-hash link first needs them).
//
// Direct mode ("perfect hashing", as DuckDB does for small integer key ranges): when the build side
// has one integer key (i32 / i64 / timestamp / bool) whose values span at most nBuckets, joinFinish
// links the chains by bucket = key − min. Every chain then holds exactly the entries of one key, in
// the same (newest first) order as by hash, so the probe neither hashes nor compares keys and its
// output is the same bytes. An insert after that unlinks the table; joinFinish links it again. When
// no key repeats, an inner join of fixed-width rows (the probe's tight loop) turns the buckets into the rows' addresses (mode 2),
// so a probe row costs one random access fewer; any other probe turns them back first.
//
// Dense image (DuckDB's perfect hash join keeps build columns in arrays indexed by key − min the same
// way): for direct buckets of unique keys over fixed-width build rows of ≤ 64 fields, the host may
// give joinDense a region of joinDenseBytes(t) bytes: a presence bitmap of nBuckets bits, then per
// key value an S-byte image of its build row — the row's null-bitmap word (only when some build row
// has a NULL) and its slots without the key's. The inner-join tight loop then reads one bit and one
// image (S bytes; 8 for a key and one payload) instead of a bucket and a whole build row, so a build
// side of a million rows stays in cache and in the TLB's reach. The key slot of the joined row is the
// probe's (equal as 8 bytes: direct buckets compare the whole slot). Output bytes are the same as the
// other paths'. The image is a copy: entries, buckets and rows stay, so every other probe mode still
// works; an insert drops the image (the host frees it).
//
// ── Probe state (JOIN_PROBE_STATE_BYTES, u32 words; the host zeroes it and sets +4 = 16) ─────────
//   +0 row index  +4 row byte offset  +8 phase (0 row start, 1 walking the chain, 2 row end)
//   +12 next entry index + 1   +16 hash of the row   +20 matched-any flag
//   +24 probe bitmap address (JOIN_PROBE_BITMAP)      +28 bitmap bit of this batch's row 0
//
// ── Joined row: the first side's fields then the second's (probe first unless JOIN_BUILD_FIRST),
// payloads packed in field order (as every writer lays them out), a missing side all NULL, the
// row header's reserved word 0. JOIN_PROBE_ONLY / JOIN_BUILD_ONLY rows are the input rows as they are.

import {
  HASH_NULL,
  HASH_SEED,
  JOIN_BUILD_FIRST,
  JOIN_BUILD_ONLY,
  JOIN_EMIT_MATCH,
  JOIN_EMIT_PROBE_MATCHED,
  JOIN_EMIT_PROBE_UNMATCHED,
  JOIN_MARK_BUILD,
  JOIN_PROBE_BITMAP,
  JOIN_PROBE_ONLY,
  JOIN_SCAN_MATCHED,
  JOIN_TABLE_HEADER_BYTES,
  STATUS_DONE,
  STATUS_FULL,
  TYPE_BOOL,
  TYPE_F64,
  TYPE_I32,
  TYPE_I64,
  TYPE_TIMESTAMP,
} from './abi.generated';
import { compareBytes } from './compare';
import { fmix32, hashRow, hashRowSeeded, murmurWord64 } from './hash';
import { setResult } from './result';
import {
  batchRowCount,
  bitmapBytes,
  copyRow,
  descFieldCount,
  descType,
  fixedEnd,
  isNull,
  isVarType,
  keyCount,
  keyField,
  reserveRow,
  rowLength,
  slotAt,
} from './row';

// @ts-ignore: decorator
@inline const ENTRY_BYTES: usize = 12;

/** Bytes of a table of `capacity` entries and `nBuckets` buckets (a power of two). */
export function joinTableBytes(capacity: u32, nBuckets: u32): u32 {
  return JOIN_TABLE_HEADER_BYTES + nBuckets * 4 + capacity * <u32>ENTRY_BYTES + (((capacity + 63) >> 6) << 3);
}

/** Makes an empty table at `t` (joinTableBytes(capacity, nBuckets) bytes) over rows of `schema`. */
export function joinTableInit(t: usize, capacity: u32, nBuckets: u32, schema: usize, keys: usize): void {
  assert(nBuckets > 0 && (nBuckets & (nBuckets - 1)) == 0, 'joinTableInit: nBuckets must be a power of two');
  const n = descFieldCount(schema);
  let hasVar: u32 = 0;
  for (let i: u32 = 0; i < n; i++) if (isVarType(descType(schema, i))) hasVar = 1;
  const buckets = t + JOIN_TABLE_HEADER_BYTES;
  const entries = buckets + (<usize>nBuckets << 2);
  const matched = entries + <usize>capacity * ENTRY_BYTES;
  memory.fill(t, 0, JOIN_TABLE_HEADER_BYTES);
  store<u32>(t, nBuckets - 1);
  store<u32>(t, capacity, 4);
  store<u32>(t, <u32>schema, 12);
  store<u32>(t, <u32>keys, 16);
  store<u32>(t, bitmapBytes(n), 20);
  store<u32>(t, n, 24);
  store<u32>(t, <u32>buckets, 28);
  store<u32>(t, <u32>entries, 32);
  store<u32>(t, <u32>matched, 36);
  store<u32>(t, hasVar, 40);
  memory.fill(buckets, 0, <usize>nBuckets << 2);
  memory.fill(matched, 0, ((capacity + 63) >> 6) << 3);
}

/** Entries in the table. */
export function joinTableCount(t: usize): u32 {
  return load<u32>(t, 8);
}

// @ts-ignore: decorator
@inline function anyKeyNull(row: usize, keys: usize): bool {
  const nk = keyCount(keys);
  for (let k: u32 = 0; k < nk; k++) if (isNull(row, keyField(keys, k))) return true;
  return false;
}

/**
 * Inserts rows [startRow, rowCount) of `batch` (startRow at byte offset `startOffset`) into the table.
 * The batch must stay in place while the table is used. Returns STATUS_DONE, or STATUS_FULL when the
 * table has no free entry (resultRow / resultOffset: the first row not inserted).
 */
export function joinBuild(t: usize, batch: usize, startRow: u32, startOffset: u32): u32 {
  store<u32>(t, BUCKETS_UNLINKED, 44);
  store<u32>(t, 0, 60);
  const n = batchRowCount(batch);
  const cap = load<u32>(t, 4);
  const entries = <usize>load<u32>(t, 32);
  let count = load<u32>(t, 8);
  let row = batch + startOffset;
  for (let r = startRow; r < n; r++) {
    if (count == cap) {
      store<u32>(t, count, 8);
      setResult(r, <u32>(row - batch), 0, 0);
      return STATUS_FULL;
    }
    const ent = entries + <usize>count * ENTRY_BYTES;
    store<u32>(ent, 0);
    store<u32>(ent, <u32>row, 4);
    store<u32>(ent, 0, 8);
    count++;
    row += rowLength(row);
  }
  store<u32>(t, count, 8);
  setResult(n, <u32>(row - batch), 0, 0);
  return STATUS_DONE;
}

// @ts-ignore: decorator
@inline const BUCKETS_BY_HASH: u32 = 0;
// @ts-ignore: decorator
@inline const BUCKETS_DIRECT: u32 = 1;
// @ts-ignore: decorator
@inline const BUCKETS_DIRECT_ROWS: u32 = 2;
// @ts-ignore: decorator
@inline const BUCKETS_UNLINKED: u32 = 3;

/** Stores the hash of every entry that has none yet (0 for a NULL key). */
function ensureHashes(t: usize): void {
  const count = load<u32>(t, 8);
  let e = load<u32>(t, 72);
  if (e >= count) return;
  const schema = <usize>load<u32>(t, 12);
  const keys = <usize>load<u32>(t, 16);
  const w = load<u32>(t, 20);
  const entries = <usize>load<u32>(t, 32);
  for (; e < count; e++) {
    const ent = entries + <usize>e * ENTRY_BYTES;
    const row = <usize>load<u32>(ent, 4);
    store<u32>(ent, anyKeyNull(row, keys) ? 0 : hashRow(row, w, schema, keys));
  }
  store<u32>(t, count, 72);
}

/** Links every entry with a non-NULL key into the direct chain of its key (min at +48), in insertion order. */
function relinkDirect(t: usize): void {
  const f = keyField(<usize>load<u32>(t, 16), 0);
  const mask = load<u32>(t);
  const buckets = <usize>load<u32>(t, 28);
  const entries = <usize>load<u32>(t, 32);
  const count = load<u32>(t, 8);
  const off = <usize>(8 + load<u32>(t, 20)) + (<usize>f << 3);
  const lo = load<u64>(t, 48);
  let unique: u32 = 1;
  memory.fill(buckets, 0, (<usize>mask + 1) << 2);
  for (let e: u32 = 0; e < count; e++) {
    const ent = entries + <usize>e * ENTRY_BYTES;
    const row = <usize>load<u32>(ent, 4);
    if (isNull(row, f)) continue;
    const b = buckets + (<usize>(<u32>(load<u64>(row + off) - lo)) << 2);
    const head = load<u32>(b);
    if (head != 0) unique = 0;
    store<u32>(ent, head, 8);
    store<u32>(b, e + 1);
  }
  store<u32>(t, unique, 56);
  store<u32>(t, BUCKETS_DIRECT, 44);
}

/** Direct buckets (one entry each) to the address of that entry's row. O(buckets). */
function rowBuckets(t: usize): void {
  const mask = load<u32>(t);
  const buckets = <usize>load<u32>(t, 28);
  const entries = <usize>load<u32>(t, 32);
  for (let b: u32 = 0; b <= mask; b++) {
    const p = buckets + (<usize>b << 2);
    const x = load<u32>(p);
    if (x != 0) store<u32>(p, load<u32>(entries + <usize>(x - 1) * ENTRY_BYTES, 4));
  }
  store<u32>(t, BUCKETS_DIRECT_ROWS, 44);
}

/** Relinks every chain by hash & mask (the entries keep their hashes), in insertion order. */
function relinkByHash(t: usize): void {
  ensureHashes(t);
  const mask = load<u32>(t);
  const keys = <usize>load<u32>(t, 16);
  const buckets = <usize>load<u32>(t, 28);
  const entries = <usize>load<u32>(t, 32);
  const count = load<u32>(t, 8);
  memory.fill(buckets, 0, (<usize>mask + 1) << 2);
  for (let e: u32 = 0; e < count; e++) {
    const ent = entries + <usize>e * ENTRY_BYTES;
    if (anyKeyNull(<usize>load<u32>(ent, 4), keys)) continue;
    const b = buckets + (<usize>(load<u32>(ent) & mask) << 2);
    store<u32>(ent, load<u32>(b), 8);
    store<u32>(b, e + 1);
  }
  store<u32>(t, BUCKETS_BY_HASH, 44);
}

/**
 * Called after the last insert, before probing (joinProbe calls it if not): links the entries —
 * direct buckets when the table's one key field is an integer type and the non-NULL keys span at
 * most nBuckets values, else by hash. Linking walks the entries in insertion order, so chain order is
 * the same either way. Returns the bucket mode (0 by hash, 1 direct). O(entries).
 */
export function joinFinish(t: usize): u32 {
  if (load<u32>(t, 44) != BUCKETS_UNLINKED) return load<u32>(t, 44);
  const mode = linkDirect(t) ? BUCKETS_DIRECT : BUCKETS_BY_HASH;
  if (mode == BUCKETS_BY_HASH) relinkByHash(t);
  return mode;
}

/** Links the table by direct buckets if it qualifies (see joinFinish); false if it does not. */
function linkDirect(t: usize): bool {
  const schema = <usize>load<u32>(t, 12);
  const keys = <usize>load<u32>(t, 16);
  if (keyCount(keys) != 1) return false;
  const f = keyField(keys, 0);
  const ty = descType(schema, f);
  if (ty != TYPE_I64 && ty != TYPE_I32 && ty != TYPE_TIMESTAMP && ty != TYPE_BOOL) return false;
  const mask = load<u32>(t);
  const entries = <usize>load<u32>(t, 32);
  const count = load<u32>(t, 8);
  const off = <usize>(8 + load<u32>(t, 20)) + (<usize>f << 3);
  let lo = i64.MAX_VALUE;
  let hi = i64.MIN_VALUE;
  for (let e: u32 = 0; e < count; e++) {
    const row = <usize>load<u32>(entries + <usize>e * ENTRY_BYTES, 4);
    if (isNull(row, f)) continue;
    const v = load<i64>(row + off);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi || <u64>hi - <u64>lo > <u64>mask) return false;
  store<i64>(t, lo, 48);
  relinkDirect(t);
  return true;
}

/**
 * Bytes of the dense image of table `t` (see the header), or 0 when it cannot have one: not direct
 * buckets (joinFinish first), a key that repeats, string / bytes / any build fields, or more than 64
 * build fields. Also fixes the image's stride and whether it keeps null words (+64, +68). O(entries).
 */
export function joinDenseBytes(t: usize): u32 {
  const mode = load<u32>(t, 44);
  if ((mode != BUCKETS_DIRECT && mode != BUCKETS_DIRECT_ROWS) || load<u32>(t, 56) == 0 || load<u32>(t, 40) != 0) return 0;
  const bn = load<u32>(t, 24);
  if (bn > 64) return 0;
  const entries = <usize>load<u32>(t, 32);
  const count = load<u32>(t, 8);
  let nulls: u64 = 0;
  for (let e: u32 = 0; e < count; e++) nulls |= load<u64>(<usize>load<u32>(entries + <usize>e * ENTRY_BYTES, 4), 8);
  const withNulls: u32 = nulls != 0 ? 1 : 0;
  const stride = (withNulls << 3) + ((bn - 1) << 3);
  store<u32>(t, stride, 64);
  store<u32>(t, withNulls, 68);
  const range = <u64>load<u32>(t) + 1;
  const bytes = (((range + 63) >> 6) << 3) + range * <u64>stride;
  return bytes > <u64>0x7fffffff ? 0 : <u32>bytes;
}

/** Fills the dense image at `d` (joinDenseBytes(t) bytes, called just before) and attaches it to `t`. */
export function joinDense(t: usize, d: usize): void {
  const range = load<u32>(t) + 1;
  const stride = <usize>load<u32>(t, 64);
  const withNulls = load<u32>(t, 68) != 0;
  const bn = load<u32>(t, 24);
  const f = keyField(<usize>load<u32>(t, 16), 0);
  const entries = <usize>load<u32>(t, 32);
  const count = load<u32>(t, 8);
  const slots: usize = 8 + <usize>load<u32>(t, 20);
  const off = slots + (<usize>f << 3);
  const lo = load<u64>(t, 48);
  const presenceBytes = <usize>((range + 63) >> 6) << 3;
  const images = d + presenceBytes;
  memory.fill(d, 0, presenceBytes);
  const before = <usize>f << 3;
  const after = <usize>(bn - 1 - f) << 3;
  for (let e: u32 = 0; e < count; e++) {
    const row = <usize>load<u32>(entries + <usize>e * ENTRY_BYTES, 4);
    if (isNull(row, f)) continue;
    const x = <usize>(<u32>(load<u64>(row + off) - lo));
    store<u8>(d + (x >> 3), <u8>(<u32>load<u8>(d + (x >> 3)) | (<u32>1 << <u32>(x & 7))));
    let img = images + x * stride;
    if (withNulls) {
      store<u64>(img, load<u64>(row, 8));
      img += 8;
    }
    memory.copy(img, row + slots, before);
    memory.copy(img + before, row + off + 8, after);
  }
  store<u32>(t, <u32>d, 60);
}

/** Key equality of a probe row and a build row (no NULL keys): abi/abi.ts compare order == 0. */
// @ts-ignore: decorator
@inline function keysEqual(p: usize, pw: u32, ps: usize, pk: usize, b: usize, bw: u32, bk: usize): bool {
  const nk = keyCount(pk);
  for (let k: u32 = 0; k < nk; k++) {
    const fp = keyField(pk, k);
    const fb = keyField(bk, k);
    const t = descType(ps, fp);
    const sp = slotAt(p, pw, fp);
    const sb = slotAt(b, bw, fb);
    if (isVarType(t)) {
      const lp = load<u32>(sp, 4);
      if (lp != load<u32>(sb, 4)) return false;
      if (compareBytes(p + load<u32>(sp), lp, b + load<u32>(sb), lp) != 0) return false;
    } else if (t == TYPE_F64) {
      const x = load<f64>(sp);
      const y = load<f64>(sb);
      if (!(x == y || (x != x && y != y))) return false;
    } else if (load<u64>(sp) != load<u64>(sb)) {
      return false;
    }
  }
  return true;
}

/** Payload bytes of the non-null var fields of a row (0 for a missing row or a fixed-only schema). */
// @ts-ignore: decorator
@inline function varBytes(row: usize, n: u32, w: u32, desc: usize, hasVar: bool): u32 {
  if (row == 0 || !hasVar) return 0;
  let s: u32 = 0;
  for (let i: u32 = 0; i < n; i++) if (isVarType(descType(desc, i)) && !isNull(row, i)) s += load<u32>(slotAt(row, w, i), 4);
  return s;
}

/** Size of a joined row of n fields from rows with `vb` payload bytes in all. */
// @ts-ignore: decorator
@inline function joinedSize(n: u32, vb: u32): u32 {
  return (fixedEnd(n) + vb + 7) & ~7;
}

/**
 * Writes one side of a joined row at field offset `off`: null bits, slots and payloads (from `pos`).
 * `row` 0 writes all NULL. Returns the new payload position.
 */
function writeSide(dst: usize, outW: u32, off: u32, row: usize, n: u32, w: u32, desc: usize, hasVar: bool, pos: u32): u32 {
  const slots = dst + 8 + outW + (<usize>off << 3);
  if (row == 0) {
    for (let i: u32 = 0; i < n; i++) {
      const f = off + i;
      const b = dst + 8 + (f >> 3);
      store<u8>(b, <u8>(<u32>load<u8>(b) | (<u32>1 << (f & 7))));
    }
    memory.fill(slots, 0, <usize>n << 3);
    return pos;
  }
  // null bitmap: the row's words shifted to bit `off` (its bits past n are clear)
  const shift = <u64>(off & 63);
  const outWords = outW >> 3;
  for (let j: u32 = 0; j < (w >> 3); j++) {
    const v = load<u64>(row + 8 + (<usize>j << 3));
    if (v == 0) continue;
    const wi = (off >> 6) + j;
    const p = dst + 8 + (<usize>wi << 3);
    store<u64>(p, load<u64>(p) | (v << shift));
    if (shift != 0 && wi + 1 < outWords) store<u64>(p, load<u64>(p, 8) | (v >> (64 - shift)), 8);
  }
  memory.copy(slots, row + 8 + w, <usize>n << 3);
  if (hasVar) {
    for (let i: u32 = 0; i < n; i++) {
      if (!isVarType(descType(desc, i)) || isNull(row, i)) continue;
      const s = slots + (<usize>i << 3);
      const len = load<u32>(s, 4);
      memory.copy(dst + pos, row + load<u32>(s), len);
      store<u32>(s, pos);
      pos += len;
    }
  }
  return pos;
}

/** Writes a joined row of `size` bytes: first side (a, na fields) then second (b, nb fields). */
function writeJoined(
  dst: usize,
  size: u32,
  a: usize, na: u32, aw: u32, ad: usize, av: bool,
  b: usize, nb: u32, bw: u32, bd: usize, bv: bool,
): void {
  const n = na + nb;
  const outW = bitmapBytes(n);
  store<u32>(dst, size);
  store<u32>(dst, 0, 4);
  memory.fill(dst + 8, 0, outW);
  let pos = fixedEnd(n);
  pos = writeSide(dst, outW, 0, a, na, aw, ad, av, pos);
  pos = writeSide(dst, outW, na, b, nb, bw, bd, bv, pos);
  memory.fill(dst + pos, 0, size - pos);
}

/** The output batch is full at probe row r (byte offset `off`): header, state and result; STATUS_FULL. */
// @ts-ignore: decorator
@inline function probeFull(out: usize, used: u32, cnt: u32, st: usize, r: u32, off: u32, phase: u32, e: u32, h: u32, size: u32): u32 {
  store<u32>(out, used, 4);
  store<u32>(out, cnt, 8);
  saveProbe(st, r, off, phase, e, h, phase);
  setResult(r, off, 0, size);
  return STATUS_FULL;
}

// @ts-ignore: decorator
@inline function saveProbe(st: usize, r: u32, off: u32, phase: u32, e: u32, h: u32, any: u32): void {
  store<u32>(st, r);
  store<u32>(st, off, 4);
  store<u32>(st, phase, 8);
  store<u32>(st, e, 12);
  store<u32>(st, h, 16);
  store<u32>(st, any, 20);
}

// ── Probe pipeline: rows are taken CHUNK at a time. For a chunk, pass 1 hashes every row's key (or,
// with direct buckets, subtracts the smallest key) and keeps the bucket index, pass 2 loads the bucket
// heads (independent loads, so their cache misses overlap), then rows are walked one by one. (A third
// pass that touched each head entry and its build row first was measured slower on the bench join,
// with direct and hashed buckets alike, and was dropped.) An inner join of fixed-width rows by one key
// field walks the chunk in a tight loop of its own; everything else takes the general loop. The
// per-chunk arrays are a static area (no allocation); a call that resumes (STATUS_FULL) recomputes them
// from its first row, whose own chain position comes from the state. Single fixed-width keys hash and
// compare as one 64-bit word (f64 canonicalized); joined rows of fixed-width sides within one bitmap
// word are written as bitmap word + slot copies.

// @ts-ignore: decorator
@inline const CHUNK: u32 = 128;
/** Per chunk: u32 hash, u32 head entry index + 1 (0: none), u32 bucket index. */
const chunkHash: usize = memory.data(<i32>(CHUNK * 4), 16);
const chunkHead: usize = memory.data(<i32>(CHUNK * 4), 16);

// @ts-ignore: decorator
@inline const KEY_GENERIC: u32 = 0;
// @ts-ignore: decorator
@inline const KEY_WORD: u32 = 1;
// @ts-ignore: decorator
@inline const KEY_F64: u32 = 2;
// @ts-ignore: decorator
@inline const KEY_DIRECT: u32 = 3;

/** Copies `bytes` (a multiple of 8) from src to dst, 16 then 8 at a time. */
// @ts-ignore: decorator
@inline function copyWords(dst: usize, src: usize, bytes: u32): void {
  let i: u32 = 0;
  while (i + 16 <= bytes) {
    v128.store(dst + i, v128.load(src + i));
    i += 16;
  }
  if (i < bytes) store<u64>(dst + i, load<u64>(src + i));
}

/** Joined row of two fixed-width-only rows, na + nb <= 64 (one bitmap word each and out). */
// @ts-ignore: decorator
@inline function writeJoinedFixed(dst: usize, size: u32, a: usize, na: u32, b: usize, nb: u32): void {
  store<u32>(dst, size);
  store<u32>(dst, 0, 4);
  store<u64>(dst, load<u64>(a, 8) | (load<u64>(b, 8) << <u64>na), 8);
  copyWords(dst + 16, a + 16, na << 3);
  copyWords(dst + 16 + (<usize>na << 3), b + 16, nb << 3);
}

/** Hash of a single fixed-width key slot (abi/abi.ts canonical bytes; f64 canonicalized). */
// @ts-ignore: decorator
@inline function hashKeyWord(slot: usize, kind: u32): u32 {
  if (kind == KEY_F64) {
    const v = load<f64>(slot);
    if (v != v) return murmurWord64(0, 0x7ff80000, HASH_SEED);
    if (v == 0) return murmurWord64(0, 0, HASH_SEED);
  }
  return murmurWord64(load<u32>(slot), load<u32>(slot, 4), HASH_SEED);
}

/**
 * Probes the rows of `batch` (schema `ps`, key descriptor `pk`: the same number and types of key
 * fields as the table's) against table `t`, from the position in the probe state `st`, appending
 * output rows to the batch at `out` (capacity `cap`) as `mode` asks:
 *   JOIN_EMIT_MATCH            a joined row per (probe row, matching build row)
 *   JOIN_MARK_BUILD            set the matched bit of every matching build entry
 *   JOIN_EMIT_PROBE_MATCHED    the probe row once if it matched (semi)
 *   JOIN_EMIT_PROBE_UNMATCHED  the probe row if it matched nothing (outer: NULL build fields; anti)
 *   JOIN_PROBE_ONLY            probe-row outputs are the probe row alone (semi / anti)
 *   JOIN_BUILD_FIRST           joined rows are build fields then probe fields
 *   JOIN_PROBE_BITMAP          "matched" also reads / sets bit (base + row) of the bitmap in the state
 *                              (a probe run joined against several build chunks)
 * Returns STATUS_DONE, or STATUS_FULL (resultBytes: the row that did not fit) with the state at that
 * row, even in the middle of its match list: flush `out` and call again with the same state.
 */
export function joinProbe(t: usize, batch: usize, ps: usize, pk: usize, mode: u32, st: usize, out: usize, cap: u32): u32 {
  if (load<u32>(t, 44) == BUCKETS_UNLINKED) joinFinish(t);
  const n = batchRowCount(batch);
  const pn = descFieldCount(ps);
  const pw = bitmapBytes(pn);
  let pv = false;
  if ((mode & JOIN_EMIT_MATCH) != 0 || (mode & JOIN_PROBE_ONLY) == 0) for (let i: u32 = 0; i < pn; i++) if (isVarType(descType(ps, i))) pv = true;
  const mask = load<u32>(t);
  const bd = <usize>load<u32>(t, 12);
  const bk = <usize>load<u32>(t, 16);
  const bw = load<u32>(t, 20);
  const bn = load<u32>(t, 24);
  const buckets = <usize>load<u32>(t, 28);
  const entries = <usize>load<u32>(t, 32);
  const matched = <usize>load<u32>(t, 36);
  const bv = load<u32>(t, 40) != 0;
  const buildFirst = (mode & JOIN_BUILD_FIRST) != 0;
  const emitMatch = (mode & JOIN_EMIT_MATCH) != 0;
  const markBuild = (mode & JOIN_MARK_BUILD) != 0;
  const walkAll = emitMatch || markBuild;
  const useBitmap = (mode & JOIN_PROBE_BITMAP) != 0;
  const bm = <usize>load<u32>(st, 24);
  const bmBase = load<u32>(st, 28);
  const outN = pn + bn;
  // joined rows of fixed-width sides in one bitmap word: bitmap word + slot copies
  const fixedOut = emitMatch && !pv && !bv && outN <= 64;
  const fixedSize = joinedSize(outN, 0);
  // a single fixed-width key: one word per side at a fixed offset
  let keyKind = KEY_GENERIC;
  const pf = keyField(pk, 0);
  const bf = keyField(bk, 0);
  if (keyCount(pk) == 1) {
    const kt = descType(ps, pf);
    if (load<u32>(t, 44) != BUCKETS_BY_HASH) keyKind = KEY_DIRECT;
    else if (kt == TYPE_F64) keyKind = KEY_F64;
    else if (!isVarType(kt)) keyKind = KEY_WORD;
  }
  const minKey = load<u64>(t, 48);
  const pKeyOff = <usize>(8 + pw) + (<usize>pf << 3);
  const bKeyOff = <usize>(8 + bw) + (<usize>bf << 3);
  // inner join of fixed-width rows by a one-field key: the tight loop below
  const fast = fixedOut && !useBitmap && keyKind != KEY_GENERIC && (mode & ~JOIN_BUILD_FIRST) == JOIN_EMIT_MATCH;
  // direct buckets of unique keys hold row addresses for the tight loop (mode 2), entry indexes else
  // a dense image (joinDense) serves the tight loop on its own, without the buckets
  const dense = fast && keyKind == KEY_DIRECT && load<u32>(t, 60) != 0;
  if (dense) return probeDense(t, batch, pf, pn, pKeyOff, buildFirst, fixedSize, st, out, cap);
  const byRow = fast && keyKind == KEY_DIRECT && load<u32>(t, 56) != 0;
  if (byRow && load<u32>(t, 44) == BUCKETS_DIRECT) rowBuckets(t);
  else if (!byRow && load<u32>(t, 44) == BUCKETS_DIRECT_ROWS) relinkDirect(t);

  let r = load<u32>(st);
  let row = batch + load<u32>(st, 4);
  let phase = load<u32>(st, 8);
  let e = load<u32>(st, 12);
  let h = load<u32>(st, 16);
  let any = load<u32>(st, 20);
  let chunkStart = r;
  let chunkEnd = r;
  while (r < n) {
    if (r == chunkEnd) {
      // pass 1: hashes and bucket indexes (0xffffffff: a NULL key, no chain)
      chunkStart = r;
      chunkEnd = min(n, r + CHUNK);
      const m = chunkEnd - chunkStart;
      let q = row;
      if (keyKind == KEY_DIRECT) {
        // bucket = key − min; a key outside [min, min + mask] has no chain (hash unused)
        for (let i: u32 = 0; i < m; i++) {
          const d = load<u64>(q + pKeyOff) - minKey;
          store<u32>(chunkHead + (<usize>i << 2), isNull(q, pf) || d > <u64>mask ? 0xffffffff : <u32>d);
          q += rowLength(q);
        }
      } else if (keyKind != KEY_GENERIC) {
        for (let i: u32 = 0; i < m; i++) {
          const hi = hashKeyWord(q + pKeyOff, keyKind);
          store<u32>(chunkHash + (<usize>i << 2), hi);
          store<u32>(chunkHead + (<usize>i << 2), isNull(q, pf) ? 0xffffffff : hi & mask);
          q += rowLength(q);
        }
      } else {
        for (let i: u32 = 0; i < m; i++) {
          let b: u32 = 0xffffffff;
          if (!anyKeyNull(q, pk)) {
            const hi = hashRow(q, pw, ps, pk);
            store<u32>(chunkHash + (<usize>i << 2), hi);
            b = hi & mask;
          }
          store<u32>(chunkHead + (<usize>i << 2), b);
          q += rowLength(q);
        }
      }
      // pass 2: bucket heads
      for (let i: u32 = 0; i < m; i++) {
        const p = chunkHead + (<usize>i << 2);
        const b = load<u32>(p);
        store<u32>(p, b == 0xffffffff ? 0 : load<u32>(buckets + (<usize>b << 2)));
      }
    }
    if (byRow) {
      // the rest of the chunk: each probe row has at most one build row, whose address pass 2 loaded
      let used = load<u32>(out, 4);
      let cnt = load<u32>(out, 8);
      while (r < chunkEnd) {
        let b = <usize>load<u32>(chunkHead + (<usize>(r - chunkStart) << 2));
        if (phase != 0) b = e == 0 ? 0 : <usize>load<u32>(entries + <usize>(e - 1) * ENTRY_BYTES, 4);
        if (b != 0) {
          if (<u64>used + <u64>fixedSize > <u64>cap) return probeFull(out, used, cnt, st, r, <u32>(row - batch), 0, 0, 0, fixedSize);
          const dst = out + used;
          used += fixedSize;
          cnt++;
          if (buildFirst) writeJoinedFixed(dst, fixedSize, b, bn, row, pn);
          else writeJoinedFixed(dst, fixedSize, row, pn, b, bn);
        }
        phase = 0;
        e = 0;
        row += rowLength(row);
        r++;
      }
      store<u32>(out, used, 4);
      store<u32>(out, cnt, 8);
      continue;
    }
    if (fast) {
      // the rest of the chunk in a tight loop (output header kept in locals)
      let used = load<u32>(out, 4);
      let cnt = load<u32>(out, 8);
      while (r < chunkEnd) {
        if (phase == 0) {
          const i = <usize>(r - chunkStart) << 2;
          e = load<u32>(chunkHead + i);
          h = load<u32>(chunkHash + i);
        }
        while (e != 0) {
          const ent = entries + <usize>(e - 1) * ENTRY_BYTES;
          const b = <usize>load<u32>(ent, 4);
          let eq: bool;
          if (keyKind == KEY_DIRECT) eq = true;
          else if (load<u32>(ent) != h) eq = false;
          else if (keyKind == KEY_WORD) eq = load<u64>(row + pKeyOff) == load<u64>(b + bKeyOff);
          else {
            const x = load<f64>(row + pKeyOff);
            const y = load<f64>(b + bKeyOff);
            eq = x == y || (x != x && y != y);
          }
          if (eq) {
            if (<u64>used + <u64>fixedSize > <u64>cap) return probeFull(out, used, cnt, st, r, <u32>(row - batch), 1, e, h, fixedSize);
            const dst = out + used;
            used += fixedSize;
            cnt++;
            if (buildFirst) writeJoinedFixed(dst, fixedSize, b, bn, row, pn);
            else writeJoinedFixed(dst, fixedSize, row, pn, b, bn);
          }
          e = load<u32>(ent, 8);
        }
        phase = 0;
        row += rowLength(row);
        r++;
      }
      store<u32>(out, used, 4);
      store<u32>(out, cnt, 8);
      continue;
    }
    if (phase == 0) {
      any = 0;
      if (useBitmap) {
        const bit = bmBase + r;
        any = (<u32>load<u8>(bm + (bit >> 3)) >> (bit & 7)) & 1;
      }
      const i = <usize>(r - chunkStart) << 2;
      e = load<u32>(chunkHead + i);
      h = load<u32>(chunkHash + i);
      if (any != 0 && !walkAll) e = 0;
      phase = 1;
    }
    if (phase == 1) {
      while (e != 0) {
        const ent = entries + <usize>(e - 1) * ENTRY_BYTES;
        // direct buckets: every entry of the chain has the probe row's key
        if (keyKind == KEY_DIRECT || load<u32>(ent) == h) {
          const b = <usize>load<u32>(ent, 4);
          let eq: bool;
          if (keyKind == KEY_DIRECT) eq = true;
          else if (keyKind == KEY_WORD) eq = load<u64>(row + pKeyOff) == load<u64>(b + bKeyOff);
          else if (keyKind == KEY_F64) {
            const x = load<f64>(row + pKeyOff);
            const y = load<f64>(b + bKeyOff);
            eq = x == y || (x != x && y != y);
          } else eq = keysEqual(row, pw, ps, pk, b, bw, bk);
          if (eq) {
            any = 1;
            if (markBuild) {
              const p = matched + (<usize>(e - 1) >> 3);
              store<u8>(p, <u8>(<u32>load<u8>(p) | (<u32>1 << ((e - 1) & 7))));
            }
            if (emitMatch) {
              const size = fixedOut ? fixedSize : joinedSize(outN, varBytes(row, pn, pw, ps, pv) + varBytes(b, bn, bw, bd, bv));
              const dst = reserveRow(out, cap, size);
              if (dst == 0) {
                saveProbe(st, r, <u32>(row - batch), 1, e, h, any);
                setResult(r, <u32>(row - batch), 0, size);
                return STATUS_FULL;
              }
              if (fixedOut) {
                if (buildFirst) writeJoinedFixed(dst, size, b, bn, row, pn);
                else writeJoinedFixed(dst, size, row, pn, b, bn);
              } else if (buildFirst) writeJoined(dst, size, b, bn, bw, bd, bv, row, pn, pw, ps, pv);
              else writeJoined(dst, size, row, pn, pw, ps, pv, b, bn, bw, bd, bv);
            } else if (!markBuild) {
              break;
            }
          }
        }
        e = load<u32>(ent, 8);
      }
      e = 0;
      if (useBitmap && any != 0) {
        const bit = bmBase + r;
        const p = bm + (bit >> 3);
        store<u8>(p, <u8>(<u32>load<u8>(p) | (<u32>1 << (bit & 7))));
      }
      phase = 2;
    }
    // phase 2: the probe row's own output, if any
    if ((any != 0 && (mode & JOIN_EMIT_PROBE_MATCHED) != 0) || (any == 0 && (mode & JOIN_EMIT_PROBE_UNMATCHED) != 0)) {
      const probeOnly = (mode & JOIN_PROBE_ONLY) != 0;
      const size = probeOnly ? rowLength(row) : joinedSize(outN, varBytes(row, pn, pw, ps, pv));
      const dst = reserveRow(out, cap, size);
      if (dst == 0) {
        saveProbe(st, r, <u32>(row - batch), 2, 0, h, any);
        setResult(r, <u32>(row - batch), 0, size);
        return STATUS_FULL;
      }
      if (probeOnly) copyRow(dst, row, size);
      else if (buildFirst) writeJoined(dst, size, 0, bn, bw, bd, bv, row, pn, pw, ps, pv);
      else writeJoined(dst, size, row, pn, pw, ps, pv, 0, bn, bw, bd, bv);
    }
    row += rowLength(row);
    r++;
    phase = 0;
  }
  saveProbe(st, n, <u32>(row - batch), 0, 0, 0, 0);
  setResult(n, <u32>(row - batch), 0, 0);
  return STATUS_DONE;
}

/** Staging of gathered dense images for one chunk of probe rows (probeDense). */
// @ts-ignore: decorator
@inline const DENSE_STAGE_BYTES: u32 = 16384;
// @ts-ignore: decorator
@inline const DENSE_CHUNK: u32 = 1024;
const denseStage: usize = memory.data(<i32>DENSE_STAGE_BYTES, 16);
/** Per row of the chunk: its image index, 0xffffffff when it has no partner. */
const denseIdx: usize = memory.data(<i32>(DENSE_CHUNK * 4), 16);

/**
 * The inner-join loop over a dense image (see the header), a chunk of probe rows at a time: pass 1
 * finds each row's key value and presence bit, pass 2 gathers the present rows' images into a staging
 * area (a tight loop of independent loads, so their cache and TLB misses overlap), pass 3 writes the
 * joined rows from the probe rows and the staged images. Same contract as joinProbe; a call that
 * resumes (STATUS_FULL) starts a new chunk at its row.
 */
function probeDense(t: usize, batch: usize, pf: u32, pn: u32, pKeyOff: usize, buildFirst: bool, size: u32, st: usize, out: usize, cap: u32): u32 {
  const n = batchRowCount(batch);
  const mask = load<u32>(t);
  const d = <usize>load<u32>(t, 60);
  const stride = load<u32>(t, 64);
  const withNulls = load<u32>(t, 68) != 0;
  const bn = load<u32>(t, 24);
  const bf = keyField(<usize>load<u32>(t, 16), 0);
  const minKey = load<u64>(t, 48);
  const images = d + (<usize>((<u64>mask + 64) >> 6) << 3);
  const before = bf << 3;
  const after = (bn - 1 - bf) << 3;
  // where the probe's and the build's slots go in a joined row, and their bitmap shifts
  const probeSlots: usize = buildFirst ? 16 + (<usize>bn << 3) : 16;
  const buildSlots: usize = buildFirst ? 16 : 16 + (<usize>pn << 3);
  const probeShift: u64 = buildFirst ? <u64>bn : 0;
  const buildShift: u64 = buildFirst ? 0 : <u64>pn;
  const pBytes = pn << 3;
  const onePayload = bn == 2;
  const keyFirst = bf == 0;
  const chunk: u32 = stride == 0 ? DENSE_CHUNK : max<u32>(1, min<u32>(DENSE_CHUNK, DENSE_STAGE_BYTES / stride));
  let used = load<u32>(out, 4);
  let cnt = load<u32>(out, 8);
  let r = load<u32>(st);
  let row = batch + load<u32>(st, 4);
  while (r < n) {
    const m = min(n - r, chunk);
    // pass 1: the image index of each row (0xffffffff: no partner)
    let q = row;
    for (let i: u32 = 0; i < m; i++) {
      const x = load<u64>(q + pKeyOff) - minKey;
      let v: u32 = 0xffffffff;
      if (x <= <u64>mask && !isNull(q, pf)) {
        const xi = <u32>x;
        if (((<u32>load<u8>(d + (xi >> 3)) >> (xi & 7)) & 1) != 0) v = xi;
      }
      store<u32>(denseIdx + (<usize>i << 2), v);
      q += rowLength(q);
    }
    // pass 2: gather the images
    if (stride == 8) {
      for (let i: u32 = 0; i < m; i++) {
        const v = load<u32>(denseIdx + (<usize>i << 2));
        if (v != 0xffffffff) store<u64>(denseStage + (<usize>i << 3), load<u64>(images + (<usize>v << 3)));
      }
    } else if (stride != 0) {
      for (let i: u32 = 0; i < m; i++) {
        const v = load<u32>(denseIdx + (<usize>i << 2));
        if (v != 0xffffffff) copyWords(denseStage + <usize>i * stride, images + <usize>v * stride, stride);
      }
    }
    // pass 3: the joined rows
    for (let i: u32 = 0; i < m; i++) {
      if (load<u32>(denseIdx + (<usize>i << 2)) != 0xffffffff) {
        if (<u64>used + <u64>size > <u64>cap) return probeFull(out, used, cnt, st, r, <u32>(row - batch), 0, 0, 0, size);
        const dst = out + used;
        used += size;
        cnt++;
        let img = denseStage + <usize>i * stride;
        let bits = load<u64>(row, 8) << probeShift;
        if (withNulls) {
          bits |= load<u64>(img) << buildShift;
          img += 8;
        }
        store<u64>(dst, <u64>size);
        store<u64>(dst, bits, 8);
        copyWords(dst + probeSlots, row + 16, pBytes);
        const bs = dst + buildSlots;
        const key = load<u64>(row + pKeyOff);
        if (onePayload) {
          // the key and one payload word, in field order
          const w = load<u64>(img);
          store<u64>(bs, keyFirst ? key : w);
          store<u64>(bs, keyFirst ? w : key, 8);
        } else {
          copyWords(bs, img, before);
          store<u64>(bs + before, key);
          copyWords(bs + before + 8, img + before, after);
        }
      }
      row += rowLength(row);
      r++;
    }
  }
  store<u32>(out, used, 4);
  store<u32>(out, cnt, 8);
  saveProbe(st, n, <u32>(row - batch), 0, 0, 0, 0);
  setResult(n, <u32>(row - batch), 0, 0);
  return STATUS_DONE;
}

/**
 * Emits the table's build rows whose matched bit is set (JOIN_SCAN_MATCHED) or clear (otherwise),
 * from entry `*st` on, in insertion order, to the batch at `out` (capacity `cap`): the build row
 * alone (JOIN_BUILD_ONLY) or joined with `pn` NULL probe fields (probe first unless JOIN_BUILD_FIRST).
 * Returns STATUS_DONE, or STATUS_FULL (resultBytes) with `*st` at the row that did not fit.
 */
export function joinScan(t: usize, mode: u32, pn: u32, st: usize, out: usize, cap: u32): u32 {
  const bd = <usize>load<u32>(t, 12);
  const bw = load<u32>(t, 20);
  const bn = load<u32>(t, 24);
  const entries = <usize>load<u32>(t, 32);
  const matched = <usize>load<u32>(t, 36);
  const bv = load<u32>(t, 40) != 0;
  const count = load<u32>(t, 8);
  const want: u32 = (mode & JOIN_SCAN_MATCHED) != 0 ? 1 : 0;
  const buildOnly = (mode & JOIN_BUILD_ONLY) != 0;
  const buildFirst = (mode & JOIN_BUILD_FIRST) != 0;
  const outN = pn + bn;
  for (let i = load<u32>(st); i < count; i++) {
    if (((<u32>load<u8>(matched + (i >> 3)) >> (i & 7)) & 1) != want) continue;
    const row = <usize>load<u32>(entries + <usize>i * ENTRY_BYTES, 4);
    const size = buildOnly ? rowLength(row) : joinedSize(outN, varBytes(row, bn, bw, bd, bv));
    const dst = reserveRow(out, cap, size);
    if (dst == 0) {
      store<u32>(st, i);
      setResult(i, 0, 0, size);
      return STATUS_FULL;
    }
    if (buildOnly) copyRow(dst, row, size);
    else if (buildFirst) writeJoined(dst, size, row, bn, bw, bd, bv, 0, pn, 0, 0, false);
    else writeJoined(dst, size, 0, pn, 0, 0, false, row, bn, bw, bd, bv);
  }
  store<u32>(st, count);
  setResult(count, 0, 0, 0);
  return STATUS_DONE;
}


/**
 * Routes rows [startRow, rowCount) of `batch` to 2^bits outputs (table: nOut × (u32 ptr, u32 cap),
 * each a valid batch) by the top `bits` bits of the key hash with `seed`; with `dropNullKeys` a row
 * with a NULL key field goes nowhere. Returns STATUS_DONE or STATUS_FULL (resultRow / resultOffset:
 * the row that did not fit, resultIndex: its output, resultBytes: its size), as partitionBatch.
 */
export function joinPartition(batch: usize, schema: usize, keys: usize, seed: u32, bits: u32, dropNullKeys: u32, table: usize, startRow: u32, startOffset: u32): u32 {
  assert(bits <= 16, 'joinPartition: at most 16 bits');
  const n = batchRowCount(batch);
  const w = bitmapBytes(descFieldCount(schema));
  let row = batch + startOffset;
  for (let r = startRow; r < n; r++) {
    const len = rowLength(row);
    if (dropNullKeys != 0 && anyKeyNull(row, keys)) {
      row += len;
      continue;
    }
    const p: u32 = bits == 0 ? 0 : fmix32(hashRowSeeded(row, w, schema, keys, seed)) >> (32 - bits);
    const entry = table + (<usize>p << 3);
    const dst = reserveRow(load<u32>(entry), load<u32>(entry, 4), len);
    if (dst == 0) {
      setResult(r, <u32>(row - batch), p, len);
      return STATUS_FULL;
    }
    copyRow(dst, row, len);
    row += len;
  }
  setResult(n, <u32>(row - batch), 0, 0);
  return STATUS_DONE;
}
