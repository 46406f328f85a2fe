// Owns the key hash: murmur3_x86_32 and the canonical bytes of each field type (the spec the WASM
// hash kernel must match bit for bit; see abi/abi.ts), plus key groups and partition assignment.

import { HASH_NULL as ABI_HASH_NULL, HASH_SEED as ABI_HASH_SEED } from '../../bindings/abi.generated.ts';

// Module-local copies: tsx turns imported bindings into getters, which costs in hot loops.
const HASH_NULL = ABI_HASH_NULL;
const HASH_SEED = ABI_HASH_SEED;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** murmur3 finalizer: avalanche all bits of a 32-bit value. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixH(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3_x86_32 of `len` bytes of `b` from `off`, with `seed`. Unsigned result. Cost: O(len). */
export function murmur3Bytes(b: Uint8Array, off: number, len: number, seed: number): number {
  let h = seed | 0;
  const end4 = off + (len & ~3);
  let i = off;
  for (; i < end4; i += 4) {
    h = mixH(h, b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
  }
  let k = 0;
  switch (len & 3) {
    case 3:
      k ^= b[i + 2]! << 16;
    // falls through
    case 2:
      k ^= b[i + 1]! << 8;
    // falls through
    case 1:
      k ^= b[i]!;
      h ^= mixK(k);
  }
  return fmix32(h ^ len);
}

/** murmur3_x86_32 of the 8 little-endian bytes of a 64-bit value given as two u32 halves. */
export function murmur3Word64(lo: number, hi: number, seed: number): number {
  let h = mixH(seed | 0, lo | 0);
  h = mixH(h, hi | 0);
  return fmix32(h ^ 8);
}

/** The hash step of a null key field. */
export function hashNull(h: number): number {
  return fmix32((h ^ HASH_NULL) >>> 0);
}

const f64buf = new Float64Array(1);
const f64words = new Uint32Array(f64buf.buffer);

/** The hash step of an f64 key field: -0 hashes as +0, every NaN as 0x7FF8000000000000. */
export function hashF64(v: number, h: number): number {
  if (v !== v) return murmur3Word64(0, 0x7ff80000, h);
  f64buf[0] = v === 0 ? 0 : v;
  return murmur3Word64(f64words[0]!, f64words[1]!, h);
}

/** The hash step of an integer key field (i32, i64, timestamp, bool) given as a safe integer or bigint. */
export function hashInt(v: number | bigint, h: number): number {
  if (typeof v === 'bigint') {
    const u = BigInt.asUintN(64, v);
    return murmur3Word64(Number(u & 0xffffffffn), Number(u >> 32n), h);
  }
  const lo = v >>> 0; // low 32 bits of the two's complement value (exact for safe integers)
  const hi = Math.floor(v / 4294967296) >>> 0;
  return murmur3Word64(lo, hi, h);
}

const encoder = new TextEncoder();
let scratch = new Uint8Array(256);

/**
 * The hash step of a string key field (its UTF-8 bytes). Cost: O(length), no allocation for strings
 * up to the scratch size: ASCII is copied by char code, anything else goes through `encodeInto`.
 */
export function hashString(s: string, h: number): number {
  const n = s.length;
  if (n * 3 > scratch.length) scratch = new Uint8Array(Math.max(n * 3, scratch.length * 2));
  const b = scratch;
  let i = 0;
  // hand-inlined ASCII fast path: most keys are short ASCII strings
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    b[i] = c;
  }
  if (i === n) return murmur3Bytes(b, 0, n, h);
  const { written } = encoder.encodeInto(s, b);
  return murmur3Bytes(b, 0, written, h);
}

/**
 * Hash of an untyped JS key, as the executor routes `keyBy(fn)` streams. Integers hash as integer
 * fields, other numbers as f64, strings as strings, booleans as 0/1, null/undefined as null; arrays
 * (composite keys) chain their elements. Any other value is an error for the caller to report.
 * A key that is a typed field of a binary row hashes identically (for the same field kind).
 *
 * @example
 * keyGroupOf(hashJsKey('user-42'), 128) // a key group in [0, 128)
 */
export function hashJsKey(key: unknown, h: number = HASH_SEED): number {
  switch (typeof key) {
    case 'string':
      return hashString(key, h);
    case 'number':
      return Number.isSafeInteger(key) ? hashInt(key, h) : hashF64(key, h);
    case 'bigint':
      return hashInt(key, h);
    case 'boolean':
      return hashInt(key ? 1 : 0, h);
    case 'undefined':
      return hashNull(h);
    case 'object':
      if (key === null) return hashNull(h);
      if (Array.isArray(key)) {
        for (const k of key) h = hashJsKey(k, h);
        return h;
      }
      if (key instanceof Uint8Array) return murmur3Bytes(key, 0, key.length, h);
      if (key instanceof Date) return hashInt(key.getTime(), h);
  }
  throw new TypeError(`cannot hash a key of type ${typeof key === 'object' ? key?.constructor?.name ?? 'object' : typeof key}`);
}

/** Key group of a hash: `hash % maxParallelism` (unsigned). */
export function keyGroupOf(hash: number, maxParallelism: number): number {
  return (hash >>> 0) % maxParallelism;
}

/** The subtask owning a key group: `floor(keyGroup * parallelism / maxParallelism)` (Flink's rule). */
export function subtaskForKeyGroup(keyGroup: number, parallelism: number, maxParallelism: number): number {
  return Math.floor((keyGroup * parallelism) / maxParallelism);
}
