#!/usr/bin/env node
'use strict';
// Soak (issue 5, part 6): a mixed load on dist/ for N seconds, invariants
// checked throughout, a summary at the end.
//
//   node test/harness/soak.js [--seconds N] [--json FILE] [--seed S] [--workers W] [--round SECONDS]
//
// --seconds  how long (default 600)
// --json     also write the summary as JSON to FILE
// --seed     seed of the random choices (default 1)
// --workers  worker_threads pushing into the exact stores (default 2)
// --round    seconds per pushing round (default 15, shorter for short runs)
// --control  a run that must fail, to show the checks can: 'phantom' (the
//            main thread makes one push it does not count) or 'hogwild'
//            (store A in hogwild mode, which may lose updates under contention)
//
// The load, all at once:
//  - Exact stores A ('atomic'), B ('locked'), C ('versioned'): one tensor of
//    4096 floats, plain sgd, lr 1, zeros at the start. In rounds, W
//    worker_threads attach to all three and push (tight synchronous loops and
//    bursts of pushAsync) while the main thread pushAsyncs too. Contributor k
//    pushes g = s * (k + 1) * p with p[i] = i % 3 + 1 and a sign s that
//    alternates per push and store, so every value is a small integer (exact
//    in float32) and at every moment w = -p * sum_k (k + 1) * S_k. At the end
//    of each round (pushers stopped, pending pushes awaited) every element
//    must equal that sum exactly and the version must equal the applied
//    pushes: zero lost updates. Snapshots of B (one stripe, locked) and C
//    (one version) must be proportional to p at any time; so must every
//    checkpoint of A, B or C saved while they are pushed (a save is one point
//    in time); a checkpoint saved between rounds must load bit for bit.
//  - Trainer loop 1: Trainers (1-2 native threads) on store T (softmax,
//    blobs), its mode rotating (atomic, locked, versioned, deterministic;
//    a new T every 25 runs). A completed run must add exactly
//    epochs * rows / batchSize pushes; a quarter of the runs are aborted at a
//    random moment (AbortError, then the version must stop moving).
//  - Trainer loop 2: auto-store MLP Trainers (a store per run, closed after),
//    every fifth aborted.
//  - The main thread takes snapshots (every 25 ms) and checkpoints (every
//    1.5 s: T while it trains, A/B/C while pushed; saved, loaded, checked).
//  - Injected faults (every 40 ms, and in the workers): wrong shapes, NaN and
//    Infinity gradients (sync and pushAsync), unknown tensors, wrong array
//    types, pushes to closed stores, truncated and missing checkpoints. Each
//    must raise its typed error and change nothing (the exact checks see it).
//  - RSS sampled every 2 s and in the middle of every round (workers and
//    trainers running: like with like). From the first mid-round sample after
//    warm-up (10% of the run, 3-60 s) to the last it must not grow by more
//    than 64 MB, nor by 32 MB over the second half: the
//    working set is fixed (every buffer is under the addon's 1 MiB snapshot
//    pool threshold, so nothing is kept for reuse by design) and allocator
//    arenas settle within seconds (test/97: ~10-20 MB, then flat), while a
//    leak per push (millions of pushes), per snapshot, per trainer run or per
//    store (hundreds) would exceed the bound.
//
// Exit status 0 when every invariant held, 1 (with the first violation) on
// any failure, 2 on bad arguments. Runs against dist/ (npm run build:ts).
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { mulberry32: rng, parseOptions } = require('./common');
const {
  ParameterStore,
  Trainer,
  synthetic,
  AbortError,
  ClosedError,
  DataFormatError,
  FileError,
  InvalidArgumentError,
  NonFiniteGradientError,
  ShapeError,
} = require('../../dist');

const SIZE = 4096; // 16 KiB: one 64 KiB stripe, so a locked snapshot is one point in time
const pattern = (i) => (i % 3) + 1;

/** g = s * (k + 1) * p */
function gradient(k, s) {
  const g = new Float32Array(SIZE);
  for (let i = 0; i < SIZE; i++) g[i] = s * (k + 1) * pattern(i);
  return g;
}

class Violation extends Error {}
function check(cond, msg) {
  if (!cond) throw new Violation(msg);
}

/** Checks the typed error f throws (or the rejection of the promise it returns). */
async function expectError(f, cls, what) {
  let err;
  try {
    await f();
  } catch (e) {
    err = e;
  }
  check(err instanceof cls, `injected fault '${what}': expected ${cls.name}, got ${err && err.stack ? err.stack : err}`);
}

/** w[i] === w[0] * p[i] for all i: the values of one point in time. */
function proportional(w, what) {
  const c = w[0];
  for (let i = 1; i < w.length; i++)
    check(w[i] === c * pattern(i), `${what}: w[${i}] = ${w[i]} but w[0] = ${c}: not one point in time (expected w[i] = w[0] * (i % 3 + 1))`);
}

// ------------------------------------------------------------------ worker

async function worker() {
  const { k, handles, stop: stopBuf } = workerData;
  const stop = new Int32Array(stopBuf);
  const stores = handles.map((h) => ParameterStore.attach(h));
  const pos = { w: gradient(k, 1) };
  const neg = { w: gradient(k, -1) };
  const nan = gradient(k, 1);
  nan[SIZE - 7] = NaN;
  const S = stores.map(() => 0);
  const applied = stores.map(() => 0);
  const sign = stores.map(() => 1);
  let sync = 0;
  let async_ = 0;
  let faults = 0;
  const nextSign = (j) => (sign[j] = -sign[j]);
  for (let iter = 0; !Atomics.load(stop, 0); iter++) {
    for (let n = 0; n < 96; n++) {
      const j = n % stores.length;
      const s = nextSign(j);
      const r = stores[j].push(s > 0 ? pos : neg);
      if (!r.applied) throw new Error(`worker ${k}: push not applied (${r.reason})`);
      S[j] += s;
      applied[j]++;
      sync++;
    }
    const pending = [];
    for (let n = 0; n < 24; n++) {
      const j = n % stores.length;
      const s = nextSign(j);
      pending.push(
        stores[j].pushAsync(s > 0 ? pos : neg).then((r) => {
          if (!r.applied) throw new Error(`worker ${k}: pushAsync not applied (${r.reason})`);
          S[j] += s;
          applied[j]++;
          async_++;
        }),
      );
    }
    await Promise.all(pending);
    if (iter % 40 === 0) {
      const j = iter % stores.length;
      let err;
      try {
        stores[j].push({ w: nan });
      } catch (e) {
        err = e;
      }
      if (!(err instanceof NonFiniteGradientError)) throw new Error(`worker ${k}: NaN push gave ${err}`);
      try {
        await stores[j].pushAsync({ w: new Float32Array(SIZE - 1) });
        err = null;
      } catch (e) {
        err = e;
      }
      if (!(err instanceof ShapeError)) throw new Error(`worker ${k}: short pushAsync gave ${err}`);
      faults += 2;
    }
  }
  for (const s of stores) s.close();
  parentPort.postMessage({ k, S, applied, sync, async: async_, faults });
}

// ------------------------------------------------------------------ main

function parseArgs(argv) {
  const o = parseOptions(
    argv,
    {
      seconds: { type: 'number', min: 1, default: 600 },
      json: { type: 'string', default: null },
      seed: { type: 'int', min: 0, default: 1 },
      workers: { type: 'int', min: 1, default: 2 },
      round: { type: 'number', min: 1, default: null },
      control: { type: 'string', default: null },
    },
    usage,
  );
  if (o.help) usage(null);
  if (o.control !== null && !['phantom', 'hogwild'].includes(o.control)) usage(`--control takes 'phantom' or 'hogwild', got '${o.control}'`);
  if (o.round === null) o.round = Math.max(2, Math.min(15, o.seconds / 4));
  return o;
}

function usage(msg) {
  if (msg) console.error(`soak: ${msg}`);
  console.error('usage: node test/harness/soak.js [--seconds N] [--json FILE] [--seed S] [--workers W] [--round SECONDS] [--control phantom|hogwild]');
  process.exit(msg ? 2 : 0);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MB = 2 ** 20;

/** p, or a Violation after ms (the timer does not outlive p). */
function within(p, ms, msg) {
  let timer;
  const t = new Promise((_, reject) => (timer = setTimeout(() => reject(new Violation(msg)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function main() {
  const opt = parseArgs(process.argv.slice(2));
  const rand = rng(opt.seed);
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  const deadline = opt.seconds;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-soak-'));
  const sum = {
    seconds: 0,
    rounds: 0,
    pushes: { workerSync: 0, workerAsync: 0, mainAsync: 0, trainer: 0, exactTotal: 0 },
    snapshots: 0,
    checkpoints: { saved: 0, loaded: 0, whileTraining: 0, whilePushing: 0, quiescent: 0 },
    trainerRuns: { completed: 0, aborted: 0, autoCompleted: 0, autoAborted: 0, stores: 0 },
    faults: {},
    rss: { warmupSeconds: 0, samples: 0, startMB: 0, maxMB: 0, endMB: 0, growthMB: 0, lateGrowthMB: 0, afterCloseMB: 0 },
    options: opt,
  };
  const fault = (kind) => (sum.faults[kind] = (sum.faults[kind] || 0) + 1);
  let failure = null;
  let stopping = false;
  const fail = (e) => {
    if (!failure) failure = e;
    stopping = true;
  };
  // A task that must not throw: a throw is a failure of the whole soak.
  const task = (name, f) =>
    f().catch((e) => fail(e instanceof Violation ? e : new Violation(`${name}: unexpected error: ${e && e.stack ? e.stack : e}`)));

  // ---- RSS sampling
  const warmup = Math.max(3, Math.min(60, deadline * 0.1));
  sum.rss.warmupSeconds = warmup;
  const rssSamples = []; // every 2 s
  const roundRss = []; // mid-round
  const rssTimer = setInterval(() => rssSamples.push([elapsed(), process.memoryUsage().rss]), 2000);

  // ---- exact stores
  const modes = [opt.control === 'hogwild' ? 'hogwild' : 'atomic', 'locked', 'versioned'];
  const exact = modes.map((mode) => new ParameterStore({ mode, optimizer: { kind: 'sgd', lr: 1 }, tensors: { w: { shape: [SIZE] } } }));
  const contributors = opt.workers + 1; // workers 0..W-1, the main thread W
  const S = exact.map(() => new Array(contributors).fill(0)); // S[store][k]
  const applied = exact.map(() => 0);
  let pushersRunning = false;

  const expected = (j) => {
    let c = 0;
    for (let k = 0; k < contributors; k++) c += (k + 1) * S[j][k];
    return c; // w[i] = -c * p[i]
  };
  async function verifyExact(label) {
    for (let j = 0; j < exact.length; j++) {
      const st = exact[j];
      const v = st.version;
      check(v === applied[j], `${label}: ${modes[j]} store version ${v} != ${applied[j]} applied pushes (lost or phantom updates)`);
      check(st.stats().pushes === v, `${label}: ${modes[j]} stats().pushes ${st.stats().pushes} != version ${v}`);
      const snap = st.snapshot();
      const w = snap.get('w');
      const c = expected(j);
      for (let i = 0; i < SIZE; i++)
        check(w[i] === -c * pattern(i), `${label}: ${modes[j]} w[${i}] = ${w[i]}, expected ${-c * pattern(i)}: a lost update (version ${v})`);
      // a checkpoint of a quiet store loads bit for bit
      const file = path.join(dir, `exact-${modes[j]}.safetensors`);
      const saved = await st.save(file);
      check(saved.version === v, `${label}: ${modes[j]} saved version ${saved.version} != ${v}`);
      const back = await ParameterStore.load(file);
      check(back.version === v && back.mode === modes[j], `${label}: ${modes[j]} loaded version ${back.version} / mode ${back.mode}`);
      const bw = back.snapshot().get('w');
      for (let i = 0; i < SIZE; i++) check(Object.is(bw[i], w[i]), `${label}: ${modes[j]} loaded w[${i}] = ${bw[i]}, saved ${w[i]}`);
      back.close();
      snap.release();
      sum.checkpoints.saved++;
      sum.checkpoints.loaded++;
      sum.checkpoints.quiescent++;
    }
  }

  // main-thread pusher: contributor W, pushAsync in small bursts
  const mainK = opt.workers;
  const mainPos = { w: gradient(mainK, 1) };
  const mainNeg = { w: gradient(mainK, -1) };
  const mainSign = exact.map(() => 1);
  async function mainPusher() {
    while (pushersRunning && !stopping) {
      const burst = [];
      for (let n = 0; n < 6; n++) {
        const j = n % exact.length;
        const s = (mainSign[j] = -mainSign[j]);
        burst.push(
          exact[j].pushAsync(s > 0 ? mainPos : mainNeg).then((r) => {
            check(r.applied, `main pushAsync not applied: ${r.reason}`);
            S[j][mainK] += s;
            applied[j]++;
            sum.pushes.mainAsync++;
          }),
        );
      }
      await Promise.all(burst);
      await new Promise((r) => setImmediate(r));
    }
  }

  let activeWorkers = [];
  async function round(seconds) {
    const stopBuf = new SharedArrayBuffer(4);
    const stop = new Int32Array(stopBuf);
    const handles = exact.map((s) => s.share());
    const results = [];
    activeWorkers = [];
    const done = [];
    for (let k = 0; k < opt.workers; k++) {
      const w = new Worker(__filename, { workerData: { k, handles, stop: stopBuf } });
      activeWorkers.push({ w, stop });
      done.push(
        new Promise((resolve, reject) => {
          let msg = null;
          w.on('message', (m) => (msg = m));
          w.on('error', (e) => reject(new Violation(`worker ${k}: ${e && e.stack ? e.stack : e}`)));
          w.on('exit', (code) => (code === 0 && msg ? resolve(msg) : reject(new Violation(`worker ${k} exited with ${code} ${msg ? '' : 'without its counts'}`))));
        }),
      );
    }
    // a worker that fails ends the round at once (and the soak)
    const all = Promise.all(done);
    all.catch(fail);
    pushersRunning = true;
    if (opt.control === 'phantom' && sum.rounds === 1) exact[0].push({ w: gradient(mainK, 1) }); // not counted: must be caught
    const mp = task('main pusher', mainPusher);
    const end = performance.now() + seconds * 1000;
    const mid = performance.now() + (seconds * 1000) / 2;
    let sampled = false;
    while (performance.now() < end && !stopping) {
      await sleep(50);
      if (!sampled && performance.now() >= mid) {
        sampled = true;
        roundRss.push([elapsed(), process.memoryUsage().rss]);
      }
    }
    Atomics.store(stop, 0, 1);
    pushersRunning = false;
    try {
      results.push(...(await within(all, 30_000, 'round end: a worker did not stop within 30 s (hang)')));
    } finally {
      activeWorkers = [];
    }
    await mp;
    if (stopping) return;
    for (const r of results) {
      for (let j = 0; j < exact.length; j++) {
        S[j][r.k] += r.S[j];
        applied[j] += r.applied[j];
      }
      sum.pushes.workerSync += r.sync;
      sum.pushes.workerAsync += r.async;
      for (let n = 0; n < r.faults; n++) fault('worker NaN / short gradient');
    }
    sum.rounds++;
    await verifyExact(`round ${sum.rounds} (${elapsed().toFixed(0)} s)`);
  }

  // ---- trainer loop 1: store T, modes rotating
  const tModes = ['atomic', 'locked', 'versioned', 'deterministic'];
  const tData = synthetic('blobs', { rows: 4000, features: 16, classes: 4, seed: opt.seed });
  let T = null;
  let tIndex = 0;
  const newT = () => {
    const mode = tModes[tIndex++ % tModes.length];
    sum.trainerRuns.stores++;
    return new ParameterStore({ mode, optimizer: { kind: 'sgd', lr: 0.1 }, tensors: { W: { shape: [16, 4] }, b: { shape: [4] } }, seed: tIndex });
  };
  async function trainerLoop1() {
    T = newT();
    for (let run = 1; !stopping && elapsed() < deadline; run++) {
      if (run % 25 === 0) {
        const old = T;
        T = newT();
        old.close();
      }
      const threads = 1 + Math.floor(rand() * 2);
      const epochs = 1 + Math.floor(rand() * 3);
      const batchSize = [1, 2, 4, 8][Math.floor(rand() * 4)];
      const abort = rand() < 0.25;
      const ac = new AbortController();
      const store = T;
      const v0 = store.version;
      const p = new Trainer(store, { model: 'softmax', threads, epochs, batchSize }).fit(tData, { signal: ac.signal });
      if (abort) setTimeout(() => ac.abort(), Math.floor(rand() * 20));
      let res = null;
      try {
        res = await p;
      } catch (e) {
        check(abort && e instanceof AbortError, `trainer run ${run}: ${e && e.stack ? e.stack : e}`);
        check(!e.result || e.result.reason === 'aborted', `trainer run ${run}: AbortError.result ${JSON.stringify(e.result)}`);
        sum.trainerRuns.aborted++;
        fault('trainer abort');
      }
      const v1 = store.version;
      const want = (epochs * tData.rows) / batchSize;
      if (res) {
        check(res.reason === 'completed' && res.epochs === epochs && Number.isFinite(res.loss), `trainer run ${run}: ${JSON.stringify(res)}`);
        check(v1 - v0 === want, `trainer run ${run} (${store.mode}, ${threads} threads, bs ${batchSize}, ${epochs} epochs): ${v1 - v0} pushes, expected ${want}`);
        sum.trainerRuns.completed++;
      } else check(v1 - v0 <= want, `aborted run ${run}: ${v1 - v0} pushes > ${want}`);
      sum.pushes.trainer += v1 - v0;
      // settled means stopped
      await new Promise((r) => setImmediate(r));
      check(store.version === v1, `trainer run ${run}: version moved from ${v1} to ${store.version} after the run settled`);
      if (run % 10 === 0) {
        // quiet point: a checkpoint of T loads bit for bit
        const s = store.snapshot();
        const file = path.join(dir, 'T-quiet.safetensors');
        const saved = await store.save(file);
        const back = await ParameterStore.load(file);
        check(saved.version === s.version && back.version === s.version, `T quiet checkpoint: versions ${s.version} / ${saved.version} / ${back.version}`);
        const bs = back.snapshot();
        for (const name of ['W', 'b']) {
          const a = s.get(name);
          const b = bs.get(name);
          for (let i = 0; i < a.length; i++) check(Object.is(a[i], b[i]), `T quiet checkpoint: ${name}[${i}] ${b[i]} != ${a[i]}`);
        }
        back.close();
        sum.checkpoints.saved++;
        sum.checkpoints.loaded++;
        sum.checkpoints.quiescent++;
      }
    }
  }

  // ---- trainer loop 2: auto-store MLP trainers
  const mData = synthetic('blobs', { rows: 1500, features: 16, classes: 4, seed: opt.seed + 1 });
  async function trainerLoop2() {
    for (let run = 1; !stopping && elapsed() < deadline; run++) {
      const t = new Trainer({ model: 'mlp', hidden: [16], threads: 1, epochs: 2, batchSize: 8, optimizer: { kind: 'adam', lr: 0.01 }, initSeed: run });
      const ac = new AbortController();
      const abort = run % 5 === 0;
      const p = t.fit(mData, { signal: ac.signal });
      if (abort) setTimeout(() => ac.abort(), Math.floor(rand() * 10));
      try {
        const r = await p;
        check(r.reason === 'completed' && Number.isFinite(r.loss), `mlp run ${run}: ${JSON.stringify(r)}`);
        sum.trainerRuns.autoCompleted++;
      } catch (e) {
        check(abort && e instanceof AbortError, `mlp run ${run}: ${e && e.stack ? e.stack : e}`);
        sum.trainerRuns.autoAborted++;
        fault('trainer abort');
      }
      const v = t.store.version;
      for (const x of t.store.snapshot().get('W1')) check(Number.isFinite(x), `mlp run ${run}: W1 not finite`);
      sum.pushes.trainer += v;
      t.store.close();
      await sleep(5);
    }
  }

  // ---- snapshots
  const lastVersion = new Map();
  async function snapshots() {
    for (let n = 0; !stopping && elapsed() < deadline; n++) {
      await sleep(25);
      const which = n % 4;
      const store = which < 3 ? exact[which] : T;
      if (!store || store.closed) continue;
      const s = store.snapshot();
      const prev = lastVersion.get(store) ?? 0;
      check(s.version >= prev, `snapshot versions went back: ${prev} -> ${s.version} (${store.mode})`);
      lastVersion.set(store, s.version);
      if (which === 1 || which === 2) proportional(s.get('w'), `snapshot of the ${modes[which]} store at version ${s.version}`);
      if (which === 3) for (const x of s.get('W')) check(Number.isFinite(x), 'T snapshot not finite');
      if (n % 2) s.release();
      sum.snapshots++;
    }
  }

  // ---- checkpoints while training / pushing
  async function checkpoints() {
    for (let n = 0; !stopping && elapsed() < deadline; n++) {
      await sleep(1500);
      const training = n % 2 === 0;
      const store = training ? T : exact[(n >> 1) % exact.length];
      if (!store || store.closed) continue;
      const file = path.join(dir, `live-${n % 3}.safetensors`);
      const before = store.version;
      const saved = await store.save(file);
      check(saved.version >= before, `checkpoint version ${saved.version} < version ${before} before the save`);
      sum.checkpoints.saved++;
      const back = await ParameterStore.load(file, n % 4 === 1 ? { mode: 'atomic' } : {});
      check(back.version === saved.version, `loaded version ${back.version} != saved ${saved.version}`);
      const snap = back.snapshot();
      if (training) {
        for (const name of ['W', 'b']) for (const x of snap.get(name)) check(Number.isFinite(x), 'a checkpoint of T holds a non-finite value');
        sum.checkpoints.whileTraining++;
      } else {
        proportional(snap.get('w'), `checkpoint of the ${store.mode} store saved while pushed (version ${saved.version})`);
        if (pushersRunning) sum.checkpoints.whilePushing++;
      }
      back.close();
      sum.checkpoints.loaded++;
    }
  }

  // ---- injected faults
  async function faults() {
    const truncated = path.join(dir, 'truncated.safetensors');
    for (let n = 0; !stopping && elapsed() < deadline; n++) {
      await sleep(40);
      const store = n % 2 ? exact[n % exact.length] : T;
      if (!store || store.closed) continue;
      const name = store.tensors[0].name;
      const size = store.tensors[0].size;
      switch (n % 9) {
        case 0: {
          const g = new Float32Array(size);
          g[size >> 1] = NaN;
          await expectError(() => store.push({ [name]: g }), NonFiniteGradientError, 'NaN push');
          fault('NaN push');
          break;
        }
        case 1: {
          const g = new Float32Array(size);
          g[0] = -Infinity;
          await expectError(() => store.pushAsync({ [name]: g }), NonFiniteGradientError, 'Infinity pushAsync');
          fault('Infinity pushAsync');
          break;
        }
        case 2:
          await expectError(() => store.push({ [name]: new Float32Array(size + 3) }), ShapeError, 'wrong shape');
          fault('wrong shape');
          break;
        case 3:
          await expectError(() => store.pushAsync({ nope: new Float32Array(4) }), InvalidArgumentError, 'unknown tensor');
          fault('unknown tensor');
          break;
        case 4:
          await expectError(() => store.push({ [name]: new Float64Array(size) }), InvalidArgumentError, 'Float64Array');
          fault('wrong array type');
          break;
        case 5: {
          const s = new ParameterStore({ tensors: { w: { shape: [8] } } });
          s.close();
          await expectError(() => s.pushAsync({ w: new Float32Array(8) }), ClosedError, 'closed store');
          await expectError(() => s.snapshot(), ClosedError, 'closed store');
          fault('use after close');
          break;
        }
        case 6: {
          await store.save(truncated);
          const bytes = fs.readFileSync(truncated);
          const cut = 1 + Math.floor(rand() * (bytes.length - 2));
          fs.writeFileSync(truncated, bytes.subarray(0, cut));
          await expectError(() => ParameterStore.load(truncated), DataFormatError, `checkpoint truncated at ${cut} of ${bytes.length}`);
          fault('truncated checkpoint');
          break;
        }
        case 7:
          await expectError(() => ParameterStore.load(path.join(dir, 'missing.safetensors')), FileError, 'missing checkpoint');
          fault('missing checkpoint');
          break;
        case 8:
          // a trainer on a store without the model's tensors
          await expectError(() => new Trainer(exact[0], { model: 'softmax', threads: 1 }).fit(tData), ShapeError, 'trainer on a store without W, b');
          fault('trainer on the wrong store');
          break;
      }
    }
  }

  // ---- run everything
  const background = [task('trainer loop 1', trainerLoop1), task('trainer loop 2', trainerLoop2), task('snapshots', snapshots), task('checkpoints', checkpoints), task('faults', faults)];
  const progress = setInterval(() => {
    const r = rssSamples.length ? rssSamples[rssSamples.length - 1][1] / MB : 0;
    console.log(
      `soak ${elapsed().toFixed(0)}/${deadline} s: rounds ${sum.rounds}, exact pushes ${applied.reduce((a, b) => a + b, 0)}, trainer runs ${sum.trainerRuns.completed + sum.trainerRuns.aborted}+${sum.trainerRuns.autoCompleted + sum.trainerRuns.autoAborted}, snapshots ${sum.snapshots}, checkpoints ${sum.checkpoints.saved}, rss ${r.toFixed(0)} MB`,
    );
  }, Math.max(5000, Math.min(60_000, deadline * 100)));
  try {
    while (!stopping && elapsed() < deadline - 0.5) {
      try {
        await round(Math.min(opt.round, Math.max(0.5, deadline - elapsed() - 0.5)));
      } catch (e) {
        fail(e instanceof Violation ? e : new Violation(`round: ${e && e.stack ? e.stack : e}`));
      }
    }
    stopping = true;
    await within(Promise.all(background), 60_000, 'a background task did not finish within 60 s of the end (hang)').catch(fail);
  } finally {
    clearInterval(progress);
    clearInterval(rssTimer);
  }
  for (const { w, stop } of activeWorkers) {
    Atomics.store(stop, 0, 1);
    await within(new Promise((r) => w.once('exit', r)), 10_000, 'a worker did not exit').catch(() => undefined);
  }

  if (!failure) {
    try {
      // a last exact check and the totals
      await verifyExact('end');
      sum.pushes.exactTotal = applied.reduce((a, b) => a + b, 0);
      for (const s of exact) s.close();
      if (T) T.close();
      check(exact.every((s) => s.closed), 'closed');
    } catch (e) {
      fail(e);
    }
  }
  // RSS growth compares like with like: samples taken in the middle of each
  // pushing round (workers alive, trainers running), the first after warm-up
  // against the last; the closing of the long-lived stores cannot hide a leak
  // tied to them. max is over every 2 s sample; the RSS once everything is
  // closed is reported too.
  await sleep(200);
  sum.rss.afterCloseMB = process.memoryUsage().rss / MB;
  sum.seconds = Math.round(elapsed() * 10) / 10;
  sum.rss.samples = rssSamples.length;
  const loaded = roundRss.filter(([t]) => t >= warmup);
  const first = loaded[0] || roundRss[roundRss.length - 1] || rssSamples[rssSamples.length - 1];
  const last = roundRss[roundRss.length - 1] || first;
  sum.rss.startMB = first[1] / MB;
  sum.rss.endMB = last[1] / MB;
  sum.rss.maxMB = Math.max(...rssSamples.map(([, r]) => r / MB), sum.rss.endMB);
  sum.rss.growthMB = sum.rss.endMB - sum.rss.startMB;
  const half = loaded.find(([t]) => t >= last[0] / 2) || first;
  sum.rss.lateGrowthMB = sum.rss.endMB - half[1] / MB;
  sum.rss.midRound = roundRss.map(([t, r]) => [Math.round(t), Math.round((r / MB) * 10) / 10]);
  for (const k of ['startMB', 'maxMB', 'endMB', 'growthMB', 'lateGrowthMB', 'afterCloseMB']) sum.rss[k] = Math.round(sum.rss[k] * 10) / 10;
  if (!failure) {
    try {
      check(sum.rss.growthMB < 64, `RSS grew ${sum.rss.growthMB} MB after warm-up (bound 64 MB)`);
      check(sum.rss.lateGrowthMB < 32, `RSS grew ${sum.rss.lateGrowthMB} MB over the second half (bound 32 MB)`);
      check(sum.rounds > 0 && sum.pushes.exactTotal > 0 && sum.snapshots > 0, 'the soak did some work');
    } catch (e) {
      fail(e);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  sum.ok = !failure;
  if (failure) sum.failure = String(failure.message);
  const totalFaults = Object.values(sum.faults).reduce((a, b) => a + b, 0);
  console.log(
    [
      `soak ${sum.ok ? 'passed' : 'FAILED'}: ${sum.seconds} s, ${sum.rounds} rounds, ${opt.workers} workers`,
      `  pushes: ${sum.pushes.exactTotal} exact (workers ${sum.pushes.workerSync} sync + ${sum.pushes.workerAsync} async, main ${sum.pushes.mainAsync} async; none lost), trainer ${sum.pushes.trainer}`,
      `  snapshots ${sum.snapshots}; checkpoints ${sum.checkpoints.saved} saved / ${sum.checkpoints.loaded} loaded (${sum.checkpoints.whileTraining} while training, ${sum.checkpoints.whilePushing} while pushed, ${sum.checkpoints.quiescent} quiet, bit-exact)`,
      `  trainer runs: ${sum.trainerRuns.completed} completed + ${sum.trainerRuns.aborted} aborted on ${sum.trainerRuns.stores} stores; auto mlp ${sum.trainerRuns.autoCompleted} completed + ${sum.trainerRuns.autoAborted} aborted`,
      `  injected faults ${totalFaults}: ${Object.entries(sum.faults).map(([k, v]) => `${k} ${v}`).join(', ')}`,
      `  rss (MB, mid-round samples): start ${sum.rss.startMB} (first after ${sum.rss.warmupSeconds} s warm-up), end ${sum.rss.endMB}, growth ${sum.rss.growthMB} (second half ${sum.rss.lateGrowthMB}); max ${sum.rss.maxMB} (${sum.rss.samples} samples every 2 s); ${sum.rss.afterCloseMB} once all closed`,
    ].join('\n'),
  );
  if (opt.json) fs.writeFileSync(opt.json, JSON.stringify(sum, null, 2) + '\n');
  if (failure) {
    console.error(`soak FAILED: ${failure.message}`);
    process.exitCode = 1;
  }
  finished = true;
}

let finished = false;
if (!isMainThread) {
  worker().catch((e) => {
    // the main thread sees the missing counts; the error goes to stderr
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  });
} else {
  process.on('exit', (code) => {
    if (!finished && code === 0) {
      console.error('soak FAILED: the event loop emptied before the soak finished (a promise never settled)');
      process.exitCode = 1;
    }
  });
  main().catch((e) => {
    console.error(`soak FAILED: ${e && e.stack ? e.stack : e}`);
    process.exitCode = 1;
    finished = true;
  });
}
