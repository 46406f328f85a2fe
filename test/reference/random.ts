// Owns the seeded randomness of the kernel tests: a small PRNG (xorshift128+ style over 32-bit words,
// sfc32) and a `forSeeds` driver that reports the failing seed, so any failure can be replayed with
// SLUICE_SEED=<seed>.

/** sfc32: a fast 32-bit PRNG with a 128-bit state; deterministic for a seed. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(readonly seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.u32();
  }
  /** Uniform u32. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }
  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  bool(pTrue = 0.5): boolean {
    return this.u32() / 4294967296 < pTrue;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  /** Uniform 64-bit two's complement value as a signed bigint. */
  i64(): bigint {
    return BigInt.asIntN(64, (BigInt(this.u32()) << 32n) | BigInt(this.u32()));
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

function baseSeed(): number {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const s = env?.SLUICE_SEED;
  if (s !== undefined && s !== '') return Number(s) >>> 0;
  return (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) >>> 0;
}

/** The base seed of this run (SLUICE_SEED or random); each case uses base + i. */
export const BASE_SEED = baseSeed();

/**
 * Runs `body` for `runs` seeds derived from BASE_SEED; a failure is rethrown naming the seed.
 * With SLUICE_SEED set, the first case replays exactly that seed.
 */
export async function forSeeds(name: string, runs: number, body: (rng: Rng, seed: number) => void | Promise<void>): Promise<void> {
  for (let i = 0; i < runs; i++) {
    const seed = (BASE_SEED + i) >>> 0;
    try {
      await body(new Rng(seed), seed);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const err = new Error(`${name}: failed with seed ${seed} (replay: SLUICE_SEED=${seed}): ${msg}`);
      if (e instanceof Error && e.stack) err.stack = `${err.message}\n${e.stack}`;
      console.error(err.message);
      throw err;
    }
  }
}
