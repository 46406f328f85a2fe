// Owns key extraction and key-group assignment of records, with the typed errors for records that
// lack their key field or whose key cannot be hashed, and the check that routes such records aside.

import { registerErrorClass } from '../core/error-codec.ts';
import { type ErrorContext, FieldValueError, JobDefinitionError, SluiceError, UserFunctionError, previewRecord, previewValue } from '../core/errors.ts';
import { fmix32, hashJsKey, keyGroupOf } from '../core/hash.ts';
import { HASH_SEED as ABI_HASH_SEED } from '../../bindings/abi.generated.ts';
import type { KeySelectorSpec } from '../graph/operator.ts';
import { userFailure } from './failure.ts';

/** Kinds of keys `hashJsKey` accepts. */
export const HASHABLE_KEYS = 'string, number, bigint, boolean, null, Date, Uint8Array or an array of these';

/**
 * A key that cannot be hashed (an object, a function, a symbol): the record cannot be routed to a
 * subtask. A FieldValueError (reason `unencodable`) whose `field` is the keyBy field or `key`.
 *
 * @example
 * try { await env.execute(); } catch (e) {
 *   if (e instanceof UnhashableKeyError) console.error(e.context.operator, e.context.recordIndex);
 * }
 */
export class UnhashableKeyError extends FieldValueError {
  constructor(field: string, value: unknown, context: ErrorContext = {}) {
    super(field, 'unencodable', `a hashable key (${HASHABLE_KEYS})`, value, context);
  }
}

/** The key of `record`; failures name `operator`, `subtask` and `recordIndex`. */
export function extractKey(spec: KeySelectorSpec, record: unknown, operator: string, subtask: number, recordIndex: number): unknown {
  if (spec.field !== undefined) {
    if (record === null || typeof record !== 'object' || !(spec.field in record)) {
      throw new JobDefinitionError(`keyBy('${spec.field}'): record has no field '${spec.field}'`, { operator, subtask, recordIndex });
    }
    return (record as Record<string, unknown>)[spec.field];
  }
  try {
    return spec.fn(record);
  } catch (e) {
    throw userFailure(e, { operator, subtask, recordIndex });
  }
}

/** Why a record has no usable key. */
export type InvalidKeyReason = 'missing-field' | 'unhashable' | 'selector-failed';

/**
 * A record whose key could not be extracted or hashed, set aside by `keyBy(key, { invalidKeys: tag })`
 * instead of failing the job. `record` is the offending record, `key` what the selector returned
 * (undefined for `missing-field` and `selector-failed`), `reason` why, and `cause` the error the job
 * would have failed with (a JobDefinitionError, UserFunctionError or UnhashableKeyError). The context
 * names the keyBy (`KeyBy(field)`), the subtask, and the record's index in that subtask's input.
 *
 * @example
 * const badKeys = new OutputTag<InvalidKeyError<Trade>>('bad-keys');
 * const keyed = trades.keyBy((t) => t.account, { invalidKeys: badKeys });
 * keyed.getSideOutput(badKeys).map((e) => `${e.reason}: ${e.message}`).print('bad key');
 */
export class InvalidKeyError<T = unknown> extends SluiceError {
  constructor(
    readonly record: T,
    readonly key: unknown,
    readonly reason: InvalidKeyReason,
    context: ErrorContext,
    cause: SluiceError,
  ) {
    super(`invalid key for record ${previewRecord(record)}: ${invalidKeyText(reason, key, cause)}`, { domain: 'user', context, cause });
    this.withContext(context);
  }
}

// both travel inside records (keyBy's invalid-keys side output) and as failures between threads:
// revived as instances of their class (src/core/error-codec.ts)
registerErrorClass(InvalidKeyError, UnhashableKeyError);

function invalidKeyText(reason: InvalidKeyReason, key: unknown, cause: SluiceError): string {
  if (reason === 'unhashable') {
    // UnhashableKeyError's field is the keyBy field or `key (selector name)`
    const f = cause instanceof FieldValueError ? cause.field : 'key';
    const what = f.startsWith('key (') ? `the ${f}` : `the key field '${f}'`;
    return `${what} is ${previewValue(key)}, which cannot be hashed (expects ${HASHABLE_KEYS})`;
  }
  if (reason === 'missing-field') return cause.message.replace(/ \[.*\]$/, '');
  const thrown = cause instanceof UserFunctionError ? cause.cause : cause;
  return `the key selector threw: ${thrown instanceof Error ? thrown.message.replace(/ \[.*\]$/, '') : String(thrown)}`;
}

/**
 * Why `record` cannot be routed by `spec` — undefined if it can: exactly the records on which
 * `extractKey` or `keyGroupOfKey` would throw, with that error as `cause`. Cost: the selector call;
 * a hash only for object keys (composite keys), since every primitive hashes.
 */
export function checkKey<T>(spec: KeySelectorSpec, record: T, operator: string, subtask: number, recordIndex: number): InvalidKeyError<T> | undefined {
  const ctx = { operator, subtask, recordIndex };
  let key: unknown;
  if (spec.field !== undefined) {
    if (record === null || typeof record !== 'object' || !(spec.field in record)) {
      return new InvalidKeyError(record, undefined, 'missing-field', ctx, new JobDefinitionError(`keyBy('${spec.field}'): record has no field '${spec.field}'`, ctx));
    }
    key = (record as Record<string, unknown>)[spec.field];
  } else {
    try {
      key = spec.fn(record);
    } catch (e) {
      return new InvalidKeyError(record, undefined, 'selector-failed', ctx, userFailure(e, ctx));
    }
  }
  switch (typeof key) {
    case 'string':
    case 'number':
    case 'bigint':
    case 'boolean':
    case 'undefined':
      return undefined;
  }
  try {
    hashJsKey(key);
    return undefined;
  } catch (e) {
    const cause = e instanceof TypeError ? new UnhashableKeyError(spec.field ?? `key (${spec.description})`, key, ctx) : new UserFunctionError(e, ctx);
    return new InvalidKeyError(record, key, 'unhashable', ctx, cause);
  }
}

/** The key group of `key` among `maxParallelism` groups; an unhashable key is an UnhashableKeyError. */
export function keyGroupOfKey(key: unknown, spec: KeySelectorSpec, maxParallelism: number, operator: string, subtask: number, recordIndex: number): number {
  let h: number;
  try {
    h = hashJsKey(key);
  } catch (e) {
    if (e instanceof TypeError) throw new UnhashableKeyError(spec.field ?? `key (${spec.description})`, key, { operator, subtask, recordIndex });
    throw new UserFunctionError(e, { operator, subtask, recordIndex });
  }
  return keyGroupOf(h, maxParallelism);
}

// murmur3_x86_32 constants (src/core/hash.ts is the spec; this is a fused copy for ASCII strings),
// module-local: tsx turns imported bindings into getters.
const HASH_SEED = ABI_HASH_SEED;
const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * `hashJsKey(s)` of a string, faster for ASCII strings: murmur3 over the UTF-16 code units read
 * in place (for ASCII they are the UTF-8 bytes), without copying into a byte buffer first. A string
 * with any code unit >= 0x80 is rehashed by `hashJsKey` (its UTF-8 bytes differ). Hand-inlined hot
 * loop: mixK/mixH/fmix32 of src/core/hash.ts. Cost: O(length), no allocation.
 */
export function hashStringKey(s: string, seed: number = HASH_SEED): number {
  const n = s.length;
  const end4 = n & ~3;
  let h = seed | 0;
  let seen = 0; // OR of every code unit: >= 0x80 means not ASCII
  let i = 0;
  for (; i < end4; i += 4) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    seen |= c0 | c1 | c2 | c3;
    let k = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = n - i;
  if (rest !== 0) {
    let k = s.charCodeAt(i);
    seen |= k;
    if (rest > 1) {
      const c = s.charCodeAt(i + 1);
      seen |= c;
      k |= c << 8;
      if (rest > 2) {
        const c2 = s.charCodeAt(i + 2);
        seen |= c2;
        k |= c2 << 16;
      }
    }
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
  }
  if (seen >= 0x80) return hashJsKey(s, seed);
  return fmix32(h ^ n);
}

/** Lookups per window over which the memo's hit rate is judged, as a multiple of its limit. */
const WINDOW_PER_ENTRY = 4;
/** Most windows the memo is bypassed after a poor one (the backoff doubles up to this). */
const MAX_BYPASS_WINDOWS = 64;

/**
 * Key → key group, with an adaptive memo for string keys. A Map hit (~15-40 ns: V8 caches a string's
 * own hash) beats hashing (`hashStringKey`, ~30-60 ns for short ASCII keys, more for long ones) when
 * few distinct keys are hot; when there are more than the memo holds, probing it only adds a miss.
 * So: the memo takes keys until it holds `limit`, then stays as it is (still answering its keys). Every
 * `4 * limit` string lookups its hit rate is judged: below one half, it is cleared and bypassed (plain
 * hashing) for 1, 2, 4 … 64 windows before it refills and is judged again; at or above one half, the
 * backoff resets. Cost: at most `limit` entries; per lookup a counter and a Map probe, or a hash.
 * Key groups are always `keyGroupOf(hashJsKey(key), maxParallelism)`: the memo only saves work.
 */
export class KeyGroupAssigner {
  private memo = new Map<string, number>();
  private readonly window: number;
  /** String lookups in the current window, and the memo hits among them. */
  private lookups = 0;
  private hits = 0;
  /** Windows left without the memo, and how many the next poor window earns. */
  private bypass = 0;
  private backoff = 1;

  constructor(
    private readonly spec: KeySelectorSpec,
    private readonly maxParallelism: number,
    private readonly limit = 8192,
  ) {
    this.window = Math.max(1, limit) * WINDOW_PER_ENTRY;
  }

  /** The key group of `key`; failures name `operator`, `subtask` and `recordIndex`. */
  keyGroup(key: unknown, operator: string, subtask: number, recordIndex: number): number {
    if (typeof key !== 'string') return keyGroupOfKey(key, this.spec, this.maxParallelism, operator, subtask, recordIndex);
    if (++this.lookups >= this.window) this.judge();
    if (this.bypass !== 0) return hashStringKey(key) % this.maxParallelism;
    let kg = this.memo.get(key);
    if (kg !== undefined) {
      this.hits++;
      return kg;
    }
    kg = hashStringKey(key) % this.maxParallelism;
    if (this.memo.size < this.limit) this.memo.set(key, kg);
    return kg;
  }

  /** End of a window: keep, or clear and bypass, the memo by its hit rate. */
  private judge(): void {
    if (this.bypass !== 0) {
      this.bypass--; // at 0 the memo refills from the next lookup on
    } else if (this.memo.size >= this.limit && this.hits * 2 < this.lookups) {
      this.memo = new Map();
      this.bypass = this.backoff;
      this.backoff = Math.min(this.backoff * 2, MAX_BYPASS_WINDOWS);
    } else if (this.memo.size >= this.limit) {
      this.backoff = 1;
    }
    this.lookups = 0;
    this.hits = 0;
  }
}
