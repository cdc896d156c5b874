// Defaults live in lib/ (what users get) and in the core's structs (what a
// C++ caller gets): where both have one, they must agree. And the addon
// takes no defaults of its own: a missing field or an unknown name is an
// error there, never a silent fallback.
import { DEFAULTS, MAX_TENSOR_ELEMENTS, TENSOR_DEFAULTS } from '../lib/config';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native, type NativeStoreConfig } from '../lib/native';
import { TRAINER_DEFAULTS } from '../lib/trainer';

const core = native().defaults();
const f32 = Math.fround;

describe('defaults: lib/ and the core agree', () => {
  test('store options', () => {
    expect(core.store.mode).toBe(DEFAULTS.mode);
    expect(core.store.nonFinite).toBe(DEFAULTS.nonFinite);
    expect(core.store.syncEvery).toBe(DEFAULTS.syncEvery);
    expect(core.store.seed).toBe(DEFAULTS.seed);
    expect(core.store.staleness).toEqual({ policy: 'accept', bound: null });  // lib/config.ts: staleness defaults to { policy: 'accept' }
    expect(core.store.verify).toBe(DEFAULTS.verify);
    expect(f32(core.store.adamLr)).toBe(f32(DEFAULTS.adamLr));  // a checkpoint's adam settings without lr
  });

  test('optimizer (the core holds float32)', () => {
    const o = DEFAULTS.optimizer;
    expect(core.store.optimizer.kind).toBe(o.kind);
    for (const k of ['lr', 'momentum', 'weightDecay', 'beta1', 'beta2', 'alpha', 'eps'] as const) expect([k, f32(core.store.optimizer[k])]).toEqual([k, f32(o[k])]);
    expect(core.store.optimizer.nesterov).toBe(o.nesterov);
    expect(core.store.optimizer.decoupled).toBe(o.decoupled);
  });

  test('tensors, and one size limit', () => {
    expect(core.tensor.init).toBe(TENSOR_DEFAULTS.init);
    expect(core.tensor.std).toBe(f32(TENSOR_DEFAULTS.std));
    // lib/config.ts said 2^32, the core 4.0e9: a tensor in between passed one and failed the other
    expect(core.maxTensorElements).toBe(MAX_TENSOR_ELEMENTS);
  });

  test('model and trainer', () => {
    const D = TRAINER_DEFAULTS;
    expect(core.model).toEqual({ hidden: [...D.hidden], rank: D.rank, biases: D.biases, l2: D.l2 });
    for (const k of ['epochs', 'batchSize', 'seed', 'lr', 'stepEvery', 'scale', 'maxAhead'] as const) expect([k, core.trainer[k]]).toEqual([k, D[k]]);
    expect(core.trainer.gamma).toBe(f32(D.gamma));
  });
});

describe('the addon parses names in the core and takes no defaults', () => {
  const optimizer = { ...DEFAULTS.optimizer };
  const config: NativeStoreConfig = { mode: 'atomic', optimizer, staleness: { policy: 'accept', bound: null }, nonFinite: 'reject', syncEvery: 1, seed: 0, verify: false };
  const tensors = [{ name: 'w', shape: [2], init: 'zeros' as const, std: 0.01 }];
  const make = (c: object, t: object[] = tensors) => () => new (native().NativeStore)(c as NativeStoreConfig, t as typeof tensors);

  test('a complete config makes a store', () => {
    expect(make(config)().info().mode).toBe('atomic');
  });

  test.each([
    ['mode', { ...config, mode: 'fast' }, "mode must be one of 'atomic', 'locked', 'versioned', 'deterministic', 'averaging', 'hogwild', got 'fast'"],
    ['optimizer.kind', { ...config, optimizer: { ...optimizer, kind: 'lbfgs' } }, "optimizer.kind must be one of 'sgd', 'adagrad', 'rmsprop', 'adam', got 'lbfgs'"],
    ['staleness.policy', { ...config, staleness: { policy: 'drop', bound: null } }, "staleness.policy must be one of 'accept', 'scale', 'reject', got 'drop'"],
    // was quietly 'reject'
    ['nonFinite', { ...config, nonFinite: 'ignore' }, "nonFinite must be one of 'reject', 'skip', got 'ignore'"],
  ])('unknown %s: ERR_CONFIG naming field and value', (field, c, message) => {
    expect(make(c)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', field, message }));
  });

  test('unknown init', () => {
    expect(make(config, [{ ...tensors[0], init: 'ones' }])).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', field: 'init' }));
  });

  test.each(['mode', 'optimizer', 'staleness', 'nonFinite', 'syncEvery', 'seed'])('a missing %s is an internal error, not a default', (key) => {
    const c: Record<string, unknown> = { ...config };
    delete c[key];
    expect(make(c)).toThrow(expect.objectContaining({ code: 'ERR_INTERNAL', message: `the addon was called without the field '${key}'` }));
  });

  test("unknown schedule: ERR_CONFIG (was quietly 'constant')", () => {
    const store = make(config)();
    const data = native().synthetic('blobs', { rows: 10, seed: 0, features: 2, classes: 2, spread: 1 });
    const model = { kind: 'softmax' as const, hidden: [128], rank: 10, biases: true, l2: 0 };
    const opts = { threads: 1, epochs: 1, batchSize: 1, seed: 0, lr: 0, schedule: 'cosine', stepEvery: 1, gamma: 0.5, scale: 1000, maxAhead: -1, targetLoss: NaN };
    expect(() => native().train(store, data, model, opts as never, () => {})).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG', field: 'schedule.kind', message: "schedule.kind must be one of 'constant', 'step', 'inverse-sqrt', got 'cosine'" }),
    );
    expect(() => native().modelTensors({ ...model, kind: 'tree' as never }, data)).toThrow(expect.objectContaining({ code: 'ERR_CONFIG', field: 'model' }));
    store.close();
  });
});

describe('the core checks what the glue passes through', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-15-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('loaders: indexBase and header are -1, 0 or 1 (other values used to mean auto)', async () => {
    const svm = path.join(dir, 'a.svm');
    fs.writeFileSync(svm, '1 1:0.5\n');
    await expect(native().loadLibsvm(svm, { indexBase: 2, features: 0 })).rejects.toMatchObject({ code: 'ERR_CONFIG', field: 'indexBase' });
    expect((await native().loadLibsvm(svm, { indexBase: 1, features: 0 })).info().rows).toBe(1);
    const csv = path.join(dir, 'a.csv');
    fs.writeFileSync(csv, '1,2\n');
    const opts = { labelIndex: 0, labelName: '', delimiter: ',' };
    await expect(native().loadCsv(csv, { ...opts, header: 5 })).rejects.toMatchObject({ code: 'ERR_CONFIG', field: 'header' });
    expect((await native().loadCsv(csv, { ...opts, header: 0 })).info().rows).toBe(1);
  });

  test('evaluate: values that do not fill their shape are ERR_SHAPE', () => {
    const data = native().synthetic('blobs', { rows: 4, seed: 0, features: 2, classes: 2, spread: 1 });
    const model = { kind: 'softmax' as const, hidden: [128], rank: 10, biases: true, l2: 0 };
    const tensors = native().modelTensors(model, data);
    const names = tensors.map((t) => t.name);
    const shapes = tensors.map((t) => t.shape);
    const arrays = shapes.map((s) => new Float32Array(s.reduce((a, b) => a * b, 1)));
    expect(native().evaluate(names, shapes, arrays, model, data).rows).toBe(4);
    arrays[0] = new Float32Array(arrays[0].length + 1);
    expect(() => native().evaluate(names, shapes, arrays, model, data)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE' }));
  });
});

describe('one set of defaults for the library and the CLI (issue 15)', () => {
  const { Trainer, defaultLearningRate, synthetic, ParameterStore, modelTensors, ConfigError } = require('../lib') as typeof import('../lib');
  const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
  // commander wraps the help at 80 columns: one line of it, spaces collapsed
  const cliHelp = execFileSync(process.execPath, [path.join(__dirname, '..', 'dist', 'cli.js'), 'train', '--help'], { encoding: 'utf8' }).replace(/\s+/g, ' ');
  const cliDefault = (flag: string) => Number(new RegExp(`--${flag} <\\w+> [^-]*?\\(default: (\\d+)\\)`).exec(cliHelp)?.[1]);

  test("the CLI's batch and threads defaults are the library's", () => {
    const t = new Trainer({ model: 'softmax' });
    expect(t.options.batchSize).toBe(32);
    expect(cliDefault('batch')).toBe(t.options.batchSize);
    expect(cliDefault('threads')).toBe(t.options.threads);
    expect(t.options.threads).toBe(Math.max(1, os.availableParallelism()));
  });

  test('trainer.options shows the resolved values', () => {
    const t = new Trainer({ model: 'mlp' });
    expect(t.options).toMatchObject({ model: 'mlp', hidden: [128], epochs: 1, batchSize: 32, seed: 0, lr: 0.1, optimizer: { lr: 0.1 } });
    const mf = new Trainer({ model: 'mf', optimizer: { kind: 'adam' } });
    expect(mf.options).toMatchObject({ rank: 10, biases: true, l2: 0, lr: 0.001 });
    const d = synthetic('blobs', { rows: 100, features: 3, classes: 2 });
    const store = new ParameterStore({ tensors: modelTensors({ model: 'softmax' }, d), optimizer: { kind: 'sgd', lr: 0.25 } });
    expect(new Trainer(store, { model: 'softmax' }).options).toMatchObject({ batchSize: 32, lr: 0.25 });
    expect(new Trainer(store, { model: 'softmax', lr: 0.5 }).options.lr).toBe(0.5);
    store.close();
  });

  test("the learning rate is the model's, for the library and the CLI", () => {
    for (const [m, lr] of [['logistic', 2], ['svm', 2], ['mf', 0.5], ['linear', 0.1], ['softmax', 0.1], ['mlp', 0.1]] as const) {
      expect([m, defaultLearningRate(m)]).toEqual([m, lr]);
      expect([m, new Trainer({ model: m }).options.lr]).toEqual([m, lr]);
    }
    expect(defaultLearningRate('softmax', 'adam')).toBe(0.001);
  });

  test('one learning rate: lr and optimizer.lr must agree, and lr alone is saved', async () => {
    expect(() => new Trainer({ model: 'softmax', lr: 0.5, optimizer: { kind: 'sgd', lr: 0.01 } })).toThrow(ConfigError);
    try {
      new Trainer({ model: 'softmax', lr: 0.5, optimizer: { kind: 'sgd', lr: 0.01 } });
    } catch (e) {
      expect((e as InstanceType<typeof ConfigError>).path).toBe('lr');
      expect((e as Error).message).toMatch(/lr \(0\.5\) and optimizer\.lr \(0\.01\) disagree/);
    }
    expect(new Trainer({ model: 'softmax', lr: 0.5, optimizer: { kind: 'sgd', lr: 0.5 } }).options.lr).toBe(0.5);
    const t = new Trainer({ model: 'softmax', lr: 0.5, threads: 1 });
    await t.fit(synthetic('blobs', { rows: 200, features: 3, classes: 2 }));
    expect(t.store!.options.optimizer.lr).toBe(0.5);
    t.store!.close();
  });
});
