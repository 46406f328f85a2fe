// DO NOT EDIT: generated from abi/abi.ts by scripts/gen-abi.ts (run `make`).
// Kernel ABI constants, mirrored for the host.
export const BATCH_MAGIC = 0x31424c53;
export const BATCH_HEADER_BYTES = 16;
export const BATCH_OFF_MAGIC = 0;
export const BATCH_OFF_BYTE_LENGTH = 4;
export const BATCH_OFF_ROW_COUNT = 8;
export const BATCH_OFF_SCHEMA_ID = 12;
export const ROW_HEADER_BYTES = 8;
export const SLOT_BYTES = 8;
export const TYPE_I32 = 1;
export const TYPE_I64 = 2;
export const TYPE_F64 = 3;
export const TYPE_BOOL = 4;
export const TYPE_STRING = 5;
export const TYPE_BYTES = 6;
export const TYPE_TIMESTAMP = 7;
export const TYPE_ANY = 8;
export const TYPE_NULLABLE_BIT = 0x100;
export const KEY_DESC = 1;
export const KEY_NULLS_FIRST = 2;
export const HASH_SEED = 42;
export const HASH_NULL = 0x85ebca6b;
export const SEGMENT_BYTES = 0x8000;
export const STATUS_DONE = 0;
export const STATUS_FULL = 1;
export const STATUS_CORRUPT = 2;
export const STATUS_SCHEMA_MISMATCH = 3;
