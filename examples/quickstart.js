// npm start: the vault at work. Four worker_threads push known gradients into
// one shared store in every mode and we count what arrived; then two workers
// train a linear model by pushing gradients computed on snapshots.
'use strict';
const { Worker } = require('node:worker_threads');
const path = require('node:path');
const { ParameterStore, MODES, isa } = require('..');

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

(async () => {
  const cpu = isa();
  console.log(`gradvault quickstart (kernels: ${cpu.active}; supported: ${cpu.supported.join(', ')})\n`);
  await race();
  await train();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
