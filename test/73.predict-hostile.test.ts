// predict, predictAsync and the datasets made from memory against hostile
// input: values that are not numbers, arrays that change or throw while
// read, detached and shared buffers, answers too large to hold, Arrow
// columns whose toArray() is not one number per row, and the CLI. Each case
// is a typed error naming the field (or the right answer), never a crash,
// a hang or a silent wrong answer.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as arrow from 'apache-arrow';
import {
  Dataset,
  InvalidArgumentError,
  ParameterStore,
  ShapeError,
  modelTensors,
  predict,
  predictAsync,
  synthetic,
  type ModelKind,
} from '../lib';
import { modelArg } from '../lib/trainer';
import { native } from '../lib/native';
import { fromNative } from '../lib/errors';

const stores: ParameterStore[] = [];
afterAll(() => stores.forEach((s) => s.close()));

function store(model: ModelKind, data: Dataset): ParameterStore {
  const s = new ParameterStore({ tensors: modelTensors({ model }, data), mode: 'atomic', optimizer: { kind: 'sgd', lr: 0.1 } });
  stores.push(s);
  return s;
}
function storeOf(tensors: Record<string, { shape: number[] }>): ParameterStore {
  const s = new ParameterStore({ tensors, mode: 'atomic', optimizer: { kind: 'sgd', lr: 0.1 } });
  stores.push(s);
  return s;
}

const blobs = synthetic('blobs', { rows: 50, features: 4, classes: 3, seed: 1 });
const sparse = synthetic('sparse-logistic', { rows: 50, features: 10, nnz: 3, seed: 1 });
const ratings = synthetic('ratings', { rows: 100, users: 20, items: 30, seed: 1 });

function argError(f: () => unknown, field: string, index: number | undefined, re: RegExp): void {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(InvalidArgumentError);
  expect((thrown as InvalidArgumentError).field).toBe(field);
  expect((thrown as InvalidArgumentError).index).toBe(index);
  expect((thrown as Error).message).toMatch(re);
}

function detached(n: number): Float32Array {
  const a = new Float32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

describe('values that are not numbers', () => {
  test('dense rows: null, true, "" and [5] are not coerced to numbers', () => {
    const s = store('softmax', blobs);
    argError(() => predict(s, 'softmax', [[null, true, '', [5]]] as never), 'x', 0, /x\[0\]\[0\] is null, not a number/);
    argError(() => Dataset.fromDense([[1, 2], [3, true]] as never), 'x', 3, /x\[1\]\[1\] is true, not a number/);
    argError(() => Dataset.fromDense([[1, '2']] as never), 'x', 1, /x\[0\]\[1\] is "2", not a number/);
    // bigints are numbers, as in the flat arrays
    expect(Array.from(Dataset.fromDense([[1n, 2n]] as never).denseRow(0))).toEqual([1, 2]);
  });

  test('a row that is a string, a DataView or an array-like object is not a row', () => {
    argError(() => Dataset.fromDense([[1, 2], '12'] as never), 'x', 1, /x\[1\] is not a row of 2 numbers \(got "12"\)/);
    argError(() => Dataset.fromDense([new DataView(new ArrayBuffer(8))] as never), 'x', 0, /x\[0\] is not a row of numbers \(got a DataView\)/);
    argError(() => Dataset.fromDense([{ length: 2, 0: 1, 1: 2 }] as never), 'x', 0, /x\[0\] is not a row of numbers/);
  });

  test('a row claiming 2^31 values is refused at once (it was a loop of minutes over undefined)', () => {
    const t0 = Date.now();
    argError(() => Dataset.fromDense([{ length: 2 ** 31 }] as never), 'x', 0, /not a row of numbers/);
    const holey = new Array(2 ** 31);
    argError(() => Dataset.fromDense([holey]), 'x', 0, /x\[0\]\[0\] is undefined, not a number/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test('sparse rows: null and "" values, string indices, a length that changes between reads', () => {
    const s = store('logistic', sparse);
    argError(() => predict(s, 'logistic', [{ indices: [1, 2], values: [null, ''] }] as never), 'input', 0, /input\[0\]\.values\[0\] is null, not a number/);
    argError(() => predict(s, 'logistic', [{ indices: [0], values: [1] }, { indices: [true], values: [1] }] as never), 'input', 1, /input\[1\]\.indices\[0\] is true/);
    argError(() => predict(s, 'logistic', [{ indices: '01', values: [1, 2] }] as never), 'input', 0, /not a sparse row/);
    let reads = 0;
    const shrinking = new Proxy([1, 2], { get: (t, k) => (k === 'length' ? (reads++ ? 1 : 2) : t[k as never]) });
    argError(() => predict(s, 'logistic', [{ indices: shrinking, values: [1, 1] }, { indices: [3], values: [1] }] as never), 'input', 0, /of equal lengths/);
  });

  test('a flat array of numbers is not taken for rows (the message was about a features option predict lacks)', () => {
    const s = store('softmax', blobs);
    argError(() => predict(s, 'softmax', [1, 2, 3, 4] as never), 'input', undefined, /one flat array of numbers.*Float32Array of rows × 4 values/);
  });
});

describe('input and options that throw or lie when read', () => {
  test('options whose getter or Proxy throws: InvalidArgumentError, sync and async', async () => {
    const s = store('softmax', blobs);
    const getter = { get threads(): number { throw new Error('boom'); } };
    argError(() => predict(s, 'softmax', blobs, getter), 'options', undefined, /reading the options of predict\(\) threw: boom/);
    await expect(predictAsync(s, 'softmax', blobs, getter)).rejects.toThrow(InvalidArgumentError);
    const trap = new Proxy({}, { ownKeys: () => { throw new Error('keys'); } });
    argError(() => predict(s, 'softmax', blobs, trap), 'options', undefined, /threw: keys/);
  });

  test('input whose getters or Proxy traps throw: InvalidArgumentError on input', async () => {
    const s = store('softmax', blobs);
    const rows = new Proxy([[1, 2, 3, 4]], { get: (t, k) => { if (k === '0') throw new Error('p0'); return t[k as never]; } });
    argError(() => predict(s, 'softmax', rows), 'input', undefined, /reading the input threw: p0/);
    argError(() => predict(s, 'softmax', new Proxy(new Float32Array(8), {})), 'input', undefined, /reading the input threw/);
    const m = store('mf', ratings);
    const users = { get users(): number[] { throw new Error('ug'); }, items: [0] };
    argError(() => predict(m, 'mf', users), 'input', undefined, /threw: ug/);
    argError(() => predict(m, 'mf', new Proxy({ users: [0], items: [0] }, { has: () => { throw new Error('has'); } })), 'input', undefined, /threw: has/);
    const l = store('logistic', sparse);
    argError(() => predict(l, 'logistic', [{ indices: [1], get values(): number[] { throw new Error('vg'); } }] as never), 'input', undefined, /threw: vg/);
    await expect(predictAsync(s, 'softmax', rows)).rejects.toThrow(InvalidArgumentError);
  });

  test('an object with the Dataset prototype that no loader made', () => {
    const s = store('softmax', blobs);
    argError(() => predict(s, 'softmax', Object.create(Dataset.prototype)), 'input', undefined, /not made by gradvault/);
  });
});

describe('buffers: detached, shared with another thread', () => {
  test('a typed array over a transferred (detached) buffer is an error, not 0 rows', () => {
    const s = store('softmax', blobs);
    argError(() => predict(s, 'softmax', detached(8)), 'x', undefined, /detached ArrayBuffer/);
    argError(() => Dataset.fromDense(detached(4), { features: 2 }), 'x', undefined, /detached/);
    argError(() => Dataset.fromDense([[1], [2]], { labels: detached(2) }), 'labels', undefined, /detached/);
    argError(() => Dataset.fromSparse({ indptr: [0, 1], indices: new Float64Array([0]), values: detached(1) }), 'values', undefined, /detached/);
    // a real empty array is still 0 rows
    expect(predict(s, 'softmax', new Float32Array(0)).rows).toBe(0);
  });

  test('empty labels or ratings for rows are an error, not an unlabelled set', () => {
    argError(() => Dataset.fromDense([[1], [2]], { labels: new Float32Array(0) }), 'labels', undefined, /labels has 0 values, the data 2 rows/);
    argError(() => Dataset.fromDense([[1], [2]], { labels: [] }), 'labels', undefined, /labels has 0 values/);
    argError(() => Dataset.fromSparse({ indptr: [0, 1], indices: [0], values: [1], labels: [] }), 'labels', undefined, /labels has 0 values, the data 1 rows/);
    argError(() => Dataset.fromRatings({ users: [0, 1], items: [0, 1], ratings: [] }), 'ratings', undefined, /ratings has 0 values, users 2/);
    expect(Dataset.fromDense(new Float32Array(0), { features: 2, labels: [] }).rows).toBe(0);
  });

  // A worker flips one value to NaN and back: the check and the copy of the
  // values must see the same bits (a NaN got into a dataset checked as finite).
  async function racing(read: (x: Float32Array) => Dataset | null): Promise<number> {
    const N = 1 << 20;
    const sab = new SharedArrayBuffer(N * 4 + 4);
    const x = new Float32Array(sab, 0, N).fill(1);
    const stop = new Int32Array(sab, N * 4, 1);
    const w = new Worker(
      `const { workerData } = require('worker_threads');
       const x = new Float32Array(workerData, 0, ${N}), stop = new Int32Array(workerData, ${N * 4}, 1);
       const z = new Int32Array(new SharedArrayBuffer(4));
       while (Atomics.load(stop, 0) === 0) { x[${N / 2}] = NaN; Atomics.wait(z, 0, 0, 0.1); x[${N / 2}] = 1; Atomics.wait(z, 0, 0, 0.1); }`,
      { eval: true, workerData: sab },
    );
    await new Promise((r) => setTimeout(r, 100));
    let nan = 0;
    try {
      for (let t = 0; t < 100; t++) {
        let d: Dataset | null = null;
        try {
          d = read(x);
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidArgumentError);
        }
        if (d && Number.isNaN(d.denseRow(N / 2 / 16)[0])) nan++;
      }
    } finally {
      Atomics.store(stop, 0, 1);
      await w.terminate();
    }
    return nan;
  }

  test('Dataset.fromDense of a Float32Array another thread writes: no NaN gets in', async () => {
    expect(await racing((x) => Dataset.fromDense(x, { features: 16 }))).toBe(0);
  }, 60_000);

  test('the addon copies, then checks (the core alone, shared memory passed straight in)', async () => {
    const read = (x: Float32Array) => {
      try {
        return new Dataset(native().fromDense(x, 16, null));
      } catch (e) {
        throw fromNative(e);
      }
    };
    expect(await racing(read)).toBe(0);
  }, 60_000);
});

describe('answers too large, models that do not add up', () => {
  test('rows × classes beyond one Float32Array: InvalidArgumentError before any allocation, sync and async', async () => {
    const s = storeOf({ W: { shape: [1, 1e6] }, b: { shape: [1e6] } });
    const d = Dataset.fromSparse({ indptr: new Float64Array(5e6 + 1), indices: [], values: [] });
    argError(() => predict(s, 'softmax', d), 'input', undefined, /5000000 rows × 1000000 classes .* predict slices of it/);
    await expect(predictAsync(s, 'softmax', d)).rejects.toThrow(/5000000 rows × 1000000 classes/);
    // 1e6 classes on a few rows is fine
    const p = predict(s, 'softmax', [[1], [2]]);
    expect([p.width, p.probabilities!.length]).toEqual([1e6, 2e6]);
  });

  test('out of memory in the core is a typed error (ERR_INVALID_ARGUMENT on data), not ERR_INTERNAL', async () => {
    // straight to the addon, past the facade's check: 5e6 rows × 1e7 classes
    const s = storeOf({ W: { shape: [1, 1e7] }, b: { shape: [1e7] } });
    const snap = s.snapshot();
    const d = Dataset.fromSparse({ indptr: new Float64Array(5e6 + 1), indices: [], values: [] });
    const args = [snap.names.slice(), snap.names.map((n) => snap.shape(n).slice()), snap.names.map((n) => snap.get(n)), modelArg('softmax', 'test'), d.handle, 1] as const;
    expect(() => native().predict(...args)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', field: 'data' }));
    await expect(native().predictAsync(...args)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'data' });
    snap.release();
  });

  test("mf with bu but no bi: a ShapeError (as exportOnnx), not a model that ignores bu", () => {
    const s = storeOf({ U: { shape: [5, 3] }, V: { shape: [6, 3] }, bu: { shape: [5] } });
    expect(() => predict(s, 'mf', { users: [4], items: [5] })).toThrow(ShapeError);
    expect(() => predict(s, 'mf', { users: [4], items: [5] })).toThrow(/both biases bu \[users\] and bi \[items\] or neither/);
  });
});

describe('ids and indices at 2^32', () => {
  test('messages show large ids in full (4294967296 read as 4.2949673e+09, the same as its limit)', () => {
    argError(() => Dataset.fromRatings({ users: [2 ** 32], items: [0] }), 'users', 0, /users\[0\] is 4294967296, not a user id in 0\.\.4294967295/);
    argError(() => Dataset.fromSparse({ indptr: [0, 1], indices: [2 ** 32 + 1], values: [1] }), 'indices', 0, /indices\[0\] is 4294967297, not a feature index in 0\.\.4294967294/);
  });

  test('an inferred width is at most 4294967295 features, as a given one', () => {
    argError(() => Dataset.fromSparse({ indptr: [0, 1], indices: new Uint32Array([2 ** 32 - 1]), values: [1] }), 'indices', 0, /is 4294967295, not a feature index in 0\.\.4294967294/);
    expect(Dataset.fromSparse({ indptr: [0, 1], indices: [2 ** 32 - 2], values: [1] }).features).toBe(2 ** 32 - 1);
  });
});

describe('fromArrow: one number per row or an error', () => {
  test('Float16 columns are read as their values, not their bits', () => {
    const t = new arrow.Table({ a: arrow.vectorFromArray([1.5, -2.5, 65504, 0.25], new arrow.Float16()) });
    const d = Dataset.fromArrow(t);
    expect(Array.from({ length: 4 }, (_, i) => d.denseRow(i)[0])).toEqual([1.5, -2.5, 65504, 0.25]);
  });

  test('a Decimal column (toArray() is its raw words) is not numeric', () => {
    const dec = arrow.makeVector(arrow.makeData({ type: new arrow.Decimal(2, 10, 128), length: 2, data: new Uint32Array([150, 0, 0, 0, 250, 0, 0, 0]) }));
    argError(() => Dataset.fromArrow(new arrow.Table({ a: dec })), 'features', undefined, /column 'a' is Decimal.*not numeric: its values are 8 numbers for 2 rows/);
  });

  test('features must be column names, label a column name, numRows a count', () => {
    const t = arrow.tableFromArrays({ a: new Float32Array([1]), ab: new Float32Array([2]) });
    argError(() => Dataset.fromArrow(t, { features: 'ab' as never }), 'features', undefined, /features must be an array of column names, got "ab"/);
    argError(() => Dataset.fromArrow(t, { label: 0 as never }), 'label', undefined, /label must be a column name, got 0/);
    const fake = (numRows: number, values: Float32Array) => ({
      numRows,
      schema: { fields: [{ name: 'a', type: 'Float32' }] },
      getChild: () => ({ length: values.length, nullCount: 0, isValid: () => true, toArray: () => values }),
    });
    argError(() => Dataset.fromArrow(fake(1.5, new Float32Array(2))), 'table', undefined, /numRows must be a non-negative integer, got 1\.5/);
    argError(() => Dataset.fromArrow(fake(NaN, new Float32Array(2))), 'table', undefined, /got NaN/);
    argError(() => Dataset.fromArrow(fake(2, new Float32Array(1))), 'features', undefined, /1 numbers for 2 rows/);
  });
});

describe('gradvault predict', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-73-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]) => {
    const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'dist', 'cli.js'), ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  test('a LIBSVM file of fewer features than the model: predicted, not scored, exit 0; the hint names --kind', async () => {
    const s = storeOf({ W: { shape: [3, 3] }, b: { shape: [3] } });
    await s.save(path.join(dir, 'sm.safetensors'));
    const w = storeOf({ w: { shape: [3] }, b: { shape: [1] } });
    await w.save(path.join(dir, 'w.safetensors'));
    fs.writeFileSync(path.join(dir, 'narrow.svm'), '0 1:1 2:2\n');
    const r = run('predict', '--model', 'sm.safetensors', '--data', 'narrow.svm');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n')).toHaveLength(2);
    expect(r.err).toMatch(/predicted 1 rows with softmax .*not scored against the file's labels \(.*2 features, the model 3\)/);
    const amb = run('predict', '--model', 'w.safetensors', '--data', 'narrow.svm');
    expect(amb.code).toBe(2);
    expect(amb.err).toMatch(/choose one with --kind linear\|logistic\|svm/);
  });
});
