// Owns the workerd smoke test driver (Node): bundles test/workerd/worker.ts with esbuild (ESM), puts it
// next to the release kernels (build/kernels.wasm) and config.capnp in .sluice-tmp/workerd/, starts
// `workerd serve` on a free loopback port, fetches the worker's checks, stops workerd by PID and prints
// `N passed, N failed` last.
//
//   node --import tsx test/workerd/run.ts        (after `make wasm`)

import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

interface Check {
  name: string;
  ok: boolean;
  detail?: unknown;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));
const outDir = join(root, '.sluice-tmp', 'workerd');
const kernels = join(root, 'build', 'kernels.wasm');
const workerdBin = join(root, 'node_modules', '.bin', 'workerd');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function bundle(): Promise<void> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(here, 'worker.ts')],
    outfile: join(outDir, 'worker.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    // The kernels stay an import resolved by workerd from config.capnp (a precompiled module).
    // `node:*` only appears in dynamic imports of the Node adapter, never reached on workerd.
    external: ['*.wasm', 'node:*'],
    logLevel: 'warning',
  });
  copyFileSync(kernels, join(outDir, 'kernels.wasm'));
  copyFileSync(join(here, 'config.capnp'), join(outDir, 'config.capnp'));
}

/** Poll until workerd answers (or exits, or 30 s pass). */
async function fetchChecks(url: string, child: ChildProcess, log: () => string): Promise<Check[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`workerd exited (${child.exitCode ?? child.signalCode}) before answering:\n${log()}`);
    }
    try {
      const response = await fetch(url);
      const text = await response.text();
      let body: { checks?: Check[] };
      try {
        body = JSON.parse(text);
      } catch {
        throw new Error(`worker answered ${response.status} with non-JSON:\n${text}\n${log()}`);
      }
      if (!Array.isArray(body.checks)) throw new Error(`worker answered ${response.status} without checks: ${text}`);
      return body.checks;
    } catch (err) {
      const refused = (err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED';
      if (!refused || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function main(): Promise<number> {
  if (!existsSync(kernels)) {
    console.log(`missing ${kernels}: run \`make wasm\` first\n0 passed, 1 failed`);
    return 1;
  }
  await bundle();
  const port = await freePort();
  let output = '';
  const child = spawn(workerdBin, ['serve', 'config.capnp', '--socket-addr', `http=127.0.0.1:${port}`], {
    cwd: outDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  let checks: Check[];
  try {
    checks = await fetchChecks(`http://127.0.0.1:${port}/`, child, () => output);
  } catch (err) {
    console.log(`workerd smoke test could not run: ${(err as Error).message}`);
    checks = [{ name: 'worker answered', ok: false }];
  } finally {
    await stop(child);
  }
  if (output.trim()) console.log(`workerd output:\n${output.trim()}`);
  let passed = 0, failed = 0;
  for (const check of checks) {
    check.ok ? passed++ : failed++;
    const detail = check.detail === undefined ? '' : `  ${JSON.stringify(check.detail)}`;
    console.log(`  ${check.ok ? '✓' : '✘'} workerd: ${check.name}${detail}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.log(`${(err as Error)?.stack ?? String(err)}\n0 passed, 1 failed`);
    process.exit(1);
  },
);
