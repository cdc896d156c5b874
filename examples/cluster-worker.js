// A worker of a cluster: run it with `gradvault launch` (which starts the
// shards and sets GRADVAULT_SERVERS, GRADVAULT_KEY_FILE, GRADVAULT_RANK and
// GRADVAULT_WORLD_SIZE), or set those yourself on several machines.
//
//   npx gradvault launch --servers 2 --workers 2 node_modules/gradvault/examples/cluster-worker.js
//
// Each worker trains a softmax model on its share of a synthetic set with
// native threads; the shards hold the one model every worker updates.
'use strict';
const { ParameterStore, Trainer, evaluate, modelTensors, synthetic } = require('gradvault');

(async () => {
  const rank = Number(process.env.GRADVAULT_RANK ?? 0), world = Number(process.env.GRADVAULT_WORLD_SIZE ?? 1);
  const [train, test] = synthetic('blobs', { rows: 40000, features: 10, classes: 4, seed: 7 }).split(0.9);
  const share = Math.floor(train.rows / world);
  const store = await ParameterStore.connect({ // servers and key from the environment
    tensors: modelTensors({ model: 'softmax' }, train),
    mode: 'atomic',
    optimizer: { kind: 'sgd', lr: 0.1 },
  });
  try {
    const trainer = new Trainer(store, { model: 'softmax', threads: 1, epochs: 3 });
    const r = await trainer.fit(train.slice(rank * share, (rank + 1) * share));
    const ev = evaluate(await store.pull(), 'softmax', test);
    console.log(`worker ${rank}: ${r.samples} samples in ${r.cluster.syncs} syncs, cluster version ${r.cluster.version}, test accuracy ${ev.accuracy.toFixed(4)}`);
  } finally {
    await store.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
