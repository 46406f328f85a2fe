// Owns the managed-memory segment pool: fixed-size segments (SEGMENT_BYTES) carved out of linear memory
// above the static data, allocated in contiguous runs and freed back to the pool.
//
// Bookkeeping is two static bitmaps, one bit per possible segment of a 4 GiB memory (16 KiB each):
//   used   bit s set ⇔ segment s belongs to some allocation
//   start  bit s set ⇔ segment s is the first segment of an allocation (so `segFree` needs no length)
// The free "lists" are the runs of clear bits in `used`: freeing coalesces for free, so a run of n
// contiguous segments is found whenever n adjacent ones are free. Cost: a single-segment alloc is O(1)
// amortised (a hint word skips full words); an n-segment alloc is a first-fit scan, O(segments / 64)
// words plus O(n) bits. memory.grow happens only when no free run fits.
//
//   linear memory:  [ static data + bitmaps ][ pad to SEGMENT_BYTES ][ seg 0 ][ seg 1 ] ... [ seg total-1 ]

import { SEGMENT_BYTES } from './abi.generated';

// @ts-ignore: decorator
@inline const MAX_SEGMENTS: u32 = <u32>((<u64>65536 * 65536) / SEGMENT_BYTES);
// @ts-ignore: decorator
@inline const MAP_WORDS: u32 = MAX_SEGMENTS / 64;

const usedMap: usize = memory.data(16384, 16);
const startMap: usize = memory.data(16384, 16);

let base: usize = 0; // address of segment 0 (0 until the pool is first touched)
let total: u32 = 0; // segments currently backed by linear memory
let inUse: u32 = 0; // segments currently allocated
let hint: u32 = 0; // no word below this index has a free bit

const E_BAD_FREE = 'segFree: not the start of a live allocation';
const E_ZERO = 'segAlloc: zero segments';

function init(): void {
  if (base != 0) return;
  // a compile-time check that the bitmaps are as large as the segment size requires
  if (MAP_WORDS * 8 > 16384) unreachable();
  base = (__heap_base + SEGMENT_BYTES - 1) & ~(<usize>SEGMENT_BYTES - 1);
  const bytes = <u64>memory.size() << 16;
  total = bytes > <u64>base ? <u32>((bytes - <u64>base) / SEGMENT_BYTES) : 0;
}

// @ts-ignore: decorator
@inline function wordAt(map: usize, w: u32): u64 {
  return load<u64>(map + (<usize>w << 3));
}

// @ts-ignore: decorator
@inline function bitAt(map: usize, s: u32): bool {
  return <bool>((wordAt(map, s >> 6) >> (<u64>(s & 63))) & 1);
}

// @ts-ignore: decorator
@inline function setBit(map: usize, s: u32): void {
  const p = map + (<usize>(s >> 6) << 3);
  store<u64>(p, load<u64>(p) | (<u64>1 << <u64>(s & 63)));
}

// @ts-ignore: decorator
@inline function clearBit(map: usize, s: u32): void {
  const p = map + (<usize>(s >> 6) << 3);
  store<u64>(p, load<u64>(p) & ~(<u64>1 << <u64>(s & 63)));
}

function markUsed(start: u32, n: u32): void {
  for (let s = start, end = start + n; s < end; s++) setBit(usedMap, s);
  setBit(startMap, start);
  inUse += n;
}

// @ts-ignore: decorator
@inline const MIN_GROW_SEGMENTS: u32 = 32; // 1 MiB

/**
 * Grows memory so that `total` reaches at least `want` segments. False if the host refuses. Grows
 * geometrically (by at least a quarter of what is backed, and at least 1 MiB) when the host allows:
 * every grow costs the host a new ArrayBuffer (and its views) and the engine a commit, and growing
 * one segment at a time cost ~10 ms per 32 MB filled. Segments past `want` are simply free; pages
 * are only backed by the OS once touched.
 */
function growTo(want: u32): bool {
  if (want > MAX_SEGMENTS) return false;
  const ahead = <u64>total + <u64>max(total >> 2, MIN_GROW_SEGMENTS);
  const target = <u32>min(<u64>MAX_SEGMENTS, max(<u64>want, ahead));
  if (!growPages(target) && (target == want || !growPages(want))) return false;
  const bytes = <u64>memory.size() << 16;
  total = <u32>((bytes - <u64>base) / SEGMENT_BYTES);
  return true;
}

/** memory.grow to back `want` segments in all; false if the host refuses. */
function growPages(want: u32): bool {
  const need = <u64>(want - total) * SEGMENT_BYTES;
  return memory.grow(<i32>((need + 65535) >> 16)) >= 0;
}

/**
 * Allocates `n` contiguous segments; returns the address of the first, or 0 when linear memory
 * cannot grow any further (the host reports that as a budget error).
 */
export function segAlloc(n: u32): usize {
  if (n == 0) throw new Error(E_ZERO);
  init();
  // skip words that are entirely used
  while (hint < MAP_WORDS && hint * 64 < total && wordAt(usedMap, hint) == u64.MAX_VALUE) hint++;
  let runStart: u32 = hint * 64;
  let runLen: u32 = 0;
  let s: u32 = runStart;
  while (s < total) {
    if ((s & 63) == 0 && s + 64 <= total) {
      const w = wordAt(usedMap, s >> 6);
      if (w == u64.MAX_VALUE) {
        s += 64;
        runStart = s;
        runLen = 0;
        continue;
      }
      if (w == 0 && runLen + 64 < n) {
        runLen += 64;
        s += 64;
        continue;
      }
    }
    if (bitAt(usedMap, s)) {
      runStart = s + 1;
      runLen = 0;
    } else if (++runLen == n) {
      markUsed(runStart, n);
      return base + (<usize>runStart) * SEGMENT_BYTES;
    }
    s++;
  }
  // no run fits: extend the trailing free run (runStart..total) by growing memory
  if (runLen == 0) runStart = total;
  if (<u64>runStart + n > <u64>MAX_SEGMENTS) return 0;
  if (!growTo(runStart + n)) return 0;
  markUsed(runStart, n);
  return base + (<usize>runStart) * SEGMENT_BYTES;
}

/** Frees the allocation starting at `ptr`; returns how many segments it had. Traps on a bad pointer. */
export function segFree(ptr: usize): u32 {
  init();
  if (ptr < base || ((ptr - base) & (<usize>SEGMENT_BYTES - 1)) != 0) throw new Error(E_BAD_FREE);
  const first = <u32>((ptr - base) / SEGMENT_BYTES);
  if (first >= total || !bitAt(startMap, first) || !bitAt(usedMap, first)) throw new Error(E_BAD_FREE);
  clearBit(startMap, first);
  let s = first;
  do {
    clearBit(usedMap, s);
    s++;
  } while (s < total && bitAt(usedMap, s) && !bitAt(startMap, s));
  const n = s - first;
  inUse -= n;
  if ((first >> 6) < hint) hint = first >> 6;
  return n;
}

/** Segments currently allocated. */
export function segmentsInUse(): u32 {
  return inUse;
}

/** Segments currently backed by linear memory (allocated or free). */
export function segmentsBacked(): u32 {
  init();
  return total;
}
