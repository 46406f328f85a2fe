// Owns the k-way merge of sorted runs: a loser tree (tournament tree) over the current row of each
// run, the rows copied to an output batch in key order. Runs arrive a batch at a time: when a run's
// batch is used up the kernel stops with STATUS_NEED_INPUT (resultIndex = the run) and the host
// feeds that run's next batch, or 0 for "run ended"; a full output stops it with STATUS_FULL.
// Cost: one replay of log2(k) comparisons per row written. Each run keeps its current row's
// normalized-key prefix (the sort's encoding, assembly/sort.ts rowPrefix, made once per row), so a
// comparison is two integer compares; only equal prefixes of a key the prefix does not cover
// (strings, long multi-field keys) fall back to compareRows.
//
// ── Merge state (host-allocated, mergeStateBytes(k) bytes, 8-byte aligned, u32 words) ─────────
//   +0   k
//   +4   schema descriptor address
//   +8   key descriptor address
//   +12  null bitmap bytes W of the schema
//   +16  phase: 0 waiting for every run's first row, 1 merging, 2 done
//   +20  run whose replay waits for input (NO_RUN if none)
//   +24  reserved (0)
//   +28  reserved (0)
//   +32  the prefix plan (PREFIX_PLAN_BYTES, assembly/sort.ts prefixPlanInit)
//   then k run records of 32 bytes:
//          +0 current row address   +4 rows left in the batch after it
//          +8 status (RUN_EMPTY needs input, RUN_ROW has a row, RUN_ENDED)   +12 reserved
//          +16 u64 and +24 u32: the current row's key prefix   +28 reserved
//   then k u32: the loser tree (slot 0: the winner; slots 1..k-1: the loser at each inner node)
//   then k u32: scratch for building the tree
//
// Order: compareRows, then the lower run index first, an ended run after everything. So the merge
// is deterministic, and stable when the runs are consecutive pieces of the input in order.

import { STATUS_DONE, STATUS_FULL, STATUS_NEED_INPUT } from './abi.generated';
import { compareRows } from './compare';
import { setResult } from './result';
import { batchRowCount, bitmapBytes, copyRow, descFieldCount, firstRow, reserveRow, rowLength } from './row';
import { PREFIX_PLAN_BYTES, prefixPlanInit, rowPrefix } from './sort';

// @ts-ignore: decorator
@inline const PLAN: usize = 32;
// @ts-ignore: decorator
@inline const HEADER: usize = 32 + <usize>PREFIX_PLAN_BYTES;
// @ts-ignore: decorator
@inline const RUN_BYTES: u32 = 32;
// @ts-ignore: decorator
@inline const NO_RUN: u32 = 0xffffffff;
// @ts-ignore: decorator
@inline const RUN_EMPTY: u32 = 0;
// @ts-ignore: decorator
@inline const RUN_ROW: u32 = 1;
// @ts-ignore: decorator
@inline const RUN_ENDED: u32 = 2;

const E_RUN = 'mergeFeed: run out of range or not waiting for input';

// @ts-ignore: decorator
@inline function runAt(st: usize, r: u32): usize {
  return st + HEADER + (<usize>r << 5);
}

/** Makes run r's current row `row` (its prefix with it). */
// @ts-ignore: decorator
@inline function setRow(st: usize, run: usize, row: usize): void {
  store<u32>(run, <u32>row);
  rowPrefix(st + PLAN, row, run + 16);
}

// @ts-ignore: decorator
@inline function treeAt(st: usize, k: u32, i: u32): usize {
  return st + HEADER + (<usize>k << 5) + (<usize>i << 2);
}

// @ts-ignore: decorator
@inline function winAt(st: usize, k: u32, i: u32): usize {
  return st + HEADER + (<usize>k << 5) + (<usize>k << 2) + (<usize>i << 2);
}

/** Bytes of the merge state for k runs. */
export function mergeStateBytes(k: u32): u32 {
  return <u32>HEADER + k * (RUN_BYTES + 8);
}

/** Starts a merge of k runs in the state at `st`; every run waits for its first batch. */
export function mergeInit(st: usize, k: u32, schema: usize, keys: usize): void {
  memory.fill(st, 0, mergeStateBytes(k));
  store<u32>(st, k);
  store<u32>(st, <u32>schema, 4);
  store<u32>(st, <u32>keys, 8);
  store<u32>(st, bitmapBytes(descFieldCount(schema)), 12);
  store<u32>(st, NO_RUN, 20);
  prefixPlanInit(st + PLAN, schema, keys);
}

/**
 * Gives run `r` (which must be waiting for input) its next batch, or ends it with batch = 0. An
 * empty batch leaves the run waiting. The batch must stay in place until the run asks again.
 */
export function mergeFeed(st: usize, r: u32, batch: usize): void {
  if (r >= load<u32>(st)) throw new Error(E_RUN);
  const run = runAt(st, r);
  if (load<u32>(run, 8) != RUN_EMPTY) throw new Error(E_RUN);
  if (batch == 0) {
    store<u32>(run, 0);
    store<u32>(run, RUN_ENDED, 8);
    return;
  }
  const n = batchRowCount(batch);
  if (n == 0) return;
  setRow(st, run, firstRow(batch));
  store<u32>(run, n - 1, 4);
  store<u32>(run, RUN_ROW, 8);
}

/** Run a beats run b: an ended run loses to all, then the key, then the lower index. */
// @ts-ignore: decorator
@inline function beats(st: usize, a: u32, b: u32): bool {
  const ra = runAt(st, a);
  const rb = runAt(st, b);
  if (load<u32>(ra, 8) == RUN_ENDED) return false;
  if (load<u32>(rb, 8) == RUN_ENDED) return true;
  const ha = load<u64>(ra, 16);
  const hb = load<u64>(rb, 16);
  if (ha != hb) return ha < hb;
  const la = load<u32>(ra, 24);
  const lb = load<u32>(rb, 24);
  if (la != lb) return la < lb;
  if (load<u32>(st, PLAN + 4) != 0) return a < b;
  const c = compareRows(<usize>load<u32>(ra), <usize>load<u32>(rb), load<u32>(st, 12), <usize>load<u32>(st, 4), <usize>load<u32>(st, 8));
  return c < 0 || (c == 0 && a < b);
}

/** Plays run r's new row up from its leaf; the winner lands in slot 0. */
function replay(st: usize, k: u32, r: u32): void {
  let winner = r;
  let node = (r + k) >> 1;
  while (node > 0) {
    const p = treeAt(st, k, node);
    const other = load<u32>(p);
    if (beats(st, other, winner)) {
      store<u32>(p, winner);
      winner = other;
    }
    node >>= 1;
  }
  store<u32>(treeAt(st, k, 0), winner);
}

/** Builds the tree bottom-up: leaves are nodes k..2k-1, inner node j has children 2j and 2j+1. */
function build(st: usize, k: u32): void {
  for (let j = k - 1; j >= 1; j--) {
    const ca = j << 1;
    const cb = ca + 1;
    const a = ca >= k ? ca - k : load<u32>(winAt(st, k, ca));
    const b = cb >= k ? cb - k : load<u32>(winAt(st, k, cb));
    const bWins = beats(st, b, a);
    store<u32>(winAt(st, k, j), bWins ? b : a);
    store<u32>(treeAt(st, k, j), bWins ? a : b);
  }
  store<u32>(treeAt(st, k, 0), k == 1 ? 0 : load<u32>(winAt(st, k, 1)));
}

/**
 * Merges into the batch at `out` (capacity `cap`) until one of:
 *   STATUS_DONE        every run has ended (the output holds the last rows)
 *   STATUS_FULL        the next row does not fit: resultBytes is its size; flush `out` and call again
 *   STATUS_NEED_INPUT  run resultIndex needs mergeFeed (its next batch, or 0 to end it); call again.
 *                      The run's previous batch is no longer referenced and may be freed.
 */
export function mergeStep(st: usize, out: usize, cap: u32): u32 {
  const k = load<u32>(st);
  const phase = load<u32>(st, 16);
  if (phase == 2 || k == 0) {
    store<u32>(st, 2, 16);
    setResult(0, 0, 0, 0);
    return STATUS_DONE;
  }
  if (phase == 0) {
    for (let r: u32 = 0; r < k; r++) {
      if (load<u32>(runAt(st, r), 8) == RUN_EMPTY) {
        setResult(0, 0, r, 0);
        return STATUS_NEED_INPUT;
      }
    }
    build(st, k);
    store<u32>(st, 1, 16);
  } else {
    const pending = load<u32>(st, 20);
    if (pending != NO_RUN) {
      if (load<u32>(runAt(st, pending), 8) == RUN_EMPTY) {
        setResult(0, 0, pending, 0);
        return STATUS_NEED_INPUT;
      }
      replay(st, k, pending);
      store<u32>(st, NO_RUN, 20);
    }
  }
  for (;;) {
    const w = load<u32>(treeAt(st, k, 0));
    const run = runAt(st, w);
    if (load<u32>(run, 8) == RUN_ENDED) {
      store<u32>(st, 2, 16);
      setResult(0, 0, 0, 0);
      return STATUS_DONE;
    }
    const row = <usize>load<u32>(run);
    const len = rowLength(row);
    const dst = reserveRow(out, cap, len);
    if (dst == 0) {
      setResult(0, 0, 0, len);
      return STATUS_FULL;
    }
    copyRow(dst, row, len);
    const left = load<u32>(run, 4);
    if (left == 0) {
      store<u32>(run, 0);
      store<u32>(run, RUN_EMPTY, 8);
      store<u32>(st, w, 20);
      setResult(0, 0, w, 0);
      return STATUS_NEED_INPUT;
    }
    setRow(st, run, row + len);
    store<u32>(run, left - 1, 4);
    replay(st, k, w);
  }
  return unreachable();
}
