/**
 * (About 500 lines: the options, their resolution and the run loop of one
 * trainer; a remote store's syncs are in cluster/train.ts.)
 *
 * The native trainer: built-in models trained on native threads, every
 * update pushed through a {@link ParameterStore}'s strategy.
 */
import { availableParallelism } from 'node:os';
import {
  checkKeys,
  checkLearningRate,
  describe,
  isPlainObject,
  num,
  oneOf,
  requireObject,
  bool,
  resolveStoreOptions,
  type Mode,
  type StoreOptions,
  type OptimizerOptions,
  type StalenessOptions,
  type TensorOptions,
} from './config';
import { AbortError, ConfigError, GradvaultError, InvalidArgumentError, fromNative, guardInput } from './errors';
import { Dataset } from './data';
import { native, type NativeEvaluateResult, type NativeModelInfo, type NativeModelSpec, type NativeProgress, type NativeTrainRun, type NativeTrainResult, type Assert, type IsWire, type NativeTrainerOptions } from './native';
import { ParameterStore, nativeStoreOf } from './store';
import { RemoteParameterStore } from './cluster/remote';
import { trainRemote } from './cluster/train';
import { Snapshot } from './snapshot';

export type ModelKind = 'linear' | 'logistic' | 'softmax' | 'svm' | 'mlp' | 'mf';
export const MODELS: readonly ModelKind[] = Object.freeze(['linear', 'logistic', 'softmax', 'svm', 'mlp', 'mf']);

/** A built-in model and its shape options. */
export interface ModelOptions {
  readonly model: ModelKind;
  /** mlp: hidden layer widths (ReLU). @default [128] */
  readonly hidden?: readonly number[];
  /** mf: factor rank. @default 10 */
  readonly rank?: number;
  /** mf: user and item biases `bu`, `bi`. @default true */
  readonly biases?: boolean;
  /** mf: L2 penalty on the factor rows each rating touches. @default 0 */
  readonly l2?: number;
}

/**
 * What a store's parameters are for (`store.model`, a checkpoint's metadata
 * `model`): the built-in model a Trainer trained on it, with the options of
 * its kind and the shape of the data it was made for. Only the fields of its
 * kind are present: `hidden` (mlp); `rank`, `biases`, `l2` (mf, `l2` the
 * latest run's); `features` (all but mf); `classes` (softmax, mlp); `users`,
 * `items` (mf). It can be passed wherever a model is taken (`evaluate`,
 * `predict`; its `model` to `exportOnnx`); the data shape is then ignored:
 * the tensors' shapes decide.
 */
export interface ModelDescription extends ModelOptions {
  readonly features?: number;
  readonly classes?: number;
  readonly users?: number;
  readonly items?: number;
}

export type Schedule =
  | 'constant'
  | 'step'
  | 'inverse-sqrt'
  | { readonly kind: 'constant' }
  /** lr * gamma^floor(epoch / every) */
  | { readonly kind: 'step'; readonly every?: number; readonly gamma?: number }
  /** lr / sqrt(1 + t / scale), t the batches pushed so far */
  | { readonly kind: 'inverse-sqrt'; readonly scale?: number };

export interface TrainerOptions extends ModelOptions {
  /** Native threads. @default os.availableParallelism() */
  readonly threads?: number;
  /** @default 1 */
  readonly epochs?: number;
  /** Rows per pushed gradient (the mean over the batch). @default 1 */
  readonly batchSize?: number;
  /** Shuffling seed (each thread shuffles its share of rows every epoch). @default 0 */
  readonly seed?: number;
  /** Base learning rate of the schedule. @default the store's current `learningRate` */
  readonly lr?: number;
  /** @default 'constant' */
  readonly schedule?: Schedule;
  /** Stale-synchronous bound: no thread gets more than this many batches ahead of the slowest. @default unbounded */
  readonly maxAhead?: number;
  /** Stop after the first epoch whose mean training loss is <= this. */
  readonly targetLoss?: number;
}

/** Options of a Trainer of a cluster's store (`new Trainer(await ParameterStore.connect(...), { model, ... })`). */
export interface RemoteTrainerOptions extends TrainerOptions {
  /**
   * Batches the threads train on the local replica between syncs with the
   * cluster (each sync pushes the replica's progress and pulls the
   * cluster's parameters, off the training threads). @default 32
   */
  readonly syncEvery?: number;
}

/** Options of a Trainer that creates its own store (`new Trainer({ model, ... })`). */
export interface AutoTrainerOptions extends TrainerOptions {
  readonly mode?: Mode;
  readonly optimizer?: OptimizerOptions;
  readonly staleness?: StalenessOptions;
  readonly nonFinite?: 'reject' | 'skip';
  readonly syncEvery?: number;
  /** Seed of the initial values (and of shuffling unless `seed` is given). */
  readonly initSeed?: number;
}

export interface TrainProgress {
  /** The epoch just finished, 1-based. */
  readonly epoch: number;
  readonly epochs: number;
  /** Rows trained on since the start. */
  readonly samples: number;
  readonly epochSamples: number;
  /** Mean training loss over the epoch (each batch on the parameters it read). */
  readonly loss: number;
  /** Seconds since the start. */
  readonly seconds: number;
  readonly epochSeconds: number;
  /** This epoch's throughput. */
  readonly samplesPerSec: number;
  /** Learning rate at the end of the epoch. */
  readonly lr: number;
  /** The store's version. */
  readonly version: number;
  /** Pushes of this epoch: staleness (versions between a batch's read and its push), pushes refused. */
  readonly staleness: { readonly mean: number; readonly max: number; readonly rejected: number; readonly skipped: number };
  /** hogwild: overlapping writes this epoch (possible lost updates); 0 in every other mode. */
  readonly conflicts: number;
  /** A remote store's trainer: its syncs with the cluster so far (absent for a local store). */
  readonly cluster?: ClusterProgress;
}

/** How a remote trainer's replica keeps up with the cluster (TrainProgress.cluster). */
export interface ClusterProgress {
  /** Syncs completed: each pushed the replica's progress and pulled the cluster's parameters. */
  readonly syncs: number;
  /** The cluster's version (summed over its shards) as last heard. */
  readonly version: number;
  /** Per sync: the cluster versions other workers added between the pull a push was based on and the push. */
  readonly staleness: { readonly mean: number; readonly max: number };
}

export interface TrainResult {
  /** Epochs completed. */
  readonly epochs: number;
  readonly samples: number;
  readonly seconds: number;
  readonly samplesPerSec: number;
  /** The last completed epoch's mean training loss. */
  readonly loss: number;
  readonly reason: 'completed' | 'target-loss' | 'aborted';
  /** A remote store's trainer: its syncs with the cluster, the last one included (absent for a local store). */
  readonly cluster?: ClusterProgress;
}

export interface RunOptions {
  /** Stops the threads at their next batch; run() and fit() then reject with AbortError. */
  readonly signal?: AbortSignal;
}

interface ResolvedModel {
  readonly kind: ModelKind;
  readonly hidden: readonly number[];
  readonly rank: number;
  readonly biases: boolean;
  readonly l2: number;
}

const MODEL_KEYS = ['model', 'hidden', 'rank', 'biases', 'l2'];
/** The data shape of a ModelDescription: allowed in a model argument, and ignored there. */
const SHAPE_KEYS = ['features', 'classes', 'users', 'items'];
const TRAIN_KEYS = [...MODEL_KEYS, 'threads', 'epochs', 'batchSize', 'seed', 'lr', 'schedule', 'maxAhead', 'targetLoss'];
const AUTO_KEYS = [...TRAIN_KEYS, 'mode', 'optimizer', 'staleness', 'nonFinite', 'syncEvery', 'initSeed'];
const REMOTE_KEYS = [...TRAIN_KEYS, 'syncEvery'];
/**
 * A remote trainer's batches between syncs by default: a sync moves the
 * whole model twice (push, pull), so on a small machine frequent syncs take
 * cores from training (bench/cluster_train.js: W2 on 2 cores, 2 workers,
 * 122 k samples/s at 8, 120 k at 32, 133 k at 128 asynchronous; 59 k,
 * 110 k, 137 k synchronous), while rare ones let replicas drift apart.
 */
export const REMOTE_SYNC_EVERY = 32;

const intIn = (lo: number, hi: number) => (x: number) => Number.isSafeInteger(x) && x >= lo && x <= hi;

function resolveModel(o: Record<string, unknown>, path = ''): ResolvedModel {
  const p = (k: string) => (path ? `${path}.${k}` : k);
  if (o.model === undefined) throw new ConfigError(p('model'), `${p('model')} is required: one of ${MODELS.map((m) => `'${m}'`).join(', ')}`);
  const kind = oneOf(o.model, p('model'), 'softmax', MODELS);
  let hidden: readonly number[] = TRAINER_DEFAULTS.hidden;
  if (o.hidden !== undefined) {
    if (!Array.isArray(o.hidden) || o.hidden.length === 0)
      throw new ConfigError(p('hidden'), `${p('hidden')} must be a non-empty array of layer widths, got ${describe(o.hidden)}`);
    hidden = o.hidden.map((w, i) => num(w, `${p('hidden')}[${i}]`, 0, intIn(1, 65536), 'an integer in 1..65536'));
  }
  if (kind !== 'mlp' && o.hidden !== undefined) throw new ConfigError(p('hidden'), `${p('hidden')} applies to model 'mlp' only`);
  for (const k of ['rank', 'biases', 'l2'])
    if (kind !== 'mf' && o[k] !== undefined) throw new ConfigError(p(k), `${p(k)} applies to model 'mf' only`);
  return Object.freeze({
    kind,
    hidden: Object.freeze(hidden),
    rank: num(o.rank, p('rank'), TRAINER_DEFAULTS.rank, intIn(1, 4096), 'an integer in 1..4096'),
    biases: bool(o.biases, p('biases'), TRAINER_DEFAULTS.biases),
    l2: num(o.l2, p('l2'), TRAINER_DEFAULTS.l2, (x) => Number.isFinite(x) && x >= 0 && Number.isFinite(Math.fround(x)), 'a float32 >= 0'),
  });
}

interface ResolvedTrain {
  readonly model: ResolvedModel;
  readonly native: NativeTrainerOptions;
}

/**
 * @internal Defaults of the trainer and model options where the core's
 * structs have one too (test/15.defaults checks they agree); threads
 * defaults to the machine's parallelism here, 1 in the core.
 */
export const TRAINER_DEFAULTS = Object.freeze({
  epochs: 1,
  batchSize: 1,
  seed: 0,
  lr: 0,
  stepEvery: 1,
  gamma: 0.5,
  scale: 1000,
  maxAhead: -1,
  hidden: Object.freeze([128]),
  rank: 10,
  biases: true,
  l2: 0,
});

function resolveTrain(o: Record<string, unknown>): ResolvedTrain {
  const model = resolveModel(o);
  const D = TRAINER_DEFAULTS;
  const threads = num(o.threads, 'threads', Math.max(1, availableParallelism()), intIn(1, 1024), 'an integer in 1..1024');
  const epochs = num(o.epochs, 'epochs', D.epochs, intIn(1, 1e9), 'an integer >= 1');
  const batchSize = num(o.batchSize, 'batchSize', D.batchSize, intIn(1, 65536), 'an integer in 1..65536');
  const seed = num(o.seed, 'seed', D.seed, intIn(0, Number.MAX_SAFE_INTEGER), 'a non-negative integer');
  const lr = o.lr === undefined ? D.lr : checkLearningRate(o.lr, 'lr');
  const maxAhead = num(o.maxAhead, 'maxAhead', D.maxAhead, intIn(0, 1e12), 'a non-negative integer');
  // NaN: no target (as the core's TrainerConfig)
  const targetLoss = o.targetLoss === undefined ? NaN : num(o.targetLoss, 'targetLoss', 0, Number.isFinite, 'a finite number');
  const s = o.schedule ?? 'constant';
  const sched = typeof s === 'string' ? { kind: s } : requireObject(s, 'schedule');
  const kind = oneOf(sched.kind, 'schedule.kind', 'constant', ['constant', 'step', 'inverse-sqrt'] as const);
  if (typeof s === 'string' && s !== kind) throw new ConfigError('schedule', `schedule must be one of 'constant', 'step', 'inverse-sqrt', got ${describe(s)}`);
  checkKeys(sched, kind === 'step' ? ['kind', 'every', 'gamma'] : kind === 'inverse-sqrt' ? ['kind', 'scale'] : ['kind'], 'schedule', `schedule '${kind}'`);
  const native: NativeTrainerOptions = {
    threads,
    epochs,
    batchSize,
    seed,
    lr,
    maxAhead,
    targetLoss,
    schedule: kind,
    stepEvery: num(sched.every, 'schedule.every', D.stepEvery, intIn(1, 1e9), 'an integer >= 1'),
    gamma: num(sched.gamma, 'schedule.gamma', D.gamma, (x) => Number.isFinite(x) && x > 0, '> 0'),
    scale: num(sched.scale, 'schedule.scale', D.scale, (x) => Number.isFinite(x) && x > 0, '> 0'),
  };
  return { model, native };
}

/** @internal A description of a model (its kind and the options of its kind) as text: "mlp (hidden [128])". */
export function describeModel(m: ModelDescription): string {
  const o: string[] = [];
  if (m.hidden) o.push(`hidden [${m.hidden.join(', ')}]`);
  if (m.rank !== undefined) o.push(`rank ${m.rank}`);
  if (m.biases !== undefined) o.push(`biases ${m.biases}`);
  for (const k of ['features', 'classes', 'users', 'items'] as const) if (m[k] !== undefined) o.push(`${k} ${m[k]}`);
  return o.length ? `${m.model} (${o.join(', ')})` : m.model;
}

/**
 * A store that records its model is trained as that model only: another
 * kind, hidden widths, rank or biases is a ConfigError naming 'model' (the
 * data shape is checked by the core when the run starts).
 */
function checkRecorded(recorded: ModelDescription | undefined, m: ResolvedModel): void {
  if (!recorded) return;
  const same =
    recorded.model === m.kind &&
    (m.kind !== 'mlp' || String(recorded.hidden) === String(m.hidden)) &&
    (m.kind !== 'mf' || (recorded.rank === m.rank && recorded.biases === m.biases));
  if (!same) {
    const mine = describeModel({ model: m.kind, ...(m.kind === 'mlp' ? { hidden: m.hidden } : {}), ...(m.kind === 'mf' ? { rank: m.rank, biases: m.biases } : {}) });
    throw new ConfigError('model', `the store holds the parameters of model ${describeModel(recorded)}, not ${mine}: train it as its own model, or use another store`);
  }
}

function modelNative(m: ResolvedModel): NativeModelSpec {
  return { kind: m.kind, hidden: m.hidden, rank: m.rank, biases: m.biases, l2: m.l2 };
}

function checkData(data: unknown): Dataset {
  if (!(data instanceof Dataset))
    throw new InvalidArgumentError('data', `data must be a Dataset (from loadIdx, loadLibsvm, loadCsv or synthetic), got ${describe(data)}`);
  return data;
}

function checkSignal(opts: RunOptions | undefined): AbortSignal | undefined {
  if (opts === undefined) return undefined;
  const o = requireObject(opts, 'options');
  checkKeys(o, ['signal'], 'options', 'run()');
  const s = o.signal;
  if (s !== undefined && !(s instanceof AbortSignal)) throw new InvalidArgumentError('signal', `signal must be an AbortSignal, got ${describe(s)}`);
  return s as AbortSignal | undefined;
}

/**
 * Trains a built-in model on native threads. Each thread reads a snapshot,
 * computes its batch's gradient privately with SIMD kernels and pushes it
 * through the store, based on that snapshot (staleness is measured and the
 * store's staleness policy applies).
 *
 * `new Trainer(store, { model: 'softmax', threads: 4 })` trains an existing
 * store (it must hold the model's tensors: `W`, `b` for softmax);
 * `new Trainer({ model: 'mlp', hidden: [128], mode, optimizer })` creates
 * `trainer.store` from the first data set's shape;
 * `new Trainer(remoteStore, { model, threads, syncEvery })` trains a
 * cluster's store through a local replica (lib/cluster/train.ts).
 */
export class Trainer<S extends ParameterStore | RemoteParameterStore = ParameterStore> {
  /** The validated options. */
  readonly options: Readonly<TrainerOptions>;
  #store: ParameterStore | undefined;
  readonly #remote: { store: RemoteParameterStore; syncEvery: number } | undefined;
  readonly #resolved: ResolvedTrain;
  readonly #auto: Omit<StoreOptions, 'tensors'> | undefined;
  #running = false;

  constructor(store: S, options: S extends RemoteParameterStore ? RemoteTrainerOptions : TrainerOptions);
  constructor(options: AutoTrainerOptions);
  constructor(a: S | AutoTrainerOptions, b?: TrainerOptions | RemoteTrainerOptions) {
    try {
      if (a instanceof ParameterStore) {
        const o = requireObject(b, 'options');
        checkKeys(o, TRAIN_KEYS, '', 'Trainer (the store was given: mode and optimizer are the store\'s)');
        this.#resolved = resolveTrain(o);
        checkRecorded(a.closed ? undefined : a.model, this.#resolved.model);  // a closed store fails at run()
        this.#store = a;
        this.options = Object.freeze({ ...(o as unknown as TrainerOptions) });
      } else if (a instanceof RemoteParameterStore) {
        const o = requireObject(b, 'options');
        checkKeys(o, REMOTE_KEYS, '', 'Trainer of a remote store (mode and optimizer are the cluster\'s)');
        this.#resolved = resolveTrain(o);
        const syncEvery = num(o.syncEvery, 'syncEvery', REMOTE_SYNC_EVERY, intIn(1, 1e9), 'an integer >= 1');
        this.#remote = { store: a, syncEvery };
        this.options = Object.freeze({ ...(o as unknown as RemoteTrainerOptions) });
      } else {
        if (!isPlainObject(a)) throw new InvalidArgumentError('store', `Trainer expects (store, options) or (options), got ${describe(a)}`);
        checkKeys(a, AUTO_KEYS, '', 'Trainer');
        this.#resolved = resolveTrain(a);
        const { mode, optimizer, staleness, nonFinite, syncEvery, initSeed } = a as AutoTrainerOptions;
        const auto: Record<string, unknown> = { mode, optimizer, staleness, nonFinite, syncEvery, seed: initSeed ?? (a as AutoTrainerOptions).seed };
        for (const k of Object.keys(auto)) if (auto[k] === undefined) delete auto[k];
        this.#auto = auto as Omit<StoreOptions, 'tensors'>;
        // the store's options are checked now (its tensors come from the data later)
        resolveStoreOptions({ ...this.#auto, tensors: { probe: { shape: [1] } } });
        this.options = Object.freeze({ ...(a as TrainerOptions) });
      }
    } catch (e) {
      // a throwing getter or a revoked Proxy in the options: a typed error
      if (e instanceof GradvaultError) throw e;
      throw new ConfigError('options', `reading the Trainer options threw: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** The store trained: the one given (a cluster's for a remote trainer); for an auto Trainer, undefined until the first run. */
  get store(): S | undefined {
    return (this.#remote ? this.#remote.store : this.#store) as S | undefined;
  }

  /** Whether a run is in progress. */
  get running(): boolean {
    return this.#running;
  }

  #storeFor(data: Dataset): ParameterStore {
    if (this.#store) return this.#store;
    this.#store = new ParameterStore({ ...this.#auto, tensors: tensorsOf(this.#resolved.model, data) });
    return this.#store;
  }

  /**
   * Trains on `data` and yields progress after every epoch. Breaking out of
   * the loop stops the threads; an aborted signal rejects with AbortError.
   */
  async *run(data: Dataset, options?: RunOptions): AsyncGenerator<TrainProgress, TrainResult, undefined> {
    const d = checkData(data);
    const signal = guardInput(() => checkSignal(options), (m) => new InvalidArgumentError('options', `reading the run options threw: ${m}`));
    if (this.#running) throw new InvalidArgumentError('trainer', 'this trainer is already running; wait for it or use another Trainer');
    if (signal?.aborted) throw new AbortError('training was aborted before it started', undefined, signal.reason);
    this.#running = true;
    try {
      const r = this.#remote;
      if (r) return yield* trainRemote(r.store, { syncEvery: r.syncEvery, lr: this.#resolved.native.lr, signal }, (replica, stop) => this.#runOn(replica, d, stop));
      return yield* this.#runOn(this.#storeFor(d), d, signal);
    } finally {
      this.#running = false;
    }
  }

  async *#runOn(store: ParameterStore, d: Dataset, signal: AbortSignal | undefined): AsyncGenerator<TrainProgress, TrainResult, undefined> {
    const queue: TrainProgress[] = [];
    let wake: (() => void) | null = null;
    let settled = false;
    let outcome: { ok: true; value: TrainResult } | { ok: false; error: unknown } | null = null;
    let run: NativeTrainRun;
    try {
      run = native().train(nativeStoreOf(store), d.handle, modelNative(this.#resolved.model), this.#resolved.native, (p: NativeProgress) => {
        queue.push(Object.freeze(p));
        wake?.();
      });
    } catch (e) {
      throw fromNative(e);
    }
    run.done.then(
      (value) => {
        outcome = { ok: true, value: Object.freeze(value) };
      },
      (error) => {
        outcome = { ok: false, error };
      },
    ).finally(() => {
      settled = true;
      wake?.();
    });
    const onAbort = () => run.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (settled) break;
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
      while (queue.length) yield queue.shift()!;
      const out = outcome!;
      if (!out.ok) throw fromNative(out.error);
      if (out.value.reason === 'aborted') throw new AbortError('training was aborted', out.value, signal?.reason);
      return out.value;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!settled) {
        // the consumer left the loop early: stop the threads and wait for them
        run.cancel();
        await run.done.catch(() => undefined);
      }
    }
  }

  /** The same run as {@link run}, resolving to its result. */
  async fit(data: Dataset, options?: RunOptions): Promise<TrainResult> {
    const it = this.run(data, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }
}

function tensorsOf(model: ResolvedModel, data: Dataset): Record<string, { shape: number[]; init: 'zeros' | 'glorot' | 'normal'; std: number }> {
  let specs: ReturnType<ReturnType<typeof native>['modelTensors']>;
  try {
    specs = native().modelTensors(modelNative(model), data.handle);
  } catch (e) {
    throw fromNative(e);
  }
  const tensors: Record<string, { shape: number[]; init: 'zeros' | 'glorot' | 'normal'; std: number }> = {};
  for (const t of specs) tensors[t.name] = { shape: t.shape, init: t.init, std: t.std };
  return tensors;
}

/**
 * The tensors a built-in model needs for a data set (names, shapes and
 * initialisation, as `StoreOptions.tensors` takes them): for a store made
 * before training, such as a cluster's
 * (`ParameterStore.connect({ tensors: modelTensors({ model: 'mlp' }, train), ... })`).
 */
export function modelTensors(model: ModelOptions, data: Dataset): Record<string, TensorOptions> {
  const m = guardInput(
    () => {
      const o = requireObject(model, 'model') as Record<string, unknown>;
      checkKeys(o, MODEL_KEYS, '', 'modelTensors');
      return resolveModel(o);
    },
    (msg) => new ConfigError('model', `reading the model options threw: ${msg}`),
  );
  return tensorsOf(m, checkData(data));
}

export interface EvaluateResult {
  readonly rows: number;
  /** Mean loss per row (squared error / 2 for linear and mf). */
  readonly loss: number;
  /** Classifiers: the fraction of rows predicted right. */
  readonly accuracy?: number;
  /** linear and mf: root mean squared error. */
  readonly rmse?: number;
}

// The public results are the wire types (lib/native.ts) as the addon builds
// them: a field added, removed or retyped on one side only fails to compile.
type _ProgressIsWire = Assert<IsWire<Omit<TrainProgress, 'cluster'>, NativeProgress>>;
type _ResultIsWire = Assert<IsWire<Omit<TrainResult, 'cluster'>, NativeTrainResult>>;
type _EvaluateIsWire = Assert<IsWire<EvaluateResult, NativeEvaluateResult>>;
type _ModelIsWire = Assert<IsWire<ModelDescription, NativeModelInfo>>;

/**
 * Scores a model's parameters on a data set: `evaluate(store.snapshot(),
 * 'softmax', test)`. The parameters are found by name (the README's tensor
 * names) and their shapes give the model's; pass a store to use a fresh
 * snapshot of it.
 */
export function evaluate(
  params: Snapshot | ParameterStore,
  model: ModelKind | ModelOptions,
  data: Dataset,
): EvaluateResult {
  const d = checkData(data);
  const m = modelArg(model, 'evaluate()');
  return withTensors(params, 'evaluate', (names, shapes, arrays) => Object.freeze(native().evaluate(names, shapes, arrays, m, d.handle)));
}

/** @internal A model argument (a kind or its options) for the addon. */
export function modelArg(model: unknown, what: string): NativeModelSpec {
  const m = guardInput(() => {
    if (typeof model === 'object' && model !== null) checkKeys(model, [...MODEL_KEYS, ...SHAPE_KEYS], 'model', what);
    return typeof model === 'string' ? resolveModel({ model }, 'model') : resolveModel(requireObject(model, 'model'), 'model');
  }, (msg) => new ConfigError('model', `reading the model options threw: ${msg}`));
  return modelNative(m);
}

/**
 * @internal Calls f with the tensors of a snapshot, or of a snapshot of a
 * store taken and released around the call; native errors become typed.
 */
export function withTensors<T>(
  params: unknown,
  what: string,
  f: (names: string[], shapes: number[][], arrays: Float32Array[]) => T,
): T {
  let snap: Snapshot;
  let own = false;
  if (params instanceof ParameterStore) {
    snap = params.snapshot();
    own = true;
  } else if (Snapshot.isSnapshot(params)) {
    snap = params;
  } else {
    throw new InvalidArgumentError('params', `${what} expects a Snapshot or a ParameterStore, got ${describe(params)}`);
  }
  try {
    const names = snap.names as string[];
    return f(names, names.map((n) => snap.shape(n) as number[]), names.map((n) => snap.get(n)));
  } catch (e) {
    throw fromNative(e);
  } finally {
    if (own) snap.release();
  }
}
