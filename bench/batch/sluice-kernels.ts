// Owns what the Sluice entries of the batch benchmark share about the engine itself: one kernel
// instance per process, reused from run to run (a warm engine), and the one-time validation of the
// batches an entry generates.
//
// Why reuse: a fresh WebAssembly instance starts with linear memory the OS has never touched, so every
// run would pay a page fault per 4 KiB of managed memory it fills (~30 ms per 32 MB here) — a cost a
// long-running engine pays once, as its segment pool keeps its memory. DuckDB, likewise, keeps its
// allocator's pages from one run to the next. Each run still gets the budget it asks for; operators
// free everything they take (a leak would show as a budget error in the next run).

import { SEGMENT_BYTES } from '../../bindings/abi.generated.ts';
import { loadKernels, type Kernels } from '../../bindings/index.ts';
import type { Schema } from '../../src/core/schema.ts';

let warm: { budgetBytes: number; k: Promise<Kernels> } | undefined;

/** The process's kernel instance with this budget (the previous one is dropped when it differs). */
export function warmKernels(budgetBytes: number): Promise<Kernels> {
  if (warm?.budgetBytes !== budgetBytes) warm = { budgetBytes, k: loadKernels({ budgetBytes }) };
  return warm.k;
}

/** Validates every batch (CorruptBatchError / SchemaMismatchError), one at a time through one buffer. */
export function validateAll(k: Kernels, schema: Schema, batches: readonly Uint8Array[]): void {
  let cap = 0;
  let ptr = 0;
  try {
    for (const b of batches) {
      if (b.length > cap) {
        if (ptr !== 0) k.memory.free(ptr);
        ptr = 0;
        cap = Math.ceil(b.length / SEGMENT_BYTES) * SEGMENT_BYTES;
        ptr = k.memory.alloc(cap);
      }
      k.memory.u8.set(b, ptr);
      k.validate(schema, { ptr, byteLength: b.length });
    }
  } finally {
    if (ptr !== 0) k.memory.free(ptr);
  }
}
