// Owns key comparison of binary rows (the order abi/abi.ts defines) and the pairwise compare kernel.
// `compareRows` is the one per-row comparator; the sort kernel will call it directly.

import { KEY_DESC, KEY_NULLS_FIRST, STATUS_DONE, TYPE_BOOL, TYPE_F64 } from './abi.generated';
import { bitmapBytes, descFieldCount, descType, isNull, isVarType, keyCount, keyField, keyFlags, slotAt } from './row';

/**
 * Unsigned bytewise order of two byte strings, a proper prefix first. 16 bytes per step with SIMD
 * (the first differing lane from the equality bitmask), then 8 (byte-swapped to compare as big-endian
 * words), then single bytes.
 */
export function compareBytes(a: usize, la: u32, b: usize, lb: u32): i32 {
  const n = min(la, lb);
  let i: u32 = 0;
  while (i + 16 <= n) {
    const m = i8x16.bitmask(i8x16.eq(v128.load(a + i), v128.load(b + i)));
    if (m != 0xffff) {
      const j = i + <u32>ctz(~m);
      return load<u8>(a + j) < load<u8>(b + j) ? -1 : 1;
    }
    i += 16;
  }
  if (i + 8 <= n) {
    const x = load<u64>(a + i);
    const y = load<u64>(b + i);
    if (x != y) return bswap<u64>(x) < bswap<u64>(y) ? -1 : 1;
    i += 8;
  }
  while (i < n) {
    const x = load<u8>(a + i);
    const y = load<u8>(b + i);
    if (x != y) return x < y ? -1 : 1;
    i++;
  }
  return la < lb ? -1 : la > lb ? 1 : 0;
}

/** f64 order: -inf < … < -0 = +0 < … < +inf < NaN, all NaNs equal. */
// @ts-ignore: decorator
@inline function compareF64(x: f64, y: f64): i32 {
  const xn = x != x;
  const yn = y != y;
  if (xn || yn) return xn && yn ? 0 : xn ? 1 : -1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Compares two rows of the same schema by a key descriptor: -1, 0 or 1.
 * KEY_DESC reverses non-null values; nulls go last unless KEY_NULLS_FIRST, in either direction.
 */
export function compareRows(a: usize, b: usize, w: u32, schema: usize, keys: usize): i32 {
  const nk = keyCount(keys);
  for (let k: u32 = 0; k < nk; k++) {
    const f = keyField(keys, k);
    const flags = keyFlags(keys, k);
    assert(f < descFieldCount(schema), 'compareRows: key field out of range');
    const na = isNull(a, f);
    const nb = isNull(b, f);
    if (na || nb) {
      if (na && nb) continue;
      const first = (flags & KEY_NULLS_FIRST) != 0;
      return na == first ? -1 : 1;
    }
    const t = descType(schema, f);
    const sa = slotAt(a, w, f);
    const sb = slotAt(b, w, f);
    let c: i32;
    if (isVarType(t)) {
      c = compareBytes(a + load<u32>(sa), load<u32>(sa, 4), b + load<u32>(sb), load<u32>(sb, 4));
    } else if (t == TYPE_F64) {
      c = compareF64(load<f64>(sa), load<f64>(sb));
    } else if (t == TYPE_BOOL) {
      const x = load<u64>(sa);
      const y = load<u64>(sb);
      c = x < y ? -1 : x > y ? 1 : 0;
    } else {
      const x = load<i64>(sa);
      const y = load<i64>(sb);
      c = x < y ? -1 : x > y ? 1 : 0;
    }
    if (c != 0) return (flags & KEY_DESC) != 0 ? -c : c;
  }
  return 0;
}

/**
 * For nPairs pairs of row addresses at `pairs` (u32 rowA, u32 rowB), writes compareRows(a, b) as i32
 * at `out`. Returns STATUS_DONE.
 */
export function compareRowPairs(pairs: usize, nPairs: u32, schema: usize, keys: usize, out: usize): u32 {
  const w = bitmapBytes(descFieldCount(schema));
  for (let i: u32 = 0; i < nPairs; i++) {
    const p = pairs + (<usize>i << 3);
    store<i32>(out + (<usize>i << 2), compareRows(<usize>load<u32>(p), <usize>load<u32>(p, 4), w, schema, keys));
  }
  return STATUS_DONE;
}
