// Owns the workerd smoke worker: runs the public API and the kernels inside workerd and answers JSON
// `{ checks: [{ name, ok, detail }] }` for test/workerd/run.ts. The kernels arrive precompiled through
// config.capnp, because workerd refuses to compile WebAssembly bytes at run time.

import kernels from './kernels.wasm';
import { loadKernels } from '../../bindings/index.ts';
import { encodeBatch } from '../../src/core/batch-writer.ts';
import { hashJsKey, schema, StreamEnvironment, t } from '../../src/index.ts';
import { createWorkerdPlatform, detectRuntime } from '../../src/platform/index.ts';

interface Check {
  name: string;
  ok: boolean;
  detail?: unknown;
}

async function check(name: string, body: () => Promise<unknown> | unknown): Promise<Check> {
  try {
    const detail = await body();
    return { name, ok: true, detail };
  } catch (err) {
    return { name, ok: false, detail: String((err as Error)?.stack ?? err) };
  }
}

function expect(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

export default {
  async fetch(): Promise<Response> {
    const checks: Check[] = [];
    checks.push(await check('platform detection says workerd', () => {
      expect(detectRuntime() === 'workerd', `detected ${detectRuntime()}`);
      const platform = createWorkerdPlatform({ kernels });
      expect(platform.hardwareConcurrency === 1, 'one core');
      return platform.name;
    }));
    checks.push(await check('compiling wasm bytes at run time is refused (why kernels are a module)', () => {
      try {
        new WebAssembly.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
      } catch (err) {
        return String(err).slice(0, 80);
      }
      throw new Error('workerd compiled bytes: the precompiled-module path is no longer needed?');
    }));
    checks.push(await check('job: words → keyBy → sum → executeAndCollect (parallelism 2)', async () => {
      const words = 'the quick brown fox jumps over the lazy dog the end'.split(' ');
      const env = StreamEnvironment.create({ parallelism: 2 });
      const out = await env
        .fromCollection(words)
        .map((word) => ({ word, n: 1 }))
        .keyBy('word')
        .sum('n')
        .executeAndCollect();
      expect(out.length === words.length, `${out.length} rolling results for ${words.length} words`);
      const final: Record<string, number> = {};
      for (const r of out) final[r.word] = Math.max(final[r.word] ?? 0, r.n);
      const expected: Record<string, number> = {};
      for (const w of words) expected[w] = (expected[w] ?? 0) + 1;
      const diff = Object.keys({ ...expected, ...final }).filter((w) => final[w] !== expected[w]);
      expect(diff.length === 0, `counts differ for ${diff.join(', ')}: ${JSON.stringify(final)}`);
      return final;
    }));
    checks.push(await check('kernel: hash a batch by key, equal to the TS reference', async () => {
      const platform = createWorkerdPlatform({ kernels });
      const k = await loadKernels({ module: await platform.loadKernelModule() });
      const s = schema({ user: t.string(), n: t.i64() });
      const rows = Array.from({ length: 1000 }, (_, i) => ({ user: `user-${i % 37}`, n: i }));
      const batch = k.copyIn(encodeBatch(s, rows), s);
      try {
        expect(k.rowCount(batch) === rows.length, `rowCount ${k.rowCount(batch)}`);
        const hashes = k.hash(s, batch, ['user']);
        const bad = rows.findIndex((r, i) => hashes[i] !== hashJsKey(r.user) >>> 0);
        expect(bad < 0, `row ${bad}: kernel ${hashes[bad]} vs reference ${hashJsKey(rows[bad]?.user) >>> 0}`);
        return { rows: hashes.length, first: hashes[0] };
      } finally {
        k.free(batch);
      }
    }));
    return Response.json({ checks });
  },
};
