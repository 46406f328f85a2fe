// Owns the portability lint's tests: a fixture project with planted violations is caught (file:line,
// non-zero exit from the CLI), src/platform/ is exempt, and comments and strings do not trip it.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { lintPortability, lintSource } from '../../scripts/lint-portability.ts';

const script = fileURLToPath(new URL('../../scripts/lint-portability.ts', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));

function fixture(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'sluice-lint-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** Run the lint CLI on `root` with the runtime running this test. */
function cli(root: string): { status: number | null; stdout: string } {
  const versions = process.versions as Record<string, string | undefined>;
  const args = versions.deno ? ['run', '-A', script, root]
    : versions.bun ? [script, root]
    : ['--import', 'tsx', script, root];
  const r = spawnSync(process.execPath, args, { cwd: repo, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout + r.stderr };
}

test('CLI fails on planted violations and names file:line', () => {
  const root = fixture({
    'src/core/ok.ts': 'export const now = () => performance.now();\n',
    'src/core/bad.ts': 'export const x = 1;\nimport { readFileSync } from "node:fs";\n',
    'bindings/bad.ts': 'const a = 1;\nconst b = 2;\nexport const argv = process.argv;\n',
    'assembly/bad.ts': 'export const f = new Function("return 1");\n',
    'src/platform/node.ts': 'import os from "node:os";\nexport const n = process.pid;\n',
  });
  try {
    const { status, stdout } = cli(root);
    assert.is(status, 1, stdout);
    assert.match(stdout, 'src/core/bad.ts:2: node built-in import');
    assert.match(stdout, 'bindings/bad.ts:3: process global');
    assert.match(stdout, 'assembly/bad.ts:1: code generation');
    assert.not.match(stdout, 'src/platform/');
    assert.not.match(stdout, 'ok.ts');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('CLI passes a clean fixture', () => {
  const root = fixture({ 'src/index.ts': 'export const t = () => Date.now();\n' });
  try {
    const { status, stdout } = cli(root);
    assert.is(status, 0, stdout);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('every rule fires', () => {
  const rules = (code: string) => lintSource('x.ts', code).map((v) => v.rule);
  assert.equal(rules('import fs from "fs";'), ['node built-in import']);
  assert.equal(rules('import { join } from "path/posix";'), ['node built-in import']);
  assert.equal(rules('const w = await import("worker_threads");'), ['node built-in import']);
  assert.equal(rules('const d = Deno.readFileSync("x");'), ['Deno global']);
  assert.equal(rules('const f = Bun.file("x");'), ['Bun global']);
  assert.equal(rules('const e = process.env.X;'), ['process global']);
  assert.equal(rules('const p = globalThis.process;'), ['runtime global via globalThis']);
  assert.equal(rules('const m = require("x");'), ['require()']);
  assert.equal(rules('eval("1");'), ['eval()']);
  assert.equal(rules('const f = new Function("a", "return a");'), ['code generation (Function constructor)']);
  assert.equal(rules('const b = Buffer.from([1]);'), ['Node Buffer']);
  assert.equal(rules('const d = __dirname;'), ['Node module globals']);
});

test('comments, strings and property names do not trip it', () => {
  const code = [
    '// process.exit(1) and Deno.exit() in a comment',
    '/* import fs from "node:fs"; eval("x") */',
    'const msg = "Bun.file and process.env are named here";',
    'const t = `template mentions require(x) ${value}`;',
    'const y = this.process.run(); op.eval(1); obj.require(2);',
    'import { pathological } from "./path-like.ts";',
    'const g = Buffer2.from(1); // portability-ok: not Node',
    'const z = Buffer.from([]); // portability-ok: fixture',
  ].join('\n');
  assert.equal(lintSource('x.ts', code), []);
  assert.equal(lintSource('x.ts', 'const t = `${ process.env.X }`;').map((v) => v.rule), ['process global']);
});

test('this repository is clean', () => {
  const violations = lintPortability(repo);
  assert.equal(violations.map((v) => `${v.file}:${v.line}: ${v.rule}`), []);
});

test.run();
