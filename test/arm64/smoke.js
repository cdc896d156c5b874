'use strict';
// The linux-arm64 prebuild end to end, through the compiled package (dist/)
// and its loader (node-gyp-build, PREBUILDS_ONLY=1): scripts/test-arm64.sh
// runs it under qemu-user with Debian's arm64 Node. Plain Node, no jest
// (jest's swc transform is an x86-64 binary here, and every instruction is
// emulated). Exits non-zero on the first failed check.
//
//   PREBUILDS_ONLY=1 node test/arm64/smoke.js        expects the NEON kernels on arm64
//   GRADVAULT_ISA=scalar ... node test/arm64/smoke.js  expects the scalar reference
//
// Checks: the addon loaded is prebuilds/<platform>-<arch>/gradvault.node and
// isa() reports the expected instruction set; pushes from 2 worker threads
// give exact sums in the safe modes; deterministic mode gives the same bytes
// as one thread pushing in another order (its digest is printed, so runs on
// two instruction sets can be compared); the native trainer fits softmax and
// an MLP on synthetic('blobs') (accuracy > 0.9) and logistic regression on
// synthetic('sparse-logistic') (> 0.8); a checkpoint saves and loads bit for bit.
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');
const gv = require(path.join(root, 'dist'));
const gradients = require(path.join(root, 'test', 'fixtures', 'gradients'));

const WORKERS = 2;
const SIZE = 1000;
const PUSHES = Number(process.env.SMOKE_PUSHES || 2000);

function check(cond, what) {
  if (!cond) throw new Error(what);
}

function sameBits(a, b) {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

function runWorkers(store, kind, pushes) {
  const handle = store.share();
  return Promise.all(
    Array.from({ length: WORKERS }, (_, worker) => new Promise((resolve, reject) => {
      const w = new Worker(__filename, { workerData: { handle, worker, pushes, kind } });
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${worker} exited with ${code}`))));
    })),
  );
}

let t0 = Date.now();
function ok(what) {
  console.log(`  ok  ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  t0 = Date.now();
}

async function main() {
  const expected = process.env.GRADVAULT_ISA || (process.arch === 'arm64' ? 'neon' : undefined);
  console.log(`smoke: node ${process.version} ${process.platform}-${process.arch}, PREBUILDS_ONLY=${process.env.PREBUILDS_ONLY || ''}`);

  // 1. the prebuild of this platform, through the package's own loader
  const loaded = require(path.join(root, 'node_modules', 'node-gyp-build')).path(root);
  const want = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  check(path.dirname(loaded) === want, `loaded ${loaded}, not a prebuild in ${want} (run with PREBUILDS_ONLY=1)`);
  const info = gv.isa();
  if (expected) check(info.active === expected, `isa() active ${info.active}, expected ${expected}`);
  if (process.arch === 'arm64') check(info.supported.includes('neon') && info.supported.includes('scalar'), `isa() supported ${info.supported}`);
  ok(`${path.relative(root, loaded)}: isa() ${JSON.stringify(info)}`);

  // 2. exact sums from two worker threads: g = -(worker + 1) * (i % 3 + 1), lr 1
  const exact = new Float32Array(SIZE);
  for (let i = 0; i < SIZE; i++) exact[i] = PUSHES * (1 + 2) * ((i % 3) + 1);
  for (const mode of ['atomic', 'locked', 'versioned', 'deterministic']) {
    const store = new gv.ParameterStore({ mode, optimizer: { kind: 'sgd', lr: 1 }, tensors: { w: { shape: [SIZE] } } });
    await runWorkers(store, 'exact', PUSHES);
    const w = store.snapshot().get('w');
    check(sameBits(w, exact), `${mode}: sums differ from ${PUSHES} x 3 x (i % 3 + 1), e.g. w[1] = ${w[1]} vs ${exact[1]}`);
    check(store.stats().version === WORKERS * PUSHES, `${mode}: version ${store.stats().version}, expected ${WORKERS * PUSHES}`);
    store.close();
    ok(`${mode}: ${WORKERS} threads x ${PUSHES} pushes of ${SIZE} floats, exact sums`);
  }

  // 3. deterministic: the same bytes as one thread pushing in reverse order
  const detOptions = { mode: 'deterministic', optimizer: { kind: 'sgd', lr: 0.01 }, tensors: { w: { shape: [SIZE] } } };
  const pushes = Math.max(1, PUSHES / 4);
  const parallel = new gv.ParameterStore(detOptions);
  await runWorkers(parallel, 'random', pushes);
  const serial = new gv.ParameterStore(detOptions);
  for (let w = WORKERS - 1; w >= 0; w--) for (let s = pushes - 1; s >= 0; s--) serial.push({ w: gradients.random(w, s, SIZE) });
  const a = parallel.snapshot().get('w'), b = serial.snapshot().get('w');
  check(sameBits(a, b), 'deterministic: 2 threads and 1 thread in another order give different bytes');
  const digest = crypto.createHash('sha256').update(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
  parallel.close();
  serial.close();
  ok(`deterministic: ${WORKERS} threads = 1 thread reversed, bit for bit`);
  console.log(`deterministic digest: ${digest}`);

  // 4. the native trainer (dense, softmax and ReLU kernels; sparse and logistic ones)
  const [train, test] = gv.synthetic('blobs', { rows: 4000, features: 8, classes: 4 }).split(0.8);
  const softmax = new gv.Trainer({ model: 'softmax', threads: 2, epochs: 3, optimizer: { kind: 'sgd', lr: 0.05 } });
  await softmax.fit(train);
  const accSoftmax = gv.evaluate(softmax.store, 'softmax', test).accuracy;
  check(accSoftmax > 0.9, `softmax on blobs: accuracy ${accSoftmax} <= 0.9`);
  ok(`softmax on synthetic('blobs'), 2 threads: accuracy ${accSoftmax.toFixed(3)}`);
  const mlp = new gv.Trainer({ model: 'mlp', hidden: [32], threads: 2, epochs: 3, optimizer: { kind: 'adam', lr: 0.01 } });
  await mlp.fit(train);
  const accMlp = gv.evaluate(mlp.store, 'mlp', test).accuracy;
  check(accMlp > 0.9, `mlp on blobs: accuracy ${accMlp} <= 0.9`);
  ok(`mlp [32] on synthetic('blobs'), 2 threads: accuracy ${accMlp.toFixed(3)}`);
  const [strain, stest] = gv.synthetic('sparse-logistic', { rows: 6000, features: 300, nnz: 30 }).split(0.8);
  const logistic = new gv.Trainer({ model: 'logistic', threads: 2, epochs: 3, optimizer: { kind: 'sgd', lr: 1 } });
  await logistic.fit(strain);
  const accLogistic = gv.evaluate(logistic.store, 'logistic', stest).accuracy;
  check(accLogistic > 0.8, `logistic on sparse-logistic: accuracy ${accLogistic} <= 0.8`);
  ok(`logistic on synthetic('sparse-logistic'), 2 threads: accuracy ${accLogistic.toFixed(3)}`);

  // 5. a checkpoint, saved and loaded bit for bit
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradvault-arm64-'));
  try {
    const file = path.join(dir, 'softmax.safetensors');
    await softmax.store.save(file);
    const back = await gv.ParameterStore.load(file);
    check(back.version === softmax.store.version, `loaded version ${back.version}, saved ${softmax.store.version}`);
    const s0 = softmax.store.snapshot(), s1 = back.snapshot();
    for (const name of s0.names) check(sameBits(s0.get(name), s1.get(name)), `checkpoint: tensor ${name} differs after load`);
    check(gv.evaluate(back, 'softmax', test).accuracy === accSoftmax, 'checkpoint: the loaded model evaluates differently');
    ok(`checkpoint: ${fs.statSync(file).size} bytes saved, loaded bit for bit (version ${back.version}, tensors ${s0.names.join(', ')})`);
    back.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  for (const t of [softmax, mlp, logistic]) t.store.close();
  console.log(`smoke: passed (${info.active})`);
}

if (!isMainThread) {
  // A worker: attach to the shared store and push known gradients.
  const { handle, worker, pushes, kind } = workerData;
  const store = gv.ParameterStore.attach(handle);
  for (let step = 0; step < pushes; step++) {
    const g = kind === 'exact' ? gradients.exact(worker, SIZE) : gradients.random(worker, step, SIZE);
    const r = store.push({ w: g });
    if (!r.applied) throw new Error(`worker ${worker}: push ${step} not applied: ${r.reason}`);
  }
  store.close();
  parentPort.postMessage('done');
} else {
  main().catch((e) => {
    console.error(`smoke: FAILED: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  });
}
