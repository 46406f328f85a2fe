// Owns the host side of managed memory: a byte budget over the kernels' segment pool, and the typed
// views onto WASM linear memory (made once, rebuilt only when `memory.buffer` changes after a grow).

import { MemoryBudgetError } from '../src/core/errors.ts';
import { SEGMENT_BYTES } from './abi.generated.ts';

/** The pool exports of the kernel module that ManagedMemory drives. */
export interface SegmentPoolExports {
  readonly memory: WebAssembly.Memory;
  segAlloc(nSegments: number): number;
  segFree(ptr: number): number;
  segmentsInUse(): number;
  segmentsBacked(): number;
}

/**
 * A budgeted pool of fixed-size segments (`SEGMENT_BYTES`, 32 KiB) in one kernel instance's linear
 * memory. `alloc` rounds a request up to whole segments, which are contiguous; asking for more than
 * the budget allows throws {@link MemoryBudgetError} naming the budget. Cost: alloc/free are one WASM
 * call each (O(1) amortised for one segment, a bitmap scan for runs).
 *
 * The views (`u8`, `u32`, `i32`, `dv`) stay valid until the next allocation that grows memory: read
 * them again after any call that may allocate, never keep them across one.
 *
 * @example
 * const k = await loadKernels({ budgetBytes: 1 << 20 });
 * const ptr = k.memory.alloc(1000);        // one 32 KiB segment
 * k.memory.u8.set(bytes, ptr);
 * k.memory.free(ptr);
 */
export class ManagedMemory {
  /** The most bytes (whole segments) this pool hands out at once. */
  readonly budgetBytes: number;
  private readonly pool: SegmentPoolExports;
  private readonly sizes = new Map<number, number>(); // ptr → segments, budgeted allocations only
  private used = 0; // budgeted segments in use
  private buf: ArrayBuffer | null = null;
  private _u8!: Uint8Array;
  private _u32!: Uint32Array;
  private _i32!: Int32Array;
  private _dv!: DataView;

  constructor(pool: SegmentPoolExports, budgetBytes: number) {
    if (!(budgetBytes >= 0) || !Number.isFinite(budgetBytes)) throw new RangeError(`budgetBytes must be a finite number ≥ 0, got ${budgetBytes}`);
    this.pool = pool;
    this.budgetBytes = budgetBytes;
  }

  private refresh(): void {
    const b = this.pool.memory.buffer;
    if (b === this.buf) return;
    this.buf = b;
    this._u8 = new Uint8Array(b);
    this._u32 = new Uint32Array(b);
    this._i32 = new Int32Array(b);
    this._dv = new DataView(b);
  }

  /** Bytes of linear memory as a Uint8Array (current after any grow). */
  get u8(): Uint8Array {
    this.refresh();
    return this._u8;
  }
  /** Linear memory as u32 words (index = address >>> 2). */
  get u32(): Uint32Array {
    this.refresh();
    return this._u32;
  }
  /** Linear memory as i32 words (index = address >>> 2). */
  get i32(): Int32Array {
    this.refresh();
    return this._i32;
  }
  /** Linear memory as a DataView. */
  get dv(): DataView {
    this.refresh();
    return this._dv;
  }

  /** Bytes currently allocated against the budget. */
  get bytesInUse(): number {
    return this.used * SEGMENT_BYTES;
  }
  /** Segments allocated in the kernel pool (budgeted and internal). */
  get segmentsInUse(): number {
    return this.pool.segmentsInUse() >>> 0;
  }
  /** Segments backed by linear memory, allocated or free. */
  get segmentsBacked(): number {
    return this.pool.segmentsBacked() >>> 0;
  }

  /**
   * Allocates at least `bytes` bytes (whole contiguous segments, 32 KiB aligned) and returns the address.
   * Throws MemoryBudgetError if that would exceed the budget or linear memory cannot grow.
   */
  alloc(bytes: number): number {
    const n = segmentsFor(bytes);
    if ((this.used + n) * SEGMENT_BYTES > this.budgetBytes) {
      throw new MemoryBudgetError(
        `managed memory budget of ${this.budgetBytes} bytes exceeded: ${this.used * SEGMENT_BYTES} bytes in use, ` +
          `${n * SEGMENT_BYTES} more requested`,
      );
    }
    const ptr = this.rawAlloc(n);
    this.sizes.set(ptr, n);
    this.used += n;
    return ptr;
  }

  /** Frees an allocation made by {@link alloc}. */
  free(ptr: number): void {
    const n = this.sizes.get(ptr);
    if (n === undefined) throw new RangeError(`free of ${ptr}: not a live managed-memory allocation`);
    this.sizes.delete(ptr);
    this.used -= n;
    this.pool.segFree(ptr);
  }

  /** @internal Segments for the bindings' own scratch, outside the budget (a fixed, small amount). */
  allocInternal(bytes: number): number {
    return this.rawAlloc(segmentsFor(bytes));
  }
  /** @internal */
  freeInternal(ptr: number): void {
    this.pool.segFree(ptr);
  }

  private rawAlloc(n: number): number {
    const ptr = this.pool.segAlloc(n) >>> 0;
    if (ptr === 0) {
      throw new MemoryBudgetError(
        `WebAssembly memory cannot grow by ${n * SEGMENT_BYTES} bytes (budget ${this.budgetBytes} bytes, ${this.bytesInUse} in use)`,
      );
    }
    return ptr;
  }
}

function segmentsFor(bytes: number): number {
  if (!(bytes >= 0) || !Number.isSafeInteger(bytes)) throw new RangeError(`allocation size must be a safe integer ≥ 0, got ${bytes}`);
  return Math.max(1, Math.ceil(bytes / SEGMENT_BYTES));
}
