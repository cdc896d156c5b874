#!/usr/bin/env node
// Mode 'atomic': the default build against GV_STRICT_ATOMICS. Alternates
// fresh processes of build-cmake/release/gv_bench_strict_atomics and
// gv_bench_strict_atomics_strict (bench/strict_atomics.cpp: medians of one
// push and one snapshot of 10 M floats), per instruction set, and writes
// the medians over processes to bench/results/strict-atomics.json.
//
//   cmake --build build-cmake/release --target gv_bench_strict_atomics gv_bench_strict_atomics_strict
//   node bench/strict_atomics.js [--rounds 9] [--reps 15] [--isas avx512,avx2,scalar]
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const rounds = Number(arg('--rounds', '9'));
const reps = arg('--reps', '15');
const root = path.resolve(__dirname, '..');
const bin = (v) => path.join(root, 'build-cmake/release', `gv_bench_strict_atomics${v}`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function run(variant, isa) {
  const out = execFileSync(bin(variant), ['--reps', reps], { env: { ...process.env, GRADVAULT_ISA: isa } });
  return JSON.parse(out.toString());
}

const isas = arg('--isas', 'avx512,avx2,scalar').split(',');
const runs = Object.fromEntries(isas.map((isa) => [isa, { d: [], s: [] }]));
// Rounds outermost and the builds alternating in each, so the load of the
// machine drifting during the run weighs on every pair alike.
for (let r = 0; r < rounds; ++r)
  for (const isa of isas) {
    const { d, s } = runs[isa];
    if (r % 2 === 0) d.push(run('', isa)), s.push(run('_strict', isa));
    else s.push(run('_strict', isa)), d.push(run('', isa));
  }
const results = [];
for (const isa of isas) {
  const { d, s } = runs[isa];
  if (d[0].isa !== isa) {
    console.log(`${isa}: not supported here (ran ${d[0].isa}), skipped`);
    continue;
  }
  const row = {
    isa,
    floats: d[0].floats,
    processes: rounds,
    default: { pushMs: median(d.map((x) => x.pushMs)), snapshotMs: median(d.map((x) => x.snapshotMs)) },
    strict: { pushMs: median(s.map((x) => x.pushMs)), snapshotMs: median(s.map((x) => x.snapshotMs)) },
    kernelMs: Object.fromEntries(Object.keys(d[0].kernelMs).map((k) => [k, median(d.map((x) => x.kernelMs[k]))])),
  };
  row.strictOverDefault = {
    push: +(row.strict.pushMs / row.default.pushMs).toFixed(3),
    snapshot: +(row.strict.snapshotMs / row.default.snapshotMs).toFixed(3),
  };
  results.push(row);
  console.log(
    `${isa}: push ${row.default.pushMs.toFixed(2)} -> ${row.strict.pushMs.toFixed(2)} ms (${row.strictOverDefault.push}x), ` +
      `snapshot ${row.default.snapshotMs.toFixed(2)} -> ${row.strict.snapshotMs.toFixed(2)} ms (${row.strictOverDefault.snapshot}x); ` +
      `kernels ${JSON.stringify(row.kernelMs)}`,
  );
}

const doc = {
  what: "mode 'atomic': one push (sgd) and one snapshot of 10 M floats, one thread, default build vs GV_STRICT_ATOMICS",
  command: 'node bench/strict_atomics.js',
  method: `medians of ${reps} runs per process, then the median over ${rounds} alternating fresh processes per build`,
  machine: {
    cpu: os.cpus()[0].model,
    cores: os.cpus().length,
    loadAverageAtEnd: os.loadavg()[0],
    node: process.version,
    date: new Date().toISOString(),
  },
  results,
};
const file = path.join(root, 'bench/results/strict-atomics.json');
fs.writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
console.log(`wrote ${path.relative(root, file)}`);
