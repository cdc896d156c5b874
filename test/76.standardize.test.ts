// 76: feature scaling (issue 15 item 4). Dataset.standardize() fits a
// scaler (per-feature mean and standard deviation, natively in double) and
// returns a standardized copy carrying it (dataset.scaler);
// standardize(scaler) applies one (the train set's to the test set). A
// Trainer records the scaler with the model (store.scaler), checkpoints keep
// it (metadata "model"), predict applies it to raw rows, exportOnnx folds it
// into the graph, and the CLI has train --standardize. The newcomer's case:
// a CSV with one column in the tens of thousands trains badly unscaled and
// well standardized.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import {
  ConfigError,
  DataFormatError,
  Dataset,
  InvalidArgumentError,
  ParameterStore,
  Trainer,
  evaluate,
  exportOnnx,
  predict,
  predictAsync,
  synthetic,
} from '../lib';
import { inspectCheckpoint } from '../lib/checkpoint';

jest.setTimeout(180_000);

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-76-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => path.join(dir, name);

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, FORCE_COLOR: '0' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// A deterministic generator (mulberry32) and standard normals (Box-Muller).
function rng(seed: number) {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return { u, normal };
}

/**
 * The newcomer's CSV: two Gaussian classes (means ±1 per feature, std 1),
 * 4 features, feature 3 in the tens of thousands (40000 + 30000 × x).
 */
function newcomer(rows: number, seed: number): { x: number[][]; y: number[] } {
  const r = rng(seed);
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < rows; i++) {
    const c = r.u() < 0.5 ? 0 : 1;
    const row = [0, 1, 2, 3].map(() => (c ? 1 : -1) + r.normal());
    row[3] = 40000 + 30000 * row[3];
    x.push(row.map(Math.fround));
    y.push(c);
  }
  return { x, y };
}

/** The scaler as the TSDoc defines it, in plain JavaScript doubles (row order). */
function jsFitDense(x: Float32Array, rows: number, F: number): { mean: number[]; scale: number[] } {
  const mean = new Array<number>(F).fill(0);
  const sq = new Array<number>(F).fill(0);
  for (let i = 0; i < rows; i++) for (let j = 0; j < F; j++) mean[j] += x[i * F + j];
  for (let j = 0; j < F; j++) mean[j] /= rows;
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < F; j++) {
      const c = x[i * F + j] - mean[j];
      sq[j] += c * c;
    }
  const scale = sq.map((s) => {
    const r = Math.sqrt(s / rows);
    return r > 0 ? r : 1;
  });
  return { mean, scale };
}

const sameBits = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
const sameFloats = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function expectInvalid(f: () => unknown, field: string, index?: number): InvalidArgumentError {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(InvalidArgumentError);
  const e = caught as InvalidArgumentError & { index?: number };
  expect(e.field).toBe(field);
  if (index !== undefined) expect(e.index).toBe(index);
  return e;
}

describe('Dataset.standardize() fits a scaler, exactly as documented', () => {
  test('dense: mean and population standard deviation in double, values rounded once; a constant feature gets scale 1', () => {
    const r = rng(1);
    const rows = 257, F = 5;
    const x = new Float32Array(rows * F);
    for (let i = 0; i < rows; i++) {
      x[i * F] = r.normal();
      x[i * F + 1] = 1e4 + 3e4 * r.normal();
      x[i * F + 2] = 7.25; // constant
      x[i * F + 3] = r.u() < 0.1 ? 1 : 0;
      x[i * F + 4] = -1e-3 * r.u();
    }
    const d = Dataset.fromDense(x, { features: F, labels: Array.from({ length: rows }, (_, i) => i % 2) });
    expect(d.scaler).toBeNull();
    const s = d.standardize();
    expect(s).not.toBe(d);
    expect(d.scaler).toBeNull(); // the original is unchanged
    const want = jsFitDense(x, rows, F);
    expect(s.scaler!.features).toBe(F);
    expect(sameBits(s.scaler!.mean, want.mean)).toBe(true);
    expect(sameBits(s.scaler!.scale, want.scale)).toBe(true);
    expect(s.scaler!.scale[2]).toBe(1);
    expect(Object.isFrozen(s.scaler)).toBe(true);
    expect(Object.isFrozen(s.scaler!.mean)).toBe(true);
    for (let i = 0; i < rows; i++) {
      const row = s.denseRow(i);
      for (let j = 0; j < F; j++) expect(Object.is(row[j], Math.fround((x[i * F + j] - want.mean[j]) / want.scale[j]))).toBe(true);
      expect(row[2]).toBe(0);
    }
    expect(sameFloats(s.labels, d.labels)).toBe(true);
    expect(s.classes).toBe(2);
    // slices and shuffles carry the scaler
    expect(s.slice(3, 10).scaler).toEqual(s.scaler);
    expect(s.shuffle(5).scaler).toEqual(s.scaler);
    // JSON and back is a scaler too
    const again = d.standardize(JSON.parse(JSON.stringify(s.scaler)));
    expect(sameFloats(again.denseRow(7), s.denseRow(7))).toBe(true);
  });

  test('sparse: scaled, not centred: mean 0 recorded, the std includes the implicit zeros', () => {
    const d = synthetic('sparse-logistic', { rows: 500, features: 40, nnz: 6, seed: 2 });
    const s = d.standardize();
    expect(s.kind).toBe('sparse');
    expect(s.nnz).toBe(d.nnz); // sparsity kept
    const n = d.rows, F = d.features;
    const sum = new Array<number>(F).fill(0), cnt = new Array<number>(F).fill(0), sq = new Array<number>(F).fill(0);
    const rows = Array.from({ length: n }, (_, i) => d.sparseRow(i));
    for (const r of rows) r.indices.forEach((j, k) => ((sum[j] += r.values[k]), cnt[j]++));
    const m = sum.map((v) => v / n);
    for (const r of rows)
      r.indices.forEach((j, k) => {
        const c = r.values[k] - m[j];
        sq[j] += c * c;
      });
    const scale = sq.map((v, j) => {
      const r = Math.sqrt((v + (n - cnt[j]) * m[j] * m[j]) / n);
      return r > 0 ? r : 1;
    });
    expect(s.scaler!.mean.every((v) => v === 0)).toBe(true);
    expect(sameBits(s.scaler!.scale, scale)).toBe(true);
    for (const i of [0, 17, 499]) {
      const a = d.sparseRow(i), b = s.sparseRow(i);
      expect([...b.indices]).toEqual([...a.indices]);
      a.values.forEach((v, k) => expect(Object.is(b.values[k], Math.fround(v / scale[a.indices[k]]))).toBe(true));
    }
    // a dense scaler (non-zero mean) cannot be applied to sparse rows
    const e = expectInvalid(() => d.standardize({ mean: new Array(F).fill(0).map((_, j) => (j === 3 ? 1 : 0)), scale: new Array(F).fill(1) }), 'mean', 3);
    expect(e.message).toMatch(/sparse/);
  });

  test('the test set uses the train scaler, not its own', () => {
    const all = synthetic('blobs', { rows: 2000, features: 3, classes: 2, seed: 3 });
    const [train, test] = all.split(0.8);
    const strain = train.standardize();
    const stest = test.standardize(strain.scaler!);
    expect(stest.scaler).toEqual(strain.scaler);
    const own = test.standardize().scaler!;
    expect(sameBits(own.mean, strain.scaler!.mean)).toBe(false);
    const want = jsFitDense(flat(train), train.rows, 3);
    expect(sameBits(stest.scaler!.mean, want.mean)).toBe(true);
    const x = test.denseRow(4), y = stest.denseRow(4);
    for (let j = 0; j < 3; j++) expect(Object.is(y[j], Math.fround((x[j] - want.mean[j]) / want.scale[j]))).toBe(true);
  });

  test('hostile scalers and datasets: typed errors naming the field', () => {
    const d = Dataset.fromDense([[1, 2, 3], [4, 5, 6]], { labels: [0, 1] });
    const ok = { mean: [0, 0, 0], scale: [1, 1, 1] };
    expectInvalid(() => synthetic('ratings', { rows: 100, users: 20, items: 20 }).standardize(), 'kind');
    expectInvalid(() => d.standardize().standardize(), 'data');
    expectInvalid(() => d.standardize(null as never), 'scaler');
    expectInvalid(() => d.standardize([1, 2, 3] as never), 'scaler');
    expectInvalid(() => d.standardize({ scale: [1, 1, 1] } as never), 'mean');
    expectInvalid(() => d.standardize({ ...ok, mean: [0, 0] }), 'mean');
    expectInvalid(() => d.standardize({ ...ok, scale: [1, 1, 1, 1] }), 'scale');
    expectInvalid(() => d.standardize({ ...ok, mean: [0, 0, NaN] }), 'mean', 2);
    expectInvalid(() => d.standardize({ ...ok, mean: [0, Infinity, 0] }), 'mean', 1);
    expectInvalid(() => d.standardize({ ...ok, mean: [0, '1', 0] as never }), 'mean', 1);
    expectInvalid(() => d.standardize({ ...ok, scale: [1, 0, 1] }), 'scale', 1);
    expectInvalid(() => d.standardize({ ...ok, scale: [1, 1, -2] }), 'scale', 2);
    expectInvalid(() => d.standardize({ ...ok, scale: [Number.NaN, 1, 1] }), 'scale', 0);
    expectInvalid(() => d.standardize({ ...ok, features: 4 }), 'features');
    // a scale so small that the values leave float32
    expectInvalid(() => d.standardize({ ...ok, scale: [1e-300, 1, 1] }), 'scale', 0);
    // a throwing getter, a revoked proxy
    expectInvalid(() => d.standardize({ get mean(): number[] { throw new Error('boom'); }, scale: [1, 1, 1] }), 'scaler');
    const p = Proxy.revocable({}, {});
    p.revoke();
    expectInvalid(() => d.standardize(p.proxy as never), 'scaler');
    // no rows: nothing to fit
    expectInvalid(() => d.slice(0, 0).standardize(), 'data');
    // a good one
    expect(d.standardize({ mean: new Float64Array([1, 2, 3]), scale: new Float32Array([2, 2, 2]) }).denseRow(1)[0]).toBe(1.5);
  });
});

describe('sparse data narrower than the scaler (a LIBSVM file\'s width is its largest index + 1)', () => {
  test('predict scales narrow rows with the wide scaler; training on them is refused (the model would not fit the scaler)', async () => {
    const wide = synthetic('sparse-logistic', { rows: 300, features: 30, nnz: 5, seed: 9 }).standardize();
    const t = new Trainer({ model: 'logistic', threads: 1 });
    await t.fit(wide);
    try {
      const narrow = Dataset.fromSparse({ indptr: [0, 1, 3], indices: [0, 1, 3], values: [1, 2, -3], labels: [1, -1] });
      const scaled = narrow.standardize(wide.scaler!);
      expect(scaled.features).toBe(4);
      expect(scaled.scaler).toEqual(wide.scaler);
      const a = predict(t.store!, 'logistic', narrow).probabilities!;
      const b = predict(t.store!, 'logistic', scaled).probabilities!;
      const c = predict(t.store!, 'logistic', [{ indices: Uint32Array.of(0), values: Float32Array.of(1) }, { indices: Uint32Array.of(1, 3), values: Float32Array.of(2, -3) }]).probabilities!;
      expect(sameFloats(a, b)).toBe(true);
      expect(sameFloats(a, c)).toBe(true);
      await expect(new Trainer({ model: 'logistic', threads: 1 }).fit(scaled)).rejects.toBeInstanceOf(InvalidArgumentError);
    } finally {
      t.store!.close();
    }
  });
});

function flat(d: Dataset): Float32Array {
  const x = new Float32Array(d.rows * d.features);
  for (let i = 0; i < d.rows; i++) x.set(d.denseRow(i), i * d.features);
  return x;
}

describe('the newcomer: one column in the tens of thousands', () => {
  const numbers: Record<string, { loss: number; accuracy: number }> = {};
  let store: ParameterStore;
  let train: Dataset;
  let testSet: Dataset;
  let rawTest: Dataset;
  const opts = { model: 'logistic' as const, threads: 1, epochs: 5, batchSize: 16, seed: 1, mode: 'deterministic' as const, optimizer: { kind: 'sgd' as const, lr: 0.1 } };

  beforeAll(async () => {
    const a = newcomer(4000, 11), b = newcomer(1000, 12);
    const rawTrain = Dataset.fromDense(a.x, { labels: a.y });
    rawTest = Dataset.fromDense(b.x, { labels: b.y });
    // unscaled
    const t0 = new Trainer(opts);
    await t0.fit(rawTrain);
    const e0 = evaluate(t0.store!, 'logistic', rawTest);
    numbers.unscaled = { loss: e0.loss, accuracy: e0.accuracy! };
    t0.store!.close();
    // standardized
    train = rawTrain.standardize();
    testSet = rawTest.standardize(train.scaler!);
    const t1 = new Trainer(opts);
    await t1.fit(train);
    store = t1.store!;
    const e1 = evaluate(store, 'logistic', testSet);
    numbers.standardized = { loss: e1.loss, accuracy: e1.accuracy! };
    // for the report
    console.log(`newcomer (logistic, sgd lr 0.1, 5 epochs, batch 16): unscaled test loss ${numbers.unscaled.loss.toPrecision(4)} accuracy ${numbers.unscaled.accuracy.toFixed(4)}; standardized test loss ${numbers.standardized.loss.toPrecision(4)} accuracy ${numbers.standardized.accuracy.toFixed(4)}`);
  });
  afterAll(() => store?.close());

  test('standardized, logistic regression reaches a high accuracy; unscaled, it does not', () => {
    expect(numbers.standardized.accuracy).toBeGreaterThan(0.9);
    expect(numbers.standardized.accuracy).toBeGreaterThan(numbers.unscaled.accuracy);
    expect(numbers.unscaled.loss).toBeGreaterThan(10 * numbers.standardized.loss);
  });

  test('the trainer records the scaler; the store refuses raw data or another scaler', async () => {
    expect(store.scaler).toEqual(train.scaler);
    expect(store.scaler).toBe(store.scaler); // the same numbers, the same object
    await expect(new Trainer(store, { model: 'logistic', threads: 1 }).fit(rawTest)).rejects.toBeInstanceOf(ConfigError);
    await expect(new Trainer(store, { model: 'logistic', threads: 1 }).fit(rawTest.standardize())).rejects.toThrow(/scaler/);
    // the same scaler trains on
    await new Trainer(store, { model: 'logistic', threads: 1 }).fit(testSet);
  });

  test('predict standardizes raw rows with the store\'s scaler, bitwise as the standardized rows, also after a checkpoint round trip', async () => {
    const f = file('newcomer.safetensors');
    await store.save(f);
    const loaded = await ParameterStore.load(f);
    try {
      // the checkpoint keeps the scaler's bits
      expect(sameBits(loaded.scaler!.mean, train.scaler!.mean)).toBe(true);
      expect(sameBits(loaded.scaler!.scale, train.scaler!.scale)).toBe(true);
      const info = await inspectCheckpoint(f);
      expect(info.scaler!.features).toBe(4);
      expect(sameBits(info.scaler!.scale, train.scaler!.scale)).toBe(true);
      const ref = predict(loaded, 'logistic', testSet);
      const rawRows = flat(rawTest);
      const fromFlat = predict(loaded, 'logistic', rawRows);
      const fromRows = predict(loaded, 'logistic', Array.from({ length: rawTest.rows }, (_, i) => Array.from(rawTest.denseRow(i))));
      const fromDataset = predict(loaded, 'logistic', rawTest);
      const fromSnapshot = predict(loaded.snapshot(), 'logistic', rawRows);
      const fromAsync = await predictAsync(loaded, 'logistic', rawTest);
      for (const p of [fromFlat, fromRows, fromDataset, fromSnapshot, fromAsync]) {
        expect(sameFloats(p.probabilities!, ref.probabilities!)).toBe(true);
        expect(sameFloats(p.labels!, ref.labels!)).toBe(true);
      }
      const acc = ref.classes!.reduce((s, c, i) => s + (c === testSet.classIds![i] ? 1 : 0), 0) / testSet.rows;
      expect(acc).toBeGreaterThan(0.9);
      // a dataset standardized with another scaler is refused
      expectInvalid(() => predict(loaded, 'logistic', rawTest.standardize()), 'input');
    } finally {
      loaded.close();
    }
  });

  test('a malformed scaler in a file is a DataFormatError at the header, naming it', async () => {
    const f = file('newcomer.safetensors');
    const bad = file('bad-scaler.safetensors');
    const b = fs.readFileSync(f);
    const n = Number(b.readBigUInt64LE(0));
    const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
    const model = JSON.parse(header.__metadata__.model);
    model.scaler.scale[2] = 0;
    header.__metadata__.model = JSON.stringify(model);
    let text = JSON.stringify(header);
    while ((8 + Buffer.byteLength(text)) % 8) text += ' ';
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
    fs.writeFileSync(bad, Buffer.concat([len, Buffer.from(text, 'utf8'), b.subarray(8 + n)]));
    const e = await ParameterStore.load(bad).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(DataFormatError);
    expect((e as DataFormatError).offset).toBe(8);
    expect((e as Error).message).toMatch(/scaler\.scale\[2\]/);
  });

  test('exportOnnx folds the scaler into the graph: onnxruntime on raw rows gives predict\'s answers', async () => {
    const f = file('newcomer.onnx');
    const r = await exportOnnx(store, 'logistic', f);
    expect(r.inputs[0]).toEqual({ name: 'input', type: 'float32', shape: ['N', 4] });
    const rows = 64;
    const raw = flat(rawTest).slice(0, rows * 4);
    const ref = predict(store, 'logistic', raw);
    const out = await runOnnx(f, raw, [rows, 4]);
    const probs = Float32Array.from(out.probabilities as ArrayLike<number>);
    // the same standardized rows (float64 arithmetic in the graph), then float32 kernels that may sum in another order
    for (let i = 0; i < rows; i++) expect(Math.abs(probs[i] - ref.probabilities![i])).toBeLessThan(1e-5);
    expect(Array.from(out.labels as ArrayLike<number>)).toEqual(Array.from(ref.labels!));
  });
});

// onnxruntime-node in a worker thread (as test/75: under jest's vm context its typed arrays are another realm's)
function runOnnx(f: string, input: Float32Array, dims: number[]): Promise<Record<string, ArrayLike<number | bigint>>> {
  const src = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(${JSON.stringify(require.resolve('onnxruntime-node'))});
(async () => {
  try {
    const s = await ort.InferenceSession.create(workerData.file);
    const out = await s.run({ input: new ort.Tensor('float32', workerData.input, workerData.dims) });
    const r = {};
    for (const [k, t] of Object.entries(out)) r[k] = Array.from(t.data, Number);
    await s.release();
    parentPort.postMessage({ r });
  } catch (e) {
    parentPort.postMessage({ error: String((e && e.message) || e) });
  }
})();
`;
  return new Promise((resolve, reject) => {
    const w = new Worker(src, { eval: true, workerData: { file: f, input, dims } });
    w.once('message', (m: { r?: Record<string, number[]>; error?: string }) => {
      void w.terminate();
      if (m.error !== undefined) reject(new Error(`onnxruntime: ${m.error}`));
      else resolve(m.r!);
    });
    w.once('error', reject);
  });
}

describe('the CLI: train --standardize, predict applies the checkpoint\'s scaler', () => {
  test('the newcomer\'s CSV', () => {
    const { x, y } = newcomer(3000, 21);
    const lines = ['a,b,c,d,y', ...x.map((r, i) => [...r.map(String), String(y[i])].join(','))];
    fs.writeFileSync(file('X.csv'), lines.join('\n') + '\n');
    const t = run('train', '--data', 'X.csv', '--label', 'y', '--model', 'logistic', '--standardize', '--epochs', '5', '--threads', '1', '--save', 'm.safetensors');
    expect(t.err).toBe('');
    expect(t.code).toBe(0);
    expect(t.out).toMatch(/Standardized 4 features with the train set's mean and standard deviation/);
    // the final table's line (the last "test accuracy")
    const accs = [...t.out.matchAll(/test accuracy\s+([0-9.]+)/g)];
    expect(accs.length).toBeGreaterThan(0);
    expect(Number(accs[accs.length - 1][1])).toBeGreaterThan(0.9);
    const ins = run('inspect', 'm.safetensors');
    expect(ins.code).toBe(0);
    expect(ins.out).toMatch(/scaler: 4 features/);
    const p = run('predict', '--model', 'm.safetensors', '--data', 'X.csv', '--label', 'y');
    expect(p.code).toBe(0);
    expect(p.err).toMatch(/standardized with the checkpoint's scaler \(4 features\)/);
    const pacc = /accuracy ([0-9.]+)/.exec(p.err);
    expect(pacc).not.toBeNull();
    expect(Number(pacc![1])).toBeGreaterThan(0.9);
    expect(p.out.split('\n')[0]).toBe('row,label,probability');
  });
});
