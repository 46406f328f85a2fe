// Owns the type-level helpers of the public API: which field names a keyed aggregate accepts.

/**
 * Names of the fields of `T` whose values are numbers (or bigints): what `sum`, `min` and `max` accept.
 *
 * @example
 * type F = NumericField<{ key: string; price: number; qty: number }>; // 'price' | 'qty'
 */
export type NumericField<T> = { [K in keyof T]-?: T[K] extends number | bigint ? K : never }[keyof T] & string;

/**
 * Names of the fields of `T` usable as a key with `keyBy(field)`.
 *
 * @example
 * type F = KeyField<{ key: string; price: number }>; // 'key' | 'price'
 */
export type KeyField<T> = keyof T & string;

/** Options of a source. */
export interface SourceOptions {
  /** Display name of the source (default `Source: Collection` / `Source: Generator`). */
  name?: string;
  /** Number of parallel readers; each reads a contiguous slice of the items or indices. */
  parallelism?: number;
}
