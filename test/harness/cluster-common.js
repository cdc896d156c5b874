// What test/66 and its worker processes agree on: the store spec and the
// gradient of push i of worker `rank` (small integers: every sum is exact
// in float32, whatever the order).
'use strict';

const W = [300, 8];
const B = [8];

function clusterSpec(mode) {
  return {
    tensors: { W: { shape: W }, b: { shape: B } },
    mode,
    optimizer: { kind: 'sgd', lr: 1 },
    sliceFloats: 256, // W is cut into 10 slices: every push reaches every shard
  };
}

function gradient(rank, i) {
  const w = new Float32Array(W[0] * W[1]);
  for (let k = 0; k < w.length; k++) w[k] = ((k + i + rank) % 3) + 1;
  return { W: w, b: new Float32Array(B[0]).fill(rank + 1) };
}

/** The parameters after `pushes` pushes of each of `workers` workers, from zeros with lr 1. */
function expected(workers, pushes) {
  const w = new Float64Array(W[0] * W[1]), b = new Float64Array(B[0]);
  for (let r = 0; r < workers; r++)
    for (let i = 0; i < pushes; i++) {
      const g = gradient(r, i);
      for (let k = 0; k < w.length; k++) w[k] -= g.W[k];
      for (let k = 0; k < b.length; k++) b[k] -= g.b[k];
    }
  return { W: w, b };
}

module.exports = { clusterSpec, gradient, expected };
