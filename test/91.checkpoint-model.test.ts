// 91: checkpoints know their model (issue 15 item 3). A Trainer records
// the model it trains on the store (kind, options, data shape): store.model,
// saved as metadata "model", read back by load() and inspectCheckpoint();
// a store trained as one model refuses another. The CLI uses it: train
// --resume, predict and export need no --model/--kind, inspect shows it. A
// malformed record is a DataFormatError at the header; a file without one
// (older, or a store never trained) loads as before.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError, DataFormatError, ParameterStore, Trainer, evaluate, predict, synthetic } from '../lib';
import { inspectCheckpoint } from '../lib/checkpoint';

jest.setTimeout(120_000);

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-91-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => path.join(dir, name);

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, FORCE_COLOR: '0' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The file with its metadata changed by f (the header rewritten, padded to 8 bytes; the data as it was). */
function rewriteMetadata(src: string, dst: string, f: (m: Record<string, string>) => void): void {
  const b = fs.readFileSync(src);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  f(header.__metadata__);
  let text = JSON.stringify(header);
  while ((8 + Buffer.byteLength(text)) % 8) text += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  fs.writeFileSync(dst, Buffer.concat([len, Buffer.from(text, 'utf8'), b.subarray(8 + n)]));
}

describe('the library', () => {
  test('svm through a Trainer: store.model, saved, loaded, inspected; evaluate and predict take it', async () => {
    const d = synthetic('sparse-logistic', { rows: 2000, features: 30, nnz: 5, seed: 1, noise: 0 });
    const t = new Trainer({ model: 'svm', threads: 2, epochs: 1, batchSize: 8, optimizer: { kind: 'sgd', lr: 0.5 } });
    await t.fit(d);
    const store = t.store!;
    expect(store.model).toEqual({ model: 'svm', features: 30 });
    expect(Object.isFrozen(store.model)).toBe(true);
    await store.save(file('svm.safetensors'));
    const back = await ParameterStore.load(file('svm.safetensors'));
    expect(back.model).toEqual({ model: 'svm', features: 30 });
    const info = await inspectCheckpoint(file('svm.safetensors'));
    expect(info.model).toEqual({ model: 'svm', features: 30 });
    expect(JSON.parse(info.metadata.model)).toEqual({ kind: 'svm', features: 30 });
    // the description is a model argument (its data shape ignored)
    expect(evaluate(back, back.model!, d)).toEqual(evaluate(store, 'svm', d));
    expect(predict(back, back.model!, d).labels).toEqual(predict(store, 'svm', d).labels);
    // trained again as itself: fine; as another model: ConfigError naming 'model'
    await new Trainer(back, { model: 'svm', threads: 1, epochs: 1 }).fit(d);
    let err: unknown = null;
    try {
      new Trainer(back, { model: 'logistic', threads: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).path).toBe('model');
    expect((err as Error).message).toMatch(/model svm \(features 30\), not logistic/);
    store.close();
    back.close();
  });

  test('mlp and mf record their options and data shape', async () => {
    const blobs = synthetic('blobs', { rows: 500, features: 6, classes: 3, seed: 2 });
    const mlp = new Trainer({ model: 'mlp', hidden: [8, 4], threads: 1, epochs: 1 });
    await mlp.fit(blobs);
    expect(mlp.store!.model).toEqual({ model: 'mlp', hidden: [8, 4], features: 6, classes: 3 });
    const ratings = synthetic('ratings', { rows: 500, users: 40, items: 30, rank: 2, seed: 3 });
    const mf = new Trainer({ model: 'mf', rank: 3, biases: false, l2: 0.25, threads: 1, epochs: 1 });
    await mf.fit(ratings);
    expect(mf.store!.model).toEqual({ model: 'mf', rank: 3, biases: false, l2: 0.25, users: 40, items: 30 });
    for (const [name, t] of [['mlp', mlp], ['mf', mf]] as const) {
      await t.store!.save(file(`${name}.safetensors`));
      const back = await ParameterStore.load(file(`${name}.safetensors`));
      expect(back.model).toEqual(t.store!.model);
      back.close();
    }
    // the same model of another rank: refused
    const loaded = await ParameterStore.load(file('mf.safetensors'));
    expect(() => new Trainer(loaded, { model: 'mf', rank: 4 })).toThrow(/model mf \(rank 3, biases false, users 40, items 30\), not mf \(rank 4/);
    loaded.close();
    mlp.store!.close();
    mf.store!.close();
  });

  test('a store never trained saves no model; its file loads as before', async () => {
    const s = new ParameterStore({ tensors: { w: { shape: [4], init: 'normal' }, b: { shape: [1] } } });
    expect(s.model).toBeUndefined();
    await s.save(file('old.safetensors'));
    const info = await inspectCheckpoint(file('old.safetensors'));
    expect(info.metadata.model).toBeUndefined();
    expect(info.model).toBeUndefined();
    const back = await ParameterStore.load(file('old.safetensors'));
    expect(back.model).toBeUndefined();
    expect(back.snapshot().get('w')).toEqual(s.snapshot().get('w'));
    // training it records the model
    const d = synthetic('sparse-logistic', { rows: 100, features: 4, nnz: 2, seed: 1 });
    await new Trainer(back, { model: 'logistic', threads: 1 }).fit(d);
    expect(back.model).toEqual({ model: 'logistic', features: 4 });
    s.close();
    back.close();
  });

  test('a malformed model record: DataFormatError at the header, naming "model"; inspect still shows the file', async () => {
    const bad: unknown[] = [
      '{',
      '[1]',
      { features: 30 },
      { kind: 'tree', features: 30 },
      { kind: 'svm' },
      { kind: 'svm', features: 0 },
      { kind: 'svm', features: -30 },
      { kind: 'svm', features: '30' },
      { kind: 'svm', features: 30.5 },
      { kind: 'svm', features: 30, classes: 2 },
      { kind: 'svm', features: 31 },
      { kind: 'softmax', features: 30, classes: 2 },
      { kind: 'mlp', hidden: [], features: 30, classes: 2 },
      { kind: 'mf', rank: 2, biases: 1, users: 2, items: 2 },
    ];
    for (const [i, value] of bad.entries()) {
      const f = file(`bad-${i}.safetensors`);
      rewriteMetadata(file('svm.safetensors'), f, (m) => {
        m.model = typeof value === 'string' ? value : JSON.stringify(value);
      });
      const e = await ParameterStore.load(f).then(
        () => null,
        (x: unknown) => x,
      );
      expect({ value, error: e instanceof DataFormatError }).toEqual({ value, error: true });
      expect((e as DataFormatError).offset).toBe(8);
      expect((e as DataFormatError).file).toBe(f);
      expect((e as Error).message).toMatch(/"model"/);
    }
    // inspect shows such a file, without a model (a record of the wrong form) or with it (one that does not fit the tensors)
    expect((await inspectCheckpoint(file('bad-5.safetensors'))).model).toBeUndefined();
    expect((await inspectCheckpoint(file('bad-10.safetensors'))).model).toEqual({ model: 'svm', features: 31 });
    // a key it does not know is ignored
    rewriteMetadata(file('svm.safetensors'), file('extra.safetensors'), (m) => {
      m.model = JSON.stringify({ kind: 'svm', features: 30, note: 'x' });
    });
    const ok = await ParameterStore.load(file('extra.safetensors'));
    expect(ok.model).toEqual({ model: 'svm', features: 30 });
    ok.close();
    // another writer's "model" (a file not of this format) is its own business
    rewriteMetadata(file('svm.safetensors'), file('foreign.safetensors'), (m) => {
      for (const k of Object.keys(m)) delete m[k];
      m.model = 'resnet-50';
    });
    const foreign = await ParameterStore.load(file('foreign.safetensors'));
    expect(foreign.model).toBeUndefined();
    expect(foreign.tensors.map((t) => t.name).sort()).toEqual(['b', 'w']);
    foreign.close();
  });
});

describe('the command', () => {
  beforeAll(() => {
    const lines: string[] = [];
    for (let i = 0; i < 400; i++) lines.push(`${i % 2 ? 1 : -1} 1:${i % 2 ? 1 : -1} 2:0.5`);
    fs.writeFileSync(file('p.svm'), lines.join('\n') + '\n');
  });

  test('train --model svm --save; --resume, predict and export without naming the model; inspect shows it', () => {
    expect(run('train', '--data', 'p.svm', '--model', 'svm', '--epochs', '2', '--threads', '2', '--save', 'm.safetensors').code).toBe(0);
    const ins = run('inspect', 'm.safetensors');
    expect(ins.code).toBe(0);
    expect(ins.out).toMatch(/^ {2}model: svm \(features 2\)$/m);
    // resumed as svm (before: the default model, which needs W)
    const again = run('train', '--data', 'p.svm', '--resume', 'm.safetensors', '--epochs', '2', '--save', 'm2.safetensors');
    expect({ code: again.code, err: again.err }).toEqual({ code: 0, err: '' });
    expect(again.out).toMatch(/Training svm \(the checkpoint's\) on/);
    expect(again.out).toMatch(/resumed from m\.safetensors/);
    expect(run('inspect', 'm2.safetensors').out).toMatch(/model: svm \(features 2\)/);
    // the same model named: fine; another: a usage error naming both
    expect(run('train', '--data', 'p.svm', '--resume', 'm.safetensors', '--model', 'svm', '--epochs', '1').code).toBe(0);
    const clash = run('train', '--data', 'p.svm', '--resume', 'm.safetensors', '--model', 'logistic', '--epochs', '1');
    expect(clash.code).toBe(2);
    expect(clash.err.trim().split('\n')).toHaveLength(1);
    expect(clash.err).toMatch(/--model logistic .*m\.safetensors.*model svm/);
    // predict: no --kind
    const p = run('predict', '--model', 'm.safetensors', '--data', 'p.svm');
    expect(p.code).toBe(0);
    expect(p.out.split('\n')[0]).toBe('row,label,score');
    expect(p.err).toMatch(/predicted 400 rows with svm .* accuracy 1\.0000/);
    // --kind still overrides
    const k = run('predict', '--model', 'm.safetensors', '--data', 'p.svm', '--kind', 'logistic');
    expect(k.code).toBe(0);
    expect(k.out.split('\n')[0]).toBe('row,label,probability');
    // export: no --model
    const x = run('export', 'm.safetensors', '--onnx', 'm.onnx');
    expect(x.code).toBe(0);
    expect(x.out).toMatch(/model svm \(recorded in the checkpoint\)/);
    expect(fs.existsSync(file('m.onnx'))).toBe(true);
  });

  test('a checkpoint without a model: w, b still need --kind / --model; a malformed record is refused', async () => {
    const s = new ParameterStore({ tensors: { w: { shape: [2] }, b: { shape: [1] } } });
    await s.save(file('wb.safetensors'));
    s.close();
    const amb = run('predict', '--model', 'wb.safetensors', '--data', 'p.svm');
    expect(amb.code).toBe(2);
    expect(amb.err).toMatch(/choose one with --kind linear\|logistic\|svm/);
    expect(run('export', 'wb.safetensors', '--onnx', 'wb.onnx').code).toBe(2);
    expect(run('predict', '--model', 'wb.safetensors', '--data', 'p.svm', '--kind', 'svm').code).toBe(0);
    rewriteMetadata(file('m.safetensors'), file('mbad.safetensors'), (m) => {
      m.model = JSON.stringify({ kind: 'svm', features: 0 });
    });
    const ins = run('inspect', 'mbad.safetensors');
    expect(ins.code).toBe(0);
    expect(ins.out).toMatch(/model: \{"kind":"svm","features":0\} \(not a valid model record/);
    const bad = run('predict', '--model', 'mbad.safetensors', '--data', 'p.svm');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/mbad\.safetensors.*"model".*features/);
  });
});
