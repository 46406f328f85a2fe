// Owns the public surface of the state layer: descriptors and handles, TTL, key-group ranges, the
// heap and binary keyed backends, operator (list / union / broadcast) state, and state errors.

export {
  StateDescriptor,
  ValueStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  AggregatingStateDescriptor,
  type StateKind,
  type StateCodec,
  type StateDescriptorOptions,
  type ValueStateOptions,
  type AggregateFunction,
  type ValueState,
  type ListState,
  type MapState,
  type ReducingState,
  type AggregatingState,
  type HandleOf,
} from './descriptors.ts';
export { StateTtlConfig, StateTtlConfigBuilder, type TtlUpdateType, type TtlStateVisibility, type StateClock } from './ttl.ts';
export { KeyGroupRange, keyGroupRangeForSubtask, keyGroupForKey } from './key-groups.ts';
export { HeapKeyedStateBackend, type KeyedStateBackend, type KeyedStateBackendOptions } from './heap-backend.ts';
export { BinaryKeyedStateBackend } from './binary-backend.ts';
export {
  OperatorStateBackend,
  type OperatorStateBackendOptions,
  type BroadcastState,
  type ReadOnlyBroadcastState,
  type ListRedistribution,
} from './operator-state.ts';
export { StateAccessError, StateSerializationError, CorruptSnapshotError } from './errors.ts';
