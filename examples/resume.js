// Train, save a checkpoint, load it into a new store and go on: the resumed
// run continues from the saved parameters, optimizer state and version.
'use strict';
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const { ParameterStore, Trainer, synthetic, evaluate } = require('gradvault');

(async () => {
  const [train, test] = synthetic('blobs', { rows: 20000, features: 20, classes: 4, seed: 3, spread: 12 }).split(0.9);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradvault-'));
  try {
    const file = path.join(dir, 'model.safetensors');
    const first = new Trainer({ model: 'softmax', threads: 2, epochs: 2, batchSize: 16, optimizer: { kind: 'adam', lr: 0.01 } });
    await first.fit(train);
    const saved = await first.store.save(file);
    console.log(`saved ${file}: version ${saved.version}, test accuracy ${evaluate(first.store, 'softmax', test).accuracy.toFixed(4)}`);
    first.store.close();

    const store = await ParameterStore.load(file); // mode and optimizer (with its state) from the file
    console.log(`loaded: mode ${store.mode}, optimizer ${store.options.optimizer.kind}, version ${store.version}`);
    const resumed = new Trainer(store, { model: 'softmax', threads: 2, epochs: 2, batchSize: 16 });
    for await (const p of resumed.run(train)) console.log(`  resumed epoch ${p.epoch}: loss ${p.loss.toFixed(4)}, version ${p.version}`);
    console.log(`test accuracy ${evaluate(store, 'softmax', test).accuracy.toFixed(4)}`);
    store.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true }); // the checkpoint was only for the demonstration
  }
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
