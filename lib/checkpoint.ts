/**
 * Checkpoints: safetensors files (DESIGN.md §5) holding the parameters under
 * their own names, the optimizer state as `optimizer.<slot>.<tensor>`
 * (PyTorch's slot names), deterministic mode's exact values as
 * `fixed.<tensor>` (I64), and metadata (format, mode, version, step,
 * optimizer, tensors). Files from other writers load too: every F32 or F64
 * tensor becomes a parameter.
 */
import { OPTIMIZER_KEYS, MODES, type Mode, type OptimizerOptions, type ResolvedOptimizer } from './config';
import { types } from 'node:util';
import { DataFormatError } from './errors';

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
  readonly data: Float32Array | BigInt64Array | null;
}

export interface ParsedCheckpoint {
  readonly params: { name: string; shape: number[]; data: Float32Array }[];
  readonly mode?: Mode;
  readonly optimizer?: OptimizerOptions;
  readonly version: number;
  readonly step: number;
  readonly state: Map<string, Float32Array>;
  readonly fixed: Map<string, BigInt64Array>;
  readonly ours: boolean;
}

/** Interprets a read file; every inconsistency is a DataFormatError naming the file. */
export function interpret(file: string, raw: { metadata: Record<string, string>; tensors: RawTensor[] }): ParsedCheckpoint {
  const bad = (msg: string) => new DataFormatError(file, `${file}: ${msg}`, {});
  // A NaN or infinity (a flipped exponent bit, say) would poison every later
  // step: refused here, as the store refuses a non-finite gradient.
  const finite = (name: string, d: Float32Array) => {
    for (let i = 0; i < d.length; i++)
      if (!Number.isFinite(d[i])) throw bad(`tensor '${name}' holds a non-finite value (${d[i]}) at index ${i}`);
  };
  const meta = raw.metadata;
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
    names = raw.tensors.filter((t) => !t.name.startsWith('optimizer.') && !t.name.startsWith('fixed.')).map((t) => t.name);
  }
  if (names.length === 0) throw bad('holds no tensors');
  const params = names.map((n) => {
    const t = byName.get(n);
    if (!t) throw bad(`metadata names tensor '${n}', which the file does not hold`);
    if (!types.isFloat32Array(t.data)) throw bad(`tensor '${n}' has dtype ${t.dtype}: parameters must be F32 (or F64, converted)`);
    finite(n, t.data);
    return { name: n, shape: t.shape, data: t.data as Float32Array };
  });
  const int = (key: string) => {
    const v = meta[key];
    if (v === undefined) return 0;
    if (!/^\d{1,15}$/.test(v)) throw bad(`metadata "${key}" must be a non-negative integer, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  let mode: Mode | undefined;
  if (meta.mode !== undefined) {
    if (!(MODES as readonly string[]).includes(meta.mode)) throw bad(`metadata "mode" is not a mode: ${JSON.stringify(meta.mode)}`);
    mode = meta.mode as Mode;
  }
  let optimizer: OptimizerOptions | undefined;
  if (meta.optimizer !== undefined) {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(meta.optimizer);
    } catch {
      throw bad('metadata "optimizer" is not JSON');
    }
    const kind = o?.kind as keyof typeof OPTIMIZER_KEYS;
    if (typeof o !== 'object' || o === null || !(kind in OPTIMIZER_KEYS)) throw bad('metadata "optimizer" has no known kind');
    optimizer = Object.fromEntries(Object.entries(o).filter(([k]) => OPTIMIZER_KEYS[kind].includes(k))) as unknown as OptimizerOptions;
  }
  const state = new Map<string, Float32Array>();
  const fixed = new Map<string, BigInt64Array>();
  for (const t of raw.tensors) {
    if (t.name.startsWith('optimizer.') && types.isFloat32Array(t.data)) {
      finite(t.name, t.data);
      state.set(t.name, t.data);
    }
    if (t.name.startsWith('fixed.') && types.isBigInt64Array(t.data)) fixed.set(t.name, t.data);
  }
  return { params, mode, optimizer, version: int('version'), step: int('step'), state, fixed, ours };
}
