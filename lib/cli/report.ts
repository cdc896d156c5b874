// gradvault train --report: a self-contained HTML page with the loss and
// test score per epoch.
import type { TrainProgress } from '../trainer';
import type { TrainOptions } from './train';
import { isa } from '../native';
import { score } from './data';
import { fmt } from './output';

export function svgLine(title: string, ys: number[], unit: string): string {
  const H = 220, B = 30, T = 24;
  const max = Math.max(...ys), min = Math.min(0, ...ys);
  const hi = fmt(max, max < 10 ? 3 : 0), lo = fmt(min, min < 10 ? 3 : 0);
  // room left of the axis for the wider y label (about 7 px a character at
  // 11 px): a fixed 60 px cut 13,753,203 samples/s to 3,753,203 in Chromium
  const L = Math.max(60, 12 + 7 * Math.max(hi.length, lo.length)), W = L + 420;
  const x = (i: number) => L + (ys.length === 1 ? (W - L - 10) / 2 : (i * (W - L - 10)) / (ys.length - 1));
  const y = (v: number) => T + (H - T - B) * (1 - (v - min) / (max - min || 1));
  const pts = ys.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">
<text x="${L}" y="14" font-size="13">${esc(title)}</text>
<line x1="${L}" y1="${H - B}" x2="${W - 10}" y2="${H - B}" stroke="#888"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#888"/>
<text x="${L - 4}" y="${y(max) + 4}" text-anchor="end">${hi}</text><text x="${L - 4}" y="${y(min) + 4}" text-anchor="end">${lo}</text>
<text x="${(L + W) / 2}" y="${H - 6}" text-anchor="middle">epoch (${esc(unit)})</text>
<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${pts}"/>
${ys.map((v, i) => `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="#1f77b4"><title>epoch ${i + 1}: ${v}</title></circle>`).join('')}
</svg>`;
}

export function htmlReport(model: string, o: TrainOptions, what: string, epochs: (TrainProgress & { test?: { accuracy?: number; rmse?: number; loss: number } })[], ev: { accuracy?: number; rmse?: number; loss: number }): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const rows = epochs.map((p) => `<tr><td>${p.epoch}</td><td>${fmt(p.loss, 4)}</td><td>${p.test ? score(p.test) : ''}</td><td>${fmt(p.samplesPerSec)}</td><td>${fmt(p.staleness.mean, 2)}</td></tr>`).join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>gradvault: ${esc(model)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>
<h1>gradvault training report</h1>
<p>${esc(model)} on ${esc(what)}; mode ${o.mode}, ${o.threads} threads, batch ${o.batch}, ${o.optimizer}; kernels ${isa().active}; ${new Date().toISOString()}</p>
<p>Final test ${esc(score(ev))}, test loss ${fmt(ev.loss, 4)}.</p>
${svgLine('training loss per epoch', epochs.map((p) => p.loss), 'mean loss')}
${svgLine('throughput per epoch', epochs.map((p) => p.samplesPerSec), 'samples/s')}
<table><tr><th>epoch</th><th>loss</th><th>test</th><th>samples/s</th><th>staleness</th></tr>
${rows}
</table></body></html>
`;
}
