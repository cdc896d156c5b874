// predict / predictAsync against evaluate, every input form, and the
// datasets made from memory (fromDense, fromSparse, fromRatings, fromArrow,
// shuffle) with their bad-input errors.
import * as fs from 'fs';
import * as path from 'path';
import * as arrow from 'apache-arrow';
import fc from 'fast-check';
import {
  Dataset,
  InvalidArgumentError,
  ParameterStore,
  ShapeError,
  Trainer,
  evaluate,
  loadIdx,
  modelTensors,
  predict,
  predictAsync,
  synthetic,
  type ModelKind,
  type Prediction,
} from '../lib';
import { expectSameBits } from './helpers';

const stores: ParameterStore[] = [];
afterAll(() => stores.forEach((s) => s.close()));

async function trained(model: ModelKind, data: Dataset, lr: number, batchSize = 32, epochs = 2): Promise<ParameterStore> {
  const store = new ParameterStore({ tensors: modelTensors({ model }, data), mode: 'atomic', optimizer: { kind: 'sgd', lr } });
  stores.push(store);
  await new Trainer(store, { model, threads: 2, epochs, batchSize, seed: 1 }).fit(data);
  return store;
}

// The accuracy predict's answers give, from the labels.
function accuracy(p: Prediction, d: Dataset): number {
  let ok = 0;
  if (p.model === 'softmax' || p.model === 'mlp') {
    const ids = d.classIds!;
    for (let i = 0; i < d.rows; i++) ok += p.classes![i] === ids[i] ? 1 : 0;
  } else {
    const y = d.labels;
    const label = (i: number) => (p.labels ? p.labels[i] : p.values![i] > 0 ? 1 : -1);
    for (let i = 0; i < d.rows; i++) ok += label(i) === y[i] ? 1 : 0;
  }
  return ok / d.rows;
}

describe('predict agrees with evaluate', () => {
  const blobs = synthetic('blobs', { rows: 6000, features: 8, classes: 5, spread: 2, seed: 3 });
  const [btrain, btest] = blobs.split(0.8);
  const sparse = synthetic('sparse-logistic', { rows: 8000, features: 2000, seed: 4 });
  const [strain, stest] = sparse.split(0.8);

  test.each(['softmax', 'mlp'] as const)('%s on blobs: classes give evaluate accuracy, probabilities sum to 1', async (model) => {
    const store = await trained(model, btrain, 0.1);
    const ev = evaluate(store, model, btest);
    const p = predict(store.snapshot(), model, btest);
    expect(p.rows).toBe(btest.rows);
    expect(p.width).toBe(5);
    expect(accuracy(p, btest)).toBe(ev.accuracy);
    expect(ev.accuracy!).toBeGreaterThan(0.8);
    for (let i = 0; i < p.rows; i++) {
      let s = 0, best = 0;
      for (let c = 0; c < 5; c++) {
        const v = p.probabilities![i * 5 + c];
        expect(v).toBeGreaterThanOrEqual(0);
        s += v;
        if (v > p.probabilities![i * 5 + best]) best = c;
      }
      expect(Math.abs(s - 1)).toBeLessThan(1e-5);
      expect(p.classes![i]).toBe(best);
    }
  });

  test.each(['logistic', 'svm', 'linear'] as const)('%s on sparse rows: labels give evaluate accuracy', async (model) => {
    const store = await trained(model, strain, 0.5, 1, 2);
    const ev = evaluate(store, model, stest);
    const p = predict(store, model, stest);
    if (model === 'linear') {
      // rmse from the values
      let se = 0;
      const y = stest.labels;
      for (let i = 0; i < p.rows; i++) se += (p.values![i] - y[i]) ** 2;
      expect(Math.sqrt(se / p.rows)).toBeCloseTo(ev.rmse!, 4);
    } else {
      expect(accuracy(p, stest)).toBe(ev.accuracy);
      for (let i = 0; i < p.rows; i++) expect(p.classes![i]).toBe(p.labels![i] > 0 ? 1 : 0);
    }
    if (model === 'logistic') for (const v of p.probabilities!) expect(v >= 0 && v <= 1).toBe(true);
    if (model === 'svm') for (let i = 0; i < p.rows; i++) expect(p.labels![i]).toBe(p.scores![i] > 0 ? 1 : -1);
  });

  test('mf: ratings of (user, item) pairs equal those of the ratings dataset; rmse as evaluate', async () => {
    const r = synthetic('ratings', { rows: 20000, users: 200, items: 300, seed: 5 });
    const store = await trained('mf', r, 0.05, 1, 3);
    const p = predict(store, 'mf', r);
    let se = 0;
    const y = r.labels;
    for (let i = 0; i < r.rows; i++) se += (p.ratings![i] - y[i]) ** 2;
    expect(Math.sqrt(se / r.rows)).toBeCloseTo(evaluate(store, 'mf', r).rmse!, 4);
    const users = [0, 1, 2].map((i) => (r.row(i) as { user: number }).user);
    const items = [0, 1, 2].map((i) => (r.row(i) as { item: number }).item);
    const q = predict(store, 'mf', { users, items });
    expectSameBits(q.ratings!, p.ratings!.slice(0, 3));
    expect(() => predict(store, 'mf', { users: [200], items: [0] })).toThrow(ShapeError);
    try {
      predict(store, 'mf', { users: [0, 1], items: [0, 300] });
    } catch (e) {
      expect(e).toBeInstanceOf(ShapeError);
      expect((e as ShapeError).tensor).toBe('V');
      expect((e as Error).message).toMatch(/items\[1\] is 300, beyond the model's 300 items; tensor 'V' has shape \[300, 10\]/);
    }
  });

  const fashion = '/usr/share/datasets/fashion-mnist';
  const haveFashion = fs.existsSync(path.join(fashion, 't10k-images-idx3-ubyte.gz'));
  (haveFashion ? test : test.skip)(
    `softmax on Fashion-MNIST: predict's classes give evaluate's accuracy${haveFashion ? '' : ' (skipped: apt-get install dataset-fashion-mnist)'}`,
    async () => {
      const test10k = await loadIdx(path.join(fashion, 't10k-images-idx3-ubyte.gz'), path.join(fashion, 't10k-labels-idx1-ubyte.gz'));
      const [train, test] = test10k.split(8000);
      const store = await trained('softmax', train, 0.1, 32, 2);
      const ev = evaluate(store, 'softmax', test);
      const p = await predictAsync(store, 'softmax', test);
      expect(accuracy(p, test)).toBe(ev.accuracy);
      expect(ev.accuracy!).toBeGreaterThan(0.7);
    },
    60_000,
  );
});

describe('input forms give the same bits', () => {
  test('Dataset, flat Float32Array, array of rows, fromDense; predictAsync; any thread count', async () => {
    const d = synthetic('blobs', { rows: 20000, features: 6, classes: 3, seed: 7 });
    const store = await trained('mlp', d, 0.05, 32, 1);
    const snap = store.snapshot();
    const ref = predict(snap, 'mlp', d, { threads: 1 });
    const flat = new Float32Array(d.rows * 6);
    const rows: Float32Array[] = [];
    for (let i = 0; i < d.rows; i++) {
      const r = d.denseRow(i);
      flat.set(r, i * 6);
      rows.push(r);
    }
    for (const p of [
      predict(snap, 'mlp', flat),
      predict(snap, 'mlp', rows),
      predict(snap, 'mlp', rows.map((r) => Array.from(r))),
      predict(snap, 'mlp', Dataset.fromDense(flat, { features: 6 })),
      predict(snap, 'mlp', d, { threads: 2 }),
      predict(snap, 'mlp', d, { threads: 7 }),
      await predictAsync(snap, 'mlp', d),
      await predictAsync(store, 'mlp', flat, { threads: 1 }),
    ]) {
      expectSameBits(p.probabilities!, ref.probabilities!);
      expect(Array.from(p.classes!)).toEqual(Array.from(ref.classes!));
    }
    snap.release();
  });

  test('sparse rows and a CSR Dataset give the bits of the dense rows', async () => {
    const d = synthetic('sparse-logistic', { rows: 500, features: 300, nnz: 20, seed: 8 });
    const store = await trained('logistic', d, 0.5, 1, 1);
    const ref = predict(store, 'logistic', d);
    const rows = Array.from({ length: d.rows }, (_, i) => d.sparseRow(i));
    expectSameBits(predict(store, 'logistic', rows).probabilities!, ref.probabilities!);
    const indptr = [0];
    const indices: number[] = [];
    const values: number[] = [];
    for (const r of rows) {
      indices.push(...r.indices);
      values.push(...r.values);
      indptr.push(indices.length);
    }
    const csr = Dataset.fromSparse({ indptr, indices, values, features: 300 });
    expectSameBits(predict(store, 'logistic', csr).probabilities!, ref.probabilities!);
    // sparse rows may use fewer features than the model (a test file's largest index)
    const few = Dataset.fromSparse({ indptr: [0, 1], indices: [5], values: [2] });
    expect(few.features).toBe(6);
    expect(predict(store, 'logistic', few).rows).toBe(1);
  });

  test('shape mismatches are ShapeErrors naming the tensor and both shapes', async () => {
    const d = synthetic('blobs', { rows: 300, features: 4, classes: 3 });
    const store = await trained('softmax', d, 0.1, 32, 1);
    const check = (f: () => unknown, re: RegExp) => {
      try {
        f();
        throw new Error('no error');
      } catch (e) {
        expect(e).toBeInstanceOf(ShapeError);
        expect((e as ShapeError).tensor).toBe('W');
        expect((e as Error).message).toMatch(re);
      }
    };
    check(() => predict(store, 'softmax', new Float32Array(10)), /10 values, not a whole number of rows of 4 features; tensor 'W' has shape \[4, 3\]/);
    check(() => predict(store, 'softmax', [[1, 2, 3]]), /rows of 3 features, the model takes 4; tensor 'W' has shape \[4, 3\]/);
    check(() => predict(store, 'softmax', synthetic('blobs', { rows: 10, features: 5 })), /rows of 5 features/);
    check(() => predict(store, 'softmax', [{ indices: new Uint32Array([4]), values: new Float32Array([1]) }]), /rows of 5 features, the model takes 4/);
    // the wrong model for the tensors
    expect(() => predict(store, 'mlp', d)).toThrow(/model 'mlp' needs tensors W1/);
    expect(() => predict(store, 'mf', d)).toThrow(/needs a tensor 'U'|predicts/);
    expect(() => predict(store, 'softmax', { users: [1], items: [1] } as never)).toThrow(InvalidArgumentError);
    expect(() => predict(store, 'softmax', 'rows' as never)).toThrow(InvalidArgumentError);
    expect(() => predict(store, 'softmax', d, { threads: -1 })).toThrow(/threads/);
    expect(() => predict(store, 'softmax', d, { thread: 1 } as never)).toThrow(/unknown option 'thread'/);
    expect(() => predict({} as never, 'softmax', d)).toThrow(/Snapshot or a ParameterStore/);
    await expect(predictAsync(store, 'mlp', d)).rejects.toThrow(ShapeError);
  });
});

describe('datasets from memory', () => {
  const expectArgError = (f: () => unknown, field: string, index: number | undefined, re: RegExp) => {
    try {
      f();
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidArgumentError);
      expect((e as InvalidArgumentError).field).toBe(field);
      expect((e as InvalidArgumentError).index).toBe(index);
      expect((e as Error).message).toMatch(re);
    }
  };

  test('fromDense copies rows and labels; classes follow the loaders', () => {
    const x = new Float32Array([1, 2, 3, 4, 5, 6]);
    const d = Dataset.fromDense(x, { features: 2, labels: [0, 2, 1] });
    x[0] = 99; // a copy: the dataset keeps its values
    expect([d.kind, d.rows, d.features, d.classes]).toEqual(['dense', 3, 2, 3]);
    expect(Array.from(d.denseRow(0))).toEqual([1, 2]);
    expect(Array.from(d.classIds!)).toEqual([0, 2, 1]);
    expect(Dataset.fromDense([[1], [2]], { labels: [1, -1] }).classes).toBe(2);
    expect(Dataset.fromDense([[1], [2]], { labels: [0.5, 2.5] }).classes).toBe(0);
    expect(Dataset.fromDense([[1], [2]]).classes).toBe(0);
    expect(Dataset.fromDense(new Float32Array(0), { features: 3 }).rows).toBe(0);
  });

  test('fromDense bad input names the array and index', () => {
    expectArgError(() => Dataset.fromDense([1, 2, NaN, 4], { features: 2 }), 'x', 2, /x\[2\] \(row 1, column 0\) is NaN/);
    expectArgError(() => Dataset.fromDense([1, 2, 3], { features: 2 }), 'x', undefined, /3 values, not a whole number of rows of 2/);
    expectArgError(() => Dataset.fromDense([1, 2], {}), 'features', undefined, /features is required/);
    expectArgError(() => Dataset.fromDense([1, 2], { features: 0 }), 'features', undefined, /features must be/);
    expectArgError(() => Dataset.fromDense([[1, 2], [3]]), 'x', 1, /x\[1\] is not a row of 2 numbers/);
    expectArgError(() => Dataset.fromDense([[1], [2]], { labels: [1] }), 'labels', undefined, /labels has 1 values, the data 2 rows/);
    expectArgError(() => Dataset.fromDense([[1], [2]], { labels: [1, Infinity] }), 'labels', 1, /labels\[1\] is Infinity/);
    expectArgError(() => Dataset.fromDense(['a', 'b'] as never, { features: 1 }), 'x', 0, /x\[0\] is "a", not a number/);
    expect(() => Dataset.fromDense([[1]], { feature: 1 } as never)).toThrow(/feature/);
  });

  test('fromSparse bad input names the array and index', () => {
    const ok = { indptr: [0, 2, 3], indices: [0, 4, 1], values: [1, 2, 3] };
    const d = Dataset.fromSparse({ ...ok, labels: [1, -1] });
    expect([d.kind, d.rows, d.features, d.nnz, d.classes]).toEqual(['sparse', 2, 5, 3, 2]);
    expect(Array.from(d.sparseRow(0).indices)).toEqual([0, 4]);
    expectArgError(() => Dataset.fromSparse({ ...ok, indptr: [1, 2, 3] }), 'indptr', 0, /indptr\[0\] is 1, not 0/);
    expectArgError(() => Dataset.fromSparse({ ...ok, indptr: [0, 3, 2] }), 'indptr', 2, /indptr\[2\] is 2, not an offset in 3\.\.3/);
    expectArgError(() => Dataset.fromSparse({ ...ok, indptr: [0, 2, 2] }), 'indptr', 2, /not the number of nonzeros 3/);
    expectArgError(() => Dataset.fromSparse({ ...ok, indptr: [0, 1.5, 3] }), 'indptr', 1, /1\.5/);
    expectArgError(() => Dataset.fromSparse({ ...ok, indices: [0, -4, 1] }), 'indices', 1, /indices\[1\] is -4, not a feature index/);
    expectArgError(() => Dataset.fromSparse({ ...ok, indices: [4, 0, 1] }), 'indices', 1, /indices ascend within a row/);
    expectArgError(() => Dataset.fromSparse({ ...ok, features: 4 }), 'indices', 1, /indices\[1\] is 4, not a feature index in 0\.\.3/);
    expectArgError(() => Dataset.fromSparse({ ...ok, values: [1, NaN, 3] }), 'values', 1, /values\[1\] is NaN/);
    expectArgError(() => Dataset.fromSparse({ ...ok, values: [1, 2] }), 'values', undefined, /values has 2 entries, indices 3/);
    expectArgError(() => Dataset.fromSparse({ ...ok, indptr: [] }), 'indptr', undefined, /empty/);
    expectArgError(() => Dataset.fromSparse(null as never), 'input', undefined, /takes an object/);
  });

  test('fromRatings trains mf; bad ids name the array and index', async () => {
    const r = synthetic('ratings', { rows: 1000, users: 50, items: 60, seed: 2 });
    const users: number[] = [], items: number[] = [], ratings: number[] = [];
    for (let i = 0; i < r.rows; i++) {
      const row = r.row(i) as { user: number; item: number; rating: number };
      users.push(row.user);
      items.push(row.item);
      ratings.push(row.rating);
    }
    const d = Dataset.fromRatings({ users, items, ratings, userCount: 50, itemCount: 60 });
    expect([d.kind, d.rows, d.users, d.items]).toEqual(['ratings', 1000, 50, 60]);
    expectSameBits(d.labels, r.labels);
    expectArgError(() => Dataset.fromRatings({ users: [0, 1.5], items: [0, 1], ratings: [1, 2] }), 'users', 1, /users\[1\] is 1\.5/);
    expectArgError(() => Dataset.fromRatings({ users: [0, 1], items: [0, 9], itemCount: 5 }), 'items', 1, /items\[1\] is 9, not an item id in 0\.\.4/);
    expectArgError(() => Dataset.fromRatings({ users: [0, 1], items: [0] }), 'items', undefined, /items has 1 ids, users 2/);
    expectArgError(() => Dataset.fromRatings({ users: [0], items: [0], ratings: [NaN] }), 'ratings', 0, /ratings\[0\] is NaN/);
  });

  test('fromArrow reads an apache-arrow table; nulls and text columns are named', () => {
    const table = arrow.tableFromArrays({
      a: new Float32Array([1, 2, 3]),
      b: new Float64Array([4, 5, 6]),
      y: new Int32Array([0, 1, 1]),
    });
    const d = Dataset.fromArrow(table, { label: 'y' });
    expect([d.rows, d.features, d.classes]).toEqual([3, 2, 2]);
    expect(Array.from(d.denseRow(2))).toEqual([3, 6]);
    const only = Dataset.fromArrow(table, { label: 'y', features: ['b'] });
    expect(Array.from(only.denseRow(0))).toEqual([4]);
    expect(Dataset.fromArrow(table).features).toBe(3);
    expectArgError(() => Dataset.fromArrow(table, { label: 'z' }), 'label', undefined, /no column 'z' \(columns: a, b, y\)/);
    const withNull = arrow.tableFromJSON([{ a: 1, y: 0 }, { a: null, y: 1 }]);
    expectArgError(() => Dataset.fromArrow(withNull, { label: 'y' }), 'features', 1, /column 'a' is null at row 1/);
    const text = arrow.tableFromJSON([{ a: 'x', y: 0 }]);
    expectArgError(() => Dataset.fromArrow(text, { label: 'y' }), 'features', undefined, /column 'a' is .*Utf8.*, not numeric/);
    expectArgError(() => Dataset.fromArrow({} as never), 'table', undefined, /apache-arrow Table/);
  });

  test('shuffle is a seeded permutation of the rows, labels with them', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200 }), fc.nat(), (rows, seed) => {
        // regression labels (i + 0.5): kept as they are, and equal to the row's first value
        const x = Float32Array.from({ length: rows * 2 }, (_, i) => (i >> 1) + 0.5);
        const d = Dataset.fromDense(x, { features: 2, labels: Array.from({ length: rows }, (_, i) => i + 0.5) });
        const s = d.shuffle(seed);
        const seen = new Set<number>();
        for (let i = 0; i < rows; i++) {
          const r = s.denseRow(i);
          expect(r[0]).toBe(s.labels[i]);
          seen.add(r[0]);
        }
        expect(seen.size).toBe(rows);
        expectSameBits(d.shuffle(seed).labels, s.labels);
      }),
      { numRuns: 50 },
    );
    const sp = synthetic('sparse-logistic', { rows: 100, features: 50, nnz: 5 });
    const s = sp.shuffle(1);
    expect(s.nnz).toBe(sp.nnz);
    expect(() => sp.shuffle(-1)).toThrow(/seed must be/);
  });
});
