/**
 * gradvault: asynchronous, parallel gradient training for Node.js on a native
 * parameter store that never loses an update.
 */
export { ParameterStore } from './store';
export type { Gradients, PushOptions, PushResult, StoreStats, StalenessBucket, StoreHandle } from './store';
export { Snapshot } from './snapshot';
export { DEFAULTS, MODES } from './config';
export type {
  Mode,
  Init,
  TensorOptions,
  OptimizerKind,
  OptimizerOptions,
  StalenessPolicy,
  StalenessOptions,
  StoreOptions,
  ResolvedStoreOptions,
  ResolvedOptimizer,
  ResolvedTensor,
} from './config';
export {
  GradvaultError,
  ConfigError,
  InvalidArgumentError,
  ShapeError,
  NonFiniteGradientError,
  InPlaceModificationError,
  OverflowError,
  ClosedError,
  NativeLoadError,
} from './errors';
export { isa } from './native';
