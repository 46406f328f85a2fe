// Owns the portable test command: finds test/**/*.test.ts, runs them through uvu's ESM entry points on
// whichever runtime runs this file (Node via tsx, Deno, Bun), and prints `N passed, N failed` last.
//
//   node --import tsx test/run.ts [filter]
//   deno run -A test/run.ts [filter]
//   bun test/run.ts [filter]          (not `bun test`: that is Bun's own runner)
//
// `filter` is a path substring (e.g. `core/rows`). Files named `*.node.test.ts`, `*.deno.test.ts` or
// `*.bun.test.ts` run only on that runtime. test/workerd/ is not discovered: it has its own driver.
//
// Why not `uvu -r tsx test`: uvu's CLI loads test files with require() (always, under Bun), and
// top-level await then fails. Like `uvu/run` this sets UVU_DEFER and imports each file into its own
// queue slot; why not `uvu.exec()`: it only prints Total/Passed/Skipped and swallows
// a throwing `before` hook without failing; draining uvu's queue here gives exact counts instead.

import process from 'node:process';
import { readdir } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

type Runner = () => Promise<[errors: string | true, passed: number, skipped: number, total: number]>;
type Group = [name: string | null, ...runners: Runner[]];

const g = globalThis as typeof globalThis & { UVU_DEFER?: number; UVU_QUEUE?: Group[]; UVU_INDEX?: number };

const runtime: 'deno' | 'bun' | 'node' =
  (process.versions as Record<string, string | undefined>).deno ? 'deno'
  : (process.versions as Record<string, string | undefined>).bun ? 'bun'
  : 'node';

const testDir = fileURLToPath(new URL('.', import.meta.url));
const root = resolve(testDir, '..');

async function discover(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'workerd' && dir === testDir.replace(/[\\/]$/, '')) continue;
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      out.push(...(await discover(path)));
    } else if (entry.isFile() && /\.test\.[mc]?ts$/.test(entry.name)) {
      const only = /\.(node|deno|bun)\.test\.[mc]?ts$/.exec(entry.name)?.[1];
      if (!only || only === runtime) out.push(path);
    }
  }
  return out;
}

function write(text: string): void {
  process.stdout.write(text);
}

async function main(): Promise<number> {
  const filter = process.argv.slice(2).find((a) => !a.startsWith('-'));
  const files = (await discover(testDir.replace(/[\\/]$/, '')))
    .map((file) => ({ file, name: relative(root, file).split(sep).join('/') }))
    .filter((f) => !filter || f.name.includes(filter))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // uvu reads these when its module is first evaluated: defer execution and queue suites per file.
  g.UVU_DEFER = 1;
  g.UVU_QUEUE = [];
  await import('uvu');

  let loadFailures = 0;
  for (const [index, { file, name }] of files.entries()) {
    g.UVU_INDEX = index;
    g.UVU_QUEUE.push([name]);
    try {
      await import(pathToFileURL(file).href);
    } catch (err) {
      loadFailures++;
      write(`\n  FAIL  could not load ${name}\n    ${(err as Error)?.stack ?? String(err)}\n`);
    }
  }

  let total = 0, passed = 0, skipped = 0;
  const started = performance.now();
  // A test whose job waits for something that never comes leaves nothing on the event loop: the
  // process would exit silently. Say so, with the counts so far, and fail.
  let suite = '';
  const onEmptyLoop = (): void => {
    write(`\n  FAIL  ${suite}: the event loop emptied while a test was still running (it awaited something that never settled)\n`);
    write(`${passed} passed, ${total - passed + loadFailures + 1} failed\n`);
    process.exit(1);
  };
  process.on?.('beforeExit', onEmptyLoop);
  for (const group of g.UVU_QUEUE) {
    const [name, ...runners] = group;
    if (runners.length === 0) continue;
    suite = name ?? '';
    write(`\n${name ?? ''}\n`);
    for (const runSuite of runners) {
      const [errors, ran, skip, max] = await runSuite();
      total += max;
      passed += ran;
      skipped += skip;
      if (errors !== true) write('\n' + errors + '\n');
      else if (ran < max) {
        // uvu's runner returns from `finally`, which discards an exception thrown by a hook.
        write(`\n  FAIL  ${name}: ${max - ran} of ${max} tests did not pass; a before/after hook threw (uvu hides its error)\n`);
      }
    }
  }
  process.off?.('beforeExit', onEmptyLoop);
  const failed = total - passed + loadFailures;
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  if (files.length === 0) write(`\n  no test files matched${filter ? ` "${filter}"` : ''}`);
  write(`\n\n  ${runtime}: ${files.length} files, ${total} tests in ${seconds}s\n`);
  write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  return failed === 0 && files.length > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    write(`${(err as Error)?.stack ?? String(err)}\n0 passed, 1 failed\n`);
    process.exit(1);
  },
);
