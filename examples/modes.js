// The modes compared on one training job: throughput, accuracy and what each
// guarantees. Every mode but hogwild loses no update.
'use strict';
const { Trainer, synthetic, evaluate, MODES } = require('..');

(async () => {
  const [train, test] = synthetic('sparse-logistic', { rows: 60000, features: 2000, nnz: 30, seed: 1 }).split(0.9);
  console.log('mode           samples/s  test accuracy  pushes   hogwild overlaps');
  for (const mode of MODES) {
    const t = new Trainer({ model: 'logistic', mode, threads: 2, epochs: 3, batchSize: 32, ...(mode === 'averaging' ? { syncEvery: 2 } : {}), optimizer: { kind: 'sgd', lr: 8 } });
    const r = await t.fit(train);
    const s = t.store.stats();
    console.log(
      `${mode.padEnd(13)} ${Math.round(r.samplesPerSec).toLocaleString('en-US').padStart(10)}  ${evaluate(t.store, 'logistic', test).accuracy.toFixed(4).padStart(13)}  ${String(s.pushes).padStart(6)}   ${s.conflicts}`,
    );
    t.store.close();
  }
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
