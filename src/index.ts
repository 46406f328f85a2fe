// Owns the public surface of Sluice: everything a user imports comes from here.

export { StreamEnvironment, type EnvironmentOptions } from './api/environment.ts';
export { DataStream, SingleOutputStreamOperator, KeyedStream, DataStreamSink, CollectHandle } from './api/datastream.ts';
export type { NumericField, KeyField, SourceOptions } from './api/types.ts';
export type { SinkFunction, SinkContext } from './operators/sinks.ts';
export type { RuntimeMode, SourceSpec, SourceReader, OperatorContext, StreamOperator, KeyedStateStore } from './graph/operator.ts';
export { JobResult, type OperatorMetrics } from './runtime/job-result.ts';
export { UnhashableKeyError } from './runtime/keys.ts';

export * from './core/schema.ts';
export * from './core/errors.ts';
export { hashJsKey, keyGroupOf, subtaskForKeyGroup } from './core/hash.ts';
export * from './state/index.ts';
