// Owns the property access of the row codec: reading a record's fields and building a row object
// with one property-access site per field position. Without code generation (workerd forbids it) this
// is how each site stays monomorphic for a schema: a single loop `o[names[f]]` sees every field name
// at one site and goes megamorphic (measured: ~1.5× slower materialization, slower encoding).

/** Upper bound of the unrolled positions; fields past it use a generic loop. */
export const UNROLLED = 16;

/**
 * Copies `rec[names[f]]` into `vals[f]` for f < n.
 * hand-unrolled: one load site per field position
 */
export function loadFields(rec: Record<string, unknown>, names: readonly string[], n: number, vals: unknown[]): void {
  if (n <= 0) return;
  vals[0] = rec[names[0]!];
  if (n <= 1) return;
  vals[1] = rec[names[1]!];
  if (n <= 2) return;
  vals[2] = rec[names[2]!];
  if (n <= 3) return;
  vals[3] = rec[names[3]!];
  if (n <= 4) return;
  vals[4] = rec[names[4]!];
  if (n <= 5) return;
  vals[5] = rec[names[5]!];
  if (n <= 6) return;
  vals[6] = rec[names[6]!];
  if (n <= 7) return;
  vals[7] = rec[names[7]!];
  if (n <= 8) return;
  vals[8] = rec[names[8]!];
  if (n <= 9) return;
  vals[9] = rec[names[9]!];
  if (n <= 10) return;
  vals[10] = rec[names[10]!];
  if (n <= 11) return;
  vals[11] = rec[names[11]!];
  if (n <= 12) return;
  vals[12] = rec[names[12]!];
  if (n <= 13) return;
  vals[13] = rec[names[13]!];
  if (n <= 14) return;
  vals[14] = rec[names[14]!];
  if (n <= 15) return;
  vals[15] = rec[names[15]!];
  for (let f = UNROLLED; f < n; f++) vals[f] = rec[names[f]!];
}

/**
 * Builds `{ [names[f]]: vals[f] }` for f < n, properties in schema order (one hidden class per schema).
 * hand-unrolled: one store site per field position
 */
export function buildObject(names: readonly string[], n: number, vals: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (n <= 0) return o;
  o[names[0]!] = vals[0];
  if (n <= 1) return o;
  o[names[1]!] = vals[1];
  if (n <= 2) return o;
  o[names[2]!] = vals[2];
  if (n <= 3) return o;
  o[names[3]!] = vals[3];
  if (n <= 4) return o;
  o[names[4]!] = vals[4];
  if (n <= 5) return o;
  o[names[5]!] = vals[5];
  if (n <= 6) return o;
  o[names[6]!] = vals[6];
  if (n <= 7) return o;
  o[names[7]!] = vals[7];
  if (n <= 8) return o;
  o[names[8]!] = vals[8];
  if (n <= 9) return o;
  o[names[9]!] = vals[9];
  if (n <= 10) return o;
  o[names[10]!] = vals[10];
  if (n <= 11) return o;
  o[names[11]!] = vals[11];
  if (n <= 12) return o;
  o[names[12]!] = vals[12];
  if (n <= 13) return o;
  o[names[13]!] = vals[13];
  if (n <= 14) return o;
  o[names[14]!] = vals[14];
  if (n <= 15) return o;
  o[names[15]!] = vals[15];
  for (let f = UNROLLED; f < n; f++) o[names[f]!] = vals[f];
  return o;
}
