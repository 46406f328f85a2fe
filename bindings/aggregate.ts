// Owns the host side of the hash aggregation kernels (assembly/agg.ts): aggregate specs resolved into
// descriptors and the partial / final schemas, and `AggTable`, one hash table in managed memory that
// grows chunk by chunk (and doubles its directory) while its owner allows, and otherwise answers
// "full" with the resume position so the owner can spill (src/operators/batch/hash-aggregate.ts).
//
// Result types (DuckDB returns HUGEINT for integer sums and DOUBLE for averages; we stay in 64 bits):
//   count(*), count(f)   i64, never null (0 for a group without non-null f)
//   sum(f)               i32/i64 input → i64, exact; leaving the i64 range is an AggregateOverflowError
//                        (never a wrap); f64 → f64 (IEEE addition in input order). Null iff no non-null f.
//   min(f), max(f)       the input's type (i32, i64, timestamp, f64; f64 order: NaN greatest, -0 = +0).
//   (with no group fields, sum/min/max/avg are nullable: an empty input gives one row of NULLs.)
//   avg(f)               f64 = sum / count, the sum kept as sum(f) keeps it (so an i64 avg can overflow too).
// A user reduce function over JS objects is not a kernel: it belongs to the keyed/reduce operators.

import { JobDefinitionError, MemoryBudgetError, SluiceError } from '../src/core/errors.ts';
import { FieldType, Schema, type Fields } from '../src/core/schema.ts';
import {
  AGG_AVG,
  AGG_COUNT,
  AGG_COUNT_STAR,
  AGG_FULL_DIRECTORY,
  AGG_MAX,
  AGG_MERGE_AVG,
  AGG_MERGE_COUNT,
  AGG_MIN,
  AGG_STATE_BYTES,
  AGG_SUM,
  BATCH_HEADER_BYTES,
  SEGMENT_BYTES,
  STATUS_DONE,
  STATUS_FULL,
  STATUS_OVERFLOW,
} from './abi.generated.ts';
import { fieldIndex, schemaDescriptor, type KernelExports, type Kernels, type ManagedBatch } from './kernels.ts';

/** The aggregation kernels' raw exports (assembly/agg.ts). */
export interface AggExports {
  aggInit(state: number, dir: number, dirCap: number): void;
  aggAddChunk(state: number, chunk: number, bytes: number): void;
  aggRehash(state: number, dir: number, newCap: number): void;
  aggClear(state: number): void;
  aggGroups(state: number): number;
  aggFeed(state: number, batch: number, schemaDesc: number, keyDesc: number, aggDesc: number, startRow: number, startOffset: number): number;
  aggEmit(chunk: number, startOffset: number, pschemaDesc: number, nKeys: number, aggDesc: number, final: number, out: number, cap: number): number;
}

/** An aggregate: `count` without a field is count(*). `as` names the output field. */
export interface AggSpec {
  op: 'count' | 'sum' | 'min' | 'max' | 'avg';
  field?: number | string;
  as?: string;
}

/** An integer sum (or the sum inside an average) left the i64 range. */
export class AggregateOverflowError extends SluiceError {
  constructor(detail: string) {
    super(`integer overflow in aggregation: ${detail} (sums are exact i64; cast the field to f64 to sum beyond ±2^63)`, { domain: 'user' });
  }
}

const OPS = { count: AGG_COUNT, sum: AGG_SUM, min: AGG_MIN, max: AGG_MAX, avg: AGG_AVG } as const;
const I64 = new FieldType('i64', false, false);

/**
 * An aggregation resolved against an input schema: the output (final) schema = group fields ++ one
 * field per aggregate; the partial schema = group fields ++ accumulator slots (what spills); and the
 * descriptors for raw input and for merging partial rows.
 *
 * @example
 * const plan = aggregatePlan(trades, ['sym'], [{ op: 'count' }, { op: 'sum', field: 'qty' }]);
 * plan.finalSchema.toString(); // "{ sym: string, count: i64, sum_qty: i64 }"
 */
export interface AggregatePlan {
  readonly input: Schema;
  readonly keys: readonly number[];
  readonly aggs: readonly { op: number; field: number; name: string }[];
  readonly partialSchema: Schema;
  readonly finalSchema: Schema;
  /** key descriptor over the input: [nk, field, 0, ...] */
  readonly rawKeyDesc: Uint32Array;
  /** agg descriptor over the input */
  readonly rawAggDesc: Uint32Array;
  /** key descriptor over the partial schema (its first nk fields) */
  readonly mergeKeyDesc: Uint32Array;
  /** agg descriptor over partial rows (MERGE ops) */
  readonly mergeAggDesc: Uint32Array;
}

/**
 * Resolves `keys` and `aggs` against `input`. Throws JobDefinitionError for an unknown field, an
 * aggregate on a type it does not support, or clashing output names.
 *
 * @example
 * const distinct = aggregatePlan(s, s.names, []); // DISTINCT = group by every field, no aggregates
 */
export function aggregatePlan(input: Schema, keys: readonly (number | string)[], aggs: readonly AggSpec[]): AggregatePlan {
  const keyIdx = keys.map((f) => fieldIndex(input, f));
  const finalFields: [string, FieldType][] = keyIdx.map((i) => [input.names[i]!, input.types[i]!]);
  const partialFields: [string, FieldType][] = [...finalFields];
  const resolved: { op: number; field: number; name: string }[] = [];
  const raw: number[] = [aggs.length];
  const merge: number[] = [aggs.length];
  let slot = keyIdx.length;
  for (const a of aggs) {
    const op = OPS[a.op];
    if (op === undefined) throw new JobDefinitionError(`unknown aggregate ${JSON.stringify(a.op)} (count, sum, min, max, avg)`);
    if (a.field === undefined) {
      if (a.op !== 'count') throw new JobDefinitionError(`${a.op} needs a field`);
      const name = a.as ?? 'count';
      resolved.push({ op: AGG_COUNT_STAR, field: 0, name });
      raw.push(AGG_COUNT_STAR, 0);
      merge.push(AGG_MERGE_COUNT, slot++);
      finalFields.push([name, I64]);
      partialFields.push([name, I64]);
      continue;
    }
    const f = fieldIndex(input, a.field);
    const ty = input.types[f]!;
    const name = a.as ?? `${a.op}_${input.names[f]}`;
    resolved.push({ op, field: f, name });
    raw.push(op, f);
    if (op === AGG_COUNT) {
      merge.push(AGG_MERGE_COUNT, slot++);
      finalFields.push([name, I64]);
      partialFields.push([name, I64]);
      continue;
    }
    const numeric = ty.kind === 'i32' || ty.kind === 'i64' || ty.kind === 'f64';
    if (!(numeric || ((op === AGG_MIN || op === AGG_MAX) && ty.kind === 'timestamp'))) {
      throw new JobDefinitionError(`${a.op}(${input.names[f]}): unsupported field type ${ty} (sum/avg: i32, i64, f64; min/max also timestamp)`);
    }
    // with no group fields an empty input still has its one (SQL) row, where these are NULL
    const nullable = ty.isNullable || keyIdx.length === 0;
    const sumType = ty.kind === 'f64' ? new FieldType('f64', false, false) : new FieldType('i64', false, ty.kind === 'i64' && ty.bigint);
    if (op === AGG_AVG) {
      merge.push(AGG_MERGE_AVG, slot);
      slot += 2;
      finalFields.push([name, new FieldType('f64', nullable, false)]);
      partialFields.push([`${name}$sum`, sumType], [`${name}$count`, I64]);
    } else {
      merge.push(op, slot++);
      const out = new FieldType(op === AGG_SUM ? sumType.kind : ty.kind, nullable, op === AGG_SUM ? sumType.bigint : ty.bigint);
      finalFields.push([name, out]);
      partialFields.push([name, out]);
    }
  }
  const mk = new Uint32Array(1 + 2 * keyIdx.length);
  mk[0] = keyIdx.length;
  keyIdx.forEach((_, i) => (mk[1 + 2 * i] = i));
  const rk = new Uint32Array(1 + 2 * keyIdx.length);
  rk[0] = keyIdx.length;
  keyIdx.forEach((f, i) => (rk[1 + 2 * i] = f));
  return {
    input,
    keys: keyIdx,
    aggs: resolved,
    partialSchema: schemaOf(partialFields),
    finalSchema: schemaOf(finalFields),
    rawKeyDesc: rk,
    rawAggDesc: Uint32Array.from(raw),
    mergeKeyDesc: mk,
    mergeAggDesc: Uint32Array.from(merge),
  };
}

function schemaOf(fields: [string, FieldType][]): Schema {
  const obj: Fields = {};
  for (const [n, ty] of fields) {
    if (Object.hasOwn(obj, n)) throw new JobDefinitionError(`aggregation output has two fields named ${JSON.stringify(n)}; name aggregates with \`as\``);
    obj[n] = ty;
  }
  return new Schema(obj);
}

/** Options of {@link AggTable}. */
export interface AggTableOptions {
  /** Bytes per entry chunk (default SEGMENT_BYTES; an entry larger than that gets a chunk of its own). */
  chunkBytes?: number;
  /** Initial directory slots (a power of two, default 1024; the table holds half as many groups before it doubles). */
  dirSlots?: number;
  /** Output batch capacity of {@link AggTable.emit} (default SEGMENT_BYTES). */
  outputBytes?: number;
  /**
   * Asked before the table takes `bytes` more managed memory; `false` makes {@link AggTable.feed}
   * stop with the resume position (the cue to spill). A refused allocation (MemoryBudgetError) means
   * the same. Default: always allowed.
   */
  canGrow?: (bytes: number) => boolean;
}

/** Where {@link AggTable.feed} stopped because the table could not grow. */
export interface FeedPosition {
  row: number;
  offset: number;
}

/**
 * One hash-aggregation table in managed memory (assembly/agg.ts). `mode` 'raw' folds input rows of
 * `plan.input`; 'merge' folds partial rows of `plan.partialSchema` (spilled partials, or partials of
 * other tables). Holds its memory until {@link close}: state + descriptors (1 segment), directory
 * (8 bytes per slot, ≥ 2 slots per group), entry chunks (each group's partial row), one output buffer.
 *
 * @example
 * const plan = aggregatePlan(s, ['k'], [{ op: 'sum', field: 'v' }]);
 * const t = new AggTable(k, plan, 'raw');
 * const b = k.copyIn(batchBytes, s);
 * t.feed(b);            // undefined: all rows folded in
 * k.free(b);
 * const out = t.collect(true); // final batches, groups in first-seen order
 * t.close();
 */
export class AggTable {
  readonly plan: AggregatePlan;
  readonly mode: 'raw' | 'merge';
  private readonly k: Kernels;
  private readonly x: AggExports & KernelExports;
  private readonly chunkBytes: number;
  private readonly initialSlots: number;
  private readonly outputBytes: number;
  private readonly canGrow: (bytes: number) => boolean;
  private region = 0; // state, then descriptors
  private regionBytes = 0;
  private sd = 0;
  private kd = 0;
  private ad = 0;
  private psd = 0;
  private dir = 0;
  private dirCap = 0;
  private chunks: number[] = [];
  private chunkSizes: number[] = [];
  private out = 0;
  private _bytes = 0;

  constructor(k: Kernels, plan: AggregatePlan, mode: 'raw' | 'merge', opts: AggTableOptions = {}) {
    this.k = k;
    this.x = k.raw as unknown as AggExports & KernelExports;
    this.plan = plan;
    this.mode = mode;
    this.chunkBytes = Math.max(64, Math.floor((opts.chunkBytes ?? SEGMENT_BYTES) / 8) * 8);
    const slots = opts.dirSlots ?? 1024;
    if (!(slots >= 2) || (slots & (slots - 1)) !== 0) throw new RangeError(`dirSlots must be a power of two ≥ 2, got ${slots}`);
    this.initialSlots = slots;
    this.outputBytes = Math.max(BATCH_HEADER_BYTES, Math.floor((opts.outputBytes ?? SEGMENT_BYTES) / 8) * 8);
    this.canGrow = opts.canGrow ?? (() => true);
    try {
      const sd = schemaDescriptor(mode === 'raw' ? plan.input : plan.partialSchema);
      const kd = mode === 'raw' ? plan.rawKeyDesc : plan.mergeKeyDesc;
      const ad = mode === 'raw' ? plan.rawAggDesc : plan.mergeAggDesc;
      const psd = schemaDescriptor(plan.partialSchema);
      const need = AGG_STATE_BYTES + 4 * (sd.length + kd.length + ad.length + psd.length);
      this.region = this.alloc(need);
      this.regionBytes = need;
      const u32 = k.memory.u32;
      this.sd = this.region + AGG_STATE_BYTES;
      this.kd = this.sd + 4 * sd.length;
      this.ad = this.kd + 4 * kd.length;
      this.psd = this.ad + 4 * ad.length;
      u32.set(sd, this.sd >>> 2);
      u32.set(kd, this.kd >>> 2);
      u32.set(ad, this.ad >>> 2);
      u32.set(psd, this.psd >>> 2);
      this.dir = this.alloc(slots * 8);
      this.dirCap = slots;
      this.x.aggInit(this.region, this.dir, slots);
      this.out = this.alloc(this.outputBytes);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Groups in the table. */
  get groups(): number {
    return this.region === 0 ? 0 : this.x.aggGroups(this.region) >>> 0;
  }

  /** Managed-memory bytes the table holds (whole segments). */
  get bytes(): number {
    return this._bytes;
  }

  private alloc(bytes: number): number {
    const p = this.k.memory.alloc(bytes);
    this._bytes += segBytes(bytes);
    return p;
  }

  private free(p: number, bytes: number): void {
    this.k.memory.free(p);
    this._bytes -= segBytes(bytes);
  }

  /** Allocates if the owner allows and the budget has room; 0 otherwise. */
  private tryAlloc(bytes: number): number {
    if (!this.canGrow(segBytes(bytes))) return 0;
    try {
      return this.alloc(bytes);
    } catch (e) {
      if (e instanceof MemoryBudgetError) return 0;
      throw e;
    }
  }

  /**
   * Folds the rows of `batch` (of `plan.input` in raw mode, `plan.partialSchema` in merge mode; in
   * managed memory, validated) from `from` on. Returns undefined when every row is in, or the
   * position of the first row not yet folded in when the table needs memory its owner refused:
   * spill (emit partials, {@link clear}) and call again with that position.
   * Throws AggregateOverflowError when an integer sum leaves the i64 range.
   */
  feed(batch: ManagedBatch, from?: FeedPosition): FeedPosition | undefined {
    let row = from?.row ?? 0;
    let off = from?.offset ?? BATCH_HEADER_BYTES;
    const x = this.x;
    for (;;) {
      const st = x.aggFeed(this.region, batch.ptr, this.sd, this.kd, this.ad, row, off);
      if (st === STATUS_DONE) return undefined;
      row = x.resultRow() >>> 0;
      off = x.resultOffset() >>> 0;
      if (st === STATUS_OVERFLOW) throw new AggregateOverflowError(`a sum left the i64 range at row ${row} of a batch`);
      if (st !== STATUS_FULL) throw new SluiceError(`kernel aggFeed returned unexpected status ${st}`, { domain: 'internal' });
      if ((x.resultIndex() >>> 0) === AGG_FULL_DIRECTORY) {
        const cap = this.dirCap * 2;
        const dir = this.tryAlloc(cap * 8);
        if (dir === 0) return { row, offset: off };
        x.aggRehash(this.region, dir, cap);
        this.free(this.dir, this.dirCap * 8);
        this.dir = dir;
        this.dirCap = cap;
      } else {
        const need = (x.resultBytes() >>> 0) + 8;
        const size = Math.max(this.chunkBytes, (need + 7) & ~7);
        const chunk = this.tryAlloc(size);
        if (chunk === 0) return { row, offset: off };
        x.aggAddChunk(this.region, chunk, size);
        this.chunks.push(chunk);
        this.chunkSizes.push(size);
      }
    }
  }

  /**
   * Writes every group, in first-seen order, as batches of the final schema (`final`) or of the
   * partial schema, handing each output batch (in managed memory, valid only during the call) to
   * `sink`. The table is unchanged.
   */
  emit(final: boolean, sink: (batch: ManagedBatch, schema: Schema) => void): void {
    const x = this.x;
    const schema = final ? this.plan.finalSchema : this.plan.partialSchema;
    const nk = this.plan.keys.length;
    let out = this.out;
    let cap = this.outputBytes;
    let own = 0;
    const u32 = () => this.k.memory.u32;
    const flush = () => {
      if (u32()[(out >>> 2) + 2]! > 0) sink({ ptr: out, byteLength: u32()[(out >>> 2) + 1]! }, schema);
    };
    try {
      x.initBatch(out, schema.id);
      for (const chunk of this.chunks) {
        let off = 8;
        for (;;) {
          const st = x.aggEmit(chunk, off, this.psd, nk, this.ad, final ? 1 : 0, out, cap);
          if (st === STATUS_DONE) break;
          if (st !== STATUS_FULL) throw new SluiceError(`kernel aggEmit returned unexpected status ${st}`, { domain: 'internal' });
          off = x.resultOffset() >>> 0;
          const need = x.resultBytes() >>> 0;
          if (u32()[(out >>> 2) + 2]! > 0) {
            flush();
            if (own !== 0) {
              this.k.memory.free(own);
              own = 0;
              out = this.out;
              cap = this.outputBytes;
            }
          } else {
            // one row larger than an empty buffer: a buffer of its own
            cap = BATCH_HEADER_BYTES + need;
            own = out = this.k.memory.alloc(cap);
          }
          x.initBatch(out, schema.id);
        }
      }
      flush();
    } finally {
      if (own !== 0) this.k.memory.free(own);
    }
  }

  /** {@link emit} into copies: the output batches as Uint8Arrays. */
  collect(final: boolean): Uint8Array[] {
    const res: Uint8Array[] = [];
    this.emit(final, (b) => res.push(this.k.copyOut(b)));
    return res;
  }

  /** Forgets every group; keeps the first chunk and the directory for the next round. */
  clear(): void {
    this.x.aggClear(this.region);
    for (let i = this.chunks.length - 1; i >= 1; i--) this.free(this.chunks[i]!, this.chunkSizes[i]!);
    this.chunks.length = Math.min(1, this.chunks.length);
    this.chunkSizes.length = this.chunks.length;
    if (this.chunks.length === 1) this.x.aggAddChunk(this.region, this.chunks[0]!, this.chunkSizes[0]!);
  }

  /** Frees all of the table's managed memory (idempotent). */
  close(): void {
    for (let i = 0; i < this.chunks.length; i++) this.free(this.chunks[i]!, this.chunkSizes[i]!);
    this.chunks = [];
    this.chunkSizes = [];
    if (this.out !== 0) this.free(this.out, this.outputBytes);
    if (this.dir !== 0) this.free(this.dir, this.dirCap * 8);
    if (this.region !== 0) this.free(this.region, this.regionBytes);
    this.out = this.dir = this.region = 0;
  }
}

function segBytes(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / SEGMENT_BYTES)) * SEGMENT_BYTES;
}
