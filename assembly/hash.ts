// Owns the key hash kernel: murmur3_x86_32 chained over each key field's canonical bytes, exactly as
// abi/abi.ts specifies and src/core/hash.ts implements (the TS spec; tests check bit-for-bit equality).

import { HASH_NULL, HASH_SEED, STATUS_DONE, TYPE_F64 } from './abi.generated';
import { batchRowCount, bitmapBytes, descFieldCount, descType, firstRow, isNull, isVarType, keyCount, keyField, rowLength, slotAt } from './row';

// @ts-ignore: decorator
@inline const C1: u32 = 0xcc9e2d51;
// @ts-ignore: decorator
@inline const C2: u32 = 0x1b873593;

// @ts-ignore: decorator
@inline export function fmix32(h: u32): u32 {
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

// @ts-ignore: decorator
@inline function mixK(k: u32): u32 {
  return rotl<u32>(k * C1, 15) * C2;
}

// @ts-ignore: decorator
@inline function mixH(h: u32, k: u32): u32 {
  return rotl<u32>(h ^ mixK(k), 13) * 5 + 0xe6546b64;
}

/** murmur3_x86_32 of `len` bytes at `p` with `seed` (word-at-a-time; wasm loads may be unaligned). */
export function murmurBytes(p: usize, len: u32, seed: u32): u32 {
  let h = seed;
  const end = p + (<usize>len & ~(<usize>3));
  while (p < end) {
    h = mixH(h, load<u32>(p));
    p += 4;
  }
  const tail = len & 3;
  if (tail != 0) {
    let k: u32 = load<u8>(p);
    if (tail > 1) k |= <u32>load<u8>(p, 1) << 8;
    if (tail > 2) k |= <u32>load<u8>(p, 2) << 16;
    h ^= mixK(k);
  }
  return fmix32(h ^ len);
}

/** murmur3_x86_32 of the 8 little-endian bytes lo, hi. */
// @ts-ignore: decorator
@inline export function murmurWord64(lo: u32, hi: u32, seed: u32): u32 {
  return fmix32(mixH(mixH(seed, lo), hi) ^ 8);
}

/** Key hash of one row (W = null bitmap bytes of the schema). */
export function hashRow(row: usize, w: u32, schema: usize, keys: usize): u32 {
  return hashRowSeeded(row, w, schema, keys, HASH_SEED);
}

/** The key hash of abi/abi.ts started from `seed` instead of HASH_SEED (hash join's per-level partitioning). */
export function hashRowSeeded(row: usize, w: u32, schema: usize, keys: usize, seed: u32): u32 {
  let h = seed;
  const nk = keyCount(keys);
  for (let k: u32 = 0; k < nk; k++) {
    const f = keyField(keys, k);
    assert(f < descFieldCount(schema), 'hashRow: key field out of range');
    if (isNull(row, f)) {
      h = fmix32(h ^ HASH_NULL);
      continue;
    }
    const t = descType(schema, f);
    const slot = slotAt(row, w, f);
    if (isVarType(t)) {
      h = murmurBytes(row + load<u32>(slot), load<u32>(slot, 4), h);
    } else if (t == TYPE_F64) {
      const v = load<f64>(slot);
      if (v != v) h = murmurWord64(0, 0x7ff80000, h);
      else if (v == 0) h = murmurWord64(0, 0, h);
      else h = murmurWord64(load<u32>(slot), load<u32>(slot, 4), h);
    } else {
      // i32 (stored sign-extended), i64, timestamp, bool: the slot's 8 bytes are the canonical bytes
      h = murmurWord64(load<u32>(slot), load<u32>(slot, 4), h);
    }
  }
  return h;
}

/** Writes the key hash of every row of a (validated) batch as u32 at `out`. Returns STATUS_DONE. */
export function hashBatch(batch: usize, schema: usize, keys: usize, out: usize): u32 {
  const n = batchRowCount(batch);
  const w = bitmapBytes(descFieldCount(schema));
  let row = firstRow(batch);
  for (let r: u32 = 0; r < n; r++) {
    store<u32>(out + (<usize>r << 2), hashRow(row, w, schema, keys));
    row += rowLength(row);
  }
  return STATUS_DONE;
}
