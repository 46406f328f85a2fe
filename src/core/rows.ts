// Owns the public face of the binary row codec: encoding JS objects into batches (batch-writer.ts),
// validating and reading batches (batch-reader.ts), UTF-8 (utf8.ts) and MessagePack for `any`
// fields (any-codec.ts). The layout itself is drawn in abi/abi.ts.

export {
  BatchWriter,
  encodeBatch,
  encodeBatches,
  RowLayout,
  type BatchWriterOptions,
  type EncodeOptions,
} from './batch-writer.ts';
export { BatchReader, decodeBatches, type BatchReaderOptions } from './batch-reader.ts';
export { AnyEncoder, AnyEncodeError, decodeAny } from './any-codec.ts';
