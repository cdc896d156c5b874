#!/usr/bin/env node
'use strict';
// Peer: JavaScript Hogwild on worker_threads. The parameters and the data are
// Float32Array (etc.) views over SharedArrayBuffers; N workers update the
// parameters in place with plain, racy stores (no Atomics on the data path),
// the math of hand_sgd.cpp (see common.js). Each epoch the rows are shuffled
// once, by the last worker to reach the epoch barrier, and every worker takes a
// disjoint contiguous share of the permutation (the shuffles are those of
// hand_sgd.cpp and plain.js for the same seed).
//
// The clock runs from releasing the workers (already started, data attached)
// until the last one reports it is done; the main thread is idle meanwhile.
//
// Usage: node bench/peers/sab_hogwild.js --workload W1|W2|W3 --threads N --epochs 5 --batch 1 --lr 0.005
//        [--seed S] [--rows N (first N training rows)] [--fmnist DIR] [--data DIR]
// Prints one JSON line on stdout.

const { Worker, isMainThread, workerData, parentPort } = require('node:worker_threads');
const c = require('./common');

const PEER = 'sab_hogwild_js';

// ctrl (Int32Array over a SharedArrayBuffer) slots.
const ARRIVED = 0; // workers at the barrier in this phase
const PHASE = 1; // barrier generation: bumped (and notified) by the last to arrive
const RNG = 2; // the shuffle generator's state, used only by the last to arrive
const GO = 3; // 0 until the main thread starts the clock

/**
 * A reusable barrier for n workers on ctrl; the last to arrive runs onLast
 * before releasing the others. Atomics are sequentially consistent, so the
 * plain writes of onLast (the permutation) happen-before every release.
 */
function barrier(ctrl, n, onLast) {
  const phase = Atomics.load(ctrl, PHASE); // cannot move before all n arrive, this one included
  if (Atomics.add(ctrl, ARRIVED, 1) === n - 1) {
    onLast();
    Atomics.store(ctrl, ARRIVED, 0);
    Atomics.add(ctrl, PHASE, 1);
    Atomics.notify(ctrl, PHASE);
  } else {
    while (Atomics.load(ctrl, PHASE) === phase) Atomics.wait(ctrl, PHASE, phase);
  }
}

function worker() {
  const { o, t, train, params, perm, ctrl } = workerData;
  const step = c.makeTrainer(o.workload, params, train, o.batch, o.lr);
  const lo = Math.floor((train.rows * t) / o.threads);
  const hi = Math.floor((train.rows * (t + 1)) / o.threads);
  const rng = new c.Rng(0);
  const reshuffle = () => {
    rng.state = Atomics.load(ctrl, RNG);
    c.shuffle(perm, rng);
    Atomics.store(ctrl, RNG, rng.state);
  };
  parentPort.postMessage('ready');
  Atomics.wait(ctrl, GO, 0);
  for (let e = 0; e < o.epochs; e++) {
    barrier(ctrl, o.threads, reshuffle);
    step(perm, lo, hi);
  }
  parentPort.postMessage('done');
}

async function main() {
  const o = c.parseArgs(PEER);
  const { train, test } = c.loadData(o, c.sharedAlloc);
  const params = c.createParams(o.workload, train.cols, o.seed, c.sharedAlloc);
  const perm = c.identity(train.rows, c.sharedAlloc);
  const ctrl = c.sharedAlloc(Int32Array, 4);
  ctrl[RNG] = c.shuffleSeed(o.seed) | 0;

  // Typed arrays over SharedArrayBuffers travel as views of the same memory.
  const workers = [];
  const ready = [];
  const done = [];
  for (let t = 0; t < o.threads; t++) {
    const w = new Worker(__filename, { workerData: { o, t, train, params, perm, ctrl } });
    w.on('error', (err) => c.fail(PEER, `worker ${t}: ${err.stack || err}`));
    ready.push(new Promise((resolve) => w.once('message', resolve)));
    workers.push(w);
  }
  await Promise.all(ready);
  for (const w of workers) done.push(new Promise((resolve) => w.once('message', resolve)));

  const t0 = process.hrtime.bigint();
  Atomics.store(ctrl, GO, 1);
  Atomics.notify(ctrl, GO);
  await Promise.all(done);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

  await Promise.all(workers.map((w) => w.terminate()));
  c.report(PEER, o, train.rows, seconds, c.evaluate(o.workload, params, test));
}

if (isMainThread) main();
else worker();
