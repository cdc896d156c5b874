/**
 * ONNX export: a built-in model's parameters as an ONNX graph that
 * onnxruntime (Node, web, mobile, Python) runs with the same predictions as
 * `predict`. The tensors are checked as the model's (names, ranks, shapes
 * that fit together), the graph is built from standard operators (opset
 * {@link ONNX_OPSET}), protobufjs encodes it (lib/onnx/schema.ts) and the
 * file is written crash-safely (a temporary file beside it, fsync, rename,
 * fsync of the folder), as checkpoints are.
 *
 * Graphs (x a row of F features; N the batch, symbolic):
 * - linear: `values` = x·w + b
 * - logistic: `probabilities` = sigmoid(x·w + b) (P(y = +1)), `labels` ±1, `classes` 0/1
 * - svm: `scores` = x·w + b, `labels` ±1 (+1 where the score is > 0), `classes` 0/1
 * - softmax: `probabilities` = softmax(x W + b) [N, C], `classes` = argmax
 * - mlp: hidden layers relu(a Wl + bl), the last layer's logits as softmax
 * - mf: `ratings` = U[users]·V[items] (+ bu[users] + bi[items]) from int64 `users`, `items`
 *
 * A model trained on standardized data (`store.scaler`) takes raw rows, as
 * `predict` does: the scaler is folded into the graph before the model,
 * x = Cast<float>((Cast<double>(input) - mean) / scale) with mean and scale
 * float64 initializers (`gv/scaler_mean`, `gv/scaler_scale`), which is
 * Dataset.standardize's arithmetic, so the answers are predict's.
 */
import { randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe } from '../config';
import { ConfigError, FileError, GradvaultError, InvalidArgumentError, ShapeError } from '../errors';
import { checkPath } from '../paths';
import { Snapshot } from '../snapshot';
import { ParameterStore, scalerOf, type StoreHandle } from '../store';
import type { Scaler } from '../data';
import { RemoteParameterStore } from '../cluster/remote';
import { MODELS, type ModelKind } from '../trainer';
import { AttributeType, DataType, onnxType } from './schema';

/** The ONNX operator set the graphs use (ONNX 1.12; long supported by onnxruntime). */
export const ONNX_OPSET = 17;
/** The IR version that goes with {@link ONNX_OPSET} (ONNX 1.12). */
export const ONNX_IR_VERSION = 8;
/** protobuf messages are limited to 2 GiB; larger models would need ONNX external data, which is not written. */
const MAX_BYTES = 2 ** 31 - 2 ** 20;

/** An input or output of an exported graph: its name, element type and shape (`'N'` the batch). */
export interface OnnxValueInfo {
  readonly name: string;
  readonly type: 'float32' | 'int64';
  readonly shape: readonly (number | 'N')[];
}

/** What {@link exportOnnx} resolves to. */
export interface OnnxExportResult {
  /** The absolute path written. */
  readonly file: string;
  /** The file's size. */
  readonly bytes: number;
  readonly model: ModelKind;
  /** The ONNX operator set version (default domain). */
  readonly opset: number;
  /** The store's version the parameters were read at. */
  readonly version: number;
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
}

/** Where the parameters come from: a snapshot, a store (snapshotted now), a cluster's store (pulled), or a shared store's handle. */
export type OnnxSource = Snapshot | ParameterStore | RemoteParameterStore | StoreHandle;

let version: string | undefined;
/** The package's version (lib/onnx and dist/onnx are both two folders below package.json). */
function gradvaultVersion(): string {
  if (version === undefined) {
    try {
      version = String(JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version);
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

// ---------------------------------------------------------------------------
// The model's tensors, checked

interface Param {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A model's parameters, checked to fit together, and the sizes they give. */
interface Checked {
  readonly kind: ModelKind;
  readonly params: Map<string, Param>;
  readonly features: number;
  readonly classes: number;
  readonly hidden: readonly number[];
  readonly users: number;
  readonly items: number;
  readonly rank: number;
  readonly biases: boolean;
}

const dims = (s: readonly number[]) => `[${s.join(', ')}]`;

function checkModel(snap: Snapshot, kind: ModelKind): Checked {
  const shapes = new Map(snap.names.map((n) => [n, snap.shape(n)]));
  const listing = () => {
    const all = snap.names.map((n) => `${n} ${dims(shapes.get(n)!)}`);
    return all.length === 0 ? 'no tensors' : all.length <= 8 ? all.join(', ') : `${all.slice(0, 8).join(', ')} and ${all.length - 8} more`;
  };
  const params = new Map<string, Param>();
  // A tensor of `rank` dimensions named in `want` ([features, classes]); its shape.
  const need = (name: string, want: readonly string[]): readonly number[] => {
    const s = shapes.get(name);
    if (s === undefined)
      throw new ShapeError(name, `model '${kind}' needs a tensor '${name}' of shape [${want.join(', ')}]; the source has ${listing()}`);
    if (s.length !== want.length)
      throw new ShapeError(name, `model '${kind}': tensor '${name}' must have shape [${want.join(', ')}], got ${dims(s)}`);
    if (s.some((d) => d < 1)) throw new ShapeError(name, `model '${kind}': tensor '${name}' has an empty dimension: ${dims(s)}`);
    params.set(name, { name, shape: s, data: snap.get(name) });
    return s;
  };
  // A tensor whose shape is known from the others: `why` says where it comes from.
  const exact = (name: string, want: readonly number[], why: string) => {
    const s = need(name, want.map(String));
    if (s.some((d, i) => d !== want[i]))
      throw new ShapeError(name, `model '${kind}': tensor '${name}' must have shape ${dims(want)} (${why}), got ${dims(s)}`);
  };
  const base = { kind, params, features: 0, classes: 0, hidden: [] as number[], users: 0, items: 0, rank: 0, biases: false };
  switch (kind) {
    case 'linear':
    case 'logistic':
    case 'svm': {
      const [F] = need('w', ['features']);
      exact('b', [1], 'one bias');
      return { ...base, features: F, classes: kind === 'linear' ? 0 : 2 };
    }
    case 'softmax': {
      const [F, C] = need('W', ['features', 'classes']);
      exact('b', [C], `W is ${dims([F, C])}`);
      return { ...base, features: F, classes: C };
    }
    case 'mlp': {
      let L = 0;
      while (shapes.has(`W${L + 1}`)) L++;
      if (L === 0) need('W1', ['features', 'hidden1']);
      if (L === 1)
        throw new ShapeError('W2', `model 'mlp' needs tensors W1, b1, ..., Wn, bn with n >= 2 (one hidden layer at least); the source has ${listing()}`);
      const widths: number[] = [];
      for (let l = 1; l <= L; l++) {
        const W = `W${l}`;
        const s = need(W, [l === 1 ? 'features' : `hidden${l - 1}`, l === L ? 'classes' : `hidden${l}`]);
        if (l === 1) widths.push(s[0]);
        else if (s[0] !== widths[l - 1])
          throw new ShapeError(W, `model 'mlp': tensor '${W}' must have shape ${dims([widths[l - 1], s[1]])} (W${l - 1} has ${widths[l - 1]} columns), got ${dims(s)}`);
        widths.push(s[1]);
        exact(`b${l}`, [s[1]], `${W} is ${dims(s)}`);
      }
      return { ...base, features: widths[0], classes: widths[L], hidden: widths.slice(1, L) };
    }
    case 'mf': {
      const [users, rank] = need('U', ['users', 'rank']);
      const items = need('V', ['items', 'rank'])[0];
      exact('V', [items, rank], `the rank of U ${dims([users, rank])}`);
      const hasBu = shapes.has('bu'), hasBi = shapes.has('bi');
      if (hasBu !== hasBi) {
        const [has, lacks] = hasBu ? ['bu', 'bi'] : ['bi', 'bu'];
        throw new ShapeError(lacks, `model 'mf' takes both biases bu [users] and bi [items] or neither; the source has '${has}' but no '${lacks}'`);
      }
      if (hasBu) {
        exact('bu', [users], `U is ${dims([users, rank])}`);
        exact('bi', [items], `V is ${dims([items, rank])}`);
      }
      return { ...base, users, items, rank, biases: hasBu };
    }
  }
}

// ---------------------------------------------------------------------------
// The graph

const littleEndian = os.endianness() === 'LE';

/** raw_data is little-endian IEEE 754 whatever the host. */
function rawFloats(a: Float32Array): Uint8Array {
  if (littleEndian) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.length * 4);
  const v = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) v.setFloat32(i * 4, a[i], true);
  return out;
}

function rawFloat64s(xs: readonly number[]): Uint8Array {
  const out = new Uint8Array(xs.length * 8);
  const v = new DataView(out.buffer);
  xs.forEach((x, i) => v.setFloat64(i * 8, x, true));
  return out;
}

// TensorProto.DOUBLE (schema.ts's DataType lists the types the graphs had before scalers)
const DOUBLE = 11;

function rawInt64s(xs: readonly number[]): Uint8Array {
  const out = new Uint8Array(xs.length * 8);
  const v = new DataView(out.buffer);
  xs.forEach((x, i) => v.setBigInt64(i * 8, BigInt(x), true));
  return out;
}

type Attr = number | readonly number[] | { readonly f: number };

class GraphBuilder {
  readonly nodes: object[] = [];
  readonly initializers: object[] = [];
  #count = 0;

  floats(name: string, shape: readonly number[], data: Float32Array): string {
    this.initializers.push({ name, dims: [...shape], data_type: DataType.FLOAT, raw_data: rawFloats(data) });
    return name;
  }

  doubles(name: string, shape: readonly number[], data: readonly number[]): string {
    this.initializers.push({ name, dims: [...shape], data_type: DOUBLE, raw_data: rawFloat64s(data) });
    return name;
  }

  int64s(name: string, shape: readonly number[], data: readonly number[]): string {
    this.initializers.push({ name, dims: [...shape], data_type: DataType.INT64, raw_data: rawInt64s(data) });
    return name;
  }

  node(op: string, inputs: readonly string[], output: string, attrs: Readonly<Record<string, Attr>> = {}): string {
    const attribute = Object.entries(attrs).map(([name, v]) =>
      typeof v === 'number'
        ? { name, type: AttributeType.INT, i: v }
        : Array.isArray(v)
          ? { name, type: AttributeType.INTS, ints: [...v] }
          : { name, type: AttributeType.FLOAT, f: (v as { f: number }).f },
    );
    this.nodes.push({ name: `${op}_${++this.#count}`, op_type: op, domain: '', input: [...inputs], output: [output], attribute });
    return output;
  }
}

const N = 'N' as const;
const f32 = (name: string, ...shape: (number | 'N')[]): OnnxValueInfo => ({ name, type: 'float32', shape });
const i64 = (name: string, ...shape: (number | 'N')[]): OnnxValueInfo => ({ name, type: 'int64', shape });

interface Built {
  readonly inputs: OnnxValueInfo[];
  readonly outputs: OnnxValueInfo[];
  readonly g: GraphBuilder;
}

function buildGraph(m: Checked, scaler?: Scaler): Built {
  const g = new GraphBuilder();
  // the rows the model reads: the input, or the input standardized (in double, as Dataset.standardize)
  let x = 'input';
  if (scaler) {
    const F = scaler.features;
    const wide = g.node('Cast', ['input'], 'gv/input_f64', { to: DOUBLE });
    const centred = g.node('Sub', [wide, g.doubles('gv/scaler_mean', [F], scaler.mean)], 'gv/centred');
    const scaled = g.node('Div', [centred, g.doubles('gv/scaler_scale', [F], scaler.scale)], 'gv/scaled_f64');
    x = g.node('Cast', [scaled], 'gv/x', { to: DataType.FLOAT });
  }
  const p = (name: string) => {
    const t = m.params.get(name)!;
    return g.floats(name, t.shape, t.data);
  };
  const F = m.features;
  const C = m.classes;
  // Intermediate values are named gv/..., apart from the tensors' and the outputs' names.
  const classifier = (logits: string): OnnxValueInfo[] => {
    g.node('Softmax', [logits], 'probabilities', { axis: 1 });
    g.node('ArgMax', [logits], 'classes', { axis: 1, keepdims: 0 });
    return [f32('probabilities', N, C), i64('classes', N)];
  };
  switch (m.kind) {
    case 'linear':
    case 'logistic':
    case 'svm': {
      const xw = g.node('MatMul', [x, p('w')], 'gv/xw');
      const inputs = [f32('input', N, F)];
      if (m.kind === 'linear') {
        g.node('Add', [xw, p('b')], 'values');
        return { g, inputs, outputs: [f32('values', N)] };
      }
      const z = g.node('Add', [xw, p('b')], m.kind === 'svm' ? 'scores' : 'gv/z');
      const outputs: OnnxValueInfo[] = [];
      if (m.kind === 'logistic') {
        g.node('Sigmoid', [z], 'probabilities');
        outputs.push(f32('probabilities', N));
      } else {
        outputs.push(f32('scores', N));
      }
      // +1 where z > 0 (as evaluate counts a right answer), -1 elsewhere
      const positive = g.node('Greater', [z, g.floats('gv/zero', [], new Float32Array([0]))], 'gv/positive');
      g.node('Where', [positive, g.floats('gv/plus_one', [], new Float32Array([1])), g.floats('gv/minus_one', [], new Float32Array([-1]))], 'labels');
      g.node('Cast', [positive], 'classes', { to: DataType.INT64 });
      outputs.push(f32('labels', N), i64('classes', N));
      return { g, inputs, outputs };
    }
    case 'softmax': {
      const logits = g.node('Gemm', [x, p('W'), p('b')], 'gv/logits');
      return { g, inputs: [f32('input', N, F)], outputs: classifier(logits) };
    }
    case 'mlp': {
      const L = m.hidden.length + 1;
      let a = x;
      for (let l = 1; l < L; l++) a = g.node('Relu', [g.node('Gemm', [a, p(`W${l}`), p(`b${l}`)], `gv/z${l}`)], `gv/h${l}`);
      const logits = g.node('Gemm', [a, p(`W${L}`), p(`b${L}`)], 'gv/logits');
      return { g, inputs: [f32('input', N, F)], outputs: classifier(logits) };
    }
    case 'mf': {
      const u = g.node('Gather', [p('U'), 'users'], 'gv/u', { axis: 0 });
      const v = g.node('Gather', [p('V'), 'items'], 'gv/v', { axis: 0 });
      const uv = g.node('Mul', [u, v], 'gv/uv');
      // ReduceSum takes its axes as an input since opset 13
      const dot = g.node('ReduceSum', [uv, g.int64s('gv/axes', [1], [1])], m.biases ? 'gv/dot' : 'ratings', { keepdims: 0 });
      if (m.biases) {
        const withBu = g.node('Add', [dot, g.node('Gather', [p('bu'), 'users'], 'gv/bu', { axis: 0 })], 'gv/dot_bu');
        g.node('Add', [withBu, g.node('Gather', [p('bi'), 'items'], 'gv/bi', { axis: 0 })], 'ratings');
      }
      return { g, inputs: [i64('users', N), i64('items', N)], outputs: [f32('ratings', N)] };
    }
  }
}

function valueInfo(v: OnnxValueInfo): object {
  return {
    name: v.name,
    type: {
      tensor_type: {
        elem_type: v.type === 'float32' ? DataType.FLOAT : DataType.INT64,
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

const describeValues = (vs: readonly OnnxValueInfo[]) => vs.map((v) => `${v.name} ${v.type} [${v.shape.join(', ')}]`).join(', ');

function sizes(m: Checked): [string, string][] {
  switch (m.kind) {
    case 'mf':
      return [['users', String(m.users)], ['items', String(m.items)], ['rank', String(m.rank)], ['biases', String(m.biases)]];
    case 'mlp':
      return [['features', String(m.features)], ['hidden', m.hidden.join(',')], ['classes', String(m.classes)]];
    case 'linear':
      return [['features', String(m.features)]];
    default:
      return [['features', String(m.features)], ['classes', String(m.classes)]];
  }
}

/** The encoded ONNX model of a checked model's parameters. */
function encode(m: Checked, storeVersion: number, scaler?: Scaler): { bytes: Uint8Array; inputs: OnnxValueInfo[]; outputs: OnnxValueInfo[] } {
  const { g, inputs, outputs } = buildGraph(m, scaler);
  const gv = gradvaultVersion();
  const dimsText = sizes(m).map(([k, v]) => `${k} ${v}`).join(', ');
  const doc =
    `gradvault ${gv}: model '${m.kind}' (${dimsText}), the parameters of store version ${storeVersion}. ` +
    `Inputs: ${describeValues(inputs)}${scaler ? ' (raw: standardized in the graph with the scaler the model was trained with)' : ''}. ` +
    `Outputs: ${describeValues(outputs)}.`;
  const model = {
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    producer_name: 'gradvault',
    producer_version: gv,
    doc_string: doc,
    graph: {
      name: `gradvault_${m.kind}`,
      doc_string: doc,
      node: g.nodes,
      initializer: g.initializers,
      input: inputs.map(valueInfo),
      output: outputs.map(valueInfo),
    },
    metadata_props: [
      ['gradvault.model', m.kind],
      ['gradvault.version', gv],
      ...sizes(m).map(([k, v]) => [`gradvault.${k}`, v]),
      ['gradvault.storeVersion', String(storeVersion)],
      ...(scaler ? [['gradvault.standardized', 'true']] : []),
    ].map(([key, value]) => ({ key, value })),
  };
  const T = onnxType('ModelProto');
  const bad = T.verify(model);
  if (bad) throw new GradvaultError('ERR_INTERNAL', `the ONNX model does not fit the schema: ${bad}`);
  return { bytes: T.encode(T.fromObject(model)).finish(), inputs, outputs };
}

// ---------------------------------------------------------------------------
// The file

function reason(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /^[A-Z0-9_]+: ([^,]+)/.exec(msg); // "ENOENT: no such file or directory, open '...'"
  return m ? m[1] : msg;
}

/**
 * Removes temporaries `.<name>.tmp-<pid>-<random>` left beside `file` by a
 * writer that died (its process is gone), as the checkpoint writer does.
 */
function sweepTemporaries(file: string): void {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.tmp-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^([1-9][0-9]{0,9})-[0-9]{1,10}$/.exec(n.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pid > 2147483647) continue;
    try {
      process.kill(pid, 0);
      continue; // alive
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPERM') continue; // alive, another user's
    }
    try {
      fs.unlinkSync(path.join(dir, n));
    } catch {
      // gone already, or not ours to remove
    }
  }
}

async function writeCrashSafe(file: string, bytes: Uint8Array): Promise<void> {
  const fail = (what: string, e: unknown) => new FileError('ERR_IO', file, `${file}: ${what} (${reason(e)})`);
  const dir = path.dirname(file);
  sweepTemporaries(file);
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${randomInt(2 ** 31)}`);
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(tmp, 'wx', 0o644);
  } catch (e) {
    throw fail('cannot create a temporary file beside it', e);
  }
  try {
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } catch (e) {
      throw fail('write failed', e);
    } finally {
      await fh.close().catch(() => undefined);
    }
    try {
      await fs.promises.rename(tmp, file);
    } catch (e) {
      throw fail('cannot rename the temporary file over it', e);
    }
  } catch (e) {
    await fs.promises.unlink(tmp).catch(() => undefined); // the old file, if any, is untouched
    throw e;
  }
  // The rename is durable once the folder is synced (not every file system syncs folders).
  try {
    const d = await fs.promises.open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    // best effort, as the checkpoint writer
  }
}

// ---------------------------------------------------------------------------

function isHandle(v: unknown): v is StoreHandle {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'gradvault.ParameterStore';
}

/** A snapshot of the source, and how to let go of what was taken for it. */
async function snapshotOf(source: unknown): Promise<{ snap: Snapshot; done: () => void }> {
  if (Snapshot.isSnapshot(source)) return { snap: source, done: () => undefined };
  if (source instanceof ParameterStore) {
    const snap = source.snapshot();
    return { snap, done: () => snap.release() };
  }
  if (source instanceof RemoteParameterStore) {
    const snap = await source.pull();
    return { snap, done: () => snap.release() };
  }
  if (isHandle(source)) {
    const store = ParameterStore.attach(source);
    try {
      const snap = store.snapshot();
      return {
        snap,
        done: () => {
          snap.release();
          store.close();
        },
      };
    } catch (e) {
      store.close();
      throw e;
    }
  }
  throw new InvalidArgumentError('source', `exportOnnx expects a Snapshot, a ParameterStore, a RemoteParameterStore or a store handle, got ${describe(source)}`);
}

function checkKind(model: unknown): ModelKind {
  if (typeof model !== 'string' || !(MODELS as readonly string[]).includes(model))
    throw new ConfigError('model', `model must be one of ${MODELS.map((m) => `'${m}'`).join(', ')}, got ${describe(model)}`);
  return model as ModelKind;
}

/**
 * @internal The ONNX model of a snapshot's parameters, encoded (what
 * {@link exportOnnx} writes).
 */
export function onnxBytes(snap: Snapshot, model: ModelKind): { bytes: Uint8Array; inputs: OnnxValueInfo[]; outputs: OnnxValueInfo[] } {
  const m = checkModel(snap, checkKind(model));
  let total = 0;
  for (const t of m.params.values()) total += t.data.byteLength;
  const scaler = scalerOf(snap);
  if (scaler) {
    if (m.kind === 'mf' || scaler.features !== m.features) {
      const t = m.kind === 'softmax' ? 'W' : m.kind === 'mlp' ? 'W1' : m.kind === 'mf' ? 'U' : 'w';
      throw new ShapeError(t, `the store's scaler has ${scaler.features} features, the model '${m.kind}' ${m.features}`);
    }
    total += scaler.features * 16;
  }
  if (total > MAX_BYTES)
    throw new InvalidArgumentError('source', `model '${model}' has ${total} bytes of parameters; an ONNX file (one protobuf message) holds at most 2 GiB`);
  return encode(m, snap.version, scaler);
}

/**
 * Writes a built-in model's parameters as an ONNX model that onnxruntime
 * runs: `await exportOnnx(store, 'softmax', 'model.onnx')`, then in Python
 * `onnxruntime.InferenceSession('model.onnx').run(None, {'input': x})`.
 * The input is `input` float32 [N, features] (mf: `users` and `items`
 * int64 [N]); the outputs are named as `predict`'s fields (`values`,
 * `probabilities`, `scores`, `labels`, `classes`, `ratings`). The model
 * kind, the gradvault version and the sizes are in the file's
 * metadata_props (`gradvault.model`, ...). A model trained on standardized
 * data (`store.scaler`) has its scaler folded into the graph: the input is
 * raw rows, as predict's (metadata_props `gradvault.standardized`).
 *
 * A store is snapshotted (a cluster's store pulled) for the export.
 * Tensors that are not the model's are a {@link ShapeError} naming the
 * tensor and both shapes; an unknown model a {@link ConfigError} on
 * `model`; a path that cannot be written the errors of `store.save()`
 * ({@link InvalidArgumentError} on `file`, {@link FileError} `ERR_IO`).
 * The file is replaced whole or not at all.
 */
export async function exportOnnx(source: OnnxSource, model: ModelKind, file: string): Promise<OnnxExportResult> {
  const kind = checkKind(model);
  const abs = checkPath('file', file);
  const { snap, done } = await snapshotOf(source);
  let encoded: ReturnType<typeof onnxBytes>;
  const storeVersion = snap.version;
  try {
    encoded = onnxBytes(snap, kind);
  } finally {
    done();
  }
  await writeCrashSafe(abs, encoded.bytes);
  const freeze = (vs: OnnxValueInfo[]) => Object.freeze(vs.map((v) => Object.freeze({ ...v, shape: Object.freeze([...v.shape]) })));
  return Object.freeze({
    file: abs,
    bytes: encoded.bytes.byteLength,
    model: kind,
    opset: ONNX_OPSET,
    version: storeVersion,
    inputs: freeze(encoded.inputs),
    outputs: freeze(encoded.outputs),
  });
}
