// Owns the export-map check: package.json's `exports` (→ compiled dist/) and deno.json's `exports`
// (→ src/*.ts) must name the same entry points, each pointing at the same module, and the versions
// must agree. Model: hono's build/validate-exports.ts against its jsr.json.
//
//   node --import tsx scripts/check-exports.ts [projectRoot]

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

type Conditions = string | { [condition: string]: Conditions };

/** The file a package.json export resolves to by default (`import` or `default` condition). */
function target(entry: Conditions | undefined): string | undefined {
  if (entry === undefined || typeof entry === 'string') return entry;
  return target(entry.import ?? entry.default);
}

/** Compare the two manifests under `root`; returns human-readable problems (empty = consistent). */
export function checkExports(root: string): string[] {
  const problems: string[] = [];
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const deno = JSON.parse(readFileSync(join(root, 'deno.json'), 'utf8'));
  const npmExports: Record<string, Conditions> =
    typeof pkg.exports === 'string' || pkg.exports?.types || pkg.exports?.default || pkg.exports?.import
      ? { '.': pkg.exports } : (pkg.exports ?? {});
  const denoExports: Record<string, string> =
    typeof deno.exports === 'string' ? { '.': deno.exports } : (deno.exports ?? {});

  if (pkg.version !== deno.version) {
    problems.push(`version: package.json has ${pkg.version}, deno.json has ${deno.version}`);
  }
  for (const key of Object.keys(npmExports)) {
    if (!(key in denoExports)) problems.push(`${key}: in package.json exports, missing from deno.json`);
  }
  for (const key of Object.keys(denoExports)) {
    if (!(key in npmExports)) problems.push(`${key}: in deno.json exports, missing from package.json`);
  }
  for (const [key, entry] of Object.entries(npmExports)) {
    const js = target(entry);
    const src = denoExports[key];
    if (!js || src === undefined) continue;
    // ./dist/src/x.js  ⇄  ./src/x.ts   (tsc with rootDir "." and outDir "dist")
    const expected = js.replace(/^\.\/dist\//, './').replace(/\.js$/, '.ts');
    if (expected === js) problems.push(`${key}: package.json target ${js} is not under ./dist/`);
    else if (src !== expected) problems.push(`${key}: deno.json points at ${src}, package.json at ${js} (expected ${expected})`);
    if (typeof entry === 'object' && typeof entry.types === 'string' && entry.types !== js.replace(/\.js$/, '.d.ts')) {
      problems.push(`${key}: types ${entry.types} does not sit next to ${js}`);
    }
    if (!existsSync(join(root, src))) problems.push(`${key}: deno.json target ${src} does not exist`);
  }
  return problems;
}

function isMain(): boolean {
  const script = process.argv[1];
  return !!script && resolve(script) === fileURLToPath(import.meta.url);
}

if (isMain()) {
  const root = resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)));
  const problems = checkExports(root);
  for (const p of problems) console.log(`check-exports: ${p}`);
  if (problems.length) process.exit(1);
  console.log('check-exports: ok (package.json and deno.json agree)');
}
