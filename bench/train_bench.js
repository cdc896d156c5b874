#!/usr/bin/env node
'use strict';
// The training benchmark (issue 3): workloads W1-W3 trained by gradvault's
// Trainer (through the public API: native threads, every push through the
// store) in each mode x threads, beside its peers in the same run: the
// hand-written C++ loop, plain JavaScript, JavaScript worker_threads Hogwild
// over a SharedArrayBuffer, PyTorch Hogwild and scikit-learn (bench/peers/).
//
//   node bench/train_bench.js [--smoke] [--workloads W1b1,W1b32,W2,W3] [--modes atomic,...]
//                             [--threads 1,2] [--peers hand_sgd,plain_js,...] [--out FILE]
//
// --smoke: small data, 1 epoch, two modes, fast peers only (CI).
// Each gradvault row records the store's pushes and, at batch 1, lostUpdates
// (samples trained - pushes: 0 when no update was lost).
// Results: one JSON file (default bench/results/train.json); the report
// (bench/report.js) renders it into bench/RESULTS.md with a chart.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const gv = require('..');

const ROOT = path.join(__dirname, '..');
const FASHION = '/usr/share/datasets/fashion-mnist';
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const SMOKE = args.includes('--smoke');
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 16).join('\n') + '\n');
  process.exit(0);
}
const list = (s) => s.split(',').filter(Boolean);

// Workloads: data, model, batch, learning rate (bench/peers/README.md: the rates found with the C++ loop), epochs.
const WORKLOADS = {
  W1b1: { peer: 'W1', data: 'fashion', model: 'softmax', batch: 1, lr: 0.005, epochs: 5 },
  W1b32: { peer: 'W1', data: 'fashion', model: 'softmax', batch: 32, lr: 0.1, epochs: 5 },
  W2: { peer: 'W2', data: 'fashion', model: 'mlp', hidden: [128], batch: 32, lr: 0.1, epochs: 5 },
  W3: { peer: 'W3', data: 'w3', model: 'logistic', batch: 32, lr: 8, epochs: 5 },
  W3b1: { peer: 'W3', data: 'w3', model: 'logistic', batch: 1, lr: 1, epochs: 5 },
  // Accuracy runs: gradvault alone, with a step schedule (halve the rate every `every` epochs).
  W1acc: { peer: 'W1', data: 'fashion', model: 'softmax', batch: 32, lr: 0.2, epochs: 5, schedule: { kind: 'step', every: 1, gamma: 0.5 }, only: ['atomic', 2] },
  W2acc: { peer: 'W2', data: 'fashion', model: 'mlp', hidden: [128], batch: 32, lr: 0.2, epochs: 15, schedule: { kind: 'step', every: 5, gamma: 0.5 }, only: ['atomic', 2] },
};
const ALL_PEERS = ['hand_sgd', 'plain_js', 'sab_hogwild_js', 'torch_hogwild', 'sklearn_sgd'];

const workloads = list(opt('workloads', SMOKE ? 'W1b1,W1b32,W2,W3,W3b1' : 'W1b1,W1b32,W2,W3,W3b1,W1acc,W2acc'));
const modes = list(opt('modes', SMOKE ? 'atomic,hogwild' : gv.MODES.join(',')));
const threads = list(opt('threads', '1,2')).map(Number);
const peers = list(opt('peers', SMOKE ? 'hand_sgd,plain_js' : ALL_PEERS.join(',')));
const epochsOverride = SMOKE ? 1 : Number(opt('epochs', 0)) || 0;
const SMOKE_ROWS = 6000;
const out = opt('out', path.join(ROOT, SMOKE ? 'bench/out/smoke/train.json' : 'bench/results/train.json'));
// Slow peers get a share of the rows (their samples/s is measured on it; accuracy then is not comparable).
const PEER_ROWS = { torch_hogwild: { W1b1: 20000, W3b1: 20000 }, plain_js: {}, sab_hogwild_js: {}, sklearn_sgd: {}, hand_sgd: {} };
const PEER_TIMEOUT_S = Number(opt('peer-timeout', SMOKE ? 60 : 900));

function cpuModel() {
  const c = os.cpus();
  return c.length ? c[0].model : 'unknown';
}

function log(s) {
  process.stderr.write(s + '\n');
}

async function loadData(kind) {
  if (kind === 'fashion') {
    const f = (n) => path.join(FASHION, n);
    let train = await gv.loadIdx(f('train-images-idx3-ubyte.gz'), f('train-labels-idx1-ubyte.gz'));
    const test = await gv.loadIdx(f('t10k-images-idx3-ubyte.gz'), f('t10k-labels-idx1-ubyte.gz'));
    if (SMOKE) train = train.slice(0, SMOKE_ROWS);
    return { train, test };
  }
  // W3: the same rows as bench/peers/make-w3.js writes for the peers (synthetic, seed 7).
  const rows = SMOKE ? SMOKE_ROWS + 2000 : 220000;
  const all = gv.synthetic('sparse-logistic', { rows, seed: 7 });
  const cut = SMOKE ? SMOKE_ROWS : 200000;
  return { train: all.slice(0, cut), test: all.slice(cut, rows) };
}

async function runGradvault(w, data, mode, t) {
  const trainer = new gv.Trainer({
    model: w.model,
    ...(w.hidden ? { hidden: w.hidden } : {}),
    threads: t,
    epochs: epochsOverride || w.epochs,
    batchSize: w.batch,
    seed: 42,
    ...(w.schedule ? { schedule: w.schedule } : {}),
    mode,
    ...(mode === 'averaging' ? { syncEvery: t } : {}),
    optimizer: { kind: 'sgd', lr: w.lr },
  });
  const t0 = process.hrtime.bigint();
  const r = await trainer.fit(data.train);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const ev = gv.evaluate(trainer.store.snapshot(), w.model, data.test);
  const st = trainer.store.stats();
  trainer.store.close();
  return {
    peer: 'gradvault',
    mode,
    threads: t,
    samples: r.samples,
    seconds: r.seconds,
    wallSeconds: wall,
    samplesPerSec: r.samplesPerSec,
    testAccuracy: ev.accuracy,
    testLoss: ev.loss,
    pushes: st.pushes,
    // Batch 1: one push per sample, so samples - pushes counts the updates
    // lost (issue 16's "zero lost updates"; hogwild's racy overwrites are
    // not counted here: see conflicts). Batch > 1: null (a push per batch).
    lostUpdates: w.batch === 1 ? r.samples - st.pushes : null,
    conflicts: st.conflicts,
    stalenessMean: st.staleness.mean,
  };
}

function peerCommand(peer, w, t) {
  const common = ['--workload', w.peer, '--threads', String(t), '--epochs', String(epochsOverride || w.epochs), '--batch', String(w.batch), '--lr', String(w.lr)];
  const rows = SMOKE ? SMOKE_ROWS : PEER_ROWS[peer]?.[w.key];
  if (rows) common.push('--rows', String(rows));
  switch (peer) {
    case 'hand_sgd':
      return [path.join(ROOT, 'bench/data/bin/hand_sgd'), common];
    case 'plain_js':
      return [process.execPath, [path.join(__dirname, 'peers/plain.js'), ...common]];
    case 'sab_hogwild_js':
      return [process.execPath, [path.join(__dirname, 'peers/sab_hogwild.js'), ...common]];
    case 'torch_hogwild':
      return ['/usr/bin/python3', [path.join(__dirname, 'peers/torch_hogwild.py'), ...common]];
    case 'sklearn_sgd':
      return ['/usr/bin/python3', [path.join(__dirname, 'peers/sklearn_sgd.py'), ...common]];
  }
  throw new Error(`unknown peer ${peer}`);
}

function runPeer(peer, w, t) {
  if (peer === 'plain_js' && t !== 1) return null; // single-threaded by nature
  if (peer === 'sklearn_sgd' && (t !== 1 || w.peer === 'W2')) return null;
  // SGDClassifier updates per sample: it runs in the batch-1 workloads only
  if (peer === 'sklearn_sgd' && w.batch !== 1) return null;
  if (w.peer === 'W3' && !fs.existsSync(path.join(ROOT, 'bench/data/w3-train.svm')))
    return { peer, threads: t, skipped: 'no bench/data/w3-*.svm (node bench/peers/make-w3.js)' };
  const [cmd, argv] = peerCommand(peer, w, t);
  if (!fs.existsSync(cmd)) return { peer, threads: t, skipped: `${path.relative(ROOT, cmd)} not built` };
  const r = spawnSync(cmd, argv, { cwd: ROOT, encoding: 'utf8', timeout: PEER_TIMEOUT_S * 1000, maxBuffer: 1 << 24 });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop();
    return { peer, threads: t, skipped: `failed: ${why}` };
  }
  const line = r.stdout.trim().split('\n').pop();
  const j = JSON.parse(line);
  return { ...j, peer, threads: t, mode: '-' };
}

function fmt(x, d = 0) {
  return x === undefined || x === null || Number.isNaN(x) ? '-' : Number(x).toFixed(d);
}

async function main() {
  const isa = gv.isa();
  const machine = { cpu: cpuModel(), cores: os.availableParallelism(), isa: isa.active, supported: isa.supported, node: process.version };
  log(`# machine: ${machine.cpu}, ${machine.cores} hardware threads, kernels ${machine.isa} (${machine.supported.join(', ')})`);
  const results = [];
  const cache = {};
  for (const key of workloads) {
    const w = { ...WORKLOADS[key], key };
    if (!WORKLOADS[key]) throw new Error(`unknown workload ${key}`);
    if (w.data === 'fashion' && !fs.existsSync(path.join(FASHION, 'train-images-idx3-ubyte.gz'))) {
      log(`# ${key}: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): skipped`);
      continue;
    }
    cache[w.data] ??= await loadData(w.data);
    const data = cache[w.data];
    log(`\n## ${key}: ${w.model}${w.hidden ? ` ${w.hidden}` : ''}, batch ${w.batch}, lr ${w.lr}, ${epochsOverride || w.epochs} epochs, ${data.train.rows} train rows`);
    log('peer            mode           threads   samples/s   wall s   accuracy');
    const row = (r) =>
      log(
        `${r.peer.padEnd(15)} ${String(r.mode ?? '-').padEnd(14)} ${String(r.threads).padStart(7)} ${fmt(r.samplesPerSec).padStart(11)} ${fmt(r.wallSeconds ?? r.seconds, 2).padStart(8)} ${r.skipped ? r.skipped : fmt(r.testAccuracy, 4).padStart(10)}`,
      );
    for (const t of w.only ? [w.only[1]] : threads)
      for (const mode of w.only ? [w.only[0]] : modes) {
        const r = { ...(await runGradvault(w, data, mode, t)), workload: key };
        results.push(r);
        row(r);
      }
    for (const peer of w.only ? [] : peers)
      for (const t of threads) {
        const r = runPeer(peer, w, t);
        if (!r) continue;
        results.push({ ...r, workload: key });
        row(r);
      }
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ machine, smoke: SMOKE, date: new Date().toISOString(), workloads: WORKLOADS, results }, null, 1) + '\n');
  log(`\nwrote ${path.relative(ROOT, out)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
