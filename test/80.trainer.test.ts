// 80: the native Trainer and evaluate(). Every built-in model trains through
// the public API to a useful score; progress arrives once per epoch; no
// update is lost with several threads; AbortSignal and breaking out of the
// loop stop the threads and leave a usable store; bad options, data and
// stores give typed errors naming the field or tensor. Fashion-MNIST
// (Debian dataset-fashion-mnist, installed by .ci/run) checks the accuracy
// goals of issue 3.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AbortError,
  ConfigError,
  Dataset,
  GradvaultError,
  InvalidArgumentError,
  NonFiniteGradientError,
  ParameterStore,
  ShapeError,
  Trainer,
  evaluate,
  loadCsv,
  loadIdx,
  loadLibsvm,
  synthetic,
  type TrainProgress,
} from '../lib';
import { SAFE_MODES, bits } from './helpers';

jest.setTimeout(120_000);

let dir: string;
let blobs: Dataset, blobsTrain: Dataset, blobsTest: Dataset;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-trainer-'));
  blobs = synthetic('blobs', { rows: 6000, features: 12, classes: 4, seed: 5 });
  [blobsTrain, blobsTest] = blobs.split(0.8);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function collect(it: AsyncIterable<TrainProgress>): Promise<TrainProgress[]> {
  const out: TrainProgress[] = [];
  for await (const p of it) out.push(p);
  return out;
}

describe('models train through the public API', () => {
  test('softmax (auto store): progress per epoch, tensors W and b, accuracy', async () => {
    const t = new Trainer({ model: 'softmax', threads: 2, epochs: 3, batchSize: 8, optimizer: { kind: 'sgd', lr: 0.05 } });
    expect(t.store).toBeUndefined();
    const seen = await collect(t.run(blobsTrain));
    expect(seen.map((p) => p.epoch)).toEqual([1, 2, 3]);
    for (const p of seen) {
      expect(p.epochs).toBe(3);
      expect(p.epochSamples).toBe(blobsTrain.rows);
      expect(p.samplesPerSec).toBeGreaterThan(0);
      expect(p.staleness.rejected).toBe(0);
      expect(p.conflicts).toBe(0);
      expect(Number.isFinite(p.loss)).toBe(true);
    }
    expect(seen[2].samples).toBe(3 * blobsTrain.rows);
    expect(seen[2].loss).toBeLessThan(seen[0].loss);
    const store = t.store!;
    expect(store.tensors.map((x) => [x.name, x.shape])).toEqual([
      ['W', [12, 4]],
      ['b', [4]],
    ]);
    expect(store.mode).toBe('atomic');
    const r = evaluate(store.snapshot(), 'softmax', blobsTest);
    expect(r.rows).toBe(blobsTest.rows);
    expect(r.accuracy).toBeGreaterThan(0.95);
    expect(r.rmse).toBeUndefined();
  });

  test('mlp: W1, b1, W2, b2 (glorot), trains to high accuracy; evaluate takes a store', async () => {
    const t = new Trainer({ model: 'mlp', hidden: [16], threads: 2, epochs: 4, batchSize: 16, optimizer: { kind: 'adam', lr: 0.01 } });
    const res = await t.fit(blobsTrain);
    expect(res).toMatchObject({ epochs: 4, samples: 4 * blobsTrain.rows, reason: 'completed' });
    expect(t.store!.tensors.map((x) => x.name)).toEqual(['W1', 'b1', 'W2', 'b2']);
    expect(t.store!.tensors[0].shape).toEqual([12, 16]);
    expect(evaluate(t.store!, 'mlp', blobsTest).accuracy).toBeGreaterThan(0.95);
  });

  test('logistic and svm on sparse rows (w, b), 1- and 2-thread', async () => {
    const d = synthetic('sparse-logistic', { rows: 20000, features: 300, nnz: 20, seed: 2, noise: 0 });
    const [train, test] = d.split(0.8);
    for (const model of ['logistic', 'svm'] as const) {
      const t = new Trainer({ model, threads: 2, epochs: 5, batchSize: 4, optimizer: { kind: 'sgd', lr: 1 } });
      await t.fit(train);
      expect(t.store!.tensors.map((x) => [x.name, x.shape])).toEqual([
        ['w', [300]],
        ['b', [1]],
      ]);
      const r = evaluate(t.store!.snapshot(), model, test);
      expect(r.accuracy).toBeGreaterThan(0.85);
    }
  });

  test('linear regression on a CSV file: rmse near the noise', async () => {
    const lines = ['x1,x2,y'];
    let s = 1;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    for (let i = 0; i < 4000; i++) {
      const x1 = rnd(), x2 = rnd();
      lines.push(`${x1},${x2},${2 * x1 - 3 * x2 + 1 + 0.01 * rnd()}`);
    }
    const f = path.join(dir, 'lin.csv');
    fs.writeFileSync(f, lines.join('\n'));
    const d = await loadCsv(f, { label: 'y' });
    const t = new Trainer({ model: 'linear', threads: 2, epochs: 20, batchSize: 8, optimizer: { kind: 'sgd', lr: 0.1 } });
    await t.fit(d);
    const r = evaluate(t.store!, 'linear', d);
    expect(r.rmse).toBeLessThan(0.05);
    expect(r.accuracy).toBeUndefined();
    const w = t.store!.snapshot().get('w');
    expect(w[0]).toBeCloseTo(2, 1);
    expect(w[1]).toBeCloseTo(-3, 1);
    expect(t.store!.snapshot().get('b')[0]).toBeCloseTo(1, 1);
  });

  test('mf on ratings: U, V, bu, bi; rmse falls well below the initial one', async () => {
    const d = synthetic('ratings', { rows: 30000, users: 300, items: 200, rank: 4, seed: 1, noise: 0.05 });
    const [train, test] = d.split(0.9);
    const t = new Trainer({ model: 'mf', rank: 4, threads: 2, epochs: 15, batchSize: 16, optimizer: { kind: 'sgd', lr: 0.5 } });
    const first = await collect(t.run(train));
    expect(t.store!.tensors.map((x) => [x.name, x.shape])).toEqual([
      ['U', [300, 4]],
      ['V', [200, 4]],
      ['bu', [300]],
      ['bi', [200]],
    ]);
    const r = evaluate(t.store!, { model: 'mf' }, test);
    expect(first[first.length - 1].loss).toBeLessThan(first[0].loss);
    const std = Math.sqrt(Array.from(test.labels).reduce((a, y) => a + y * y, 0) / test.rows);
    expect(r.rmse!).toBeLessThan(0.5 * std);
  });

  test('a given store is trained in place; its mode and optimizer are used', async () => {
    const store = new ParameterStore({
      tensors: { W: { shape: [12, 4] }, b: { shape: [4] } },
      mode: 'versioned',
      optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.5 },
    });
    const t = new Trainer(store, { model: 'softmax', threads: 2, epochs: 2, batchSize: 8 });
    expect(t.store).toBe(store);
    const res = await t.fit(blobsTrain);
    expect(store.version).toBe(res.samples / 8);
    expect(evaluate(store.snapshot(), 'softmax', blobsTest).accuracy).toBeGreaterThan(0.95);
    expect(store.learningRate).toBeCloseTo(0.05);
    store.close();
  });
});

describe('no lost update, staleness, reproducibility', () => {
  test.each(SAFE_MODES)('%s: 2 threads, every batch applied exactly once', async (mode) => {
    const t = new Trainer({
      model: 'softmax',
      threads: 2,
      epochs: 2,
      batchSize: 10,
      mode,
      ...(mode === 'averaging' ? { syncEvery: 2 } : {}),
      optimizer: { kind: 'sgd', lr: 0.02 },
    });
    const seen = await collect(t.run(blobsTrain));
    const batches = (2 * blobsTrain.rows) / 10;
    const stats = t.store!.stats();
    expect(stats.pushes).toBe(batches);
    expect(stats.rejected).toBe(0);
    expect(stats.staleness.count).toBe(batches);
    expect(seen[1].version).toBe(mode === 'averaging' ? stats.version : batches);
    expect(evaluate(t.store!, 'softmax', blobsTest).accuracy).toBeGreaterThan(0.9);
  });

  test('deterministic mode: the same seed gives the same bits', async () => {
    const run = async () => {
      const t = new Trainer({ model: 'softmax', threads: 1, epochs: 2, batchSize: 4, mode: 'deterministic', seed: 3, optimizer: { kind: 'sgd', lr: 0.05 } });
      await t.fit(blobsTrain);
      return bits(t.store!.snapshot().get('W'));
    };
    expect(await run()).toEqual(await run());
  });

  test('a staleness bound of 0 with policy reject refuses stale pushes and counts them', async () => {
    const t = new Trainer({
      model: 'softmax',
      threads: 2,
      epochs: 2,
      batchSize: 1,
      staleness: { policy: 'reject', bound: 0 },
      optimizer: { kind: 'sgd', lr: 0.02 },
    });
    const seen = await collect(t.run(blobsTrain));
    const rejected = seen.reduce((a, p) => a + p.staleness.rejected, 0);
    const st = t.store!.stats();
    expect(st.rejectedStale).toBe(rejected);
    expect(st.pushes + rejected).toBe(2 * blobsTrain.rows);
  });

  test('maxAhead 0 (lockstep), a step schedule and a target loss', async () => {
    const t = new Trainer({
      model: 'softmax',
      threads: 2,
      epochs: 6,
      batchSize: 8,
      maxAhead: 0,
      lr: 0.08,
      schedule: { kind: 'step', every: 2, gamma: 0.5 },
      optimizer: { kind: 'sgd' },  // lr is its rate too (one learning rate)
    });
    const seen = await collect(t.run(blobsTrain));
    expect(seen.map((p) => p.lr)).toEqual([0.08, 0.08, 0.04, 0.04, 0.02, 0.02].map(Math.fround));
    expect(t.store!.learningRate).toBeCloseTo(0.08); // the schedule's base, restored after the run
    const t2 = new Trainer(t.store!, { model: 'softmax', threads: 2, epochs: 50, targetLoss: 10 });
    const r = await t2.fit(blobsTrain);
    expect(r).toMatchObject({ epochs: 1, reason: 'target-loss' });
  });
});

describe('cancellation', () => {
  test('AbortSignal stops the threads promptly: AbortError, store consistent and usable', async () => {
    const big = synthetic('blobs', { rows: 50000, features: 50, classes: 3 });
    const t = new Trainer({ model: 'softmax', threads: 2, epochs: 1000, batchSize: 1, optimizer: { kind: 'sgd', lr: 0.01 } });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = Date.now();
    const err = await t.fit(big, { signal: ac.signal }).catch((e) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect(err).toBeInstanceOf(GradvaultError);
    expect(err.code).toBe('ABORT_ERR');
    expect(err.result).toMatchObject({ reason: 'aborted' });
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(t.running).toBe(false);
    const store = t.store!;
    const v = store.version;
    expect(store.stats().pushes).toBe(v);
    expect(store.push({ b: new Float32Array(3) }).applied).toBe(true);
    // an aborted signal refuses to start
    await expect(t.fit(big, { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
  });

  test('breaking out of the loop stops training; the trainer can run again', async () => {
    const t = new Trainer({ model: 'softmax', threads: 2, epochs: 100, batchSize: 4, optimizer: { kind: 'sgd', lr: 0.01 } });
    for await (const p of t.run(blobsTrain)) {
      expect(p.epoch).toBe(1);
      break;
    }
    expect(t.running).toBe(false);
    const v = t.store!.version;
    await new Promise((r) => setTimeout(r, 50));
    expect(t.store!.version).toBe(v); // no thread is still pushing
    const t2 = new Trainer(t.store!, { model: 'softmax', threads: 1, epochs: 1 });
    expect((await t2.fit(blobsTrain)).epochs).toBe(1);
  });

  test('one run at a time per trainer', async () => {
    const t = new Trainer({ model: 'softmax', threads: 1, epochs: 3, optimizer: { kind: 'sgd', lr: 0.01 } });
    const first = t.fit(blobsTrain);
    await new Promise((r) => setImmediate(r));
    await expect(t.fit(blobsTrain)).rejects.toThrow(InvalidArgumentError);
    await first;
  });
});

describe('errors', () => {
  const cases: [string, () => unknown, string, RegExp][] = [
    ['model missing', () => new Trainer({} as never), 'model', /model is required/],
    ['unknown model', () => new Trainer({ model: 'cnn' as never }), 'model', /one of 'linear'/],
    ['unknown key with hint', () => new Trainer({ model: 'softmax', thread: 2 } as never), 'thread', /did you mean 'threads'/],
    ['threads 0', () => new Trainer({ model: 'softmax', threads: 0 }), 'threads', /threads must be an integer in 1\.\.1024, got 0/],
    ['batchSize 1.5', () => new Trainer({ model: 'softmax', batchSize: 1.5 }), 'batchSize', /batchSize/],
    ['hidden on softmax', () => new Trainer({ model: 'softmax', hidden: [3] }), 'hidden', /applies to model 'mlp' only/],
    ['hidden entry', () => new Trainer({ model: 'mlp', hidden: [0] }), 'hidden[0]', /hidden\[0\] must be an integer/],
    ['schedule', () => new Trainer({ model: 'softmax', schedule: 'cosine' as never }), 'schedule.kind', /'constant', 'step', 'inverse-sqrt'/],
    ['schedule key', () => new Trainer({ model: 'softmax', schedule: { kind: 'step', gama: 2 } as never }), 'schedule.gama', /did you mean 'gamma'/],
    ['lr', () => new Trainer({ model: 'softmax', lr: -1 }), 'lr', /lr must be > 0, got -1/],
    ['optimizer.lr', () => new Trainer({ model: 'softmax', optimizer: { kind: 'sgd', lr: 0 } }), 'optimizer.lr', /optimizer.lr must be > 0/],
  ];
  test.each(cases)('%s', (_name, f, p, msg) => {
    let err: unknown;
    try {
      f();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).path).toBe(p);
    expect((err as Error).message).toMatch(msg);
  });

  test('store options are refused beside a given store', () => {
    const store = new ParameterStore({ tensors: { W: { shape: [12, 4] }, b: { shape: [4] } } });
    expect(() => new Trainer(store, { model: 'softmax', mode: 'locked' } as never)).toThrow(/mode is not a known option/);
    store.close();
  });

  test('a store without the model tensors: ShapeError naming the tensor', async () => {
    const store = new ParameterStore({ tensors: { W: { shape: [12, 5] }, b: { shape: [4] } } });
    const err = await new Trainer(store, { model: 'softmax', threads: 1 }).fit(blobsTrain).catch((e) => e);
    expect(err).toBeInstanceOf(ShapeError);
    expect(err.tensor).toBe('W');
    expect(err.message).toMatch(/tensor 'W' has shape \[12, 5\], the model and data need \[12, 4\]/);
    store.close();
    await expect(new Trainer(store, { model: 'softmax' }).fit(blobsTrain)).rejects.toThrow(/closed/);
  });

  test('data of the wrong kind for the model', async () => {
    await expect(new Trainer({ model: 'logistic', threads: 1 }).fit(blobs)).rejects.toThrow(/binary labels/);
    await expect(new Trainer({ model: 'mf', threads: 1 }).fit(blobs)).rejects.toThrow(InvalidArgumentError);
    await expect(new Trainer({ model: 'softmax' }).fit({} as never)).rejects.toThrow(InvalidArgumentError);
    // store options of an auto trainer are checked when it is made
    expect(() => new Trainer({ model: 'softmax', mode: 'atomic', syncEvery: 3 })).toThrow(/syncEvery applies to mode 'averaging' only/);
  });

  test('a diverging run: NonFiniteGradientError names the tensor and the run stops', async () => {
    const t = new Trainer({ model: 'mlp', hidden: [8], threads: 2, epochs: 5, optimizer: { kind: 'sgd', lr: 1e30 } });
    const err = await t.fit(blobsTrain).catch((e) => e);
    expect(err).toBeInstanceOf(NonFiniteGradientError);
    // whichever is found first: a non-finite gradient (naming its tensor), a
    // step that would overflow (naming it too), or a non-finite loss (no tensor)
    expect(['W1', 'b1', 'W2', 'b2', '']).toContain(err.tensor);
    expect(err.message).toMatch(/non-finite/);
    expect(t.running).toBe(false);
  });

  test('evaluate: wrong model for the snapshot, bad arguments', () => {
    const store = new ParameterStore({ tensors: { W: { shape: [12, 4] }, b: { shape: [4] } } });
    expect(() => evaluate(store.snapshot(), 'mlp', blobs)).toThrow(ShapeError);
    expect(() => evaluate(store.snapshot(), 'logistic', blobs)).toThrow(/needs a tensor 'w'/);
    expect(() => evaluate(store.snapshot(), 'cnn' as never, blobs)).toThrow(ConfigError);
    expect(() => evaluate({} as never, 'softmax', blobs)).toThrow(InvalidArgumentError);
    expect(() => evaluate(store.snapshot(), 'softmax', [] as never)).toThrow(InvalidArgumentError);
    const other = synthetic('blobs', { rows: 10, features: 7, classes: 4 });
    expect(() => evaluate(store.snapshot(), 'softmax', other)).toThrow(/7 features, the model 12/);
    store.close();
  });
});

const FASHION = '/usr/share/datasets/fashion-mnist';
const haveFashion = fs.existsSync(path.join(FASHION, 'train-images-idx3-ubyte.gz'));
(haveFashion ? describe : describe.skip)('Fashion-MNIST accuracy (issue 3 goals)', () => {
  let train: Dataset, testSet: Dataset;
  beforeAll(async () => {
    train = await loadIdx(path.join(FASHION, 'train-images-idx3-ubyte.gz'), path.join(FASHION, 'train-labels-idx1-ubyte.gz'));
    testSet = await loadIdx(path.join(FASHION, 't10k-images-idx3-ubyte.gz'), path.join(FASHION, 't10k-labels-idx1-ubyte.gz'));
  });

  // One thread: the same bits on every run, so the margin over the goal (0.847 and 0.888 here) is not noise.
  test('softmax, 5 epochs, batch 32: test accuracy >= 0.84', async () => {
    const t = new Trainer({
      model: 'softmax',
      threads: 1,
      epochs: 5,
      batchSize: 32,
      schedule: { kind: 'step', every: 2, gamma: 0.5 },
      optimizer: { kind: 'adam', lr: 0.002 },
    });
    await t.fit(train);
    expect(evaluate(t.store!, 'softmax', testSet).accuracy).toBeGreaterThanOrEqual(0.84);
  });

  test('mlp 784-128-10, 15 epochs, batch 16: test accuracy >= 0.88', async () => {
    const t = new Trainer({
      model: 'mlp',
      hidden: [128],
      threads: 1,
      epochs: 15,
      batchSize: 16,
      schedule: { kind: 'step', every: 5, gamma: 0.5 },
      optimizer: { kind: 'sgd', lr: 0.1 },
    });
    await t.fit(train);
    expect(evaluate(t.store!, 'mlp', testSet).accuracy).toBeGreaterThanOrEqual(0.88);
  });
});
