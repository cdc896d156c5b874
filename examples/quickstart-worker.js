'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { ParameterStore } = require('gradvault');

const { handle, job, id } = workerData;
const store = ParameterStore.attach(handle);
const size = store.tensors[0].size;

if (job === 'ones') {
  const g = new Float32Array(size).fill(-1);
  for (let i = 0; i < workerData.pushes; i++) store.push({ w: g });
} else if (job === 'train') {
  // y = 3x - 2 + noise; squared loss; gradients computed on a snapshot and
  // pushed with basedOn so the store measures their staleness.
  let s = (workerData.seed * 7919 + id * 104729) >>> 0;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  for (let step = 0; step < workerData.steps; step++) {
    const snap = store.snapshot();
    const w = snap.get('w')[0], b = snap.get('b')[0];
    let gw = 0, gb = 0;
    for (let k = 0; k < 8; k++) {
      const x = rand() * 2 - 1;
      const y = 3 * x - 2 + (rand() - 0.5) * 0.1;
      const err = w * x + b - y;
      gw += err * x / 8;
      gb += err / 8;
    }
    store.push({ w: new Float32Array([gw]), b: new Float32Array([gb]) }, { basedOn: snap });
  }
}
store.close();
parentPort.postMessage('done');
