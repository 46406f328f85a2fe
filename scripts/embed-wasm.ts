// Owns embedding the compiled kernels into the bindings: reads build/kernels.wasm and
// build/kernels.debug.wasm and writes bindings/wasm.generated.ts (DO NOT EDIT) exporting both as
// base64 strings, so no runtime has to read a file at run time.
import { readFileSync, writeFileSync } from 'node:fs';

const read = (name: string) => readFileSync(new URL(`../build/${name}`, import.meta.url)).toString('base64');
const release = read('kernels.wasm');
const debug = read('kernels.debug.wasm');
const out =
  '// DO NOT EDIT: generated from build/kernels*.wasm by scripts/embed-wasm.ts (run `make wasm`).\n' +
  '// The compiled kernel modules as base64 (assembly/ sources; bindings/kernels.ts decodes them).\n' +
  `export const KERNELS_WASM_BASE64 = '${release}';\n` +
  `export const KERNELS_DEBUG_WASM_BASE64 = '${debug}';\n`;
writeFileSync(new URL('../bindings/wasm.generated.ts', import.meta.url), out);
console.log(`bindings/wasm.generated.ts: release ${release.length} chars, debug ${debug.length} chars`);
