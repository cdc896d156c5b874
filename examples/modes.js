// The modes compared on one training job: throughput, accuracy and what each
// guarantees. Every mode but hogwild loses no update.
//
// Why averaging gets lr x syncEvery here: it takes one optimizer step per
// round, the mean of the round's syncEvery pushes, so with syncEvery 2 it takes
// half as many steps as the other modes (stats().rounds = pushes / 2), each no
// longer than one of theirs. At the same lr and epochs it ends behind; over 6
// runs each (constant lr 8, 3 epochs) averaging reached a test accuracy of
// 0.838 on average (0.81 to 0.87) against 0.877 for atomic, and 0.874 given
// 6 epochs (as many steps as atomic). Scaling its lr by syncEvery makes a
// round's step the sum of its pushes, as the other modes apply them (0.870
// against 0.876 over 6 runs; the rest: both pushes of a round see the same
// weights). Every mode's lr halves after each epoch: at a constant lr 16 the
// last rounds' noise alone moved averaging's final accuracy from 0.71 to 0.81.
// The last row, averaging*, is averaging at the unscaled lr, to show the gap.
//
// Output of `node examples/modes.js` (2 shared cores, linux-x64; samples/s
// varies from run to run):
//
//   logistic regression, 54000 rows, 2 threads, 3 epochs, batch 32, sgd lr 8 halved after each epoch
//   (averaging: syncEvery 2, one step per round with the mean of its pushes, lr 8 x 2)
//
//   mode              samples/s  test accuracy  pushes   steps   lr   hogwild overlaps
//   atomic              485,884         0.8762    5064    5064    8   0
//   locked              541,998         0.8757    5064    5064    8   0
//   versioned           552,025         0.8755    5064    5064    8   0
//   deterministic       483,868         0.8788    5064    5064    8   0
//   averaging           554,524         0.8670    5064    2532   16   0
//   hogwild           1,017,000         0.8752    5064    5064    8   849
//   averaging*          562,454         0.8573    5064    2532    8   0
//
//   averaging* (lr 8, not scaled) ends at 0.8573 against 0.8670 with lr 16: a round's step is the mean of its 2 pushes, so at the same lr it takes half the steps of the other modes, each no longer.
'use strict';
const { Trainer, synthetic, evaluate, MODES } = require('gradvault');

const LR = 8;
const SYNC_EVERY = 2;

(async () => {
  const [train, test] = synthetic('sparse-logistic', { rows: 60000, features: 2000, nnz: 30, seed: 1 }).split(0.9);
  console.log(`logistic regression, ${train.rows} rows, 2 threads, 3 epochs, batch 32, sgd lr ${LR} halved after each epoch`);
  console.log(`(averaging: syncEvery ${SYNC_EVERY}, one step per round with the mean of its pushes, lr ${LR} x ${SYNC_EVERY})\n`);
  console.log('mode              samples/s  test accuracy  pushes   steps   lr   hogwild overlaps');
  const runs = [...MODES.map((mode) => ({ mode, label: mode })), { mode: 'averaging', label: 'averaging*', unscaled: true }];
  const acc = {};
  for (const { mode, label, unscaled } of runs) {
    const averaging = mode === 'averaging';
    const lr = averaging && !unscaled ? LR * SYNC_EVERY : LR;
    const t = new Trainer({
      model: 'logistic',
      mode,
      threads: 2,
      epochs: 3,
      batchSize: 32,
      ...(averaging ? { syncEvery: SYNC_EVERY } : {}),
      schedule: { kind: 'step', every: 1, gamma: 0.5 },
      optimizer: { kind: 'sgd', lr },
    });
    try {
      const r = await t.fit(train);
      const s = t.store.stats();
      const steps = averaging ? s.rounds : s.pushes;
      acc[label] = evaluate(t.store, 'logistic', test).accuracy;
      console.log(
        `${label.padEnd(14)} ${Math.round(r.samplesPerSec).toLocaleString('en-US').padStart(12)}  ` +
          `${acc[label].toFixed(4).padStart(13)}  ${String(s.pushes).padStart(6)}  ` +
          `${String(steps).padStart(6)}  ${String(lr).padStart(3)}   ${s.conflicts}`,
      );
    } finally {
      t.store.close();
    }
  }
  console.log(
    `\naveraging* (lr ${LR}, not scaled) ends at ${acc['averaging*'].toFixed(4)} against ${acc.averaging.toFixed(4)} with lr ${LR * SYNC_EVERY}: ` +
      `a round's step is the mean of its ${SYNC_EVERY} pushes, so at the same lr it takes half the steps of the other modes, each no longer.`,
  );
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
