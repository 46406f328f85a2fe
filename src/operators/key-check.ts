// Owns the key check chained before a keyBy's hash exchange when the keyBy was given an invalidKeys
// policy: records whose key cannot be extracted or hashed go to a side output (or are dropped)
// instead of failing the job in the record writer.

import type { KeySelectorSpec, OperatorContext, Output, StreamOperator } from '../graph/operator.ts';
import { checkKey } from '../runtime/keys.ts';

/**
 * Passes on the records `keyBy` can route (with their timestamps) and sets the others aside: an
 * `InvalidKeyError` per record to side output `tag`, or nothing when `tag` is undefined (drop). Errors
 * name `keyByName` (the keyBy as the default failure names it) and the record's index in this
 * subtask's input, which is the index the record writer would have reported. Cost per record: the
 * key selector and a type check (a hash for object keys); the writer then extracts and hashes the
 * key of a passed record again.
 */
export class KeyCheckOperator<T> implements StreamOperator<T, T> {
  private subtask = 0;

  constructor(
    private readonly key: KeySelectorSpec,
    private readonly keyByName: string,
    private readonly tag: string | undefined,
  ) {}

  open(ctx: OperatorContext): void {
    this.subtask = ctx.subtaskIndex;
  }

  processBatch(batch: readonly T[], out: Output<T>, firstIndex: number, timestamps: readonly number[] | undefined): void {
    const { key, keyByName, tag, subtask } = this;
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]!;
      const t = timestamps === undefined ? undefined : timestamps[i]!;
      const ts = t === t ? t : undefined; // NaN: no timestamp
      const bad = checkKey(key, r, keyByName, subtask, firstIndex + i);
      if (bad === undefined) out.push(r, ts);
      else if (tag !== undefined) out.pushSide(tag, bad, ts);
    }
  }
}
