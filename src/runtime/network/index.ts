// Owns the public surface of the network layer (src/runtime/network/): buffer pools, the buffer
// format, credit-based channels (in-thread and over MessagePorts), the buffer timeout, and the
// producer/consumer ends the executor plugs into its tasks.

export {
  DEFAULT_BUFFER_BYTES,
  DEFAULT_NETWORK_MEMORY,
  LocalBufferPool,
  NetworkBufferPool,
  type BufferPoolMetrics,
  type LocalBufferPoolOptions,
  type NetworkBufferPoolOptions,
} from './buffer-pool.ts';
export {
  createDeserializer,
  createSerializer,
  inspectBuffer,
  NET_BUFFER_MAGIC,
  NET_HEADER_BYTES,
  RecordEncodeError,
  type BufferContents,
  type BufferFormat,
  type DecodedBatch,
  type RecordDeserializer,
  type RecordSerializer,
  type SerializerOptions,
} from './serializer.ts';
export {
  connectReceiver,
  connectSender,
  createLocalChannel,
  isBuffer,
  type BufferRecycler,
  type CreditChannelOptions,
  type CreditReceiver,
  type CreditSender,
  type MessagePortLike,
  type SenderStats,
} from './credit-channel.ts';
export { checkBufferTimeout, DEFAULT_BUFFER_TIMEOUT_MS, OutputFlusher, type OutputFlusherOptions } from './output-flusher.ts';
export { PartitionWriter, type PartitionWriterOptions, type PartitionWriterStats } from './partition-writer.ts';
export { ChannelReader, type ReadItem } from './channel-reader.ts';
