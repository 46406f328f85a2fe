// Owns the row-copying kernels: projection onto a list of fields (var offsets rewritten), gather by a
// selection vector, the row address index gather needs, and writing empty batch headers.
// All output goes to a caller-provided batch with a capacity; a row that does not fit stops the
// kernel with STATUS_FULL and the resume position in the result registers.

import { STATUS_DONE, STATUS_FULL } from './abi.generated';
import { setResult } from './result';
import {
  batchRowCount,
  bitmapBytes,
  descFieldCount,
  descType,
  firstRow,
  fixedEnd,
  isNull,
  isVarType,
  reserveRow,
  rowLength,
  slotAt,
  writeEmptyBatch,
} from './row';

const E_SELECTION = 'gatherBatch: selection index out of range';

/** Writes an empty batch header (magic, byteLength 16, rowCount 0, schemaId) at `ptr`. */
export function initBatch(ptr: usize, schemaId: u32): void {
  writeEmptyBatch(ptr, schemaId);
}

/** Writes the address of every row of `batch` as u32 at `out`; returns the row count. */
export function rowPointers(batch: usize, out: usize): u32 {
  const n = batchRowCount(batch);
  let row = firstRow(batch);
  for (let r: u32 = 0; r < n; r++) {
    store<u32>(out + (<usize>r << 2), <u32>row);
    row += rowLength(row);
  }
  return n;
}

/**
 * Projects rows [startRow, rowCount) of `batch` (startRow at byte offset `startOffset`) onto the
 * fields listed at `fields` (u32[]: [m, fieldIndex...], repeats allowed), appending to the batch at
 * `out` (capacity `cap`, header already valid for the projected schema). The row header's reserved
 * word is carried over. Returns STATUS_DONE or STATUS_FULL (resume with resultRow/resultOffset).
 */
export function projectBatch(batch: usize, schema: usize, fields: usize, out: usize, cap: u32, startRow: u32, startOffset: u32): u32 {
  const n = batchRowCount(batch);
  const w = bitmapBytes(descFieldCount(schema));
  const m = load<u32>(fields);
  const w2 = bitmapBytes(m);
  const fixed2 = fixedEnd(m);
  let row = batch + startOffset;
  for (let r = startRow; r < n; r++) {
    // size of the projected row: fixed part + the kept payloads, padded to 8
    let size = fixed2;
    for (let j: u32 = 0; j < m; j++) {
      const f = load<u32>(fields + 4 + (<usize>j << 2));
      assert(f < descFieldCount(schema), 'projectBatch: field out of range');
      if (isVarType(descType(schema, f)) && !isNull(row, f)) size += load<u32>(slotAt(row, w, f), 4);
    }
    size = (size + 7) & ~7;
    const dst = reserveRow(out, cap, size);
    if (dst == 0) {
      setResult(r, <u32>(row - batch), 0, size);
      return STATUS_FULL;
    }
    store<u32>(dst, size);
    store<u32>(dst, load<u32>(row, 4), 4);
    memory.fill(dst + 8, 0, w2);
    let pos = fixed2;
    for (let j: u32 = 0; j < m; j++) {
      const f = load<u32>(fields + 4 + (<usize>j << 2));
      const src = slotAt(row, w, f);
      const slot = slotAt(dst, w2, j);
      if (isNull(row, f)) {
        const b = dst + 8 + (j >> 3);
        store<u8>(b, <u8>(<u32>load<u8>(b) | (<u32>1 << (j & 7))));
        store<u64>(slot, 0);
      } else if (isVarType(descType(schema, f))) {
        const len = load<u32>(src, 4);
        memory.copy(dst + pos, row + load<u32>(src), len);
        store<u32>(slot, pos);
        store<u32>(slot, len, 4);
        pos += len;
      } else {
        store<u64>(slot, load<u64>(src));
      }
    }
    memory.fill(dst + pos, 0, size - pos);
    row += rowLength(row);
  }
  setResult(n, <u32>(row - batch), 0, 0);
  return STATUS_DONE;
}

/**
 * Copies the rows selected by `sel` (u32 row indices into `batch`; entries [startIdx, selCount)) to
 * the batch at `out` (capacity `cap`), using the row address index `rowPtrs` (see rowPointers).
 * An index ≥ rowCount is a host bug and traps. Returns STATUS_DONE or STATUS_FULL (resume from
 * resultRow, which is a selection index).
 */
export function gatherBatch(batch: usize, rowPtrs: usize, sel: usize, selCount: u32, startIdx: u32, out: usize, cap: u32): u32 {
  const n = batchRowCount(batch);
  for (let i = startIdx; i < selCount; i++) {
    const ix = load<u32>(sel + (<usize>i << 2));
    if (ix >= n) throw new Error(E_SELECTION);
    const row = <usize>load<u32>(rowPtrs + (<usize>ix << 2));
    const len = rowLength(row);
    const dst = reserveRow(out, cap, len);
    if (dst == 0) {
      setResult(i, 0, 0, len);
      return STATUS_FULL;
    }
    memory.copy(dst, row, len);
  }
  setResult(selCount, 0, 0, 0);
  return STATUS_DONE;
}
