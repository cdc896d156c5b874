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
import { Dataset, scaledData } from './data';
import { native, type NativeEvaluateResult, type NativeModelInfo, type NativeModelSpec, type NativeProgress, type NativeTrainRun, type NativeTrainResult, type Assert, type IsWire, type NativeTrainerOptions } from './native';
import { ParameterStore, nativeStoreOf, scalerOf } from './store';
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
/** {@link Trainer.options}: the options given, with every default filled in. */
export interface ResolvedTrainerOptions extends AutoTrainerOptions {
  readonly threads: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly seed: number;
}

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
  /** An epoch's end (run()'s step events, with `progressEvery`, are {@link StepProgress}). */
  readonly type: 'epoch';
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
  /**
   * The loss looks like it is blowing up: what was seen, and what to try
   * (a smaller learning rate, standardized features). The rule: the epoch's
   * mean loss is not finite, or above 4x the loss of the parameters the run
   * started from (on its first 1,000 rows), or above 2x epoch 1's, or rose
   * by more than 10% in each of the last 3 epochs. Absent when all looks
   * well. The text before the first ':' names the rule.
   */
  readonly warning?: string;
}

/**
 * Progress within an epoch: with `run(data, { progressEvery })`, yielded
 * every `progressEvery` ms between the epoch events (read from the native
 * threads' counters without stopping them).
 */
export interface StepProgress {
  readonly type: 'step';
  /** The epoch in progress, 1-based. */
  readonly epoch: number;
  readonly epochs: number;
  /** Rows trained on since the start. */
  readonly samples: number;
  /** Rows trained on in this epoch so far. */
  readonly epochSamples: number;
  /** Rows in an epoch (the data set's rows). */
  readonly epochRows: number;
  /** Mean training loss over this epoch's rows so far (NaN before the first batch). */
  readonly loss: number;
  /** Throughput since this epoch started (over the whole run in an epoch's first 0.2 s). */
  readonly samplesPerSec: number;
  /** Seconds since the start. */
  readonly seconds: number;
  /**
   * Seconds left to the run's last epoch at the run's rate so far (an upper
   * bound with `targetLoss`); NaN while unknown.
   */
  readonly eta: number;
  /** The store's learning rate now. */
  readonly lr: number;
  /** The store's version now. */
  readonly version: number;
  /**
   * The running loss looks like it is blowing up: above 4x the loss the run
   * started from (else epoch 1's), once a twentieth of the epoch's rows (at
   * most 1,000) are done; absent when all looks well.
   */
  readonly warning?: string;
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
  /**
   * Milliseconds (>= 50): run() also yields a {@link StepProgress} this
   * often between its epoch events. A remote store's trainer yields epoch
   * events only. @default none: one event per epoch
   */
  readonly progressEvery?: number;
}

/** run()'s options with `progressEvery`: epoch and step events. */
export type StepRunOptions = RunOptions & { readonly progressEvery: number };
/** run()'s options without `progressEvery`: epoch events only. */
export type EpochRunOptions = RunOptions & { readonly progressEvery?: undefined };

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
  // 32 rows a push, for the library and the CLI alike: one push per row
  // pays the store's fixed cost per row (Fashion-MNIST softmax, 2 threads,
  // one epoch at lr 0.1: 101 k samples/s at batch 1, 390 k at 32, test
  // accuracy 0.817 and 0.802); 32 keeps the steps small enough that SGD
  // still makes 1,875 of them per epoch there.
  batchSize: 32,
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

/**
 * The learning rate a model trains at unless told otherwise, for the
 * library and the CLI alike (plain SGD at batch 32; adam: 0.001 for every
 * model). logistic and svm: 2 (a sweep of 0.5-8 on the synthetic sparse
 * sets, 5 epochs: 2 was within 0.01 of the best test accuracy on both, 8
 * overshot on the 47,236-feature set to a loss above ln 2); mf: 0.5;
 * linear, softmax, mlp: 0.1 (Fashion-MNIST softmax and mlp). Features far
 * from unit scale need a smaller rate or `Dataset.standardize()`.
 */
export function defaultLearningRate(model: ModelKind, optimizer: string = 'sgd'): number {
  if (optimizer === 'adam') return 0.001;
  return model === 'logistic' || model === 'svm' ? 2 : model === 'mf' ? 0.5 : 0.1;
}

/**
 * The optimizer of a Trainer that makes its own store: one learning rate.
 * `lr` alone is the optimizer's rate too (so a checkpoint saves the rate
 * the run trained at); `optimizer.lr` alone is the trainer's; both must
 * agree; neither: the model's default rate ({@link defaultLearningRate}).
 */
function autoOptimizer(o: Record<string, unknown>, r: ResolvedTrain): Record<string, unknown> {
  const opt = o.optimizer === undefined ? {} : requireObject(o.optimizer, 'optimizer');
  const kind = opt.kind === undefined ? 'sgd' : opt.kind;
  if (o.lr !== undefined && opt.lr !== undefined && Math.fround(Number(opt.lr)) !== Math.fround(r.native.lr))
    throw new ConfigError(
      'lr',
      `lr (${String(o.lr)}) and optimizer.lr (${describe(opt.lr)}) disagree: a Trainer that makes its store trains and saves one learning rate; give one of them`,
    );
  const lr = o.lr !== undefined ? r.native.lr : opt.lr !== undefined ? opt.lr : defaultLearningRate(r.model.kind, String(kind));
  return { ...opt, lr };
}

/** A resolved model as the options of its kind (what evaluate and trainer.options take). */
function modelOptionsOf(m: ResolvedModel): ModelOptions {
  return { model: m.kind, ...(m.kind === 'mlp' ? { hidden: [...m.hidden] } : {}), ...(m.kind === 'mf' ? { rank: m.rank, biases: m.biases, l2: m.l2 } : {}) };
}

function shownOptions(o: Record<string, unknown>, r: ResolvedTrain, extra: Record<string, unknown>): Readonly<ResolvedTrainerOptions> {
  const n = r.native;
  const shown: Record<string, unknown> = {
    ...o,
    ...modelOptionsOf(r.model),
    threads: n.threads,
    epochs: n.epochs,
    batchSize: n.batchSize,
    seed: n.seed,
    ...extra,
  };
  if (o.lr !== undefined) shown.lr = n.lr;
  for (const k of Object.keys(shown)) if (shown[k] === undefined) delete shown[k];
  return Object.freeze(shown) as unknown as ResolvedTrainerOptions;
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

function checkRunOptions(opts: RunOptions | undefined): { signal?: AbortSignal; every?: number } {
  if (opts === undefined) return {};
  const o = requireObject(opts, 'options');
  checkKeys(o, ['signal', 'progressEvery'], 'options', 'run()');
  const s = o.signal;
  if (s !== undefined && !(s instanceof AbortSignal)) throw new InvalidArgumentError('signal', `signal must be an AbortSignal, got ${describe(s)}`);
  const every = o.progressEvery;
  // 2^31 - 1: the longest a Node timer waits
  if (every !== undefined && !(typeof every === 'number' && every >= 50 && every <= 2147483647))
    throw new InvalidArgumentError('progressEvery', `progressEvery must be a number of milliseconds in 50..2147483647, got ${describe(every)}`);
  return { signal: s as AbortSignal | undefined, every: every as number | undefined };
}

/** A number for a message: 4 significant digits. */
const sig4 = (x: number): string => (Number.isFinite(x) ? String(Number(x.toPrecision(4))) : String(x));

/**
 * @internal The loss-blowup rule behind the `warning` of run()'s events,
 * over one run's losses (each run starts afresh). L1 is the first epoch's
 * mean loss, Le epoch e's.
 *
 * S (`start`, where known) is the loss of the parameters the run started
 * from, on its first 1,000 rows: a run whose loss explodes within epoch 1
 * (a feature in the tens of thousands) has no earlier epoch to compare with.
 *
 * Epoch events (`history`: the mean losses of epochs 1..e, this one last),
 * the first that holds, checked in this order:
 * - `loss not finite`: Le is NaN or infinite;
 * - `loss far above its start`: S > 0 and Le > 4 × S, or e >= 2, L1 > 0
 *   and Le > 2 × L1;
 * - `loss rising`: e >= 4 and the loss rose by more than 10% in each of the
 *   last 3 epochs: L(k) > 1.1 × L(k-1) for k = e-2, e-1, e (L(e-3) > 0).
 *
 * Step events (`step`): `running loss far above its start` when the running
 * loss R (this epoch's mean so far) is > 4 × the reference, once at least
 * `min(1000, ceil(epochRows / 20))` rows of the epoch are done; the
 * reference is S where known, else L1 once epoch 1 has ended, before that the first running loss
 * seen in epoch 1 with that many rows done (`firstRunning`); a reference <= 0
 * or not finite disables the rule. A step whose R is infinite gets
 * `loss not finite`.
 *
 * The message gives the numbers seen and suggests a smaller learning rate
 * than the current one or standardised features (`Dataset.standardize()`,
 * `--standardize`). Its text before the first ':' names the rule and stays
 * the same from event to event (a consumer can show each kind once).
 */
export function lossWarning(
  lr: number,
  history: readonly number[],
  step?: { readonly epoch: number; readonly loss: number; readonly epochSamples: number; readonly epochRows: number; readonly firstRunning?: number },
  start?: number,
): string | undefined {
  const S = start !== undefined && start > 0 && Number.isFinite(start) ? start : undefined;
  const advice = `try a learning rate below ${sig4(lr)} (e.g. ${sig4(lr / 10)}) or standardised features (Dataset.standardize(), --standardize)`;
  if (step) {
    const min = Math.max(1, Math.min(1000, Math.ceil(step.epochRows / 20)));
    if (step.epochSamples < min) return undefined;
    const r = step.loss;
    if (!Number.isFinite(r) && !Number.isNaN(r)) return `loss not finite: the running loss of epoch ${step.epoch} is ${r}; ${advice}`;
    const ref = S ?? (history.length ? history[0] : step.firstRunning);
    const what = S !== undefined ? 'the loss the run started from' : history.length ? "epoch 1's mean loss" : 'the first running loss seen';
    if (ref === undefined || !(ref > 0) || !Number.isFinite(ref)) return undefined;
    if (r > 4 * ref)
      return `running loss far above its start: ${sig4(r)} after ${step.epochSamples} rows of epoch ${step.epoch}, ${sig4(r / ref)}x ${what} (${sig4(ref)}); ${advice}`;
    return undefined;
  }
  const e = history.length;
  if (e === 0) return undefined;
  const le = history[e - 1], l1 = history[0];
  if (!Number.isFinite(le)) return `loss not finite: epoch ${e}'s mean loss is ${le}; ${advice}`;
  if (S !== undefined && le > 4 * S)
    return `loss far above its start: epoch ${e}'s mean loss ${sig4(le)} is ${sig4(le / S)}x the loss the run started from (${sig4(S)}); ${advice}`;
  if (e >= 2 && l1 > 0 && le > 2 * l1)
    return `loss far above its start: epoch ${e}'s mean loss ${sig4(le)} is ${sig4(le / l1)}x epoch 1's (${sig4(l1)}); ${advice}`;
  if (e >= 4) {
    const last = history.slice(e - 4);
    if (last[0] > 0 && last.every((l, i) => i === 0 || l > 1.1 * last[i - 1]))
      return `loss rising: up more than 10% in each of the last 3 epochs (${last.map(sig4).join(' → ')}); ${advice}`;
  }
  return undefined;
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
  /**
   * The options as the run uses them: the ones given, with the defaults
   * filled in (`threads`, `epochs`, `batchSize`, `seed`, `lr` where it is
   * known: a remote store's is the cluster's, the model's options, and a
   * Trainer that makes its store: its `optimizer`).
   */
  readonly options: Readonly<ResolvedTrainerOptions>;
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
        this.options = shownOptions(o, this.#resolved, { lr: a.closed ? undefined : a.options.optimizer.lr });
      } else if (a instanceof RemoteParameterStore) {
        const o = requireObject(b, 'options');
        checkKeys(o, REMOTE_KEYS, '', 'Trainer of a remote store (mode and optimizer are the cluster\'s)');
        this.#resolved = resolveTrain(o);
        const syncEvery = num(o.syncEvery, 'syncEvery', REMOTE_SYNC_EVERY, intIn(1, 1e9), 'an integer >= 1');
        this.#remote = { store: a, syncEvery };
        this.options = shownOptions(o, this.#resolved, { syncEvery });
      } else {
        if (!isPlainObject(a)) throw new InvalidArgumentError('store', `Trainer expects (store, options) or (options), got ${describe(a)}`);
        checkKeys(a, AUTO_KEYS, '', 'Trainer');
        this.#resolved = resolveTrain(a);
        const { mode, staleness, nonFinite, syncEvery, initSeed } = a as AutoTrainerOptions;
        const optimizer = autoOptimizer(a, this.#resolved);
        const auto: Record<string, unknown> = { mode, optimizer, staleness, nonFinite, syncEvery, seed: initSeed ?? (a as AutoTrainerOptions).seed };
        for (const k of Object.keys(auto)) if (auto[k] === undefined) delete auto[k];
        this.#auto = auto as Omit<StoreOptions, 'tensors'>;
        // the store's options are checked now (its tensors come from the data later)
        resolveStoreOptions({ ...this.#auto, tensors: { probe: { shape: [1] } } });
        this.options = shownOptions(a, this.#resolved, { optimizer, lr: optimizer.lr as number });
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
   * With `progressEvery` (ms) it also yields {@link StepProgress} events
   * within epochs (tell them apart by `type`: 'epoch' or 'step').
   */
  run(data: Dataset, options: StepRunOptions): AsyncGenerator<TrainProgress | StepProgress, TrainResult, undefined>;
  run(data: Dataset, options?: EpochRunOptions): AsyncGenerator<TrainProgress, TrainResult, undefined>;
  run(data: Dataset, options?: RunOptions): AsyncGenerator<TrainProgress | StepProgress, TrainResult, undefined>;
  async *run(data: Dataset, options?: RunOptions): AsyncGenerator<TrainProgress | StepProgress, TrainResult, undefined> {
    const d = checkData(data);
    const { signal, every } = guardInput(() => checkRunOptions(options), (m) => new InvalidArgumentError('options', `reading the run options threw: ${m}`));
    if (this.#running) throw new InvalidArgumentError('trainer', 'this trainer is already running; wait for it or use another Trainer');
    if (signal?.aborted) throw new AbortError('training was aborted before it started', undefined, signal.reason);
    this.#running = true;
    try {
      const r = this.#remote;
      // a remote store's run: epoch events only (its replica's steps would not be the cluster's)
      if (r) return yield* trainRemote(r.store, { syncEvery: r.syncEvery, lr: this.#resolved.native.lr, signal }, (replica, stop) => this.#runOn(replica, d, stop, undefined) as AsyncGenerator<TrainProgress, TrainResult, undefined>);
      return yield* this.#runOn(this.#storeFor(d), d, signal, every);
    } finally {
      this.#running = false;
    }
  }

  /** The loss of the parameters the run starts from on the first 1,000 rows (lossWarning's S); undefined where it cannot be had. */
  #startLoss(store: ParameterStore, d: Dataset): number | undefined {
    if (d.rows === 0) return undefined;
    try {
      return evaluate(store, modelOptionsOf(this.#resolved.model), d.rows > 1000 ? d.slice(0, 1000) : d).loss;
    } catch {
      return undefined;  // the run itself reports what is wrong (a store without the model's tensors, ...)
    }
  }

  async *#runOn(store: ParameterStore, d: Dataset, signal: AbortSignal | undefined, every: number | undefined): AsyncGenerator<TrainProgress | StepProgress, TrainResult, undefined> {
    const queue: TrainProgress[] = [];
    let wake: (() => void) | null = null;
    let settled = false;
    let outcome: { ok: true; value: TrainResult } | { ok: false; error: unknown } | null = null;
    let run: NativeTrainRun;
    const losses: number[] = [];  // this run's epoch losses, for lossWarning
    let firstRunning: number | undefined;
    const start = this.#startLoss(store, d);
    try {
      run = native().train(nativeStoreOf(store), d.handle, modelNative(this.#resolved.model), this.#resolved.native, (p: NativeProgress) => {
        losses.push(p.loss);
        const warning = lossWarning(p.lr, losses, undefined, start);
        queue.push(Object.freeze({ type: 'epoch' as const, ...p, ...(warning ? { warning } : {}) }));
        wake?.();
      });
    } catch (e) {
      throw fromNative(e);
    }
    // progressEvery: a flag the timer raises and the loop below turns into a
    // step event (none pile up while the consumer is slow); cleared when the
    // run settles and on every way out of this generator
    let timer: ReturnType<typeof setInterval> | undefined;
    let stepDue = false;
    if (every !== undefined) {
      timer = setInterval(() => {
        stepDue = true;
        wake?.();
      }, every);
      timer.unref();
    }
    const stopTimer = () => {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    };
    const step = (): StepProgress | undefined => {
      const l = run.poll();
      // not started, ended, or an epoch whose end event is still on its way
      if (!l.started || l.finished || l.epoch !== losses.length + 1) return undefined;
      const overall = l.seconds > 0 ? l.samples / l.seconds : 0;
      const rate = l.epochSeconds >= 0.2 && l.epochSamples > 0 ? l.epochSamples / l.epochSeconds : overall;
      const left = Math.max(0, l.epochs * d.rows - l.samples);
      const eta = overall > 0 ? left / overall : NaN;
      const rows = d.rows;
      if (firstRunning === undefined && l.epoch === 1 && l.epochSamples >= Math.max(1, Math.min(1000, Math.ceil(rows / 20))) && Number.isFinite(l.loss))
        firstRunning = l.loss;
      const warning = lossWarning(l.lr, losses, { epoch: l.epoch, loss: l.loss, epochSamples: l.epochSamples, epochRows: rows, firstRunning }, start);
      return Object.freeze({
        type: 'step' as const,
        epoch: l.epoch,
        epochs: l.epochs,
        samples: l.samples,
        epochSamples: l.epochSamples,
        epochRows: rows,
        loss: l.loss,
        samplesPerSec: rate,
        seconds: l.seconds,
        eta,
        lr: l.lr,
        version: l.version,
        ...(warning ? { warning } : {}),
      });
    };
    run.done.then(
      (value) => {
        outcome = { ok: true, value: Object.freeze(value) };
      },
      (error) => {
        outcome = { ok: false, error };
      },
    ).finally(() => {
      settled = true;
      stopTimer();
      wake?.();
    });
    const onAbort = () => run.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (settled) break;
        if (stepDue) {
          stepDue = false;
          const s = step();
          if (s) {
            yield s;
            continue;
          }
        }
        await new Promise<void>((r) => (wake = r));
        wake = null;
      }
      while (queue.length) yield queue.shift()!;
      const out = outcome!;
      if (!out.ok) throw fromNative(out.error);
      if (out.value.reason === 'aborted') throw new AbortError('training was aborted', out.value, signal?.reason);
      return out.value;
    } finally {
      stopTimer();
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
type _ProgressIsWire = Assert<IsWire<Omit<TrainProgress, 'cluster' | 'type' | 'warning'>, NativeProgress>>;
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
  // rows of a model trained on standardized data are standardized with its scaler first, as predict does
  const d = scaledData(checkData(data), scalerOf(params));
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
