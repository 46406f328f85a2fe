// Tests that a join's input read back from its spill file is validated before the join takes it as
// trusted: a spill store that flips a row's reserved word on the way back makes the job fail with a
// CorruptBatchError (not wrong rows or a WebAssembly trap), and every spill store is closed after it.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configureBatchRuntime, schema, StreamEnvironment, t } from '../../src/index.ts';
import { CorruptBatchError } from '../../src/core/errors.ts';
import { batchCleanupSettled } from '../../src/operators/batch/batch-operators.ts';
import { detectPlatform } from '../../src/platform/index.ts';
import type { SpillFile, SpillStore, SpillWriter } from '../../src/platform/types.ts';
import { recordingPlatform } from '../fixtures/spill.ts';

/** `target` with some members replaced (methods of the rest bound to it). */
function overriding<T extends object>(target: T, over: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(target, {
    get(t, k) {
      if (k in over) return (over as Record<PropertyKey, unknown>)[k];
      const v = Reflect.get(t, k) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

test('a join input read back corrupt from its spill file is a CorruptBatchError', async () => {
  const real = await detectPlatform();
  let corrupted = 0;
  const corruptFile = (f: SpillFile): SpillFile =>
    overriding(f, {
      read: async function* () {
        for await (const b of f.read()) {
          const c = b.slice();
          c[20] = 1; // the first row's reserved word (batch header 16 bytes, then the row's length)
          corrupted++;
          yield c;
        }
      },
    });
  const { platform, stores } = recordingPlatform(real, (s) =>
    overriding(s, {
      create: async (name: string) => {
        const w = await s.create(name);
        return name.startsWith('join-left-input') ? overriding(w, { finish: async () => corruptFile(await w.finish()) }) : w;
      },
    }) as SpillStore,
  );
  const env = StreamEnvironment.create({ runtimeMode: 'batch', parallelism: 1, managedMemory: '1mb' });
  configureBatchRuntime(env, { platform });
  const L = schema({ k: t.i64(), s: t.string() });
  const R = schema({ k: t.i64(), v: t.i64() });
  const left = env.fromCollection(Array.from({ length: 20000 }, (_, i) => ({ k: i % 500, s: `row ${i} ${'x'.repeat(i % 40)}` }))).withSchema(L);
  const right = env.fromCollection(Array.from({ length: 500 }, (_, k) => ({ k, v: k }))).withSchema(R);
  left.join(right, { local: 'hybrid-hash', build: 'right' }).where('k').equalTo('k').collect();
  let err: unknown;
  try {
    await env.execute();
  } catch (e) {
    err = e;
  }
  assert.ok(corrupted > 0, 'the left input spilled and was read back');
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  assert.ok(err instanceof CorruptBatchError || cause instanceof CorruptBatchError, `a CorruptBatchError, got ${String(err)}`);
  assert.match(String(err), /reserved word/);
  await batchCleanupSettled();
  for (const s of stores) {
    assert.ok(s.closed, 'spill store closed');
    assert.is(s.stats.filesLive, 0);
  }
});

test.run();
