// Your own model, its gradient computed in JavaScript on worker_threads that
// all attach to one store: a two-layer network for y = sin(3x) (not a
// built-in model). Each worker reads a snapshot, computes the gradient of its
// mini-batch in plain JS and pushes it based on that snapshot; the store
// applies every push (mode 'locked' here) and counts the staleness.
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { ParameterStore } = require('gradvault');

const H = 32; // hidden units

function forward(p, x) {
  const { W1, b1, W2, b2 } = p;
  const h = new Float64Array(H);
  let y = b2[0];
  for (let j = 0; j < H; j++) {
    h[j] = Math.tanh(W1[j] * x + b1[j]);
    y += W2[j] * h[j];
  }
  return { h, y };
}

if (isMainThread) {
  (async () => {
    const store = new ParameterStore({
      tensors: { W1: { shape: [H], init: 'normal', std: 1 }, b1: { shape: [H], init: 'normal', std: 1 }, W2: { shape: [H], init: 'normal', std: 0.1 }, b2: { shape: [1] } },
      mode: 'locked',
      optimizer: { kind: 'adam', lr: 0.01 },
      seed: 7,
    });
    const loss = () => {
      const s = store.snapshot();
      const p = { W1: s.get('W1'), b1: s.get('b1'), W2: s.get('W2'), b2: s.get('b2') };
      let l = 0;
      for (let i = 0; i <= 100; i++) {
        const x = -1 + i / 50;
        l += (forward(p, x).y - Math.sin(3 * x)) ** 2 / 101;
      }
      return l;
    };
    console.log(`custom model, 4 workers, mode ${store.mode}: initial mse ${loss().toFixed(4)}`);
    const handle = store.share();
    await Promise.all(
      [0, 1, 2, 3].map(
        (id) =>
          new Promise((resolve, reject) => {
            const w = new Worker(__filename, { workerData: { handle, id, steps: 1500 } });
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    const st = store.stats();
    console.log(`after ${st.pushes} pushes: mse ${loss().toFixed(4)}, mean staleness ${st.staleness.mean.toFixed(2)}, none lost`);
    store.close();
  })().catch((e) => {
    console.error(e.message);
    process.exit(1);
  });
} else {
  const store = ParameterStore.attach(workerData.handle);
  let seed = 12345 + workerData.id * 7919;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const g = { W1: new Float32Array(H), b1: new Float32Array(H), W2: new Float32Array(H), b2: new Float32Array(1) };
  for (let step = 0; step < workerData.steps; step++) {
    const snap = store.snapshot();
    const p = { W1: snap.get('W1'), b1: snap.get('b1'), W2: snap.get('W2'), b2: snap.get('b2') };
    for (const a of Object.values(g)) a.fill(0);
    const B = 16;
    for (let k = 0; k < B; k++) {
      const x = rand();
      const { h, y } = forward(p, x);
      const e = (2 * (y - Math.sin(3 * x))) / B;
      g.b2[0] += e;
      for (let j = 0; j < H; j++) {
        g.W2[j] += e * h[j];
        const dh = e * p.W2[j] * (1 - h[j] * h[j]);
        g.W1[j] += dh * x;
        g.b1[j] += dh;
      }
    }
    store.push(g, { basedOn: snap });
    snap.release();
  }
  store.close();
  parentPort.postMessage('done');
}
