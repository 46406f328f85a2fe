// Owns loading the kernel module on every runtime and its typed, batch-level host API: descriptor
// encoding into a scratch area, copying batch bytes in and out of managed memory, resumable output
// handling (STATUS_FULL → flush → resume), and turning statuses into typed errors.
// Only numbers cross into WASM, and only once per batch (or once per full output buffer).

import { CorruptBatchError, JobDefinitionError, SchemaMismatchError, SluiceError } from '../src/core/errors.ts';
import { Schema, TYPE_CODES, type Fields } from '../src/core/schema.ts';
import {
  BATCH_HEADER_BYTES,
  BATCH_MAGIC,
  KEY_DESC,
  KEY_NULLS_FIRST,
  SEGMENT_BYTES,
  STATUS_CORRUPT,
  STATUS_DONE,
  STATUS_FULL,
  STATUS_NEED_INPUT,
  STATUS_SCHEMA_MISMATCH,
  TYPE_NULLABLE_BIT,
} from './abi.generated.ts';
import { ManagedMemory, type SegmentPoolExports } from './memory.ts';
import { KERNELS_DEBUG_WASM_BASE64, KERNELS_WASM_BASE64 } from './wasm.generated.ts';

/** The raw exports of the kernel module (assembly/index.ts). Addresses and counts are u32. */
export interface KernelExports extends SegmentPoolExports {
  resultRow(): number;
  resultOffset(): number;
  resultIndex(): number;
  resultBytes(): number;
  validateBatch(ptr: number, len: number, schemaDesc: number): number;
  hashBatch(batch: number, schemaDesc: number, keyDesc: number, out: number): number;
  partitionBatch(
    batch: number,
    schemaDesc: number,
    keyDesc: number,
    maxParallelism: number,
    nOut: number,
    table: number,
    startRow: number,
    startOffset: number,
  ): number;
  initBatch(ptr: number, schemaId: number): void;
  rowPointers(batch: number, out: number): number;
  projectBatch(batch: number, schemaDesc: number, fields: number, out: number, cap: number, startRow: number, startOffset: number): number;
  gatherBatch(batch: number, rowPtrs: number, sel: number, selCount: number, startIdx: number, out: number, cap: number): number;
  compareRowPairs(pairs: number, nPairs: number, schemaDesc: number, keyDesc: number, out: number): number;
  schemaId(schemaDesc: number): number;
  sortIndex(batches: number, nBatches: number, schemaDesc: number, keyDesc: number, index: number, scratch: number): number;
  gatherSorted(index: number, count: number, startIdx: number, out: number, cap: number): number;
  sortedRowPointers(index: number, count: number, out: number): void;
  mergeStateBytes(k: number): number;
  mergeInit(state: number, k: number, schemaDesc: number, keyDesc: number): void;
  mergeFeed(state: number, run: number, batch: number): void;
  mergeStep(state: number, out: number, cap: number): number;
}

/** A key field: by index or name; `desc` reverses non-null values; nulls go last unless `nullsFirst`. */
export interface KeySpec {
  field: number | string;
  desc?: boolean;
  nullsFirst?: boolean;
}

/** A key field given as a bare index or name (ascending, nulls last) or a {@link KeySpec}. */
export type KeyRef = number | string | KeySpec;

/** A batch held in managed memory: its address and how many bytes were copied there. */
export interface ManagedBatch {
  readonly ptr: number;
  /** Bytes copied in (the readable extent; the header's byteLength is ≤ this for a valid batch). */
  readonly byteLength: number;
}

/** Options of kernels that write output batches. */
export interface OutputOptions {
  /**
   * Capacity of each output batch in bytes (default SEGMENT_BYTES, rounded down to a multiple of 8,
   * at least 16). A row larger than an empty output gets a buffer of its own.
   */
  outputBytes?: number;
}

/** Options of {@link Kernels.merger}. */
export interface MergerOptions extends OutputOptions {
  /**
   * The pushed batches were made by Sluice itself (sorted runs it spilled and reads back): only each
   * batch's header (magic, length, schema id) is checked, not every row. Default false: every batch
   * is validated against the schema before the merge reads it.
   */
  trusted?: boolean;
  /**
   * Hand out views of the output buffer instead of copies: each {@link Merger.pull} returns at most
   * one batch, valid until the next `pull()` or `close()` (and only while nothing allocates in the same
   * kernel instance; `slice()` it to keep it). After the last batch, call `close()` to free the
   * merge's memory. Saves copying every merged row out of managed memory.
   */
  reuseOutput?: boolean;
}

export interface LoadKernelsOptions {
  /** A precompiled kernel module (required on Cloudflare workerd, which cannot compile bytes). */
  module?: WebAssembly.Module;
  /** Use the debug build (asserts on) of the embedded bytes. Ignored when `module` is given. */
  debug?: boolean;
  /** Managed-memory budget in bytes (default 64 MiB). */
  budgetBytes?: number;
}

/** Default managed-memory budget of a kernel instance. */
export const DEFAULT_BUDGET_BYTES = 64 * 1024 * 1024;

const compiled: { release?: Promise<WebAssembly.Module>; debug?: Promise<WebAssembly.Module> } = {};

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * The embedded kernel module, compiled once per process and build flavour.
 *
 * @example
 * const mod = await kernelModule(); // pass to loadKernels({ module: mod }) in several instances
 */
export function kernelModule(debug = false): Promise<WebAssembly.Module> {
  const key = debug ? 'debug' : 'release';
  return (compiled[key] ??= WebAssembly.compile(decodeBase64(debug ? KERNELS_DEBUG_WASM_BASE64 : KERNELS_WASM_BASE64)));
}

/**
 * Instantiates the kernels: a fresh linear memory and segment pool with its own budget. Without
 * `module` it compiles the embedded release (or debug) bytes; on workerd pass the precompiled module.
 *
 * @example
 * const k = await loadKernels({ budgetBytes: 16 << 20 });
 * const b = k.copyIn(bytes, schema);            // validates: throws CorruptBatchError / SchemaMismatchError
 * const hashes = k.hash(schema, b, ['user']);  // Uint32Array, one per row
 * k.free(b);
 */
export async function loadKernels(opts: LoadKernelsOptions = {}): Promise<Kernels> {
  const debug = opts.module === undefined && (opts.debug ?? false);
  const module = opts.module ?? (await kernelModule(debug));
  const instance = await WebAssembly.instantiate(module, {});
  return new Kernels(instance.exports as unknown as KernelExports, opts.budgetBytes ?? DEFAULT_BUDGET_BYTES, debug);
}

/** Encodes a schema descriptor: u32[] = [nFields, typeCode | TYPE_NULLABLE_BIT, ...]. */
export function schemaDescriptor(schema: Schema): Uint32Array {
  const d = new Uint32Array(1 + schema.types.length);
  d[0] = schema.types.length;
  schema.types.forEach((ty, i) => (d[i + 1] = TYPE_CODES[ty.kind] | (ty.isNullable ? TYPE_NULLABLE_BIT : 0)));
  return d;
}

/** Resolves a field by index or name against a schema, or throws JobDefinitionError. */
export function fieldIndex(schema: Schema, field: number | string): number {
  const i = typeof field === 'number' ? field : schema.indexOf(field);
  if (!Number.isInteger(i) || i < 0 || i >= schema.types.length) {
    throw new JobDefinitionError(`unknown field ${JSON.stringify(field)} in schema ${schema}`);
  }
  return i;
}

/** Encodes a key descriptor: u32[] = [nKeys, fieldIndex, flags, ...]. */
export function keyDescriptor(schema: Schema, keys: readonly KeyRef[]): Uint32Array {
  const d = new Uint32Array(1 + 2 * keys.length);
  d[0] = keys.length;
  keys.forEach((k, i) => {
    const spec: KeySpec = typeof k === 'object' ? k : { field: k };
    d[1 + 2 * i] = fieldIndex(schema, spec.field);
    d[2 + 2 * i] = (spec.desc ? KEY_DESC : 0) | (spec.nullsFirst ? KEY_NULLS_FIRST : 0);
  });
  return d;
}

/** Per-call scratch: bump allocation in one reserved segment, overflow into budgeted allocations. */
class Arena {
  private top = 0;
  private readonly temps: number[] = [];
  constructor(
    private readonly mem: ManagedMemory,
    private readonly base: number,
    private readonly size: number,
  ) {}
  take(bytes: number): number {
    const n = (bytes + 7) & ~7;
    if (this.top + n <= this.size) {
      const p = this.base + this.top;
      this.top += n;
      return p;
    }
    const p = this.mem.alloc(n);
    this.temps.push(p);
    return p;
  }
  putU32(values: ArrayLike<number>): number {
    const p = this.take(values.length * 4);
    this.mem.u32.set(values, p >>> 2);
    return p;
  }
  reset(): void {
    this.top = 0;
    for (const p of this.temps.splice(0)) this.mem.free(p);
  }
}

/**
 * Output batches of a resumable kernel: n default buffers carved from one allocation, a buffer of its
 * own for a row larger than an empty default, and the batches flushed so far (copied out).
 */
class Outputs {
  readonly batches: Uint8Array[][];
  private readonly region: number;
  private readonly cur: { ptr: number; cap: number; own: boolean }[];
  private readonly handedOut: boolean[]; // views mode: output i's buffer is out as a view (reset at resume)
  constructor(
    private readonly k: Kernels,
    private readonly n: number,
    private readonly capacity: number,
    private readonly schemaId: number,
    private readonly table: number, // address of n × (ptr, cap), or 0
    private readonly views = false, // hand out views of full buffers instead of copies
  ) {
    this.handedOut = new Array<boolean>(n).fill(false);
    this.batches = Array.from({ length: n }, () => []);
    this.region = k.memory.alloc(n * capacity);
    this.cur = [];
    for (let i = 0; i < n; i++) {
      this.cur.push({ ptr: this.region + i * capacity, cap: capacity, own: false });
      this.reset(i);
    }
  }
  ptr(i: number): number {
    return this.cur[i]!.ptr;
  }
  cap(i: number): number {
    return this.cur[i]!.cap;
  }
  private reset(i: number): void {
    const c = this.cur[i]!;
    this.k.raw.initBatch(c.ptr, this.schemaId);
    if (this.table !== 0) {
      const u32 = this.k.memory.u32;
      u32[(this.table >>> 2) + 2 * i] = c.ptr;
      u32[(this.table >>> 2) + 2 * i + 1] = c.cap;
    }
  }
  private flush(i: number): void {
    const c = this.cur[i]!;
    const u32 = this.k.memory.u32;
    if (u32[(c.ptr >>> 2) + 2]! === 0) return;
    const end = c.ptr + u32[(c.ptr >>> 2) + 1]!;
    if (this.views) {
      this.batches[i]!.push(this.k.memory.u8.subarray(c.ptr, end));
      this.handedOut[i] = true;
    } else {
      this.batches[i]!.push(this.k.memory.u8.slice(c.ptr, end));
    }
  }
  /**
   * Handles STATUS_FULL on output i for a row of `need` bytes. In views mode a full buffer becomes a
   * view, and the buffer is reused only at {@link resume}: the caller hands the view out first.
   */
  full(i: number, need: number): void {
    const c = this.cur[i]!;
    if (this.k.memory.u32[(c.ptr >>> 2) + 2]! > 0) {
      this.flush(i);
      if (this.views) return;
      if (c.own) {
        this.k.memory.free(c.ptr);
        this.cur[i] = { ptr: this.region + i * this.capacity, cap: this.capacity, own: false };
      }
    } else {
      // a single row larger than an empty buffer: give it one of its own, sized for it
      const cap = BATCH_HEADER_BYTES + need;
      this.cur[i] = { ptr: this.k.memory.alloc(cap), cap, own: true };
    }
    this.reset(i);
  }
  /** Views mode: output i's buffer, handed out as a view since the last call, is reused from now on. */
  resume(i: number): void {
    if (!this.handedOut[i]) return;
    this.handedOut[i] = false;
    const c = this.cur[i]!;
    if (c.own) {
      this.k.memory.free(c.ptr);
      this.cur[i] = { ptr: this.region + i * this.capacity, cap: this.capacity, own: false };
    }
    this.reset(i);
  }
  /**
   * Flushes what is left and returns the batches per output; frees every buffer, except in views mode,
   * where the last views stay valid until {@link dispose}.
   */
  finish(): Uint8Array[][] {
    for (let i = 0; i < this.n; i++) this.flush(i);
    if (!this.views) this.dispose();
    return this.batches;
  }
  dispose(): void {
    for (const c of this.cur) if (c.own) this.k.memory.free(c.ptr);
    this.cur.length = 0;
    this.k.memory.free(this.region);
  }
}

function outputCapacity(opts: OutputOptions | undefined): number {
  const cap = Math.floor((opts?.outputBytes ?? SEGMENT_BYTES) / 8) * 8;
  if (!(cap >= BATCH_HEADER_BYTES) || cap > 0x7fff_fff8) throw new RangeError(`outputBytes must be in [16, 2^31), got ${opts?.outputBytes}`);
  return cap;
}

/**
 * Typed, batch-level access to one instance of the WASM kernels and its managed memory. Every method
 * makes one kernel call per batch (plus one per output buffer that fills). Kernel methods trust their
 * input batch: pass bytes from outside through {@link Kernels.copyIn} with a schema (or
 * {@link Kernels.validate}) first. Not re-entrant; one instance per worker.
 *
 * @example
 * const k = await loadKernels();
 * const b = k.copyIn(batchBytes, trades);
 * const parts = k.partition(trades, b, ['key'], { parallelism: 4, maxParallelism: 128 });
 * const top = k.project(trades, b, ['key', 'price']);
 * k.free(b);
 */
export class Kernels {
  /** The module's raw exports (for kernels built on top, e.g. sort). */
  readonly raw: KernelExports;
  /** The instance's budgeted managed memory. */
  readonly memory: ManagedMemory;
  /** Whether this is the debug build. */
  readonly debug: boolean;
  private readonly arena: Arena;

  constructor(raw: KernelExports, budgetBytes: number, debug = false) {
    this.raw = raw;
    this.debug = debug;
    this.memory = new ManagedMemory(raw, budgetBytes);
    this.arena = new Arena(this.memory, this.memory.allocInternal(SEGMENT_BYTES), SEGMENT_BYTES);
  }

  /**
   * Copies batch bytes into managed memory (budgeted). With a schema, validates them and throws
   * CorruptBatchError / SchemaMismatchError (freeing the copy) if they are not a batch of that schema.
   *
   * @example
   * const b = k.copyIn(bytesFromSpillFile, schema);
   */
  copyIn(bytes: Uint8Array, schema?: Schema): ManagedBatch {
    const ptr = this.memory.alloc(bytes.length);
    this.memory.u8.set(bytes, ptr);
    const batch = { ptr, byteLength: bytes.length };
    if (schema !== undefined) {
      try {
        this.validate(schema, batch);
      } catch (e) {
        this.memory.free(ptr);
        throw e;
      }
    }
    return batch;
  }

  /**
   * Whether a batch in managed memory has the header a trusted batch of `schema` must have: the batch
   * magic, byteLength equal to the bytes copied in (`batch.byteLength`), and the schema's id — four
   * words, no rows. Operators taking `trusted` input check this and validate fully when it fails.
   *
   * @example
   * if (!k.headerMatches(b, schema)) k.validate(schema, b); // throws the precise error
   */
  headerMatches(batch: ManagedBatch, schema: Schema): boolean {
    const u32 = this.memory.u32;
    const w = batch.ptr >>> 2;
    return u32[w] === BATCH_MAGIC && u32[w + 1] === batch.byteLength && u32[w + 3] === schema.id;
  }

  /**
   * {@link copyIn} of a batch Sluice made itself: only the header (magic, length, schema id) is
   * checked; a batch whose header does not match gets the full validation, and its error.
   *
   * @example
   * const b = k.copyInTrusted(spilledBatch, schema); // free with k.free(b)
   */
  copyInTrusted(bytes: Uint8Array, schema: Schema): ManagedBatch {
    const b = this.copyIn(bytes);
    if (this.headerMatches(b, schema)) return b;
    try {
      this.validate(schema, b);
    } catch (e) {
      this.free(b);
      throw e;
    }
    return b;
  }

  /**
   * A copy of a (valid) batch's bytes, `byteLength` from its header.
   *
   * @example
   * const bytes = k.copyOut(b); // Uint8Array that outlives `b`
   */
  copyOut(batch: ManagedBatch): Uint8Array {
    const len = this.memory.u32[(batch.ptr >>> 2) + 1]!;
    return this.memory.u8.slice(batch.ptr, batch.ptr + len);
  }

  /** Frees a batch made by {@link copyIn}. @example k.free(b); */
  free(batch: ManagedBatch): void {
    this.memory.free(batch.ptr);
  }

  /** Rows in a (valid) batch. @example k.rowCount(b) */
  rowCount(batch: ManagedBatch): number {
    return this.memory.u32[(batch.ptr >>> 2) + 2]!;
  }

  /**
   * Validation status of `len` bytes at `ptr` against a schema: STATUS_DONE, STATUS_CORRUPT or
   * STATUS_SCHEMA_MISMATCH (no throw). After CORRUPT, `raw.resultRow()` is the offending row
   * (0xFFFFFFFF: the header).
   *
   * @example
   * if (k.validateStatus(schema, b.ptr, b.byteLength) !== STATUS_DONE) sendToSideOutput(b);
   */
  validateStatus(schema: Schema, ptr: number, len: number): number {
    try {
      return this.raw.validateBatch(ptr, len, this.arena.putU32(schemaDescriptor(schema)));
    } finally {
      this.arena.reset();
    }
  }

  /**
   * Checks that a batch in managed memory is a well-formed batch of `schema` (see abi/abi.ts):
   * throws CorruptBatchError (with the row index) or SchemaMismatchError.
   *
   * @example
   * k.validate(schema, b);
   */
  validate(schema: Schema, batch: ManagedBatch): void {
    const st = this.validateStatus(schema, batch.ptr, batch.byteLength);
    if (st === STATUS_DONE) return;
    if (st === STATUS_SCHEMA_MISMATCH) {
      const id = this.memory.u32[(batch.ptr >>> 2) + 3]!;
      throw new SchemaMismatchError(`batch has schema id 0x${hex(id)}, expected 0x${hex(schema.id)} for ${schema}`);
    }
    if (st === STATUS_CORRUPT) {
      const row = this.raw.resultRow() >>> 0;
      if (row === 0xffffffff) {
        const magic = batch.byteLength >= 4 ? this.memory.u32[batch.ptr >>> 2]! : 0;
        throw new CorruptBatchError(
          magic !== BATCH_MAGIC ? `bad magic in ${batch.byteLength} bytes` : `bad batch header (byteLength or alignment) in ${batch.byteLength} bytes`,
        );
      }
      const off = this.raw.resultOffset() >>> 0;
      throw new CorruptBatchError(`malformed row ${row} at byte ${off} of ${batch.byteLength}`, { recordIndex: row });
    }
    throw unexpected('validateBatch', st);
  }

  /**
   * The key hash (abi/abi.ts; identical to src/core/hash.ts) of every row of a batch.
   *
   * @example
   * const h = k.hash(schema, b, ['user', 'day']); // h[i] = hash of row i's (user, day)
   */
  hash(schema: Schema, batch: ManagedBatch, keys: readonly KeyRef[]): Uint32Array {
    const a = this.arena;
    try {
      const n = this.rowCount(batch);
      const sd = a.putU32(schemaDescriptor(schema));
      const kd = a.putU32(keyDescriptor(schema, keys));
      const out = a.take(n * 4);
      const st = this.raw.hashBatch(batch.ptr, sd, kd, out);
      if (st !== STATUS_DONE) throw unexpected('hashBatch', st);
      return this.memory.u32.slice(out >>> 2, (out >>> 2) + n);
    } finally {
      a.reset();
    }
  }

  /**
   * Splits a batch by key into `parallelism` partitions: keyGroup = hash % maxParallelism,
   * partition = floor(keyGroup · parallelism / maxParallelism). Returns, per partition, the output
   * batches (copies; rows keep their input order), each at most `outputBytes` unless one row is larger.
   *
   * @example
   * const parts = k.partition(schema, b, ['user'], { parallelism: 4, maxParallelism: 128 });
   * parts[2]; // Uint8Array[] of batches for subtask 2
   */
  partition(
    schema: Schema,
    batch: ManagedBatch,
    keys: readonly KeyRef[],
    opts: OutputOptions & { parallelism: number; maxParallelism?: number },
  ): Uint8Array[][] {
    const n = opts.parallelism;
    const maxPar = opts.maxParallelism ?? 128;
    if (!Number.isInteger(maxPar) || maxPar < 1 || maxPar > 0x7fffffff) throw new JobDefinitionError(`maxParallelism must be an integer in [1, 2^31), got ${maxPar}`);
    if (!Number.isInteger(n) || n < 1 || n > maxPar) throw new JobDefinitionError(`parallelism must be an integer in [1, maxParallelism=${maxPar}], got ${n}`);
    const cap = outputCapacity(opts);
    const a = this.arena;
    let outs: Outputs | undefined;
    try {
      const sd = a.putU32(schemaDescriptor(schema));
      const kd = a.putU32(keyDescriptor(schema, keys));
      const table = a.take(8 * n);
      outs = new Outputs(this, n, cap, schema.id, table);
      let row = 0;
      let off = BATCH_HEADER_BYTES;
      for (;;) {
        const st = this.raw.partitionBatch(batch.ptr, sd, kd, maxPar, n, table, row, off);
        if (st === STATUS_DONE) break;
        if (st !== STATUS_FULL) throw unexpected('partitionBatch', st);
        row = this.raw.resultRow() >>> 0;
        off = this.raw.resultOffset() >>> 0;
        outs.full(this.raw.resultIndex() >>> 0, this.raw.resultBytes() >>> 0);
      }
      const res = outs.finish();
      outs = undefined;
      return res;
    } finally {
      outs?.dispose();
      a.reset();
    }
  }

  /**
   * The schema of a projection onto `fields` (names and types of those fields, in that order).
   *
   * @example
   * k.projectedSchema(trades, ['key', 'price']).toString() // "{ key: string, price: f64 }"
   */
  projectedSchema(schema: Schema, fields: readonly (number | string)[]): Schema {
    const idx = fields.map((f) => fieldIndex(schema, f));
    const entries: [string, (typeof schema.types)[number]][] = idx.map((i) => [schema.names[i]!, schema.types[i]!]);
    const out = new Schema(Object.fromEntries(entries) as Fields);
    if (out.names.length !== idx.length || out.names.some((nm, j) => nm !== entries[j]![0])) {
      throw new JobDefinitionError(`cannot project ${schema} onto ${JSON.stringify(fields)}: repeated fields or names that do not keep their order`);
    }
    return out;
  }

  /**
   * Copies every row keeping only `fields` (in that order), as batches of the projected schema.
   *
   * @example
   * const { schema: s2, batches } = k.project(trades, b, ['key', 'price']);
   */
  project(schema: Schema, batch: ManagedBatch, fields: readonly (number | string)[], opts?: OutputOptions): { schema: Schema; batches: Uint8Array[] } {
    const out = this.projectedSchema(schema, fields);
    const idx = fields.map((f) => fieldIndex(schema, f));
    const cap = outputCapacity(opts);
    const a = this.arena;
    let outs: Outputs | undefined;
    try {
      const sd = a.putU32(schemaDescriptor(schema));
      const fd = a.putU32([idx.length, ...idx]);
      outs = new Outputs(this, 1, cap, out.id, 0);
      let row = 0;
      let off = BATCH_HEADER_BYTES;
      for (;;) {
        const st = this.raw.projectBatch(batch.ptr, sd, fd, outs.ptr(0), outs.cap(0), row, off);
        if (st === STATUS_DONE) break;
        if (st !== STATUS_FULL) throw unexpected('projectBatch', st);
        row = this.raw.resultRow() >>> 0;
        off = this.raw.resultOffset() >>> 0;
        outs.full(0, this.raw.resultBytes() >>> 0);
      }
      const res = outs.finish();
      outs = undefined;
      return { schema: out, batches: res[0]! };
    } finally {
      outs?.dispose();
      a.reset();
    }
  }

  /**
   * Copies the rows at the indices of `selection` (in that order; repeats allowed) into batches of
   * the same schema. An index ≥ the row count is a RangeError.
   *
   * @example
   * const kept = k.gather(schema, b, Uint32Array.of(0, 5, 7));
   */
  gather(schema: Schema, batch: ManagedBatch, selection: ArrayLike<number>, opts?: OutputOptions): Uint8Array[] {
    const rows = this.rowCount(batch);
    // a tight loop over the selection (not per-record work in WASM): out-of-range is the caller's bug
    for (let i = 0; i < selection.length; i++) {
      const v = selection[i]!;
      if (!(v >= 0 && v < rows && Number.isInteger(v))) throw new RangeError(`selection[${i}] = ${v} is not a row index of a batch of ${rows} rows`);
    }
    const cap = outputCapacity(opts);
    const a = this.arena;
    let outs: Outputs | undefined;
    try {
      const ptrs = a.take(rows * 4);
      this.raw.rowPointers(batch.ptr, ptrs);
      const sel = a.putU32(selection);
      outs = new Outputs(this, 1, cap, schema.id, 0);
      let i = 0;
      for (;;) {
        const st = this.raw.gatherBatch(batch.ptr, ptrs, sel, selection.length, i, outs.ptr(0), outs.cap(0));
        if (st === STATUS_DONE) break;
        if (st !== STATUS_FULL) throw unexpected('gatherBatch', st);
        i = this.raw.resultRow() >>> 0;
        outs.full(0, this.raw.resultBytes() >>> 0);
      }
      const res = outs.finish();
      outs = undefined;
      return res[0]!;
    } finally {
      outs?.dispose();
      a.reset();
    }
  }

  /**
   * The address of every row of a batch in managed memory (valid while the batch is).
   *
   * @example
   * const rows = k.rowPointers(b); // rows[i] = address of row i
   */
  rowPointers(batch: ManagedBatch): Uint32Array {
    const a = this.arena;
    try {
      const n = this.rowCount(batch);
      const out = a.take(n * 4);
      this.raw.rowPointers(batch.ptr, out);
      return this.memory.u32.slice(out >>> 2, (out >>> 2) + n);
    } finally {
      a.reset();
    }
  }

  /**
   * Compares rows pairwise by key: `pairs` holds row addresses (rowA0, rowB0, rowA1, rowB1, …) of
   * rows of `schema` in managed memory; returns -1 / 0 / 1 per pair (abi/abi.ts key order).
   *
   * @example
   * const p = k.rowPointers(b);
   * k.compareRowPairs(schema, Uint32Array.of(p[0], p[1]), [{ field: 'price', desc: true }]); // Int32Array [c]
   */
  compareRowPairs(schema: Schema, pairs: Uint32Array, keys: readonly KeyRef[]): Int32Array {
    if (pairs.length % 2 !== 0) throw new RangeError(`pairs must hold an even number of row addresses, got ${pairs.length}`);
    const n = pairs.length / 2;
    const a = this.arena;
    try {
      const sd = a.putU32(schemaDescriptor(schema));
      const kd = a.putU32(keyDescriptor(schema, keys));
      const pp = a.putU32(pairs);
      const out = a.take(n * 4);
      const st = this.raw.compareRowPairs(pp, n, sd, kd, out);
      if (st !== STATUS_DONE) throw unexpected('compareRowPairs', st);
      return this.memory.i32.slice(out >>> 2, (out >>> 2) + n);
    } finally {
      a.reset();
    }
  }

  /**
   * Sorts the rows of `batches` (all of `schema`, in managed memory) by `keys` into new batches,
   * without moving a row more than once: an index of (normalized-key prefix, row address) entries is
   * sorted (assembly/sort.ts), then rows are copied out in its order. Stable: rows with equal keys
   * keep their input order (batch by batch, row by row). Needs 32 bytes of budget per row for the
   * index while it runs.
   *
   * @example
   * const sorted = k.sort(trades, [b1, b2], [{ field: 'day', desc: true }, 'user']);
   */
  sort(schema: Schema, batches: readonly ManagedBatch[], keys: readonly KeyRef[], opts?: OutputOptions): Uint8Array[] {
    const cap = outputCapacity(opts);
    const kdesc = keyDescriptor(schema, keys);
    const a = this.arena;
    let index = 0;
    let outs: Outputs | undefined;
    try {
      const count = this.sortToIndex(schema, batches, kdesc, (index = this.allocIndex(batches)));
      outs = new Outputs(this, 1, cap, schema.id, 0);
      let i = 0;
      for (;;) {
        const st = this.raw.gatherSorted(index, count, i, outs.ptr(0), outs.cap(0));
        if (st === STATUS_DONE) break;
        if (st !== STATUS_FULL) throw unexpected('gatherSorted', st);
        i = this.raw.resultRow() >>> 0;
        outs.full(0, this.raw.resultBytes() >>> 0);
      }
      const res = outs.finish();
      outs = undefined;
      return res[0]!;
    } finally {
      outs?.dispose();
      if (index !== 0) this.memory.free(index);
      a.reset();
    }
  }

  /**
   * {@link sort} without the copies: the sorted rows are gathered into one output buffer a batch at a
   * time, and each batch is yielded as a view into it — valid until the next one is asked for, and only
   * while nothing allocates in this instance (copy it with `slice()` to keep it). The batches must stay
   * in place until the generator ends (or is closed); its index and buffer are freed then.
   *
   * @example
   * for (const view of k.sortedViews(trades, [b1, b2], ['day'])) sink(view); // sink reads, keeps nothing
   */
  *sortedViews(schema: Schema, batches: readonly ManagedBatch[], keys: readonly KeyRef[], opts?: OutputOptions): Generator<Uint8Array, void, undefined> {
    const cap = outputCapacity(opts);
    const kdesc = keyDescriptor(schema, keys);
    let index = 0;
    let out = 0;
    let own = 0;
    try {
      let count: number;
      try {
        count = this.sortToIndex(schema, batches, kdesc, (index = this.allocIndex(batches)));
      } finally {
        this.arena.reset(); // the gather needs only the index: the scratch is free for other calls
      }
      out = this.memory.alloc(cap);
      let buf = out;
      let bufCap = cap;
      let i = 0;
      for (;;) {
        this.raw.initBatch(buf, schema.id);
        const st = this.raw.gatherSorted(index, count, i, buf, bufCap);
        if (st !== STATUS_DONE && st !== STATUS_FULL) throw unexpected('gatherSorted', st);
        const u32 = this.memory.u32;
        if (u32[(buf >>> 2) + 2]! > 0) yield this.memory.u8.subarray(buf, buf + u32[(buf >>> 2) + 1]!);
        if (own !== 0) {
          this.memory.free(own);
          own = 0;
          buf = out;
          bufCap = cap;
        }
        if (st === STATUS_DONE) return;
        const next = this.raw.resultRow() >>> 0;
        if (next === i && this.memory.u32[(buf >>> 2) + 2]! === 0) {
          // one row larger than the buffer: a buffer of its own for it
          bufCap = BATCH_HEADER_BYTES + (this.raw.resultBytes() >>> 0);
          buf = own = this.memory.alloc(bufCap);
        }
        i = next;
      }
    } finally {
      if (own !== 0) this.memory.free(own);
      if (out !== 0) this.memory.free(out);
      if (index !== 0) this.memory.free(index);
    }
  }

  /**
   * The addresses of the rows of `batches` in sorted order (as {@link sort}, but nothing is copied;
   * valid while the batches are).
   *
   * @example
   * const order = k.sortedRowPointers(schema, [b], ['ts']); // order[0] = address of the first row
   */
  sortedRowPointers(schema: Schema, batches: readonly ManagedBatch[], keys: readonly KeyRef[]): Uint32Array {
    const kdesc = keyDescriptor(schema, keys);
    let index = 0;
    try {
      const count = this.sortToIndex(schema, batches, kdesc, (index = this.allocIndex(batches)));
      // the index region (32 bytes per row) is at least 4 bytes per row: write the pointers over it
      this.raw.sortedRowPointers(index, count, index);
      return this.memory.u32.slice(index >>> 2, (index >>> 2) + count);
    } finally {
      if (index !== 0) this.memory.free(index);
      this.arena.reset();
    }
  }

  /**
   * A k-way merge of `runs` sorted runs by `keys` (a loser tree in assembly/merge.ts): push each
   * run's batches in order and end it, pull merged output batches. See {@link Merger}.
   *
   * @example
   * const m = k.merger(schema, ['ts'], 2);
   * m.push(0, run0[0]); m.push(1, run1[0]); m.end(0); m.end(1);
   * const merged = m.pull(); // m.done === true
   */
  merger(schema: Schema, keys: readonly KeyRef[], runs: number, opts?: MergerOptions): Merger {
    return new Merger(this, schema, keys, runs, opts);
  }

  /** One budgeted allocation for the sort index and its scratch: 2 × 16 bytes per row. */
  private allocIndex(batches: readonly ManagedBatch[]): number {
    let n = 0;
    for (const b of batches) n += this.rowCount(b);
    return this.memory.alloc(32 * n);
  }

  /** Runs sortIndex over the batches into `index` (scratch right after it); returns the row count. */
  private sortToIndex(schema: Schema, batches: readonly ManagedBatch[], kdesc: Uint32Array, index: number): number {
    const u32 = this.memory.u32;
    let n = 0;
    for (const b of batches) {
      const id = u32[(b.ptr >>> 2) + 3]!;
      if (id !== schema.id) throw new SchemaMismatchError(`batch has schema id 0x${hex(id)}, expected 0x${hex(schema.id)} for ${schema}`);
      n += u32[(b.ptr >>> 2) + 2]!;
    }
    const a = this.arena;
    const sd = a.putU32(schemaDescriptor(schema));
    const kd = a.putU32(kdesc);
    const table = a.putU32(batches.map((b) => b.ptr));
    return this.raw.sortIndex(table, batches.length, sd, kd, index, index + 16 * n) >>> 0;
  }
}

/**
 * A resumable k-way merge of sorted runs in one kernel instance. Each run is a sequence of batches
 * (bytes of `schema`, each sorted by the keys, and sorted across the run's batches); only the batch a
 * run is currently reading is in managed memory (validated on the way in). Output rows are in key
 * order; equal keys come from the lower run first, in run order (so merging consecutive pieces of an
 * input is stable). Holds budget until {@link close} (or the end of the merge): the state, one
 * output buffer and one batch per run.
 *
 * @example
 * const m = k.merger(schema, [{ field: 'price', desc: true }], 3);
 * for (const [r, run] of runs.entries()) { for (const b of run) m.push(r, b); m.end(r); }
 * const out = m.pull();
 * // or incrementally: while (!m.done) { sink(m.pull()); if (m.needs !== undefined) feed(m.needs); }
 */
export class Merger {
  private readonly k: Kernels;
  private readonly schema: Schema;
  private readonly cap: number;
  private readonly queues: (Uint8Array | ManagedBatch)[][]; // pushed batches: JS bytes, or copied in already
  private readonly ended: boolean[];
  private readonly live: number[]; // managed copy of the batch each run reads (0: none)
  private readonly trusted: boolean;
  private readonly views: boolean;
  private region = 0; // state + descriptors
  private outs: Outputs | undefined;
  private blockedOn: number | undefined;
  private finished = false;

  constructor(k: Kernels, schema: Schema, keys: readonly KeyRef[], runs: number, opts?: MergerOptions) {
    if (!Number.isInteger(runs) || runs < 1 || runs > 0xffff) throw new RangeError(`runs must be an integer in [1, 65535], got ${runs}`);
    this.k = k;
    this.schema = schema;
    this.trusted = opts?.trusted === true;
    this.views = opts?.reuseOutput === true;
    this.cap = outputCapacity(opts);
    const sd = schemaDescriptor(schema);
    const kd = keyDescriptor(schema, keys);
    this.queues = Array.from({ length: runs }, () => []);
    this.ended = new Array<boolean>(runs).fill(false);
    this.live = new Array<number>(runs).fill(0);
    const stateBytes = (k.raw.mergeStateBytes(runs) + 7) & ~7;
    this.region = k.memory.alloc(stateBytes + 4 * (sd.length + kd.length));
    try {
      const u32 = k.memory.u32;
      const sdp = this.region + stateBytes;
      const kdp = sdp + 4 * sd.length;
      u32.set(sd, sdp >>> 2);
      u32.set(kd, kdp >>> 2);
      k.raw.mergeInit(this.region, runs, sdp, kdp);
      this.outs = new Outputs(k, 1, this.cap, schema.id, 0, this.views);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Number of runs. */
  get runs(): number {
    return this.queues.length;
  }

  /** Whether every run has ended and every row has been pulled. */
  get done(): boolean {
    return this.finished;
  }

  /**
   * The run whose next batch (or end) the merge waits for after a {@link pull} that stopped early;
   * undefined before the first pull, once done, after that run was pushed to or ended, or (with
   * `reuseOutput`) when the pull stopped to hand out a view: then pull again.
   */
  get needs(): number | undefined {
    return this.blockedOn;
  }

  /** Queues a batch at the end of run `run` (kept by reference until the merge reaches it). */
  push(run: number, batch: Uint8Array): void {
    this.checkRun(run);
    this.queues[run]!.push(batch);
    if (this.blockedOn === run) this.blockedOn = undefined;
  }

  /**
   * {@link push}, copying the batch into managed memory now, so `batch` may be reused (a view of a
   * reader's buffer, say) as soon as this returns. Its memory is taken now rather than when the merge
   * reaches it: push this way only what the merge needs next (the run {@link needs} names, or one
   * batch per run before the first pull), or one batch more per run is held.
   */
  pushCopy(run: number, batch: Uint8Array): void {
    this.checkRun(run);
    this.queues[run]!.push(this.copyIn(batch));
    if (this.blockedOn === run) this.blockedOn = undefined;
  }

  /** Marks run `run` complete: no batch will follow. */
  end(run: number): void {
    this.checkRun(run);
    this.ended[run] = true;
    if (this.blockedOn === run) this.blockedOn = undefined;
  }

  /**
   * Merges as far as the queued input allows and returns the output batches completed (each at most
   * `outputBytes` unless one row is larger). After the last row, the final partial batch comes too,
   * everything is freed and {@link done} is true; otherwise {@link needs} names the run to feed.
   */
  pull(): Uint8Array[] {
    if (this.finished) return [];
    const outs = this.outs;
    if (outs === undefined) throw new SluiceError('merger is closed', { domain: 'internal' });
    const k = this.k;
    this.blockedOn = undefined;
    if (this.views) outs.resume(0); // the view handed out last is done with
    for (;;) {
      const st = k.raw.mergeStep(this.region, outs.ptr(0), outs.cap(0));
      if (st === STATUS_FULL) {
        outs.full(0, k.raw.resultBytes() >>> 0);
        if (this.views && outs.batches[0]!.length > 0) return outs.batches[0]!.splice(0);
      } else if (st === STATUS_NEED_INPUT) {
        const r = k.raw.resultIndex() >>> 0;
        if (this.live[r] !== 0) {
          k.memory.free(this.live[r]!);
          this.live[r] = 0;
        }
        const next = this.queues[r]!.shift();
        if (next !== undefined) {
          const b = next instanceof Uint8Array ? this.copyIn(next) : next;
          this.live[r] = b.ptr;
          k.raw.mergeFeed(this.region, r, b.ptr);
        } else if (this.ended[r]) {
          k.raw.mergeFeed(this.region, r, 0);
        } else {
          this.blockedOn = r;
          return outs.batches[0]!.splice(0);
        }
      } else if (st === STATUS_DONE) {
        const res = outs.finish()[0]!;
        this.finished = true;
        if (!this.views) {
          this.outs = undefined;
          this.close();
        } // views: the last one stays valid until close()
        return res.splice(0);
      } else {
        throw unexpected('mergeStep', st);
      }
    }
  }

  /** Frees the merge's managed memory (idempotent); pending input is dropped. */
  close(): void {
    this.outs?.dispose();
    this.outs = undefined;
    for (let r = 0; r < this.live.length; r++) {
      if (this.live[r] !== 0) this.k.memory.free(this.live[r]!);
      this.live[r] = 0;
    }
    if (this.region !== 0) this.k.memory.free(this.region);
    this.region = 0;
    for (const q of this.queues) {
      for (const b of q) if (!(b instanceof Uint8Array)) this.k.memory.free(b.ptr);
      q.length = 0;
    }
  }

  /** A pushed batch into managed memory: its header checked when trusted, else validated. */
  private copyIn(batch: Uint8Array): ManagedBatch {
    return this.trusted ? this.k.copyInTrusted(batch, this.schema) : this.k.copyIn(batch, this.schema);
  }

  private checkRun(run: number): void {
    if (!Number.isInteger(run) || run < 0 || run >= this.queues.length) throw new RangeError(`run must be an integer in [0, ${this.queues.length}), got ${run}`);
    if (this.ended[run]) throw new JobDefinitionError(`run ${run} has already ended`);
  }
}

function hex(v: number): string {
  return (v >>> 0).toString(16).padStart(8, '0');
}

function unexpected(kernel: string, status: number): SluiceError {
  return new SluiceError(`kernel ${kernel} returned unexpected status ${status}`, { domain: 'internal' });
}
