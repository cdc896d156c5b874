// 93: the page `gradvault train --report` writes, opened in a real browser
// (headless Chromium through puppeteer-core, issue 14): it loads with no
// console error and no page error, makes no request but for its own file
// (it is self-contained), shows the title, the run's settings, its result
// and the per-epoch table, and draws three charts with real axes (issue 15
// item 7): loss (train and test), accuracy (train and test; rmse for a
// regression model) and throughput per epoch, each with one x tick per epoch
// (a subset past 12), 3 or more nice y ticks, a legend, one vertex per epoch
// per series where the ticks put its value, and labels inside the chart.
//
// Needs Debian's chromium (CI installs it; CHROMIUM names another binary).
// Without it the suite fails under CI and is skipped, saying why, elsewhere.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { svgChart } from '../lib/cli/report';

jest.setTimeout(60_000);

// the browser-side callbacks run in the page, where these exist; test/ has no DOM types
declare const document: any;
declare const performance: { getEntriesByType(type: string): { name: string }[] };

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
const missing = fs.existsSync(chromium) ? null : `no Chromium at ${chromium} (apt-get install chromium, or set CHROMIUM to one)`;
if (missing && !process.env.CI) process.stderr.write(`test/93 skipped: ${missing}\n`);
const maybe = missing && !process.env.CI ? describe.skip : describe;

interface Score { loss: number; accuracy?: number; rmse?: number }
interface EpochEvent { event: 'epoch'; epoch: number; loss: number; samplesPerSec: number; staleness: { mean: number }; test: Score }
interface DoneEvent { event: 'done'; test: Score }

/** What the report prints for a number (lib/cli/output.ts fmt). */
const fmt = (x: number, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** Each chart as the browser laid it out. */
interface Chart {
  width: number;
  height: number;
  shown: { width: number; height: number };
  title: string;
  texts: { text: string; x: number; y: number; right: number; bottom: number }[];
  curves: { tag: string; length: number; points: [number, number][] }[];
  axes: number;
  dots: number;
  /** x tick labels (left to right) and their x; y tick labels (bottom to top) and the y of their tick mark */
  xticks: { text: string; x: number; right: number; at: number }[];
  yticks: { text: string; at: number }[];
  legend: string[];
  series: { name: string; points: [number, number][]; dots: number }[];
}
function charts(page: Page): Promise<Chart[]> {
  return page.evaluate(() => {
    const pts = (c: any): [number, number][] =>
      c.points ? Array.from({ length: c.points.numberOfItems }, (_, i): [number, number] => [c.points.getItem(i).x, c.points.getItem(i).y]) : [];
    return [...document.querySelectorAll('svg')].map((svg: any) => {
      const r = svg.getBoundingClientRect();
      // the tick marks: vertical ones on the x axis, horizontal ones on the y axis, in the labels' order
      const marks = [...svg.querySelectorAll('line.tick')].map((l: any) => ({ x1: l.x1.baseVal.value, y1: l.y1.baseVal.value, x2: l.x2.baseVal.value, y2: l.y2.baseVal.value }));
      const xMarks = marks.filter((m) => m.x1 === m.x2);
      const yMarks = marks.filter((m) => m.y1 === m.y2);
      return {
        width: svg.width.baseVal.value,
        height: svg.height.baseVal.value,
        shown: { width: r.width, height: r.height },
        title: svg.querySelector('text.title')?.textContent ?? '',
        texts: [...svg.querySelectorAll('text')].map((t: any) => {
          const b = t.getBBox();
          return { text: t.textContent, x: b.x, y: b.y, right: b.x + b.width, bottom: b.y + b.height };
        }),
        curves: [...svg.querySelectorAll('polyline, path')].map((c: any) => ({ tag: c.tagName, length: c.getTotalLength(), points: pts(c) })),
        axes: svg.querySelectorAll('line').length,
        dots: svg.querySelectorAll('circle').length,
        xticks: [...svg.querySelectorAll('text.xtick')].map((t: any, i: number) => {
          const b = t.getBBox();
          return { text: t.textContent, x: b.x, right: b.x + b.width, at: xMarks[i]?.x1 ?? NaN };
        }),
        yticks: [...svg.querySelectorAll('text.ytick')].map((t: any, i: number) => ({ text: t.textContent, at: yMarks[i]?.y1 ?? NaN })),
        legend: [...svg.querySelectorAll('.legend-item text')].map((t: any) => t.textContent),
        series: [...svg.querySelectorAll('g.series')].map((g: any) => ({
          name: g.getAttribute('data-series'),
          points: pts(g.querySelector('polyline')),
          dots: g.querySelectorAll('circle').length,
        })),
      };
    });
  });
}

/** A tick label's value: "1,200" is 1200. */
const num = (s: string) => Number(s.replace(/,/g, ''));

/**
 * The axes are real: x ticks are epochs left to right, each under its
 * epoch's vertex; y ticks (3 or more) are evenly spaced nice values
 * (1, 2 or 5 times a power of ten apart) rising up the chart; every vertex
 * of every series lies where the y ticks put its value, within a pixel.
 */
function expectAxes(c: Chart, xs: number[], values: Record<string, number[]>): void {
  expect(c.yticks.length).toBeGreaterThanOrEqual(3);
  const yv = c.yticks.map((t) => num(t.text));
  const step = yv[1] - yv[0];
  expect(step).toBeGreaterThan(0);
  const mant = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
  expect([1, 2, 5].some((m) => Math.abs(mant - m) < 1e-6)).toBe(true);
  for (let i = 1; i < yv.length; i++) {
    expect(yv[i] - yv[i - 1]).toBeCloseTo(step, 9);
    expect(c.yticks[i].at).toBeLessThan(c.yticks[i - 1].at); // higher values higher up
  }
  const n = c.yticks.length - 1;
  const yOf = (v: number) => c.yticks[0].at + ((v - yv[0]) / (yv[n] - yv[0])) * (c.yticks[n].at - c.yticks[0].at);
  const xOf = new Map(c.xticks.map((t) => [num(t.text), t.at]));
  expect(c.xticks.map((t) => num(t.text))).toEqual(xs);
  for (let i = 1; i < c.xticks.length; i++) expect(c.xticks[i].x).toBeGreaterThan(c.xticks[i - 1].right); // no overlap
  for (const [name, ys] of Object.entries(values)) {
    const s = c.series.find((k) => k.name === name);
    expect({ name, found: !!s }).toEqual({ name, found: true });
    expect(s!.points).toHaveLength(ys.length);
    expect(s!.dots).toBe(ys.length);
    s!.points.forEach(([x, y], i) => {
      expect(Math.abs(y - yOf(ys[i]))).toBeLessThan(1);
      if (xOf.has(i + 1)) expect(Math.abs(x - xOf.get(i + 1)!)).toBeLessThan(0.5);
      expect(y).toBeGreaterThanOrEqual(0);
      expect(y).toBeLessThanOrEqual(c.height);
    });
  }
}

/** Every label inside its chart's box, where the browser clips nothing. */
function expectInside(c: Chart): void {
  for (const t of c.texts) {
    const where = `'${t.text}' at x ${t.x.toFixed(1)}..${t.right.toFixed(1)}, y ${t.y.toFixed(1)}..${t.bottom.toFixed(1)} in a ${c.width} x ${c.height} chart`;
    expect({ where, inside: t.x >= 0 && t.y >= 0 && t.right <= c.width && t.bottom <= c.height }).toEqual({ where, inside: true });
  }
}

/** A page opened in the browser, with what it logged and requested. */
interface Opened {
  page: Page;
  url: string;
  consoleMessages: string[];
  consoleErrors: string[];
  pageErrors: string[];
  requests: string[];
  failed: string[];
}
async function open(b: Browser, file: string): Promise<Opened> {
  const page = await b.newPage();
  const o: Opened = { page, url: pathToFileURL(file).href, consoleMessages: [], consoleErrors: [], pageErrors: [], requests: [], failed: [] };
  await page.setViewport({ width: 1100, height: 900 });
  page.on('console', (m) => {
    o.consoleMessages.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error') o.consoleErrors.push(`${m.text()} (${m.location().url ?? ''}:${m.location().lineNumber ?? ''})`);
  });
  page.on('pageerror', (e) => o.pageErrors.push(e instanceof Error ? e.message : String(e)));
  page.on('request', (q) => o.requests.push(q.url()));
  page.on('requestfailed', (q) => o.failed.push(`${q.url()}: ${q.failure()?.errorText}`));
  // networkidle0: nothing requested for 500 ms after the load, so a late fetch is seen too
  await page.goto(o.url, { waitUntil: ['load', 'networkidle0'] });
  return o;
}

/** Clean: no console error, no page error, no request but for its own file. */
async function expectClean(o: Opened): Promise<void> {
  expect({ consoleErrors: o.consoleErrors, pageErrors: o.pageErrors, all: o.consoleMessages }).toEqual({ consoleErrors: [], pageErrors: [], all: o.consoleMessages });
  expect(o.failed).toEqual([]);
  expect(o.requests).toEqual([o.url]);
  // the page's own count: no image, font, script or style fetched from anywhere
  expect(await o.page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name))).toEqual([]);
}

/** The page's tables, cell texts by row: [settings, result, per epoch]. */
function tables(page: Page): Promise<string[][][]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('table')].map((t: any) => [...t.querySelectorAll('tr')].map((tr: any) => [...tr.children].map((c: any) => c.textContent))),
  );
}

/** A CLI run in dir: its JSON lines. */
function train(args: string[]): { event: string }[] {
  const r = spawnSync(process.execPath, [CLI, 'train', ...args, '--json'], { encoding: 'utf8', cwd: dir, env: { ...process.env, FORCE_COLOR: '0' } });
  if (r.status !== 0) throw new Error(`gradvault train exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l));
}

let dir = '';
let browser: Browser | undefined;
let main: Opened;
let page: Page;
let epochs: EpochEvent[] = [];
let done: DoneEvent;

maybe('the train --report page in headless Chromium', () => {
  beforeAll(async () => {
    if (missing) throw new Error(`test/93: ${missing}; CI must have it (.ci/run installs chromium)`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-report-'));
    const events = train(['--data', 'synthetic:blobs', '--rows', '3000', '--epochs', '3', '--threads', '2', '--report', 'report.html']);
    epochs = events.filter((e): e is EpochEvent => e.event === 'epoch');
    done = events.find((e): e is DoneEvent => e.event === 'done')!;

    // The browser is not ours to sanitize: scripts/jest-asan.sh preloads libasan into every child
    // process, and Chromium under it never comes up. The page itself comes from the CLI run above.
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'LD_PRELOAD' && !/^(A|UB)SAN_OPTIONS$/.test(k)) env[k] = v;
    browser = await puppeteer.launch({ executablePath: chromium, args: ['--no-sandbox', '--headless=new'], env });
    main = await open(browser, path.join(dir, 'report.html'));
    page = main.page;
  });

  afterAll(async () => {
    await browser?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('loads with no console error, no page error, and no request but its own file', async () => {
    await expectClean(main);
  });

  test("the title, the heading, the run's settings, the result and the per-epoch table", async () => {
    expect(await page.title()).toBe('gradvault: softmax');
    const { h1, text } = await page.evaluate(() => ({ h1: document.querySelector('h1')?.textContent, text: document.body.innerText as string }));
    expect(h1).toBe('gradvault training report');
    expect(text).toMatch(/softmax \(features 2, classes \d+\) on synthetic blobs/);
    const [settings, result, perEpoch] = await tables(page);
    const set = Object.fromEntries(settings);
    expect(set).toMatchObject({
      model: expect.stringMatching(/^softmax \(features 2, classes \d+\)$/),
      data: 'synthetic blobs (90% train, 10% test)',
      rows: '3,000 train, 333 test',
      features: '2',
      mode: 'atomic',
      threads: '2',
      batch: '32',
      optimizer: 'sgd',
      'learning rate': '0.1',
      epochs: '3',
      seed: '42',
      kernels: expect.stringMatching(/^\w+$/),
      gradvault: expect.stringMatching(/^\d+\.\d+\.\d+/),
      date: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/),
    });
    const res = Object.fromEntries(result);
    expect(res['test accuracy']).toBe(fmt(done.test.accuracy!, 4));
    expect(res['test loss']).toBe(fmt(done.test.loss, 4));
    expect(res['train accuracy (last epoch)']).toMatch(/^[01]\.\d{4}$/);
    expect(text).toContain(`${fmt(done.test.accuracy! * 100, 2)} %`);
    expect(perEpoch[0]).toEqual(['epoch', 'train loss', 'train acc', 'test loss', 'test acc', 'samples/s', 'staleness']);
    expect(perEpoch.slice(1).map((r) => r.filter((_, i) => i !== 2))).toEqual(
      epochs.map((e) => [String(e.epoch), fmt(e.loss, 4), fmt(e.test.loss, 4), fmt(e.test.accuracy!, 4), fmt(e.samplesPerSec), fmt(e.staleness.mean, 2)]),
    );
    for (const r of perEpoch.slice(1)) expect(r[2]).toMatch(/^[01]\.\d{4}$/); // train accuracy: on all 3,000 train rows here
    expect(text).toMatch(/Train accuracy is scored on all 3,000 training rows/);
  });

  test('three charts with real axes: epoch ticks, nice y ticks, legends, a vertex per epoch where its value lies', async () => {
    const all = await charts(page);
    expect(all.map((c) => c.title)).toEqual(['Loss per epoch', 'Accuracy per epoch', 'Throughput per epoch']);
    const [loss, acc, speed] = all;
    for (const c of all) {
      expect(c.shown.width).toBe(c.width); // drawn at its size: the label boxes below are the page's
      expect(c.shown.height).toBe(c.height);
      expect(c.axes).toBeGreaterThanOrEqual(2);
      const labels = c.texts.map((t) => t.text);
      expect(labels).toContain('epoch (passes over the training rows)');
      // every curve drawn: a length on screen
      for (const k of c.curves) expect(k.length).toBeGreaterThan(0);
      expectInside(c);
    }
    const xs = epochs.map((e) => e.epoch);
    expect(loss.legend).toEqual(['training loss', 'test loss']);
    expect(loss.texts.map((t) => t.text)).toContain('loss (mean per row)');
    expectAxes(loss, xs, { 'training loss': epochs.map((e) => e.loss), 'test loss': epochs.map((e) => e.test.loss) });

    expect(acc.legend).toEqual(['train accuracy', 'test accuracy']);
    expect(acc.texts.map((t) => t.text)).toContain('accuracy (% of rows right)');
    // the train curve: the per-epoch table's train accuracy, in percent
    const [, , perEpoch] = await tables(page);
    const trainAcc = perEpoch.slice(1).map((r) => Number(r[2]) * 100);
    expectAxes(acc, xs, { 'train accuracy': trainAcc, 'test accuracy': epochs.map((e) => e.test.accuracy! * 100) });

    expect(speed.legend).toEqual([]); // one series: its name is the axis title
    expect(speed.texts.map((t) => t.text)).toContain('samples/s (rows trained per second)');
    expectAxes(speed, xs, { 'samples/s': epochs.map((e) => e.samplesPerSec) });
    expect(num(speed.yticks[0].text)).toBe(0); // throughput from 0
  });

  test('a regression model charts rmse: train and test rmse per epoch', async () => {
    const events = train(['--data', 'synthetic:ratings', '--rows', '3000', '--epochs', '2', '--threads', '2', '--report', 'mf.html']);
    const eps = events.filter((e): e is EpochEvent => e.event === 'epoch');
    const o = await open(browser!, path.join(dir, 'mf.html'));
    try {
      await expectClean(o);
      expect(await o.page.title()).toBe('gradvault: mf');
      const [, acc] = await charts(o.page);
      expect(acc.title).toBe('RMSE per epoch (lower is better)');
      expect(acc.legend).toEqual(['train rmse', 'test rmse']);
      expect(acc.texts.map((t) => t.text)).toContain('rmse (label units)');
      expectAxes(acc, [1, 2], { 'test rmse': eps.map((e) => e.test.rmse!) });
      expect(acc.series.find((s) => s.name === 'train rmse')!.points).toHaveLength(2);
      expectInside(acc);
      const [, result, perEpoch] = await tables(o.page);
      expect(Object.fromEntries(result)['test rmse']).toMatch(/^\d+\.\d{4}$/);
      expect(perEpoch[0]).toEqual(['epoch', 'train loss', 'train rmse', 'test loss', 'test rmse', 'samples/s', 'staleness']);
    } finally {
      await o.page.close();
    }
  });

  test('wide y labels, many epochs and a single epoch stay readable and inside their chart', async () => {
    const p = await browser!.newPage();
    try {
      const many = Array.from({ length: 40 }, (_, i) => 1e6 / (i + 1));
      await p.setContent(
        `<!doctype html><html><body>${svgChart({ title: 'Throughput per epoch', yTitle: 'samples/s', series: [{ name: 'samples/s', ys: [98_765_432, 123_456_789], color: '#000' }], zero: true })}` +
          `${svgChart({ title: 'many', yTitle: 'loss', series: [{ name: 'a', ys: many, color: '#000' }, { name: 'b', ys: many.map((v) => v / 2), color: '#111' }] })}` +
          `${svgChart({ title: 'one', yTitle: 'loss', series: [{ name: 'a', ys: [0.5], color: '#000' }] })}</body></html>`,
      );
      const [wide, lots, one] = await charts(p);
      expect(wide.yticks.map((t) => t.text)).toContain('150,000,000');
      expectAxes(wide, [1, 2], { 'samples/s': [98_765_432, 123_456_789] });
      // 40 epochs: a subset of ticks (1 and every 5th), no two labels overlapping
      expectAxes(lots, [1, 5, 10, 15, 20, 25, 30, 35, 40], { a: many, b: many.map((v) => v / 2) });
      expect(lots.legend).toEqual(['a', 'b']);
      expectAxes(one, [1], { a: [0.5] });
      for (const c of [wide, lots, one]) expectInside(c);
    } finally {
      await p.close();
    }
  });
});
