/**
 * Checkpoints: safetensors files (README "Checkpoints") holding the parameters under
 * their own names, the optimizer state as `optimizer.<slot>.<tensor>`
 * (PyTorch's slot names), deterministic mode's exact values as
 * `fixed.<tensor>` (I64), and metadata (format, mode, version, step,
 * optimizer, tensors). Files from other writers load too: every F32 or F64
 * tensor becomes a parameter.
 */
import { OPTIMIZER_KEYS, MODES, type Mode, type OptimizerOptions, type ResolvedOptimizer } from './config';
import { types } from 'node:util';
import { DataFormatError } from './errors';
import type { Assert, IsWire, NativeRawTensor, NativeSaveResult } from './native';

export const FORMAT = 'gradvault/1';

/** What `store.save()` resolves to. */
export interface SaveResult {
  readonly file: string;
  /** Bytes of tensor data written. */
  readonly bytes: number;
  /** The store's version in the file. */
  readonly version: number;
  /** How long pushes were held back for the copy (0 in versioned mode without optimizer state). */
  readonly pauseSeconds: number;
  /** The whole save, write and fsyncs included. */
  readonly seconds: number;
}

/** The optimizer's state slots, in order (as the native writer names them). */
export function slotNames(o: Pick<ResolvedOptimizer, 'kind' | 'momentum'>): string[] {
  switch (o.kind) {
    case 'sgd':
      return o.momentum !== 0 ? ['momentum_buffer'] : [];
    case 'adagrad':
      return ['sum'];
    case 'rmsprop':
      return ['square_avg'];
    case 'adam':
      return ['exp_avg', 'exp_avg_sq'];
  }
}

export interface RawTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  /** Byte offset of the tensor's data in the file. */
  readonly offset: number;
  readonly data: Float32Array | BigInt64Array | null;
}

// As the addon builds them (lib/native.ts): a change on one side only fails to compile.
type _SaveIsWire = Assert<IsWire<SaveResult, NativeSaveResult>>;
type _RawTensorIsWire = Assert<IsWire<RawTensor, NativeRawTensor>>;

/** The store options a checkpoint remembers beside its mode and optimizer. */
export interface SavedOptions {
  readonly staleness?: { policy: string; bound?: number };
  readonly nonFinite?: string;
  readonly syncEvery?: number;
  readonly verify?: boolean;
}

export interface ParsedCheckpoint {
  readonly params: { name: string; shape: number[]; data: Float32Array }[];
  readonly mode?: Mode;
  readonly optimizer?: OptimizerOptions;
  readonly options: SavedOptions;
  readonly version: number;
  readonly step: number;
  readonly state: Map<string, Float32Array>;
  readonly fixed: Map<string, BigInt64Array>;
  /** averaging's open round: sums by tensor name, and its push count. */
  readonly round: Map<string, BigInt64Array>;
  readonly pending: number;
  readonly ours: boolean;
}

// Optimizer state slots whose values the math takes the square root of: a
// negative one would make the first step NaN (issue 10: a file could poison
// the store this way).
const NON_NEGATIVE_SLOTS = new Set(['sum', 'square_avg', 'exp_avg_sq']);
const KNOWN_SLOTS = new Set(['momentum_buffer', 'sum', 'square_avg', 'exp_avg', 'exp_avg_sq']);
const SAVED_OPTION_KEYS = ['staleness', 'nonFinite', 'syncEvery', 'verify'];

/**
 * Interprets a read file; every inconsistency is a DataFormatError naming the
 * file (and the tensor and byte offset where there is one). Everything read
 * from the file is data: lookups use own keys only.
 */
export function interpret(file: string, raw: { metadata: Record<string, string>; tensors: RawTensor[] }, fixedLimit: bigint): ParsedCheckpoint {
  const bad = (msg: string, t?: RawTensor, index?: number, width = 4) =>
    // without a tensor the fault is in the JSON header, which starts at byte 8
    new DataFormatError(file, `${file}: ${msg}`, t ? { tensor: t.name, offset: t.offset + (index ?? 0) * width } : { offset: 8 });
  const at = (t: RawTensor, i: number, width = 4) => `at index ${i} (byte offset ${t.offset + i * width})`;
  // A NaN or infinity (a flipped exponent bit, say) would poison every later
  // step: refused here, as the store refuses a non-finite gradient.
  const finite = (t: RawTensor, d: Float32Array, nonNegative = false) => {
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) throw bad(`tensor '${t.name}' holds a non-finite value (${d[i]}) ${at(t, i)}`, t, i);
      if (nonNegative && d[i] < 0)
        throw bad(`tensor '${t.name}' holds a negative value (${d[i]}) ${at(t, i)}: this optimizer state is a sum of squares`, t, i);
    }
  };
  const inRange = (t: RawTensor, d: BigInt64Array) => {
    for (let i = 0; i < d.length; i++)
      if (d[i] > fixedLimit || d[i] < -fixedLimit)
        throw bad(`tensor '${t.name}' holds a fixed-point value (${d[i]}) outside the range ±2^62 ${at(t, i, 8)}`, t, i, 8);
  };
  const meta: Record<string, string> = Object.assign(Object.create(null), raw.metadata);
  const ours = meta.format === FORMAT;
  const byName = new Map(raw.tensors.map((t) => [t.name, t]));
  let names: string[];
  if (ours) {
    try {
      names = JSON.parse(meta.tensors ?? '');
    } catch {
      throw bad('metadata "tensors" is not a JSON array of names');
    }
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) throw bad('metadata "tensors" is not a JSON array of names');
  } else {
    names = raw.tensors.filter((t) => !/^(optimizer|fixed|round)\./.test(t.name)).map((t) => t.name);
  }
  if (names.length === 0) throw bad('holds no tensors');
  const params = names.map((n) => {
    const t = byName.get(n);
    if (!t) throw bad(`metadata names tensor '${n}', which the file does not hold`);
    if (!types.isFloat32Array(t.data)) throw bad(`tensor '${n}' has dtype ${t.dtype}: parameters must be F32 (or F64, converted)`, t);
    finite(t, t.data);
    return { name: n, shape: t.shape, data: t.data as Float32Array };
  });
  const sizeOf = new Map(params.map((p) => [p.name, p.data.length]));
  const int = (key: string) => {
    const v = meta[key];
    if (v === undefined) return 0;
    if (!/^\d{1,15}$/.test(v)) throw bad(`metadata "${key}" must be a non-negative integer, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const json = (key: string): Record<string, unknown> | undefined => {
    if (meta[key] === undefined) return undefined;
    let o: unknown;
    try {
      o = JSON.parse(meta[key]);
    } catch {
      throw bad(`metadata "${key}" is not JSON`);
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad(`metadata "${key}" is not a JSON object`);
    return o as Record<string, unknown>;
  };
  let mode: Mode | undefined;
  if (meta.mode !== undefined) {
    if (!(MODES as readonly string[]).includes(meta.mode)) throw bad(`metadata "mode" is not a mode: ${JSON.stringify(meta.mode)}`);
    mode = meta.mode as Mode;
  }
  let optimizer: OptimizerOptions | undefined;
  const o = json('optimizer');
  if (o) {
    const kind = o.kind;
    if (typeof kind !== 'string' || !Object.hasOwn(OPTIMIZER_KEYS, kind))
      throw bad(`metadata "optimizer" has no known kind (got ${typeof kind === 'string' ? JSON.stringify(kind) : typeof kind})`);
    const keys = OPTIMIZER_KEYS[kind as keyof typeof OPTIMIZER_KEYS];
    optimizer = Object.fromEntries(Object.entries(o).filter(([k]) => keys.includes(k))) as unknown as OptimizerOptions;
  }
  const saved = json('options') ?? {};
  const options = Object.fromEntries(Object.entries(saved).filter(([k]) => SAVED_OPTION_KEYS.includes(k))) as SavedOptions;
  const state = new Map<string, Float32Array>();
  const fixed = new Map<string, BigInt64Array>();
  const round = new Map<string, BigInt64Array>();
  // The parameter a state, fixed or round tensor belongs to must exist and
  // have the same size: a wrong size is the file's fault, named here.
  const owner = (t: RawTensor, param: string) => {
    const n = sizeOf.get(param);
    if (n === undefined) return false;  // not ours (another writer's naming): ignored, as before
    if ((t.data?.length ?? -1) !== n) throw bad(`tensor '${t.name}' has ${t.data?.length ?? 0} values, but '${param}' has ${n}`, t);
    return true;
  };
  for (const t of raw.tensors) {
    if (t.name.startsWith('optimizer.') && types.isFloat32Array(t.data)) {
      const dot = t.name.indexOf('.', 'optimizer.'.length);
      const slot = dot < 0 ? '' : t.name.slice('optimizer.'.length, dot);
      if (!KNOWN_SLOTS.has(slot) || !owner(t, t.name.slice(dot + 1))) continue;
      finite(t, t.data, NON_NEGATIVE_SLOTS.has(slot));
      state.set(t.name, t.data);
    }
    if (t.name.startsWith('fixed.') && types.isBigInt64Array(t.data) && owner(t, t.name.slice('fixed.'.length))) {
      inRange(t, t.data);
      fixed.set(t.name, t.data);
    }
    if (t.name.startsWith('round.') && types.isBigInt64Array(t.data) && owner(t, t.name.slice('round.'.length))) {
      inRange(t, t.data);
      round.set(t.name.slice('round.'.length), t.data);
    }
  }
  const pending = int('pending');
  if (pending > 0 && mode !== 'averaging') throw bad(`metadata "pending" (${pending}) is for mode 'averaging', not '${mode}'`);
  return { params, mode, optimizer, options, version: int('version'), step: int('step'), state, fixed, round, pending, ours };
}
