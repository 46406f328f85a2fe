// Owns the platform adapters' tests: detection names the runtime running the suite, and each adapter
// honours the interface (monotonic clock, at least one core, optional / required kernels module).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import process from 'node:process';
import {
  createBrowserPlatform,
  createWorkerdPlatform,
  detectPlatform,
  detectRuntime,
} from '../../src/platform/index.ts';

const versions = process.versions as Record<string, string | undefined>;
const expected = versions.deno ? 'deno' : versions.bun ? 'bun' : 'node';

// The smallest valid module: magic + version. Compiling bytes is fine here (not on workerd).
const emptyModule = new WebAssembly.Module(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));

test('detectRuntime names the runtime running the suite', () => {
  assert.is(detectRuntime(), expected);
});

test('detectPlatform returns that runtime\'s adapter', async () => {
  const platform = await detectPlatform();
  assert.is(platform.name, expected);
  assert.ok(Number.isInteger(platform.hardwareConcurrency) && platform.hardwareConcurrency >= 1);
  assert.is(platform.spill.kind, 'file');
});

test('clock is monotonic and wall clock is epoch milliseconds', async () => {
  const platform = await detectPlatform();
  const a = platform.now();
  await new Promise((resolve) => setTimeout(resolve, 5));
  const b = platform.now();
  assert.ok(b >= a + 1, `now() advanced by ${b - a} ms across a 5 ms sleep`);
  assert.ok(Math.abs(platform.wallClock() - Date.now()) < 1000);
});

test('kernels module is optional off workerd and passed through', async () => {
  assert.is(await (await detectPlatform()).loadKernelModule(), undefined);
  assert.is(await (await detectPlatform({ kernels: emptyModule })).loadKernelModule(), emptyModule);
  assert.is(await createBrowserPlatform({ kernels: emptyModule }).loadKernelModule(), emptyModule);
});

test('workerd adapter requires a precompiled module', async () => {
  assert.throws(() => createWorkerdPlatform({} as never), /cannot compile WebAssembly at run time/);
  const platform = createWorkerdPlatform({ kernels: emptyModule });
  assert.is(platform.hardwareConcurrency, 1);
  assert.is(await platform.loadKernelModule(), emptyModule);
  assert.is(platform.spill.kind, 'memory');
  assert.is(createBrowserPlatform().spill.kind, 'memory');
});

test.run();
