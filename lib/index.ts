/**
 * gradvault: asynchronous, parallel gradient training for Node.js on a native
 * parameter store that never loses an update.
 */
export { ParameterStore } from './store';
export type { Gradients, PushOptions, PushResult, StoreStats, StalenessBucket, StoreHandle, LoadOptions } from './store';
export type { SaveResult } from './checkpoint';
export { ParameterServer } from './cluster/server';
export type { ServerOptions, ServerStats } from './cluster/server';
export { RemoteParameterStore } from './cluster/remote';
export type { ConnectOptions, ClusterStats, ShardStats } from './cluster/remote';
export { generateKey } from './cluster/key';
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
  DataFormatError,
  FileError,
  AbortError,
  ShardError,
  ShardUnavailableError,
  RoundTimeoutError,
  AuthenticationError,
} from './errors';
export { Trainer, evaluate, modelTensors, defaultLearningRate, MODELS } from './trainer';
export type {
  ModelKind,
  RemoteTrainerOptions,
  ClusterProgress,
  ModelOptions,
  ModelDescription,
  Schedule,
  TrainerOptions,
  AutoTrainerOptions,
  ResolvedTrainerOptions,
  TrainProgress,
  StepProgress,
  TrainResult,
  RunOptions,
  StepRunOptions,
  EpochRunOptions,
  EvaluateResult,
} from './trainer';
export { Dataset, loadIdx, loadLibsvm, loadCsv, synthetic } from './data';
export { predict, predictAsync } from './predict';
export type { Prediction, PredictInput, PredictOptions, RatingPairs } from './predict';
export type {
  DatasetKind,
  DenseOptions,
  SparseInput,
  RatingsInput,
  ArrowOptions,
  ArrowTableLike,
  ArrowVectorLike,
  SparseRow,
  RatingRow,
  IdxOptions,
  LibsvmOptions,
  CsvOptions,
  SyntheticKind,
  SyntheticOptions,
  Scaler,
  ScalerLike,
} from './data';
export { exportOnnx, ONNX_OPSET } from './onnx/export';
export type { OnnxExportResult, OnnxValueInfo, OnnxSource } from './onnx/export';
export { isa } from './native';
