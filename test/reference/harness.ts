// Owns what the kernel tests share: one kernel instance per build (release and debug, so every
// differential test runs against both), and the checks applied to every output batch.

import { loadKernels, type Kernels } from '../../bindings/index.ts';
import { type RefField, fingerprint } from './batch.ts';
import { DONE, batchHeader, batchRows, refValidate, type RefKey } from './kernels.ts';
import type { Rng } from './random.ts';

export const BUILDS = [
  { name: 'release', debug: false },
  { name: 'debug', debug: true },
] as const;

const instances = new Map<boolean, Promise<Kernels>>();

/** The shared instance of a build (budget 256 MiB). */
export function kernelsFor(debug: boolean): Promise<Kernels> {
  let p = instances.get(debug);
  if (!p) instances.set(debug, (p = loadKernels({ debug, budgetBytes: 256 << 20 })));
  return p;
}

export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  if (actual.length !== expected.length || actual.some((v, i) => v !== expected[i])) {
    throw new Error(`${what}: bytes differ\n  actual   ${hex(actual)}\n  expected ${hex(expected)}`);
  }
}

/**
 * Checks kernel output batches: each is a valid batch of `fields` (reference validator), none is
 * empty, none exceeds `cap` unless it holds a single larger row, and their rows, concatenated, are
 * exactly `expected`.
 */
export function checkOutputs(batches: readonly Uint8Array[], fields: readonly RefField[], cap: number, expected: readonly Uint8Array[], what: string): void {
  const rows: Uint8Array[] = [];
  batches.forEach((b, i) => {
    const st = refValidate(b, b.length, fields);
    if (st !== DONE) throw new Error(`${what}: output batch ${i} fails reference validation (status ${st})`);
    const h = batchHeader(b);
    if (h.byteLength !== b.length) throw new Error(`${what}: output batch ${i} byteLength ${h.byteLength} != ${b.length} bytes copied`);
    if (h.schemaId !== fingerprint(fields)) throw new Error(`${what}: output batch ${i} has the wrong schema id`);
    if (h.rowCount === 0) throw new Error(`${what}: output batch ${i} is empty`);
    if (b.length > cap && h.rowCount !== 1) throw new Error(`${what}: output batch ${i} has ${b.length} bytes > capacity ${cap} with ${h.rowCount} rows`);
    rows.push(...batchRows(b));
  });
  if (rows.length !== expected.length) throw new Error(`${what}: ${rows.length} rows, expected ${expected.length}`);
  rows.forEach((r, i) => assertBytes(r, expected[i]!, `${what}: row ${i}`));
}

/** Output capacities that force FULL/resume (and single rows larger than a buffer) most of the time. */
export const CAPACITIES = [16, 24, 48, 64, 96, 128, 256, 1024, 32768];

/** 1–4 random key fields (repeats allowed) with random direction and null placement. */
export function randomKeys(rng: Rng, nFields: number): RefKey[] {
  const nk = rng.range(1, Math.min(4, nFields));
  return Array.from({ length: nk }, () => ({ field: rng.int(nFields), desc: rng.bool(), nullsFirst: rng.bool() }));
}
