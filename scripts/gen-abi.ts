// Owns mirroring abi/abi.ts into the AssemblyScript and TypeScript constant modules (both DO NOT EDIT).
import { writeFileSync } from 'node:fs';
import { ABI } from '../abi/abi.ts';

const header = '// DO NOT EDIT: generated from abi/abi.ts by scripts/gen-abi.ts (run `make`).\n';
const hex = (v: number) => (v > 255 ? '0x' + v.toString(16) : String(v));
const as = Object.entries(ABI).map(([k, v]) => `export const ${k}: u32 = ${hex(v)};`).join('\n');
const ts = Object.entries(ABI).map(([k, v]) => `export const ${k} = ${hex(v)};`).join('\n');
writeFileSync(new URL('../assembly/abi.generated.ts', import.meta.url), header + '// Kernel ABI constants.\n' + as + '\n');
writeFileSync(new URL('../bindings/abi.generated.ts', import.meta.url), header + '// Kernel ABI constants, mirrored for the host.\n' + ts + '\n');
