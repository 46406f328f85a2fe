// Owns the kernel module's export list: every function the host may call (all batch-level, numbers
// only). Layout, status codes and descriptors: abi/abi.ts. Host wrapper: bindings/kernels.ts.

export { segAlloc, segFree, segmentsInUse, segmentsBacked } from './memory';
export { resultRow, resultOffset, resultIndex, resultBytes } from './result';
export { validateBatch } from './validate';
export { hashBatch } from './hash';
export { partitionBatch } from './partition';
export { initBatch, rowPointers, projectBatch, gatherBatch } from './project';
export { compareRowPairs } from './compare';
export { schemaFingerprint as schemaId } from './row';
export { sortIndex, gatherSorted, sortedRowPointers } from './sort';
export { mergeStateBytes, mergeInit, mergeFeed, mergeStep } from './merge';
export { joinTableBytes, joinTableInit, joinTableCount, joinBuild, joinFinish, joinDenseBytes, joinDense, joinProbe, joinScan, joinPartition } from './join';
export { aggInit, aggAddChunk, aggRehash, aggClear, aggGroups, aggFeed, aggEmit } from './agg';
