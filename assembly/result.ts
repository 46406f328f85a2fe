// Owns the result registers of resumable kernels: after STATUS_FULL the host reads where to resume
// (row index and byte offset into the input), which output is full, and how many bytes the row needs.
// Numbers only, read by the host through the exported getters (one call each per FULL, not per row).

let resRow: u32 = 0;
let resOffset: u32 = 0;
let resIndex: u32 = 0;
let resBytes: u32 = 0;

export function setResult(row: u32, offset: u32, index: u32, bytes: u32): void {
  resRow = row;
  resOffset = offset;
  resIndex = index;
  resBytes = bytes;
}

/** Row (or selection) index to resume from after FULL; the input row count after DONE. */
export function resultRow(): u32 {
  return resRow;
}

/** Byte offset of that row from the start of the input batch (pass it back to resume in O(1)). */
export function resultOffset(): u32 {
  return resOffset;
}

/** Index of the output that is full (partition index; 0 for single-output kernels). */
export function resultIndex(): u32 {
  return resIndex;
}

/** Bytes the row that did not fit needs (so the host can tell "flush" from "row larger than a buffer"). */
export function resultBytes(): u32 {
  return resBytes;
}
