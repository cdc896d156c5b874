import { checkKeys, checkLearningRate, isPlainObject, resolveLoadOptions, resolveStoreOptions, describe, type ResolvedStoreOptions, type ResolvedTensor, type StoreOptions, type Mode } from './config';
import { ClosedError, ConfigError, InPlaceModificationError, InvalidArgumentError, ShapeError, fromNative, guardInput } from './errors';
import { native, type NativeLoadOptions, type NativeResult, type NativeStoreConfig, type NativeStoreInstance } from './native';
import { Snapshot } from './snapshot';
import { types } from 'node:util';
import type { SaveResult } from './checkpoint';
import { checkPath } from './paths';
import { RemoteParameterStore, type ConnectOptions } from './cluster/remote';
import type { ModelDescription } from './trainer';
import { scalerFromNative, type Scaler } from './data';

/** Options of {@link ParameterStore.load}: the store options but `tensors` (they come from the file). */
export type LoadOptions = Omit<StoreOptions, 'tensors'>;

/** Gradients by tensor name; each a Float32Array of the tensor's size. */
export type Gradients = Readonly<Record<string, Float32Array>>;

const PUSH_KEYS = ['basedOn'];

export interface PushOptions {
  /**
   * The snapshot the gradient was computed from (staleness is measured from
   * its version and, with `verify: true`, its contents are checked), or just
   * that version number.
   */
  readonly basedOn?: Snapshot | number;
}

export interface PushResult {
  /** False when the push was refused by the staleness bound or skipped for a NaN/Inf. */
  readonly applied: boolean;
  /** The store's version after the push. */
  readonly version: number;
  /** `version - basedOn` when the push was made; 0 without `basedOn`. */
  readonly staleness: number;
  /** Why a push was not applied. */
  readonly reason?: 'stale' | 'nonFinite';
}

export interface StalenessBucket {
  /** Smallest staleness in the bucket. */
  readonly min: number;
  /** Largest staleness in the bucket (Infinity for the last). */
  readonly max: number;
  readonly count: number;
}

export interface StoreStats {
  readonly mode: Mode;
  readonly version: number;
  /** Pushes applied. */
  readonly pushes: number;
  /** Pushes not applied: refused as too stale plus skipped for NaN/Inf. */
  readonly rejected: number;
  readonly rejectedStale: number;
  readonly skippedNonFinite: number;
  /**
   * hogwild: overlapping writers on one stripe, each a possible lost update;
   * other modes: 0 (their writers own a stripe before they write it).
   */
  readonly conflicts: number;
  readonly snapshots: number;
  /** averaging: rounds applied; deterministic: sync() calls. */
  readonly rounds: number;
  /** averaging: pushes waiting in the open round. */
  readonly pending: number;
  readonly staleness: {
    /** Pushes that named `basedOn`. */
    readonly count: number;
    readonly mean: number;
    readonly max: number;
    /** Buckets [0], [1], [2,3], [4,7], ... , [65536, Infinity]. */
    readonly histogram: readonly StalenessBucket[];
  };
  /** Native memory held: parameters, optimizer state, versions, accumulators. */
  readonly bytes: number;
}

/** @internal A store's tensors as pushes name them (ParameterStore, RemoteParameterStore). */
export interface PushLayout {
  tensors: readonly (ResolvedTensor & { offset: number })[];
  index: Map<string, number>;
}

/** @internal A checked push: tensor indices and gradients, the basis (-1: none) and its snapshot. */
export interface PushArguments {
  indices: number[];
  arrays: Float32Array[];
  basedOn: number;
  snapshot: Snapshot | null;
}

/**
 * @internal Validates a push (the same rules for a local and a remote
 * store) and returns what it applies. Throws before anything reaches a
 * store; hostile getters and proxies become InvalidArgumentError.
 */
export function readPush(store: { layout: PushLayout; id: number; verify: boolean }, grads: Gradients, opts: PushOptions | undefined): PushArguments {
  return guardInput(() => checkPush(store, grads, opts), (m) => new InvalidArgumentError('grads', `reading the push arguments threw: ${m}`));
}

function checkPush(store: { layout: PushLayout; id: number; verify: boolean }, grads: Gradients, opts: PushOptions | undefined): PushArguments {
  const layout = store.layout;
  if (typeof grads !== 'object' || grads === null || Array.isArray(grads) || ArrayBuffer.isView(grads))
    throw new InvalidArgumentError('grads', `grads must be an object of Float32Arrays by tensor name, got ${describe(grads)}`);
  if (opts !== undefined) {
    if (!isPlainObject(opts)) throw new InvalidArgumentError('options', `push options must be an object, got ${describe(opts)}`);
    // a misspelled 'basedon' must not be ignored
    checkKeys(opts, PUSH_KEYS, 'options', 'push', (p, m) => new InvalidArgumentError(p, m));
  }
  const indices: number[] = [];
  const arrays: Float32Array[] = [];
  for (const name of Object.keys(grads)) {
    const i = layout.index.get(name);
    if (i === undefined)
      throw new InvalidArgumentError(`grads.${name}`, `grads.${name}: the store has no tensor '${name}' (it has ${layout.tensors.map((t) => t.name).join(', ')})`);
    const g = grads[name];
    // A brand check: instanceof and Symbol.toStringTag can be faked
    // (Object.create(Float32Array.prototype) is no typed array).
    if (!types.isFloat32Array(g)) throw new InvalidArgumentError(`grads.${name}`, `grads.${name} must be a Float32Array, got ${describe(g)}`);
    const t = layout.tensors[i];
    if (g.length !== t.size) throw new ShapeError(name, `grads.${name} has ${g.length} elements, expected ${t.size} (shape [${t.shape.join(', ')}])`);
    indices.push(i);
    arrays.push(g);
  }
  if (indices.length === 0) throw new InvalidArgumentError('grads', 'grads must name at least one tensor');
  let basedOn = -1;
  let snapshot: Snapshot | null = null;
  const b = opts?.basedOn;
  if (Snapshot.isSnapshot(b)) {
    if (Snapshot.storeId(b) !== store.id) throw new InvalidArgumentError('basedOn', 'basedOn is a snapshot of another store');
    if (store.verify) {
      const modified = Snapshot.modifiedTensor(b, native().checksum);
      if (modified !== null)
        throw new InPlaceModificationError(
          modified,
          `tensor '${modified}' of the snapshot at version ${b.version} was modified in place after it was taken: ` +
            'the gradient was computed on values the store never held. Compute on an unmodified snapshot, or copy it first',
        );
    }
    basedOn = b.version;
    snapshot = b;
  } else if (b !== undefined) {
    if (typeof b !== 'number' || !Number.isSafeInteger(b) || b < 0)
      throw new InvalidArgumentError('basedOn', `basedOn must be a Snapshot or a version number (a non-negative integer), got ${describe(b)}`);
    basedOn = b;
  }
  return { indices, arrays, basedOn, snapshot };
}

/** A handle to pass to a worker_thread (postMessage), for {@link ParameterStore.attach}. */
export interface StoreHandle {
  readonly kind: 'gradvault.ParameterStore';
  readonly id: number;
  readonly options: ResolvedStoreOptions;
}

type Layout = PushLayout;

// The scaler of the store a snapshot was taken of, where it had one (predict applies it).
const snapshotScalers = new WeakMap<Snapshot, Scaler>();

/** @internal The scaler the model of these parameters was trained with: a store's, or that of the store a snapshot is of. */
export function scalerOf(params: unknown): Scaler | undefined {
  if (params instanceof ParameterStore) return params.closed ? undefined : params.scaler;
  return Snapshot.isSnapshot(params) ? snapshotScalers.get(params) : undefined;
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

function layoutOf(n: NativeStoreInstance): Layout {
  const tensors = n.tensors().map((t) => Object.freeze({ name: t.name, shape: Object.freeze(t.shape), size: t.size, offset: t.offset }));
  return { tensors, index: new Map(tensors.map((t, i) => [t.name, i])) };
}

// Set by attach() and load() for the constructor call they make around a
// native store they already have (JS is single-threaded per isolate, so
// nothing can interleave).
let adopting: { native: NativeStoreInstance; options: ResolvedStoreOptions } | null = null;

/** @internal A ParameterStore around a native store the core made (a checkpoint's), its options read back from it. */
export function adoptNative(n: NativeStoreInstance): ParameterStore {
  const { mode, optimizer, seed, staleness, verify, nonFinite, syncEvery } = n.config();
  const tensors = n.tensors().map((t) => ({ name: t.name, shape: t.shape, size: t.size }));
  return adopt(n, { mode, optimizer, seed, staleness, verify, nonFinite, syncEvery, tensors });
}

function adopt(n: NativeStoreInstance, options: ResolvedStoreOptions): ParameterStore {
  adopting = { native: n, options: deepFreeze(options) };
  try {
    return new ParameterStore(undefined as never);
  } finally {
    adopting = null;
  }
}
let liveNative: (s: ParameterStore) => NativeStoreInstance;

/** @internal The native store behind a ParameterStore, for the native trainer (throws ClosedError when closed). */
export function nativeStoreOf(s: ParameterStore): NativeStoreInstance {
  return liveNative(s);
}

/**
 * The vault: named float32 tensors in native memory. JavaScript never holds a
 * reference into them: read them with {@link ParameterStore.snapshot}, change
 * them with {@link ParameterStore.push}.
 */
export class ParameterStore {
  /** The validated, frozen configuration. */
  readonly options: ResolvedStoreOptions;
  #native: NativeStoreInstance | null;
  #scaler: Scaler | undefined;
  static {
    liveNative = (s) => s.#live();
  }
  readonly #layout: Layout;
  readonly #id: number;

  constructor(options: StoreOptions) {
    if (adopting) {
      const a = adopting;
      adopting = null;
      this.options = a.options;
      this.#native = a.native;
    } else {
      const cfg = guardInput(() => resolveStoreOptions(options), (m) => new ConfigError('options', `reading the options threw: ${m}`));
      const nativeConfig: NativeStoreConfig = {
        mode: cfg.resolved.mode,
        optimizer: cfg.resolved.optimizer,
        staleness: cfg.resolved.staleness,
        nonFinite: cfg.resolved.nonFinite,
        syncEvery: cfg.resolved.syncEvery,
        seed: cfg.resolved.seed,
        verify: cfg.resolved.verify,
      };
      try {
        this.#native = new (native().NativeStore)(nativeConfig, cfg.tensorSpecs);
      } catch (e) {
        throw fromNative(e);
      }
      this.options = cfg.resolved;
    }
    this.#layout = layoutOf(this.#native);
    this.#id = this.#native.info().id;
  }

  /**
   * Opens, in this thread, a store that another thread shared with
   * {@link ParameterStore.share}: the same vault, not a copy. The vault lives
   * until every holder has closed it (or been collected).
   */
  static attach(handle: StoreHandle): ParameterStore {
    const h = guardInput(
      () => (typeof handle === 'object' && handle !== null ? { kind: handle.kind, id: handle.id } : handle),
      (m) => new InvalidArgumentError('handle', `reading the handle threw: ${m}`),
    );
    if (typeof h !== 'object' || h === null || h.kind !== 'gradvault.ParameterStore' || !Number.isSafeInteger(h.id))
      throw new InvalidArgumentError('handle', `attach expects the handle returned by store.share(), got ${describe(handle)}`);
    let n: NativeStoreInstance;
    try {
      n = new (native().NativeStore)(null, null, h.id);
    } catch (e) {
      throw fromNative(e);
    }
    // The options come from the vault's own registration (share() wrote
    // them), not from the handle: a handle is only an id.
    let options: ResolvedStoreOptions;
    try {
      options = JSON.parse(n.sharedOptions()) as ResolvedStoreOptions;
    } catch {
      n.close();
      throw new InvalidArgumentError('handle', `the shared store ${h.id} was not shared by store.share()`);
    }
    return adopt(n, options);
  }

  #live(): NativeStoreInstance {
    if (!this.#native) throw new ClosedError();
    return this.#native;
  }

  /** Update strategy. */
  get mode(): Mode {
    return this.options.mode;
  }

  /**
   * The model the store's parameters are for: recorded by the Trainer that
   * trains it (a store trained as one model refuses another: ConfigError
   * naming 'model'), saved in its checkpoints and read back by
   * {@link ParameterStore.load}. Undefined when unknown (a store never
   * trained, a file without it). Shared by every holder of the vault.
   */
  get model(): ModelDescription | undefined {
    const m = this.#live().model();
    return m === undefined ? undefined : deepFreeze(m);
  }

  /**
   * The scaler of the standardized data the model was trained on
   * ({@link Dataset.standardize}): recorded with the model by the Trainer,
   * saved in checkpoints (metadata `model`) and read back by
   * {@link ParameterStore.load}; {@link predict} applies it to raw rows.
   * Undefined when the model was trained on raw data, or is unknown.
   */
  get scaler(): Scaler | undefined {
    const n = this.#live().scaler();
    if (!n) return undefined;
    const c = this.#scaler;
    // the same numbers: the same frozen object (a snapshot records it cheaply)
    if (c && c.features === n.mean.length && c.mean.every((x, j) => x === n.mean[j]) && c.scale.every((x, j) => x === n.scale[j])) return c;
    return (this.#scaler = scalerFromNative(n));
  }

  /** Number of pushes applied so far. */
  get version(): number {
    return this.#live().version();
  }

  /** Tensor names, shapes and sizes, in order. */
  get tensors(): readonly ResolvedTensor[] {
    return this.options.tensors;
  }

  /** The learning rate pushes use from now on (a schedule may change it). */
  get learningRate(): number {
    return this.#live().info().learningRate;
  }
  set learningRate(lr: number) {
    try {
      checkLearningRate(lr, 'learningRate');  // the rule optimizer.lr follows
    } catch (e) {
      throw new InvalidArgumentError('learningRate', (e as Error).message);
    }
    this.#live().setLearningRate(lr);
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#native === null;
  }

  /** Reads every tensor into a private copy. */
  snapshot(): Snapshot {
    const n = this.#live();
    let r: { version: number; buffer: ArrayBuffer };
    try {
      r = n.snapshot();
    } catch (e) {
      throw fromNative(e);
    }
    const snap = new Snapshot(this.#id, r.version, r.buffer, this.#layout.tensors, this.options.verify ? native().checksum : null);
    const scaler = this.scaler;
    if (scaler) snapshotScalers.set(snap, scaler);
    return snap;
  }

  #args(grads: Gradients, opts: PushOptions | undefined): [number[], Float32Array[], number] {
    const p = readPush({ layout: this.#layout, id: this.#id, verify: this.options.verify }, grads, opts);
    return [p.indices, p.arrays, p.basedOn];
  }

  /**
   * Applies gradients: each tensor moves by -lr * g through the optimizer,
   * with the store's update strategy. The gradients are read during the call
   * only; reusing the arrays afterwards cannot change what was applied.
   */
  push(grads: Gradients, opts?: PushOptions): PushResult {
    const [indices, arrays, basedOn] = this.#args(grads, opts);
    try {
      return this.#live().push(indices, arrays, basedOn) as NativeResult;
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Like {@link ParameterStore.push}, applied off the JavaScript thread. The
   * gradients are copied before this returns, so the caller may reuse them
   * at once; the promise resolves after the push is applied.
   */
  async pushAsync(grads: Gradients, opts?: PushOptions): Promise<PushResult> {
    const [indices, arrays, basedOn] = this.#args(grads, opts);
    let p: Promise<NativeResult>;
    try {
      p = this.#live().pushAsync(indices, arrays, basedOn);
    } catch (e) {
      throw fromNative(e);
    }
    try {
      return await p;
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * averaging: applies the open round now. deterministic: refreshes the
   * weight-decay anchor. Other modes: nothing to do. Returns the version.
   */
  sync(): number {
    try {
      return this.#live().sync();
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Counters since creation. */
  stats(): StoreStats {
    const s = this.#live().stats();
    const histogram = s.stalenessHistogram.map((count, i) => ({
      min: i === 0 ? 0 : 2 ** (i - 1),
      max: i === 0 ? 0 : i === s.stalenessHistogram.length - 1 ? Infinity : 2 ** i - 1,
      count,
    }));
    return {
      mode: this.options.mode,
      version: s.version,
      pushes: s.pushes,
      rejected: s.rejectedStale + s.skippedNonFinite,
      rejectedStale: s.rejectedStale,
      skippedNonFinite: s.skippedNonFinite,
      conflicts: s.conflicts,
      snapshots: s.snapshots,
      rounds: s.rounds,
      pending: s.pending,
      staleness: {
        count: s.stalenessCount,
        mean: s.stalenessCount ? s.stalenessSum / s.stalenessCount : 0,
        max: s.stalenessMax,
        histogram,
      },
      bytes: s.bytes,
    };
  }

  /**
   * Writes a checkpoint (safetensors): parameters, optimizer state and
   * metadata (mode, version, step, optimizer, options), crash-safely
   * (temporary file in the same folder, fsync, rename, fsync of the folder).
   * Every tensor comes from one point in time: pushes wait for the copy
   * (`pauseSeconds`; none in versioned mode without optimizer state), not
   * for the write. Safe while a Trainer runs. The core writes the format
   * (native/core/checkpoint).
   */
  async save(file: string): Promise<SaveResult> {
    const abs = checkPath('file', file);
    const n = this.#live();
    try {
      return await n.save(abs);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Opens a checkpoint as a new store. The header is validated before any
   * tensor is read (DataFormatError with the byte offset otherwise), and so
   * is every value (finite parameters and state, non-negative second
   * moments, fixed-point values in range). Mode, optimizer, staleness,
   * nonFinite, syncEvery and verify come from `options`, else from the file;
   * the optimizer state is restored when the optimizer is the file's kind,
   * deterministic values exactly when both are deterministic, averaging's
   * open round when both are averaging. Files written by other tools load
   * too: each F32 (or F64) tensor becomes a parameter. A combination that
   * does not fit is the file's fault (DataFormatError) where the file gave
   * the setting, a ConfigError naming the option where the caller did.
   */
  static async load(file: string, options: LoadOptions = {}): Promise<ParameterStore> {
    const abs = checkPath('file', file);
    if (!isPlainObject(options) || Object.hasOwn(options, 'tensors'))
      throw new InvalidArgumentError('options', 'load options are the store options without tensors');
    const given: NativeLoadOptions = guardInput(() => resolveLoadOptions(options), (m) => new ConfigError('options', `reading the options threw: ${m}`));
    let n: NativeStoreInstance;
    try {
      n = await native().loadCheckpoint(abs, given);
    } catch (e) {
      throw fromNative(e);
    }
    return adoptNative(n);
  }

  /**
   * Connects to a cluster of shards (`gradvault server`, or
   * ParameterServer.start): a store with the same options, tensors,
   * snapshots (`pull()`) and pushes (`pushAsync()`) across the network. The
   * first worker's spec creates the tensors; a later one with another spec
   * gets ConfigError. `servers` and `key` default to GRADVAULT_SERVERS and
   * GRADVAULT_KEY (or GRADVAULT_KEY_FILE).
   */
  static connect(options: ConnectOptions): Promise<RemoteParameterStore> {
    return RemoteParameterStore.connect(options);
  }

  /** A handle for {@link ParameterStore.attach} in another worker_thread (structured-cloneable). */
  share(): StoreHandle {
    const id = this.#live().share(JSON.stringify(this.options));
    return { kind: 'gradvault.ParameterStore', id, options: this.options };
  }

  /**
   * Lets go of this holder's reference. The vault is freed when no holder
   * (this thread or another that attached) and no pending pushAsync keeps
   * it. Idempotent; any other call afterwards throws ClosedError.
   */
  close(): void {
    if (!this.#native) return;
    this.#native.close();
    this.#native = null;
  }
}
