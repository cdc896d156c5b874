/** Loads the addon: build/Release, then prebuilds/<platform>-<arch> (node-gyp-build). */
import * as path from 'node:path';
import { NativeLoadError } from './errors';

// node-gyp-build ships no types.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild: (dir: string) => unknown = require('node-gyp-build');

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
  push(indices: number[], arrays: Float32Array[], basedOn: number): NativeResult;
  pushAsync(indices: number[], arrays: Float32Array[], basedOn: number): Promise<NativeResult>;
  snapshot(): { version: number; buffer: ArrayBuffer };
  version(): number;
  stats(): NativeStats;
  sync(): number;
  share(optionsJson: string): number;
  sharedOptions(): string;
  close(): void;
  tensors(): NativeTensor[];
  info(): { mode: string; id: number; paddedFloats: number; learningRate: number };
  setLearningRate(lr: number): void;
  save(file: string, meta: Record<string, string>): Promise<import('./checkpoint').SaveResult>;
  restore(o: {
    version: number;
    step: number;
    state: { slot: number; name: string; data: Float32Array }[];
    fixed: { name: string; data: BigInt64Array }[];
    round: { name: string; data: BigInt64Array }[];
    pending: number;
  }): void;
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
}

/** @internal */
/** @internal A native training run. */
export interface NativeTrainRun {
  done: Promise<import('./trainer').TrainResult>;
  cancel(): void;
}

export interface NativeAddon {
  NativeStore: new (config: object | null, tensors: object[] | null, sharedId?: number) => NativeStoreInstance;
  checksum(data: Float32Array): bigint;
  release(buffer: ArrayBuffer): void;
  /** Q32.32 values beyond ± this are out of range (kernels/fixed). */
  readonly fixedLimit: bigint;
  isa(): { active: string; supported: string[] };
  loadIdx(images: string, labels: string, scale: boolean): Promise<NativeDatasetInstance>;
  loadLibsvm(file: string, options: { indexBase: number; features: number }): Promise<NativeDatasetInstance>;
  loadCsv(
    file: string,
    options: { labelIndex: number; labelName: string; header: number; delimiter: string },
  ): Promise<NativeDatasetInstance>;
  synthetic(kind: string, options: object): NativeDatasetInstance;
  readCheckpoint(file: string): Promise<{ metadata: Record<string, string>; tensors: import('./checkpoint').RawTensor[] }>;
  modelTensors(model: object, data: NativeDatasetInstance): { name: string; shape: number[]; init: 'zeros' | 'glorot' | 'normal'; std: number }[];
  evaluate(
    names: string[],
    shapes: number[][],
    arrays: Float32Array[],
    model: object,
    data: NativeDatasetInstance,
  ): import('./trainer').EvaluateResult;
  train(
    store: NativeStoreInstance,
    data: NativeDatasetInstance,
    model: object,
    options: object,
    onProgress: (p: import('./trainer').TrainProgress) => void,
  ): NativeTrainRun;
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
