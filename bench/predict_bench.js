#!/usr/bin/env node
'use strict';
// The predict throughput benchmark (issue 14): rows/s of the public
// predict(snapshot, model, rows, { threads }) and predictAsync, each beside
// its baselines in the same run:
//   - evaluate() on the same model and rows (the batched native path that
//     existed before predict: forward pass + loss + accuracy, one thread);
//   - a plain JavaScript loop computing the same outputs (probabilities and
//     classes, P(y=+1) and labels, ratings) from the snapshot's tensors
//     (snapshot.get('W') ...), as strong as plain JS gets: the flat typed
//     arrays read in place (row-major W: contiguous reads per input feature),
//     sums held in locals (10 classes at once; 8 hidden units at a time over
//     a row's listed nonzeros; the fastest of three mlp forms is picked per
//     run), zero inputs and zero ReLU outputs skipped, sparse rows over their
//     nonzeros only, interleaved sums, no allocation per row. It must give
//     predict's classes (a disagreement is allowed only on a tie) or the run
//     fails.
// Workloads: softmax and mlp (hidden [128]) on the Fashion-MNIST test set
// (10,000 rows x 784; a synthetic 'blobs' stand-in of that shape when the
// files are missing), logistic on 100,000 sparse RCV1-like rows (47,236
// features), mf on synthetic rating pairs. Each model is trained briefly
// with the native Trainer first (its accuracy is reported, not the point).
// Contenders: predict on the whole set (a Dataset) with 1 thread and with
// all cores, predictAsync (1 in flight), predict from the rows' plain JS form
// (a Float32Array, an array of { indices, values }, { users, items }: the
// conversion into a Dataset included), predict on small batches of that form
// (1 and 32 rows per call: the per-call overhead), evaluate, the JS loop.
// Timing: each contender is calibrated to >= --rep-ms per repetition, then
// --reps rounds run one repetition of every contender in rotating order;
// medians; ratios to the JS loop and to evaluate of the same run.
//
//   node bench/predict_bench.js [--quick] [--json FILE] [--reps N] [--rep-ms MS]
//                               [--workloads softmax,mlp,logistic,mf]
//
// --quick: a smoke run (smaller data, 1 repetition, short repetitions).
// Default output: bench/results/predict.json (rendered into bench/RESULTS.md
// by bench/report.js). Needs the addon and dist/ (npm run build).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const FASHION = '/usr/share/datasets/fashion-mnist';

// ------------------------------------------------------------------ options

function parseArgs(argv) {
  const o = { quick: false, json: path.join(__dirname, 'results', 'predict.json'), reps: 7, repMs: 200, workloads: ['softmax', 'mlp', 'logistic', 'mf'] };
  let repsSet = false, repMsSet = false;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--json') o.json = val();
    else if (a === '--reps') {
      o.reps = Math.max(1, Number(val()) | 0);
      repsSet = true;
    } else if (a === '--rep-ms') {
      o.repMs = Number(val());
      repMsSet = true;
    } else if (a === '--workloads') {
      o.workloads = val().split(',').filter(Boolean);
      for (const w of o.workloads) if (!['softmax', 'mlp', 'logistic', 'mf'].includes(w)) throw new Error(`unknown workload ${w}`);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 37).join('\n') + '\n');
      process.exit(0);
    } else throw new Error(`unknown option ${a} (try --help)`);
  }
  if (o.quick) {
    if (!repsSet) o.reps = 1;
    if (!repMsSet) o.repMs = 10;
  }
  return o;
}

const o = parseArgs(process.argv);
let gv;
try {
  gv = require(path.join(ROOT, 'dist'));
} catch (e) {
  console.error(`predict_bench: cannot load gradvault from ${ROOT}/dist (build it: npm run build): ${e.message}`);
  process.exit(2);
}
const { Trainer, evaluate, predict, predictAsync, loadIdx, synthetic, isa } = gv;

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const nowS = () => Number(process.hrtime.bigint()) / 1e9;
const CORES = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;

// Which addon was measured: the commit, uncommitted native/ changes, the addon's build time.
function sourceLine() {
  const parts = [];
  try {
    const { execFileSync } = require('node:child_process');
    const git = (...a) => execFileSync('git', ['-C', ROOT, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    parts.push(`commit ${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', 'native') ? ' with uncommitted changes in native/' : ''}`);
  } catch {
    /* not a git checkout */
  }
  try {
    parts.push(`addon build/Release/gradvault.node built ${fs.statSync(path.join(ROOT, 'build', 'Release', 'gradvault.node')).mtime.toISOString()}`);
  } catch {
    parts.push('addon from prebuilds/');
  }
  return parts.join(', ');
}

// ------------------------------------------------------------------ data as flat JS arrays (setup, untimed)

function denseMatrix(ds) {
  const F = ds.features;
  const X = new Float32Array(ds.rows * F);
  for (let i = 0; i < ds.rows; i++) X.set(ds.denseRow(i), i * F);
  return X;
}

function csr(ds) {
  const indptr = new Int32Array(ds.rows + 1);
  const indices = new Int32Array(ds.nnz);
  const values = new Float32Array(ds.nnz);
  const rows = new Array(ds.rows); // the same rows as { indices, values } objects: predict's array input
  let at = 0;
  for (let i = 0; i < ds.rows; i++) {
    const r = ds.sparseRow(i);
    rows[i] = r;
    indices.set(r.indices, at);
    values.set(r.values, at);
    at += r.indices.length;
    indptr[i + 1] = at;
  }
  return { indptr, indices, values, rows };
}

function pairs(ds) {
  const users = new Int32Array(ds.rows);
  const items = new Int32Array(ds.rows);
  for (let i = 0; i < ds.rows; i++) {
    const r = ds.row(i);
    users[i] = r.user;
    items[i] = r.item;
  }
  return { users, items };
}

// ------------------------------------------------------------------ the plain JS loops
// Outputs into preallocated arrays; accumulators are doubles (locals or a
// Float64Array reused across rows: no float32 rounding per step, as fast in V8).

// softmax of z[0..C) into probs[o..o+C) (float32), the argmax (first of equals, as predict) into classes[r].
function softmaxRow(z, C, probs, o, classes, r) {
  let best = 0;
  for (let c = 1; c < C; c++) if (z[c] > z[best]) best = c;
  const top = z[best];
  let sum = 0;
  for (let c = 0; c < C; c++) {
    const e = Math.exp(z[c] - top);
    z[c] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let c = 0; c < C; c++) probs[o + c] = z[c] * inv;
  classes[r] = best;
}

// softmax: z = b + x W, W [F, C] row-major: for each nonzero x[f], one
// contiguous row of W (C floats) added into the accumulators.
function jsSoftmax(X, N, F, W, b, C, probs, classes, z) {
  for (let r = 0, xo = 0; r < N; r++, xo += F) {
    for (let c = 0; c < C; c++) z[c] = b[c];
    for (let f = 0; f < F; f++) {
      const x = X[xo + f];
      if (x === 0) continue;
      for (let c = 0, wo = f * C; c < C; c++) z[c] += x * W[wo + c];
    }
    softmaxRow(z, C, probs, r * C, classes, r);
  }
}

// The same for C = 10 with the ten accumulators in registers (locals): the
// fastest form plain JS has for Fashion-MNIST's 10 classes.
function jsSoftmax10(X, N, F, W, b, probs, classes, z) {
  const b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3], b4 = b[4], b5 = b[5], b6 = b[6], b7 = b[7], b8 = b[8], b9 = b[9];
  for (let r = 0, xo = 0; r < N; r++, xo += F) {
    let z0 = b0, z1 = b1, z2 = b2, z3 = b3, z4 = b4, z5 = b5, z6 = b6, z7 = b7, z8 = b8, z9 = b9;
    for (let f = 0; f < F; f++) {
      const x = X[xo + f];
      if (x === 0) continue;
      const w = f * 10;
      z0 += x * W[w];
      z1 += x * W[w + 1];
      z2 += x * W[w + 2];
      z3 += x * W[w + 3];
      z4 += x * W[w + 4];
      z5 += x * W[w + 5];
      z6 += x * W[w + 6];
      z7 += x * W[w + 7];
      z8 += x * W[w + 8];
      z9 += x * W[w + 9];
    }
    z[0] = z0; z[1] = z1; z[2] = z2; z[3] = z3; z[4] = z4; z[5] = z5; z[6] = z6; z[7] = z7; z[8] = z8; z[9] = z9;
    softmaxRow(z, 10, probs, r * 10, classes, r);
  }
}

// mlp, one hidden layer: h = relu(b1 + x W1) (W1 [F, H]: a contiguous row
// per nonzero input), z = b2 + h W2 (a row of W2 per positive h), softmax.
function jsMlp(X, N, F, W1, b1, H, W2, b2, C, probs, classes, h, z) {
  for (let r = 0, xo = 0; r < N; r++, xo += F) {
    for (let j = 0; j < H; j++) h[j] = b1[j];
    for (let f = 0; f < F; f++) {
      const x = X[xo + f];
      if (x === 0) continue;
      for (let j = 0, wo = f * H; j < H; j++) h[j] += x * W1[wo + j];
    }
    for (let c = 0; c < C; c++) z[c] = b2[c];
    for (let j = 0; j < H; j++) {
      const a = h[j];
      if (a <= 0) continue; // ReLU
      for (let c = 0, wo = j * C; c < C; c++) z[c] += a * W2[wo + c];
    }
    softmaxRow(z, C, probs, r * C, classes, r);
  }
}

// The same with 4 rows at a time through the first layer: each row of W1
// (512 bytes) is loaded once for 4 inputs instead of once per input (W1 is
// 400 KB, beyond L1/L2 of many cores); a row of W1 is skipped when all 4
// inputs are 0 there. Rows past the last block of 4 go through jsMlp.
function jsMlp4(X, N, F, W1, b1, H, W2, b2, C, probs, classes, h4, z) {
  const N4 = N - (N % 4);
  for (let r = 0; r < N4; r += 4) {
    const xa = r * F, xb = xa + F, xc = xb + F, xd = xc + F;
    for (let j = 0; j < H; j++) {
      const v = b1[j];
      h4[j] = v;
      h4[H + j] = v;
      h4[2 * H + j] = v;
      h4[3 * H + j] = v;
    }
    for (let f = 0; f < F; f++) {
      const a = X[xa + f], b = X[xb + f], c = X[xc + f], d = X[xd + f];
      if (a === 0 && b === 0 && c === 0 && d === 0) continue;
      for (let j = 0, wo = f * H; j < H; j++) {
        const w = W1[wo + j];
        h4[j] += a * w;
        h4[H + j] += b * w;
        h4[2 * H + j] += c * w;
        h4[3 * H + j] += d * w;
      }
    }
    for (let q = 0; q < 4; q++) {
      for (let c = 0; c < C; c++) z[c] = b2[c];
      for (let j = 0, ho = q * H; j < H; j++) {
        const v = h4[ho + j];
        if (v <= 0) continue;
        for (let c = 0, wo = j * C; c < C; c++) z[c] += v * W2[wo + c];
      }
      softmaxRow(z, C, probs, (r + q) * C, classes, r + q);
    }
  }
  if (N4 < N) {
    jsMlp(X.subarray(N4 * F), N - N4, F, W1, b1, H, W2, b2, C, probs.subarray(N4 * C), classes.subarray(N4), h4, z);
  }
}

// The same with the first layer as register-held sums: the row's nonzeros
// listed once (offsets of their rows of W1, values), then 8 hidden units at a
// time summed in locals over that list (W1[f*H + j .. j+7]: no load or store
// of an accumulator array per multiply-add). H % 8 leftovers go one by one.
function jsMlpNz8(X, N, F, W1, b1, H, W2, b2, C, probs, classes, h, z, nzOff, nzVal) {
  const H8 = H - (H % 8);
  for (let r = 0, xo = 0; r < N; r++, xo += F) {
    let m = 0;
    for (let f = 0; f < F; f++) {
      const x = X[xo + f];
      if (x !== 0) {
        nzOff[m] = f * H;
        nzVal[m] = x;
        m++;
      }
    }
    for (let j = 0; j < H8; j += 8) {
      let a0 = b1[j], a1 = b1[j + 1], a2 = b1[j + 2], a3 = b1[j + 3], a4 = b1[j + 4], a5 = b1[j + 5], a6 = b1[j + 6], a7 = b1[j + 7];
      for (let k = 0; k < m; k++) {
        const o = nzOff[k] + j, x = nzVal[k];
        a0 += x * W1[o];
        a1 += x * W1[o + 1];
        a2 += x * W1[o + 2];
        a3 += x * W1[o + 3];
        a4 += x * W1[o + 4];
        a5 += x * W1[o + 5];
        a6 += x * W1[o + 6];
        a7 += x * W1[o + 7];
      }
      h[j] = a0; h[j + 1] = a1; h[j + 2] = a2; h[j + 3] = a3; h[j + 4] = a4; h[j + 5] = a5; h[j + 6] = a6; h[j + 7] = a7;
    }
    for (let j = H8; j < H; j++) {
      let a = b1[j];
      for (let k = 0; k < m; k++) a += nzVal[k] * W1[nzOff[k] + j];
      h[j] = a;
    }
    for (let c = 0; c < C; c++) z[c] = b2[c];
    for (let j = 0; j < H; j++) {
      const a = h[j];
      if (a <= 0) continue; // ReLU
      for (let c = 0, wo = j * C; c < C; c++) z[c] += a * W2[wo + c];
    }
    softmaxRow(z, C, probs, r * C, classes, r);
  }
}

// logistic on CSR rows: z = b + sum over the row's nonzeros of value * w[index],
// in four interleaved sums (the gathers from w overlap; ~20% over one sum).
function jsLogistic(indptr, indices, values, N, w, bias, probs, classes, labels) {
  for (let r = 0; r < N; r++) {
    let s0 = bias, s1 = 0, s2 = 0, s3 = 0;
    let k = indptr[r];
    const e = indptr[r + 1];
    for (; k + 3 < e; k += 4) {
      s0 += values[k] * w[indices[k]];
      s1 += values[k + 1] * w[indices[k + 1]];
      s2 += values[k + 2] * w[indices[k + 2]];
      s3 += values[k + 3] * w[indices[k + 3]];
    }
    for (; k < e; k++) s0 += values[k] * w[indices[k]];
    const s = s0 + s1 + (s2 + s3);
    probs[r] = 1 / (1 + Math.exp(-s));
    classes[r] = s > 0 ? 1 : 0;
    labels[r] = s > 0 ? 1 : -1;
  }
}

// mf: rating = U[u] . V[i] + bu[u] + bi[i], rank R, in two interleaved sums.
function jsMf(users, items, N, U, V, bu, bi, R, out) {
  for (let r = 0; r < N; r++) {
    const u = users[r], it = items[r];
    const uo = u * R, io = it * R;
    let s0 = bu[u] + bi[it], s1 = 0, k = 0;
    for (; k + 1 < R; k += 2) {
      s0 += U[uo + k] * V[io + k];
      s1 += U[uo + k + 1] * V[io + k + 1];
    }
    if (k < R) s0 += U[uo + k] * V[io + k];
    out[r] = s0 + s1;
  }
}

// ------------------------------------------------------------------ agreement checks (fail loudly)

// classes must agree; a row may differ only on a tie (the two classes'
// probabilities, in the JS answer, within tieTol of each other).
function checkClasses(what, ref, got, tie) {
  if (got.length !== ref.length) throw new Error(`${what}: ${got.length} classes, the JS loop has ${ref.length}`);
  let ties = 0;
  for (let i = 0; i < ref.length; i++) {
    if (ref[i] === got[i]) continue;
    if (!tie(i, ref[i], got[i])) throw new Error(`${what}: row ${i} is class ${got[i]}, the JS loop says ${ref[i]} (not a tie)`);
    ties++;
  }
  return ties;
}
function maxAbsDiff(a, b, n = a.length) {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
function checkValues(what, ref, got, tol, n = ref.length) {
  const d = maxAbsDiff(ref, got, n);
  if (!(d <= tol)) throw new Error(`${what}: values differ from the JS loop's by ${d} (> ${tol})`);
  return d;
}

// ------------------------------------------------------------------ timing

// Each contender: { name, kind, threads, batch, rowsPerUnit, run(k) (k units; may return a promise) }.
async function measure(contenders) {
  const target = o.repMs / 1000;
  const rep = async (c, k) => {
    const t0 = nowS();
    const p = c.run(k);
    if (p && typeof p.then === 'function') await p;
    return nowS() - t0;
  };
  for (const c of contenders) {
    let k = 1;
    for (let i = 0; i < 40; i++) {
      const s = await rep(c, k);
      if (s >= target) break;
      k = Math.ceil(k * Math.min(64, Math.max(2, s > 0 ? (target / s) * 1.2 : 16)));
    }
    c.k = k;
    c.secs = [];
  }
  // rounds: one repetition of every contender, in rotating order
  for (let round = 0; round < o.reps; round++)
    for (let j = 0; j < contenders.length; j++) {
      const c = contenders[(round + j) % contenders.length];
      c.secs.push(await rep(c, c.k));
    }
  return contenders.map((c) => {
    const med = median(c.secs);
    return {
      name: c.name, kind: c.kind, threads: c.threads, batch: c.batch, k: c.k, rowsPerRep: c.k * c.rowsPerUnit,
      secs: c.secs, medianSec: med, rowsPerSec: (c.k * c.rowsPerUnit) / med, usPerCall: c.batch ? (med / c.k) * 1e6 : undefined,
    };
  });
}

// The threads predict.cpp runs on for n rows when asked for t (its rule: at
// most one per 8192 rows and per block of 256): shown beside the request.
const threadsUsed = (n, t) => Math.max(1, Math.min(t || CORES, Math.ceil(n / 256), Math.max(1, Math.floor(n / 8192))));  // fallback when a result has no threads

// ------------------------------------------------------------------ workloads

async function fashion(quick) {
  const have = ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz', 'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'].every((f) =>
    fs.existsSync(path.join(FASHION, f)));
  if (!have) {
    const all = synthetic('blobs', { features: 784, classes: 10, rows: quick ? 4000 : 20000, seed: 14 });
    const [train, test] = all.split(0.5);
    return { name: 'synthetic blobs 784 x 10 classes (Fashion-MNIST missing)', fallback: true, train, test };
  }
  const test = await loadIdx(path.join(FASHION, 't10k-images-idx3-ubyte.gz'), path.join(FASHION, 't10k-labels-idx1-ubyte.gz'));
  // --quick trains on the test rows themselves (loading the 60,000 training rows takes longer than the rest)
  const train = quick ? test : await loadIdx(path.join(FASHION, 'train-images-idx3-ubyte.gz'), path.join(FASHION, 'train-labels-idx1-ubyte.gz'));
  return { name: 'Fashion-MNIST test set', fallback: false, train, test, trainName: quick ? 'the test set itself' : 'the 60,000-row training set' };
}

async function train(model, extra, data, lr, batchSize) {
  const t = new Trainer({ model, ...extra, mode: 'atomic', threads: CORES, epochs: 1, batchSize, seed: 1, initSeed: 1, optimizer: { kind: 'sgd', lr } });
  const t0 = nowS();
  const r = await t.fit(data);
  return { trainer: t, seconds: nowS() - t0, loss: r.loss ?? null, lr, batchSize, epochs: 1 };
}

function say(w, r) {
  const ratio = (v) => (v ? `x${v.toFixed(2)}`.padStart(8) : ' '.repeat(8));
  console.log(
    `  ${r.name.padEnd(44)} T=${String(r.threads ?? '-').padEnd(2)}${r.threadsUsed !== undefined && r.threadsUsed !== r.threads ? `(${r.threadsUsed})` : '   '} ` +
      `${r.rowsPerSec.toFixed(0).padStart(11)} rows/s${r.usPerCall !== undefined ? `${r.usPerCall.toFixed(1).padStart(9)} us/call` : ' '.repeat(17)} ` +
      `${ratio(r.vsJs)} vs JS ${ratio(r.vsEvaluate)} vs evaluate`,
  );
}

// Builds the contenders of one workload: predict, predictAsync, small batches, evaluate, the JS loop.
function contenders(w) {
  const { snap, spec, ds, N } = w;
  const list = [];
  const add = (c) => list.push(c);
  let sink = 0;
  add({ name: 'JS loop', kind: 'js', threads: 1, rowsPerUnit: N, run: (k) => { for (let i = 0; i < k; i++) w.js(); } });
  add({ name: 'evaluate', kind: 'evaluate', threads: 1, rowsPerUnit: N, run: (k) => { for (let i = 0; i < k; i++) sink += evaluate(snap, spec, ds).rows; } });
  for (const T of [...new Set([1, CORES])])
    add({ name: 'predict', kind: 'predict', threads: T, rowsPerUnit: N, run: (k) => { for (let i = 0; i < k; i++) sink += predict(snap, spec, ds, { threads: T }).rows; } });
  add({ name: 'predictAsync (1 in flight)', kind: 'predictAsync', threads: CORES, rowsPerUnit: N,
    run: async (k) => { for (let i = 0; i < k; i++) sink += (await predictAsync(snap, spec, ds, { threads: CORES })).rows; } });
  // the whole set as a plain JS input (converted into a Dataset on every call)
  add({ name: `predict, ${w.input.label} input`, kind: 'predict-array', threads: CORES, rowsPerUnit: N,
    run: (k) => { for (let i = 0; i < k; i++) sink += predict(snap, spec, w.input.value, { threads: CORES }).rows; } });
  for (const B of [1, 32]) {
    let at = 0;
    add({ name: `predict, ${B} row${B > 1 ? 's' : ''} per call`, kind: 'predict-small', threads: CORES, batch: B, rowsPerUnit: B,
      run: (k) => {
        for (let i = 0; i < k; i++) {
          if (at + B > N) at = 0;
          sink += predict(snap, spec, w.slice(at, B)).rows;
          at += B;
        }
      } });
  }
  return { list, sink: () => sink };
}

async function runWorkload(w) {
  console.log(`\n== ${w.name}: ${w.model} ==`);
  console.log(`  ${w.describe}`);
  const { list } = contenders(w);
  // agreement first (fails loudly), then timing
  w.js();
  w.checks = w.check();
  console.log(`  agreement with the JS loop: ${w.checks.text}`);
  const results = await measure(list);
  const js = results.find((r) => r.kind === 'js');
  const ev = results.find((r) => r.kind === 'evaluate');
  for (const r of results) {
    r.vsJs = r.kind === 'js' ? 1 : r.rowsPerSec / js.rowsPerSec;
    r.vsEvaluate = r.kind === 'evaluate' ? 1 : r.rowsPerSec / ev.rowsPerSec;
    // the threads predict ran on, as it reports them (one call of the contender's size)
    if (r.kind.startsWith('predict'))
      r.threadsUsed = w.snap && w.slice ? predict(w.snap, w.spec, r.batch ? w.slice(0, r.batch) : (w.input?.value ?? w.ds), { threads: r.threads }).threads : threadsUsed(r.batch || w.N, r.threads);
    say(w, r);
  }
  return results;
}

async function main() {
  const t0All = nowS();
  const cpus = os.cpus();
  const machine = {
    cpu: cpus.length ? cpus[0].model.trim() : 'unknown',
    cpus: CORES,
    isa: isa().active,
    isas: isa().supported.join(','),
    isaForced: process.env.GRADVAULT_ISA || null,
    node: process.version,
    uvThreadpool: Number(process.env.UV_THREADPOOL_SIZE || 4),
    date: new Date().toISOString(),
    loadStart: loadavg(),
    source: sourceLine(),
  };
  console.log(`machine: ${machine.cpu}, ${machine.cpus} logical CPUs, load ${machine.loadStart}`);
  console.log(`measured: ${machine.source}`);
  console.log(`isa: core kernels '${machine.isa}' (supported: ${machine.isas})${machine.isaForced ? ` forced by GRADVAULT_ISA` : ''}; node ${machine.node}` +
    `; ${o.reps} reps of >= ${o.repMs} ms${o.quick ? '; QUICK (smoke run, not for reporting)' : ''}`);

  const workloads = [];
  const stores = [];
  const want = new Set(o.workloads);

  // ---- 1, 2: softmax and mlp on Fashion-MNIST's test set
  if (want.has('softmax') || want.has('mlp')) {
    const fm = await fashion(o.quick);
    if (fm.fallback) console.log(`NOTE: ${FASHION} is missing: softmax and mlp run on ${fm.name}`);
    const ds = fm.test;
    const N = ds.rows, F = ds.features;
    const X = denseMatrix(ds);
    const zeros = X.reduce((a, v) => a + (v === 0 ? 1 : 0), 0) / X.length;
    const slice = (at, B) => X.subarray(at * F, (at + B) * F);
    for (const model of ['softmax', 'mlp'].filter((m) => want.has(m))) {
      const extra = model === 'mlp' ? { hidden: [128] } : {};
      const spec = { model, ...extra };
      const tr = await train(model, extra, fm.train, 0.1, 32);
      stores.push(tr.trainer.store);
      const snap = tr.trainer.store.snapshot();
      const ev = evaluate(snap, spec, ds);
      const C = ds.classes;
      const probs = new Float32Array(N * C), classes = new Int32Array(N);
      const z = new Float64Array(C);
      const w = {
        name: fm.name, model, data: fm.fallback ? 'blobs' : 'fashion-mnist-t10k', fallback: fm.fallback, N, features: F, classes: C, zeroShare: zeros,
        snap, spec, ds, slice, input: { label: 'Float32Array', value: X },
        train: { on: fm.fallback ? 'the other half of the blobs' : fm.trainName, rows: fm.train.rows, ...tr, trainer: undefined },
        accuracy: ev.accuracy, loss: ev.loss,
      };
      if (model === 'softmax') {
        const W = snap.get('W'), b = snap.get('b');
        // the stronger of the two JS forms (registers for 10 classes, else the generic loop)
        w.jsForm = C === 10 ? 'ten accumulators in locals' : 'generic';
        w.js = C === 10 ? () => jsSoftmax10(X, N, F, W, b, probs, classes, z) : () => jsSoftmax(X, N, F, W, b, C, probs, classes, z);
      } else {
        const W1 = snap.get('W1'), b1 = snap.get('b1'), W2 = snap.get('W2'), b2 = snap.get('b2');
        const H = b1.length;
        const h4 = new Float64Array(4 * H);
        // pick the faster JS form on this machine (a short timing, untimed in the results)
        const nzOff = new Int32Array(F), nzVal = new Float64Array(F);
        // three forms; the fastest on this machine is the baseline (a short timing, outside the results)
        const forms = [
          { name: 'one row at a time, accumulator array', f: () => jsMlp(X, N, F, W1, b1, H, W2, b2, C, probs, classes, h4, z) },
          { name: '4 rows per pass over W1', f: () => jsMlp4(X, N, F, W1, b1, H, W2, b2, C, probs, classes, h4, z) },
          { name: 'nonzeros listed, 8 hidden sums in locals', f: () => jsMlpNz8(X, N, F, W1, b1, H, W2, b2, C, probs, classes, h4, z, nzOff, nzVal) },
        ];
        const time = (f) => { const t = nowS(); f(); return nowS() - t; };
        for (const fm of forms) fm.f();
        for (const fm of forms) fm.secs = [];
        for (let i = 0; i < (o.quick ? 1 : 3); i++) for (const fm of forms) fm.secs.push(time(fm.f));
        for (const fm of forms) fm.sec = median(fm.secs);
        const best = forms.reduce((a, b) => (b.sec < a.sec ? b : a));
        w.jsForm = best.name;
        w.jsFormTimes = Object.fromEntries(forms.map((fm) => [fm.name, fm.sec]));
        w.js = best.f;
      }
      w.describe = `${N} rows x ${F} features (${(zeros * 100).toFixed(0)}% zeros), ${C} classes; trained 1 epoch on ${w.train.on} (batch 32, sgd lr 0.1, ${tr.seconds.toFixed(1)} s): test accuracy ${ev.accuracy.toFixed(4)}; JS form: ${w.jsForm}`;
      w.check = () => {
        const p = predict(snap, spec, ds, { threads: CORES });
        const tie = (i, a, b) => Math.abs(probs[i * C + a] - probs[i * C + b]) <= 1e-5;
        const ties = checkClasses(`${model} predict`, classes, p.classes, tie);
        const d = checkValues(`${model} predict probabilities`, probs, p.probabilities, 1e-4);
        const p1 = predict(snap, spec, ds, { threads: 1 });
        checkClasses(`${model} predict threads 1`, classes, p1.classes, tie);
        const pa = predict(snap, spec, X, { threads: CORES });
        checkClasses(`${model} predict Float32Array`, classes, pa.classes, tie);
        const n = Math.min(N, o.quick ? 256 : 2048);
        for (const B of [1, 32])
          for (let at = 0; at + B <= n; at += B) {
            const q = predict(snap, spec, slice(at, B));
            for (let i = 0; i < B; i++)
              if (q.classes[i] !== classes[at + i] && !tie(at + i, classes[at + i], q.classes[i]))
                throw new Error(`${model} predict of ${B} rows: row ${at + i} is class ${q.classes[i]}, the JS loop says ${classes[at + i]}`);
          }
        let ok = 0;
        const ids = ds.classIds;
        for (let i = 0; i < N; i++) ok += p.classes[i] === ids[i] ? 1 : 0;
        if (ok / N !== ev.accuracy) throw new Error(`${model}: predict's classes give accuracy ${ok / N}, evaluate ${ev.accuracy}`);
        return { ties, maxProbDiff: d, text: `classes equal on all ${N} rows${ties ? ` but ${ties} tie(s)` : ''} (also threads 1, Float32Array input, 1 and 32 rows per call on the first ${n}), max |probability difference| ${d.toExponential(1)}; predict's accuracy = evaluate's` };
      };
      workloads.push(w);
    }
  }

  // ---- 3: logistic on sparse rows
  if (want.has('logistic')) {
    const rows = o.quick ? 20000 : 100000;
    const ds = synthetic('sparse-logistic', { rows, features: 47236, seed: 14 });
    const N = ds.rows;
    const { indptr, indices, values, rows: rowObjs } = csr(ds);
    const tr = await train('logistic', {}, ds, 0.5, 1);
    stores.push(tr.trainer.store);
    const snap = tr.trainer.store.snapshot();
    const spec = { model: 'logistic' };
    const ev = evaluate(snap, spec, ds);
    const wv = snap.get('w'), bias = snap.get('b')[0];
    const probs = new Float32Array(N), classes = new Int32Array(N), labels = new Float32Array(N);
    const w = {
      name: `sparse-logistic ${N} rows`, model: 'logistic', data: 'synthetic sparse-logistic', N, features: ds.features, nnz: ds.nnz,
      snap, spec, ds, slice: (at, B) => rowObjs.slice(at, at + B), input: { label: 'array of { indices, values }', value: rowObjs },
      train: { on: 'the same rows', rows: N, ...tr, trainer: undefined }, accuracy: ev.accuracy, loss: ev.loss,
      js: () => jsLogistic(indptr, indices, values, N, wv, bias, probs, classes, labels), jsForm: 'CSR, nonzeros only, 4 interleaved sums',
    };
    w.describe = `${N} rows x ${ds.features} features, ${(ds.nnz / N).toFixed(1)} nonzeros per row; trained 1 epoch on the same rows (batch 1, sgd lr 0.5, ${tr.seconds.toFixed(1)} s): training accuracy ${ev.accuracy.toFixed(4)}; JS form: ${w.jsForm}`;
    w.check = () => {
      const tie = (i) => Math.abs(probs[i] - 0.5) <= 1e-6;
      const p = predict(snap, spec, ds, { threads: CORES });
      const ties = checkClasses('logistic predict', classes, p.classes, tie);
      checkClasses('logistic predict threads 1', classes, predict(snap, spec, ds, { threads: 1 }).classes, tie);
      checkClasses('logistic predict of an array of sparse rows', classes, predict(snap, spec, rowObjs, { threads: CORES }).classes, tie);
      const d = checkValues('logistic predict probabilities', probs, p.probabilities, 1e-5);
      const n = Math.min(N, o.quick ? 256 : 2048);
      for (const B of [1, 32])
        for (let at = 0; at + B <= n; at += B) {
          const q = predict(snap, spec, rowObjs.slice(at, at + B));
          for (let i = 0; i < B; i++)
            if (q.classes[i] !== classes[at + i] && !tie(at + i)) throw new Error(`logistic predict of ${B} rows: row ${at + i} differs from the JS loop`);
        }
      let ok = 0;
      const y = ds.labels;
      for (let i = 0; i < N; i++) ok += p.labels[i] === y[i] ? 1 : 0;
      if (ok / N !== ev.accuracy) throw new Error(`logistic: predict's labels give accuracy ${ok / N}, evaluate ${ev.accuracy}`);
      return { ties, maxProbDiff: d, text: `classes equal on all ${N} rows${ties ? ` but ${ties} tie(s)` : ''} (also threads 1, an array of sparse rows, 1 and 32 rows per call on the first ${n}), max |P difference| ${d.toExponential(1)}; predict's accuracy = evaluate's` };
    };
    workloads.push(w);
  }

  // ---- 4: mf on rating pairs
  if (want.has('mf')) {
    const rows = o.quick ? 50000 : 200000;
    const ds = synthetic('ratings', { rows, users: 2000, items: 3000, rank: 10, seed: 14 });
    const N = ds.rows;
    const { users, items } = pairs(ds);
    const R = 10;
    const tr = await train('mf', { rank: R }, ds, 0.05, 1);
    stores.push(tr.trainer.store);
    const snap = tr.trainer.store.snapshot();
    const spec = { model: 'mf', rank: R };
    const ev = evaluate(snap, spec, ds);
    const U = snap.get('U'), V = snap.get('V'), bu = snap.get('bu'), bi = snap.get('bi');
    const out = new Float32Array(N);
    const w = {
      name: `ratings ${N} pairs`, model: 'mf', data: 'synthetic ratings', N, users: ds.users, items: ds.items, rank: R,
      snap, spec, ds, slice: (at, B) => ({ users: users.subarray(at, at + B), items: items.subarray(at, at + B) }), input: { label: '{ users, items }', value: { users, items } },
      train: { on: 'the same pairs', rows: N, ...tr, trainer: undefined }, rmse: ev.rmse, loss: ev.loss,
      js: () => jsMf(users, items, N, U, V, bu, bi, R, out), jsForm: 'a rank-10 dot per pair, 2 interleaved sums',
    };
    w.describe = `${N} (user, item) pairs, ${ds.users} users x ${ds.items} items, rank ${R}; trained 1 epoch on the same pairs (batch 1, sgd lr 0.05, ${tr.seconds.toFixed(1)} s): training rmse ${ev.rmse.toFixed(4)}; JS form: ${w.jsForm}`;
    w.check = () => {
      const p = predict(snap, spec, ds, { threads: CORES });
      const d = checkValues('mf predict ratings', out, p.ratings, 1e-4);
      checkValues('mf predict threads 1', out, predict(snap, spec, ds, { threads: 1 }).ratings, 1e-4);
      const pp = predict(snap, spec, { users, items }, { threads: CORES });
      checkValues('mf predict { users, items }', out, pp.ratings, 1e-4);
      return { ties: 0, maxRatingDiff: d, text: `ratings within ${d.toExponential(1)} on all ${N} pairs (also threads 1, { users, items } input)` };
    };
    workloads.push(w);
  }

  const report = [];
  for (const w of workloads) {
    const results = await runWorkload(w);
    const { snap, spec, ds, input, slice, js, check, ...rest } = w;
    report.push({ ...rest, results });
  }
  for (const s of stores) s.close();

  const seconds = nowS() - t0All;
  machine.loadEnd = loadavg();
  console.log(`\ntotal: ${seconds.toFixed(1)} s; load average at start ${machine.loadStart}, at end ${machine.loadEnd}`);
  const outFile = path.resolve(o.json);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify({ bench: 'predict', machine, options: o, seconds, workloads: report }, null, 1) + '\n');
  console.log(`wrote ${o.json}`);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
