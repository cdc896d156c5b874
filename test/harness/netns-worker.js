// A worker process of test/67, run inside a network namespace: connects to
// the cluster GRADVAULT_SERVERS names (key from GRADVAULT_KEY_FILE).
//   node test/harness/netns-worker.js train   trains softmax on blobs through a
//                                             remote Trainer, prints { accuracy, syncs }
//   node test/harness/netns-worker.js push T  pushes until a call fails (timeout T ms),
//                                             prints 'pushing' once going, then the error
'use strict';
const { ParameterStore, Trainer, evaluate, modelTensors, synthetic } = require('../../dist');

async function main() {
  const [what, timeout] = process.argv.slice(2);
  const data = synthetic('blobs', { rows: 4000, features: 12, classes: 4, seed: 5 });
  const [train, held] = data.split(0.75);
  const store = await ParameterStore.connect({
    tensors: modelTensors({ model: 'softmax' }, train),
    mode: 'atomic',
    optimizer: { kind: 'sgd', lr: 0.05 },
    sliceFloats: 16,
    ...(timeout ? { timeout: Number(timeout) } : {}),
  });
  if (what === 'train') {
    const r = await new Trainer(store, { model: 'softmax', threads: 1, epochs: 3, batchSize: 16, syncEvery: 8 }).fit(train);
    const accuracy = evaluate(await store.pull(), 'softmax', held).accuracy;
    process.stdout.write(JSON.stringify({ accuracy, syncs: r.cluster.syncs }) + '\n');
  } else {
    const g = { W: new Float32Array(48).fill(0.001), b: new Float32Array(4) };
    for (let i = 0; ; i++) {
      try {
        await store.pushAsync(g);
      } catch (e) {
        process.stdout.write(JSON.stringify({ error: e.name, shard: e.shard, address: e.address, message: e.message }) + '\n');
        break;
      }
      if (i === 20) process.stdout.write('pushing\n');
    }
  }
  await store.close();
}

main().catch((e) => {
  process.stderr.write(`netns-worker: ${e.name}: ${e.message}\n`);
  process.exit(1);
});
