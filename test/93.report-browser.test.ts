// 93: the page `gradvault train --report` writes, opened in a real browser
// (headless Chromium through puppeteer-core, issue 14): it loads with no
// console error and no page error, makes no request but for its own file
// (it is self-contained), shows the title, the run's settings and numbers,
// and draws both charts (a curve with one vertex per epoch, axes, labels
// that lie inside the chart).
//
// Needs Debian's chromium (CI installs it; CHROMIUM names another binary).
// Without it the suite fails under CI and is skipped, saying why, elsewhere.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { svgLine } from '../lib/cli/report';

jest.setTimeout(30_000);

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
  texts: { text: string; x: number; y: number; right: number; bottom: number }[];
  curves: { tag: string; length: number; points: [number, number][] }[];
  axes: number;
  dots: number;
}
function charts(page: Page): Promise<Chart[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('svg')].map((svg: any) => {
      const r = svg.getBoundingClientRect();
      return {
        width: svg.width.baseVal.value,
        height: svg.height.baseVal.value,
        shown: { width: r.width, height: r.height },
        texts: [...svg.querySelectorAll('text')].map((t: any) => {
          const b = t.getBBox();
          return { text: t.textContent, x: b.x, y: b.y, right: b.x + b.width, bottom: b.y + b.height };
        }),
        curves: [...svg.querySelectorAll('polyline, path')].map((c: any) => ({
          tag: c.tagName,
          length: c.getTotalLength(),
          points: c.points ? Array.from({ length: c.points.numberOfItems }, (_, i): [number, number] => [c.points.getItem(i).x, c.points.getItem(i).y]) : [],
        })),
        axes: svg.querySelectorAll('line').length,
        dots: svg.querySelectorAll('circle').length,
      };
    }),
  );
}

/** Every label inside its chart's box, where the browser clips nothing. */
function expectInside(c: Chart): void {
  for (const t of c.texts) {
    const where = `'${t.text}' at x ${t.x.toFixed(1)}..${t.right.toFixed(1)}, y ${t.y.toFixed(1)}..${t.bottom.toFixed(1)} in a ${c.width} x ${c.height} chart`;
    expect({ where, inside: t.x >= 0 && t.y >= 0 && t.right <= c.width && t.bottom <= c.height }).toEqual({ where, inside: true });
  }
}

let dir = '';
let browser: Browser | undefined;
let page: Page;
let fileUrl = '';
let epochs: EpochEvent[] = [];
let done: DoneEvent;
const consoleMessages: string[] = [];
const consoleErrors: string[] = [];
const pageErrors: string[] = [];
const requests: string[] = [];
const failed: string[] = [];

maybe('the train --report page in headless Chromium', () => {
  beforeAll(async () => {
    if (missing) throw new Error(`test/93: ${missing}; CI must have it (.ci/run installs chromium)`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-report-'));
    const r = spawnSync(process.execPath, [CLI, 'train', '--data', 'synthetic:blobs', '--rows', '3000', '--epochs', '3', '--threads', '2', '--json', '--report', 'report.html'], {
      encoding: 'utf8',
      cwd: dir,
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    if (r.status !== 0) throw new Error(`gradvault train exited ${r.status}: ${r.stderr}`);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    epochs = events.filter((e) => e.event === 'epoch');
    done = events.find((e) => e.event === 'done');
    fileUrl = pathToFileURL(path.join(dir, 'report.html')).href;

    // The browser is not ours to sanitize: scripts/jest-asan.sh preloads libasan into every child
    // process, and Chromium under it never comes up. The page itself comes from the CLI run above.
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'LD_PRELOAD' && !/^(A|UB)SAN_OPTIONS$/.test(k)) env[k] = v;
    browser = await puppeteer.launch({ executablePath: chromium, args: ['--no-sandbox', '--headless=new'], env });
    page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 900 });
    page.on('console', (m) => {
      consoleMessages.push(`${m.type()}: ${m.text()}`);
      if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location().url ?? ''}:${m.location().lineNumber ?? ''})`);
    });
    page.on('pageerror', (e) => pageErrors.push(e instanceof Error ? e.message : String(e)));
    page.on('request', (q) => requests.push(q.url()));
    page.on('requestfailed', (q) => failed.push(`${q.url()}: ${q.failure()?.errorText}`));
    // networkidle0: nothing requested for 500 ms after the load, so a late fetch is seen too
    await page.goto(fileUrl, { waitUntil: ['load', 'networkidle0'] });
  });

  afterAll(async () => {
    await browser?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('loads with no console error, no page error, and no request but its own file', async () => {
    expect({ consoleErrors, pageErrors, all: consoleMessages }).toEqual({ consoleErrors: [], pageErrors: [], all: consoleMessages });
    expect(failed).toEqual([]);
    expect(requests).toEqual([fileUrl]);
    // the page's own count: no image, font, script or style fetched from anywhere
    expect(await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name))).toEqual([]);
  });

  test("the title, the heading, the run's settings and numbers", async () => {
    expect(await page.title()).toBe('gradvault: softmax');
    const { h1, text, rows } = await page.evaluate(() => ({
      h1: document.querySelector('h1')?.textContent,
      text: document.body.innerText as string,
      rows: [...document.querySelectorAll('table tr')].map((tr: any) => [...tr.children].map((c: any) => c.textContent)),
    }));
    expect(h1).toBe('gradvault training report');
    expect(text).toMatch(/softmax on synthetic blobs/);
    expect(text).toMatch(/mode atomic, 2 threads, batch 32, sgd/);
    expect(text).toContain(`Final test accuracy ${fmt(done.test.accuracy!, 4)}, test loss ${fmt(done.test.loss, 4)}.`);
    expect(rows).toEqual([
      ['epoch', 'loss', 'test', 'samples/s', 'staleness'],
      ...epochs.map((e) => [String(e.epoch), fmt(e.loss, 4), `accuracy ${fmt(e.test.accuracy!, 4)}`, fmt(e.samplesPerSec), fmt(e.staleness.mean, 2)]),
    ]);
  });

  test('both charts are drawn: a curve with a vertex per epoch, axes, labels inside the chart', async () => {
    const all = await charts(page);
    expect(all).toHaveLength(2);
    const series: [string, number[], string][] = [
      ['training loss per epoch', epochs.map((e) => e.loss), 'mean loss'],
      ['throughput per epoch', epochs.map((e) => e.samplesPerSec), 'samples/s'],
    ];
    all.forEach((c, i) => {
      const [title, ys, unit] = series[i];
      expect(c.shown.width).toBeGreaterThan(100);
      expect(c.shown.height).toBeGreaterThan(100);
      expect(c.axes).toBeGreaterThanOrEqual(2);
      expect(c.dots).toBe(ys.length);
      const labels = c.texts.map((t) => t.text);
      expect(labels).toContain(title);
      expect(labels).toContain(`epoch (${unit})`);
      const max = Math.max(...ys);
      expect(labels).toContain(fmt(max, max < 10 ? 3 : 0)); // the top of the y axis
      // the curve: drawn (a length on screen), one vertex per epoch, every vertex inside the chart,
      // and higher values higher up
      const drawn = c.curves.filter((k) => k.length > 0);
      expect(drawn).toHaveLength(1);
      const pts = drawn[0].points;
      expect(pts).toHaveLength(ys.length);
      for (const [x, y] of pts) {
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(c.width);
        expect(y).toBeGreaterThanOrEqual(0);
        expect(y).toBeLessThanOrEqual(c.height);
      }
      for (let j = 1; j < pts.length; j++) {
        expect(pts[j][0]).toBeGreaterThan(pts[j - 1][0]);
        if (ys[j] !== ys[j - 1]) expect(Math.sign(pts[j - 1][1] - pts[j][1])).toBe(Math.sign(ys[j] - ys[j - 1]));
      }
      expectInside(c);
    });
  });

  test('a y label as wide as 123,456,789 samples/s stays inside its chart', async () => {
    // the run above may or may not reach eight digits; this chart always does
    const p = await browser!.newPage();
    try {
      await p.setContent(`<!doctype html><html><body>${svgLine('throughput per epoch', [98_765_432, 123_456_789], 'samples/s')}</body></html>`);
      const [c] = await charts(p);
      expect(c.texts.map((t) => t.text)).toContain('123,456,789');
      expectInside(c);
    } finally {
      await p.close();
    }
  });
});
