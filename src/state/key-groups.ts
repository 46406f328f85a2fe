// Owns key-group ranges: which contiguous key groups a parallel subtask holds (Flink's
// KeyGroupRangeAssignment), consistent with `subtaskForKeyGroup` in core/hash.ts.

import { hashJsKey, keyGroupOf } from '../core/hash.ts';

/**
 * A contiguous, half-open range of key groups `[start, end)`. Immutable.
 *
 * @example
 * const r = keyGroupRangeForSubtask(128, 3, 1); // KeyGroupRange [43, 86)
 * r.contains(50); // true
 */
export class KeyGroupRange {
  constructor(
    readonly start: number,
    readonly end: number,
  ) {
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end)) {
      throw new RangeError(`invalid key-group range [${start}, ${end})`);
    }
  }
  /** Every key group of a job with `maxParallelism`. */
  static all(maxParallelism: number): KeyGroupRange {
    return new KeyGroupRange(0, maxParallelism);
  }
  get size(): number {
    return this.end - this.start;
  }
  contains(keyGroup: number): boolean {
    return keyGroup >= this.start && keyGroup < this.end;
  }
  toString(): string {
    return `KeyGroupRange [${this.start}, ${this.end})`;
  }
}

/**
 * The key groups subtask `index` of `parallelism` owns: exactly those `kg` with
 * `subtaskForKeyGroup(kg, parallelism, maxParallelism) === index`, i.e. `[⌈i·m/p⌉, ⌈(i+1)·m/p⌉)`.
 */
export function keyGroupRangeForSubtask(maxParallelism: number, parallelism: number, index: number): KeyGroupRange {
  if (!(parallelism >= 1 && parallelism <= maxParallelism)) {
    throw new RangeError(`parallelism ${parallelism} must be in [1, maxParallelism ${maxParallelism}]`);
  }
  if (!(index >= 0 && index < parallelism)) throw new RangeError(`subtask index ${index} is outside [0, ${parallelism})`);
  const start = Math.ceil((index * maxParallelism) / parallelism);
  const end = Math.ceil(((index + 1) * maxParallelism) / parallelism);
  return new KeyGroupRange(start, end);
}

/** The key group of an untyped JS key, as the keyed exchange routes it. */
export function keyGroupForKey(key: unknown, maxParallelism: number): number {
  return keyGroupOf(hashJsKey(key), maxParallelism);
}
