// Owns the hash-partition kernel: routes each row of a batch to one of N output batches by key group
// (Flink's KeyGroupRangeAssignment), resumable when an output fills.

import { STATUS_DONE, STATUS_FULL } from './abi.generated';
import { hashRow } from './hash';
import { setResult } from './result';
import { batchRowCount, bitmapBytes, descFieldCount, reserveRow, rowLength } from './row';

/**
 * Routes rows [startRow, rowCount) of `batch` (startRow at byte offset `startOffset` from the batch)
 * into the outputs listed at `table` as nOut × (u32 ptr, u32 capacity); each output must already hold
 * a valid batch (see initBatch) and rows are appended to it.
 * keyGroup = hash % maxParallelism; partition = floor(keyGroup * nOut / maxParallelism).
 * Returns STATUS_DONE, or STATUS_FULL with resultRow/resultOffset (the row that did not fit),
 * resultIndex (its partition) and resultBytes (its size); the host flushes that output and resumes.
 */
export function partitionBatch(
  batch: usize,
  schema: usize,
  keys: usize,
  maxParallelism: u32,
  nOut: u32,
  table: usize,
  startRow: u32,
  startOffset: u32,
): u32 {
  assert(maxParallelism > 0 && nOut > 0 && nOut <= maxParallelism, 'partitionBatch: bad parallelism');
  const n = batchRowCount(batch);
  const w = bitmapBytes(descFieldCount(schema));
  let row = batch + startOffset;
  for (let r = startRow; r < n; r++) {
    const len = rowLength(row);
    const kg = hashRow(row, w, schema, keys) % maxParallelism;
    const p = <u32>((<u64>kg * <u64>nOut) / <u64>maxParallelism);
    const entry = table + (<usize>p << 3);
    const dst = reserveRow(load<u32>(entry), load<u32>(entry, 4), len);
    if (dst == 0) {
      setResult(r, <u32>(row - batch), p, len);
      return STATUS_FULL;
    }
    memory.copy(dst, row, len);
    row += len;
  }
  setResult(n, <u32>(row - batch), 0, 0);
  return STATUS_DONE;
}
