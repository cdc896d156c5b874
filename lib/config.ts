/**
 * Store configuration: the types users write, the defaults, and the one
 * function that validates, normalises and freezes them. Every invalid field
 * raises {@link ConfigError} with its path.
 */
import { types } from 'node:util';
import { ConfigError } from './errors';

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
  /** Staleness control (not for `averaging`). @default { policy: 'accept' } */
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

/** Describes a received value for an error message. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object') return 'an object';
  return String(v);
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
export function checkKeys(obj: object, known: readonly string[], path: string, what: string): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const best = known.map((k) => [k, editDistance(key, k)] as const).sort((x, y) => x[1] - y[1])[0];
    const hint = best && best[1] <= 2 ? ` (did you mean '${best[0]}'?)` : ` (known: ${known.join(', ')})`;
    throw new ConfigError(path ? `${path}.${key}` : key, `${path ? `${path}.${key}` : key} is not a known option of ${what}${hint}`);
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

const positive = (x: number) => Number.isFinite(x) && x > 0;
const nonNegative = (x: number) => Number.isFinite(x) && x >= 0;
const unit = (x: number) => Number.isFinite(x) && x >= 0 && x < 1;
const count = (x: number) => Number.isSafeInteger(x) && x >= 0;

function resolveOptimizer(raw: unknown, mode: Mode): ResolvedOptimizer {
  const o = requireObject(raw ?? {}, 'optimizer');
  const kind = oneOf(o.kind, 'optimizer.kind', 'sgd', ['sgd', 'adagrad', 'rmsprop', 'adam'] as const);
  checkKeys(o, OPTIMIZER_KEYS[kind], 'optimizer', `optimizer '${kind}'`);
  const d = DEFAULTS.optimizer;
  const r: ResolvedOptimizer = {
    kind,
    lr: num(o.lr, 'optimizer.lr', kind === 'adam' ? DEFAULTS.adamLr : d.lr, positive, '> 0'),
    momentum: num(o.momentum, 'optimizer.momentum', d.momentum, unit, 'in [0, 1)'),
    nesterov: bool(o.nesterov, 'optimizer.nesterov', d.nesterov),
    weightDecay: num(o.weightDecay, 'optimizer.weightDecay', d.weightDecay, nonNegative, '>= 0'),
    decoupled: bool(o.decoupled, 'optimizer.decoupled', d.decoupled),
    beta1: num(o.beta1, 'optimizer.beta1', d.beta1, unit, 'in [0, 1)'),
    beta2: num(o.beta2, 'optimizer.beta2', d.beta2, unit, 'in [0, 1)'),
    alpha: num(o.alpha, 'optimizer.alpha', d.alpha, unit, 'in [0, 1)'),
    eps: num(o.eps, 'optimizer.eps', d.eps, positive, '> 0'),
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

function resolveTensors(raw: unknown): { resolved: ResolvedTensor[]; init: { init: string; std: number; values?: Float32Array }[] } {
  const t = requireObject(raw, 'tensors');
  const names = Object.keys(t);
  if (names.length === 0) throw new ConfigError('tensors', 'tensors must name at least one tensor');
  const resolved: ResolvedTensor[] = [];
  const init: { init: string; std: number; values?: Float32Array }[] = [];
  for (const name of names) {
    const path = `tensors.${name}`;
    if (name.includes('\0')) throw new ConfigError(path, `${path}: a tensor name cannot contain a NUL character`);
    const spec = requireObject(t[name], path);
    checkKeys(spec, TENSOR_KEYS, path, 'a tensor');
    const shape = spec.shape;
    if (!Array.isArray(shape)) throw new ConfigError(`${path}.shape`, `${path}.shape must be an array of non-negative integers, got ${describe(shape)}`);
    shape.forEach((d, i) => {
      if (!count(d)) throw new ConfigError(`${path}.shape`, `${path}.shape[${i}] must be a non-negative integer, got ${describe(d)}`);
    });
    const size = shape.reduce((a: number, b: number) => a * b, 1);
    if (size > 2 ** 32) throw new ConfigError(`${path}.shape`, `${path}.shape has ${size} elements, more than 2^32`);
    const std = num(spec.std, `${path}.std`, 0.01, nonNegative, '>= 0');
    let entry: { init: string; std: number; values?: Float32Array };
    const i = spec.init ?? 'zeros';
    if (i === 'zeros' || i === 'glorot' || i === 'normal') entry = { init: i, std };
    else if (types.isFloat32Array(i) || Array.isArray(i)) {  // a Float32Array of any realm (vm contexts, jest)
      if (i.length !== size) throw new ConfigError(`${path}.init`, `${path}.init has ${i.length} values, expected ${size} (shape [${shape.join(', ')}])`);
      const values = Float32Array.from(i as ArrayLike<number>);
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

/** @internal What the addon receives: the resolved options plus the initial values. */
export interface NativeConfig {
  resolved: ResolvedStoreOptions;
  tensorSpecs: { name: string; shape: readonly number[]; init: string; std: number; values?: Float32Array }[];
}

/** Validates and freezes store options. Throws ConfigError naming the first bad field. */
export function resolveStoreOptions(raw: unknown): NativeConfig {
  const o = requireObject(raw, 'options');
  checkKeys(o, STORE_KEYS, '', 'ParameterStore');
  if (o.tensors === undefined) throw new ConfigError('tensors', 'tensors is required');
  const mode = oneOf(o.mode, 'mode', DEFAULTS.mode, MODES);
  const optimizer = resolveOptimizer(o.optimizer, mode);
  const seed = num(o.seed, 'seed', DEFAULTS.seed, count, 'a non-negative integer');
  let staleness: ResolvedStoreOptions['staleness'] = { policy: 'accept', bound: null };
  if (o.staleness !== undefined) {
    if (mode === 'averaging')
      throw new ConfigError('staleness', "staleness does not apply to mode 'averaging': its pushes are applied together at each round");
    const s = requireObject(o.staleness, 'staleness');
    checkKeys(s, STALENESS_KEYS, 'staleness', 'staleness');
    if (s.policy === undefined) throw new ConfigError('staleness.policy', "staleness.policy is required: 'accept', 'scale' or 'reject'");
    const policy = oneOf(s.policy, 'staleness.policy', 'accept', ['accept', 'scale', 'reject'] as const);
    const bound = s.bound === undefined ? null : num(s.bound, 'staleness.bound', 0, count, 'a non-negative integer');
    if (policy === 'reject' && bound === null) throw new ConfigError('staleness.bound', "staleness.bound is required with policy 'reject'");
    staleness = { policy, bound };
  }
  const verify = bool(o.verify, 'verify', DEFAULTS.verify);
  const nonFinite = oneOf(o.nonFinite, 'nonFinite', DEFAULTS.nonFinite, ['reject', 'skip'] as const);
  if (o.syncEvery !== undefined && mode !== 'averaging')
    throw new ConfigError('syncEvery', `syncEvery applies to mode 'averaging' only, not '${mode}'`);
  const syncEvery = num(o.syncEvery, 'syncEvery', DEFAULTS.syncEvery, (x) => Number.isSafeInteger(x) && x >= 1, 'an integer >= 1');
  const { resolved: tensors, init } = resolveTensors(o.tensors);
  const resolved: ResolvedStoreOptions = Object.freeze({
    mode,
    optimizer,
    seed,
    staleness: Object.freeze(staleness),
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
