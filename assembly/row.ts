// Owns reading the binary batch/row layout of abi/abi.ts from linear memory: descriptors, headers,
// null bits, slots, the schema fingerprint, and appending whole rows to an output batch.
// Everything here is @inline: these are the inner-loop accessors of every kernel.
//
//   batch  +0 magic | +4 byteLength | +8 rowCount | +12 schemaId | +16 rows...
//   row    +0 rowLength | +4 reserved | +8 null bitmap (W bytes) | +8+W 8-byte slots | var part
//   schema descriptor  u32[]: [nFields, typeCode | TYPE_NULLABLE_BIT, ...]
//   key descriptor     u32[]: [nKeys, fieldIndex, flags, fieldIndex, flags, ...]

import {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  BATCH_OFF_BYTE_LENGTH,
  BATCH_OFF_MAGIC,
  BATCH_OFF_ROW_COUNT,
  BATCH_OFF_SCHEMA_ID,
  ROW_HEADER_BYTES,
  SLOT_BYTES,
  TYPE_ANY,
  TYPE_BYTES,
  TYPE_NULLABLE_BIT,
  TYPE_STRING,
} from './abi.generated';

// ── descriptors ──────────────────────────────────────────────────────────────────────────────

// @ts-ignore: decorator
@inline export function descFieldCount(desc: usize): u32 {
  return load<u32>(desc);
}

// @ts-ignore: decorator
@inline export function descType(desc: usize, i: u32): u32 {
  return load<u32>(desc + 4 + (<usize>i << 2)) & 0xff;
}

// @ts-ignore: decorator
@inline export function descNullable(desc: usize, i: u32): bool {
  return (load<u32>(desc + 4 + (<usize>i << 2)) & TYPE_NULLABLE_BIT) != 0;
}

// @ts-ignore: decorator
@inline export function keyCount(keys: usize): u32 {
  return load<u32>(keys);
}

// @ts-ignore: decorator
@inline export function keyField(keys: usize, k: u32): u32 {
  return load<u32>(keys + 4 + (<usize>k << 3));
}

// @ts-ignore: decorator
@inline export function keyFlags(keys: usize, k: u32): u32 {
  return load<u32>(keys + 8 + (<usize>k << 3));
}

/** string, bytes and any keep their payload in the variable part. */
// @ts-ignore: decorator
@inline export function isVarType(t: u32): bool {
  return t == TYPE_STRING || t == TYPE_BYTES || t == TYPE_ANY;
}

/** The schema fingerprint of src/core/schema.ts (FNV-1a over count byte, then code | 0x80 if nullable). */
export function schemaFingerprint(desc: usize): u32 {
  const n = descFieldCount(desc);
  let h: u32 = 0x811c9dc5;
  h = (h ^ (n & 0xff)) * 0x01000193;
  for (let i: u32 = 0; i < n; i++) {
    const code = descType(desc, i) | (descNullable(desc, i) ? 0x80 : 0);
    h = (h ^ code) * 0x01000193;
  }
  return h;
}

// ── rows ─────────────────────────────────────────────────────────────────────────────────────

/** W: null bitmap bytes for n fields, ceil(n / 64) * 8. */
// @ts-ignore: decorator
@inline export function bitmapBytes(n: u32): u32 {
  return ((n + 63) >> 6) << 3;
}

/** Offset of the variable part (end of the fixed slots) for n fields. */
// @ts-ignore: decorator
@inline export function fixedEnd(n: u32): u32 {
  return ROW_HEADER_BYTES + bitmapBytes(n) + n * SLOT_BYTES;
}

// @ts-ignore: decorator
@inline export function rowLength(row: usize): u32 {
  return load<u32>(row);
}

// @ts-ignore: decorator
@inline export function isNull(row: usize, i: u32): bool {
  return ((load<u8>(row + ROW_HEADER_BYTES + (i >> 3)) >> (i & 7)) & 1) != 0;
}

// @ts-ignore: decorator
@inline export function slotAt(row: usize, w: u32, i: u32): usize {
  return row + ROW_HEADER_BYTES + w + (<usize>i << 3);
}

// ── batches ──────────────────────────────────────────────────────────────────────────────────

// @ts-ignore: decorator
@inline export function batchByteLength(batch: usize): u32 {
  return load<u32>(batch + BATCH_OFF_BYTE_LENGTH);
}

// @ts-ignore: decorator
@inline export function batchRowCount(batch: usize): u32 {
  return load<u32>(batch + BATCH_OFF_ROW_COUNT);
}

// @ts-ignore: decorator
@inline export function firstRow(batch: usize): usize {
  return batch + BATCH_HEADER_BYTES;
}

/** Writes the header of an empty batch at `ptr`. */
export function writeEmptyBatch(ptr: usize, schemaId: u32): void {
  store<u32>(ptr + BATCH_OFF_MAGIC, BATCH_MAGIC);
  store<u32>(ptr + BATCH_OFF_BYTE_LENGTH, BATCH_HEADER_BYTES);
  store<u32>(ptr + BATCH_OFF_ROW_COUNT, 0);
  store<u32>(ptr + BATCH_OFF_SCHEMA_ID, schemaId);
}

/**
 * Reserves `size` bytes at the end of the batch at `out` (capacity `cap`) and counts one more row.
 * Returns the address to write the row at, or 0 when it does not fit.
 */
// @ts-ignore: decorator
@inline export function reserveRow(out: usize, cap: u32, size: u32): usize {
  const used = batchByteLength(out);
  assert(used >= BATCH_HEADER_BYTES && (used & 7) == 0, 'reserveRow: output is not a batch');
  if (<u64>used + <u64>size > <u64>cap) return 0;
  store<u32>(out + BATCH_OFF_BYTE_LENGTH, used + size);
  store<u32>(out + BATCH_OFF_ROW_COUNT, batchRowCount(out) + 1);
  return out + used;
}

/**
 * Copies a row (`len` a multiple of 8) 16 bytes at a time: rows are mostly a few dozen bytes, where
 * memory.copy's call overhead dominates on some engines; long rows still go to memory.copy.
 */
// @ts-ignore: decorator
@inline export function copyRow(dst: usize, src: usize, len: u32): void {
  if (len > 256) {
    memory.copy(dst, src, len);
    return;
  }
  let i: u32 = 0;
  while (i + 16 <= len) {
    v128.store(dst + i, v128.load(src + i));
    i += 16;
  }
  if (i < len) store<u64>(dst + i, load<u64>(src + i));
}
