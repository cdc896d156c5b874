#!/usr/bin/env node
'use strict';
// The public JS API under load, each contender beside its baselines in the
// same run (medians; ratios to the baselines).
//
//   1 thread (the `benchmark` package): store.push (sync), store.snapshot(),
//   store.pushAsync (1 and 4 in flight) per mode and size, beside a plain JS
//   Float32Array loop doing the same math (p[i] -= lr*g[i]) and a plain copy
//   (new Float32Array(p), dst.set(p)); the per-call floor (a trivial native
//   call) at 1K; from 1 MiB on also the snapshot with an event-loop turn
//   before each (the binding's buffer pool refills only then). Work is batched per benchmarked call where one operation is
//   short (benchmark.js is imprecise below ~100 ns).
//
//   2 threads (own harness: benchmark.js cannot time two threads at once):
//   the main thread and a worker_thread that attached to the same store with
//   ParameterStore.attach(store.share()) push (or snapshot) concurrently;
//   aggregate operations per second over repetitions that start together on
//   a SharedArrayBuffer barrier; the same harness with 1 thread beside it.
//   Baselines: the JS loop on each thread's own array, and on ONE shared
//   array (a SharedArrayBuffer; racy, i.e. JS hogwild).
//
// Usage: node bench/js_bench.js [--smoke] [--json FILE] [--sizes 1000,100000,10000000]
//        [--modes all|atomic,...] [--max-time S] [--reps N] [--quiet]
// Needs the addon (npm run build:native) and dist/ (npx tsc -p tsconfig.json).

const path = require('node:path');
const os = require('node:os');
const fs = require('node:fs');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');

const ROOT = path.resolve(__dirname, '..');
const MODES = ['atomic', 'locked', 'versioned', 'deterministic', 'averaging', 'hogwild'];
const LR = 1e-3;

function fillGrad(g, seed) {
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < g.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const v = (x / 4294967296 - 0.5) * 2e-3;
    g[i] = v === 0 ? 1e-6 : v;
  }
  return g;
}

function jsLoop(p, g, lr) {
  for (let i = 0; i < p.length; i++) p[i] -= lr * g[i];
}
// The same loop for the SharedArrayBuffer-backed array (its own function, so
// that neither call site makes the other polymorphic).
function jsLoopShared(p, g, lr) {
  for (let i = 0; i < p.length; i++) p[i] -= lr * g[i];
}

const nowNs = () => process.hrtime.bigint();

// ------------------------------------------------------------------ worker side

if (!isMainThread) {
  const { ParameterStore } = require(ROOT);
  const ctl = new Int32Array(workerData.sab);
  let store = null;
  let grad = null;
  let shared = null;
  let priv = null;
  let sink = 0;
  const barrier = (gen) => {
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    for (let v = Atomics.load(ctl, 0); v < 2 * gen; v = Atomics.load(ctl, 0)) Atomics.wait(ctl, 0, v, 5);
  };
  parentPort.on('message', (m) => {
    try {
      if (m.cmd === 'attach') {
        store = ParameterStore.attach(m.handle);
        grad = fillGrad(new Float32Array(m.n), 2);
      } else if (m.cmd === 'loop-setup') {
        shared = new Float32Array(m.sab);
        priv = new Float32Array(m.n);
        grad = fillGrad(new Float32Array(m.n), 2);
      } else if (m.cmd === 'detach') {
        if (store) store.close();
        store = null;
      } else if (m.cmd === 'rep') {
        barrier(m.gen);
        const t0 = nowNs();
        runOp(m.op, m.k);
        const t1 = nowNs();
        parentPort.postMessage({ t0, t1 });
        return;
      }
      parentPort.postMessage({ ok: true });
    } catch (e) {
      parentPort.postMessage({ error: String((e && e.stack) || e) });
    }
  });
  function runOp(op, k) {
    if (op === 'push') for (let i = 0; i < k; i++) store.push({ w: grad });
    else if (op === 'snapshot') for (let i = 0; i < k; i++) sink += store.snapshot().version;
    else if (op === 'loop') for (let i = 0; i < k; i++) jsLoop(priv, grad, LR);
    else if (op === 'loop-shared') for (let i = 0; i < k; i++) jsLoopShared(shared, grad, LR);
    else throw new Error('unknown op ' + op);
  }
  return;
}

// ------------------------------------------------------------------ main side

function parseArgs(argv) {
  const o = { smoke: false, json: '', sizes: [1000, 100000, 10000000], modes: MODES.slice(), maxTime: 0.4, reps: 5, repMs: 25, quiet: false };
  let sizesSet = false, maxTimeSet = false, repsSet = false, repMsSet = false;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--smoke') o.smoke = true;
    else if (a === '--json') o.json = val();
    else if (a === '--sizes') {
      o.sizes = val().split(',').filter(Boolean).map((s) => {
        const m = /^([0-9.e+]+)([kKmM]?)$/.exec(s);
        if (!m) throw new Error(`bad size ${s}`);
        return Math.round(Number(m[1]) * ({ k: 1e3, K: 1e3, m: 1e6, M: 1e6 }[m[2]] || 1));
      });
      sizesSet = true;
    } else if (a === '--modes') {
      const v = val();
      o.modes = v === 'all' ? MODES.slice() : v.split(',').filter(Boolean);
      for (const m of o.modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m}`);
    } else if (a === '--max-time') {
      o.maxTime = Number(val());
      maxTimeSet = true;
    } else if (a === '--reps') {
      o.reps = Math.max(1, Number(val()) | 0);
      repsSet = true;
    } else if (a === '--rep-ms') {
      o.repMs = Number(val());
      repMsSet = true;
    } else if (a === '--quiet') o.quiet = true;
    else if (a === '--help' || a === '-h') {
      console.log('node bench/js_bench.js [--smoke] [--json FILE] [--sizes LIST] [--modes LIST|all] [--max-time S] [--reps N] [--rep-ms MS] [--quiet]');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (o.smoke) {
    if (!sizesSet) o.sizes = [1000, 100000];
    if (!maxTimeSet) o.maxTime = 0.02;
    if (!repsSet) o.reps = 1;
    if (!repMsSet) o.repMs = 2;
  }
  return o;
}

function median(a) {
  if (!a.length) return 0;
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function loadavg() {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

async function main() {
  const o = parseArgs(process.argv);
  const Benchmark = require('benchmark');
  let gv;
  try {
    gv = require(ROOT);
  } catch (e) {
    console.error(`js_bench: cannot load gradvault from ${ROOT} (build it: npm run build:native && npx tsc -p tsconfig.json): ${e.message}`);
    process.exit(2);
  }
  const { ParameterStore } = gv;
  const cpus = os.cpus();
  const machine = {
    cpu: cpus.length ? cpus[0].model.trim() : 'unknown',
    cpus: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    isa: gv.isa().active,
    isas: gv.isa().supported.join(','),
    isaForced: process.env.GRADVAULT_ISA || null,
    node: process.version,
    uvThreadpool: Number(process.env.UV_THREADPOOL_SIZE || 4),
    date: new Date().toISOString(),
    loadStart: loadavg(),
  };
  const t0All = Date.now();
  console.log(`machine: ${machine.cpu}, ${machine.cpus} logical CPUs, load ${machine.loadStart}`);
  console.log(`isa: core kernels '${machine.isa}' (supported: ${machine.isas}); node ${machine.node}; libuv pool ${machine.uvThreadpool}${o.smoke ? '; SMOKE' : ''}`);

  const results = [];
  const say = (r) => {
    if (o.quiet) return;
    const ratio = r.ratio ? `  x${r.ratio.toFixed(3)} vs ${r.baseline}` : '';
    const gb = r.gbps ? `${r.gbps.toFixed(2).padStart(8)} GB/s` : ' '.repeat(13);
    console.log(`  ${r.suite.padEnd(8)} ${(r.name).padEnd(30)} T=${r.threads} ${gb} ${r.opsPerSec.toFixed(0).padStart(11)} ops/s ${r.nsPerOp.toFixed(0).padStart(11)} ns/op${ratio}`);
  };

  // -------------------------------------------------------- benchmark.js, 1 thread
  // batch: operations per benchmarked call, so that one call lasts >= ~20 us.
  function batchFor(n, bytesPerElem) {
    const perOpNs = (n * bytesPerElem) / 10; // ~10 GB/s guess
    return Math.max(1, Math.min(1000, Math.ceil(20000 / Math.max(perOpNs, 100))));
  }

  function runSuite(cases) {
    // cases: [{ name, fn, defer?, batch, bytes, size, kind, mode, baseline }]
    return new Promise((resolve) => {
      const suite = new Benchmark.Suite();
      for (const c of cases) {
        const opts = { minSamples: o.smoke ? 1 : 7, maxTime: o.maxTime, initCount: 1 };
        if (o.smoke) opts.minTime = 0.002;
        if (c.defer) suite.add(c.name, { defer: true, fn: (d) => c.fn().then(() => d.resolve()), ...opts });
        else suite.add(c.name, c.fn, opts);
      }
      suite.on('cycle', (ev) => {
        const b = ev.target;
        const c = cases.find((x) => x.name === b.name);
        if (b.error) {
          console.error(`  ${b.name}: ${b.error && b.error.stack}`);
          return;
        }
        const perCall = median(b.stats.sample); // seconds per benchmarked call
        const perOp = perCall / c.batch;
        const r = {
          suite: 'bm', kind: c.kind, name: c.label, mode: c.mode || '', size: c.size, threads: 1,
          batch: c.batch, samples: b.stats.sample.length, medianSecPerOp: perOp, nsPerOp: perOp * 1e9,
          opsPerSec: 1 / perOp, bytesPerOp: c.bytes, gbps: c.bytes ? c.bytes / perOp / 1e9 : 0,
          rme: b.stats.rme, baseline: c.baseline || '', ratio: 0,
        };
        results.push(r);
      });
      suite.on('complete', () => resolve());
      suite.run({ async: false });
    });
  }

  // The addon's own NativeStore for a store (internal interface: used only
  // to split per-call costs; null when it is not available).
  let addon = null;
  function internalStore(store) {
    try {
      if (!addon) addon = require(require.resolve('node-gyp-build', { paths: [ROOT] }))(ROOT);
      const nat = new addon.NativeStore(null, null, store.share().id);
      nat.push([0], [new Float32Array(store.tensors[0].size)], -1);
      return nat;
    } catch {
      return null;
    }
  }

  function makeStore(mode, n, syncEvery) {
    const opts = { tensors: { w: { shape: [n], init: 'zeros' } }, mode, optimizer: { kind: 'sgd', lr: LR } };
    if (mode === 'averaging' && syncEvery) opts.syncEvery = syncEvery;
    return new ParameterStore(opts);
  }

  const setRatios = (list) => {
    for (const r of list) {
      if (!r.baseline) continue;
      const b = results.find((x) => x.suite === r.suite && x.size === r.size && x.threads === r.threads && x.name === r.baseline);
      r.ratio = b && b.gbps ? r.gbps / b.gbps : 0;
    }
  };

  let sink = 0;
  for (const n of o.sizes) {
    console.log(`\n== ${n} floats, 1 thread (benchmark.js) ==`);
    const tSize = Date.now();
    const g = fillGrad(new Float32Array(n), 1);
    const p = new Float32Array(n);
    const dst = new Float32Array(n);
    const bPush = batchFor(n, 12);
    const bCopy = batchFor(n, 8);
    const first = results.length;
    const cases = [
      { name: `js-loop ${n}`, label: 'js-loop', kind: 'baseline', size: n, batch: bPush, bytes: 12 * n,
        fn: () => { for (let i = 0; i < bPush; i++) jsLoop(p, g, LR); } },
      { name: `js-copy-new ${n}`, label: 'js-copy-new', kind: 'baseline', size: n, batch: bCopy, bytes: 8 * n,
        fn: () => { for (let i = 0; i < bCopy; i++) sink += new Float32Array(p)[0]; } },
      { name: `js-copy-set ${n}`, label: 'js-copy-set', kind: 'baseline', size: n, batch: bCopy, bytes: 8 * n,
        fn: () => { for (let i = 0; i < bCopy; i++) dst.set(p); } },
    ];
    await runSuite(cases);
    for (const mode of o.modes) {
      const store = makeStore(mode, n);
      const grads = { w: g };
      const mc = [
        { name: `push ${mode} ${n}`, label: `push ${mode}`, kind: 'push', mode, size: n, batch: bPush, bytes: 12 * n, baseline: 'js-loop',
          fn: () => { for (let i = 0; i < bPush; i++) store.push(grads); } },
        { name: `snapshot ${mode} ${n}`, label: `snapshot ${mode}`, kind: 'snapshot', mode, size: n, batch: bCopy, bytes: 8 * n, baseline: 'js-copy-new',
          fn: () => { for (let i = 0; i < bCopy; i++) sink += store.snapshot().version; } },
        { name: `pushAsync1 ${mode} ${n}`, label: `pushAsync ${mode} (1 in flight)`, kind: 'pushAsync', mode, size: n, batch: Math.max(1, bPush >> 2), bytes: 12 * n, baseline: 'js-loop', defer: true,
          fn: async () => { for (let i = 0, m = Math.max(1, bPush >> 2); i < m; i++) await store.pushAsync(grads); } },
        { name: `pushAsync4 ${mode} ${n}`, label: `pushAsync ${mode} (4 in flight)`, kind: 'pushAsync', mode, size: n, batch: 4 * Math.max(1, bPush >> 2), bytes: 12 * n, baseline: 'js-loop', defer: true,
          fn: async () => {
            const m = Math.max(1, bPush >> 2);
            for (let i = 0; i < m; i++) await Promise.all([store.pushAsync(grads), store.pushAsync(grads), store.pushAsync(grads), store.pushAsync(grads)]);
          } },
      ];
      if (n * 4 >= 1 << 20) {
        // The same snapshot with one event-loop turn before each, as in a
        // training loop that awaits: the binding's pool gets a collected
        // snapshot's memory back only when the loop turns (N-API finalizers
        // do not run inside a synchronous loop), so the plain case above
        // always copies into fresh memory. (A setImmediate costs ~µs.)
        mc.push({ name: `snapshot-turn ${mode} ${n}`, label: `snapshot ${mode} (loop turns)`, kind: 'snapshot', mode, size: n, batch: bCopy, bytes: 8 * n, baseline: 'js-copy-new', defer: true,
          fn: async () => { for (let i = 0; i < bCopy; i++) { await new Promise((r) => setImmediate(r)); sink += store.snapshot().version; } } });
        // Snapshot.release() hands the memory back at once: a synchronous
        // loop then copies into pooled memory every time.
        mc.push({ name: `snapshot-release ${mode} ${n}`, label: `snapshot ${mode} + release()`, kind: 'snapshot', mode, size: n, batch: bCopy, bytes: 8 * n, baseline: 'js-copy-new',
          fn: () => { for (let i = 0; i < bCopy; i++) { const s = store.snapshot(); sink += s.version; s.release(); } } });
      }
      if (n <= 1000 && mode === o.modes[0]) {
        // The floor of one call into the addon through the facade.
        mc.push({ name: `call ${n}`, label: 'native-call (store.version)', kind: 'overhead', mode: '', size: n, batch: 1000, bytes: 0,
          fn: () => { for (let i = 0; i < 1000; i++) sink += store.version; } });
      }
      if (n <= 1000) {
        // The same push and snapshot straight into the addon (its internal
        // NativeStore, attached to this store), without the TS facade: splits
        // the per-call cost into facade and binding. Skipped if the
        // internal interface changed.
        const nat = internalStore(store);
        if (nat) {
          const idx = [0], arrs = [g];
          mc.push({ name: `addon-push ${mode} ${n}`, label: `addon push ${mode} (no facade)`, kind: 'overhead', mode, size: n, batch: bPush, bytes: 12 * n,
            fn: () => { for (let i = 0; i < bPush; i++) nat.push(idx, arrs, -1); } });
          mc.push({ name: `addon-snapshot ${mode} ${n}`, label: `addon snapshot ${mode} (no facade)`, kind: 'overhead', mode, size: n, batch: bCopy, bytes: 8 * n,
            fn: () => { for (let i = 0; i < bCopy; i++) sink += nat.snapshot().version; } });
        }
      }
      await runSuite(mc);
      store.close();
    }
    setRatios(results.slice(first));
    for (const r of results.slice(first)) say(r);
    console.log(`  (${((Date.now() - tSize) / 1000).toFixed(1)} s)`);
  }

  // -------------------------------------------------------- own harness, 1 and 2 threads
  const sab = new SharedArrayBuffer(16);
  const ctl = new Int32Array(sab);
  const worker = new Worker(__filename, { workerData: { sab } });
  worker.unref();
  const ask = (msg) =>
    new Promise((resolve, reject) => {
      worker.once('message', (m) => (m && m.error ? reject(new Error(m.error)) : resolve(m)));
      worker.postMessage(msg);
    });
  let gen = 0;
  const barrier = (g) => {
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    for (let v = Atomics.load(ctl, 0); v < 2 * g; v = Atomics.load(ctl, 0)) Atomics.wait(ctl, 0, v, 5);
  };
  // One repetition: k ops on the main thread (and k on the worker when
  // threads = 2), started together; seconds from first start to last end.
  async function rep(threads, op, runMain, k) {
    if (threads === 1) {
      const t0 = nowNs();
      runMain(k);
      return Number(nowNs() - t0) / 1e9;
    }
    gen += 1;
    const reply = ask({ cmd: 'rep', op, k, gen });
    barrier(gen);
    const t0 = nowNs();
    runMain(k);
    const t1 = nowNs();
    const w = await reply;
    const start = t0 < w.t0 ? t0 : w.t0;
    const end = t1 > w.t1 ? t1 : w.t1;
    return Number(end - start) / 1e9;
  }
  async function timed(threads, op, runMain) {
    const target = o.repMs / 1000;
    let k = 1;
    for (let i = 0; i < 30; i++) {
      const s = await rep(threads, op, runMain, k);
      if (s >= target) break;
      k = Math.ceil(k * Math.min(64, Math.max(2, s > 0 ? (target / s) * 1.25 : 16)));
    }
    const secs = [];
    for (let i = 0; i < o.reps; i++) secs.push(await rep(threads, op, runMain, k));
    return { k, secs };
  }
  const record = (name, kind, mode, n, threads, bytes, baseline, { k, secs }) => {
    const med = median(secs);
    const ops = k * threads;
    const r = {
      suite: 'mt', kind, name, mode, size: n, threads, k, reps: secs.length, secs, medianSec: med,
      opsPerSec: ops / med, nsPerOp: (med / k) * 1e9, bytesPerOp: bytes, gbps: bytes ? (bytes * ops) / med / 1e9 : 0,
      baseline, ratio: 0,
    };
    results.push(r);
    return r;
  };

  for (const n of o.sizes) {
    console.log(`\n== ${n} floats, 1 and 2 threads (main + worker_thread on one store) ==`);
    const tSize = Date.now();
    const first = results.length;
    const g = fillGrad(new Float32Array(n), 1);
    const priv = new Float32Array(n);
    const shared = new Float32Array(new SharedArrayBuffer(n * 4));
    await ask({ cmd: 'loop-setup', sab: shared.buffer, n });
    for (const T of [1, 2]) {
      record('js-loop', 'baseline', '', n, T, 12 * n, '', await timed(T, 'loop', (k) => { for (let i = 0; i < k; i++) jsLoop(priv, g, LR); }));
      if (T === 2)
        record('js-loop-shared', 'baseline', '', n, T, 12 * n, '', await timed(T, 'loop-shared', (k) => { for (let i = 0; i < k; i++) jsLoopShared(shared, g, LR); }));
    }
    const variants = [];
    for (const mode of o.modes) {
      variants.push({ mode, label: mode, syncEvery: undefined });
      if (mode === 'averaging') variants.push({ mode, label: 'averaging/s=2', syncEvery: 2 });
    }
    for (const v of variants) {
      const store = makeStore(v.mode, n, v.syncEvery);
      const grads = { w: g };
      await ask({ cmd: 'attach', handle: store.share(), n });
      for (const T of [1, 2]) {
        if (v.label === 'averaging/s=2' && T === 1) continue;
        record(`push ${v.label}`, 'push', v.mode, n, T, 12 * n, 'js-loop', await timed(T, 'push', (k) => { for (let i = 0; i < k; i++) store.push(grads); }));
        if (!v.syncEvery)
          record(`snapshot ${v.mode}`, 'snapshot', v.mode, n, T, 8 * n, '', await timed(T, 'snapshot', (k) => { for (let i = 0; i < k; i++) sink += store.snapshot().version; }));
      }
      await ask({ cmd: 'detach' });
      store.close();
    }
    setRatios(results.slice(first));
    for (const r of results.slice(first)) say(r);
    console.log(`  (${((Date.now() - tSize) / 1000).toFixed(1)} s)`);
  }
  await worker.terminate();

  const seconds = (Date.now() - t0All) / 1000;
  machine.loadEnd = loadavg();
  console.log(`\ntotal: ${seconds.toFixed(1)} s; load average at start ${machine.loadStart}, at end ${machine.loadEnd} (sink ${sink > 0 ? '+' : '0'})`);
  if (o.json) {
    fs.mkdirSync(path.dirname(path.resolve(o.json)), { recursive: true });
    fs.writeFileSync(o.json, JSON.stringify({ suite: 'js', machine, options: o, seconds, results }, null, 1) + '\n');
    console.log(`wrote ${o.json}`);
  }
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
