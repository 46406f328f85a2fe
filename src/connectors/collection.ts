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

/** Options of a generator source. */
export interface GeneratorOptions {
  /**
   * Records per second over all subtasks (each subtask gets an equal share), paced by the job clock.
   * Default: as fast as the job consumes them.
   */
  ratePerSecond?: number;
}

/**
 * A source of `fn(i)`. Bounded (`count` finite): subtask s of p generates a contiguous slice of
 * [0, count). Unbounded (`count = Infinity`): subtask s generates s, s + p, s + 2p, … until the job
 * is cancelled. With `ratePerSecond` a subtask emits no faster than its share of the rate: when it is
 * ahead, its `ready()` answers a promise that the job clock settles when the next record is due.
 */
export function generatorSource<T>(count: number, fn: (index: number) => T, opts: GeneratorOptions = {}): SourceSpec<T> {
  const bounded = Number.isFinite(count);
  const rate = opts.ratePerSecond;
  return {
    bounded,
    replayable: true,
    createReader(subtask, parallelism): SourceReader<T> {
      let [next, end] = bounded ? splitRange(count, subtask, parallelism) : [subtask, Infinity];
      const step = bounded ? 1 : parallelism;
      let operator = '';
      let clock: OperatorContext['clock'] | undefined;
      let started = 0;
      let emitted = 0;
      const perSubtask = rate === undefined ? undefined : rate / parallelism;
      return {
        open(ctx: OperatorContext) {
          operator = ctx.operatorName;
          clock = ctx.clock;
          started = clock.now();
        },
        poll(out, max) {
          let n = max;
          if (perSubtask !== undefined) {
            const due = Math.floor(((clock!.now() - started) * perSubtask) / 1000) + 1;
            n = Math.max(0, Math.min(max, due - emitted));
          }
          try {
            for (let k = 0; k < n && next < end; k++, next += step) out.push(fn(next));
          } catch (e) {
            // the record index of a generator is the global index it failed to generate
            throw userFailure(e, { operator, subtask, recordIndex: next });
          }
          emitted += out.length;
          return next < end;
        },
        ready() {
          if (perSubtask === undefined || clock === undefined) return undefined;
          const at = started + Math.ceil((emitted * 1000) / perSubtask);
          if (at <= clock.now()) return undefined;
          return new Promise<void>((resolve) => {
            clock!.schedule(at, () => resolve());
          });
        },
        position: () => next,
      };
    },
  };
}
