#!/usr/bin/env node
// Training across processes: gradvault's cluster (S `gradvault server`
// shards, W worker processes x T native threads, each worker a remote
// Trainer with a local replica synced every K batches) beside PyTorch
// DistributedDataParallel with Gloo on loopback (bench/peers/torch_ddp.py)
// and one gradvault process, on W2 (MLP 784-128-10, batch 32, plain SGD
// lr 0.1, Fashion-MNIST), all in the same run. Samples/s is training rows x
// epochs over the wall time from the moment every worker is ready to the
// last one done; test accuracy of the final parameters beside it.
//
//   node bench/cluster_train.js [--quick] [--epochs 5] [--configs 1x2x1,2x2x1,1x2x1a] [--sync-every 32]
//        [--repeats 3] [--json bench/results/cluster_train.json]
//
// --configs: shards x workers x threads (add 'a' for synchronous mode:
// 1x2x1a). Median of --repeats runs per row. Needs /usr/share/datasets/
// fashion-mnist (apt-get install dataset-fashion-mnist) and, for the DDP
// rows, /usr/bin/python3 with torch and OpenBLAS (apt-get install
// python3-torch libopenblas0-pthread: without OpenBLAS, Debian's torch runs
// on the reference BLAS, about 6x slower, and the baseline would be weak;
// the script refuses to measure DDP then).
'use strict';
const { spawn, fork, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const gv = require('../dist');

const ROOT = path.join(__dirname, '..');
const FASHION = '/usr/share/datasets/fashion-mnist';
const argv = process.argv.slice(2);
const opt = (name, d) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : d;
};
const QUICK = argv.includes('--quick');
const W2 = { model: 'mlp', hidden: [128], batchSize: 32, lr: 0.1, seed: 42 };

async function loadData(rows) {
  const f = (n) => path.join(FASHION, n);
  let train = await gv.loadIdx(f('train-images-idx3-ubyte.gz'), f('train-labels-idx1-ubyte.gz'));
  const test = await gv.loadIdx(f('t10k-images-idx3-ubyte.gz'), f('t10k-labels-idx1-ubyte.gz'));
  if (rows > 0) train = train.slice(0, rows);
  return { train, test };
}

// ---- a worker process: connect, wait for 'go', train its share, report
async function worker() {
  const o = JSON.parse(process.env.GV_BENCH_WORKER);
  const { train } = await loadData(o.rows);
  const rank = Number(process.env.GRADVAULT_RANK), world = Number(process.env.GRADVAULT_WORLD_SIZE);
  // every worker the same number of rows (synchronous mode: the same number of syncs)
  const share = Math.floor(train.rows / world);
  const mine = train.slice(rank * share, (rank + 1) * share);
  const store = await gv.ParameterStore.connect({
    tensors: gv.modelTensors({ model: W2.model, hidden: W2.hidden }, train),
    mode: o.mode,
    optimizer: { kind: 'sgd', lr: W2.lr },
    seed: W2.seed,
  });
  const trainer = new gv.Trainer(store, { model: W2.model, hidden: W2.hidden, threads: o.threads, epochs: o.epochs, batchSize: W2.batchSize, seed: W2.seed + rank, syncEvery: o.syncEvery });
  process.send({ ready: true });
  await new Promise((r) => process.once('message', r));
  const t0 = process.hrtime.bigint();
  const r = await trainer.fit(mine);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.send({ done: true, seconds, samples: mine.rows * o.epochs, cluster: r.cluster });
  await store.close();
}

function startShard(keyFile) {
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'server', '--listen', 'tcp://127.0.0.1:0', '--key-file', keyFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve({ proc, address: m[1] });
    });
    proc.on('exit', (c) => reject(new Error(`shard exited (${c})`)));
  });
}

async function runCluster(cfg, o, test, keyFile) {
  const shards = await Promise.all(Array.from({ length: cfg.shards }, () => startShard(keyFile)));
  const servers = shards.map((s) => s.address);
  try {
    const env = { ...process.env, GRADVAULT_SERVERS: servers.join(','), GRADVAULT_KEY_FILE: keyFile, GRADVAULT_WORLD_SIZE: String(cfg.workers) };
    const spec = { mode: cfg.mode, threads: cfg.threads, epochs: o.epochs, syncEvery: o.syncEvery, rows: o.rows };
    const procs = Array.from({ length: cfg.workers }, (_, rank) =>
      fork(__filename, [], { env: { ...env, GRADVAULT_RANK: String(rank), GV_BENCH_WORKER: JSON.stringify(spec) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
    );
    const msg = (p, key) =>
      new Promise((resolve, reject) => {
        p.on('message', (m) => m[key] && resolve(m));
        p.on('exit', (c) => c !== 0 && reject(new Error(`a worker exited (${c})`)));
      });
    const ready = procs.map((p) => msg(p, 'ready'));
    const done = procs.map((p) => msg(p, 'done'));
    await Promise.all(ready);
    const t0 = process.hrtime.bigint();
    for (const p of procs) p.send('go');
    const results = await Promise.all(done);
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r() : p.on('exit', r)))));
    const store = await gv.ParameterStore.connect({ servers, key: fs.readFileSync(keyFile, 'utf8').trim(), tensors: gv.modelTensors({ model: 'mlp', hidden: [128] }, test), mode: cfg.mode, optimizer: { kind: 'sgd', lr: W2.lr }, seed: W2.seed, worldSize: cfg.workers });
    const ev = gv.evaluate(await store.pull(), 'mlp', test);
    await store.close();
    const samples = results.reduce((a, r) => a + r.samples, 0);
    return { samples, seconds: wall, samplesPerSec: samples / wall, testAccuracy: ev.accuracy, testLoss: ev.loss, syncs: results.map((r) => r.cluster.syncs), staleness: results.map((r) => r.cluster.staleness) };
  } finally {
    for (const s of shards) s.proc.kill('SIGTERM');
  }
}

async function runLocal(threads, o, data) {
  const trainer = new gv.Trainer({ model: W2.model, hidden: W2.hidden, threads, epochs: o.epochs, batchSize: W2.batchSize, seed: W2.seed, mode: 'atomic', optimizer: { kind: 'sgd', lr: W2.lr } });
  const r = await trainer.fit(data.train);
  const ev = gv.evaluate(trainer.store.snapshot(), 'mlp', data.test);
  trainer.store.close();
  return { samples: r.samples, seconds: r.seconds, samplesPerSec: r.samplesPerSec, testAccuracy: ev.accuracy, testLoss: ev.loss };
}

function runDdp(procs, o) {
  const args = [path.join(__dirname, 'peers/torch_ddp.py'), '--workload', 'W2', '--threads', String(procs), '--epochs', String(o.epochs), '--batch', '32', '--lr', String(W2.lr)];
  if (o.rows > 0) args.push('--rows', String(o.rows));
  const r = spawnSync('/usr/bin/python3', args, { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) throw new Error(`torch_ddp.py failed: ${r.stderr.slice(-800)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  if (!fs.existsSync(path.join(FASHION, 'train-images-idx3-ubyte.gz'))) throw new Error(`${FASHION} is missing: apt-get install dataset-fashion-mnist`);
  const o = { epochs: Number(opt('epochs', QUICK ? 1 : 5)), syncEvery: Number(opt('sync-every', 32)), rows: QUICK ? 6000 : 0 };
  const repeats = Number(opt('repeats', QUICK ? 1 : 3));
  const configs = opt('configs', '1x2x1,2x2x1,1x2x1a').split(',').map((c) => {
    const m = /^(\d+)x(\d+)x(\d+)(a?)$/.exec(c);
    if (!m) throw new Error(`--configs: ${c} is not SxWxT`);
    return { name: c, shards: +m[1], workers: +m[2], threads: +m[3], mode: m[4] ? 'averaging' : 'atomic' };
  });
  const haveTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  let blas = 'unknown';
  try {
    blas = fs.realpathSync('/usr/lib/x86_64-linux-gnu/libblas.so.3');
  } catch {}
  if (haveTorch && !/openblas|blis|mkl/.test(blas)) throw new Error(`torch would use the reference BLAS (${blas}): apt-get install libopenblas0-pthread for a fair DDP baseline`);
  const data = await loadData(o.rows);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-bench-'));
  const keyFile = path.join(dir, 'cluster.key');
  fs.writeFileSync(keyFile, gv.generateKey(), { mode: 0o600 });
  const isa = require('../dist/native').native().isa();
  const log = (s) => process.stderr.write(s + '\n');
  log(`cluster_train: ${os.cpus()[0].model}, ${os.cpus().length} cores, ISA ${isa.active}; W2 MLP 784-128-10, batch 32, lr ${W2.lr}, ${o.epochs} epochs, ${data.train.rows} rows, syncEvery ${o.syncEvery}, median of ${repeats}`);
  const rows = [];
  const measure = async (name, f) => {
    const runs = [];
    for (let i = 0; i < repeats; i++) runs.push(await f());
    const best = runs.find((r) => r.samplesPerSec === median(runs.map((x) => x.samplesPerSec)));
    const row = { name, ...best, runs: runs.map((r) => Math.round(r.samplesPerSec)) };
    rows.push(row);
    log(`${name.padEnd(34)} ${Math.round(row.samplesPerSec).toString().padStart(8)} samples/s  test accuracy ${row.testAccuracy.toFixed(4)}${row.syncs ? `  syncs ${row.syncs.join('/')}` : ''}`);
  };
  try {
    if (argv.includes('--only-cluster')) log('--only-cluster: the DDP and one-process rows are left out');
    else if (haveTorch) {
      await measure('torch DDP gloo, 1 process', () => runDdp(1, o));
      await measure('torch DDP gloo, 2 processes', () => runDdp(2, o));
    } else log('torch DDP rows skipped: /usr/bin/python3 has no torch (apt-get install python3-torch)');
    if (!argv.includes('--only-cluster')) {
      await measure('gradvault, 1 process x 1 thread', () => runLocal(1, o, data));
      await measure('gradvault, 1 process x 2 threads', () => runLocal(2, o, data));
    }
    for (const c of configs)
      await measure(`gradvault cluster ${c.shards} shard${c.shards > 1 ? 's' : ''} x ${c.workers} workers x ${c.threads} thread${c.threads > 1 ? 's' : ''}${c.mode === 'averaging' ? ' (sync)' : ''}`, () => runCluster(c, o, data.test, keyFile));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const ddp2 = rows.find((r) => r.name === 'torch DDP gloo, 2 processes');
  const one = rows.find((r) => r.name === 'gradvault, 1 process x 2 threads');
  for (const r of rows) {
    if (ddp2) r.vsDdp2 = r.samplesPerSec / ddp2.samplesPerSec;
    if (one) r.vsOneProcess = r.samplesPerSec / one.samplesPerSec;
  }
  const out = { machine: { cpu: os.cpus()[0].model, cores: os.cpus().length, isa: isa.active, blas }, workload: { ...W2, epochs: o.epochs, rows: data.train.rows, syncEvery: o.syncEvery, repeats }, rows };
  const file = opt('json', null);
  if (file) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  }
  for (const r of rows) log(`${r.name.padEnd(34)} ${r.vsDdp2 ? `${r.vsDdp2.toFixed(2)}x DDP(2)` : ''} ${r.vsOneProcess ? `${r.vsOneProcess.toFixed(2)}x one process` : ''}`);
}

if (process.env.GV_BENCH_WORKER) worker().catch((e) => {
  process.stderr.write(`worker: ${e.stack}\n`);
  process.exit(1);
});
else main().catch((e) => {
  process.stderr.write(`cluster_train: ${e.stack}\n`);
  process.exit(1);
});
