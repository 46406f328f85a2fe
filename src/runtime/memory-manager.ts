// Owns job-level managed-memory budgeting: parsing the configured budget (`managedMemory: '512mb'`),
// dividing it among the memory-consuming operators by weight (Flink's managed-memory fractions), and
// the per-operator reservations that no operator can overspend. Pure bookkeeping in whole segments:
// it hands out no memory itself — an operator reserves here before it allocates segments from its
// kernel pool (bindings/memory.ts), and when a reservation is refused it spills instead.
//
// How a budget is divided (cost: O(units · log units) once, at job setup; reserve/release are O(1)):
//
//   units      = every parallel subtask of every consumer (operator i has p_i subtasks, weight w_i)
//   S          = floor(budget / SEGMENT_BYTES)                 whole 32 KiB segments in the budget
//   fraction_i = w_i / Σ_j (w_j · p_j)                          each subtask's share of the job budget
//   share      = floor(S · fraction_i) segments per subtask, then the segments left over by the
//                flooring go one each to the units with the largest remainders (ties: declaration
//                order), so every whole segment of the budget belongs to someone
//
// Weights are relative: Flink gives a batch operator's managed-memory use case a weight (e.g. sort and
// hash join 70, Python 30) and each operator a fraction of its slot; here the job's budget plays the slot.

import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { JobDefinitionError, MemoryBudgetError } from '../core/errors.ts';

/** A byte size: a number of bytes, or a string such as `'64kb'`, `'512mb'`, `'1gb'`, `'1.5g'`, `'4096'`. */
export type MemorySize = number | string;

/**
 * Fewest segments a memory consumer needs per subtask to make progress unless it says otherwise:
 * one being filled, one being spilled or sorted, and two to merge runs (a merge of fan-in 2).
 */
export const DEFAULT_MIN_SEGMENTS = 4;

// Binary multiples, as Flink's MemorySize: 1kb = 1024 bytes.
const UNITS: Record<string, number> = {
  '': 1, b: 1, byte: 1, bytes: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
};

/**
 * Bytes in a memory size. Units are case-insensitive binary multiples (`kb` = `k` = `kib` = 1024);
 * a fraction is allowed and rounded down to whole bytes. Anything else is a JobDefinitionError
 * naming `what` (the option being parsed).
 *
 * @example
 * parseMemorySize('512mb');  // 536870912
 * parseMemorySize('64KB');   // 65536
 * parseMemorySize(1 << 20);  // 1048576
 */
export function parseMemorySize(size: MemorySize, what = 'managedMemory'): number {
  if (typeof size === 'number') {
    if (!Number.isSafeInteger(size) || size < 0) throw new JobDefinitionError(`${what} must be a whole number of bytes ≥ 0 or a size like '512mb', got ${size}`);
    return size;
  }
  const m = typeof size === 'string' ? /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(size) : null;
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new JobDefinitionError(`${what}: cannot read ${JSON.stringify(size)} as a memory size (examples: 65536, '64kb', '512mb', '1gb')`);
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new JobDefinitionError(`${what}: ${JSON.stringify(size)} is too large`);
  return bytes;
}

/**
 * A byte count for messages: exact bytes when small, else binary units with up to two decimals.
 *
 * @example
 * formatBytes(512 * 1024 * 1024); // '512 MiB'
 */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${bytes} bytes` : `${Number(v.toFixed(2))} ${units[i]}`;
}

/** A memory-consuming operator as the job graph declares it. */
export interface MemoryConsumerSpec {
  /** The operator's name as it appears in errors, e.g. `"Sort(price)"`. Unique in the job. */
  operator: string;
  /** Relative weight of each subtask (default 1). Must be > 0. */
  weight?: number;
  /** Parallel subtasks, each of which gets its own share (default 1). */
  parallelism?: number;
  /** Fewest segments a subtask needs to make progress (default {@link DEFAULT_MIN_SEGMENTS}). */
  minSegments?: number;
}

/** Options of {@link MemoryManager.create}. */
export interface MemoryManagerOptions {
  /** The job's managed-memory budget: bytes, or a size string like `'512mb'`. */
  managedMemory: MemorySize;
  /** The memory-consuming operators. Operators that consume no managed memory are left out. */
  consumers: readonly MemoryConsumerSpec[];
}

/**
 * One subtask's share of the job's managed memory, in whole segments, and what of it is reserved
 * now. The operator reserves before it allocates segments from its pool and releases after freeing;
 * a reservation beyond the share is refused (`reserve` throws a MemoryBudgetError naming the
 * operator and the budget, `tryReserve` answers `false` — the operator's cue to spill).
 *
 * @example
 * const r = manager.reservation('Sort(price)', 0);
 * if (!r.tryReserve(SEGMENT_BYTES)) await spillCurrentRun();
 * // ... later
 * r.release(SEGMENT_BYTES);
 */
export class MemoryReservation {
  /** The operator this share belongs to. */
  readonly operator: string;
  /** The subtask this share belongs to. */
  readonly subtask: number;
  /** This subtask's fraction of the job budget (its weight over the total weight). */
  readonly fraction: number;
  /** Segments in this share. */
  readonly segments: number;
  /** Bytes in this share (`segments · SEGMENT_BYTES`). */
  readonly budgetBytes: number;
  /** The fewest segments this subtask declared it needs. */
  readonly minSegments: number;
  /** The whole job's budget, for messages. */
  readonly jobBudgetBytes: number;
  private used = 0;
  private peak = 0;

  /** @internal Made by {@link MemoryManager}. */
  constructor(operator: string, subtask: number, fraction: number, segments: number, minSegments: number, jobBudgetBytes: number) {
    this.operator = operator;
    this.subtask = subtask;
    this.fraction = fraction;
    this.segments = segments;
    this.budgetBytes = segments * SEGMENT_BYTES;
    this.minSegments = minSegments;
    this.jobBudgetBytes = jobBudgetBytes;
  }

  /** Segments reserved now. */
  get segmentsReserved(): number {
    return this.used;
  }
  /** Bytes reserved now (whole segments). */
  get bytesReserved(): number {
    return this.used * SEGMENT_BYTES;
  }
  /** Segments still free in this share. */
  get segmentsAvailable(): number {
    return this.segments - this.used;
  }
  /** Bytes still free in this share (whole segments). */
  get bytesAvailable(): number {
    return (this.segments - this.used) * SEGMENT_BYTES;
  }
  /** Most segments reserved at once so far. */
  get peakSegments(): number {
    return this.peak;
  }

  /** Reserve `n` whole segments or throw MemoryBudgetError naming the operator and the budget. */
  reserveSegments(n: number): void {
    checkCount(n, 'segments to reserve');
    if (this.used + n > this.segments) {
      throw new MemoryBudgetError(
        `managed-memory share exceeded: ${formatBytes(n * SEGMENT_BYTES)} more requested with ` +
          `${formatBytes(this.used * SEGMENT_BYTES)} of ${formatBytes(this.budgetBytes)} reserved ` +
          `(${this.segments} segments of ${formatBytes(SEGMENT_BYTES)}, ${percent(this.fraction)} of the job's ` +
          `managedMemory budget of ${formatBytes(this.jobBudgetBytes)}); spill, or raise managedMemory or this operator's weight`,
        { operator: this.operator, subtask: this.subtask },
      );
    }
    this.used += n;
    if (this.used > this.peak) this.peak = this.used;
  }

  /** Reserve at least `bytes` (rounded up to whole segments) or throw MemoryBudgetError. */
  reserve(bytes: number): void {
    this.reserveSegments(segmentsFor(bytes));
  }

  /** Reserve at least `bytes` (whole segments) if the share allows; `false` (nothing reserved) if not. */
  tryReserve(bytes: number): boolean {
    const n = segmentsFor(bytes);
    if (this.used + n > this.segments) return false;
    this.reserveSegments(n);
    return true;
  }

  /** Give back `n` segments reserved before. */
  releaseSegments(n: number): void {
    checkCount(n, 'segments to release');
    if (n > this.used) {
      throw new RangeError(`${this.operator} subtask ${this.subtask}: release of ${n} segments, only ${this.used} reserved`);
    }
    this.used -= n;
  }

  /** Give back what `reserve(bytes)` took (the same rounding to whole segments). */
  release(bytes: number): void {
    this.releaseSegments(segmentsFor(bytes));
  }

  /** Give back everything (at close or failure of the operator). */
  releaseAll(): void {
    this.used = 0;
  }
}

/**
 * The job's managed-memory budget divided among its memory-consuming operators (see the file
 * comment for the arithmetic). Made once at job setup; a budget that leaves some subtask fewer than
 * its minimum segments fails right there with a MemoryBudgetError naming the budget, the operators
 * short of memory and the smallest budget that would do.
 *
 * @example
 * const mm = MemoryManager.create({
 *   managedMemory: '64mb',
 *   consumers: [
 *     { operator: 'Sort(price)', weight: 70, parallelism: 2 },
 *     { operator: 'HashJoin(orders, users)', weight: 70, minSegments: 8 },
 *     { operator: 'GroupReduce(sym)', weight: 30 },
 *   ],
 * });
 * const r = mm.reservation('Sort(price)', 1);
 * r.budgetBytes; // this subtask's share, whole 32 KiB segments
 */
export class MemoryManager {
  /** The configured budget in bytes. */
  readonly budgetBytes: number;
  /** Whole segments in the budget. */
  readonly totalSegments: number;
  /** Every subtask's reservation, in declaration order. */
  readonly reservations: readonly MemoryReservation[];
  private readonly byKey: Map<string, MemoryReservation>;

  private constructor(budgetBytes: number, reservations: MemoryReservation[]) {
    this.budgetBytes = budgetBytes;
    this.totalSegments = Math.floor(budgetBytes / SEGMENT_BYTES);
    this.reservations = reservations;
    this.byKey = new Map(reservations.map((r) => [key(r.operator, r.subtask), r]));
  }

  /** Divide `managedMemory` among `consumers`; throws at setup if a share is too small to make progress. */
  static create(options: MemoryManagerOptions): MemoryManager {
    const budget = parseMemorySize(options.managedMemory);
    const specs = normalise(options.consumers);
    const totalSegments = Math.floor(budget / SEGMENT_BYTES);
    const shares = divide(totalSegments, specs);
    const totalWeight = specs.reduce((s, c) => s + c.weight * c.parallelism, 0);

    const short = specs.filter((c, i) => shares[i]!.some((n) => n < c.minSegments));
    if (short.length > 0) {
      const detail = short
        .map((c) => {
          const got = Math.min(...shares[specs.indexOf(c)]!);
          return `${c.operator} gets ${got} segment${got === 1 ? '' : 's'} per subtask and needs ${c.minSegments}`;
        })
        .join('; ');
      const need = smallestSufficientSegments(specs);
      throw new MemoryBudgetError(
        `managedMemory budget of ${formatBytes(budget)} (${totalSegments} segments of ${formatBytes(SEGMENT_BYTES)}) is too small ` +
          `for ${specs.length} memory-consuming operator${specs.length === 1 ? '' : 's'}: ${detail}. ` +
          `Set managedMemory to at least ${formatBytes(need * SEGMENT_BYTES)}, or lower their parallelism, or change their weights`,
      );
    }

    const reservations: MemoryReservation[] = [];
    specs.forEach((c, i) => {
      shares[i]!.forEach((n, subtask) => {
        reservations.push(new MemoryReservation(c.operator, subtask, totalWeight > 0 ? c.weight / totalWeight : 0, n, c.minSegments, budget));
      });
    });
    return new MemoryManager(budget, reservations);
  }

  /** The reservation of `operator`'s subtask `subtask`; a name not declared is a JobDefinitionError. */
  reservation(operator: string, subtask = 0): MemoryReservation {
    const r = this.byKey.get(key(operator, subtask));
    if (!r) {
      throw new JobDefinitionError(`no managed-memory share for operator ${operator} subtask ${subtask}: it was not declared a memory consumer`);
    }
    return r;
  }

  /** Segments reserved now across the job. */
  get segmentsReserved(): number {
    return this.reservations.reduce((s, r) => s + r.segmentsReserved, 0);
  }

  /** One line per subtask share, for `explain()` and logs. */
  describe(): string {
    const lines = [`managedMemory ${formatBytes(this.budgetBytes)} = ${this.totalSegments} × ${formatBytes(SEGMENT_BYTES)} segments`];
    for (const r of this.reservations) {
      lines.push(`  ${r.operator} [${r.subtask}]: ${r.segments} segments (${formatBytes(r.budgetBytes)}, ${percent(r.fraction)})`);
    }
    return lines.join('\n');
  }
}

interface Consumer {
  operator: string;
  weight: number;
  parallelism: number;
  minSegments: number;
}

function normalise(consumers: readonly MemoryConsumerSpec[]): Consumer[] {
  const seen = new Set<string>();
  return consumers.map((c) => {
    const operator = c?.operator;
    if (typeof operator !== 'string' || operator === '') throw new JobDefinitionError('a memory consumer needs an operator name');
    if (seen.has(operator)) throw new JobDefinitionError(`memory consumer ${operator} is declared twice`);
    seen.add(operator);
    const weight = c.weight ?? 1;
    if (!(weight > 0) || !Number.isFinite(weight)) throw new JobDefinitionError(`memory consumer ${operator}: weight must be a finite number > 0, got ${weight}`);
    const parallelism = c.parallelism ?? 1;
    if (!Number.isSafeInteger(parallelism) || parallelism < 1) throw new JobDefinitionError(`memory consumer ${operator}: parallelism must be an integer ≥ 1, got ${parallelism}`);
    const minSegments = c.minSegments ?? DEFAULT_MIN_SEGMENTS;
    if (!Number.isSafeInteger(minSegments) || minSegments < 0) throw new JobDefinitionError(`memory consumer ${operator}: minSegments must be an integer ≥ 0, got ${minSegments}`);
    return { operator, weight, parallelism, minSegments };
  });
}

/** Segments per subtask of each consumer: floor of the exact share, leftovers by largest remainder. */
function divide(total: number, specs: Consumer[]): number[][] {
  const totalWeight = specs.reduce((s, c) => s + c.weight * c.parallelism, 0);
  const shares = specs.map((c) => new Array<number>(c.parallelism).fill(0));
  if (totalWeight === 0 || total === 0) return shares;
  const rest: Array<{ i: number; s: number; rem: number; order: number }> = [];
  let given = 0;
  let order = 0;
  specs.forEach((c, i) => {
    const exact = (total * c.weight) / totalWeight;
    const base = Math.floor(exact);
    for (let s = 0; s < c.parallelism; s++) {
      shares[i]![s] = base;
      given += base;
      rest.push({ i, s, rem: exact - base, order: order++ });
    }
  });
  rest.sort((a, b) => b.rem - a.rem || a.order - b.order);
  for (let k = 0; given < total && k < rest.length; k++, given++) shares[rest[k]!.i]![rest[k]!.s]!++;
  return shares;
}

/** A segment count at which every subtask gets its minimum (floor(S·w/W) ≥ min for all ⇒ sufficient). */
function smallestSufficientSegments(specs: Consumer[]): number {
  const totalWeight = specs.reduce((s, c) => s + c.weight * c.parallelism, 0);
  let s = specs.reduce((sum, c) => sum + c.minSegments * c.parallelism, 0);
  for (const c of specs) s = Math.max(s, Math.ceil((c.minSegments * totalWeight) / c.weight - 1e-9));
  // The bound above is sufficient; the leftover segments may make a little less do (a bounded walk).
  const ok = (n: number) => divide(n, specs).every((row, i) => row.every((x) => x >= specs[i]!.minSegments));
  for (let steps = 0; steps < 1024 && s > 0 && ok(s - 1); steps++) s--;
  return s;
}

function segmentsFor(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`a reservation must be a whole number of bytes ≥ 0, got ${bytes}`);
  return Math.ceil(bytes / SEGMENT_BYTES);
}

function checkCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be an integer ≥ 0, got ${n}`);
}

function percent(f: number): string {
  return `${Number((f * 100).toFixed(2))}%`;
}

function key(operator: string, subtask: number): string {
  return `${subtask}\u0000${operator}`;
}
