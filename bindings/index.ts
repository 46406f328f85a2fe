// Owns the public face of the bindings layer: loading the WASM kernels and their typed batch API.
export {
  DEFAULT_BUDGET_BYTES,
  Kernels,
  fieldIndex,
  kernelModule,
  keyDescriptor,
  loadKernels,
  schemaDescriptor,
  type KernelExports,
  type KeyRef,
  type KeySpec,
  Merger,
  type LoadKernelsOptions,
  type ManagedBatch,
  type OutputOptions,
} from './kernels.ts';
export { ManagedMemory, type SegmentPoolExports } from './memory.ts';
export * as abi from './abi.generated.ts';
export { AggTable, AggregateOverflowError, aggregatePlan, type AggExports, type AggSpec, type AggTableOptions, type AggregatePlan, type FeedPosition } from './aggregate.ts';
export * from './join.ts';
