'use strict';
// The training section of bench/RESULTS.md (from bench/train_bench.js's
// JSON) and its chart, an SVG file beside the report. Used by report.js
// (--train FILE); `node bench/train_report.js train.json OUT.md` renders it alone.
// Issue 16 (the per-sample path at batch 1, native/core/trainer/sample.h):
// its goals, the batch-1 table of the issue, the batch-32 rows beside an
// earlier run (opts.before: bench/results/train-before-issue16.json, the
// train.json of before the issue), and renderSample(): gv_bench_train's
// per-sample vs generic runs (bench/results/sample-{w1,w3,mf}.json).
const fs = require('node:fs');
const path = require('node:path');

const NAMES = {
  gradvault: 'gradvault',
  hand_sgd: 'hand-written C++ (-O3 -march=native, Hogwild)',
  plain_js: 'plain JavaScript',
  sab_hogwild_js: 'JS worker_threads Hogwild (SharedArrayBuffer)',
  torch_hogwild: 'PyTorch Hogwild (torch.multiprocessing)',
  sklearn_sgd: 'scikit-learn SGDClassifier',
};
const LABEL = {
  W1b1: 'W1: softmax, Fashion-MNIST, batch 1',
  W1b32: 'W1: softmax, Fashion-MNIST, batch 32',
  W2: 'W2: MLP 784-128-10, Fashion-MNIST, batch 32',
  W3: 'W3: sparse logistic, RCV1-like (200,000 rows), batch 32',
  W3b1: 'W3: sparse logistic, RCV1-like (200,000 rows), batch 1 (as scikit-learn updates)',
  W1acc: 'W1 accuracy run: softmax, batch 32, 5 epochs, lr 0.2 halved every epoch',
  W2acc: 'W2 accuracy run: MLP 784-128-10, batch 32, 15 epochs, lr 0.2 halved every 5',
};
const SAFE = ['atomic', 'locked', 'versioned', 'deterministic', 'averaging'];
// The batch-1 workloads of issue 16, as its table names them.
const ISSUE16 = [
  ['W1b1', 'W1 softmax, Fashion-MNIST, batch 1'],
  ['W3b1', 'W3 sparse logistic, batch 1'],
];

const num = (x) => (x === undefined || x === null || Number.isNaN(x) ? '–' : Math.round(x).toLocaleString('en-US'));
const f = (x, d = 2) => (x === undefined || x === null || Number.isNaN(x) ? '–' : Number(x).toFixed(d));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : '–');

// The chart is a generated result: it goes to bench/results/ (chartFile),
// linked from the report that lies beside that folder.
// opts.before: an earlier run's train.json (parsed) and opts.beforeFile its
// path, for the batch-32 rows' before / after; absent: the table says so.
function render(data, chartFile, reportDir = path.dirname(path.dirname(chartFile || '.')), opts = {}) {
  const out = [];
  const w = (s = '') => out.push(s);
  // leftCols: how many leading columns hold text (left-aligned).
  const table = (head, rows, leftCols = 3) => {
    w(`| ${head.join(' | ')} |`);
    w(`| ${head.map((_, i) => (i < leftCols ? '---' : '---:')).join(' | ')} |`);
    for (const r of rows) w(`| ${r.join(' | ')} |`);
    w();
  };
  const R = data.results;
  const find = (wl, peer, mode, t) => R.find((r) => r.workload === wl && r.peer === peer && (mode === undefined || r.mode === mode) && r.threads === t && !r.skipped);
  const batchOf = (wl) => (data.workloads && data.workloads[wl] ? data.workloads[wl].batch : undefined);
  // Updates lost by a gradvault run at batch 1: samples trained - the store's
  // pushes (train_bench.js records lostUpdates; older files only pushes).
  const lost = (r) => {
    if (!r) return undefined;
    if (typeof r.lostUpdates === 'number') return r.lostUpdates;
    return batchOf(r.workload) === 1 && typeof r.pushes === 'number' && typeof r.samples === 'number' ? r.samples - r.pushes : undefined;
  };
  const m = data.machine;
  w('## Training (issues 3 and 16): gradvault beside its peers');
  w();
  w(`Machine: ${m.cpu}, ${m.cores} hardware threads, kernels ${m.isa} (supported: ${m.supported.join(', ')}), Node ${m.node}; run ${data.date}${data.smoke ? ' (SMOKE: small data, 1 epoch)' : ''}.`);
  w('Every row is one training run in the same session; samples/s is training only (data loading and evaluation excluded), accuracy is on the test set after the last epoch.');
  w('gradvault runs through the public API (`new Trainer({ model, mode, threads, ... }).fit(train)`), native threads, every push through the store.');
  w();
  const workloads = [...new Set(R.map((r) => r.workload))];

  // goals
  w('### Goals');
  w();
  const goals = [];
  // Issue 16: the per-sample path at batch 1 (1 thread unless said).
  // Why a peer has no number: its skipped row's reason, else not run.
  const why = (wl, peer, t) => {
    const s = R.find((r) => r.workload === wl && r.peer === peer && r.threads === t && r.skipped);
    return s ? String(s.skipped).slice(0, 80) : 'not run';
  };
  const vs = (label, wl, mode, peer, want) => {
    const g = find(wl, 'gradvault', mode, 1), p = find(wl, peer, undefined, 1);
    if (g && p) goals.push([label, `≥ ${want}×`, ratio(g.samplesPerSec, p.samplesPerSec), g.samplesPerSec / p.samplesPerSec >= want ? 'met' : '**not met**']);
    else goals.push([label, `≥ ${want}×`, `– (${!g ? `gradvault ${mode}: not run` : `${NAMES[peer] || peer}: ${why(wl, peer, 1)}`})`, 'not measured']);
  };
  for (const [wl] of ISSUE16)
    for (const [mode, want] of [['atomic', 0.8], ['hogwild', 0.9]])
      vs(`(issue 16) ${wl} per thread (1 thread), ${mode} vs hand-written C++ (racy)`, wl, mode, 'hand_sgd', want);
  for (const mode of ['atomic', 'hogwild']) {
    vs(`(issue 16) W3b1 1 thread, ${mode} vs scikit-learn SGDClassifier`, 'W3b1', mode, 'sklearn_sgd', 1.5);
    vs(`(issue 16) W3b1 1 thread, ${mode} vs plain JavaScript`, 'W3b1', mode, 'plain_js', 3);
  }
  for (const mode of ['atomic', 'locked', 'deterministic']) {
    const a = find('W3b1', 'gradvault', mode, 1), b = find('W3b1', 'gradvault', mode, 2);
    const label = `(issue 16) W3b1 thread scaling (2 / 1), mode ${mode}, zero lost updates`;
    if (!a || !b) {
      goals.push([label, '≥ 1.8×, 0 lost', `– (gradvault ${mode} at ${!a ? 1 : 2} thread${!a ? '' : 's'}: not run)`, 'not measured']);
      continue;
    }
    const la = lost(a), lb = lost(b);
    const L = la === undefined || lb === undefined ? undefined : la + lb;
    const sc = b.samplesPerSec / a.samplesPerSec;
    goals.push([
      label,
      '≥ 1.8×, 0 lost',
      `${ratio(b.samplesPerSec, a.samplesPerSec)} (lost updates: ${L === undefined ? 'not recorded' : L.toLocaleString('en-US')})`,
      sc >= 1.8 && L === 0 ? 'met' : '**not met**',
    ]);
  }
  for (const wl of ['W1b32', 'W3']) {
    if (!workloads.includes(wl)) continue;
    for (const mode of SAFE) {
      const a = find(wl, 'gradvault', mode, 1), b = find(wl, 'gradvault', mode, 2);
      if (a && b) goals.push([`${wl} thread scaling (2 / 1), mode ${mode}, no lost update`, '≥ 1.8×', ratio(b.samplesPerSec, a.samplesPerSec), b.samplesPerSec / a.samplesPerSec >= 1.8 ? 'met' : '**not met**']);
    }
  }
  for (const [wl, what, want] of [
    ['W1b32', 'softmax, 5 epochs, constant lr', 0.84],
    ['W1b1', 'softmax, batch 1, 5 epochs, constant lr', 0.84],
    ['W1acc', 'softmax, 5 epochs, step schedule', 0.84],
    ['W2', 'MLP, 5 epochs, constant lr', 0.88],
    ['W2acc', 'MLP, 15 epochs, step schedule', 0.88],
  ]) {
    const g = R.filter((r) => r.workload === wl && r.peer === 'gradvault' && !r.skipped);
    if (!g.length) continue;
    const best = Math.max(...g.map((r) => r.testAccuracy));
    goals.push([`${wl} test accuracy (${what}; best mode)`, `≥ ${want}`, f(best, 4), best >= want ? 'met' : '**not met**']);
  }
  for (const peer of ['torch_hogwild', 'sklearn_sgd'])
    for (const wl of workloads) {
      const p = R.filter((r) => r.workload === wl && r.peer === peer && !r.skipped).sort((a, b) => b.samplesPerSec - a.samplesPerSec)[0];
      const g = R.filter((r) => r.workload === wl && r.peer === 'gradvault' && SAFE.includes(r.mode)).sort((a, b) => b.samplesPerSec - a.samplesPerSec)[0];
      if (p && g)
        goals.push([
          `${wl}: fastest safe gradvault (${g.mode}, ${g.threads}T) vs fastest ${peer} (${p.threads}T), samples/s (test accuracy)`,
          '> 1×',
          `${ratio(g.samplesPerSec, p.samplesPerSec)} (${f(g.testAccuracy, 3)} vs ${f(p.testAccuracy, 3)})`,
          g.samplesPerSec > p.samplesPerSec ? 'met' : '**not met**',
        ]);
    }
  table(['goal', 'target', 'measured', 'verdict'], goals);
  w('Lost updates: samples trained minus the store\'s `stats().pushes` (one push per sample at batch 1), both runs of the ratio together.');
  w();

  // Issue 16's table: batch 1, samples/s per thread at 1 thread.
  w('### Batch 1, samples/s per thread (1 thread): the table of issue 16');
  w();
  {
    const cell = (r, wl, peer) => (r ? num(r.samplesPerSec) : why(wl, peer, 1));
    const gv = (r, hand) => (r ? `${num(r.samplesPerSec)} (${ratio(r.samplesPerSec, hand && hand.samplesPerSec)} C++)` : 'not run');
    const rows = ISSUE16.map(([wl, label]) => {
      const hand = find(wl, 'hand_sgd', undefined, 1);
      return [
        label,
        cell(hand, wl, 'hand_sgd'),
        cell(find(wl, 'sklearn_sgd', undefined, 1), wl, 'sklearn_sgd'),
        cell(find(wl, 'plain_js', undefined, 1), wl, 'plain_js'),
        gv(find(wl, 'gradvault', 'atomic', 1), hand),
        gv(find(wl, 'gradvault', 'hogwild', 1), hand),
      ];
    });
    table(['workload', 'hand-written C++ (racy)', 'scikit-learn', 'plain JavaScript', 'gradvault atomic (×C++)', 'gradvault hogwild (×C++)'], rows, 1);
  }

  // The batch-32 paths (issue 16 must leave them as fast as before): this
  // run beside the train.json of before the issue (a different run).
  w('### Batch 32: this run vs before issue 16');
  w();
  {
    const B = opts.before;
    const bfile = opts.beforeFile ? path.relative(process.cwd(), path.resolve(opts.beforeFile)) : 'bench/results/train-before-issue16.json';
    const big = R.filter((r) => r.peer === 'gradvault' && !r.skipped && batchOf(r.workload) > 1);
    if (!B) {
      w(`Not available: no \`${bfile}\` (the train.json of before issue 16) beside this run's results.`);
      w();
    } else if (!big.length) {
      w('Not run: no batch-32 workload in this run.');
      w();
    } else {
      const bm = B.machine || {};
      const notes = [];
      if (bm.isa && m.isa && bm.isa !== m.isa) notes.push(`**kernels differ: ${bm.isa} then, ${m.isa} now** (\`GRADVAULT_ISA=${bm.isa} npm run bench\` compares like with like)`);
      if (bm.cpu && m.cpu && bm.cpu !== m.cpu) notes.push(`**CPU differs: ${bm.cpu} then**`);
      if (!!B.smoke !== !!data.smoke) notes.push(`**one of the runs is a smoke run (${B.smoke ? 'before' : 'this one'}): not comparable**`);
      w(`Before: \`${bfile}\` (run of ${B.date || '?'}, kernels ${bm.isa || '?'}, the committed results of before issue 16). ` +
        'Different runs on a shared, noisy 2-core machine: a few percent either way is noise, not a change. ' +
        `after / before > 1 means faster now.${notes.length ? ` ${notes.join('; ')}.` : ''}`);
      w();
      const bfind = (r) => (B.results || []).find((x) => x.workload === r.workload && x.peer === 'gradvault' && x.mode === r.mode && x.threads === r.threads && !x.skipped);
      const geo = {};
      const rows = big.map((r) => {
        const b = bfind(r);
        if (b && b.samplesPerSec > 0 && r.samplesPerSec > 0) (geo[r.workload] ??= []).push(Math.log(r.samplesPerSec / b.samplesPerSec));
        return [r.workload, r.mode, String(r.threads), b ? num(b.samplesPerSec) : 'not in before', num(r.samplesPerSec), b ? ratio(r.samplesPerSec, b.samplesPerSec) : '–', b ? `${f(b.testAccuracy, 4)} → ${f(r.testAccuracy, 4)}` : f(r.testAccuracy, 4)];
      });
      table(['workload', 'mode', 'threads', 'before samples/s', 'after samples/s', 'after / before', 'test accuracy before → after'], rows);
      const means = Object.entries(geo).map(([wl, l]) => `${wl} ${(Math.exp(l.reduce((a, x) => a + x, 0) / l.length)).toFixed(2)}× (${l.length} row${l.length === 1 ? '' : 's'})`);
      if (means.length) {
        w(`Geometric mean of after / before over the modes and thread counts: ${means.join(', ')}.`);
        w();
      }
    }
  }

  for (const wl of workloads) {
    const rows = R.filter((r) => r.workload === wl);
    w(`### ${LABEL[wl] || wl}`);
    w();
    const hand = { 1: find(wl, 'hand_sgd', undefined, 1), 2: find(wl, 'hand_sgd', undefined, 2) };
    // batch 1: the lost updates of each gradvault run (hogwild: its overlapping writes beside)
    const b1 = batchOf(wl) === 1;
    const lostCell = (r) => {
      if (r.peer !== 'gradvault' || r.skipped) return '–';
      const L = lost(r);
      const s = L === undefined ? 'not recorded' : L.toLocaleString('en-US');
      return r.mode === 'hogwild' && r.conflicts ? `${s} (racy: ${num(r.conflicts)} overlapping writes)` : s;
    };
    const body = rows.map((r) => {
      const one = r.peer === 'gradvault' ? find(wl, 'gradvault', r.mode, 1) : find(wl, r.peer, undefined, 1);
      const cells = [
        r.peer === 'gradvault' ? `**gradvault**` : NAMES[r.peer] || r.peer,
        r.peer === 'gradvault' ? r.mode : '–',
        String(r.threads),
        r.skipped ? r.skipped : num(r.samplesPerSec),
        r.skipped ? '–' : f(r.wallSeconds ?? r.seconds),
        r.skipped ? '–' : f(r.testAccuracy, 4),
        r.skipped ? '–' : ratio(r.samplesPerSec, hand[r.threads]?.samplesPerSec),
        r.threads === 2 && one && !r.skipped ? ratio(r.samplesPerSec, one.samplesPerSec) : '',
        r.trainRows && r.samples && r.epochs && r.trainRows * r.epochs === r.samples && data.workloads[wl] && r.peer !== 'gradvault' && r.trainRows < (wl === 'W3' ? 200000 : 60000) ? `on ${num(r.trainRows)} rows` : '',
      ];
      if (b1) cells.splice(8, 0, lostCell(r));
      return cells;
    });
    const head = ['trainer', 'mode', 'threads', 'samples/s', 'wall s', 'test accuracy', '× hand C++ (same threads)', '2 / 1 threads', 'note'];
    if (b1) head.splice(8, 0, 'lost updates');
    table(head, body);
  }
  if (chartFile) {
    fs.mkdirSync(path.dirname(chartFile), { recursive: true });
    fs.writeFileSync(chartFile, chart(data));
    w(`![samples/s per workload, 2 threads (log scale)](${path.relative(reportDir, chartFile)})`);
    w();
  }
  return out;
}

// A horizontal bar chart, log scale: per workload the fastest safe gradvault
// mode, hogwild, and each peer at its best thread count.
function chart(data) {
  const R = data.results.filter((r) => !r.skipped && r.samplesPerSec > 0);
  const workloads = [...new Set(R.map((r) => r.workload))];
  const series = [
    ['gradvault (best safe mode)', '#1f77b4', (wl) => best(R.filter((r) => r.workload === wl && r.peer === 'gradvault' && SAFE.includes(r.mode)))],
    ['gradvault hogwild', '#aec7e8', (wl) => best(R.filter((r) => r.workload === wl && r.peer === 'gradvault' && r.mode === 'hogwild'))],
    ['hand-written C++', '#2ca02c', (wl) => best(R.filter((r) => r.workload === wl && r.peer === 'hand_sgd'))],
    ['plain JS', '#ff7f0e', (wl) => best(R.filter((r) => r.workload === wl && r.peer === 'plain_js'))],
    ['JS SAB Hogwild', '#ffbb78', (wl) => best(R.filter((r) => r.workload === wl && r.peer === 'sab_hogwild_js'))],
    ['PyTorch Hogwild', '#d62728', (wl) => best(R.filter((r) => r.workload === wl && r.peer === 'torch_hogwild'))],
    ['scikit-learn', '#9467bd', (wl) => best(R.filter((r) => r.workload === wl && r.peer === 'sklearn_sgd'))],
  ];
  function best(rs) {
    return rs.sort((a, b) => b.samplesPerSec - a.samplesPerSec)[0];
  }
  const barH = 14, gap = 4, groupGap = 18, left = 230, width = 560, top = 30;
  const maxV = Math.max(...R.map((r) => r.samplesPerSec));
  const minV = 1000;
  const x = (v) => (Math.log10(Math.max(v, minV)) - Math.log10(minV)) / (Math.log10(maxV * 1.5) - Math.log10(minV)) * width;
  let y = top;
  const parts = [];
  for (const wl of workloads) {
    parts.push(`<text x="4" y="${y + 10}" font-weight="bold">${LABEL[wl] || wl}</text>`);
    y += 16;
    for (const [name, color, pick] of series) {
      const r = pick(wl);
      if (!r) continue;
      const v = r.samplesPerSec;
      parts.push(`<text x="${left - 6}" y="${y + 11}" text-anchor="end">${name} (${r.threads}T)</text>`);
      parts.push(`<rect x="${left}" y="${y}" width="${x(v).toFixed(1)}" height="${barH}" fill="${color}"/>`);
      parts.push(`<text x="${left + x(v) + 4}" y="${y + 11}">${Math.round(v).toLocaleString('en-US')}</text>`);
      y += barH + gap;
    }
    y += groupGap;
  }
  const ticks = [];
  for (let v = minV; v <= maxV * 1.5; v *= 10) {
    ticks.push(`<line x1="${left + x(v)}" y1="${top - 6}" x2="${left + x(v)}" y2="${y - groupGap}" stroke="#ddd"/>`);
    ticks.push(`<text x="${left + x(v)}" y="${top - 10}" text-anchor="middle" fill="#666">${v >= 1e6 ? v / 1e6 + 'M' : v / 1e3 + 'k'}</text>`);
  }
  const H = y + 10, W = left + width + 90;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="4" y="12" font-size="12">Training throughput, samples/s (log scale; best thread count of 1 and 2)</text>
${ticks.join('\n')}
${parts.join('\n')}
</svg>
`;
}

// gv_bench_train --paths per-sample,generic (scripts/bench.sh, step 4b): for
// each data set a JSON array (one element per mode x threads x path) in
// dir/sample-{w1,w3,mf}.json, or {"error": ...} where the run failed.
const SAMPLE = [
  ['w1', 'W1: softmax, Fashion-MNIST, batch 1'],
  ['w3', 'W3: sparse logistic, RCV1-like (the rows of W3), batch 1'],
  ['mf', 'matrix factorization, synthetic ratings, batch 1'],
];
function renderSample(dir) {
  const out = [];
  const w = (s = '') => out.push(s);
  w('## Per-sample path vs the generic path (gv_bench_train, same run)');
  w();
  w('The native trainer without Node (`gv_bench_train --paths per-sample,generic`): each mode and thread count trained once with the fused per-sample path of issue 16 ' +
    '(`native/core/trainer/sample.h`: the forward pass reads the store in place, the update is written at once under the mode\'s protocol) and once with the generic path ' +
    '(snapshot, gradient, `Store::push`), one after the other in the same process, same data, seed and learning rate: before and after in one run. ' +
    'samples/s is the median of the repetitions, test numbers are from the last one. Every run is checked to count one push per sample (`stats().pushes` = samples; ' +
    'gv_bench_train exits with an error otherwise), so every row shown lost no update by that count (hogwild\'s racy writes may still overwrite each other). ' +
    'Modes atomic, locked, hogwild and deterministic have a per-sample path (mf: not deterministic); versioned and averaging take the generic path either way.');
  w();
  for (const [key, label] of SAMPLE) {
    const file = path.join(dir, `sample-${key}.json`);
    const rel = path.relative(process.cwd(), path.resolve(file)) || file;
    w(`### ${label}`);
    w();
    let rows;
    try {
      rows = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
    } catch (e) {
      w(`Not readable: \`${rel}\`: ${e.message}.`);
      w();
      continue;
    }
    if (rows === undefined) {
      w(`Not run (no \`${rel}\`: \`npm run bench\` writes it; \`BENCH_SAMPLE=0\` leaves it out).`);
      w();
      continue;
    }
    if (!Array.isArray(rows)) {
      w(`Failed: ${rows.error || 'not a gv_bench_train --json file'}.`);
      w();
      continue;
    }
    if (!rows.length) {
      w(`Not run (\`${rel}\` has no rows).`);
      w();
      continue;
    }
    const r0 = rows[0];
    const reg = r0.model === 'mf';
    const when = fs.statSync(file).mtime.toISOString().slice(0, 16).replace('T', ' ');
    w(`\`--data ${r0.data} --model ${r0.model} --batch ${r0.batch} --lr ${r0.lr} --epochs ${r0.epochs} --reps ${r0.reps}\`, kernels ${r0.isa}; raw data \`${rel}\` (written ${when} UTC).`);
    w();
    const get = (mode, t, p) => rows.find((r) => r.mode === mode && r.threads === t && r.path === p);
    const keys = [];
    for (const r of rows) if (!keys.some(([mo, t]) => mo === r.mode && t === r.threads)) keys.push([r.mode, r.threads]);
    const body = keys.map(([mode, t]) => {
      const ps = get(mode, t, 'per-sample'), ge = get(mode, t, 'generic');
      const ps1 = get(mode, 1, 'per-sample'), ge1 = get(mode, 1, 'generic');
      const test = (r) => (r ? (reg ? f(r.rmse, 4) : f(r.testAccuracy, 4)) : '–');
      return [
        mode,
        String(t),
        ps ? num(ps.samplesPerSec) : '–',
        ge ? num(ge.samplesPerSec) : '–',
        ratio(ps && ps.samplesPerSec, ge && ge.samplesPerSec),
        t !== 1 && ps && ps1 ? ratio(ps.samplesPerSec, ps1.samplesPerSec) : '',
        t !== 1 && ge && ge1 ? ratio(ge.samplesPerSec, ge1.samplesPerSec) : '',
        test(ps),
        test(ge),
      ];
    });
    const what = reg ? 'test RMSE' : 'test accuracy';
    const head = ['mode', 'threads', 'per-sample samples/s', 'generic samples/s', 'per-sample / generic', '2 / 1 threads, per-sample', '2 / 1 threads, generic', `${what}, per-sample`, `${what}, generic`];
    w(`| ${head.join(' | ')} |`);
    w(`| ${head.map((_, i) => (i < 1 ? '---' : '---:')).join(' | ')} |`);
    for (const r of body) w(`| ${r.join(' | ')} |`);
    w();
  }
  return out;
}

module.exports = { render, renderSample };

if (require.main === module) {
  const [input, outFile] = process.argv.slice(2);
  const data = JSON.parse(fs.readFileSync(input, 'utf8'));
  const reportDir = path.dirname(outFile);
  const chartFile = path.join(reportDir, 'results', 'train-chart.svg');
  const beforeFile = path.join(path.dirname(input), 'train-before-issue16.json');
  const before = fs.existsSync(beforeFile) ? JSON.parse(fs.readFileSync(beforeFile, 'utf8')) : null;
  const lines = [...render(data, chartFile, reportDir, { before, beforeFile }), ...renderSample(path.dirname(input))];
  fs.writeFileSync(outFile, lines.join('\n') + '\n');
  console.log(`wrote ${outFile}`);
}
