// Owns the bounded, replayable in-memory sources: a collection of items and a generator of `count`
// records from their index. A parallel source splits the index range into contiguous slices.

import type { OperatorContext, SourceReader, SourceSpec } from '../graph/operator.ts';
import { userFailure } from '../runtime/failure.ts';

/** The slice `[start, end)` of `count` items that subtask `i` of `p` reads. */
export function splitRange(count: number, i: number, p: number): [start: number, end: number] {
  return [Math.floor((i * count) / p), Math.floor(((i + 1) * count) / p)];
}

/** A source over an array; subtask i of p reads a contiguous slice, so p = 1 keeps the order. */
export function collectionSource<T>(items: readonly T[]): SourceSpec<T> {
  return {
    bounded: true,
    replayable: true,
    createReader(subtask, parallelism): SourceReader<T> {
      let [next, end] = splitRange(items.length, subtask, parallelism);
      return {
        poll(out, max) {
          const stop = Math.min(end, next + max);
          for (; next < stop; next++) out.push(items[next]!);
          return next < end;
        },
        position: () => next,
      };
    },
  };
}

/** A source of `fn(i)` for i in [0, count); subtask s of p generates a contiguous slice of indices. */
export function generatorSource<T>(count: number, fn: (index: number) => T): SourceSpec<T> {
  return {
    bounded: true,
    replayable: true,
    createReader(subtask, parallelism): SourceReader<T> {
      let [next, end] = splitRange(count, subtask, parallelism);
      let operator = '';
      return {
        open(ctx: OperatorContext) {
          operator = ctx.operatorName;
        },
        poll(out, max) {
          const stop = Math.min(end, next + max);
          try {
            for (; next < stop; next++) out.push(fn(next));
          } catch (e) {
            // the record index of a generator is the global index it failed to generate
            throw userFailure(e, { operator, subtask, recordIndex: next });
          }
          return next < end;
        },
        position: () => next,
      };
    },
  };
}
