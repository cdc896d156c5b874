// gradvault start (npm start's training part): a first run a newcomer can
// believe. Fashion-MNIST when the Debian package is installed, else a
// synthetic set whose best possible accuracy is known; settings chosen so
// test accuracy rises epoch by epoch to near that; then predictions on a few
// test rows and what to try next.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Dataset, loadIdx, synthetic } from '../data';
import { isa } from '../native';
import { predict } from '../predict';
import { ParameterStore } from '../store';
import { Trainer, evaluate, modelTensors, type ModelOptions } from '../trainer';
import { FASHION } from './data';
import { fmt, out, table } from './output';
import { VERSION } from './version';

const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

interface Plan {
  train: Dataset;
  test: Dataset;
  about: string[];
  model: ModelOptions;
  lr: number;
  epochs: number;
  // the learning rate of epoch e (0-based): lr * gamma^floor(e / every)
  gamma: number;
  every: number;
  // what the data allows, and how the result compares
  ceiling: (accuracy: number) => string;
  show: (label: number) => string;  // a label as the table shows it
  next: string[];
  // the --data of the commands suggested next ('' for the CLI's default set)
  data: string;
}

// Label noise of the synthetic set: the best any model can do is 1 - NOISE.
const NOISE = 0.05;

async function plan(): Promise<Plan> {
  const f = (n: string) => path.join(FASHION, n);
  if (fs.existsSync(f('train-images-idx3-ubyte.gz')) && fs.existsSync(f('t10k-labels-idx1-ubyte.gz'))) {
    const train = await loadIdx(f('train-images-idx3-ubyte.gz'), f('train-labels-idx1-ubyte.gz'));
    const test = await loadIdx(f('t10k-images-idx3-ubyte.gz'), f('t10k-labels-idx1-ubyte.gz'));
    return {
      train,
      test,
      about: [
        `Fashion-MNIST (${FASHION}): ${fmt(train.rows)} training and ${fmt(test.rows)} test images`,
        `of 28 x 28 = 784 pixels, 10 classes of clothing.`,
      ],
      model: { model: 'mlp', hidden: [128] },
      lr: 0.1,
      epochs: 7,
      gamma: 0.7,
      every: 1,
      ceiling: (a) =>
        `Test accuracy ${fmt(a, 3)}: about what a one-hidden-layer network reaches on Fashion-MNIST (0.88-0.89);\n` +
        `a linear model stops near 0.84, convolutional networks reach 0.92-0.94.`,
      show: (label) => FASHION_CLASSES[label] ?? String(label),
      next: [],
      data: '',
    };
  }
  const all = synthetic('sparse-logistic', { rows: 200_000, features: 500, nnz: 20, noise: NOISE, seed: 42 });
  const [train, test] = all.split(0.9);
  return {
    train,
    test,
    about: [
      `synthetic sparse-logistic: ${fmt(all.rows)} rows (${fmt(train.rows)} to train on, ${fmt(test.rows)} to test), 500 features,`,
      `about 20 nonzeros a row; each label is the sign of w.x for a hidden w, then ${NOISE * 100}% of labels flipped at random.`,
      `No model can beat ${fmt(1 - NOISE, 2)} on it: the flipped labels cannot be predicted.`,
    ],
    model: { model: 'logistic' },
    lr: 0.5,
    epochs: 6,
    gamma: 0.5,
    every: 2,
    ceiling: (a) =>
      `Test accuracy ${fmt(a, 3)} of a possible ${fmt(1 - NOISE, 2)} (${NOISE * 100}% label noise): ` +
      `${fmt((100 * a) / (1 - NOISE), 1)}% of the way there.`,
    show: (label) => (label > 0 ? '+1' : '-1'),
    next: [
      `Real data: apt-get install dataset-fashion-mnist (Debian), then npm start again: an MLP on 70,000 images.`,
      'npx gradvault data make sparse-logistic --rows 200000 --features 500 --nnz 20 --out train.svm   this data as a LIBSVM file',
    ],
    data: ' --data train.svm',
  };
}

export async function start(o: { threads: number }): Promise<void> {
  const p = await plan();
  const kind = p.model.model;
  out(`gradvault ${VERSION}: a first training run (kernels ${isa().active}, ${o.threads} native threads)\n`);
  for (const line of p.about) out(line);
  const layers = kind === 'mlp' ? `${p.train.features} -> ${(p.model.hidden ?? []).join(' -> ')} -> ${p.train.classes}` : `${p.train.features} -> 1`;
  const sched = p.every === 1 ? `times ${p.gamma} each epoch` : `times ${p.gamma} every ${p.every} epochs`;
  out(`Model ${kind} (${layers}), mode atomic (no update is lost), sgd lr ${p.lr} ${sched}, batch 32, ${p.epochs} epochs.\n`);

  const store = new ParameterStore({ tensors: modelTensors(p.model, p.train), mode: 'atomic', optimizer: { kind: 'sgd', lr: p.lr } });
  try {
    // One fit() an epoch, so each test accuracy is of the model at the end of
    // its epoch (no thread is training while evaluate reads it).
    let accuracy = NaN;
    out(['epoch', '      lr', 'train loss', 'test accuracy', 'samples/s'].join('  '));
    for (let e = 0; e < p.epochs; e++) {
      const lr = p.lr * p.gamma ** Math.floor(e / p.every);
      const r = await new Trainer(store, { ...p.model, threads: o.threads, epochs: 1, batchSize: 32, seed: 1 + e, lr }).fit(p.train);
      accuracy = evaluate(store, p.model, p.test).accuracy ?? NaN;
      const cells = [`${e + 1}/${p.epochs}`, fmt(lr, 4), fmt(r.loss, 4), fmt(accuracy, 4), fmt(r.samplesPerSec)];
      out(cells.map((c, i) => c.padStart([5, 8, 10, 13, 9][i])).join('  '));
    }
    out('');
    out(p.ceiling(accuracy));

    // Predictions on a few test rows, as a program would ask for them.
    const few = p.test.slice(0, 6);
    const pred = predict(store.snapshot(), p.model, few);
    const truth = few.classes === 2 ? Array.from(few.labels) : Array.from(few.classIds ?? []);
    out(`\nPredictions on the first ${few.rows} test rows (predict(store.snapshot(), '${kind}', rows)):`);
    table(
      ['row', 'true', 'predicted', 'confidence'],
      Array.from({ length: few.rows }, (_, i) => {
        const c = pred.classes![i];
        const conf = kind === 'logistic' ? Math.max(pred.probabilities![i], 1 - pred.probabilities![i]) : pred.probabilities![i * pred.width + c];
        const label = kind === 'logistic' ? pred.labels![i] : c;
        const ok = label === truth[i] ? '' : '  (wrong)';
        return [i, p.show(truth[i]), p.show(label) + ok, fmt(conf, 3)];
      }),
    );
    out('\nWhat to try next:');
    for (const line of [
      ...p.next,
      `npx gradvault train${p.data} --threads ${Math.max(2, os.availableParallelism())} --mode locked   other threads and modes (atomic, locked, versioned, deterministic, averaging, hogwild)`,
      `npx gradvault train${p.data} --report report.html --save model.safetensors   curves in a page, and a checkpoint`,
      `npx gradvault predict --model model.safetensors --data ${p.data ? 'train.svm' : 'FILE'}   predictions as CSV`,
      'npx gradvault export model.safetensors --onnx model.onnx             the model for onnxruntime',
      'README.md: the same from TypeScript (Trainer, predict, exportOnnx, Dataset.fromDense)',
    ])
      out(`  ${line}`);
  } finally {
    store.close();
  }
}
