// Owns the public surface of Sluice: everything a user imports comes from here.

export { StreamEnvironment, type EnvironmentOptions } from './api/environment.ts';
export { DataStream, SingleOutputStreamOperator, KeyedStream, DataStreamSink, CollectHandle } from './api/datastream.ts';
export { ConnectedStreams, BroadcastStream, BroadcastConnectedStream } from './api/connected.ts';
export {
  OutputTag,
  type Collector, type TimerService as ProcessTimerService, type RuntimeContext, type ProcessContext, type KeyedProcessContext, type OnTimerContext,
  type RichFunction, type ProcessFunction, type KeyedProcessFunction, type CoProcessFunction, type KeyedCoProcessFunction,
  type BroadcastContext, type ReadOnlyBroadcastContext, type KeyedBroadcastProcessFunction, type BroadcastProcessFunction,
  type KeyByOptions,
} from './api/functions.ts';
export { JobClient } from './api/job-client.ts';
export { defineJob, JobDefinition, RunningJob, type JobBuilder, type JobRunOptions, type JobRun } from './api/job-definition.ts';
export { KeyedContextRequiredError } from './operators/process.ts';
export type { GeneratorOptions } from './connectors/collection.ts';
export type { NumericField, KeyField, SourceOptions } from './api/types.ts';
export type { SinkFunction, SinkContext } from './operators/sinks.ts';
export type { RuntimeMode, SourceSpec, SourceReader, OperatorContext, StreamOperator, KeyedStateStore, Output, MaybePromise } from './graph/operator.ts';
export { JobResult, type OperatorMetrics, type LiveOperatorMetrics } from './runtime/job-result.ts';
export { UnhashableKeyError, InvalidKeyError } from './runtime/keys.ts';

export * from './core/schema.ts';
export * from './core/errors.ts';
export { registerErrorClass } from './core/error-codec.ts';
export { hashJsKey, keyGroupOf, subtaskForKeyGroup } from './core/hash.ts';
export * from './state/index.ts';
export {
  WatermarkStrategy, DEFAULT_WATERMARK_INTERVAL_MS, InvalidTimestampError, InvalidWatermarkError,
  BoundedOutOfOrdernessWatermarks, AscendingTimestampsWatermarks, NoWatermarksGenerator, PunctuatedWatermarks, IngestionTimeWatermarks,
  type WatermarkGenerator, type WatermarkGeneratorContext, type TimestampAssigner, type InvalidTimestampPolicy,
} from './api/watermarks.ts';
export { MIN_WATERMARK, MAX_WATERMARK, WatermarkValve, type ValveOutput, type WatermarkValveOptions, type WatermarkOutput, type Watermarker, type WatermarkerContext, type TimestampedBatch } from './runtime/watermark-valve.ts';
export { TimerService, type Timer, type TimerData, type TimeDomain, type KeyGroupTimersSnapshot, type TimerServiceOptions } from './runtime/timer-service.ts';
export { SystemClock, ManualClock, systemClock, type ProcessingClock, type CancelScheduled } from './runtime/clock.ts';
export type { WatermarkStatus } from './runtime/channel.ts';
export { AsyncDataStream, AsyncTimeoutError, type AsyncWaitOptions, type AsyncFunction, type AsyncFunctionLike } from './api/async.ts';
export {
  count, sum, min, max, avg, configureBatchRuntime, JoinBuilder, JoinKeys, GroupedStream,
  describeJoin, planJoinStrategy, planGroupBy, parseMemorySize,
  type AggregateFunction, type AggregateSpec, type AggregateValue, type JoinedRow, type JoinRow, type JoinFunction, type JoinedStream, type SortKey, type StreamInfo,
  type JoinHints, type JoinKind, type JoinStrategy, type GroupByStrategy, type PhysicalProps, type Ship, type SizeEstimate, type SortField,
  type BatchRuntimeSettings, type MemorySize,
} from './api/batch.ts';
