// Owns the child-process side of the batch benchmark: one process per engine (started by bench/batch.ts
// with `--expose-gc`), which runs that engine's entry when asked over IPC and answers with the seconds
// and check string (or the error). Each engine thus runs in a V8 heap of its own: what one engine keeps
// alive (duckdb-wasm keeps ~60 MB of JS heap for its database) cannot make another engine's garbage
// collections slower. The parent still interleaves the repetitions across engines, one run at a time.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BatchBenchOptions, Engine, RunFn, RunResult } from './data.ts';

/** A request from the parent: run `engine` on one workload size. */
export interface RunRequest {
  id: number;
  engine: Engine;
  rows: number;
  opts: BatchBenchOptions;
}

/** The answer: the entry's result, or its error message. */
export type RunReply = { id: number; result: RunResult } | { id: number; error: string };

const here = dirname(fileURLToPath(import.meta.url));

/** The Sluice entry file of a workload (join / groupby entries are optional: "not yet" without them). */
export function sluiceEntryFile(w: BatchBenchOptions['workload']): string {
  return join(here, w === 'join' ? 'sluice-join.ts' : w === 'groupby' ? 'sluice-groupby.ts' : 'sluice-sort.ts');
}

/** Whether the Sluice entry of a workload exists. */
export function hasSluiceEntry(w: BatchBenchOptions['workload']): boolean {
  return existsSync(sluiceEntryFile(w));
}

/** Loads the run function of an engine for a workload (in whichever process calls it). */
export async function loadRun(engine: Engine, w: BatchBenchOptions['workload']): Promise<RunFn> {
  if (engine === 'sluice') {
    const path = sluiceEntryFile(w);
    const mod = (await import(pathToFileURL(path).href)) as { run?: RunFn };
    if (typeof mod.run !== 'function') throw new Error(`${path} must export async function run(rows, opts)`);
    return mod.run;
  }
  if (engine === 'duckdb' || engine === 'duckdb-wasm') {
    const m = await import('./duckdb.ts');
    return engine === 'duckdb' ? m.runDuckdb : m.runDuckdbWasm;
  }
  const m = await import('./js.ts');
  return engine === 'arquero' ? m.runArquero : m.runJs;
}

// ── the child's loop ─────────────────────────────────────────────────────────────────────────
if (process.send && process.env['SLUICE_BENCH_ENGINE_PROCESS'] === '1') {
  const send = process.send.bind(process);
  process.on('message', (msg: RunRequest) => {
    void (async () => {
      let reply: RunReply;
      try {
        const run = await loadRun(msg.engine, msg.opts.workload);
        reply = { id: msg.id, result: await run(msg.rows, msg.opts) };
      } catch (err) {
        reply = { id: msg.id, error: (err as Error).message ?? String(err) };
      }
      (globalThis as { gc?: () => void }).gc?.();
      send(reply);
    })();
  });
  // the parent closes the channel when the benchmark ends
  process.on('disconnect', () => process.exit(0));
}
