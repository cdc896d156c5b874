#!/usr/bin/env node
'use strict';
// Writes bench/RESULTS.md from the raw JSON of bench/core_bench.cpp and
// bench/js_bench.js: the machine line, the goals (met / not met, with the
// numbers), tables of medians and ratios, and bench/ANALYSIS.md appended.
//
// node bench/report.js --core core.json --js js.json --out RESULTS.md
//      [--analysis bench/ANALYSIS.md] [--seconds S] [--command "npm run bench"]
//      [--before bench/results/before]   (an earlier run's core.json/js.json/run.json:
//                                         shown BEFORE / AFTER in the goals and change tables)
//      [--predict predict.json]          (bench/predict_bench.js; default bench/results/predict.json)
//      [--train train.json] [--train-before FILE]   (bench/train_bench.js; the before file, default
//                                         train-before-issue16.json beside train.json: issue 16's batch-32 before / after)
//      [--sample DIR]                    (gv_bench_train --paths per-sample,generic: DIR/sample-{w1,w3,mf}.json;
//                                         default the folder of --train, else bench/results)

const fs = require('node:fs');
const path = require('node:path');

function args(argv) {
  const o = { core: '', js: '', train: '', 'train-before': '', sample: '', predict: '', out: '', analysis: '', seconds: 0, command: 'npm run bench', source: '', run: '', before: '' };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (!(k in o)) throw new Error(`report.js: unknown option ${argv[i]}`);
    o[k] = argv[++i];
  }
  if (!o.out) throw new Error('report.js: --out is required');
  if (o.run && fs.existsSync(o.run)) {
    // Written by scripts/bench.sh: how long the whole run took, the command, the sources.
    const r = JSON.parse(fs.readFileSync(o.run, 'utf8'));
    if (!o.seconds) o.seconds = r.seconds;
    if (r.command) o.command = r.command;
    if (!o.source && r.source) o.source = r.source;
  }
  return o;
}

const o = args(process.argv);
const read = (f) => (f && fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : null);
const core = read(o.core);
const js = read(o.js);
const bdir = o.before && fs.existsSync(o.before) ? o.before : '';
const bcore = bdir ? read(path.join(bdir, 'core.json')) : null;
const bjs = bdir ? read(path.join(bdir, 'js.json')) : null;
const brun = bdir ? read(path.join(bdir, 'run.json')) : null;

const MODES = ['atomic', 'locked', 'versioned', 'deterministic', 'averaging', 'hogwild'];
const f2 = (v) => (v === undefined || v === null || !isFinite(v) ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const pct = (v) => (v === undefined || v === null || !isFinite(v) || v === 0 ? '–' : `${(v * 100).toFixed(0)}%`);
const num = (v) => {
  if (v === undefined || v === null || !isFinite(v)) return '–';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)} k`;
  if (v >= 100) return v.toFixed(0);
  return v.toFixed(1);
};
const ns = (v) => {
  if (v === undefined || v === null || !isFinite(v)) return '–';
  const a = Math.abs(v);  // differences of medians may be negative (noise)
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)} ms`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(1)} µs`;
  return `${v.toFixed(0)} ns`;
};
const sizeName = (n) => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6} M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3} K` : String(n));

const lines = [];
const w = (s = '') => lines.push(s);
// leftCols: how many leading columns hold text (left-aligned); the rest are numbers.
const table = (head, rows, leftCols = 1) => {
  w(`| ${head.join(' | ')} |`);
  w(`| ${head.map((h, i) => (i < leftCols ? '---' : '---:')).join(' | ')} |`);
  for (const r of rows) w(`| ${r.join(' | ')} |`);
  w();
};

// ---------------------------------------------------------------- lookups (core)
const C = core ? core.results : [];
const cget = (kind, name, size, threads) => C.find((r) => r.kind === kind && r.name === name && r.size === size && r.threads === threads);
const cbase = (name, size, threads) => cget('baseline', name, size, threads);
const ratioTo = (r, baseName) => {
  if (!r) return undefined;
  const b = cbase(baseName, r.size, r.threads);
  return b && b.gbps ? r.gbps / b.gbps : undefined;
};
// The same lookups in the BEFORE run.
const BC = bcore ? bcore.results : [];
const bget = (kind, name, size, threads) => BC.find((r) => r.kind === kind && r.name === name && r.size === size && r.threads === threads);
const bRatioTo = (r, baseName) => {
  if (!r) return undefined;
  const b = bget('baseline', baseName, r.size, r.threads);
  return b && b.gbps ? r.gbps / b.gbps : undefined;
};
const times = (a, b) => (a && b && isFinite(a / b) ? `${a / b >= 10 ? (a / b).toFixed(0) : (a / b).toFixed(1)}×` : '–');
const coreSizes = core ? core.options.sizes : [];
const coreThreads = core ? core.options.threads : [];
const big = coreSizes.length ? Math.max(...coreSizes) : 0;

// ---------------------------------------------------------------- header
const m = (core && core.machine) || (js && js.machine) || {};
const smoke = (core && core.options.smoke) || (js && js.options && js.options.smoke);
w(`# gradvault benchmark results${smoke ? ' (SMOKE run: 1 repetition, small sizes — not for reporting)' : ''}`);
w();
w(`Generated by \`${o.command}\` (scripts/bench.sh) on ${m.date || new Date().toISOString()}.`);
w();
w(`**Machine:** ${m.cpu || '?'}, ${m.cpus || '?'} logical CPUs${core ? ` (L2 ${Math.round(core.machine.l2 / 1024)} KiB per core, L3 ${Math.round(core.machine.l3 / 1048576)} MiB as reported by sysconf)` : ''}, Linux ${core ? core.machine.kernel : ''}; ` +
  `**ISA:** core kernels \`${m.isa || '?'}\` (supported: ${m.isas || '?'})${m.isaForced ? `, forced by GRADVAULT_ISA=${m.isaForced}` : ''}; baselines compiled for the best ISA of the CPU; ` +
  `${core ? core.machine.compiler : ''}${js ? `, Node ${js.machine.node}` : ''}.`);
w();
const loadLine = [];
if (core) loadLine.push(`core suite ${core.seconds.toFixed(0)} s (load average ${core.machine.loadStart} → ${core.machine.loadEnd})`);
if (js) loadLine.push(`JS suite ${js.seconds.toFixed(0)} s (load average ${js.machine.loadStart} → ${js.machine.loadEnd})`);
if (o.seconds) loadLine.push(`whole \`${o.command}\` ${Number(o.seconds).toFixed(0)} s including builds`);
w(`**Run time:** ${loadLine.join('; ')}. The machine is shared and noisy: every number is a median, every contender is measured beside its baseline in the same run, and ratios matter more than absolute GB/s.`);
w();
{
  const busy = [core && core.machine.loadStart, js && js.machine.loadStart].filter(Boolean).map((l) => Number(String(l).split(' ')[0]));
  const top = Math.max(0, ...busy);
  const cpus = Number(m.cpus) || 0;
  if (cpus && top > 0.75 * cpus)
    w(`**Load warning:** the 1-minute load average was ${top.toFixed(2)} on ${cpus} CPUs when a suite started: other processes were running, so T=${cpus} numbers understate the machine and T=${cpus} ratios are noisier than usual.\n`);
}
if (bcore || bjs) {
  const bm = (bcore && bcore.machine) || {};
  w(`**BEFORE** numbers come from \`${bdir}\` (run of ${bm.date || '?'}${brun && brun.source ? `; ${brun.source}` : ''}; load average ${bm.loadStart || '?'}). Improvements are AFTER over BEFORE of the ratio to the baseline (each run against its own baseline, which cancels part of the difference in machine load between the runs).`);
  w();
}
if (core)
  w(`Core suite: for each size and thread count every case (baselines, modes, extras) is calibrated so that one repetition lasts ≥ ${core.options.repMs} ms, then ${core.options.reps} rounds each run one repetition of every case in rotating order (round-robin), so that a burst of load from other processes hits all cases alike; medians over the rounds. Worker threads pinned ${core.options.pin ? 'one per CPU' : 'nowhere'}. Raw data: \`${path.relative(process.cwd(), o.core)}\`, \`${path.relative(process.cwd(), o.js)}\`.`);
w();
if (o.source) {
  w(`Core measured: ${o.source}. Other engineers are changing the core; numbers belong to these sources.`);
  w();
}

// ---------------------------------------------------------------- goals
if (core) {
  w('## Goals');
  w();
  const gsize = big;
  if (gsize !== 10000000) w(`(Goals are stated for 10 M floats; this run's largest size is ${sizeName(gsize)}, used instead.)\n`);
  w(`Measured at ${sizeName(gsize)} floats. Push ratios are to **triad** (each thread its own arrays: the machine's roofline for the same bytes); the ratio to **triad-shared** (all threads on one shared tensor, no synchronisation) is given beside it — see *Baselines* below for why both.`);
  w();
  const rows = [];
  const verdict = (v, min) => (v === undefined ? '–' : v >= min ? '**met**' : '**not met**');
  const gb = (r) => (r ? `${f2(r.gbps)} GB/s` : '–');
  const pushGoal = (mode, min, threadsList, label) => {
    for (const T of threadsList) {
      const r = cget('push', mode, gsize, T);
      if (!r) continue;
      const rt = ratioTo(r, 'triad');
      const rs = ratioTo(r, 'triad-shared');
      const b = bget('push', mode, gsize, T);
      const bt = bRatioTo(b, 'triad');
      rows.push([label, `push ${mode}, T=${T}`, gb(b), pct(bt), gb(r), pct(rt), pct(rs), `≥ ${pct(min)}`, verdict(bt, min), verdict(rt, min), times(rt, bt), times(r && r.gbps, b && b.gbps)]);
    }
  };
  const both = coreThreads.filter((t) => t === 1 || t === 2);
  pushGoal('hogwild', 0.8, both, 'hogwild push ≥ 80% of triad');
  pushGoal('locked', 0.6, both, 'locked push ≥ 60% of triad');
  pushGoal('atomic', 0.3, coreThreads.includes(2) ? [2] : [coreThreads[coreThreads.length - 1]], 'atomic ≥ 30% at 2 threads');
  pushGoal('deterministic', 0.3, coreThreads.includes(2) ? [2] : [coreThreads[coreThreads.length - 1]], 'deterministic ≥ 30% at 2 threads');
  for (const T of both)
    for (const mode of MODES) {
      const r = cget('snapshot', mode, gsize, T);
      if (!r) continue;
      const rm = ratioTo(r, 'memcpy');
      const b = bget('snapshot', mode, gsize, T);
      const bmr = bRatioTo(b, 'memcpy');
      rows.push([`${sizeName(gsize)} snapshot ≥ 70% of memcpy`, `snapshot ${mode}, T=${T}`, gb(b), pct(bmr), gb(r), pct(rm), '', '≥ 70%', verdict(bmr, 0.7), verdict(rm, 0.7), times(rm, bmr), times(r && r.gbps, b && b.gbps)]);
    }
  // The JS snapshot (store.snapshot() through the facade and binding: a new
  // Float32Array the caller owns) against the core suite's memcpy of the same
  // run, same size and thread count (T=1: benchmark.js; T=2: main thread +
  // worker_thread, aggregate).
  const jsSnap = (res, suite, mode, T) => (res ? res.results.find((x) => x.suite === suite && x.name === `snapshot ${mode}` && x.size === gsize && x.threads === T) : undefined);
  if (js)
    for (const T of both)
      for (const mode of MODES) {
        const suite = T === 1 ? 'bm' : 'mt';
        const r = jsSnap(js, suite, mode, T);
        if (!r) continue;
        const mc = cbase('memcpy', gsize, T);
        const rm = mc && mc.gbps ? r.gbps / mc.gbps : undefined;
        const b = jsSnap(bjs, suite, mode, T);
        const bmc = bget('baseline', 'memcpy', gsize, T);
        const bmr = b && bmc && bmc.gbps ? b.gbps / bmc.gbps : undefined;
        rows.push([`${sizeName(gsize)} JS snapshot ≥ 70% of memcpy`, `JS snapshot ${mode}, T=${T}`, gb(b), pct(bmr), gb(r), pct(rm), '', '≥ 70%', verdict(bmr, 0.7), verdict(rm, 0.7), times(rm, bmr), times(r && r.gbps, b && b.gbps)]);
        // With an event-loop turn before each snapshot (the pool refills).
        const t = T === 1 ? js.results.find((x) => x.suite === 'bm' && x.name === `snapshot ${mode} (loop turns)` && x.size === gsize) : undefined;
        if (t) {
          const rt = mc && mc.gbps ? t.gbps / mc.gbps : undefined;
          rows.push([`${sizeName(gsize)} JS snapshot ≥ 70% of memcpy`, `JS snapshot ${mode}, T=1, event-loop turn between`, '', '', gb(t), pct(rt), '', '≥ 70%', '', verdict(rt, 0.7), '', '']);
        }
        // With Snapshot.release() after each (the memory goes back at once).
        const rr = T === 1 ? js.results.find((x) => x.suite === 'bm' && x.name === `snapshot ${mode} + release()` && x.size === gsize) : undefined;
        if (rr) {
          const rrm = mc && mc.gbps ? rr.gbps / mc.gbps : undefined;
          rows.push([`${sizeName(gsize)} JS snapshot ≥ 70% of memcpy`, `JS snapshot ${mode} + release(), T=1`, '', '', gb(rr), pct(rrm), '', '≥ 70%', '', verdict(rrm, 0.7), '', '']);
        }
      }
  table(['goal', 'case', 'BEFORE', 'before ratio', 'AFTER', 'after ratio', 'after vs triad-shared', 'target', 'before', 'after', 'improvement (ratio)', 'improvement (GB/s)'], rows, 2);
  w('Ratios: push to **triad**, snapshot to **memcpy** (the core suite\'s, same size and threads; for the JS rows the core suite\'s memcpy of the same `npm run bench`, measured in other time windows). *improvement (ratio)* = after ratio / before ratio; *(GB/s)* = after GB/s / before GB/s. The first run had the second core busy (its T=2 baselines were 35–60 % lower than in a quiet run), so at T=2 the GB/s column flatters and the ratio column understates the change.');
  w();
}

// ---------------------------------------------------------------- before -> after, every size
if (core && bcore) {
  w('## Before → after, every size (core: ratio to the baseline of the same run)');
  w();
  const head = ['case'];
  for (const n of coreSizes) for (const T of coreThreads) if (bget('baseline', 'triad', n, T)) head.push(`${sizeName(n)} T=${T}`);
  const rows = [];
  const cell = (kind, name, n, T, base) => {
    const a = cget(kind, name, n, T), b = bget(kind, name, n, T);
    const ra = ratioTo(a, base), rb = bRatioTo(b, base);
    if (!a && !b) return '';
    return `${pct(rb)} → ${pct(ra)}${ra && rb ? ` (${times(ra, rb)})` : ''}`;
  };
  for (const [kind, base] of [['push', 'triad'], ['snapshot', 'memcpy']])
    for (const name of [...MODES, 'averaging/s=2']) {
      if (!C.some((r) => r.kind === kind && r.name === name)) continue;
      const row = [`${kind} **${name}**`];
      for (const n of coreSizes) for (const T of coreThreads) if (bget('baseline', 'triad', n, T)) row.push(cell(kind, name, n, T, base) || '–');
      rows.push(row);
    }
  {
    const row = ['baseline read (the non-finite scan; GB/s)'];
    for (const n of coreSizes)
      for (const T of coreThreads)
        if (bget('baseline', 'triad', n, T)) {
          const a = cbase('read', n, T), b = bget('baseline', 'read', n, T);
          row.push(a && b ? `${f2(b.gbps)} → ${f2(a.gbps)} (${times(a.gbps, b.gbps)})` : '–');
        }
    rows.push(row);
  }
  table(head, rows);
  w('BEFORE `read` timed `first_nonfinite` (a branch per 8 floats); AFTER it times `scan` (a branch per 32 floats, max|g| in the same pass), which every push now runs.');
  w();
}

// ---------------------------------------------------------------- baselines explained
w('## Baselines, and why these');
w();
w('Every push is whole-tensor and a push cannot be split: T threads pushing move T × N × 12 counted bytes (read params, read gradient, write params) through ONE shared tensor. The baselines therefore give **every thread the whole tensor** (not a 1/T slice: a sliced triad moves N × 12 bytes per round with per-thread working sets T times smaller, so it would measure how fast ONE push could go if split across cores — a different workload, and at 100 K floats a different cache level). Each thread has its own gradient buffer, as real workers do.');
w();
w('- **triad** — `a_t[i] = a_t[i] + s*c_t[i]`, each thread its own `a_t`: same bytes and per-thread working set as the pushers, nothing shared, nothing synchronised. This is the machine\'s roofline and the reference of the goals (it is what "triad bandwidth" means).');
w('- **triad-shared** — `a[i] = a[i] + s*c_t[i]` on ONE shared `a`, racy: the fairest baseline for a *mode*, since every in-place mode must at least pay this (the cache lines of the shared tensor move between cores). The gap triad → triad-shared is the cost of sharing; the gap triad-shared → mode is the cost of the mode. Out of cache (10 M) the two agree within noise; in cache (1 K, 100 K at 2 threads) sharing alone costs a large factor.');
w('- **triad-shared-rot** — as triad-shared, each thread starting at a different offset (t·N/T) and wrapping: shows whether staggering writers (as the core\'s stripe writers now do) avoids the sharing cost.');
w('- **memcpy** — `std::memcpy` (glibc) of one shared source into each thread\'s own destination, 8 counted bytes per element: what a snapshot does. glibc switches to non-temporal stores above a threshold derived from the L3 size it detects (on this VM, which reports 256 MiB of L3, it does not stream even at 40 MB); the core\'s copy kernel (row *kernel-copy*) never streams.');
w('- **read** — the core\'s non-finite scan of a gradient alone (kernel `scan`, which also returns max|g|; 4 bytes per element): every push runs it before touching the store.');
w('- **JS baselines** — a plain `for` loop `p[i] -= lr*g[i]` over Float32Arrays (the math a push does) and `new Float32Array(p)` / `dst.set(p)` (what a snapshot does), on one thread; in the 2-thread harness the same loop on each thread\'s own array and on one SharedArrayBuffer (JS hogwild).');
w();
w('Counted bytes are the convention of the issue (12 per pushed element, 8 per snapshotted element), whatever the mode really moves: `deterministic` keeps 8-byte integers, so its real traffic per push is 20 bytes per element; `versioned` writes into a fresh buffer, which costs a read-for-ownership unless streamed.');
w();

// ---------------------------------------------------------------- core tables
if (core) {
  w('## Core (C++, no Node): push');
  w();
  for (const n of coreSizes) {
    w(`### ${sizeName(n)} floats (${(n * 4 / 1e6).toFixed(n < 1e5 ? 3 : 1)} MB per tensor)`);
    w();
    const head = ['case'];
    for (const T of coreThreads) head.push(`T=${T} GB/s`, `T=${T} pushes/s`, `T=${T} ×triad`, `T=${T} ×shared`);
    const rows = [];
    for (const b of ['triad', 'triad-shared', 'triad-shared-rot', 'read']) {
      const row = [`baseline ${b}`];
      for (const T of coreThreads) {
        const r = cbase(b, n, T);
        row.push(r ? f2(r.gbps) : '–', r ? num(r.opsPerSec) : '–', pct(ratioTo(r, 'triad')), '');
      }
      rows.push(row);
    }
    const names = [];
    for (const r of C) if ((r.kind === 'push' || r.kind === 'proto-push') && r.size === n && !names.includes(r.kind + '|' + r.name)) names.push(r.kind + '|' + r.name);
    for (const kn of names) {
      const [kind, name] = kn.split('|');
      const row = [kind === 'push' ? `**${name}**` : `${name} *(prototype)*`];
      for (const T of coreThreads) {
        const r = cget(kind, name, n, T);
        row.push(r ? f2(r.gbps) : '–', r ? num(r.opsPerSec) : '–', pct(ratioTo(r, 'triad')), pct(ratioTo(r, 'triad-shared')));
      }
      rows.push(row);
    }
    table(head, rows);
    const conf = C.filter((r) => r.size === n && r.kind === 'push' && r.conflicts > 0);
    if (conf.length)
      w(`Conflicts counted by the store during the timed repetitions (hogwild: overlapping writers on a stripe): ${conf.map((r) => `${r.name} T=${r.threads}: ${r.conflicts} in ${r.opsPerRep * r.reps} pushes`).join('; ')}.\n`);
  }

  w('## Core: snapshot');
  w();
  {
    const head = ['case'];
    for (const n of coreSizes) for (const T of coreThreads) head.push(`${sizeName(n)} T=${T} GB/s`, `×memcpy`);
    const rows = [];
    const rowFor = (label, kind, name) => {
      const row = [label];
      for (const n of coreSizes)
        for (const T of coreThreads) {
          const r = kind === 'baseline' ? cbase(name, n, T) : cget(kind, name, n, T);
          row.push(r ? f2(r.gbps) : '–', pct(ratioTo(r, 'memcpy')));
        }
      rows.push(row);
    };
    rowFor('baseline memcpy', 'baseline', 'memcpy');
    for (const mode of MODES) if (C.some((r) => r.kind === 'snapshot' && r.name === mode)) rowFor(`**${mode}**`, 'snapshot', mode);
    rowFor('kernel-copy (the core\'s copy kernel alone)', 'micro', 'kernel-copy');
    rowFor('kernel-copy-stream *(the core\'s streaming-store copy alone)*', 'micro', 'kernel-copy-stream');
    table(head, rows);
  }

  w('## Core: the costs underneath (micro-measurements)');
  w();
  {
    const rows = [];
    for (const T of coreThreads) {
      const r = C.find((x) => x.name === 'ctr' && x.threads === T);
      if (r) rows.push([`fetch_add on one shared counter, T=${T}`, ns(r.nsPerOp), 'per operation per thread: each shared per-push counter of the store costs this']);
    }
    for (const n of coreSizes)
      for (const T of coreThreads) {
        const r = cbase('read', n, T), p = bget('baseline', 'read', n, T);
        if (r && T === 1) rows.push([`non-finite scan + max abs(g) of a gradient (core kernel \`scan\`), ${sizeName(n)}, T=${T}`, ns(r.nsPerOp), `${f2(r.gbps)} GB/s${p ? `; BEFORE (\`first_nonfinite\`, branch per 8 floats): ${ns(p.nsPerOp)}, ${f2(p.gbps)} GB/s` : ''}`]);
        const fa = cget('micro', 'fresh-alloc-copy', n, T), th = cget('micro', 'fresh-alloc-copy-thp', n, T), mc = cbase('memcpy', n, T);
        if (fa && T === 1) rows.push([`copy into freshly allocated memory (a JS snapshot, a pushAsync gradient copy), ${sizeName(n)}, T=${T}`, ns(fa.nsPerOp), `vs ${ns(mc && mc.nsPerOp)} into reused memory${th ? `; ${ns(th.nsPerOp)} with 2 MiB pages (MADV_HUGEPAGE)` : ''}`]);
      }
    table(['measurement', 'cost', 'meaning'], rows, 1);
  }
}

// ---------------------------------------------------------------- JS tables
if (js) {
  const J = js.results;
  const jsSizes = js.options.sizes;
  const jget = (suite, name, size, threads) => J.find((r) => r.suite === suite && r.name === name && r.size === size && r.threads === threads);
  w('## JS API, 1 thread (benchmark.js)');
  w();
  w('Per operation: median over benchmark.js samples (each sample batches several operations where one is short). "×JS" is the ratio of GB/s to the JS baseline in the same run (push: the JS loop; snapshot: `new Float32Array(p)`); "×core" is the JS API\'s GB/s over the core\'s alone (1 thread, same size, from the core suite of this run): 1 means the binding and facade cost nothing.');
  w();
  for (const n of jsSizes) {
    w(`### ${sizeName(n)} floats`);
    w();
    const base = ['js-loop', 'js-copy-new', 'js-copy-set'].map((b) => jget('bm', b, n, 1));
    w(`Baselines: JS loop ${ns(base[0] && base[0].nsPerOp)} (${f2(base[0] && base[0].gbps)} GB/s), \`new Float32Array(p)\` ${ns(base[1] && base[1].nsPerOp)} (${f2(base[1] && base[1].gbps)} GB/s), \`dst.set(p)\` ${ns(base[2] && base[2].nsPerOp)} (${f2(base[2] && base[2].gbps)} GB/s).`);
    const call = J.find((r) => r.suite === 'bm' && r.kind === 'overhead' && r.size === n);
    if (call) w(` One trivial call into the addon through the facade (\`store.version\`): ${ns(call.nsPerOp)}.`);
    w();
    const rows = [];
    const turns = J.some((r) => r.suite === 'bm' && r.size === n && / \(loop turns\)$/.test(r.name));
    for (const mode of MODES) {
      const p = jget('bm', `push ${mode}`, n, 1);
      if (!p) continue;
      const s = jget('bm', `snapshot ${mode}`, n, 1);
      const a1 = jget('bm', `pushAsync ${mode} (1 in flight)`, n, 1);
      const a4 = jget('bm', `pushAsync ${mode} (4 in flight)`, n, 1);
      const cp = core ? cget('push', mode, n, 1) : null;
      const cs = core ? cget('snapshot', mode, n, 1) : null;
      rows.push([
        `**${mode}**`,
        ns(p.nsPerOp), f2(p.gbps), p.ratio ? `${p.ratio.toFixed(2)}` : '–', cp ? pct(p.gbps / cp.gbps) : '–',
        cp ? ns(p.nsPerOp - cp.nsPerOp) : '–',
        s ? ns(s.nsPerOp) : '–', s ? f2(s.gbps) : '–', s && s.ratio ? s.ratio.toFixed(2) : '–', s && cs ? pct(s.gbps / cs.gbps) : '–',
        a1 ? ns(a1.nsPerOp) : '–', a4 ? num(a4.opsPerSec) : '–',
      ]);
      if (turns) {
        const t = jget('bm', `snapshot ${mode} (loop turns)`, n, 1);
        rows[rows.length - 1].splice(10, 0, t ? ns(t.nsPerOp) : '–', t && cs ? pct(t.gbps / cs.gbps) : '–');
      }
    }
    const head = ['mode', 'push', 'push GB/s', '×JS loop', '×core', 'overhead vs core', 'snapshot', 'snap GB/s', '×new F32A', '×core'];
    if (turns) head.push('snapshot, loop turns between', '×core');
    table([...head, 'pushAsync (1 in flight)', 'pushAsync/s (4 in flight)'], rows);
    const split = [];
    for (const mode of MODES) {
      const p = jget('bm', `push ${mode}`, n, 1), a = jget('bm', `addon push ${mode} (no facade)`, n, 1);
      const s = jget('bm', `snapshot ${mode}`, n, 1), as = jget('bm', `addon snapshot ${mode} (no facade)`, n, 1);
      const cp = core ? cget('push', mode, n, 1) : null, cs = core ? cget('snapshot', mode, n, 1) : null;
      if (!a) continue;
      split.push([`**${mode}** push`, ns(p && p.nsPerOp), ns(a.nsPerOp), ns(cp && cp.nsPerOp), ns(p && p.nsPerOp - a.nsPerOp), ns(cp && a.nsPerOp - cp.nsPerOp)]);
      if (as) split.push([`**${mode}** snapshot`, ns(s && s.nsPerOp), ns(as.nsPerOp), ns(cs && cs.nsPerOp), ns(s && s.nsPerOp - as.nsPerOp), ns(cs && as.nsPerOp - cs.nsPerOp)]);
    }
    if (split.length) {
      w(`Where the time of one call goes at ${sizeName(n)} floats (medians from different measurements: differences are estimates, negative ones are noise):`);
      w();
      table(['call', 'public API', 'addon alone (no facade)', 'core alone (C++)', 'facade (TS)', 'binding (N-API glue)'], split);
    }
  }

  if (bjs) {
    w('### JS API before → after (time per operation, 1 thread)');
    w();
    const BJ = bjs.results;
    const bj = (name, size) => BJ.find((r) => r.suite === 'bm' && r.name === name && r.size === size && r.threads === 1);
    const sizes = jsSizes.filter((n) => BJ.some((r) => r.size === n));
    const rows = [];
    const labels = ['js-loop', 'js-copy-new', 'js-copy-set'];
    for (const mode of MODES) labels.push(`push ${mode}`, `snapshot ${mode}`, `pushAsync ${mode} (1 in flight)`);
    for (const lab of labels) {
      if (!J.some((r) => r.suite === 'bm' && r.name === lab)) continue;
      const row = [lab.startsWith('js-') ? `baseline ${lab}` : lab];
      for (const n of sizes) {
        const a = jget('bm', lab, n, 1), b = bj(lab, n);
        row.push(a && b ? `${ns(b.nsPerOp)} → ${ns(a.nsPerOp)} (${times(b.nsPerOp, a.nsPerOp)})` : '–');
      }
      rows.push(row);
    }
    table(['operation', ...sizes.map((n) => `${sizeName(n)} floats: before → after (speed-up)`)], rows);
  }

  w('## JS API, 1 and 2 threads (main thread + a worker_thread attached to the same store)');
  w();
  w('Aggregate operations per second over both threads (median of repetitions started together on a SharedArrayBuffer barrier); "scaling" is T=2 over T=1 of the same harness.');
  w();
  for (const n of jsSizes) {
    const l1 = jget('mt', 'js-loop', n, 1), l2 = jget('mt', 'js-loop', n, 2), ls = jget('mt', 'js-loop-shared', n, 2);
    if (!l1) continue;
    w(`### ${sizeName(n)} floats`);
    w();
    w(`Baselines: JS loop ${f2(l1.gbps)} GB/s on 1 thread, ${f2(l2 && l2.gbps)} GB/s on 2 threads with own arrays, ${f2(ls && ls.gbps)} GB/s on one shared array (JS hogwild).`);
    w();
    const rows = [];
    const labels = [];
    for (const r of J) if (r.suite === 'mt' && r.size === n && r.kind === 'push' && !labels.includes(r.name)) labels.push(r.name);
    for (const lab of labels) {
      const p1 = jget('mt', lab, n, 1), p2 = jget('mt', lab, n, 2);
      const mode = lab.replace(/^push /, '').replace(/\/s=.*/, '');
      const s1 = lab.includes('/s=') ? null : jget('mt', `snapshot ${mode}`, n, 1);
      const s2 = lab.includes('/s=') ? null : jget('mt', `snapshot ${mode}`, n, 2);
      rows.push([
        `**${lab.replace(/^push /, '')}**`,
        p1 ? num(p1.opsPerSec) : '–', p2 ? num(p2.opsPerSec) : '–', p1 && p2 ? `${(p2.opsPerSec / p1.opsPerSec).toFixed(2)}×` : '–',
        p2 ? f2(p2.gbps) : '–', p2 && ls ? pct(p2.gbps / ls.gbps) : '–',
        s1 ? num(s1.opsPerSec) : '–', s2 ? num(s2.opsPerSec) : '–', s1 && s2 ? `${(s2.opsPerSec / s1.opsPerSec).toFixed(2)}×` : '–',
      ]);
    }
    table(['mode', 'pushes/s T=1', 'pushes/s T=2', 'scaling', 'T=2 GB/s', '×JS shared loop', 'snapshots/s T=1', 'snapshots/s T=2', 'scaling'], rows);
  }
}

// ---------------------------------------------------------------- training
if (o.train && fs.existsSync(o.train)) {
  const train = JSON.parse(fs.readFileSync(o.train, 'utf8'));
  const reportDir = path.dirname(path.resolve(o.out));
  const chartFile = path.join(reportDir, 'results', 'train-chart.svg');
  const beforeFile = o['train-before'] || path.join(path.dirname(o.train), 'train-before-issue16.json');
  const before = read(beforeFile);
  for (const line of require('./train_report').render(train, chartFile, reportDir, { before, beforeFile })) w(line);
}

// ---------------------------------------------------------------- per-sample vs generic (issue 16)
// scripts/bench.sh step 4b; each file missing says "not run".
{
  const dir = o.sample || (o.train ? path.dirname(o.train) : path.join(__dirname, 'results'));
  for (const line of require('./train_report').renderSample(dir)) w(line);
}

// ---------------------------------------------------------------- cluster transport
// bench/cluster_bench.js writes bench/results/cluster.json on its own (its
// shards and workers are processes of their own: not part of the suites above).
const cluster = read(path.join(__dirname, 'results', 'cluster.json'));
if (cluster) {
  w('## Cluster transport (bench/cluster_bench.js)');
  w();
  w(`${cluster.machine}, ${cluster.cores} cores, kernels ${cluster.isa}, libzmq ${cluster.zeromq}, ${cluster.date.slice(0, 10)}; medians of ${cluster.rounds} rounds.`);
  w('Raw ZeroMQ: DEALER to ROUTER echo with CURVE, in one process, the ceiling. gradvault: `pushAsync` through one shard');
  w('(`ParameterServer` in the same process): checks, copies, the optimizer step and the reply included.');
  w();
  w('| case | raw ZeroMQ /s | raw MB/s | gradvault push /s | push MB/s | push / raw |');
  w('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of cluster.rows)
    w(`| ${r.case} | ${r.rawPerSec.toFixed(0)} | ${r.rawMBps.toFixed(1)} | ${r.pushPerSec.toFixed(0)} | ${r.pushMBps.toFixed(1)} | ${r.ratio.toFixed(2)}x |`);
  w();
  w('`node bench/cluster_bench.js` (`--quick` for a smoke run) reproduces it.');
  w();
}

// ---------------------------------------------------------------- training across processes
const ct = read(path.join(__dirname, 'results', 'cluster_train.json'));
if (ct) {
  const wl = ct.workload;
  w('## Training across processes (bench/cluster_train.js)');
  w();
  w(`${ct.machine.cpu}, ${ct.machine.cores} cores, kernels ${ct.machine.isa}, BLAS for torch: ${ct.machine.blas}. W2: MLP 784-128-10, batch ${wl.batchSize}, plain SGD lr ${wl.lr},`);
  w(`${wl.epochs} epochs of ${wl.rows} Fashion-MNIST rows; medians of ${wl.repeats} runs. Cluster rows: shards x worker processes x threads per worker,`);
  w(`each worker a remote Trainer on its share of the rows, syncing its replica every ${wl.syncEvery} batches; samples/s over the wall time from`);
  w('every worker ready to the last done. DDP: PyTorch DistributedDataParallel, Gloo on loopback, one thread per process, batch 32 per process.');
  w();
  w('| run | samples/s | test accuracy | x DDP (2 processes) | x one gradvault process (2 threads) | syncs per worker |');
  w('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of ct.rows)
    w(`| ${r.name} | ${Math.round(r.samplesPerSec).toLocaleString('en-US')} | ${r.testAccuracy.toFixed(4)} | ${r.vsDdp2 ? r.vsDdp2.toFixed(2) + 'x' : ''} | ${r.vsOneProcess ? r.vsOneProcess.toFixed(2) + 'x' : ''} | ${r.syncs ? r.syncs.join(' / ') : ''} |`);
  w();
  w('`node bench/cluster_train.js --json bench/results/cluster_train.json` reproduces it (`--quick` for a smoke run; needs python3-torch and libopenblas0-pthread for the DDP rows).');
  w();
}

// ---------------------------------------------------------------- predict throughput
// bench/predict_bench.js (scripts/bench.sh runs it in a full run).
const pred = read(o.predict || path.join(__dirname, 'results', 'predict.json'));
if (pred) {
  const pm = pred.machine;
  const x = (v) => (v === undefined || v === null || !isFinite(v) ? '–' : `${v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toPrecision(2)}×`);
  w(`## Predict throughput (bench/predict_bench.js)${pred.options.quick ? ' (QUICK run: not for reporting)' : ''}`);
  w();
  w(`${pm.cpu}, ${pm.cpus} logical CPUs, kernels \`${pm.isa}\` (supported: ${pm.isas})${pm.isaForced ? `, forced by GRADVAULT_ISA=${pm.isaForced}` : ''}, Node ${pm.node}, ${pm.date.slice(0, 10)}; ` +
    `${pred.seconds.toFixed(0)} s, load average ${pm.loadStart} → ${pm.loadEnd}. Each contender calibrated to ≥ ${pred.options.repMs} ms per repetition, ` +
    `then ${pred.options.reps} round${pred.options.reps === 1 ? '' : 's'} of one repetition of every contender in rotating order; medians; ratios to the JS loop and to \`evaluate\` of the same run.` +
    `${pm.source ? ` Measured: ${pm.source}.` : ''}`);
  w();
  w('`predict(snapshot, model, rows, { threads })` on the whole set (a `Dataset`), with 1 thread and with all cores (the threads predict.cpp actually starts — at most one per 8192 rows — in brackets where fewer); ' +
    '`predictAsync` (one call in flight); predict on the rows\' plain JS form (Float32Array, array of `{ indices, values }`, `{ users, items }`: the conversion into a Dataset included), ' +
    'whole and in calls of 1 and 32 rows (the per-call cost); `evaluate` on the same model and rows (forward pass, loss and accuracy on one thread: the batched path that existed before); ' +
    'and a plain JavaScript loop computing the same outputs (probabilities and classes, P(y = +1) and labels, ratings) from `snapshot.get(...)`: the flat typed arrays read in place (row-major W, no transposed copy), ' +
    'sums held in locals (10 classes at once; 8 hidden units at a time over a row\'s listed nonzeros), zero inputs and zero ReLU outputs skipped, sparse rows over their nonzeros only, ' +
    'interleaved sums, no allocation per row (each workload\'s form is named below). Its classes are checked against predict\'s (the run fails on a disagreement that is not a tie).');
  w();
  for (const wl of pred.workloads) w(`- **${wl.model}** on ${wl.name}: ${wl.describe}. ${wl.checks ? `Check: ${wl.checks.text}.` : ''}`);
  w();
  w('| workload | contender | threads | rows/s | µs per call | × JS loop | × evaluate |');
  w('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const wl of pred.workloads)
    for (const r of wl.results) {
      const th = r.threadsUsed !== undefined && r.threadsUsed !== r.threads ? `${r.threads} (${r.threadsUsed})` : String(r.threads);
      w(`| ${wl.model} | ${r.name} | ${th} | ${num(r.rowsPerSec)} | ${r.usPerCall !== undefined ? r.usPerCall.toFixed(1) : ''} | ${r.kind === 'js' ? '1' : x(r.vsJs)} | ${r.kind === 'evaluate' ? '1' : x(r.vsEvaluate)} |`);
    }
  w();
  w('`node bench/predict_bench.js` reproduces it (`--quick` for a smoke run, `--workloads softmax,mlp,logistic,mf`, `--json FILE`).');
  w();
}

// ---------------------------------------------------------------- reproduce
w('## Reproduce');
w();
w('```');
w('npm run bench                      # builds what is missing, runs both suites, writes this file and bench/results/*.json');
w('bash scripts/bench.sh --smoke      # the quick CI version (writes bench/out/smoke/, not this file)');
w('build-bench/gv_bench_core --help   # the core suite alone: --sizes, --threads 1,2,4,...,64, --modes, --reps, --json');
w('node bench/js_bench.js --help      # the JS suite alone');
w('node bench/train_bench.js --help   # the training suite alone (W1-W3 beside the peers in bench/peers/)');
w('build-bench/cmake/gv_bench_train --data fashion --model softmax --threads 1,2,4,8,16   # the trainer without Node');
w('build-bench/cmake/gv_bench_train --data rcv1 --model logistic --batch 1 --lr 1 --modes atomic,hogwild --paths per-sample,generic   # issue 16: both batch-1 paths');
w('GRADVAULT_ISA=scalar npm run bench # the same with the scalar kernels');
w('```');
w();

if (o.analysis && fs.existsSync(o.analysis)) {
  w(fs.readFileSync(o.analysis, 'utf8').trim());
  w();
}

fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
fs.writeFileSync(o.out, lines.join('\n'));
console.log(`wrote ${o.out}`);
