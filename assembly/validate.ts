// Owns batch validation: the one check that untrusted bytes (network, spill files, other threads)
// are a well-formed batch of a given schema. Every other kernel trusts a batch that passed it, so
// this must never trap or read outside [ptr, ptr + len) whatever the bytes are.

import {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  ROW_HEADER_BYTES,
  STATUS_CORRUPT,
  STATUS_DONE,
  STATUS_SCHEMA_MISMATCH,
  TYPE_BOOL,
  TYPE_I32,
} from './abi.generated';
import { setResult } from './result';
import { bitmapBytes, descFieldCount, descNullable, descType, isNull, isVarType, schemaFingerprint, slotAt } from './row';

/**
 * Checks the batch at `ptr` (at most `len` bytes readable) against the schema descriptor `schema`:
 * magic; byteLength ≥ 16, ≤ len, multiple of 8; schemaId == fingerprint(schema) (else
 * STATUS_SCHEMA_MISMATCH); then every row: rowLength a multiple of 8, at least the fixed part, inside
 * the batch; null bitmap bits beyond the fields clear; null only in nullable fields and with an
 * all-zero slot; bool slots 0 or 1; i32 slots sign-extended; string/bytes/any payloads inside the
 * row's variable part; and rowCount rows exactly filling byteLength. Returns STATUS_DONE if valid.
 * The row header's reserved word is not checked (it is kept for a future row kind).
 * After CORRUPT, resultRow/resultOffset name the offending row (resultRow = 0xFFFFFFFF: the header).
 */
export function validateBatch(ptr: usize, len: u32, schema: usize): u32 {
  setResult(u32.MAX_VALUE, 0, 0, 0);
  if (len < BATCH_HEADER_BYTES || (ptr & 7) != 0) return STATUS_CORRUPT;
  if (load<u32>(ptr) != BATCH_MAGIC) return STATUS_CORRUPT;
  const byteLength = load<u32>(ptr, 4);
  if (byteLength < BATCH_HEADER_BYTES || byteLength > len || (byteLength & 7) != 0) return STATUS_CORRUPT;
  if (load<u32>(ptr, 12) != schemaFingerprint(schema)) return STATUS_SCHEMA_MISMATCH;
  const rowCount = load<u32>(ptr, 8);
  const n = descFieldCount(schema);
  const w = bitmapBytes(n);
  const fixed = <u64>ROW_HEADER_BYTES + <u64>w + (<u64>n << 3);
  const tailBits = n & 63;
  let off: u32 = BATCH_HEADER_BYTES;
  for (let r: u32 = 0; r < rowCount; r++) {
    const left = byteLength - off;
    if (left < ROW_HEADER_BYTES) return corruptAt(r, off);
    const row = ptr + off;
    const rl = load<u32>(row);
    if ((rl & 7) != 0 || <u64>rl < fixed || rl > left) return corruptAt(r, off);
    if (tailBits != 0) {
      const last = load<u64>(row + ROW_HEADER_BYTES + w - 8);
      if ((last >> <u64>tailBits) != 0) return corruptAt(r, off);
    }
    const fx = <u32>fixed;
    for (let i: u32 = 0; i < n; i++) {
      const slot = slotAt(row, w, i);
      if (isNull(row, i)) {
        if (!descNullable(schema, i) || load<u64>(slot) != 0) return corruptAt(r, off);
        continue;
      }
      const t = descType(schema, i);
      if (isVarType(t)) {
        const o = load<u32>(slot);
        const l = load<u32>(slot, 4);
        if (o < fx || <u64>o + <u64>l > <u64>rl) return corruptAt(r, off);
      } else if (t == TYPE_BOOL) {
        if (load<u64>(slot) > 1) return corruptAt(r, off);
      } else if (t == TYPE_I32) {
        const v = load<i64>(slot);
        if (v != <i64><i32>v) return corruptAt(r, off);
      }
    }
    off += rl;
  }
  if (off != byteLength) return corruptAt(rowCount, off);
  setResult(rowCount, off, 0, 0);
  return STATUS_DONE;
}

/** Records where validation failed (row index, byte offset) for the host's error message. */
function corruptAt(row: u32, offset: u32): u32 {
  setResult(row, offset, 0, 0);
  return STATUS_CORRUPT;
}
