// npm start: the vault at work. Four worker_threads push known gradients into
// one shared store in every mode and we count what arrived; then two workers
// train a linear model by pushing gradients computed on snapshots.
'use strict';
const { Worker } = require('node:worker_threads');
const path = require('node:path');
const fs = require('node:fs');
const { ParameterStore, MODES, isa, Trainer, loadIdx, synthetic, evaluate } = require('gradvault');

const WORKERS = 4;
const PUSHES = 5000;
const SIZE = 4096;

function runWorkers(store, job, extra = {}) {
  const handle = store.share();
  return Promise.all(
    Array.from({ length: WORKERS }, (_, id) =>
      new Promise((resolve, reject) => {
        const w = new Worker(path.join(__dirname, 'quickstart-worker.js'), { workerData: { handle, job, id, ...extra } });
        w.once('message', resolve);
        w.once('error', reject);
      }),
    ),
  );
}

async function race() {
  console.log(`The race: ${WORKERS} threads x ${PUSHES} pushes of -1 into ${SIZE} floats (expected value ${WORKERS * PUSHES} everywhere)\n`);
  console.log('mode            lost updates   conflicts   pushes/s    (conflicts: hogwild writers that overlapped on a stripe)');
  for (const mode of MODES) {
    const store = new ParameterStore({
      mode,
      tensors: { w: { shape: [SIZE] } },
      // averaging applies the mean of each round of syncEvery pushes: lr = syncEvery makes it the sum.
      optimizer: { kind: 'sgd', lr: mode === 'averaging' ? WORKERS : 1 },
      ...(mode === 'averaging' ? { syncEvery: WORKERS } : {}),
    });
    const t0 = process.hrtime.bigint();
    await runWorkers(store, 'ones', { pushes: PUSHES });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    store.sync();
    const w = store.snapshot().get('w');
    let lost = 0;
    for (const v of w) lost += WORKERS * PUSHES - v;
    const s = store.stats();
    console.log(
      `${mode.padEnd(14)}  ${String(lost).padStart(12)}  ${String(s.conflicts).padStart(10)}  ${Math.round((WORKERS * PUSHES) / secs)
        .toLocaleString('en-US')
        .padStart(9)}`,
    );
    store.close();
  }
}

async function train() {
  console.log('\nTraining y = 3x - 2 (linear regression) with 4 workers pushing to one atomic store:');
  const store = new ParameterStore({
    tensors: { w: { shape: [1] }, b: { shape: [1] } },
    optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.5 },
  });
  for (let round = 1; round <= 5; round++) {
    await runWorkers(store, 'train', { steps: 200, seed: round });
    const snap = store.snapshot();
    const s = store.stats();
    console.log(
      `  round ${round}: w = ${snap.get('w')[0].toFixed(4)}, b = ${snap.get('b')[0].toFixed(4)}, version ${snap.version}, mean staleness ${s.staleness.mean.toFixed(2)}`,
    );
  }
  store.close();
}

// The native Trainer: a built-in model on native threads, every update through the store.
async function native() {
  const dir = '/usr/share/datasets/fashion-mnist';
  let train, test, model, what;
  if (fs.existsSync(`${dir}/train-images-idx3-ubyte.gz`)) {
    train = await loadIdx(`${dir}/train-images-idx3-ubyte.gz`, `${dir}/train-labels-idx1-ubyte.gz`);
    test = await loadIdx(`${dir}/t10k-images-idx3-ubyte.gz`, `${dir}/t10k-labels-idx1-ubyte.gz`);
    model = 'softmax';
    what = 'Fashion-MNIST (softmax regression)';
  } else {
    [train, test] = synthetic('sparse-logistic', { rows: 100000, seed: 1 }).split(0.9);
    model = 'logistic';
    what = 'the built-in RCV1-like sparse set (logistic regression)';
  }
  const threads = Math.min(2, require('node:os').availableParallelism());
  console.log(`\nThe native trainer: ${what}, ${train.rows} rows, ${threads} threads, mode atomic, batch 32:`);
  const trainer = new Trainer({
    model,
    threads,
    epochs: 3,
    batchSize: 32,
    schedule: { kind: 'step', every: 1, gamma: 0.5 },
    optimizer: { kind: 'sgd', lr: model === 'softmax' ? 0.2 : 16 },
  });
  for await (const p of trainer.run(train)) {
    const ev = evaluate(trainer.store.snapshot(), model, test);
    console.log(
      `  epoch ${p.epoch}: loss ${p.loss.toFixed(4)}, test accuracy ${ev.accuracy.toFixed(4)}, ` +
        `${Math.round(p.samplesPerSec).toLocaleString('en-US')} samples/s, mean staleness ${p.staleness.mean.toFixed(2)}`,
    );
  }
  const s = trainer.store.stats();
  console.log(`  ${s.pushes} pushes applied, ${s.rejected} refused, none lost (mode atomic)`);
}

(async () => {
  const cpu = isa();
  console.log(`gradvault quickstart (kernels: ${cpu.active}; supported: ${cpu.supported.join(', ')})\n`);
  await race();
  await train();
  await native();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
