'use strict';
// (About 600 lines on purpose: the peers' whole shared toolkit in one file.)
// What the JavaScript peers (plain.js, sab_hogwild.js) share: the command
// line, the data loaders, the random numbers, and the SGD math of the three
// workloads on Float32Arrays. The math is the same as hand_sgd.cpp's, written
// as plain JavaScript would be (locals in double, parameters in Float32Array):
//
//   W1  softmax regression, W [784,10] row-major + b [10], zeros init
//   W2  MLP 784-128-10, ReLU, softmax; Glorot-uniform W1 [784,128], W2 [128,10]; zero biases
//   W3  sparse binary logistic regression, w [47236] + b [1], labels ±1
//
// Plain SGD on the mean gradient of each batch (step = lr * mean gradient).
// A trainer's step(perm, lo, hi) trains on rows perm[lo, hi) in batches and
// updates the parameter arrays in place, whichever memory they live in.

const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

const CLASSES = 10;
const HIDDEN = 128;
const W3_FEATURES = 47236;
const FMNIST_DIR = '/usr/share/datasets/fashion-mnist';
const DATA_DIR = path.join(__dirname, '..', 'data');

/** Learning rates that reach the target accuracy in 5 epochs (as hand_sgd.cpp; see README.md). */
function defaultLr(workload, batch) {
  if (workload === 'W1') return batch === 1 ? 0.005 : 0.1;
  if (workload === 'W2') return batch === 1 ? 0.01 : 0.1;
  return batch === 1 ? 1.0 : 8.0;
}

function fail(peer, msg) {
  process.stderr.write(`${peer}: ${msg}\n`);
  process.exit(2);
}

/** --workload W1|W2|W3 --threads N --epochs E --batch B --lr X [--seed S] [--rows N] [--fmnist DIR] [--data DIR] */
function parseArgs(peer, argv = process.argv.slice(2)) {
  const o = { workload: 'W1', threads: 1, epochs: 5, batch: 1, lr: undefined, seed: 42, rows: -1, fmnist: FMNIST_DIR, data: DATA_DIR };
  const ints = new Set(['threads', 'epochs', 'batch', 'seed', 'rows']);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const v = argv[i + 1];
    if (!(key in o) || !argv[i].startsWith('--')) fail(peer, `unknown option ${argv[i]}`);
    if (v === undefined) fail(peer, `missing value for ${argv[i]}`);
    if (key === 'workload' || key === 'fmnist' || key === 'data') o[key] = v;
    else {
      const n = Number(v);
      if (!Number.isFinite(n) || (ints.has(key) && !Number.isInteger(n))) fail(peer, `bad value for ${argv[i]}: ${v}`);
      o[key] = n;
    }
  }
  if (!['W1', 'W2', 'W3'].includes(o.workload)) fail(peer, '--workload must be W1, W2 or W3');
  if (o.threads < 1 || o.epochs < 1 || o.batch < 1) fail(peer, '--threads, --epochs and --batch must be >= 1');
  o.lr ??= defaultLr(o.workload, o.batch);
  return o;
}

// ---------------------------------------------------------------- random numbers

/**
 * The generator shared by every peer (see hand_sgd.cpp): a Weyl sequence
 * through murmur3's 32-bit finaliser. Same seed, same numbers as the C++ peer,
 * so the same initial weights and the same shuffles.
 */
class Rng {
  constructor(seed) {
    this.state = seed | 0;
  }
  next() {
    let z = (this.state = (this.state + 0x9e3779b9) | 0);
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }
  /** [0, 1) with 24 bits, as a float32. */
  uniform() {
    return (this.next() >>> 8) * 2 ** -24;
  }
  /** An integer in [0, n): floor(next * n / 2^32), exact in double for n < 2^21. */
  below(n) {
    return Math.floor((this.next() * n) / 4294967296);
  }
}

/** Fisher-Yates, the same sequence of swaps as hand_sgd.cpp. */
function shuffle(perm, rng) {
  for (let i = perm.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

function identity(n, alloc) {
  const perm = alloc(Uint32Array, n);
  for (let i = 0; i < n; i++) perm[i] = i;
  return perm;
}

/** The seed of the shuffles (the init uses the seed itself). */
const shuffleSeed = (seed) => (seed ^ 0x5eed) >>> 0;

function glorot(w, fanIn, fanOut, rng) {
  const limit = Math.fround(Math.sqrt(Math.fround(6 / (fanIn + fanOut))));
  for (let i = 0; i < w.length; i++) w[i] = (2 * rng.uniform() - 1) * limit;
}

// ---------------------------------------------------------------- data
// `alloc(Ctor, n)` makes the arrays: plain, or views over SharedArrayBuffers.

const plainAlloc = (Ctor, n) => new Ctor(n);
const sharedAlloc = (Ctor, n) => new Ctor(new SharedArrayBuffer(n * Ctor.BYTES_PER_ELEMENT));

/** Fashion-MNIST (IDX, gzip): { rows, cols, x: Float32Array rows×cols in [0,1], y: Int32Array }. */
function loadIdx(images, labels, alloc) {
  const im = zlib.gunzipSync(fs.readFileSync(images));
  const lb = zlib.gunzipSync(fs.readFileSync(labels));
  if (im.readUInt32BE(0) !== 0x803 || lb.readUInt32BE(0) !== 0x801) throw new Error(`not IDX: ${images}`);
  const rows = im.readUInt32BE(4);
  const cols = im.readUInt32BE(8) * im.readUInt32BE(12);
  if (im.length !== 16 + rows * cols || lb.length !== 8 + rows) throw new Error(`truncated IDX: ${images}`);
  const x = alloc(Float32Array, rows * cols);
  for (let i = 0; i < x.length; i++) x[i] = im[16 + i] / 255;
  const y = alloc(Int32Array, rows);
  for (let i = 0; i < rows; i++) y[i] = lb[8 + i];
  return { rows, cols, x, y };
}

function loadFashion(dir, alloc) {
  return {
    train: loadIdx(path.join(dir, 'train-images-idx3-ubyte.gz'), path.join(dir, 'train-labels-idx1-ubyte.gz'), alloc),
    test: loadIdx(path.join(dir, 't10k-images-idx3-ubyte.gz'), path.join(dir, 't10k-labels-idx1-ubyte.gz'), alloc),
  };
}

const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * LIBSVM text ("label idx:val ...", 1-based) as CSR: { rows, cols, start, index, value, y (±1) }.
 * A byte-level parser: the number of a value is its digits as an integer over
 * an exact power of ten, correctly rounded to double, then stored as float32.
 */
function loadLibsvm(file, cols, alloc) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch {
    throw new Error(`cannot read ${file} (run: node bench/peers/make-w3.js)`);
  }
  const n = buf.length;
  let rows = 0;
  let nnz = 0;
  for (let i = 0; i < n; i++) {
    const c = buf[i];
    if (c === 10) rows++;
    else if (c === 58) nnz++; // ':'
  }
  if (n > 0 && buf[n - 1] !== 10) rows++;
  const start = alloc(Uint32Array, rows + 1);
  const index = alloc(Uint32Array, nnz);
  const value = alloc(Float32Array, nnz);
  const y = alloc(Float32Array, rows);
  let p = 0;
  let r = 0;
  let q = 0;
  const bad = () => {
    throw new Error(`malformed LIBSVM in ${file} at byte ${p}`);
  };
  // A decimal number at p: [+-]digits[.digits][e[+-]digits].
  const number = () => {
    let sign = 1;
    if (buf[p] === 45) (sign = -1), p++;
    else if (buf[p] === 43) p++;
    let m = 0;
    let scale = 0;
    let digits = 0;
    let c = buf[p];
    while (c >= 48 && c <= 57) (m = m * 10 + (c - 48)), digits++, (c = buf[++p]);
    if (c === 46) {
      c = buf[++p];
      while (c >= 48 && c <= 57) (m = m * 10 + (c - 48)), scale++, digits++, (c = buf[++p]);
    }
    if (digits === 0) bad();
    if (c === 101 || c === 69) {
      let es = 1;
      let e = 0;
      c = buf[++p];
      if (c === 45) (es = -1), (c = buf[++p]);
      else if (c === 43) c = buf[++p];
      while (c >= 48 && c <= 57) (e = e * 10 + (c - 48)), (c = buf[++p]);
      scale -= es * e;
    }
    if (digits > 15 || scale > 22 || scale < -22) return sign * Number(buf.toString('latin1', p0, p));
    return sign * (scale >= 0 ? m / POW10[scale] : m * POW10[-scale]);
  };
  let p0 = 0;
  while (p < n) {
    p0 = p;
    y[r] = number() > 0 ? 1 : -1;
    for (;;) {
      while (buf[p] === 32) p++;
      if (p >= n || buf[p] === 10) break;
      let j = 0;
      let c = buf[p];
      while (c >= 48 && c <= 57) (j = j * 10 + (c - 48)), (c = buf[++p]);
      if (c !== 58 || j < 1 || j > cols) bad();
      p++;
      p0 = p;
      index[q] = j - 1;
      value[q] = number();
      q++;
    }
    p++; // '\n'
    start[++r] = q;
  }
  return { rows, cols, start, index, value, y };
}

function loadW3(dir, alloc) {
  return {
    train: loadLibsvm(path.join(dir, 'w3-train.svm'), W3_FEATURES, alloc),
    test: loadLibsvm(path.join(dir, 'w3-test.svm'), W3_FEATURES, alloc),
  };
}

/** Rows [0, rows) of a dataset (views, no copy); rows < 0 keeps all. */
function limitRows(d, rows) {
  if (rows < 0 || rows >= d.rows) return d;
  if (d.start) return { ...d, rows, start: d.start.subarray(0, rows + 1), y: d.y.subarray(0, rows) };
  return { ...d, rows, x: d.x.subarray(0, rows * d.cols), y: d.y.subarray(0, rows) };
}

function loadData(o, alloc) {
  const d = o.workload === 'W3' ? loadW3(o.data, alloc) : loadFashion(o.fmnist, alloc);
  return { train: limitRows(d.train, o.rows), test: d.test };
}

// ---------------------------------------------------------------- parameters

/** The workload's parameters (Float32Arrays from alloc), initialised. */
function createParams(workload, cols, seed, alloc) {
  if (workload === 'W1') return { W: alloc(Float32Array, cols * CLASSES), b: alloc(Float32Array, CLASSES) };
  if (workload === 'W3') return { w: alloc(Float32Array, cols), b: alloc(Float32Array, 1) };
  const p = {
    W1: alloc(Float32Array, cols * HIDDEN),
    b1: alloc(Float32Array, HIDDEN),
    W2: alloc(Float32Array, HIDDEN * CLASSES),
    b2: alloc(Float32Array, CLASSES),
  };
  const rng = new Rng(seed);
  glorot(p.W1, cols, HIDDEN, rng);
  glorot(p.W2, HIDDEN, CLASSES, rng);
  return p;
}

// ---------------------------------------------------------------- W1: softmax regression

/** z = x·W + b over the nonzero x_j (indices to nz); returns their count. */
function softmaxLogits(W, b, x, off, d, z, nz) {
  for (let k = 0; k < CLASSES; k++) z[k] = b[k];
  let n = 0;
  for (let j = 0; j < d; j++) {
    const xj = x[off + j];
    if (xj === 0) continue;
    nz[n++] = j;
    const w = j * CLASSES;
    for (let k = 0; k < CLASSES; k++) z[k] += xj * W[w + k];
  }
  return n;
}

/** p = softmax(z) in place; returns log(sum exp(z)). */
function softmaxInPlace(z) {
  let m = z[0];
  for (let k = 1; k < CLASSES; k++) if (z[k] > m) m = z[k];
  let s = 0;
  for (let k = 0; k < CLASSES; k++) s += z[k] = Math.exp(z[k] - m);
  for (let k = 0; k < CLASSES; k++) z[k] /= s;
  return m + Math.log(s);
}

function softmaxTrainer({ W, b }, data, batch, lr) {
  const { x, y, cols: d } = data;
  const g = new Float64Array(CLASSES);
  const nz = new Uint32Array(d);
  if (batch === 1) {
    return (perm, lo, hi) => {
      for (let t = lo; t < hi; t++) {
        const r = perm[t];
        const off = r * d;
        const n = softmaxLogits(W, b, x, off, d, g, nz);
        softmaxInPlace(g);
        g[y[r]] -= 1;
        for (let k = 0; k < CLASSES; k++) (g[k] *= lr), (b[k] -= g[k]);
        for (let i = 0; i < n; i++) {
          const j = nz[i];
          const xj = x[off + j];
          const w = j * CLASSES;
          for (let k = 0; k < CLASSES; k++) W[w + k] -= xj * g[k];
        }
      }
    };
  }
  const gW = new Float32Array(W.length);
  const gb = new Float32Array(CLASSES);
  return (perm, lo, hi) => {
    for (let t0 = lo; t0 < hi; t0 += batch) {
      const t1 = Math.min(hi, t0 + batch);
      gW.fill(0);
      gb.fill(0);
      for (let t = t0; t < t1; t++) {
        const r = perm[t];
        const off = r * d;
        const n = softmaxLogits(W, b, x, off, d, g, nz);
        softmaxInPlace(g);
        g[y[r]] -= 1;
        for (let k = 0; k < CLASSES; k++) gb[k] += g[k];
        for (let i = 0; i < n; i++) {
          const j = nz[i];
          const xj = x[off + j];
          const w = j * CLASSES;
          for (let k = 0; k < CLASSES; k++) gW[w + k] += xj * g[k];
        }
      }
      const step = lr / (t1 - t0);
      for (let i = 0; i < W.length; i++) W[i] -= step * gW[i];
      for (let k = 0; k < CLASSES; k++) b[k] -= step * gb[k];
    }
  };
}

function softmaxEval({ W, b }, test) {
  const { x, y, cols: d } = test;
  const z = new Float64Array(CLASSES);
  const nz = new Uint32Array(d);
  let right = 0;
  let loss = 0;
  for (let r = 0; r < test.rows; r++) {
    softmaxLogits(W, b, x, r * d, d, z, nz);
    right += argmax(z) === y[r] ? 1 : 0;
    const zy = z[y[r]];
    loss += softmaxInPlace(z) - zy;
  }
  return { accuracy: right / test.rows, loss: loss / test.rows };
}

function argmax(z) {
  let best = 0;
  for (let k = 1; k < z.length; k++) if (z[k] > z[best]) best = k;
  return best;
}

// ---------------------------------------------------------------- W2: MLP 784-128-10

/** h = relu(x·W1 + b1), z = h·W2 + b2; nonzero x_j indices to nz; returns their count. */
function mlpForward({ W1, b1, W2, b2 }, x, off, d, h, z, nz) {
  for (let i = 0; i < HIDDEN; i++) h[i] = b1[i];
  let n = 0;
  for (let j = 0; j < d; j++) {
    const xj = x[off + j];
    if (xj === 0) continue;
    nz[n++] = j;
    const w = j * HIDDEN;
    for (let i = 0; i < HIDDEN; i++) h[i] += xj * W1[w + i];
  }
  for (let i = 0; i < HIDDEN; i++) if (h[i] < 0) h[i] = 0;
  for (let k = 0; k < CLASSES; k++) z[k] = b2[k];
  for (let i = 0; i < HIDDEN; i++) {
    const hi = h[i];
    if (hi === 0) continue;
    const w = i * CLASSES;
    for (let k = 0; k < CLASSES; k++) z[k] += hi * W2[w + k];
  }
  return n;
}

/** gh = (W2 g) masked by relu'(h). */
function mlpBackHidden(W2, h, g, gh) {
  for (let i = 0; i < HIDDEN; i++) {
    if (h[i] === 0) {
      gh[i] = 0;
      continue;
    }
    const w = i * CLASSES;
    let s = 0;
    for (let k = 0; k < CLASSES; k++) s += W2[w + k] * g[k];
    gh[i] = s;
  }
}

function mlpTrainer(params, data, batch, lr) {
  const { W1, b1, W2, b2 } = params;
  const { x, y, cols: d } = data;
  const h = new Float64Array(HIDDEN);
  const gh = new Float64Array(HIDDEN);
  const g = new Float64Array(CLASSES);
  const nz = new Uint32Array(d);
  if (batch === 1) {
    return (perm, lo, hi) => {
      for (let t = lo; t < hi; t++) {
        const r = perm[t];
        const off = r * d;
        const n = mlpForward(params, x, off, d, h, g, nz);
        softmaxInPlace(g);
        g[y[r]] -= 1;
        mlpBackHidden(W2, h, g, gh); // before W2 changes
        for (let k = 0; k < CLASSES; k++) (g[k] *= lr), (b2[k] -= g[k]);
        for (let i = 0; i < HIDDEN; i++) {
          const hi = h[i];
          if (hi === 0) continue;
          const w = i * CLASSES;
          for (let k = 0; k < CLASSES; k++) W2[w + k] -= hi * g[k];
          gh[i] *= lr;
          b1[i] -= gh[i];
        }
        for (let q = 0; q < n; q++) {
          const j = nz[q];
          const xj = x[off + j];
          const w = j * HIDDEN;
          for (let i = 0; i < HIDDEN; i++) W1[w + i] -= xj * gh[i];
        }
      }
    };
  }
  const gW1 = new Float32Array(W1.length);
  const gb1 = new Float32Array(HIDDEN);
  const gW2 = new Float32Array(W2.length);
  const gb2 = new Float32Array(CLASSES);
  return (perm, lo, hi) => {
    for (let t0 = lo; t0 < hi; t0 += batch) {
      const t1 = Math.min(hi, t0 + batch);
      gW1.fill(0);
      gb1.fill(0);
      gW2.fill(0);
      gb2.fill(0);
      for (let t = t0; t < t1; t++) {
        const r = perm[t];
        const off = r * d;
        const n = mlpForward(params, x, off, d, h, g, nz);
        softmaxInPlace(g);
        g[y[r]] -= 1;
        mlpBackHidden(W2, h, g, gh);
        for (let k = 0; k < CLASSES; k++) gb2[k] += g[k];
        for (let i = 0; i < HIDDEN; i++) {
          const hi = h[i];
          if (hi === 0) continue;
          const w = i * CLASSES;
          for (let k = 0; k < CLASSES; k++) gW2[w + k] += hi * g[k];
          gb1[i] += gh[i];
        }
        for (let q = 0; q < n; q++) {
          const j = nz[q];
          const xj = x[off + j];
          const w = j * HIDDEN;
          for (let i = 0; i < HIDDEN; i++) gW1[w + i] += xj * gh[i];
        }
      }
      const step = lr / (t1 - t0);
      for (let i = 0; i < W1.length; i++) W1[i] -= step * gW1[i];
      for (let i = 0; i < HIDDEN; i++) b1[i] -= step * gb1[i];
      for (let i = 0; i < W2.length; i++) W2[i] -= step * gW2[i];
      for (let k = 0; k < CLASSES; k++) b2[k] -= step * gb2[k];
    }
  };
}

function mlpEval(params, test) {
  const { x, y, cols: d } = test;
  const h = new Float64Array(HIDDEN);
  const z = new Float64Array(CLASSES);
  const nz = new Uint32Array(d);
  let right = 0;
  let loss = 0;
  for (let r = 0; r < test.rows; r++) {
    mlpForward(params, x, r * d, d, h, z, nz);
    right += argmax(z) === y[r] ? 1 : 0;
    const zy = z[y[r]];
    loss += softmaxInPlace(z) - zy;
  }
  return { accuracy: right / test.rows, loss: loss / test.rows };
}

// ---------------------------------------------------------------- W3: sparse logistic regression

function margin(w, b0, start, index, value, r) {
  let z = b0;
  for (let q = start[r]; q < start[r + 1]; q++) z += w[index[q]] * value[q];
  return z;
}

function logisticTrainer({ w, b }, data, batch, lr) {
  const { start, index, value, y } = data;
  if (batch === 1) {
    return (perm, lo, hi) => {
      for (let t = lo; t < hi; t++) {
        const r = perm[t];
        const yr = y[r];
        // d/dz log(1 + exp(-y z)) = -y / (1 + exp(y z))
        const g = (lr * -yr) / (1 + Math.exp(yr * margin(w, b[0], start, index, value, r)));
        for (let q = start[r]; q < start[r + 1]; q++) w[index[q]] -= g * value[q];
        b[0] -= g;
      }
    };
  }
  // The batch's gradient is sparse: a private dense accumulator and the list of touched features.
  const gw = new Float32Array(w.length);
  const seen = new Uint8Array(w.length);
  const touched = new Uint32Array(w.length);
  return (perm, lo, hi) => {
    for (let t0 = lo; t0 < hi; t0 += batch) {
      const t1 = Math.min(hi, t0 + batch);
      let nt = 0;
      let gb = 0;
      for (let t = t0; t < t1; t++) {
        const r = perm[t];
        const yr = y[r];
        const g = -yr / (1 + Math.exp(yr * margin(w, b[0], start, index, value, r)));
        for (let q = start[r]; q < start[r + 1]; q++) {
          const j = index[q];
          if (seen[j] === 0) (seen[j] = 1), (touched[nt++] = j);
          gw[j] += g * value[q];
        }
        gb += g;
      }
      const step = lr / (t1 - t0);
      for (let i = 0; i < nt; i++) {
        const j = touched[i];
        w[j] -= step * gw[j];
        gw[j] = 0;
        seen[j] = 0;
      }
      b[0] -= step * gb;
    }
  };
}

function logisticEval({ w, b }, test) {
  const { start, index, value, y } = test;
  let right = 0;
  let loss = 0;
  for (let r = 0; r < test.rows; r++) {
    const yz = y[r] * margin(w, b[0], start, index, value, r);
    right += yz > 0 ? 1 : 0;
    loss += yz > 0 ? Math.log1p(Math.exp(-yz)) : -yz + Math.log1p(Math.exp(yz));
  }
  return { accuracy: right / test.rows, loss: loss / test.rows };
}

// ---------------------------------------------------------------- dispatch and output

function makeTrainer(workload, params, data, batch, lr) {
  if (workload === 'W1') return softmaxTrainer(params, data, batch, lr);
  if (workload === 'W2') return mlpTrainer(params, data, batch, lr);
  return logisticTrainer(params, data, batch, lr);
}

function evaluate(workload, params, test) {
  if (workload === 'W1') return softmaxEval(params, test);
  if (workload === 'W2') return mlpEval(params, test);
  return logisticEval(params, test);
}

/** The one JSON line a peer prints. */
function report(peer, o, trainRows, seconds, ev) {
  const samples = trainRows * o.epochs;
  const line = {
    peer,
    workload: o.workload,
    threads: o.threads,
    batch: o.batch,
    epochs: o.epochs,
    lr: o.lr,
    trainRows,
    samples,
    seconds: +seconds.toFixed(6),
    samplesPerSec: +(samples / seconds).toFixed(1),
    testAccuracy: +ev.accuracy.toFixed(6),
    testLoss: +ev.loss.toFixed(6),
  };
  process.stdout.write(JSON.stringify(line) + '\n');
}

module.exports = {
  parseArgs,
  fail,
  Rng,
  shuffle,
  shuffleSeed,
  identity,
  plainAlloc,
  sharedAlloc,
  loadData,
  createParams,
  makeTrainer,
  evaluate,
  report,
};
