// Owns the schema type system: field types, schemas, the JS types they infer, and the schema
// fingerprint written into every batch header.

/** Kind of a field. See `abi/abi.ts` for how each is laid out in a binary row. */
export type FieldKind = 'i32' | 'i64' | 'f64' | 'bool' | 'string' | 'bytes' | 'timestamp' | 'any';

/** The JS value a field of kind `K` reads and writes as. */
export type KindValue<K extends FieldKind, Big extends boolean> = K extends 'i32' | 'f64' | 'timestamp'
  ? number
  : K extends 'i64'
    ? Big extends true
      ? bigint
      : number
    : K extends 'bool'
      ? boolean
      : K extends 'string'
        ? string
        : K extends 'bytes'
          ? Uint8Array
          : unknown;

/**
 * A field type. Immutable; `nullable()` returns a new one.
 *
 * @example
 * const price = t.f64();
 * const note = t.string().nullable(); // string | null
 */
export class FieldType<K extends FieldKind = FieldKind, N extends boolean = boolean, Big extends boolean = boolean> {
  /** @internal phantom for type inference */
  declare readonly __value: N extends true ? KindValue<K, Big> | null : KindValue<K, Big>;
  constructor(
    readonly kind: K,
    readonly isNullable: N,
    /** For `i64`: read values as `bigint` (full 64-bit range) instead of `number` (safe integers). */
    readonly bigint: Big,
  ) {}
  /** The same type, also accepting `null` (and `undefined`, written as null). */
  nullable(): FieldType<K, true, Big> {
    return new FieldType(this.kind, true, this.bigint);
  }
  toString(): string {
    return `${this.kind}${this.kind === 'i64' && this.bigint ? '(bigint)' : ''}${this.isNullable ? '?' : ''}`;
  }
}

function i64Type(opts?: { bigint?: false }): FieldType<'i64', false, false>;
function i64Type(opts: { bigint: true }): FieldType<'i64', false, true>;
function i64Type(opts?: { bigint?: boolean }): FieldType<'i64', false, boolean> {
  return new FieldType('i64', false, opts?.bigint ?? false);
}

/**
 * Field type constructors.
 *
 * - `i32`: integers in [-2^31, 2^31).
 * - `i64`: 64-bit integers; as `number` they must be safe integers (|v| ≤ 2^53−1), reading a stored
 *   value outside that range raises an error rather than rounding. `t.i64({ bigint: true })` reads and
 *   writes `bigint` over the full range.
 * - `f64`, `bool`, `string` (UTF-8), `bytes` (`Uint8Array`).
 * - `timestamp`: milliseconds since the Unix epoch as an integer `number` (a `Date` is accepted on write).
 * - `any`: any JS value MessagePack can encode.
 *
 * @example
 * const s = schema({ id: t.i64(), ts: t.timestamp(), key: t.string(), price: t.f64() });
 */
export const t = {
  i32: () => new FieldType('i32', false, false),
  i64: i64Type,
  f64: () => new FieldType('f64', false, false),
  bool: () => new FieldType('bool', false, false),
  string: () => new FieldType('string', false, false),
  bytes: () => new FieldType('bytes', false, false),
  timestamp: () => new FieldType('timestamp', false, false),
  any: () => new FieldType('any', false, false),
};

export type Fields = Record<string, FieldType<FieldKind, boolean, boolean>>;

/** The JS object type a schema describes. */
export type InferRow<F extends Fields> = { [P in keyof F]: F[P]['__value'] };

/**
 * An ordered list of named, typed fields. Field order is the order of the object's keys.
 *
 * @example
 * const trades = schema({ id: t.i64(), key: t.string(), price: t.f64() });
 * type Trade = InferRow<typeof trades.fields>; // { id: number; key: string; price: number }
 */
export class Schema<F extends Fields = Fields> {
  readonly names: readonly string[];
  readonly types: readonly FieldType[];
  /** Stable fingerprint of the field types (not the names); written into batch headers. */
  readonly id: number;
  constructor(readonly fields: F) {
    this.names = Object.keys(fields);
    this.types = this.names.map((n) => fields[n]!);
    this.id = schemaFingerprint(this.types);
  }
  /** Index of a field by name, or -1. */
  indexOf(name: string): number {
    return this.names.indexOf(name);
  }
  toString(): string {
    return `{ ${this.names.map((n, i) => `${n}: ${this.types[i]}`).join(', ')} }`;
  }
}

/** Builds a {@link Schema}. @example const s = schema({ a: t.i32(), b: t.string().nullable() }); */
export function schema<F extends Fields>(fields: F): Schema<F> {
  return new Schema(fields);
}

export const TYPE_CODES: Record<FieldKind, number> = {
  i32: 1,
  i64: 2,
  f64: 3,
  bool: 4,
  string: 5,
  bytes: 6,
  timestamp: 7,
  any: 8,
};

/** FNV-1a (32-bit) over one byte per field: the type code, with bit 7 set for nullable fields. */
export function schemaFingerprint(types: readonly FieldType[]): number {
  let h = 0x811c9dc5;
  h = Math.imul(h ^ (types.length & 0xff), 0x01000193);
  for (const ty of types) {
    h = Math.imul(h ^ (TYPE_CODES[ty.kind] | (ty.isNullable ? 0x80 : 0)), 0x01000193);
  }
  return h >>> 0;
}
