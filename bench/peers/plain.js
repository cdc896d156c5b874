#!/usr/bin/env node
'use strict';
// Peer: plain single-threaded JavaScript SGD (Float32Array, no libraries),
// the math of hand_sgd.cpp (see common.js). --threads must be 1.
//
// Usage: node bench/peers/plain.js --workload W1|W2|W3 --threads 1 --epochs 5 --batch 1 --lr 0.005
//        [--seed S] [--rows N (first N training rows)] [--fmnist DIR] [--data DIR]
// Prints one JSON line on stdout.

const c = require('./common');

const PEER = 'plain_js';

function main() {
  const o = c.parseArgs(PEER);
  if (o.threads !== 1) c.fail(PEER, '--threads must be 1 (single-threaded peer; sab_hogwild.js runs threads)');
  const { train, test } = c.loadData(o, c.plainAlloc);
  const params = c.createParams(o.workload, train.cols, o.seed, c.plainAlloc);
  const step = c.makeTrainer(o.workload, params, train, o.batch, o.lr);
  const perm = c.identity(train.rows, c.plainAlloc);
  const rng = new c.Rng(c.shuffleSeed(o.seed));

  const t0 = process.hrtime.bigint();
  for (let e = 0; e < o.epochs; e++) {
    c.shuffle(perm, rng);
    step(perm, 0, train.rows);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

  c.report(PEER, o, train.rows, seconds, c.evaluate(o.workload, params, test));
}

main();
