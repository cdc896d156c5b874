// A/B of the push path between two builds of gradvault (their dist/
// folders), run alternately in fresh processes on the same machine:
// small synchronous pushes (the fixed cost of a push through the JS API),
// and the native trainer at batch 1 on sparse rows (W3-like, 1 and 2
// threads), where the push's fixed cost dominates. Medians of the rounds
// and B/A ratios go to stdout and, with --json FILE, to a file.
//
//   node bench/ab_push.js A_DIST B_DIST [--rounds 5] [--json bench/results/ab-push.json]
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');

function child(dist) {
  const { ParameterStore, Trainer, synthetic, isa } = require(dist);
  (async () => {
    const out = { isa: isa().active };
    for (const mode of ['atomic', 'hogwild']) {
      const s = new ParameterStore({ tensors: { w: { shape: [16] } }, mode });
      const g = new Float32Array(16).fill(1e-3);
      for (let i = 0; i < 1e5; i++) s.push({ w: g });
      const n = 5e5, t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) s.push({ w: g });
      out[`push ns (${mode}, 16 floats)`] = Number(process.hrtime.bigint() - t0) / n;
    }
    const d = synthetic('sparse-logistic', { rows: 60000, seed: 1 });
    for (const threads of [1, 2]) {
      const t = new Trainer({ model: 'logistic', threads, epochs: 2, batchSize: 1, mode: 'atomic', optimizer: { kind: 'sgd', lr: 1 } });
      out[`trainer samples/s (sparse logistic, batch 1, atomic, ${threads} thread${threads > 1 ? 's' : ''})`] = (await t.fit(d)).samplesPerSec;
    }
    process.stdout.write(JSON.stringify(out));
  })();
}

if (process.argv[2] === '--child') {
  child(process.argv[3]);
} else {
  const [a, b] = process.argv.slice(2, 4);
  const opt = (k, d) => (process.argv.includes(k) ? process.argv[process.argv.indexOf(k) + 1] : d);
  const rounds = Number(opt('--rounds', 5));
  const runs = { A: [], B: [] };
  for (let r = 0; r < rounds; r++)
    for (const [k, dist] of r % 2 ? [['B', b], ['A', a]] : [['A', a], ['B', b]])
      runs[k].push(JSON.parse(execFileSync(process.execPath, [__filename, '--child', require('node:path').resolve(dist)], { encoding: 'utf8' })));
  const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
  const rows = Object.keys(runs.A[0]).filter((k) => k !== 'isa').map((k) => {
    const ma = median(runs.A.map((x) => x[k])), mb = median(runs.B.map((x) => x[k]));
    return { metric: k, A: ma, B: mb, ratio: mb / ma };
  });
  const machine = { cpu: os.cpus()[0].model, cpus: os.cpus().length, isa: runs.A[0].isa, node: process.version, rounds, A: a, B: b };
  console.log(JSON.stringify(machine));
  for (const r of rows) console.log(`${r.metric.padEnd(66)} A ${r.A.toFixed(1).padStart(10)}  B ${r.B.toFixed(1).padStart(10)}  B/A ${r.ratio.toFixed(3)}`);
  const json = opt('--json');
  if (json) fs.writeFileSync(json, JSON.stringify({ machine, rows, runs }, null, 2) + '\n');
}
