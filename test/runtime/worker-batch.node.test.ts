// Tests a spilling batch job on worker threads (Node): the group-by's result on 2 workers equals the
// one-thread run and a direct computation, and a job that fails in a worker, or is cancelled, leaves
// no spill directory behind (workers remove their spill files before they report and are terminated).
// Node only: it points the workers' temp directory (TMPDIR, read by os.tmpdir()) at a fresh directory.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserFunctionError } from '../../src/index.ts';
import { spillingGroupBy } from './worker-jobs.ts';

const base = await mkdtemp(join(tmpdir(), 'sluice-worker-batch-'));
const previous = process.env['TMPDIR'];
process.env['TMPDIR'] = base; // workers share the process environment

const params = { rows: 60_000, keys: 5000 };
// 3 operators' shares of 1.5 MiB per subtask: the group-by of 60k rows with 64-byte strings spills
const environment = { runtimeMode: 'batch' as const, parallelism: 2, managedMemory: '1.5mb' };

/** Spill directories under the workers' temp directory (tsx keeps its cache there too). */
const spillDirs = async (): Promise<string[]> => (await readdir(base)).filter((f) => f.startsWith('sluice-'));

function expected(): Map<number, { n: number; total: number }> {
  const m = new Map<number, { n: number; total: number }>();
  for (let i = 0; i < params.rows; i++) {
    const k = (i * 7919) % params.keys;
    const g = m.get(k) ?? { n: 0, total: 0 };
    g.n++;
    g.total += i % 1000;
    m.set(k, g);
  }
  return m;
}

test('a spilling group-by on 2 workers equals a direct computation, and leaves no spill files', async () => {
  const { outputs } = await spillingGroupBy.run({ params, workers: 2, environment });
  const want = expected();
  assert.is(outputs.out.results.length, want.size);
  for (const r of outputs.out.results) assert.equal({ n: r.n, total: r.total }, want.get(r.k), `group ${r.k}`);
  assert.equal(await spillDirs(), []);
});

test('a job that fails in a worker after spilling leaves no spill files', async () => {
  try {
    await spillingGroupBy.run({ params: { ...params, failOn: 17 }, workers: 2, environment });
    assert.unreachable('the job should fail');
  } catch (e) {
    assert.instance(e, UserFunctionError);
    assert.match((e as Error).message, /group 17 is cursed/);
  }
  assert.equal(await spillDirs(), []);
});

test.after(async () => {
  if (previous === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = previous;
  await rm(base, { recursive: true, force: true });
});

test.run();
