#!/usr/bin/env node
'use strict';
// A/B of the native trainer between a git revision and this tree:
// gv_bench_train (bench/train_bench.cpp) built from each with the same g++
// flags, run alternately in fresh processes on the same machine, rounds x
// (workload, mode, threads). Medians and B/A ratios (B = this tree) go to
// stdout and, with --json FILE, to a file. Issue 16 uses it for the batch-32
// paths it must leave as fast as before (the batch-1 path it replaced is
// compared in the same process instead: gv_bench_train --paths).
//
//   node bench/ab_train.js REV [--rounds 3] [--batch 32] [--json bench/results/ab-train.json]
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const rev = args[0];
if (!rev || rev.startsWith('--')) {
  process.stderr.write('usage: node bench/ab_train.js REV [--rounds 3] [--batch 32] [--json FILE]\n');
  process.exit(2);
}
const rounds = Number(opt('rounds', 3));
const batch = Number(opt('batch', 32));
const json = opt('json');

// The same flags for both builds (those of the addon's core: binding.gyp).
function build(srcRoot, out) {
  const sources = fs.readFileSync(path.join(srcRoot, 'native/sources.txt'), 'utf8').split(/\s+/).filter(Boolean);
  execFileSync('g++', ['-std=c++20', '-O3', '-ffp-contract=off', '-fno-math-errno', '-pthread', `-I${path.join(srcRoot, 'native')}`,
    path.join(srcRoot, 'bench/train_bench.cpp'), ...sources.map((s) => path.join(srcRoot, s)), '-lz', '-o', out], { stdio: 'inherit' });
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-ab-train-'));
const bin = { A: path.join(dir, 'A'), B: path.join(dir, 'B') };
const commit = execFileSync('git', ['rev-parse', '--short', rev], { cwd: ROOT, encoding: 'utf8' }).trim();
try {
  const wt = path.join(dir, 'tree');
  execFileSync('git', ['worktree', 'add', '--detach', '-f', wt, rev], { cwd: ROOT, stdio: 'ignore' });
  try {
    process.stderr.write(`building A (${commit}) and B (this tree)...\n`);
    build(wt, bin.A);
  } finally {
    execFileSync('git', ['worktree', 'remove', '--force', wt], { cwd: ROOT, stdio: 'ignore' });
  }
  build(ROOT, bin.B);

  const workloads = [
    ['W1', ['--data', 'fashion', '--model', 'softmax', '--lr', '0.1']],
    ['W3', ['--data', 'rcv1', '--rows', '100000', '--model', 'logistic', '--lr', '8']],
  ];
  const runs = {};  // key -> { A: [], B: [] }
  for (let r = 0; r < rounds; r++)
    for (const [name, wargs] of workloads)
      for (const side of r % 2 ? ['B', 'A'] : ['A', 'B']) {
        const out = path.join(dir, 'run.json');
        execFileSync(bin[side], [...wargs, '--batch', String(batch), '--epochs', '1', '--modes', 'atomic,hogwild', '--threads', '1,2', '--json', out],
          { cwd: ROOT, stdio: 'ignore' });
        for (const e of JSON.parse(fs.readFileSync(out, 'utf8'))) {
          const key = `${name} ${e.mode} T=${e.threads}`;
          ((runs[key] ??= { A: [], B: [] })[side]).push(e.samplesPerSec);
        }
      }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const rows = Object.entries(runs).map(([key, v]) => ({ case: key, A: median(v.A), B: median(v.B), ratio: median(v.B) / median(v.A), runsA: v.A, runsB: v.B }));
  process.stdout.write(`A = ${commit}, B = this tree; batch ${batch}, 1 epoch, medians of ${rounds} alternating rounds (samples/s)\n`);
  for (const r of rows) process.stdout.write(`${r.case.padEnd(20)} A ${Math.round(r.A).toLocaleString('en-US').padStart(11)}  B ${Math.round(r.B).toLocaleString('en-US').padStart(11)}  B/A ${r.ratio.toFixed(3)}\n`);
  if (json)
    fs.writeFileSync(json, JSON.stringify({ date: new Date().toISOString(), cpu: os.cpus()[0].model, A: commit, B: 'this tree', batch, rounds, rows }, null, 1) + '\n');
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
