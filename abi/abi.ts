// The single definition of the kernel ABI: the binary row layout, type codes, status codes and
// hash constants shared by the AssemblyScript kernels and the TypeScript host.
// `scripts/gen-abi.ts` mirrors it into `assembly/abi.generated.ts` and `bindings/abi.generated.ts`
// (both DO NOT EDIT). Change a number here, run `make`, and both sides move together.
//
// ── Batch ────────────────────────────────────────────────────────────────────────────────
// A batch is a contiguous run of bytes (inside a managed-memory segment, or any ArrayBuffer),
// 8-byte aligned, little-endian throughout:
//
//   offset  size  field
//   0       4     magic        BATCH_MAGIC ('S','L','B','1')
//   4       4     byteLength   bytes used including this header; multiple of 8
//   8       4     rowCount
//   12      4     schemaId     fingerprint of the schema's field types (see schemaFingerprint)
//   16      ...   rows, back to back
//
// ── Row ──────────────────────────────────────────────────────────────────────────────────
// A row starts 8-byte aligned. With n fields and W = ceil(n / 64) * 8 bitmap bytes:
//
//   +0        4     rowLength   bytes including this header; multiple of 8
//   +4        4     reserved    0 (kept for a row kind: insert / update / delete)
//   +8        W     null bitmap bit i (byte i>>3, bit i&7) set ⇔ field i is null
//   +8+W      8·n   fixed slots, one per field, in schema order:
//                     i32        the value sign-extended to i64
//                     i64        i64
//                     timestamp  i64 milliseconds since the Unix epoch
//                     f64        IEEE-754 binary64, stored as given
//                     bool       0 or 1 as u64
//                     string     u32 offset from the row start, u32 byte length (UTF-8)
//                     bytes      u32 offset, u32 length (raw bytes)
//                     any        u32 offset, u32 length (MessagePack of the JS value)
//                     null       all eight bytes zero (and the bitmap bit set)
//   +8+W+8n   ...   variable part: the payloads of string/bytes/any fields in field order,
//                   then zero padding up to the next multiple of 8
//
// ── Key hash (stable on every runtime; the TS reference in src/core/hash.ts is the spec) ───
// murmur3_x86_32 (Austin Appleby's reference) over each key field's canonical bytes, chained:
//   h = HASH_SEED
//   for each key field, in key order:
//     null             → h = fmix32(h ^ HASH_NULL)            (no bytes)
//     i32/i64/ts/bool  → h = murmur3_32(8 bytes LE of the slot's i64 value, seed h)
//     f64              → h = murmur3_32(8 bytes LE of canonical bits, seed h), where
//                        -0 becomes +0 and every NaN becomes 0x7FF8000000000000
//     string/bytes/any → h = murmur3_32(payload bytes, seed h)
// Key group of a row = h % maxParallelism (h unsigned);
// partition = floor(keyGroup * parallelism / maxParallelism)   (Flink's KeyGroupRangeAssignment).
//
// ── Key order (compare) ─────────────────────────────────────────────────────────────────────
// A key field carries flags: KEY_DESC reverses the order of non-null values; KEY_NULLS_FIRST puts
// nulls before every value (default: nulls last, in both directions — DuckDB's default).
//   i32/i64/timestamp: signed; bool: false < true;
//   f64: -inf < … < -0 = +0 < … < +inf < NaN (all NaNs equal) — DuckDB's order;
//   string/bytes/any: unsigned bytewise on the payload, a proper prefix first (UTF-8 bytewise is
//   code-point order, as DuckDB orders VARCHAR).

export const ABI = {
  // batch header
  BATCH_MAGIC: 0x31424c53,
  BATCH_HEADER_BYTES: 16,
  BATCH_OFF_MAGIC: 0,
  BATCH_OFF_BYTE_LENGTH: 4,
  BATCH_OFF_ROW_COUNT: 8,
  BATCH_OFF_SCHEMA_ID: 12,
  // row header
  ROW_HEADER_BYTES: 8,
  SLOT_BYTES: 8,
  // field type codes
  TYPE_I32: 1,
  TYPE_I64: 2,
  TYPE_F64: 3,
  TYPE_BOOL: 4,
  TYPE_STRING: 5,
  TYPE_BYTES: 6,
  TYPE_TIMESTAMP: 7,
  TYPE_ANY: 8,
  // a schema descriptor handed to kernels: u32[] = [nFields, typeCode | NULLABLE_BIT, ...]
  TYPE_NULLABLE_BIT: 0x100,
  // a key descriptor handed to kernels: u32[] = [nKeys, fieldIndex, flags, fieldIndex, flags, ...]
  KEY_DESC: 1,
  KEY_NULLS_FIRST: 2,
  // hash
  HASH_SEED: 0x2a,
  HASH_NULL: 0x85ebca6b,
  // managed memory
  SEGMENT_BYTES: 32768,
  // status codes returned by kernels (data-dependent outcomes; traps are for broken invariants)
  STATUS_DONE: 0,
  STATUS_FULL: 1,
  STATUS_CORRUPT: 2,
  STATUS_SCHEMA_MISMATCH: 3,
  // the merge kernel needs the next batch of run resultIndex (feed it, or end the run) before it can go on
  STATUS_NEED_INPUT: 4,
  // hash join (assembly/join.ts): probe / scan mode bits, table header and probe state sizes
  JOIN_EMIT_MATCH: 1,
  JOIN_EMIT_PROBE_UNMATCHED: 2,
  JOIN_MARK_BUILD: 4,
  JOIN_EMIT_PROBE_MATCHED: 8,
  JOIN_PROBE_ONLY: 16,
  JOIN_BUILD_FIRST: 32,
  JOIN_PROBE_BITMAP: 64,
  JOIN_SCAN_MATCHED: 128,
  JOIN_BUILD_ONLY: 256,
  JOIN_TABLE_HEADER_BYTES: 80,
  JOIN_PROBE_STATE_BYTES: 32,
  // hash aggregation (assembly/agg.ts): an integer sum left the i64 range (resultRow: the row)
  STATUS_OVERFLOW: 5,
  // aggregate ops of an aggregate descriptor u32[] = [nAggs, op, field, ...]; the MERGE ops combine partials
  AGG_COUNT_STAR: 1,
  AGG_COUNT: 2,
  AGG_SUM: 3,
  AGG_MIN: 4,
  AGG_MAX: 5,
  AGG_AVG: 6,
  AGG_MERGE_COUNT: 7,
  AGG_MERGE_AVG: 8,
  // which part of the aggregation table is full after STATUS_FULL (resultIndex)
  AGG_FULL_HEAP: 0,
  AGG_FULL_DIRECTORY: 1,
  AGG_STATE_BYTES: 64,
} as const;
