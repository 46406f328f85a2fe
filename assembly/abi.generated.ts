// DO NOT EDIT: generated from abi/abi.ts by scripts/gen-abi.ts (run `make`).
// Kernel ABI constants.
export const BATCH_MAGIC: u32 = 0x31424c53;
export const BATCH_HEADER_BYTES: u32 = 16;
export const BATCH_OFF_MAGIC: u32 = 0;
export const BATCH_OFF_BYTE_LENGTH: u32 = 4;
export const BATCH_OFF_ROW_COUNT: u32 = 8;
export const BATCH_OFF_SCHEMA_ID: u32 = 12;
export const ROW_HEADER_BYTES: u32 = 8;
export const SLOT_BYTES: u32 = 8;
export const TYPE_I32: u32 = 1;
export const TYPE_I64: u32 = 2;
export const TYPE_F64: u32 = 3;
export const TYPE_BOOL: u32 = 4;
export const TYPE_STRING: u32 = 5;
export const TYPE_BYTES: u32 = 6;
export const TYPE_TIMESTAMP: u32 = 7;
export const TYPE_ANY: u32 = 8;
export const TYPE_NULLABLE_BIT: u32 = 0x100;
export const KEY_DESC: u32 = 1;
export const KEY_NULLS_FIRST: u32 = 2;
export const HASH_SEED: u32 = 42;
export const HASH_NULL: u32 = 0x85ebca6b;
export const SEGMENT_BYTES: u32 = 0x8000;
export const STATUS_DONE: u32 = 0;
export const STATUS_FULL: u32 = 1;
export const STATUS_CORRUPT: u32 = 2;
export const STATUS_SCHEMA_MISMATCH: u32 = 3;
