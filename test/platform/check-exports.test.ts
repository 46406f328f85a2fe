// Owns the export-map check's tests: agreeing manifests pass; a missing entry, a wrong target and a
// version skew are each reported.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkExports } from '../../scripts/check-exports.ts';

function project(pkgExports: unknown, denoExports: unknown, denoVersion = '1.0.0'): string {
  const root = mkdtempSync(join(tmpdir(), 'sluice-exports-'));
  mkdirSync(join(root, 'src'));
  writeFileSync(join(root, 'src/index.ts'), 'export {};\n');
  writeFileSync(join(root, 'src/extra.ts'), 'export {};\n');
  writeFileSync(join(root, 'package.json'), JSON.stringify({ version: '1.0.0', exports: pkgExports }));
  writeFileSync(join(root, 'deno.json'), JSON.stringify({ version: denoVersion, exports: denoExports }));
  return root;
}

function check(pkgExports: unknown, denoExports: unknown, denoVersion?: string): string[] {
  const root = project(pkgExports, denoExports, denoVersion);
  try {
    return checkExports(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const entry = (name: string) => ({ types: `./dist/src/${name}.d.ts`, default: `./dist/src/${name}.js` });

test('agreeing maps pass', () => {
  assert.equal(check({ '.': entry('index'), './extra': entry('extra') }, { '.': './src/index.ts', './extra': './src/extra.ts' }), []);
});

test('an entry missing on either side is reported', () => {
  assert.match(check({ '.': entry('index'), './extra': entry('extra') }, { '.': './src/index.ts' }).join('\n'), './extra: in package.json exports, missing from deno.json');
  assert.match(check({ '.': entry('index') }, { '.': './src/index.ts', './extra': './src/extra.ts' }).join('\n'), './extra: in deno.json exports, missing from package.json');
});

test('a different target and a version skew are reported', () => {
  assert.match(check({ '.': entry('index') }, { '.': './src/extra.ts' }).join('\n'), 'deno.json points at ./src/extra.ts');
  assert.match(check({ '.': entry('index') }, { '.': './src/index.ts' }, '2.0.0').join('\n'), 'version');
});

test.run();
