#!/usr/bin/env node
/**
 * The `gradvault` command: `demo` (the race made visible), `train`, `bench`
 * and `inspect`. Bad arguments and failures print one line and exit non-zero
 * (2 for usage, 1 for the rest), never a stack trace.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { types } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Command, CommanderError, InvalidArgumentError as ArgError, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { MODES, type Mode, type OptimizerKind } from './config';
import { Dataset, loadCsv, loadIdx, loadLibsvm, synthetic } from './data';
import { GradvaultError, fromNative } from './errors';
import { isa, native } from './native';
import { checkPath } from './paths';
import { ParameterStore } from './store';
import { Trainer, evaluate, MODELS, type ModelKind, type TrainProgress, type TrainResult } from './trainer';

const FASHION = '/usr/share/datasets/fashion-mnist';
const VERSION: string = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;

// ---------------------------------------------------------------- helpers

/** A bad argument found while running a command (commander reports its own parse errors). */
class UsageError extends Error {}

// Limits are the library's own (Trainer: threads 1..1024, batchSize 1..65536)
// or what the demo can allocate, so a bad value is a usage error (exit 2)
// before anything runs, not a failure (exit 1) after.
const int = (name: string, min = 1, max = Number.MAX_SAFE_INTEGER) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new ArgError(max === Number.MAX_SAFE_INTEGER ? `${name} must be an integer >= ${min}, got '${v}'` : `${name} must be an integer in ${min}..${max}, got '${v}'`);
  return n;
};
const positive = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new ArgError(`${name} must be a number > 0, got '${v}'`);
  return n;
};
const list = (name: string, allowed?: readonly string[]) => (v: string) => {
  const xs = v.split(',').map((x) => x.trim()).filter(Boolean);
  if (xs.length === 0) throw new ArgError(`${name} must name at least one${allowed ? ` of ${allowed.join(', ')}` : ' value'}, got '${v}'`);
  for (const x of xs) if (allowed && !allowed.includes(x)) throw new ArgError(`${name}: '${x}' is not one of ${allowed.join(', ')}`);
  return xs;
};
const intList = (name: string, max?: number) => (v: string) => list(name)(v).map((x) => int(name, 1, max)(x));

/**
 * An output file the run will write at its end, checked before it starts:
 * its folder exists and is writable and it is not a folder itself, so a
 * typo is a usage error now, not a failure after the training.
 */
function writable(flag: string, file: string | undefined): void {
  if (file === undefined) return;
  let abs: string;
  try {
    abs = checkPath(flag, file);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
  const dir = path.dirname(abs);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`${flag} ${file}: the folder ${dir} does not exist`);
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) throw new UsageError(`${flag} ${file}: is a folder, not a file`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    if (fs.existsSync(abs)) fs.accessSync(abs, fs.constants.W_OK);
  } catch {
    throw new UsageError(`${flag} ${file}: not writable`);
  }
}
const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '–');
const out = (s = '') => process.stdout.write(s + '\n');

function table(head: string[], rows: (string | number)[][]): void {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const width = head.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((x, c) => (c === 0 ? x.padEnd(width[c]) : x.padStart(width[c]))).join('  ');
  out(line(head));
  out(width.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells.slice(1)) out(line(r));
}

function runWorkers(count: number, data: object): Promise<void> {
  const file = path.join(__dirname, 'cli-worker.js');
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(file, { workerData: data });
          w.once('message', () => resolve());
          w.once('error', reject);
        }),
    ),
  ).then(() => undefined);
}

interface Data {
  train: Dataset;
  test: Dataset;
  what: string;
}

/** --data: a file (IDX, LIBSVM or CSV, by --format or by its name), synthetic:KIND, or the default set. */
async function loadData(o: { data?: string; format?: string; labels?: string; label?: string; test?: string; rows?: number; seed: number }): Promise<Data> {
  const cut = (d: Dataset) => (o.rows && o.rows < d.rows ? d.slice(0, o.rows) : d);
  if (!o.data) {
    if (fs.existsSync(path.join(FASHION, 'train-images-idx3-ubyte.gz'))) {
      const f = (n: string) => path.join(FASHION, n);
      const train = await loadIdx(f('train-images-idx3-ubyte.gz'), f('train-labels-idx1-ubyte.gz'));
      const test = await loadIdx(f('t10k-images-idx3-ubyte.gz'), f('t10k-labels-idx1-ubyte.gz'));
      return { train: cut(train), test, what: `Fashion-MNIST (${FASHION})` };
    }
    o = { ...o, data: 'synthetic:sparse-logistic' };
  }
  let all: Dataset;
  let what = o.data!;
  if (o.data!.startsWith('synthetic:')) {
    const kind = o.data!.slice('synthetic:'.length);
    if (!['sparse-logistic', 'blobs', 'ratings'].includes(kind))
      throw new UsageError(`--data synthetic:${kind}: the synthetic sets are sparse-logistic, blobs and ratings`);
    all = synthetic(kind as 'blobs', { rows: o.rows ? Math.ceil(o.rows / 0.9) : kind === 'sparse-logistic' ? 100000 : 50000, seed: o.seed });
    what = `synthetic ${kind}`;
  } else {
    const file = o.data!;
    const format = o.format ?? (/\.csv$/i.test(file) ? 'csv' : /idx\d-ubyte(\.gz)?$/i.test(file) ? 'idx' : 'libsvm');
    if (format === 'idx') {
      const labels = o.labels ?? file.replace('images-idx3', 'labels-idx1');
      if (labels === file) throw new UsageError('--labels FILE is needed with an IDX images file');
      all = await loadIdx(file, labels);
    } else if (format === 'csv') {
      all = await loadCsv(file, { label: csvLabel(o.label) });
    } else if (format === 'libsvm') {
      all = await loadLibsvm(file);
    } else {
      throw new UsageError(`--format must be idx, libsvm or csv, got '${format}'`);
    }
  }
  if (o.test) {
    const t = o.test;
    const test = /\.csv$/i.test(t) ? await loadCsv(t, { label: csvLabel(o.label) }) : /idx\d-ubyte(\.gz)?$/i.test(t) ? await loadIdx(t, t.replace('images-idx3', 'labels-idx1')) : await loadLibsvm(t, { features: all.features });
    return { train: cut(all), test, what };
  }
  const [train, test] = all.split(0.9);
  return { train: cut(train), test, what: `${what} (90% train, 10% test)` };
}

function csvLabel(label: string | undefined): string | number {
  if (label === undefined) throw new UsageError('--label COLUMN is needed with a CSV file (a column index or header name)');
  return /^\d+$/.test(label) ? Number(label) : label;
}

function defaultModel(d: Dataset): ModelKind {
  if (d.kind === 'ratings') return 'mf';
  if (d.classes === 2) return 'logistic';
  if (d.classes > 2) return 'softmax';
  return 'linear';
}

function score(r: { accuracy?: number; rmse?: number; loss: number }): string {
  return r.accuracy !== undefined ? `accuracy ${fmt(r.accuracy, 4)}` : `rmse ${fmt(r.rmse!, 4)}`;
}

// ---------------------------------------------------------------- demo

async function demo(o: { threads: number; pushes: number; size: number; train: boolean }): Promise<void> {
  const T = o.threads, P = o.pushes, N = o.size;
  const cpu = isa();
  out(`gradvault ${VERSION} demo — kernels ${cpu.active}, ${os.availableParallelism()} CPUs\n`);
  out(`The race: ${T} threads each add 1 to all ${N} numbers of one shared tensor, ${P} times.`);
  out(`Every number should end at ${T * P}.\n`);

  const shared = new SharedArrayBuffer(N * 4);
  let t0 = process.hrtime.bigint();
  await runWorkers(T, { job: 'naive', shared, pushes: P, size: N });
  let secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const a = new Float32Array(shared);
  let lost = 0;
  for (const v of a) lost += T * P - v;
  out(`Naive shared writes (a[i] += 1 from ${T} worker_threads on a SharedArrayBuffer):`);
  out(`  ${fmt(lost)} of ${fmt(T * P * N)} updates lost (${fmt((100 * lost) / (T * P * N), 2)}%), ${fmt((T * P) / secs)} tensor updates/s\n`);

  out('The same through the vault, each mode (pushes of a gradient of -1, lr 1):');
  const rows: (string | number)[][] = [];
  for (const mode of MODES) {
    const store = new ParameterStore({
      tensors: { w: { shape: [N] } },
      mode,
      // averaging applies the mean of each round: lr = syncEvery makes it the sum
      optimizer: { kind: 'sgd', lr: mode === 'averaging' ? T : 1 },
      ...(mode === 'averaging' ? { syncEvery: T } : {}),
    });
    t0 = process.hrtime.bigint();
    await runWorkers(T, { job: 'push', handle: store.share(), pushes: P, size: N });
    secs = Number(process.hrtime.bigint() - t0) / 1e9;
    store.sync();
    const w = store.snapshot().get('w');
    let l = 0;
    for (const v of w) l += T * P - v;
    const s = store.stats();
    rows.push([mode, fmt(l), fmt(s.conflicts), fmt((T * P) / secs)]);
    store.close();
  }
  table(['mode', 'lost updates', 'overlapping writes', 'pushes/s'], rows);
  out('\n(hogwild is the racy reference: its overlapping writes are counted, and each may have lost an update.)');
  if (!o.train) return;
  out('');
  await train({ epochs: 2, batch: 32, mode: 'atomic', threads: Math.min(2, os.availableParallelism()), optimizer: 'sgd', seed: 1, json: false, plain: true, rows: 30000 });
}

// ---------------------------------------------------------------- train

interface TrainOptions {
  data?: string;
  format?: string;
  labels?: string;
  label?: string;
  test?: string;
  rows?: number;
  model?: ModelKind;
  hidden?: number[];
  rank?: number;
  mode: Mode;
  threads: number;
  epochs: number;
  batch: number;
  lr?: number;
  optimizer: OptimizerKind;
  momentum?: number;
  seed: number;
  save?: string;
  resume?: string;
  json: boolean;
  report?: string;
  plain?: boolean;
}

async function train(o: TrainOptions): Promise<void> {
  writable('--save', o.save);
  writable('--report', o.report);
  const data = await loadData(o);
  const model = o.model ?? defaultModel(data.train);
  const lr = o.lr ?? (o.optimizer === 'adam' ? 0.001 : model === 'logistic' || model === 'svm' ? 8 : model === 'mf' ? 0.5 : 0.1);
  const optimizer = { kind: o.optimizer, lr, ...(o.momentum !== undefined ? { momentum: o.momentum } : {}) };
  const modelOpts = { model, ...(o.hidden ? { hidden: o.hidden } : {}), ...(o.rank ? { rank: o.rank } : {}) };
  const runOpts = { threads: o.threads, epochs: o.epochs, batchSize: o.batch, seed: o.seed };
  let trainer: Trainer;
  if (o.resume) {
    const store = await ParameterStore.load(o.resume, { mode: o.mode, optimizer });
    trainer = new Trainer(store, { ...modelOpts, ...runOpts });
  } else {
    trainer = new Trainer({ ...modelOpts, ...runOpts, mode: o.mode, optimizer });
  }
  const say = o.json ? () => undefined : out;
  say(`Training ${model} on ${data.what}: ${fmt(data.train.rows)} rows, ${fmt(data.train.features)} features; ` + `mode ${o.mode}, ${o.threads} threads, batch ${o.batch}, ${o.optimizer} lr ${lr}${o.resume ? `, resumed from ${o.resume}` : ''}`);
  const bar = !o.json && !o.plain && process.stdout.isTTY ? new SingleBar({ format: '  epoch {value}/{total} [{bar}] loss {loss}  {sps} samples/s', hideCursor: true }, Presets.shades_classic) : null;
  bar?.start(o.epochs, 0, { loss: '–', sps: '–' });
  const epochs: (TrainProgress & { test?: ReturnType<typeof evaluate> })[] = [];
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  let result: TrainResult | undefined;
  try {
    const it = trainer.run(data.train, { signal: ac.signal });
    for (;;) {
      const r = await it.next();
      if (r.done) {
        result = r.value;
        break;
      }
      const p = r.value;
      const test = evaluate(trainer.store!.snapshot(), modelOpts, data.test);
      epochs.push({ ...p, test });
      if (o.json) out(JSON.stringify({ event: 'epoch', ...p, test }));
      else if (bar) bar.update(p.epoch, { loss: fmt(p.loss, 4), sps: fmt(p.samplesPerSec) });
      else say(`  epoch ${p.epoch}/${p.epochs}: loss ${fmt(p.loss, 4)}, test ${score(test)}, ${fmt(p.samplesPerSec)} samples/s, staleness ${fmt(p.staleness.mean, 2)}`);
    }
  } finally {
    bar?.stop();
    process.removeListener('SIGINT', onSig);
  }
  const store = trainer.store!;
  const ev = evaluate(store.snapshot(), modelOpts, data.test);
  const st = store.stats();
  if (o.json) {
    out(JSON.stringify({ event: 'done', result, test: ev, stats: { pushes: st.pushes, rejected: st.rejected, conflicts: st.conflicts, staleness: { mean: st.staleness.mean, max: st.staleness.max } } }));
  } else {
    say('');
    table(
      ['result', ''],
      [
        ['test ' + (ev.accuracy !== undefined ? 'accuracy' : 'rmse'), fmt(ev.accuracy ?? ev.rmse!, 4)],
        ['test loss', fmt(ev.loss, 4)],
        ['training loss (last epoch)', fmt(result!.loss, 4)],
        ['samples/s', fmt(result!.samplesPerSec)],
        ['wall seconds', fmt(result!.seconds, 2)],
        ['pushes applied / refused', `${fmt(st.pushes)} / ${fmt(st.rejected)}`],
        ['staleness mean / max', `${fmt(st.staleness.mean, 2)} / ${fmt(st.staleness.max)}`],
        ['lost updates', o.mode === 'hogwild' ? `up to ${fmt(st.conflicts)} (overlapping writes)` : '0 (by construction)'],
      ],
    );
  }
  if (o.save) {
    const r = await store.save(o.save);
    say(`\nsaved ${r.file} (${fmt(r.bytes)} bytes of tensors, version ${r.version}; pushes paused ${fmt(r.pauseSeconds * 1e3, 2)} ms)`);
  }
  if (o.report) {
    fs.writeFileSync(o.report, htmlReport(model, o, data.what, epochs, ev));
    say(`report: ${o.report}`);
  }
  store.close();
}

function svgLine(title: string, ys: number[], unit: string): string {
  const W = 480, H = 220, L = 60, B = 30, T = 24;
  const max = Math.max(...ys), min = Math.min(0, ...ys);
  const x = (i: number) => L + (ys.length === 1 ? (W - L - 10) / 2 : (i * (W - L - 10)) / (ys.length - 1));
  const y = (v: number) => T + (H - T - B) * (1 - (v - min) / (max - min || 1));
  const pts = ys.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">
<text x="${L}" y="14" font-size="13">${esc(title)}</text>
<line x1="${L}" y1="${H - B}" x2="${W - 10}" y2="${H - B}" stroke="#888"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#888"/>
<text x="${L - 4}" y="${y(max) + 4}" text-anchor="end">${fmt(max, max < 10 ? 3 : 0)}</text><text x="${L - 4}" y="${y(min) + 4}" text-anchor="end">${fmt(min, min < 10 ? 3 : 0)}</text>
<text x="${(L + W) / 2}" y="${H - 6}" text-anchor="middle">epoch (${esc(unit)})</text>
<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${pts}"/>
${ys.map((v, i) => `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="#1f77b4"><title>epoch ${i + 1}: ${v}</title></circle>`).join('')}
</svg>`;
}

function htmlReport(model: string, o: TrainOptions, what: string, epochs: (TrainProgress & { test?: { accuracy?: number; rmse?: number; loss: number } })[], ev: { accuracy?: number; rmse?: number; loss: number }): string {
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

// ---------------------------------------------------------------- bench

async function bench(o: { data?: string; model?: ModelKind; modes: Mode[]; threads: number[]; epochs: number; batch: number; lr?: number; rows?: number; seed: number; json: boolean }): Promise<void> {
  const data = await loadData(o);
  const model = o.model ?? defaultModel(data.train);
  const lr = o.lr ?? (model === 'logistic' || model === 'svm' ? 8 : model === 'mf' ? 0.5 : 0.1);
  const results: { mode: Mode; threads: number; samplesPerSec: number; seconds: number; test: ReturnType<typeof evaluate>; conflicts: number }[] = [];
  if (!o.json) out(`${model} on ${data.what}: ${fmt(data.train.rows)} rows, batch ${o.batch}, ${o.epochs} epoch(s), kernels ${isa().active}, ${os.availableParallelism()} CPUs\n`);
  for (const threads of o.threads)
    for (const mode of o.modes) {
      const t = new Trainer({ model, threads, epochs: o.epochs, batchSize: o.batch, seed: o.seed, mode, ...(mode === 'averaging' ? { syncEvery: threads } : {}), optimizer: { kind: 'sgd', lr } });
      const r = await t.fit(data.train);
      results.push({ mode, threads, samplesPerSec: r.samplesPerSec, seconds: r.seconds, test: evaluate(t.store!, model, data.test), conflicts: t.store!.stats().conflicts });
      t.store!.close();
    }
  if (o.json) {
    out(JSON.stringify({ model, data: data.what, isa: isa().active, cpus: os.availableParallelism(), results }));
    return;
  }
  const base = (threads: number) => results.find((r) => r.mode === 'hogwild' && r.threads === threads);
  table(
    ['mode', 'threads', 'samples/s', '× hogwild', '× 1 thread', 'test', 'lost updates'],
    results.map((r) => {
      const h = base(r.threads), one = results.find((x) => x.mode === r.mode && x.threads === 1);
      return [r.mode, r.threads, fmt(r.samplesPerSec), h ? `${fmt(r.samplesPerSec / h.samplesPerSec, 2)}×` : '–', one ? `${fmt(r.samplesPerSec / one.samplesPerSec, 2)}×` : '–', score(r.test), r.mode === 'hogwild' ? `≤ ${fmt(r.conflicts)}` : '0'];
    }),
  );
  out('\nBaseline: hogwild, racy in-place updates (the speed reference; its overlapping writes may have lost updates).');
}

// ---------------------------------------------------------------- inspect

async function inspect(file: string): Promise<void> {
  let raw;
  try {
    raw = await native().readCheckpoint(checkPath('file', file));
  } catch (e) {
    throw fromNative(e);
  }
  const m = raw.metadata;
  out(`${file}: safetensors, ${raw.tensors.length} tensors`);
  for (const [k, v] of Object.entries(m)) out(`  ${k}: ${v}`);
  out('');
  table(
    ['tensor', 'dtype', 'shape', 'elements', 'min', 'max', 'mean'],
    raw.tensors.map((t) => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      let min = '–', max = '–', mean = '–';
      if (types.isFloat32Array(t.data) && t.data.length) {
        let lo = Infinity, hi = -Infinity, s = 0;
        for (const v of t.data) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
          s += v;
        }
        [min, max, mean] = [lo.toPrecision(4), hi.toPrecision(4), (s / t.data.length).toPrecision(4)];
      }
      return [t.name, t.dtype, `[${t.shape.join(', ')}]`, fmt(n), min, max, mean];
    }),
  );
}

// ---------------------------------------------------------------- main

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program.name('gradvault').description('Asynchronous, parallel gradient training without races').version(VERSION).exitOverride().showHelpAfterError(false);
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const dataOptions = (c: Command) =>
    c
      .option('--data <file>', 'IDX images, LIBSVM or CSV file, or synthetic:sparse-logistic|blobs|ratings (default: Fashion-MNIST if installed, else synthetic)')
      .addOption(new Option('--format <format>', 'file format (default: from the file name)').choices(['idx', 'libsvm', 'csv']))
      .option('--labels <file>', 'IDX labels file (default: the images file name with labels-idx1)')
      .option('--label <column>', 'CSV label column (index or header name)')
      .option('--test <file>', 'test set (default: 10% of --data, or Fashion-MNIST t10k)')
      .option('--rows <n>', 'train on the first n rows', int('--rows'))
      .option('--seed <n>', 'shuffling (and synthetic data) seed', int('--seed', 0), 42);
  program
    .command('demo')
    .description('make the race visible: naive shared writes lose updates, every mode loses none; then a short training run')
    .option('--threads <n>', 'worker threads', int('--threads', 1, 256), 4)
    .option('--pushes <n>', 'updates per thread', int('--pushes', 1, 10_000_000), 2000)
    .option('--size <n>', 'numbers in the shared tensor', int('--size', 1, 1 << 24), 256)
    .option('--no-train', 'skip the training run')
    .action(async (o) => demo(o));
  dataOptions(
    program
      .command('train')
      .description('train a built-in model on native threads')
      .addOption(new Option('--model <model>', 'default: from the data (softmax, logistic, linear, mf)').choices(MODELS as string[]))
      .option('--hidden <widths>', 'mlp hidden layers, e.g. 128,64', intList('--hidden'))
      .option('--rank <n>', 'mf rank', int('--rank'))
      .addOption(new Option('--mode <mode>', 'update strategy').choices(MODES as string[]).default('atomic'))
      .option('--threads <n>', 'native threads', int('--threads', 1, 1024), Math.min(4, os.availableParallelism()))
      .option('--epochs <n>', 'passes over the data', int('--epochs'), 5)
      .option('--batch <n>', 'rows per pushed gradient', int('--batch', 1, 65536), 32)
      .option('--lr <x>', 'learning rate', positive('--lr'))
      .addOption(new Option('--optimizer <kind>', 'optimizer').choices(['sgd', 'adagrad', 'rmsprop', 'adam']).default('sgd'))
      .option('--momentum <x>', 'sgd momentum', (v) => {
        const n = Number(v);
        if (!(n >= 0 && n < 1)) throw new ArgError(`--momentum must be in [0, 1), got '${v}'`);
        return n;
      })
      .option('--save <file>', 'write a checkpoint (safetensors) at the end')
      .option('--resume <file>', 'start from a checkpoint')
      .option('--json', 'one JSON line per epoch and at the end', false)
      .option('--report <file.html>', 'write an HTML page with the loss and throughput curves'),
  ).action(async (o) => train(o));
  dataOptions(
    program
      .command('bench')
      .description('modes x threads on one workload, beside the hogwild baseline')
      .addOption(new Option('--model <model>').choices(MODELS as string[]))
      .option('--modes <list>', 'comma-separated modes', list('--modes', MODES), [...MODES])
      .option('--threads <list>', 'comma-separated thread counts', intList('--threads', 1024), [1, Math.min(2, os.availableParallelism())].filter((x, i, a) => a.indexOf(x) === i))
      .option('--epochs <n>', 'epochs per run', int('--epochs'), 1)
      .option('--batch <n>', 'batch size', int('--batch', 1, 65536), 32)
      .option('--lr <x>', 'learning rate', positive('--lr'))
      .option('--json', 'JSON output', false),
  ).action(async (o) => bench(o));
  program
    .command('inspect')
    .description("print a checkpoint's tensors, shapes, version, mode and optimizer state")
    .argument('<file>', 'a .safetensors file')
    .action(async (file) => inspect(file));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; usage errors were printed by commander as one line
      return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`gradvault: ${e.message}\n`);
      return 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`gradvault: ${e instanceof GradvaultError ? msg : `unexpected error: ${msg}`}\n`);
    if (process.env.GRADVAULT_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  // `gradvault inspect f | head`: a reader that stops early is not an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`gradvault: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
