// gradvault train --report: one self-contained HTML page (no script, no
// style sheet, font or image fetched from anywhere) with the run's settings,
// its result, three charts drawn as inline SVG (loss, accuracy or rmse, and
// throughput per epoch, with real axes) and the per-epoch numbers.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Dataset } from '../data';
import type { TrainProgress } from '../trainer';
import type { TrainOptions } from './train';
import { isa } from '../native';
import { fmt } from './output';

/** What `evaluate` returns that the report shows. */
export interface Score {
  loss: number;
  accuracy?: number;
  rmse?: number;
}

/** One epoch as train.ts records it: the progress, the test set's score and the train sample's. */
export type ReportEpoch = TrainProgress & { test?: Score; train?: Score };

/** The rows the per-epoch train score is taken on, at most. */
export const TRAIN_EVAL_ROWS = 10_000;
/**
 * The train rows scored each epoch: the whole set up to TRAIN_EVAL_ROWS
 * rows, else its first TRAIN_EVAL_ROWS rows (a native copy: take it once
 * per run; the loaders' sets are not sorted by label).
 */
export function trainSample(d: Dataset): Dataset {
  return d.rows <= TRAIN_EVAL_ROWS ? d : d.slice(0, TRAIN_EVAL_ROWS);
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A "nice" step near span / target: 1, 2 or 5 times a power of ten. */
export function niceStep(span: number, target: number): number {
  const raw = span / Math.max(1, target);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** Digits after the point that a tick step needs (0.05: 2, 0.5: 1, 5: 0). */
export function stepDigits(step: number): number {
  return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
}

/**
 * Axis ticks covering [lo, hi]: multiples of a nice step, the first at or
 * below lo, the last at or above hi; at least 3 ticks (a flat series gets a
 * band around its value).
 */
export function niceTicks(lo: number, hi: number, target = 5): { ticks: number[]; step: number; digits: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.05;
    [lo, hi] = [lo - pad, hi + pad];
  }
  const step = niceStep(hi - lo, target);
  const a = Math.floor(lo / step + 1e-9), b = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let k = a; k <= b; k++) ticks.push(k * step);
  while (ticks.length < 3) ticks.push(ticks[ticks.length - 1] + step);
  return { ticks, step, digits: stepDigits(step) };
}

/** Epoch ticks on 1..n: every epoch up to 12, else 1 and the multiples of a nice integer step. */
export function epochTicks(n: number): number[] {
  if (n <= 12) return Array.from({ length: Math.max(1, n) }, (_, i) => i + 1);
  const step = Math.max(1, Math.round(niceStep(n - 1, 8)));
  const t = [1];
  for (let e = step; e <= n; e += step) if (e > 1) t.push(e);
  return t;
}

export interface Series {
  /** The legend's text ("test accuracy"). */
  name: string;
  /** One value per epoch (epoch i + 1); a non-finite value is left out. */
  ys: number[];
  color: string;
  dashed?: boolean;
}

export interface ChartSpec {
  title: string;
  /** The y axis's quantity and unit: "loss (mean per row)". */
  yTitle: string;
  series: Series[];
  /** Start the y axis at 0 (throughput). */
  zero?: boolean;
  /** How a value reads in a point's tooltip (default: 4 significant digits). */
  value?: (v: number) => string;
}

/** Rough width of a label at 11 px sans-serif (digits about 6.2 px, commas and points 3 px); on the wide side. */
const textWidth = (s: string) => [...s].reduce((w, c) => w + (/[.,:;il1 ]/.test(c) ? 3.5 : /[mwMW%]/.test(c) ? 10 : 7), 0);

/**
 * A line chart per epoch as an SVG element: a title, the y axis's title
 * (its unit) above the axis, a legend where there is more than one series,
 * y ticks at nice values with gridlines, one x tick per epoch (a nice subset
 * past 12 epochs), and each series as a polyline with a dot per epoch (the
 * dot's tooltip gives the exact value).
 */
export function svgChart(c: ChartSpec): string {
  const W = 480, H = 300, T = 58, B = 48, R = 18;
  const n = Math.max(0, ...c.series.map((s) => s.ys.length));
  const finite = c.series.flatMap((s) => s.ys.filter(Number.isFinite));
  let lo = finite.length ? Math.min(...finite) : 0, hi = finite.length ? Math.max(...finite) : 1;
  if (c.zero) lo = Math.min(0, lo);
  const yt = niceTicks(lo, hi, 5);
  const label = (v: number) => fmt(Math.abs(v) < yt.step * 1e-9 ? 0 : v, yt.digits);
  const labels = yt.ticks.map(label);
  // room left of the axis for the widest y label
  const L = Math.round(18 + Math.max(...labels.map(textWidth)));
  const y0 = yt.ticks[0], y1 = yt.ticks[yt.ticks.length - 1];
  const Y = (v: number) => T + (H - T - B) * (1 - (v - y0) / (y1 - y0));
  const pad = 12, inner = W - L - R - 2 * pad;
  const X = (e: number) => L + pad + (n <= 1 ? inner / 2 : ((e - 1) * inner) / (n - 1));
  const value = c.value ?? ((v: number) => v.toPrecision(4));
  const f1 = (v: number) => v.toFixed(1);
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="11" fill="#333" role="img" aria-label="${esc(c.title)}">`);
  o.push(`<text class="title" x="10" y="20" font-size="14" font-weight="600" fill="#222">${esc(c.title)}</text>`);
  o.push(`<text class="ytitle" x="10" y="${T - 14}" fill="#555">${esc(c.yTitle)}</text>`);
  // legend: right-aligned on the y title's line
  if (c.series.length > 1) {
    const items = c.series.map((s) => ({ s, w: 30 + textWidth(s.name) }));
    let x = W - R - items.reduce((a, i) => a + i.w + 10, -10);
    o.push('<g class="legend">');
    for (const { s, w } of items) {
      const ly = T - 18;
      o.push(
        `<g class="legend-item" data-series="${esc(s.name)}"><line x1="${f1(x)}" y1="${ly}" x2="${f1(x + 22)}" y2="${ly}" stroke="${s.color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>` +
          `<circle cx="${f1(x + 11)}" cy="${ly}" r="3.5" fill="${s.color}" stroke="#fff" stroke-width="1"/><text x="${f1(x + 28)}" y="${ly + 4}">${esc(s.name)}</text></g>`,
      );
      x += w + 10;
    }
    o.push('</g>');
  }
  // gridlines and y ticks
  yt.ticks.forEach((t, i) => {
    const y = f1(Y(t));
    o.push(`<line class="grid" x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#e6e6e6"/>`);
    o.push(`<line class="tick" x1="${L - 4}" y1="${y}" x2="${L}" y2="${y}" stroke="#888"/>`);
    o.push(`<text class="ytick" x="${L - 7}" y="${f1(Y(t) + 4)}" text-anchor="end">${labels[i]}</text>`);
  });
  // x ticks: one per epoch (a subset past 12)
  const xticks = epochTicks(n);
  for (const e of xticks) {
    const x = f1(X(e));
    o.push(`<line class="grid" x1="${x}" y1="${T}" x2="${x}" y2="${H - B}" stroke="#f0f0f0"/>`);
    o.push(`<line class="tick" x1="${x}" y1="${H - B}" x2="${x}" y2="${H - B + 4}" stroke="#888"/>`);
    o.push(`<text class="xtick" x="${x}" y="${H - B + 16}" text-anchor="middle">${e}</text>`);
  }
  o.push(`<line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#888"/>`);
  o.push(`<line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#888"/>`);
  o.push(`<text class="xtitle" x="${f1(L + (W - R - L) / 2)}" y="${H - 8}" text-anchor="middle" fill="#555">epoch (passes over the training rows)</text>`);
  // the series, the first drawn last (on top)
  for (const s of [...c.series].reverse()) {
    const pts = s.ys.map((v, i) => [i + 1, v] as const).filter(([, v]) => Number.isFinite(v));
    o.push(`<g class="series" data-series="${esc(s.name)}">`);
    o.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2.5" stroke-linejoin="round"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${pts.map(([e, v]) => `${f1(X(e))},${f1(Y(v))}`).join(' ')}"/>`);
    for (const [e, v] of pts) o.push(`<circle cx="${f1(X(e))}" cy="${f1(Y(v))}" r="3.5" fill="${s.color}" stroke="#fff" stroke-width="1"><title>epoch ${e}: ${esc(s.name)} ${esc(value(v))}</title></circle>`);
    o.push('</g>');
  }
  o.push('</svg>');
  return o.join('\n');
}

/** What the report is about, beside the epochs and the final score. */
export interface ReportRun {
  /** The model with its options: describeModel's text ("mlp (hidden [128], ...)"). */
  model: string;
  /** Its kind, for the page's title. */
  kind: string;
  /** The data set in words. */
  what: string;
  train: Dataset;
  test: Dataset;
  options: TrainOptions;
  /** The learning rate used (the flag's or the model's default). */
  lr: number;
}

const BLUE = '#1f6fb4', ORANGE = '#e8710a', GREEN = '#2a9d4b';

function version(): string | undefined {
  // lib/cli or dist/cli: the package's root is two folders up either way
  try {
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

/** The report page: a complete HTML document with nothing to fetch. */
export function htmlReport(run: ReportRun, epochs: ReportEpoch[], ev: Score): string {
  const o = run.options;
  const regression = ev.accuracy === undefined;
  const metric = regression ? 'rmse' : 'accuracy';
  const pick = (s: Score | undefined) => (s ? (regression ? s.rmse : s.accuracy) : undefined) ?? NaN;
  const hasTrain = epochs.some((p) => p.train);
  const sampleRows = Math.min(run.train.rows, TRAIN_EVAL_ROWS);
  const trainNote = !hasTrain
    ? `No train ${metric} was recorded for this run.`
    : sampleRows < run.train.rows
      ? `Train ${metric} is scored on the first ${fmt(sampleRows)} of the ${fmt(run.train.rows)} training rows, with the parameters at the end of each epoch.`
      : `Train ${metric} is scored on all ${fmt(run.train.rows)} training rows, with the parameters at the end of each epoch.`;
  const n4 = (v: number | undefined) => (v === undefined ? '' : fmt(v, 4));
  const last = epochs[epochs.length - 1];
  const ver = version();
  const date = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

  const settings: [string, string][] = [
    ['model', run.model],
    ['data', run.what],
    ['rows', `${fmt(run.train.rows)} train, ${fmt(run.test.rows)} test`],
    ['features', fmt(run.train.features)],
    ['mode', o.mode],
    ['threads', String(o.threads)],
    ['batch', String(o.batch)],
    ['optimizer', o.optimizer + (o.momentum !== undefined ? ` (momentum ${o.momentum})` : '')],
    ['learning rate', String(run.lr)],
    ...((o as { standardize?: boolean }).standardize ? [['features standardized', "the train set's mean and standard deviation"] as [string, string]] : []),
    ['epochs', last && last.epoch < o.epochs ? `${last.epoch} of ${o.epochs} (stopped early)` : String(o.epochs)],
    ['seed', String(o.seed)],
    ...(o.resume ? [['resumed from', o.resume] as [string, string]] : []),
    ['kernels', isa().active],
    ...(ver ? [['gradvault', ver] as [string, string]] : []),
    ['date', date],
  ];

  const percent = (v: number) => v * 100;
  const accChart = svgChart(
    regression
      ? {
          title: 'RMSE per epoch (lower is better)',
          yTitle: 'rmse (label units)',
          series: [
            { name: 'train rmse', ys: epochs.map((p) => pick(p.train)), color: BLUE },
            { name: 'test rmse', ys: epochs.map((p) => pick(p.test)), color: ORANGE, dashed: true },
          ],
          value: (v) => fmt(v, 4),
        }
      : {
          title: 'Accuracy per epoch',
          yTitle: 'accuracy (% of rows right)',
          series: [
            { name: 'train accuracy', ys: epochs.map((p) => percent(pick(p.train))), color: BLUE },
            { name: 'test accuracy', ys: epochs.map((p) => percent(pick(p.test))), color: ORANGE, dashed: true },
          ],
          value: (v) => `${fmt(v, 2)} %`,
        },
  );
  const lossChart = svgChart({
    title: 'Loss per epoch',
    yTitle: 'loss (mean per row)',
    series: [
      { name: 'training loss', ys: epochs.map((p) => p.loss), color: BLUE },
      { name: 'test loss', ys: epochs.map((p) => p.test?.loss ?? NaN), color: ORANGE, dashed: true },
    ],
    value: (v) => fmt(v, 4),
  });
  const speedChart = svgChart({
    title: 'Throughput per epoch',
    yTitle: 'samples/s (rows trained per second)',
    series: [{ name: 'samples/s', ys: epochs.map((p) => p.samplesPerSec), color: GREEN }],
    zero: true,
    value: (v) => `${fmt(v)} samples/s`,
  });

  const head = ['epoch', 'train loss', `train ${regression ? 'rmse' : 'acc'}`, 'test loss', `test ${regression ? 'rmse' : 'acc'}`, 'samples/s', 'staleness'];
  const rows = epochs.map((p) => [String(p.epoch), fmt(p.loss, 4), n4(p.train && pick(p.train)), n4(p.test?.loss), n4(p.test && pick(p.test)), fmt(p.samplesPerSec), fmt(p.staleness.mean, 2)]);
  const cells = (r: string[], tag: string) => `<tr>${r.map((c) => `<${tag}>${esc(c)}</${tag}>`).join('')}</tr>`;
  const tests = epochs.map((p) => pick(p.test));
  const best = tests.reduce((b, v, i) => (Number.isFinite(v) && (b < 0 || (regression ? v < tests[b] : v > tests[b])) ? i : b), -1);
  const result: [string, string][] = [
    [`test ${metric}`, n4(pick(ev))],
    ['test loss', n4(ev.loss)],
    ...(last?.train ? [[`train ${metric} (last epoch)`, n4(pick(last.train))] as [string, string]] : []),
    ...(last ? [['training loss (last epoch)', n4(last.loss)] as [string, string]] : []),
    ...(best >= 0 ? [[`best test ${metric}`, `${n4(tests[best])} (epoch ${epochs[best].epoch})`] as [string, string]] : []),
    ...(last ? [['wall time', `${fmt(last.seconds, 2)} s`] as [string, string]] : []),
    ...(last ? [['mean samples/s', fmt(last.samples / last.seconds)] as [string, string]] : []),
  ];
  const big = regression ? fmt(ev.rmse!, 4) : `${fmt(ev.accuracy! * 100, 2)} %`;

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>gradvault: ${esc(run.kind)}</title>
<style>
body{font-family:system-ui,sans-serif;color:#222;margin:0 auto;padding:1.2em 1.5em 2em;max-width:1040px;line-height:1.4}
h1{font-size:1.6em;margin:.2em 0 .1em}
.lead{color:#555;margin:0 0 1em}
.top{display:flex;flex-wrap:wrap;gap:16px;align-items:stretch;margin-bottom:16px}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:10px 14px;background:#fff}
.result{flex:1 1 300px}
.result .label{color:#555;font-size:13px;margin-top:4px}
.result .big{font-size:2.6em;font-weight:600;color:${ORANGE};line-height:1.15;margin-bottom:6px}
.result table{width:100%}
.result th{text-align:left;color:#555;font-weight:500;padding:3px 10px 3px 0}
.result td{text-align:right;padding:3px 0;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;font-size:13px}
.settings{flex:2 1 480px}
.settings th{text-align:left;color:#555;font-weight:500;padding:3px 14px 3px 0;white-space:nowrap;vertical-align:top}
.settings td{padding:3px 0;overflow-wrap:anywhere}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(494px,1fr));gap:16px;align-items:start}
.grid figure{margin:0;padding:6px;border:1px solid #e3e3e3;border-radius:6px;line-height:0;display:flex;justify-content:center}
.grid .wide{grid-column:1/-1}
.epochs h2{font-size:14px;margin:6px 4px 8px}
table.perepoch{width:100%}
table.perepoch th,table.perepoch td{border-bottom:1px solid #eee;padding:4px 6px;text-align:right;font-variant-numeric:tabular-nums}
table.perepoch td{white-space:nowrap}
table.perepoch th{border-bottom:1px solid #bbb;font-weight:600;vertical-align:bottom}
.note{color:#666;font-size:12px;margin:8px 4px 0}
footer{color:#777;font-size:12px;margin-top:1.5em}
</style></head><body>
<h1>gradvault training report</h1>
<p class="lead">${esc(run.model)} on ${esc(run.what)}: mode ${esc(o.mode)}, ${o.threads} threads, batch ${o.batch}, ${esc(o.optimizer)} lr ${run.lr}</p>
<div class="top">
<div class="settings card"><table><tbody>
${settings.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('\n')}
</tbody></table></div>
<div class="result card"><div class="label">final test ${metric}</div><div class="big">${big}</div>
<table><tbody>
${result.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('\n')}
</tbody></table></div>
</div>
<div class="grid">
<figure>${lossChart}</figure>
<figure>${accChart}</figure>
<figure>${speedChart}</figure>
<div class="epochs card${epochs.length > 10 ? ' wide' : ''}"><h2>Per epoch</h2>
<table class="perepoch">
${cells(head, 'th')}
${rows.map((r) => cells(r, 'td')).join('\n')}
</table>
<p class="note">Training loss: the mean over the epoch's batches as they were trained. ${esc(trainNote)} Staleness: the mean number of store versions between a batch's read and its push.</p>
</div>
</div>
<footer>Written by gradvault${ver ? ` ${esc(ver)}` : ''} on ${esc(date)}. A single self-contained file: no script, and nothing loaded from anywhere.</footer>
</body></html>
`;
}
