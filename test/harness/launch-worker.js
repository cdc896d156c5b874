// A worker script for `gradvault launch` (test/66): pushes 50 known
// gradients, prints what it read; rank 1 fails on purpose with argument 'fail'.
'use strict';
const { ParameterStore } = require('../../dist');

(async () => {
  const rank = Number(process.env.GRADVAULT_RANK);
  if (process.argv[2] === 'fail' && rank === 1) process.exit(3);
  const s = await ParameterStore.connect({ tensors: { w: { shape: [1000] } }, optimizer: { kind: 'sgd', lr: 1 }, sliceFloats: 100 });
  for (let i = 0; i < 50; i++) await s.pushAsync({ w: new Float32Array(1000).fill(rank + 1) });
  console.log(`rank ${rank} of ${process.env.GRADVAULT_WORLD_SIZE} pushed 50`);
  await s.close();
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
