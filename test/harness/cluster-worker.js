// A worker process of test/66: connects to the cluster GRADVAULT_SERVERS
// names (key from GRADVAULT_KEY_FILE) with the spec in argv[2] and pushes
// known gradients, `inflight` at a time, then prints one JSON line.
//   node test/harness/cluster-worker.js '{"mode":"atomic","rank":0,"pushes":500,"inflight":8}'
// (optional "optimizer": the store's optimizer instead of sgd with lr 1)
'use strict';
const { ParameterStore } = require('../../dist');
const { clusterSpec, gradient } = require('./cluster-common');

async function main() {
  const o = JSON.parse(process.argv[2]);
  // (rank and world size from GRADVAULT_RANK / GRADVAULT_WORLD_SIZE)
  const store = await ParameterStore.connect({ ...clusterSpec(o.mode), ...(o.optimizer ? { optimizer: o.optimizer } : {}) });
  let next = 0, applied = 0;
  async function lane() {
    while (next < o.pushes) {
      const i = next++;
      const r = await store.pushAsync(gradient(o.rank, i));
      if (r.applied) applied++;
    }
  }
  await Promise.all(Array.from({ length: o.inflight }, lane));
  await store.close();
  process.stdout.write(JSON.stringify({ rank: o.rank, applied }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`cluster-worker: ${e.name}: ${e.message}\n`);
  process.exit(1);
});
