// Owns a guard for bundlers: no module under src/ (platform adapters included) may import a `node:`
// module statically. Bundlers inline lazily imported adapter modules and hoist their static imports to
// the top of the bundle, which then fails to load on workerd and in browsers ("No such module node:fs").
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const root = new URL('../../src/', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

test('no static value import of a node: module anywhere in src/', () => {
  const offenders: string[] = [];
  for (const f of files(root)) {
    readFileSync(f, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (/^\s*import\s+(?!type\b)[^;]*from\s+['"]node:/.test(line) || /^\s*import\s+['"]node:/.test(line)) {
          offenders.push(`${f.slice(root.length)}:${i + 1}: ${line.trim()}`);
        }
      });
  }
  assert.equal(offenders, [], `load node: modules with a dynamic import() inside the function that needs them:\n${offenders.join('\n')}`);
});

test.run();
