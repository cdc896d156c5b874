/** Loads the addon: build/Release, then prebuilds/<platform>-<arch> (node-gyp-build). */
import * as path from 'node:path';
import { NativeLoadError } from './errors';

// node-gyp-build ships no types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild: (dir: string) => unknown = require('node-gyp-build');

// The wire types: every value that crosses the addon boundary, declared
// here and nowhere else (this file imports from no higher layer). The facade
// maps them to its public types once, and checks those against these
// (trainer.ts, checkpoint.ts), so the C++ side (native/binding) and the
// public API cannot drift apart without a compile error. The addon reads
// every field declared here: defaults live in lib/config.ts and the core.

/**
 * @internal true when A and B are assignable both ways (readonly aside): a
 * public type checked against its wire type with `IsWire<Public, Wire>`.
 */
export type IsWire<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** @internal Fails to compile unless T is true. */
export type Assert<T extends true> = T;

/** @internal */
export type WireMode = 'atomic' | 'locked' | 'versioned' | 'deterministic' | 'averaging' | 'hogwild';
/** @internal */
export type WireOptimizerKind = 'sgd' | 'adagrad' | 'rmsprop' | 'adam';
/** @internal */
export type WireStalenessPolicy = 'accept' | 'scale' | 'reject';
/** @internal */
export type WireNonFinite = 'reject' | 'skip';
/** @internal */
export type WireInit = 'zeros' | 'glorot' | 'normal';
/** @internal */
export type WireSchedule = 'constant' | 'step' | 'inverse-sqrt';
/** @internal */
export type WireModelKind = 'linear' | 'logistic' | 'softmax' | 'svm' | 'mlp' | 'mf';

/** @internal */
export interface NativeOptimizer {
  kind: WireOptimizerKind;
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  decoupled: boolean;
  beta1: number;
  beta2: number;
  alpha: number;
  eps: number;
}

/** @internal bound: null for none */
export interface NativeStaleness {
  policy: WireStalenessPolicy;
  bound: number | null;
}

/**
 * @internal new NativeStore(config, tensors); store.config() answers the same
 * (there, floats as the shortest decimal of the float32 the core holds).
 */
export interface NativeStoreConfig {
  mode: WireMode;
  optimizer: NativeOptimizer;
  staleness: NativeStaleness;
  nonFinite: WireNonFinite;
  syncEvery: number;
  seed: number;
  verify: boolean;
}

/** @internal loadCheckpoint(file, options): each field the caller's, or null where the file decides. */
export type NativeLoadOptions = { [K in keyof NativeStoreConfig]: NativeStoreConfig[K] | null };

/** @internal values: with init 'values' only, exactly the tensor's size */
export interface NativeTensorSpec {
  name: string;
  shape: readonly number[];
  init: WireInit | 'values';
  std: number;
  values?: Float32Array;
}

/** @internal */
export interface NativeModelSpec {
  kind: WireModelKind;
  hidden: readonly number[];
  rank: number;
  biases: boolean;
  l2: number;
}

/**
 * @internal store.model(), inspectCheckpoint().model: the model a store's
 * parameters are for (the core's ModelInfo); only the fields of its kind.
 */
export interface NativeModelInfo {
  model: WireModelKind;
  hidden?: readonly number[];
  rank?: number;
  biases?: boolean;
  l2?: number;
  features?: number;
  classes?: number;
  users?: number;
  items?: number;
}

/** @internal targetLoss: NaN for none; maxAhead: -1 for unbounded; lr: 0 for the store's */
export interface NativeTrainerOptions {
  threads: number;
  epochs: number;
  batchSize: number;
  seed: number;
  lr: number;
  schedule: WireSchedule;
  stepEvery: number;
  gamma: number;
  scale: number;
  maxAhead: number;
  targetLoss: number;
}

/** @internal The progress event the trainer's thread builds (native/binding/convert.cpp progress_js). */
export interface NativeProgress {
  epoch: number;
  epochs: number;
  samples: number;
  epochSamples: number;
  loss: number;
  seconds: number;
  epochSeconds: number;
  samplesPerSec: number;
  lr: number;
  version: number;
  staleness: { mean: number; max: number; rejected: number; skipped: number };
  conflicts: number;
}

/** @internal */
export interface NativeTrainResult {
  epochs: number;
  samples: number;
  seconds: number;
  samplesPerSec: number;
  loss: number;
  reason: 'completed' | 'target-loss' | 'aborted';
}

/** @internal accuracy for classifiers, rmse for regression models */
export interface NativeEvaluateResult {
  rows: number;
  loss: number;
  accuracy?: number;
  rmse?: number;
}

/** @internal */
export interface NativeSaveResult {
  file: string;
  bytes: number;
  version: number;
  pauseSeconds: number;
  seconds: number;
}

/** @internal inspectCheckpoint(): a tensor of the file; min, max and mean null unless F32 or F64 and not empty. */
export interface NativeTensorSummary {
  name: string;
  dtype: string;
  shape: number[];
  /** byte offset of its data in the file */
  offset: number;
  elements: number;
  min: number | null;
  max: number | null;
  mean: number | null;
}

/** @internal */
export interface NativeInspection {
  metadata: Record<string, string>;
  tensors: NativeTensorSummary[];
  /** metadata "model", where valid */
  model?: NativeModelInfo;
  /** that model's scaler, where it records one */
  scaler?: NativeScaler;
}

/** @internal mergeCheckpoints(): a whole tensor and where its slices are (part: the shard). */
export interface NativeMergeTensor {
  name: string;
  shape: readonly number[];
  slices: { part: number; name: string; start: number; size: number }[];
}

/** @internal loadSlices(): a shard's tensor, cut from `tensor` of the file. */
export interface NativeSliceSpec {
  name: string;
  tensor: string;
  start: number;
  size: number;
}

/** @internal What modelTensors() answers: the store a model needs for the data. */
export interface NativeModelTensor {
  name: string;
  shape: number[];
  init: WireInit;
  std: number;
}

/** @internal synthetic(): rows and seed, plus the kind's own fields only. */
export type NativeSyntheticOptions = { rows: number; seed: number } & Record<string, number>;

/** @internal The core structs' defaults (test/15.defaults checks lib/ against them). */
export interface NativeDefaults {
  /** floats as their shortest decimal; adamLr: optimizer.lr of adam where none is given */
  store: NativeStoreConfig & { adamLr: number };
  tensor: { init: WireInit; std: number };
  model: { hidden: number[]; rank: number; biases: boolean; l2: number };
  trainer: { epochs: number; batchSize: number; seed: number; lr: number; stepEvery: number; gamma: number; scale: number; maxAhead: number };
  /** elements of one tensor, at most */
  maxTensorElements: number;
}

/** @internal The addon's surface, as the facade uses it. */
export interface NativeResult {
  applied: boolean;
  version: number;
  staleness: number;
  reason?: 'stale' | 'nonFinite';
}

/** @internal */
export interface NativeStats {
  version: number;
  pushes: number;
  rejectedStale: number;
  skippedNonFinite: number;
  conflicts: number;
  snapshots: number;
  rounds: number;
  pending: number;
  stalenessCount: number;
  stalenessSum: number;
  stalenessMax: number;
  stalenessHistogram: number[];
  bytes: number;
}

/** @internal */
export interface NativeTensor {
  name: string;
  shape: number[];
  size: number;
  offset: number;
}

/** @internal */
export interface NativeStoreInstance {
  /** lr: this push's learning rate (default: the store's current one). */
  push(indices: number[], arrays: Float32Array[], basedOn: number, lr?: number): NativeResult;
  pushAsync(indices: number[], arrays: Float32Array[], basedOn: number, lr?: number): Promise<NativeResult>;
  snapshot(): { version: number; buffer: ArrayBuffer };
  version(): number;
  stats(): NativeStats;
  sync(): number;
  share(optionsJson: string): number;
  sharedOptions(): string;
  close(): void;
  tensors(): NativeTensor[];
  info(): { mode: WireMode; id: number; paddedFloats: number; learningRate: number };
  setLearningRate(lr: number): void;
  save(file: string): Promise<NativeSaveResult>;
  config(): NativeStoreConfig;
  /** the model the store records (a trainer's run or a checkpoint), undefined when unknown */
  model(): NativeModelInfo | undefined;
  /** The scaler of the data the model was trained on (standardized data), where it was. */
  scaler(): NativeScaler | undefined;
}

/** A feature scaler as the core holds it (native/core/data/standardize.h): copies. */
export interface NativeScaler {
  mean: Float64Array;
  scale: Float64Array;
}

/** @internal */
export interface NativeDatasetInfo {
  kind: 'dense' | 'sparse' | 'ratings';
  rows: number;
  features: number;
  classes: number;
  nnz: number;
  users: number;
  items: number;
  bytes: number;
}

/** @internal A dataset held in native memory (a native trainer shares it without copying). */
export interface NativeDatasetInstance {
  info(): NativeDatasetInfo;
  labels(): Float32Array;
  classIds(): Int32Array | null;
  row(i: number): Float32Array | { indices: Uint32Array; values: Float32Array } | { user: number; item: number; rating: number };
  slice(start: number, end: number): NativeDatasetInstance;
  shuffle(seed: number): NativeDatasetInstance;
  /** The scaler its values were standardized with; null for raw data. */
  scaler(): NativeScaler | null;
  /** A standardized copy: with a scaler fitted on its rows (null, null), or the one given. */
  standardize(mean: Float64Array | null, scale: Float64Array | null): NativeDatasetInstance;
}

/** @internal What predict() returns (native/core/model/model.h: Prediction). */
export interface NativePrediction {
  rows: number;
  width: number;
  threads: number;
  values: Float32Array;
  classes?: Int32Array;
  labels?: Float32Array;
}

/** @internal A run so far, as poll() reads it mid-epoch (native/core/trainer/trainer.h: Live). */
export interface NativeLive {
  started: boolean;
  finished: boolean;
  /** 1-based: the epoch in progress (the last one once finished); 0 before the start */
  epoch: number;
  epochs: number;
  samples: number;
  epochSamples: number;
  batches: number;
  /** this epoch's mean loss so far, NaN before its first batch */
  loss: number;
  seconds: number;
  epochSeconds: number;
  lr: number;
  version: number;
}

/** @internal A native training run. */
export interface NativeTrainRun {
  done: Promise<NativeTrainResult>;
  cancel(): void;
  /** The trainer threads' counters summed, without waiting for them. */
  poll(): NativeLive;
}

/** @internal */
export interface NativeAddon {
  NativeStore: new (config: NativeStoreConfig | null, tensors: NativeTensorSpec[] | null, sharedId?: number) => NativeStoreInstance;
  checksum(data: Float32Array): bigint;
  release(buffer: ArrayBuffer): void;
  isa(): { active: string; supported: string[] };
  loadIdx(images: string, labels: string, scale: boolean): Promise<NativeDatasetInstance>;
  loadLibsvm(file: string, options: { indexBase: number; features: number }): Promise<NativeDatasetInstance>;
  loadCsv(
    file: string,
    options: { labelIndex: number; labelName: string; header: number; delimiter: string },
  ): Promise<NativeDatasetInstance>;
  synthetic(kind: string, options: NativeSyntheticOptions): NativeDatasetInstance;
  /** A checkpoint as a new store (native/core/checkpoint: the caller's options over the file's). */
  loadCheckpoint(file: string, options: NativeLoadOptions): Promise<NativeStoreInstance>;
  inspectCheckpoint(file: string): Promise<NativeInspection>;
  /** A cluster's checkpoint: the shards' own checkpoints (bytes) into one file of whole tensors. */
  mergeCheckpoints(file: string, parts: Buffer[], tensors: NativeMergeTensor[]): Promise<NativeSaveResult>;
  /** A shard's slices of a checkpoint, as a new store. */
  loadSlices(file: string, options: NativeLoadOptions, slices: NativeSliceSpec[], shard: number): Promise<NativeStoreInstance>;
  modelTensors(model: NativeModelSpec, data: NativeDatasetInstance): NativeModelTensor[];
  evaluate(
    names: string[],
    shapes: number[][],
    arrays: Float32Array[],
    model: NativeModelSpec,
    data: NativeDatasetInstance,
  ): NativeEvaluateResult;
  predict(
    names: string[],
    shapes: number[][],
    arrays: Float32Array[],
    model: NativeModelSpec,
    data: NativeDatasetInstance,
    threads: number,
  ): NativePrediction;
  predictAsync(...args: Parameters<NativeAddon['predict']>): Promise<NativePrediction>;
  fromDense(x: Float32Array, features: number, labels: Float32Array | null): NativeDatasetInstance;
  fromSparse(
    indptr: Float64Array,
    indices: Float64Array,
    values: Float32Array,
    features: number,
    labels: Float32Array | null,
  ): NativeDatasetInstance;
  fromRatings(
    users: Float64Array,
    items: Float64Array,
    ratings: Float32Array | null,
    userCount: number,
    itemCount: number,
  ): NativeDatasetInstance;
  train(
    store: NativeStoreInstance,
    data: NativeDatasetInstance,
    model: NativeModelSpec,
    options: NativeTrainerOptions,
    onProgress: (p: NativeProgress) => void,
  ): NativeTrainRun;
  defaults(): NativeDefaults;
}

let addon: NativeAddon | undefined;

/** @internal */
export function native(): NativeAddon {
  if (addon) return addon;
  const root = path.join(__dirname, '..');
  try {
    // GRADVAULT_ADDON: a binary to load instead (the sanitizer build that
    // scripts/jest-asan.sh runs the suite against).
    const override = process.env.GRADVAULT_ADDON;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = (override ? require(path.resolve(override)) : nodeGypBuild(root)) as NativeAddon;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new NativeLoadError(
      `gradvault: no native binary fits ${process.platform}-${process.arch} (Node ${process.versions.node}): ${why}. ` +
        'Install a C++20 compiler, make and python3 (Debian/Ubuntu: apt-get install -y g++ make python3), ' +
        'then run `npm rebuild gradvault` to build it from source.',
    );
  }
  return addon;
}

/** The SIMD instruction set the kernels run with, and those this CPU supports. */
export function isa(): { active: string; supported: string[] } {
  return native().isa();
}
