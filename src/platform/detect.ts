// Owns choosing a platform adapter by feature detection (never by configuration the user must get right).

import { createBrowserPlatform } from './browser.ts';
import { createBunPlatform } from './bun.ts';
import { createDenoPlatform } from './deno.ts';
import { createNodePlatform } from './node.ts';
import type { Platform, PlatformOptions, RuntimeName } from './types.ts';
import { createWorkerdPlatform } from './workerd.ts';

interface Globals {
  Deno?: { version?: { deno?: string } };
  Bun?: { version?: string };
  process?: { versions?: { node?: string } };
  navigator?: { userAgent?: string };
  WebSocketPair?: unknown;
}

/**
 * Which runtime is executing this code. Order matters: Deno and Bun also define `process.versions.node`
 * for compatibility, so they are tested before Node.
 *
 * @example
 * ```ts
 * import { detectRuntime } from './detect.ts';
 * if (detectRuntime() === 'workerd') console.log('no threads here');
 * ```
 */
export function detectRuntime(): RuntimeName {
  const g = globalThis as Globals;
  if (typeof g.Deno?.version?.deno === 'string') return 'deno';
  if (typeof g.Bun?.version === 'string') return 'bun';
  // workerd: the Workers-only WebSocketPair global, and the user agent it reports.
  if (typeof g.WebSocketPair === 'function' || g.navigator?.userAgent === 'Cloudflare-Workers') return 'workerd';
  if (typeof g.process?.versions?.node === 'string') return 'node';
  return 'browser';
}

/**
 * The platform for the current runtime. On workerd `options.kernels` is required (see workerd.ts).
 *
 * @example
 * ```ts
 * import { detectPlatform } from './detect.ts';
 * const platform = await detectPlatform();
 * console.log(platform.name, platform.hardwareConcurrency);
 * ```
 */
export async function detectPlatform(options?: PlatformOptions): Promise<Platform> {
  switch (detectRuntime()) {
    case 'deno': return createDenoPlatform(options);
    case 'bun': return createBunPlatform(options);
    case 'node': return createNodePlatform(options);
    case 'workerd': {
      if (!options?.kernels) {
        throw new TypeError('workerd cannot compile WebAssembly at run time: pass { kernels } imported from a .wasm module');
      }
      return createWorkerdPlatform({ kernels: options.kernels });
    }
    default: return createBrowserPlatform(options);
  }
}
