// 75: ONNX export. Every built-in model, trained briefly by the native
// Trainer on dense and on sparse rows (ratings for mf), is exported, run in
// onnxruntime-node, and gives the predictions a plain JavaScript reference
// computes from the snapshot's tensors, and predict()'s, within the
// tolerances below. The file is checked as ONNX (our schema reads
// it back: opset, producer, metadata); wrong tensors, models and paths give
// typed errors and write nothing; the CLI exports a saved checkpoint, the
// model inferred from the tensor names where they tell it.
//
// onnxruntime runs in a worker thread: under jest's vm context its output
// tensors (made in Node's own realm) fail its own `instanceof Float32Array`
// checks; a worker is a plain Node realm.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import * as gv from '../lib';
import {
  ConfigError,
  Dataset,
  FileError,
  InvalidArgumentError,
  ParameterStore,
  ShapeError,
  Snapshot,
  Trainer,
  exportOnnx,
  loadCsv,
  predict,
  synthetic,
  type ModelKind,
  type TrainerOptions,
} from '../lib';
import { onnxType } from '../lib/onnx/schema';

jest.setTimeout(120_000);

/** Probabilities (softmax, mlp, logistic): max absolute difference. */
const PROB_ABS = 1e-5;
/** Values, scores, ratings: |onnx - reference| <= VALUE_ABS + VALUE_REL * |reference|. */
const VALUE_REL = 1e-4;
const VALUE_ABS = 1e-5;
/**
 * Classes and labels must be equal, except on a tie: the two largest
 * reference probabilities within PROB_ABS of each other, or a binary score
 * within 2 * VALUE_ABS of 0 (where float32 rounding decides the side).
 */
const BINARY_TIE = 2 * VALUE_ABS;

/** Rows compared per model. */
const ROWS = 400;

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
let dir: string;
let blobs: Dataset, sparse: Dataset, denseBinary: Dataset, ratings: Dataset;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-onnx-'));
  blobs = synthetic('blobs', { rows: 3000, features: 10, classes: 4, seed: 3 });
  sparse = synthetic('sparse-logistic', { rows: 4000, features: 64, nnz: 8, seed: 4 });
  // The same kind of rows, dense: the first 2000 sparse rows written out as CSV.
  const lines = [[...Array(sparse.features).keys()].map((j) => `x${j}`).concat('y').join(',')];
  for (let i = 0; i < 2000; i++) lines.push([...densify(sparse, i)].map(String).concat(String(sparse.labels[i])).join(','));
  fs.writeFileSync(path.join(dir, 'dense.csv'), lines.join('\n') + '\n');
  denseBinary = await loadCsv(path.join(dir, 'dense.csv'), { label: 'y' });
  ratings = synthetic('ratings', { rows: 5000, users: 200, items: 150, rank: 5, seed: 6 });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------
// onnxruntime-node, in a worker thread

interface Feed {
  readonly type: 'float32' | 'int64';
  readonly data: Float32Array | BigInt64Array;
  readonly dims: readonly number[];
}
type Feeds = Record<string, Feed>;
interface OrtResult {
  readonly inputNames: string[];
  readonly outputNames: string[];
  readonly outputs: Record<string, { data: ArrayLike<number | bigint>; dims: number[]; type: string }>;
}

const RUNNER = `
const { parentPort } = require('node:worker_threads');
const ort = require(${JSON.stringify(require.resolve('onnxruntime-node'))});
parentPort.on('message', async ({ id, file, feeds }) => {
  try {
    const session = await ort.InferenceSession.create(file);
    const inputs = {};
    for (const [k, f] of Object.entries(feeds)) inputs[k] = new ort.Tensor(f.type, f.data, f.dims);
    const out = await session.run(inputs);
    const outputs = {};
    for (const [k, t] of Object.entries(out)) outputs[k] = { data: t.data, dims: t.dims, type: t.type };
    const res = { inputNames: session.inputNames, outputNames: session.outputNames, outputs };
    await session.release();
    parentPort.postMessage({ id, res });
  } catch (e) {
    parentPort.postMessage({ id, error: String((e && e.message) || e) });
  }
});
`;
let worker: Worker;
let nextId = 0;
const pending = new Map<number, { resolve: (r: OrtResult) => void; reject: (e: Error) => void }>();
beforeAll(() => {
  worker = new Worker(RUNNER, { eval: true });
  worker.on('message', (m: { id: number; res?: OrtResult; error?: string }) => {
    const p = pending.get(m.id)!;
    pending.delete(m.id);
    if (m.error !== undefined) p.reject(new Error(`onnxruntime: ${m.error}`));
    else p.resolve(m.res!);
  });
});
afterAll(() => worker.terminate());

/** Runs an ONNX file in onnxruntime-node on the feeds. */
function runOnnx(file: string, feeds: Feeds): Promise<OrtResult> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ id, file, feeds });
  });
}

// ---------------------------------------------------------------------------
// Inputs and the reference

function densify(d: Dataset, i: number): Float32Array {
  const x = new Float32Array(d.features);
  if (d.kind === 'dense') return d.denseRow(i);
  const r = d.sparseRow(i);
  r.indices.forEach((j, k) => (x[j] = r.values[k]));
  return x;
}

/** Rows [0, n) as one dense float32 batch [n, features]. */
function batch(d: Dataset, n: number): Float32Array {
  const x = new Float32Array(n * d.features);
  for (let i = 0; i < n; i++) x.set(densify(d, i), i * d.features);
  return x;
}

function pairs(d: Dataset, n: number): { users: BigInt64Array; items: BigInt64Array } {
  const users = new BigInt64Array(n), items = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const r = d.row(i) as gv.RatingRow;
    users[i] = BigInt(r.user);
    items[i] = BigInt(r.item);
  }
  return { users, items };
}

/** What the model says, computed in float64 from the snapshot's tensors (the field names of predict()). */
interface Reference {
  values?: Float64Array;
  scores?: Float64Array;
  probabilities?: Float64Array;
  labels?: Float64Array;
  classes?: Int32Array;
  ratings?: Float64Array;
}

function affine(a: Float64Array, n: number, inW: number, W: Float32Array, b: Float32Array, outW: number): Float64Array {
  const z = new Float64Array(n * outW);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < outW; c++) {
      let s = b[c];
      for (let j = 0; j < inW; j++) s += a[i * inW + j] * W[j * outW + c];
      z[i * outW + c] = s;
    }
  return z;
}

function softmaxRows(z: Float64Array, n: number, C: number): { probabilities: Float64Array; classes: Int32Array } {
  const p = new Float64Array(n * C), classes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (z[i * C + c] > z[i * C + best]) best = c;
    let sum = 0;
    for (let c = 0; c < C; c++) sum += p[i * C + c] = Math.exp(z[i * C + c] - z[i * C + best]);
    for (let c = 0; c < C; c++) p[i * C + c] /= sum;
    classes[i] = best;
  }
  return { probabilities: p, classes };
}

function reference(snap: Snapshot, model: ModelKind, x: Float32Array | { users: BigInt64Array; items: BigInt64Array }, n: number): Reference {
  if (model === 'mf') {
    const { users, items } = x as { users: BigInt64Array; items: BigInt64Array };
    const U = snap.get('U'), V = snap.get('V'), k = snap.shape('U')[1];
    const biases = snap.names.includes('bu');
    const r = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const u = Number(users[i]), v = Number(items[i]);
      let s = biases ? snap.get('bu')[u] + snap.get('bi')[v] : 0;
      for (let j = 0; j < k; j++) s += U[u * k + j] * V[v * k + j];
      r[i] = s;
    }
    return { ratings: r };
  }
  const a0 = Float64Array.from(x as Float32Array);
  if (model === 'softmax') {
    const [F, C] = snap.shape('W');
    return softmaxRows(affine(a0, n, F, snap.get('W'), snap.get('b'), C), n, C);
  }
  if (model === 'mlp') {
    let a: Float64Array = a0;
    let L = 0;
    while (snap.names.includes(`W${L + 1}`)) L++;
    for (let l = 1; l <= L; l++) {
      const [inW, outW] = snap.shape(`W${l}`);
      a = affine(a, n, inW, snap.get(`W${l}`), snap.get(`b${l}`), outW);
      if (l < L) a = a.map((v) => Math.max(0, v));
      else return softmaxRows(a, n, outW);
    }
  }
  const F = snap.shape('w')[0];
  const z = affine(a0, n, F, snap.get('w'), snap.get('b'), 1);
  if (model === 'linear') return { values: z };
  const labels = z.map((v) => (v > 0 ? 1 : -1));
  const classes = Int32Array.from(z, (v) => (v > 0 ? 1 : 0));
  if (model === 'svm') return { scores: z, labels, classes };
  return { probabilities: z.map((v) => 1 / (1 + Math.exp(-v))), labels, classes, scores: z };
}

// ---------------------------------------------------------------------------
// Comparisons: each returns the largest absolute difference it saw

function closeValues(what: string, got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let max = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    max = Math.max(max, d);
    if (!(d <= VALUE_ABS + VALUE_REL * Math.abs(want[i]))) throw new Error(`${what}[${i}]: ${got[i]}, expected ${want[i]} (|diff| ${d})`);
  }
  return max;
}

function closeProbabilities(what: string, got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let max = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    max = Math.max(max, d);
    if (!(d <= PROB_ABS)) throw new Error(`${what}[${i}]: ${got[i]}, expected ${want[i]} (|diff| ${d} > ${PROB_ABS})`);
  }
  return max;
}

/** Classes (or labels) equal, but where the reference is a tie. Returns the number of ties skipped. */
function sameClasses(what: string, got: ArrayLike<number | bigint>, ref: Reference, n: number, field: 'classes' | 'labels' = 'classes'): number {
  const want = ref[field]!;
  expect(got.length).toBe(n);
  let ties = 0;
  for (let i = 0; i < n; i++) {
    if (Number(got[i]) === want[i]) continue;
    let tie: boolean;
    const z = ref.scores ?? ref.values;
    if (z) {
      tie = Math.abs(z[i]) <= BINARY_TIE;
    } else {
      const C = ref.probabilities!.length / n;
      const row = [...ref.probabilities!.subarray(i * C, (i + 1) * C)].sort((a, b) => b - a);
      tie = row[0] - row[1] <= PROB_ABS;
    }
    if (!tie) throw new Error(`${what}[${i}]: ${got[i]}, expected ${want[i]}`);
    ties++;
  }
  return ties;
}

/** The largest difference per model (`GV_ONNX_REPORT=1` prints them). */
const measured: Record<string, number> = {};
afterAll(() => {
  if (process.env.GV_ONNX_REPORT) process.stdout.write(`ONNX max |diff| per case: ${JSON.stringify(measured, null, 1)}\n`);
});

// ---------------------------------------------------------------------------

interface Case {
  readonly name: string;
  readonly model: ModelKind;
  readonly data: () => Dataset;
  readonly train?: Partial<TrainerOptions>;
}

const CASES: Case[] = [
  { name: 'softmax, dense', model: 'softmax', data: () => blobs },
  { name: 'softmax, sparse', model: 'softmax', data: () => sparse },
  { name: 'mlp [16, 8], dense', model: 'mlp', data: () => blobs, train: { hidden: [16, 8] } },
  { name: 'mlp [12], sparse', model: 'mlp', data: () => sparse, train: { hidden: [12] } },
  { name: 'logistic, sparse', model: 'logistic', data: () => sparse },
  { name: 'logistic, dense', model: 'logistic', data: () => denseBinary },
  { name: 'svm, sparse', model: 'svm', data: () => sparse },
  { name: 'svm, dense', model: 'svm', data: () => denseBinary },
  { name: 'linear, sparse', model: 'linear', data: () => sparse },
  { name: 'linear, dense', model: 'linear', data: () => denseBinary },
  { name: 'mf with biases', model: 'mf', data: () => ratings, train: { rank: 5 } },
  { name: 'mf without biases', model: 'mf', data: () => ratings, train: { rank: 4, biases: false } },
];

const LR: Record<ModelKind, number> = { softmax: 0.1, mlp: 0.05, logistic: 0.5, svm: 0.1, linear: 0.05, mf: 0.05 };

async function trained(c: Case): Promise<ParameterStore> {
  const t = new Trainer({ model: c.model, threads: 2, epochs: 2, batchSize: 8, optimizer: { kind: 'sgd', lr: LR[c.model] }, initSeed: 1, ...c.train } as gv.AutoTrainerOptions);
  await t.fit(c.data());
  return t.store!;
}

function feedsFor(model: ModelKind, d: Dataset, n: number): { feeds: Feeds; x: Float32Array | { users: BigInt64Array; items: BigInt64Array } } {
  if (model === 'mf') {
    const p = pairs(d, n);
    return { feeds: { users: { type: 'int64', data: p.users, dims: [n] }, items: { type: 'int64', data: p.items, dims: [n] } }, x: p };
  }
  const x = batch(d, n);
  return { feeds: { input: { type: 'float32', data: x, dims: [n, d.features] } }, x };
}

/** Every output of the session against the reference; the largest difference. */
function compare(c: Case, out: OrtResult['outputs'], ref: Reference, n: number): number {
  let max = 0;
  const data = (k: string) => out[k].data as Float32Array;
  switch (c.model) {
    case 'softmax':
    case 'mlp':
      max = closeProbabilities(`${c.name} probabilities`, data('probabilities'), ref.probabilities!);
      sameClasses(`${c.name} classes`, out.classes.data as BigInt64Array, ref, n);
      break;
    case 'logistic':
      max = closeProbabilities(`${c.name} probabilities`, data('probabilities'), ref.probabilities!);
      sameClasses(`${c.name} labels`, data('labels'), ref, n, 'labels');
      sameClasses(`${c.name} classes`, out.classes.data as BigInt64Array, ref, n);
      break;
    case 'svm':
      max = closeValues(`${c.name} scores`, data('scores'), ref.scores!);
      sameClasses(`${c.name} labels`, data('labels'), ref, n, 'labels');
      sameClasses(`${c.name} classes`, out.classes.data as BigInt64Array, ref, n);
      break;
    case 'linear':
      max = closeValues(`${c.name} values`, data('values'), ref.values!);
      break;
    case 'mf':
      max = closeValues(`${c.name} ratings`, data('ratings'), ref.ratings!);
      break;
  }
  return max;
}

const OUTPUTS: Record<ModelKind, string[]> = {
  linear: ['values'],
  logistic: ['probabilities', 'labels', 'classes'],
  svm: ['scores', 'labels', 'classes'],
  softmax: ['probabilities', 'classes'],
  mlp: ['probabilities', 'classes'],
  mf: ['ratings'],
};

describe('every model runs in onnxruntime with the predictions of its parameters and of predict()', () => {
  test.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const store = await trained(c);
    const d = c.data();
    const snap = store.snapshot();
    const file = path.join(dir, `${c.model}-${c.name.replace(/\W+/g, '-')}.onnx`);
    const r = await exportOnnx(snap, c.model, file);
    expect(r).toMatchObject({ file, model: c.model, opset: 17, version: snap.version });
    expect(r.bytes).toBe(fs.statSync(file).size);
    expect(r.outputs.map((o) => o.name)).toEqual(OUTPUTS[c.model]);
    expect(r.inputs.map((i) => i.name)).toEqual(c.model === 'mf' ? ['users', 'items'] : ['input']);
    if (c.model !== 'mf') expect(r.inputs[0]).toEqual({ name: 'input', type: 'float32', shape: ['N', d.features] });
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);

    const n = Math.min(ROWS, d.rows);
    const { feeds, x } = feedsFor(c.model, d, n);
    const res = await runOnnx(file, feeds);
    expect(res.inputNames).toEqual(r.inputs.map((i) => i.name));
    expect(res.outputNames).toEqual(OUTPUTS[c.model]);
    for (const o of r.outputs) {
      expect(res.outputs[o.name].dims).toEqual(o.shape.map((s) => (s === 'N' ? n : s)));
      expect(res.outputs[o.name].type).toBe(o.type);
    }
    const ref = reference(snap, c.model, x, n);
    measured[c.name] = compare(c, res.outputs, ref, n);
    // a batch of one row (the batch dimension is symbolic)
    const one = feedsFor(c.model, d, 1);
    compare(c, (await runOnnx(file, one.feeds)).outputs, reference(snap, c.model, one.x, 1), 1);

    // predict() on the native rows (sparse ones as they are; ONNX took them densified)
    const p = predict(snap, c.model, d.slice(0, n));
    expect(p).toMatchObject({ model: c.model, rows: n });
    const f64 = (a: Float32Array | undefined) => (a ? Float64Array.from(a) : undefined);
    const byPredict: Reference = {
      values: f64(p.values),
      scores: f64(p.scores) ?? ref.scores, // logistic: ties by the reference's score
      probabilities: f64(p.probabilities),
      labels: f64(p.labels),
      ratings: f64(p.ratings),
      classes: p.classes,
    };
    measured[`${c.name}, vs predict`] = compare(c, res.outputs, byPredict, n);
    snap.release();
    store.close();
  });
});

// ---------------------------------------------------------------------------

describe('the file', () => {
  test('is ONNX: opset 17, IR 8, producer gradvault, the model, version and sizes in metadata_props; initializers named as the tensors', async () => {
    const store = new ParameterStore({ tensors: { W: { shape: [5, 3], init: 'glorot' }, b: { shape: [3] } } });
    const file = path.join(dir, 'meta.onnx');
    await exportOnnx(store, 'softmax', file);
    const M = onnxType('ModelProto');
    const m = M.toObject(M.decode(fs.readFileSync(file)), { longs: Number }) as {
      ir_version: number;
      producer_name: string;
      producer_version: string;
      doc_string: string;
      opset_import: { domain?: string; version: number }[];
      metadata_props: { key: string; value: string }[];
      graph: { initializer: { name: string; dims: number[] }[]; node: { op_type: string }[] };
    };
    const version = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;
    expect(m.ir_version).toBe(8);
    expect(m.opset_import).toEqual([{ domain: '', version: 17 }]);
    expect(m.producer_name).toBe('gradvault');
    expect(m.producer_version).toBe(version);
    expect(m.doc_string).toMatch(/model 'softmax' \(features 5, classes 3\)/);
    const meta = Object.fromEntries(m.metadata_props.map((e) => [e.key, e.value]));
    expect(meta).toEqual({ 'gradvault.model': 'softmax', 'gradvault.version': version, 'gradvault.features': '5', 'gradvault.classes': '3', 'gradvault.storeVersion': '0' });
    expect(m.graph.initializer.map((t) => [t.name, t.dims])).toEqual([
      ['W', [5, 3]],
      ['b', [3]],
    ]);
    expect(m.graph.node.map((x) => x.op_type)).toEqual(['Gemm', 'Softmax', 'ArgMax']);
    store.close();
  });

  test('a store, its snapshot and its shared handle give the same bytes; the store is left as it was', async () => {
    const store = new ParameterStore({ tensors: { w: { shape: [7], init: 'normal', std: 0.5 }, b: { shape: [1], init: [0.25] } } });
    const snap = store.snapshot();
    await exportOnnx(store, 'logistic', path.join(dir, 'a.onnx'));
    await exportOnnx(snap, 'logistic', path.join(dir, 'b.onnx'));
    await exportOnnx(store.share(), 'logistic', path.join(dir, 'c.onnx'));
    const a = fs.readFileSync(path.join(dir, 'a.onnx'));
    expect(a.equals(fs.readFileSync(path.join(dir, 'b.onnx')))).toBe(true);
    expect(a.equals(fs.readFileSync(path.join(dir, 'c.onnx')))).toBe(true);
    expect(snap.released).toBe(false);
    expect(store.closed).toBe(false);
    expect(store.snapshot().get('w')).toEqual(snap.get('w'));
    store.close();
  });

  test('replaces an existing file whole', async () => {
    const file = path.join(dir, 'replace.onnx');
    fs.writeFileSync(file, 'old contents');
    const store = new ParameterStore({ tensors: { w: { shape: [3] }, b: { shape: [1] } } });
    const r = await exportOnnx(store, 'linear', file);
    expect(fs.statSync(file).size).toBe(r.bytes);
    const res = await runOnnx(file, { input: { type: 'float32', data: new Float32Array([1, 2, 3]), dims: [1, 3] } });
    expect(res.outputNames).toEqual(['values']);
    expect(Array.from(res.outputs.values.data)).toEqual([0]);
    store.close();
  });
});

describe('hostile input: typed errors, nothing written', () => {
  let softmaxStore: ParameterStore, logisticStore: ParameterStore;
  beforeAll(() => {
    softmaxStore = new ParameterStore({ tensors: { W: { shape: [10, 4] }, b: { shape: [4] } } });
    logisticStore = new ParameterStore({ tensors: { w: { shape: [10] }, b: { shape: [1] } } });
  });
  afterAll(() => {
    softmaxStore.close();
    logisticStore.close();
  });

  async function refused(source: Parameters<typeof exportOnnx>[0], model: string, tensor: string, ...msgs: RegExp[]) {
    const file = path.join(dir, 'refused.onnx');
    const e = await exportOnnx(source, model as ModelKind, file).catch((x) => x);
    expect(e).toBeInstanceOf(ShapeError);
    expect(e.tensor).toBe(tensor);
    for (const m of msgs) expect(e.message).toMatch(m);
    expect(fs.existsSync(file)).toBe(false);
  }

  test('the wrong model for the tensors: ShapeError naming the tensor', async () => {
    await refused(softmaxStore, 'logistic', 'w', /model 'logistic' needs a tensor 'w'/, /W \[10, 4\], b \[4\]/);
    await refused(softmaxStore, 'mlp', 'W1');
    await refused(softmaxStore, 'mf', 'U');
    await refused(logisticStore, 'softmax', 'W', /needs a tensor 'W' of shape \[features, classes\]/);
  });

  test('shapes that do not fit together: ShapeError naming the tensor and both shapes', async () => {
    const cases: [Record<string, number[]>, ModelKind, string, RegExp][] = [
      [{ W: [10, 4], b: [3] }, 'softmax', 'b', /must have shape \[4\] .*got \[3\]/],
      [{ W: [10], b: [4] }, 'softmax', 'W', /must have shape \[features, classes\], got \[10\]/],
      [{ w: [10, 2], b: [1] }, 'svm', 'w', /must have shape \[features\], got \[10, 2\]/],
      [{ w: [10], b: [2] }, 'linear', 'b', /must have shape \[1\] .*got \[2\]/],
      [{ W1: [10, 16], b1: [16], W2: [15, 4], b2: [4] }, 'mlp', 'W2', /must have shape \[16, 4\] .*got \[15, 4\]/],
      [{ W1: [10, 16], b1: [16], W2: [16, 4], b2: [16] }, 'mlp', 'b2', /must have shape \[4\] .*got \[16\]/],
      [{ W1: [10, 4], b1: [4] }, 'mlp', 'W2', /n >= 2/],
      [{ U: [5, 3], V: [6, 2] }, 'mf', 'V', /must have shape \[6, 3\] .*got \[6, 2\]/],
      [{ U: [5, 3], V: [6, 3], bu: [5] }, 'mf', 'bi', /has 'bu' but no 'bi'/],
      [{ U: [5, 3], V: [6, 3], bu: [4], bi: [6] }, 'mf', 'bu', /must have shape \[5\] .*got \[4\]/],
    ];
    for (const [tensors, model, tensor, msg] of cases) {
      const store = new ParameterStore({ tensors: Object.fromEntries(Object.entries(tensors).map(([k, shape]) => [k, { shape }])) });
      await refused(store, model, tensor, msg);
      store.close();
    }
  });

  test('an unknown model: ConfigError naming model', async () => {
    for (const model of ['tree', '', undefined, 3]) {
      const e = await exportOnnx(softmaxStore, model as ModelKind, path.join(dir, 'x.onnx')).catch((x) => x);
      expect(e).toBeInstanceOf(ConfigError);
      expect(e.path).toBe('model');
      expect(e.message).toMatch(/'linear', 'logistic', 'softmax', 'svm', 'mlp', 'mf'/);
    }
  });

  test('a path that cannot be written: the errors of store.save()', async () => {
    const save = (f: string) => softmaxStore.save(f).catch((x) => x);
    const onnx = (f: string) => exportOnnx(softmaxStore, 'softmax', f).catch((x) => x);
    for (const f of ['', 'a\0b.onnx']) {
      const [a, b] = [await save(f), await onnx(f)];
      expect(b).toBeInstanceOf(InvalidArgumentError);
      expect([b.constructor, b.field, b.message]).toEqual([a.constructor, a.field, a.message]);
    }
    for (const f of [path.join(dir, 'no-such-folder', 'm.onnx'), dir]) {
      const [a, b] = [await save(f), await onnx(f)];
      expect(b).toBeInstanceOf(FileError);
      expect([b.code, b.file]).toEqual([a.code, a.file]);
      expect(b.message.split(' (')[0]).toBe(a.message.split(' (')[0]); // the same step failed; the system's words differ in case
    }
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('a source that is not one: InvalidArgumentError; a released snapshot: its error', async () => {
    for (const s of [{}, null, 'W', { kind: 'other' }]) {
      const e = await exportOnnx(s as never, 'softmax', path.join(dir, 'x.onnx')).catch((x) => x);
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect(e.field).toBe('source');
    }
    const snap = softmaxStore.snapshot();
    snap.release();
    await expect(exportOnnx(snap, 'softmax', path.join(dir, 'x.onnx'))).rejects.toThrow(/released/);
    const closed = new ParameterStore({ tensors: { w: { shape: [1] } } });
    closed.close();
    await expect(exportOnnx(closed, 'linear', path.join(dir, 'x.onnx'))).rejects.toThrow(gv.ClosedError);
    expect(fs.existsSync(path.join(dir, 'x.onnx'))).toBe(false);
  });
});

// ---------------------------------------------------------------------------

describe('gradvault export', () => {
  function run(...args: string[]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, FORCE_COLOR: '0' } });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  test('a saved checkpoint round trip: the model the checkpoint records, the same predictions', async () => {
    const c = CASES.find((x) => x.name === 'mlp [16, 8], dense')!;
    const store = await trained(c);
    await store.save(path.join(dir, 'mlp.safetensors'));
    const r = run('export', 'mlp.safetensors', '--onnx', 'mlp.onnx');
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(/^mlp\.onnx: ONNX \(opset 17\), model mlp \(recorded in the checkpoint\)/);
    expect(r.out).toMatch(/inputs: {2}input float32 \[N, 10\]/);
    expect(r.out).toMatch(/outputs: probabilities float32 \[N, 4\], classes int64 \[N\]/);
    const { feeds, x } = feedsFor('mlp', blobs, ROWS);
    const snap = store.snapshot();
    compare(c, (await runOnnx(path.join(dir, 'mlp.onnx'), feeds)).outputs, reference(snap, 'mlp', x, ROWS), ROWS);
    store.close();
  });

  test('--json: one line with the file, its inputs and outputs; mf and softmax inferred', async () => {
    const files: [string, Record<string, { shape: number[] }>, string][] = [
      ['mf', { U: { shape: [20, 3] }, V: { shape: [30, 3] }, bu: { shape: [20] }, bi: { shape: [30] } }, 'mf'],
      ['sm', { W: { shape: [6, 3] }, b: { shape: [3] } }, 'softmax'],
    ];
    for (const [name, tensors, model] of files) {
      const store = new ParameterStore({ tensors });
      await store.save(path.join(dir, `${name}.safetensors`));
      store.close();
      const r = run('export', `${name}.safetensors`, '--onnx', `${name}.onnx`, '--json');
      expect(r.code).toBe(0);
      const lines = r.out.trim().split('\n');
      expect(lines).toHaveLength(1);
      const j = JSON.parse(lines[0]);
      expect(j).toMatchObject({ event: 'export', checkpoint: `${name}.safetensors`, file: path.join(dir, `${name}.onnx`), model, opset: 17 });
      expect(j.bytes).toBe(fs.statSync(path.join(dir, `${name}.onnx`)).size);
      if (model === 'mf') expect(j.inputs.map((i: { name: string }) => i.name)).toEqual(['users', 'items']);
    }
  });

  test('w, b: ambiguous without --model (exit 2, the choices named); --model svm exports', async () => {
    const store = new ParameterStore({ tensors: { w: { shape: [5], init: 'normal' }, b: { shape: [1] } } });
    await store.save(path.join(dir, 'wb.safetensors'));
    const snap = store.snapshot();
    store.close();
    const r = run('export', 'wb.safetensors', '--onnx', 'wb.onnx');
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/'linear', 'logistic' and 'svm'.*--model/);
    expect(fs.existsSync(path.join(dir, 'wb.onnx'))).toBe(false);
    const ok = run('export', 'wb.safetensors', '--onnx', 'wb.onnx', '--model', 'svm');
    expect(ok.code).toBe(0);
    const x = new Float32Array([1, -2, 0.5, 0, 3]);
    const out = (await runOnnx(path.join(dir, 'wb.onnx'), { input: { type: 'float32', data: x, dims: [1, 5] } })).outputs;
    closeValues('svm scores', out.scores.data as Float32Array, reference(snap, 'svm', x, 1).scores!);
  });

  test.each([
    [['export', 'wb.safetensors', '--onnx', 'x.onnx', '--model', 'softmax'], 1, /model 'softmax' needs a tensor 'W'/],
    [['export', 'wb.safetensors', '--onnx', 'x.onnx', '--model', 'tree'], 2, /--model/],
    [['export', 'wb.safetensors'], 2, /--onnx/],
    [['export', 'missing.safetensors', '--onnx', 'x.onnx'], 1, /missing\.safetensors/],
    [['export', 'wb.safetensors', '--onnx', '/nonexistent-folder/x.onnx', '--model', 'svm'], 2, /--onnx .*does not exist/],
  ])('bad arguments: %j -> one line, exit %i', (args, code, msg) => {
    const r = run(...(args as string[]));
    expect(r.code).toBe(code);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(msg);
    expect(fs.existsSync(path.join(dir, 'x.onnx'))).toBe(false);
  });
});
