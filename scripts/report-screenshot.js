#!/usr/bin/env node
// The README's picture of a `gradvault train --report` page: a real training
// run (softmax on Fashion-MNIST when it is installed, else the CLI's built-in
// synthetic set; a few seconds), its report opened in headless Chromium and
// the whole page saved as a PNG.
//
//   npm run build:ts && node scripts/report-screenshot.js [out.png]
//
// Default output docs/images/report.png. Needs Debian's chromium (or CHROMIUM=
// another binary) and puppeteer-core (a devDependency).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { pathToFileURL } = require('node:url');
const puppeteer = require('puppeteer-core');

const root = path.join(__dirname, '..');
const out = path.resolve(process.argv[2] ?? path.join(root, 'docs', 'images', 'report.png'));
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';

async function main() {
  if (!fs.existsSync(chromium)) throw new Error(`no Chromium at ${chromium} (apt-get install chromium, or set CHROMIUM)`);
  const cli = path.join(root, 'dist', 'cli.js');
  if (!fs.existsSync(cli)) throw new Error('dist/cli.js is missing: npm run build:ts first');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-shot-'));
  let browser;
  try {
    const report = path.join(dir, 'report.html');
    // no --data: Fashion-MNIST if installed, else the built-in synthetic set
    const r = spawnSync(process.execPath, [cli, 'train', '--epochs', '6', '--threads', '2', '--report', report], {
      cwd: dir,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    if (r.status !== 0) throw new Error(`gradvault train exited ${r.status}`);

    browser = await puppeteer.launch({ executablePath: chromium, args: ['--no-sandbox', '--headless=new'] });
    const page = await browser.newPage();
    const problems = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message ?? e}`));
    page.on('requestfailed', (q) => problems.push(`request failed: ${q.url()}`));
    // wide enough for the two charts side by side
    await page.setViewport({ width: 1100, height: 600, deviceScaleFactor: 1 });
    await page.goto(pathToFileURL(report).href, { waitUntil: ['load', 'networkidle0'] });
    if (problems.length) throw new Error(`the report page is not clean:\n  ${problems.join('\n  ')}`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    await page.screenshot({ path: out, type: 'png', fullPage: true });
  } finally {
    await browser?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${path.relative(process.cwd(), out)}: ${fs.statSync(out).size.toLocaleString('en-US')} bytes`);
}

main().catch((e) => {
  console.error(`report-screenshot: ${e.message}`);
  process.exit(1);
});
