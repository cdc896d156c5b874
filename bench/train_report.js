'use strict';
// The training section of bench/RESULTS.md (from bench/train_bench.js's
// JSON) and its chart, an SVG file beside the report. Used by report.js
// (--train FILE); `node bench/train_report.js train.json OUT.md` renders it alone.
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

const num = (x) => (x === undefined || x === null || Number.isNaN(x) ? '–' : Math.round(x).toLocaleString('en-US'));
const f = (x, d = 2) => (x === undefined || x === null || Number.isNaN(x) ? '–' : Number(x).toFixed(d));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : '–');

// The chart is a generated result: it goes to bench/results/ (chartFile),
// linked from the report that lies beside that folder.
function render(data, chartFile, reportDir = path.dirname(path.dirname(chartFile || '.'))) {
  const out = [];
  const w = (s = '') => out.push(s);
  const table = (head, rows) => {
    w(`| ${head.join(' | ')} |`);
    w(`| ${head.map((_, i) => (i < 3 ? '---' : '---:')).join(' | ')} |`);
    for (const r of rows) w(`| ${r.join(' | ')} |`);
    w();
  };
  const R = data.results;
  const find = (wl, peer, mode, t) => R.find((r) => r.workload === wl && r.peer === peer && (mode === undefined || r.mode === mode) && r.threads === t && !r.skipped);
  const m = data.machine;
  w('## Training (issue 3): gradvault beside its peers');
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
  for (const wl of ['W1b32', 'W3']) {
    if (!workloads.includes(wl)) continue;
    for (const mode of SAFE) {
      const a = find(wl, 'gradvault', mode, 1), b = find(wl, 'gradvault', mode, 2);
      if (a && b) goals.push([`${wl} thread scaling (2 / 1), mode ${mode}, no lost update`, '≥ 1.8×', ratio(b.samplesPerSec, a.samplesPerSec), b.samplesPerSec / a.samplesPerSec >= 1.8 ? 'met' : '**not met**']);
    }
  }
  if (workloads.includes('W1b1')) {
    const hand = find('W1b1', 'hand_sgd', undefined, 1), js = find('W1b1', 'plain_js', undefined, 1);
    if (hand && js) goals.push(['(context) W1 batch 1: hand-written C++ vs plain JavaScript', '–', ratio(hand.samplesPerSec, js.samplesPerSec), '']);
    for (const mode of ['atomic', 'hogwild']) {
      const g = find('W1b1', 'gradvault', mode, 1);
      if (g && hand) goals.push([`W1 batch 1, per thread, ${mode} vs hand-written C++`, '≥ 0.8×', ratio(g.samplesPerSec, hand.samplesPerSec), g.samplesPerSec / hand.samplesPerSec >= 0.8 ? 'met' : '**not met**']);
      if (g && js) goals.push([`W1 batch 1, per thread, ${mode} vs plain JavaScript`, '≥ 20×', ratio(g.samplesPerSec, js.samplesPerSec), g.samplesPerSec / js.samplesPerSec >= 20 ? 'met' : '**not met**']);
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

  for (const wl of workloads) {
    const rows = R.filter((r) => r.workload === wl);
    w(`### ${LABEL[wl] || wl}`);
    w();
    const hand = { 1: find(wl, 'hand_sgd', undefined, 1), 2: find(wl, 'hand_sgd', undefined, 2) };
    const body = rows.map((r) => {
      const one = r.peer === 'gradvault' ? find(wl, 'gradvault', r.mode, 1) : find(wl, r.peer, undefined, 1);
      return [
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
    });
    table(['trainer', 'mode', 'threads', 'samples/s', 'wall s', 'test accuracy', '× hand C++ (same threads)', '2 / 1 threads', 'note'], body);
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

module.exports = { render };

if (require.main === module) {
  const [input, outFile] = process.argv.slice(2);
  const data = JSON.parse(fs.readFileSync(input, 'utf8'));
  const chartFile = path.join(path.dirname(outFile), 'results', 'train-chart.svg');
  fs.writeFileSync(outFile, render(data, chartFile, path.dirname(outFile)).join('\n') + '\n');
  console.log(`wrote ${outFile}`);
}
