// Owns the portability lint: code under src/ (except src/platform/), bindings/ and assembly/ may use
// web-standard APIs only — no Node built-ins, no Deno./Bun./process. globals, no require(), and no
// code generation (eval, new Function), which workerd refuses.
//
//   node --import tsx scripts/lint-portability.ts [projectRoot]     (default: this repository)
//
// Prints `file:line: rule: source` per violation and exits 1 if there are any. Comments are ignored;
// identifier rules also ignore string contents (import rules read the specifier strings). A line that
// must break a rule on purpose says so with `// portability-ok: <reason>`.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative, resolve, sep } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

export interface Violation {
  file: string;
  line: number;
  rule: string;
  source: string;
}

/** Folders checked, relative to the project root, and the folders inside them that are exempt. */
const ROOTS = ['src', 'bindings', 'assembly'];
const EXEMPT = [join('src', 'platform')];
const SOURCE = /\.(?:[mc]?ts|[mc]?js|tsx|jsx)$/;

const builtins = new Set(builtinModules.filter((m) => !m.startsWith('_')));
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const builtinAlternation = [...builtins].sort((a, b) => b.length - a.length).map(escape).join('|');
// A specifier naming a Node built-in: `node:anything`, or a bare built-in name (optionally /subpath).
const SPEC = `['"](?:node:[^'"]*|(?:${builtinAlternation})(?:/[^'"]*)?)['"]`;

/** Rules over code with comments removed but strings kept (module specifiers are strings). */
const IMPORT_RULES: Array<[string, RegExp]> = [
  ['node built-in import', new RegExp(`\\bfrom\\s*${SPEC}`)],
  ['node built-in import', new RegExp(`\\bimport\\s*${SPEC}`)],
  ['node built-in import', new RegExp(`\\bimport\\s*\\(\\s*${SPEC}`)],
];

/** Rules over code with comments and string contents removed. `(?<![\w$.])` = not a property access. */
const CODE_RULES: Array<[string, RegExp]> = [
  ['Deno global', /(?<![\w$.])Deno\s*\./],
  ['Bun global', /(?<![\w$.])Bun\s*\./],
  ['process global', /(?<![\w$.])process\s*\./],
  ['runtime global via globalThis', /\bglobalThis\s*(?:\.\s*|\[\s*['"`]?)(?:Deno|Bun|process|require|Buffer)\b/],
  ['require()', /(?<![\w$.])require\s*\(/],
  ['Node Buffer', /(?<![\w$.])Buffer\s*\.|\bnew\s+Buffer\s*\(/],
  ['Node module globals', /(?<![\w$.])(?:__dirname|__filename)\b/],
  ['runtime-specific import.meta', /\bimport\.meta\.(?:dirname|filename|dir|path|main|require)\b/],
  ['eval()', /(?<![\w$.])eval\s*\(/],
  ['code generation (Function constructor)', /\bnew\s+Function\b|(?<![\w$.])Function\s*\(/],
];

/**
 * Blank out comments (and, if `strings`, the contents of string and template literals) while keeping
 * every newline, so line numbers survive. A small scanner, not a parser: a regex literal containing a
 * quote or `//` can confuse it — if that ever bites, mark the line `portability-ok`.
 */
export function blank(code: string, strings: boolean): string {
  let out = '';
  let i = 0;
  const templateDepth: number[] = []; // brace depth at which each open `${` returns to its template
  let braces = 0;
  const keep = (ch: string, drop: boolean) => (drop && ch !== '\n' ? ' ' : ch);
  while (i < code.length) {
    const ch = code[i]!;
    const next = code[i + 1];
    if (ch === '/' && next === '/') {
      while (i < code.length && code[i] !== '\n') { out += ' '; i++; }
    } else if (ch === '/' && next === '*') {
      const end = code.indexOf('*/', i + 2);
      const stop = end < 0 ? code.length : end + 2;
      for (; i < stop; i++) out += keep(code[i]!, true);
    } else if (ch === '"' || ch === "'") {
      out += ch; i++;
      while (i < code.length && code[i] !== ch && code[i] !== '\n') {
        if (code[i] === '\\') { out += keep(code[i]!, strings); i++; }
        if (i < code.length) { out += keep(code[i]!, strings); i++; }
      }
      if (i < code.length) { out += code[i]; i++; }
    } else if (ch === '`' || (ch === '}' && templateDepth.length > 0 && templateDepth[templateDepth.length - 1] === braces)) {
      // Template text: after an opening backtick, or after the `}` that closes a `${ … }`.
      if (ch === '}') templateDepth.pop();
      out += ch; i++;
      while (i < code.length) {
        const c = code[i]!;
        if (c === '`') { out += c; i++; break; }
        if (c === '$' && code[i + 1] === '{') { out += '${'; i += 2; templateDepth.push(braces); break; }
        out += keep(c, strings); i++;
        if (c === '\\' && i < code.length) { out += keep(code[i]!, strings); i++; }
      }
    } else {
      if (ch === '{') braces++;
      else if (ch === '}') braces--;
      out += ch; i++;
    }
  }
  return out;
}

function walk(dir: string, out: string[]): void {
  let names: string[];
  try { names = readdirSync(dir); } catch { return; }
  for (const name of names) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (SOURCE.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
}

/** Check one file's text; `file` is only used in the report. */
export function lintSource(file: string, code: string): Violation[] {
  const found: Violation[] = [];
  const raw = code.split('\n');
  const withStrings = blank(code, false).split('\n');
  const codeOnly = blank(code, true).split('\n');
  for (let n = 0; n < raw.length; n++) {
    if (/portability-ok:/.test(raw[n]!)) continue;
    const check = (rules: Array<[string, RegExp]>, text: string) => {
      for (const [rule, re] of rules) {
        if (re.test(text) && !found.some((v) => v.line === n + 1 && v.rule === rule)) found.push({ file, line: n + 1, rule, source: raw[n]!.trim() });
      }
    };
    check(IMPORT_RULES, withStrings[n] ?? '');
    check(CODE_RULES, codeOnly[n] ?? '');
  }
  return found;
}

/** Lint a project: src/ (but src/platform/), bindings/ and assembly/ under `root`. */
export function lintPortability(root: string): Violation[] {
  const files: string[] = [];
  for (const dir of ROOTS) walk(join(root, dir), files);
  const violations: Violation[] = [];
  for (const path of files.sort()) {
    const rel = relative(root, path);
    if (EXEMPT.some((e) => rel === e || rel.startsWith(e + sep))) continue;
    violations.push(...lintSource(rel.split(sep).join('/'), readFileSync(path, 'utf8')));
  }
  return violations;
}

function isMain(): boolean {
  const script = process.argv[1];
  return !!script && resolve(script) === fileURLToPath(import.meta.url);
}

if (isMain()) {
  const root = resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)));
  const violations = lintPortability(root);
  for (const v of violations) console.log(`${v.file}:${v.line}: ${v.rule}: ${v.source}`);
  if (violations.length) {
    console.log(`lint-portability: ${violations.length} violation(s) in ${root}`);
    process.exit(1);
  }
  console.log('lint-portability: ok');
}
