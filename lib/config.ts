/**
 * Store configuration: the types users write, the defaults, and the one
 * function that validates, normalises and freezes them. Every invalid field
 * raises {@link ConfigError} with its path.
 */
import { types } from 'node:util';
import { ConfigError } from './errors';
import type { NativeLoadOptions, NativeTensorSpec } from './native';

/** Update strategy; see the README's modes table. */
export type Mode = 'atomic' | 'locked' | 'versioned' | 'deterministic' | 'averaging' | 'hogwild';
export const MODES: readonly Mode[] = Object.freeze(['atomic', 'locked', 'versioned', 'deterministic', 'averaging', 'hogwild']);

/** Initial values of a tensor. `glorot` is uniform(±sqrt(6 / (fanIn + fanOut))), fanOut the last dimension. */
export type Init = 'zeros' | 'glorot' | 'normal' | Float32Array | readonly number[];

export interface TensorOptions {
  /** Dimensions; `[]` is a scalar. */
  readonly shape: readonly number[];
  /** @default 'zeros' */
  readonly init?: Init;
  /** Standard deviation for `init: 'normal'`. @default 0.01 */
  readonly std?: number;
}

export type OptimizerKind = 'sgd' | 'adagrad' | 'rmsprop' | 'adam';

export interface OptimizerOptions {
  /** @default 'sgd' */
  readonly kind?: OptimizerKind;
  /** Learning rate. @default 0.01 (0.001 for adam) */
  readonly lr?: number;
  /** sgd: momentum in [0, 1). @default 0 */
  readonly momentum?: number;
  /** sgd: Nesterov momentum (needs momentum > 0). @default false */
  readonly nesterov?: boolean;
  /** L2 weight decay. @default 0 */
  readonly weightDecay?: number;
  /** Decay the weights directly (AdamW) instead of adding `weightDecay * w` to the gradient. @default false */
  readonly decoupled?: boolean;
  /** adam. @default 0.9 */
  readonly beta1?: number;
  /** adam. @default 0.999 */
  readonly beta2?: number;
  /** rmsprop smoothing constant. @default 0.99 */
  readonly alpha?: number;
  /** adagrad, rmsprop, adam. @default 1e-8 */
  readonly eps?: number;
}

export type StalenessPolicy = 'accept' | 'scale' | 'reject';

export interface StalenessOptions {
  /** `accept`: apply as is; `scale`: divide the step by 1 + staleness; `reject`: refuse pushes staler than `bound`. */
  readonly policy: StalenessPolicy;
  /** Pushes with staleness above this are refused (counted in stats) under any policy. Required for `reject`. */
  readonly bound?: number;
}

export interface StoreOptions {
  /** The tensors, by name. */
  readonly tensors: Readonly<Record<string, TensorOptions>>;
  /** @default 'atomic' */
  readonly mode?: Mode;
  /** @default { kind: 'sgd', lr: 0.01 } */
  readonly optimizer?: OptimizerOptions;
  /** Seed of the initial values. @default 0 */
  readonly seed?: number;
  /** Staleness control (not for `averaging`; only `'accept'` without a bound in `deterministic`). @default { policy: 'accept' } */
  readonly staleness?: StalenessOptions;
  /** Keep a checksum in each snapshot and refuse pushes based on a snapshot modified in place. @default false */
  readonly verify?: boolean;
  /** NaN/Inf gradients: `reject` throws NonFiniteGradientError, `skip` ignores the push and counts it. @default 'reject' */
  readonly nonFinite?: 'reject' | 'skip';
  /** averaging: pushes per round; each round applies their mean once. @default 1 */
  readonly syncEvery?: number;
}

/** Resolved optimizer: every field present. */
export interface ResolvedOptimizer {
  readonly kind: OptimizerKind;
  readonly lr: number;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  readonly decoupled: boolean;
  readonly beta1: number;
  readonly beta2: number;
  readonly alpha: number;
  readonly eps: number;
}

export interface ResolvedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly size: number;
}

/** The validated, frozen configuration of a store. */
export interface ResolvedStoreOptions {
  readonly mode: Mode;
  readonly optimizer: ResolvedOptimizer;
  readonly seed: number;
  readonly staleness: { readonly policy: StalenessPolicy; readonly bound: number | null };
  readonly verify: boolean;
  readonly nonFinite: 'reject' | 'skip';
  readonly syncEvery: number;
  readonly tensors: readonly ResolvedTensor[];
}

/**
 * Elements of one tensor, at most: 2^32, as the core's kMaxTensorElements
 * (native/core/store.h; test/15.defaults checks they agree).
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 32;

/** The tensor options' defaults. */
export const TENSOR_DEFAULTS = Object.freeze({ init: 'zeros' as const, std: 0.01 });

export const DEFAULTS = Object.freeze({
  mode: 'atomic' as Mode,
  seed: 0,
  verify: false,
  nonFinite: 'reject' as const,
  syncEvery: 1,
  optimizer: Object.freeze({
    kind: 'sgd' as OptimizerKind,
    lr: 0.01,
    momentum: 0,
    nesterov: false,
    weightDecay: 0,
    decoupled: false,
    beta1: 0.9,
    beta2: 0.999,
    alpha: 0.99,
    eps: 1e-8,
  }),
  adamLr: 0.001,
});

export const OPTIMIZER_KEYS: Record<OptimizerKind, readonly string[]> = {
  sgd: ['kind', 'lr', 'momentum', 'nesterov', 'weightDecay', 'decoupled'],
  adagrad: ['kind', 'lr', 'eps', 'weightDecay', 'decoupled'],
  rmsprop: ['kind', 'lr', 'alpha', 'eps', 'weightDecay', 'decoupled'],
  adam: ['kind', 'lr', 'beta1', 'beta2', 'eps', 'weightDecay', 'decoupled'],
};
const STORE_KEYS = ['tensors', 'mode', 'optimizer', 'seed', 'staleness', 'verify', 'nonFinite', 'syncEvery'];
const TENSOR_KEYS = ['shape', 'init', 'std'];
const STALENESS_KEYS = ['policy', 'bound'];

const VIEW_NAMES: [(v: unknown) => boolean, string][] = [
  [types.isFloat32Array, 'Float32Array'],
  [types.isFloat64Array, 'Float64Array'],
  [types.isInt8Array, 'Int8Array'],
  [types.isUint8Array, 'Uint8Array'],
  [types.isUint8ClampedArray, 'Uint8ClampedArray'],
  [types.isInt16Array, 'Int16Array'],
  [types.isUint16Array, 'Uint16Array'],
  [types.isInt32Array, 'Int32Array'],
  [types.isUint32Array, 'Uint32Array'],
  [types.isBigInt64Array, 'BigInt64Array'],
  [types.isBigUint64Array, 'BigUint64Array'],
  [types.isDataView, 'DataView'],
];

/**
 * Describes a received value for an error message. It reads nothing the
 * value could fake or trap (no getters, no constructor, no toStringTag), so
 * describing hostile input cannot throw.
 */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return v.length > 80 ? `${JSON.stringify(v.slice(0, 80))}... (${v.length} characters)` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v !== 'object') return String(v);
  if (types.isProxy(v)) return 'a Proxy';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  for (const [is, name] of VIEW_NAMES) if (is(v)) return `a ${name}`;
  return 'an object';
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length];
}

/** Rejects keys not in `known`, suggesting the closest one. */
export function checkKeys(
  obj: object,
  known: readonly string[],
  path: string,
  what: string,
  error: (path: string, message: string) => Error = (p, m) => new ConfigError(p, m),
): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const best = known.map((k) => [k, editDistance(key, k)] as const).sort((x, y) => x[1] - y[1])[0];
    const hint = best && best[1] <= 2 ? ` (did you mean '${best[0]}'?)` : ` (known: ${known.join(', ')})`;
    const at = path ? `${path}.${key}` : key;
    throw error(at, `${at} is not a known option of ${what}${hint}`);
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

export function requireObject(v: unknown, path: string): Record<string, unknown> {
  if (!isPlainObject(v)) throw new ConfigError(path, `${path} must be an object, got ${describe(v)}`);
  return v;
}

export function num(v: unknown, path: string, dflt: number, check: (x: number) => boolean, rule: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !check(v)) throw new ConfigError(path, `${path} must be ${rule}, got ${describe(v)}`);
  return v;
}

export function bool(v: unknown, path: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new ConfigError(path, `${path} must be a boolean, got ${describe(v)}`);
  return v;
}

export function oneOf<T extends string>(v: unknown, path: string, dflt: T, allowed: readonly T[]): T {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v))
    throw new ConfigError(path, `${path} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(v)}`);
  return v as T;
}

// The core computes in float32: a number is checked as the float32 it will
// become, so 1e300 (Infinity there) and 1e-50 (0 there) are refused here,
// with the value the user passed, instead of reaching a check in C++ that
// can only print the converted one. Positive values must be normal floats.
const FLOAT32_MIN_NORMAL = 1.1754943508222875e-38;
const FLOAT32_MAX = 3.4028234663852886e38;
type FloatRule = 'positive' | 'nonNegative' | 'unit';
const FLOAT_RULES: Record<FloatRule, [(x: number) => boolean, string]> = {
  positive: [(x) => x > 0, '> 0'],
  nonNegative: [(x) => x >= 0, '>= 0'],
  unit: [(x) => x >= 0 && x < 1, 'in [0, 1)'],
};
/** A number checked as the float32 the core will compute with. */
function fnum(v: unknown, path: string, dflt: number, rule: FloatRule): number {
  if (v === undefined) return dflt;
  const [ok, text] = FLOAT_RULES[rule];
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new ConfigError(path, `${path} must be ${text}, got ${describe(v)}`);
  const f = Math.fround(v);
  if (Math.abs(v) > FLOAT32_MAX || (v !== 0 && Math.abs(f) < FLOAT32_MIN_NORMAL) || !ok(f))
    throw new ConfigError(path, `${path} must be ${text} as a float32 (magnitude 1.2e-38 to 3.4e38, or 0), got ${describe(v)}, which becomes ${f}`);
  return v;
}
const count = (x: number) => Number.isSafeInteger(x) && x >= 0;

/**
 * The learning rate, wherever it enters (the optimizer options, the
 * `learningRate` setter, a Trainer's `lr`): one rule, one message.
 * @internal
 */
export function checkLearningRate(v: unknown, path: string): number {
  if (v === undefined) throw new ConfigError(path, `${path} must be > 0, got undefined`);
  return fnum(v, path, NaN, 'positive');
}

// mode: the store's, where known (a load may take it from the file: the core checks the rest).
function resolveOptimizer(raw: unknown, mode: Mode | null): ResolvedOptimizer {
  const o = requireObject(raw ?? {}, 'optimizer');
  const kind = oneOf(o.kind, 'optimizer.kind', 'sgd', ['sgd', 'adagrad', 'rmsprop', 'adam'] as const);
  checkKeys(o, OPTIMIZER_KEYS[kind], 'optimizer', `optimizer '${kind}'`);
  const d = DEFAULTS.optimizer;
  const r: ResolvedOptimizer = {
    kind,
    lr: o.lr === undefined ? (kind === 'adam' ? DEFAULTS.adamLr : d.lr) : checkLearningRate(o.lr, 'optimizer.lr'),
    momentum: fnum(o.momentum, 'optimizer.momentum', d.momentum, 'unit'),
    nesterov: bool(o.nesterov, 'optimizer.nesterov', d.nesterov),
    weightDecay: fnum(o.weightDecay, 'optimizer.weightDecay', d.weightDecay, 'nonNegative'),
    decoupled: bool(o.decoupled, 'optimizer.decoupled', d.decoupled),
    beta1: fnum(o.beta1, 'optimizer.beta1', d.beta1, 'unit'),
    beta2: fnum(o.beta2, 'optimizer.beta2', d.beta2, 'unit'),
    alpha: fnum(o.alpha, 'optimizer.alpha', d.alpha, 'unit'),
    eps: fnum(o.eps, 'optimizer.eps', d.eps, 'positive'),
  };
  if (r.nesterov && r.momentum === 0) throw new ConfigError('optimizer.nesterov', 'optimizer.nesterov needs optimizer.momentum > 0');
  if (mode === 'deterministic') {
    if (r.kind !== 'sgd')
      throw new ConfigError(
        'optimizer.kind',
        `optimizer.kind '${r.kind}' is not supported in mode 'deterministic': its state depends on push order. ` +
          "Use plain 'sgd', or mode 'averaging', which applies stateful optimizers at sync points",
      );
    if (r.momentum !== 0)
      throw new ConfigError('optimizer.momentum', "optimizer.momentum is not supported in mode 'deterministic': momentum depends on push order");
    if (r.decoupled && r.weightDecay !== 0)
      throw new ConfigError('optimizer.decoupled', "optimizer.decoupled is not supported in mode 'deterministic'");
  }
  return Object.freeze(r);
}

type TensorInit = Pick<NativeTensorSpec, 'init' | 'std' | 'values'>;

function resolveTensors(raw: unknown): { resolved: ResolvedTensor[]; init: TensorInit[] } {
  const t = requireObject(raw, 'tensors');
  const names = Object.keys(t);
  if (names.length === 0) throw new ConfigError('tensors', 'tensors must name at least one tensor');
  const resolved: ResolvedTensor[] = [];
  const init: TensorInit[] = [];
  for (const name of names) {
    const path = `tensors.${name}`;
    if (name.includes('\0')) throw new ConfigError(path, `${path}: a tensor name cannot contain a NUL character`);
    const spec = requireObject(t[name], path);
    checkKeys(spec, TENSOR_KEYS, path, 'a tensor');
    const rawShape = spec.shape;
    if (!Array.isArray(rawShape)) throw new ConfigError(`${path}.shape`, `${path}.shape must be an array of non-negative integers, got ${describe(rawShape)}`);
    // Read once: a getter or Proxy could answer differently the next time.
    const shape: unknown[] = Array.from(rawShape as unknown[]);
    shape.forEach((d, i) => {
      if (typeof d !== 'number' || !count(d)) throw new ConfigError(`${path}.shape`, `${path}.shape[${i}] must be a non-negative integer, got ${describe(d)}`);
    });
    const size = (shape as number[]).reduce((a, b) => a * b, 1);
    if (size > MAX_TENSOR_ELEMENTS) throw new ConfigError(`${path}.shape`, `${path}.shape has ${size} elements, more than 2^32`);
    const std = fnum(spec.std, `${path}.std`, TENSOR_DEFAULTS.std, 'nonNegative');
    let entry: TensorInit;
    const i = spec.init ?? TENSOR_DEFAULTS.init;
    if (i === 'zeros' || i === 'glorot' || i === 'normal') entry = { init: i, std };
    else if (types.isFloat32Array(i) || Array.isArray(i)) {  // a Float32Array of any realm (vm contexts, jest)
      const values = Float32Array.from(i as ArrayLike<number>);  // read once, then checked
      if (values.length !== size) throw new ConfigError(`${path}.init`, `${path}.init has ${values.length} values, expected ${size} (shape [${shape.join(', ')}])`);
      for (let k = 0; k < values.length; k++)
        if (!Number.isFinite(values[k])) throw new ConfigError(`${path}.init`, `${path}.init[${k}] must be finite, got ${values[k]}`);
      entry = { init: 'values', std, values };
    } else {
      throw new ConfigError(`${path}.init`, `${path}.init must be 'zeros', 'glorot', 'normal', a Float32Array or an array of numbers, got ${describe(i)}`);
    }
    resolved.push(Object.freeze({ name, shape: Object.freeze([...shape] as number[]), size }));
    init.push(entry);
  }
  return { resolved, init };
}

// mode: the store's, where known (as resolveOptimizer).
function resolveStaleness(raw: unknown, mode: Mode | null): ResolvedStoreOptions['staleness'] {
  if (mode === 'averaging')
    throw new ConfigError('staleness', "staleness does not apply to mode 'averaging': its pushes are applied together at each round");
  const s = requireObject(raw, 'staleness');
  checkKeys(s, STALENESS_KEYS, 'staleness', 'staleness');
  if (s.policy === undefined) throw new ConfigError('staleness.policy', "staleness.policy is required: 'accept', 'scale' or 'reject'");
  const policy = oneOf(s.policy, 'staleness.policy', 'accept', ['accept', 'scale', 'reject'] as const);
  const bound = s.bound === undefined ? null : num(s.bound, 'staleness.bound', 0, count, 'a non-negative integer');
  if (policy === 'reject' && bound === null) throw new ConfigError('staleness.bound', "staleness.bound is required with policy 'reject'");
  // Refusing or scaling a push by its staleness would make deterministic's
  // result depend on when a push arrived, not only on the pushes.
  if (mode === 'deterministic' && (policy !== 'accept' || bound !== null))
    throw new ConfigError(
      'staleness',
      "staleness must be { policy: 'accept' } without a bound in mode 'deterministic': refusing or scaling stale pushes " +
        'would make the result depend on timing (staleness is still measured and reported)',
    );
  return Object.freeze({ policy, bound });
}

// undefined when not given.
function resolveSyncEvery(raw: unknown, mode: Mode | null): number | undefined {
  if (raw !== undefined && mode !== null && mode !== 'averaging')
    throw new ConfigError('syncEvery', `syncEvery applies to mode 'averaging' only, not '${mode}'`);
  return raw === undefined ? undefined : num(raw, 'syncEvery', DEFAULTS.syncEvery, (x) => Number.isSafeInteger(x) && x >= 1, 'an integer >= 1');
}

/** @internal What the addon receives: the resolved options plus the initial values. */
export interface NativeConfig {
  resolved: ResolvedStoreOptions;
  tensorSpecs: NativeTensorSpec[];
}

/** Validates and freezes store options. Throws ConfigError naming the first bad field. */
export function resolveStoreOptions(raw: unknown): NativeConfig {
  const o = requireObject(raw, 'options');
  checkKeys(o, STORE_KEYS, '', 'ParameterStore');
  if (o.tensors === undefined) throw new ConfigError('tensors', 'tensors is required');
  const mode = oneOf(o.mode, 'mode', DEFAULTS.mode, MODES);
  const optimizer = resolveOptimizer(o.optimizer, mode);
  const seed = num(o.seed, 'seed', DEFAULTS.seed, count, 'a non-negative integer');
  const staleness = o.staleness === undefined ? Object.freeze({ policy: 'accept' as const, bound: null }) : resolveStaleness(o.staleness, mode);
  const verify = bool(o.verify, 'verify', DEFAULTS.verify);
  const nonFinite = oneOf(o.nonFinite, 'nonFinite', DEFAULTS.nonFinite, ['reject', 'skip'] as const);
  const syncEvery = resolveSyncEvery(o.syncEvery, mode) ?? DEFAULTS.syncEvery;
  const { resolved: tensors, init } = resolveTensors(o.tensors);
  const resolved: ResolvedStoreOptions = Object.freeze({
    mode,
    optimizer,
    seed,
    staleness,
    verify,
    nonFinite,
    syncEvery,
    tensors: Object.freeze(tensors),
  });
  return {
    resolved,
    tensorSpecs: tensors.map((t, i) => ({ name: t.name, shape: t.shape, ...init[i] })),
  };
}

/**
 * Validates the options of ParameterStore.load on their own: each one given
 * is resolved, each one not given is null (the file decides; native/core/
 * checkpoint merges and checks the combination). Throws ConfigError naming
 * the first bad field.
 */
export function resolveLoadOptions(raw: unknown): NativeLoadOptions {
  const o = requireObject(raw, 'options');
  checkKeys(o, STORE_KEYS.filter((k) => k !== 'tensors'), '', 'ParameterStore.load');
  const given = <T>(v: unknown, resolve: () => T): T | null => (v === undefined ? null : resolve());
  const mode = given(o.mode, () => oneOf(o.mode, 'mode', DEFAULTS.mode, MODES));
  return {
    mode,
    optimizer: given(o.optimizer, () => resolveOptimizer(o.optimizer, mode)),
    staleness: given(o.staleness, () => resolveStaleness(o.staleness, mode)),
    nonFinite: given(o.nonFinite, () => oneOf(o.nonFinite, 'nonFinite', DEFAULTS.nonFinite, ['reject', 'skip'] as const)),
    syncEvery: resolveSyncEvery(o.syncEvery, mode) ?? null,
    seed: given(o.seed, () => num(o.seed, 'seed', DEFAULTS.seed, count, 'a non-negative integer')),
    verify: given(o.verify, () => bool(o.verify, 'verify', DEFAULTS.verify)),
  };
}
