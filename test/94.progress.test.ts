// 94: progress you can watch (issue 15, items 6 and 4). run(data) yields one
// TrainProgress per epoch (type 'epoch'); run(data, { progressEvery }) also
// yields StepProgress events within epochs, read from the native threads'
// counters (poll()), with a running loss, a rate and an ETA; its timer is
// gone on every way out (done, error, abort, break). The loss-blowup
// warning fires on a diverging run and stays quiet on a normal one. The
// CLI's bar moves within epochs in a real pseudo-terminal, and each finished
// epoch's line stays on screen.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  AbortError,
  Dataset,
  InvalidArgumentError,
  Trainer,
  synthetic,
  type StepProgress,
  type TrainProgress,
  type TrainResult,
} from '../lib';
import { lossWarning } from '../lib/trainer';
import { wide } from './helpers';

jest.setTimeout(120_000);

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');

/**
 * Watches the intervals made and cleared from now on; `open()` stops
 * watching and counts those made and those still running (never cleared).
 */
function intervals(): { open(): { made: number; open: number; refed: number } } {
  const set = jest.spyOn(global, 'setInterval');
  const clear = jest.spyOn(global, 'clearInterval');
  return {
    open() {
      const made = set.mock.results.map((r) => r.value as NodeJS.Timeout);
      const cleared = new Set(clear.mock.calls.map((c) => c[0]));
      set.mockRestore();
      clear.mockRestore();
      return { made: made.length, open: made.filter((h) => !cleared.has(h)).length, refed: made.filter((h) => h.hasRef()).length };
    },
  };
}

let sparse: Dataset;
beforeAll(() => {
  // about 0.5 s an epoch at batch 1 on 2 threads: several 50 ms steps per epoch
  sparse = synthetic('sparse-logistic', { rows: 60000, seed: 3 });
});

function logistic(epochs: number): Trainer {
  return new Trainer({ model: 'logistic', threads: 2, epochs, batchSize: 1, seed: 1, optimizer: { kind: 'sgd', lr: 0.5 } });
}

async function collect<T>(it: AsyncGenerator<T, TrainResult, undefined>): Promise<{ events: T[]; result: TrainResult }> {
  const events: T[] = [];
  for (;;) {
    const r = await it.next();
    if (r.done) return { events, result: r.value };
    events.push(r.value);
  }
}

test('run(data) yields exactly one epoch event per epoch, typed', async () => {
  const blobs = synthetic('blobs', { rows: 3000, features: 8, classes: 3, seed: 2 });
  const t = new Trainer({ model: 'softmax', threads: 2, epochs: 3, batchSize: 8, optimizer: { kind: 'sgd', lr: 0.05 } });
  // the overloads: without progressEvery only TrainProgress comes out
  const it: AsyncGenerator<TrainProgress, TrainResult, undefined> = t.run(blobs, {});
  const { events } = await collect(it);
  expect(events.map((e) => [e.type, e.epoch])).toEqual([['epoch', 1], ['epoch', 2], ['epoch', 3]]);
  // (types only) with progressEvery, steps may come: not a TrainProgress-only generator
  // @ts-expect-error StepProgress is not a TrainProgress
  ((): AsyncGenerator<TrainProgress, TrainResult, undefined> => t.run(blobs, { progressEvery: 100 }));
  for (const e of events) {
    expect(Object.isFrozen(e)).toBe(true);
    expect(e.warning).toBeUndefined();
  }
});

test('progressEvery: step events within epochs, between the epoch events', async () => {
  const t = logistic(3);
  const watch = intervals();
  const it: AsyncGenerator<TrainProgress | StepProgress, TrainResult, undefined> = t.run(sparse, { progressEvery: 50 });
  const { events, result } = await collect(it);
  expect(result.epochs).toBe(3);
  const epochs = events.filter((e): e is TrainProgress => e.type === 'epoch');
  const steps = events.filter((e): e is StepProgress => e.type === 'step');
  expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
  expect(steps.length).toBeGreaterThan(0);
  // at least one step caught an epoch half-way
  expect(steps.some((s) => s.epochSamples > 0 && s.epochSamples < s.epochRows)).toBe(true);
  let done = 0;  // epochs ended so far
  let samples = 0;
  for (const e of events) {
    expect(Object.isFrozen(e)).toBe(true);
    expect(e.samples).toBeGreaterThanOrEqual(samples);  // never goes back
    samples = e.samples;
    if (e.type === 'epoch') {
      done = e.epoch;
      continue;
    }
    // a step belongs to the epoch after the last one reported
    expect(e.epoch).toBe(done + 1);
    expect(e.epochs).toBe(3);
    expect(e.epochRows).toBe(sparse.rows);
    expect(e.epochSamples).toBeLessThanOrEqual(sparse.rows);
    expect(e.samples).toBe(done * sparse.rows + e.epochSamples);
    if (e.epochSamples > 0) {
      expect(e.loss).toBeGreaterThan(0);
      expect(e.loss).toBeLessThan(2);
      expect(e.samplesPerSec).toBeGreaterThan(0);
      expect(Number.isFinite(e.eta)).toBe(true);
      expect(e.eta).toBeGreaterThanOrEqual(0);
    } else {
      expect(Number.isNaN(e.loss)).toBe(true);
    }
    expect(e.lr).toBeCloseTo(0.5, 6);
    expect(e.version).toBeGreaterThan(0);
    expect(e.seconds).toBeGreaterThan(0);
    expect(e.warning).toBeUndefined();  // a normal run: no blowup warning
  }
  // ETA: decreasing-ish (from an early step to the last, not timed)
  const timed = steps.filter((s) => Number.isFinite(s.eta));
  if (timed.length >= 2) expect(timed[timed.length - 1].eta).toBeLessThan(timed[0].eta + 0.5);
  for (const e of epochs) expect(e.warning).toBeUndefined();
  expect(watch.open()).toEqual({ made: 1, open: 0, refed: 0 });
});

test('progressEvery must be a number of milliseconds >= 50', async () => {
  const t = logistic(1);
  for (const bad of [0, 49, -100, NaN, Infinity, '100', null, 2 ** 31]) {
    let err: unknown;
    try {
      await t.run(sparse, { progressEvery: bad as number }).next();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe('progressEvery');
    expect((err as Error).message).toMatch(/progressEvery must be a number of milliseconds/);
  }
  expect(t.running).toBe(false);
});

test('breaking out on a step stops the run and leaves no timer', async () => {
  const t = logistic(50);
  const watch = intervals();
  let step: StepProgress | undefined;
  for await (const e of t.run(sparse, { progressEvery: 50 })) {
    if (e.type === 'step' && e.epochSamples > 0) {
      step = e;
      break;
    }
  }
  expect(step).toBeDefined();
  expect(t.running).toBe(false);
  expect(watch.open()).toEqual({ made: 1, open: 0, refed: 0 });
});

test('abort through a signal while steps flow: AbortError, no timer', async () => {
  const t = logistic(50);
  const watch = intervals();
  const ac = new AbortController();
  let steps = 0;
  let err: unknown;
  try {
    for await (const e of t.run(sparse, { progressEvery: 50, signal: ac.signal }))
      if (e.type === 'step' && ++steps === 3) ac.abort();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(AbortError);
  expect(steps).toBe(3);
  expect(watch.open()).toEqual({ made: 1, open: 0, refed: 0 });
});


test('an error ends the steps too (no timer left)', async () => {
  // lr 0.1 on the wide data under nonFinite 'reject': the run fails in epoch 1
  const t = new Trainer({ model: 'linear', threads: 1, epochs: 5, batchSize: 1, optimizer: { kind: 'sgd', lr: 0.1 } });
  const watch = intervals();
  await expect(collect(t.run(wide(20000), { progressEvery: 50 }))).rejects.toThrow(/non-finite/);
  expect(watch.open()).toEqual({ made: 1, open: 0, refed: 0 });
});

describe('loss-blowup warning', () => {
  test('fires on a diverging run, with the numbers, the lr and what to try', async () => {
    const t = new Trainer({ model: 'linear', threads: 1, epochs: 3, batchSize: 32, seed: 1, optimizer: { kind: 'sgd', lr: 7.5e-9 } });
    const { events } = await collect(t.run(wide(2000), { progressEvery: 50 }));
    const epochs = events.filter((e): e is TrainProgress => e.type === 'epoch');
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    // epoch 1 too: its loss is compared with the loss the run started from
    // (the parameters before the run, on the first 1,000 rows)
    for (const e of epochs) {
      expect(e.loss).toBeGreaterThan(4);
      expect(e.warning).toMatch(new RegExp(`^loss far above its start: epoch ${e.epoch}'s mean loss \\S+ is \\S+x the loss the run started from \\(\\S+\\)`));
      expect(e.warning).toContain('7.5e-9');
      expect(e.warning).toContain('Dataset.standardize()');
      expect(e.warning).toContain('--standardize');
    }
    // steps caught after epoch 1 (if any came: the run is short) warn too
    for (const s of events) if (s.type === 'step' && s.epoch >= 2 && s.epochSamples >= 100) expect(s.warning).toMatch(/^running loss far above its start/);
  });

  test('stays quiet on a normal run (sparse logistic at a sane lr)', async () => {
    const { events } = await collect(logistic(4).run(sparse, { progressEvery: 50 }));
    expect(events.filter((e) => e.warning !== undefined)).toEqual([]);
  });

  test('the rule, exactly', () => {
    const lr = 0.1;
    // epochs
    expect(lossWarning(lr, [])).toBeUndefined();
    expect(lossWarning(lr, [1])).toBeUndefined();
    expect(lossWarning(lr, [1, 2])).toBeUndefined();  // 2x: not above it
    expect(lossWarning(lr, [1, 2.01])).toMatch(/^loss far above its start: epoch 2's mean loss 2.01 is 2.01x epoch 1's \(1\); try a learning rate below 0.1 \(e.g. 0.01\)/);
    expect(lossWarning(lr, [1, 0.5, 0.56, 0.62, 0.69])).toMatch(/^loss rising: up more than 10% in each of the last 3 epochs \(0.5 → 0.56 → 0.62 → 0.69\)/);
    expect(lossWarning(lr, [1, 0.5, 0.55, 0.62, 0.69])).toBeUndefined();  // 0.55 is exactly +10%
    // the loss the run started from (S): epoch 1 already compared with it
    expect(lossWarning(lr, [4.01], undefined, 1)).toMatch(/^loss far above its start: epoch 1's mean loss 4.01 is 4.01x the loss the run started from \(1\)/);
    expect(lossWarning(lr, [4], undefined, 1)).toBeUndefined();
    expect(lossWarning(lr, [0.5, 0.4], undefined, 0.69)).toBeUndefined();
    expect(lossWarning(lr, [1], { epoch: 1, loss: 5, epochSamples: 1000, epochRows: 2000 }, 1)).toMatch(/^running loss far above its start: 5 after 1000 rows of epoch 1, 5x the loss the run started from \(1\)/);
    expect(lossWarning(lr, [1, 0.5, 0.56, 0.62])).toBeUndefined();  // only 2 rises
    expect(lossWarning(lr, [1, 0.5, 0.4, 0.3])).toBeUndefined();
    expect(lossWarning(lr, [1, NaN])).toMatch(/^loss not finite: epoch 2's mean loss is NaN/);
    expect(lossWarning(lr, [0, 5])).toBeUndefined();  // no ratio to a zero start
    // steps: the reference is epoch 1's loss once known, before that the first running loss seen
    const step = (loss: number, epochSamples: number, firstRunning?: number) => ({ epoch: 1, loss, epochSamples, epochRows: 100000, firstRunning });
    expect(lossWarning(lr, [], step(5, 999, 1))).toBeUndefined();  // fewer than min(1000, rows / 20) rows yet
    expect(lossWarning(lr, [], step(4, 1000, 1))).toBeUndefined();
    expect(lossWarning(lr, [], step(4.5, 1000, 1))).toMatch(/^running loss far above its start: 4.5 after 1000 rows of epoch 1, 4.5x the first running loss seen \(1\)/);
    expect(lossWarning(lr, [], step(4.5, 1000))).toBeUndefined();  // no reference yet
    expect(lossWarning(lr, [2], { ...step(9, 1000), epoch: 2 })).toMatch(/^running loss far above its start: 9 after 1000 rows of epoch 2, 4.5x epoch 1's mean loss \(2\)/);
    expect(lossWarning(lr, [2], { ...step(8, 1000), epoch: 2 })).toBeUndefined();
    expect(lossWarning(lr, [], { ...step(9, 10), epochRows: 200 })).toBeUndefined();  // small sets: rows / 20 = 10 rows, no reference
    expect(lossWarning(lr, [], step(Infinity, 1000, 1))).toMatch(/^loss not finite/);
  });
});

// util-linux `script` gives the CLI a real pseudo-terminal (essential in Debian; skipped with a reason where missing)
const hasScript = spawnSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' }).status === 0;
(hasScript ? test : test.skip)('CLI in a terminal: the bar moves within epochs, each epoch line stays on screen' + (hasScript ? '' : ' (skipped: util-linux `script` is not installed)'), () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-pty-'));
  try {
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} train --data synthetic:sparse-logistic --rows 400000 --epochs 3 --threads 2 --batch 1 --progress-every 50`;
    const raw = execFileSync('script', ['-qfec', cmd, '/dev/null'], { cwd: dir, encoding: 'utf8', env: { ...process.env, COLUMNS: '160', LINES: '40', TERM: 'xterm' }, timeout: 100_000 });
    // The bar was drawn several times before epoch 1's line: distinct percentages with an ETA.
    const first = raw.indexOf('epoch 1/3:');
    expect(first).toBeGreaterThan(0);
    const draws = [...raw.slice(0, first).matchAll(/epoch 1\/3 \[[^\]]*\] (\d+)% \| loss ([^\s\x1b]+) \| ([^\s\x1b]+) samples\/s \| ETA ([^\s\x1b]+)/g)];
    const percents = new Set(draws.map((m) => m[1]));
    expect(percents.size).toBeGreaterThanOrEqual(2);
    expect(draws.some((m) => /^\d+s$/.test(m[4]) && m[2] !== '–')).toBe(true);
    // What stays on screen, as a terminal shows it: every epoch's line, printed not overwritten.
    const screen = render(raw);
    for (let e = 1; e <= 3; e++) expect(screen).toMatch(new RegExp(`^  epoch ${e}/3: loss [\\d.]+, test accuracy [\\d.]+, [\\d,]+ samples/s`, 'm'));
    expect(screen).toMatch(/^result/m);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** The text a terminal ends up showing for `raw` (the control sequences cli-progress writes). */
function render(raw: string): string {
  const lines: string[][] = [[]];
  let row = 0, col = 0;
  const line = () => (lines[row] ??= []);
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '\x1b') {
      const m = /^\x1b\[(\??)([\d;]*)([A-Za-z])/.exec(raw.slice(i, i + 16));
      if (!m) continue;
      i += m[0].length - 1;
      if (m[1]) continue;  // modes (cursor shown, line wrap)
      const n = m[2] === '' ? undefined : Number(m[2].split(';')[0]);
      switch (m[3]) {
        case 'G': col = (n ?? 1) - 1; break;
        case 'A': row = Math.max(0, row - (n ?? 1)); break;
        case 'B': row += n ?? 1; break;
        case 'K': if ((n ?? 0) === 2) lines[row] = []; else line().length = Math.min(line().length, col); break;
        case 'J': line().length = Math.min(line().length, col); lines.length = row + 1; break;
      }
    } else if (c === '\r') col = 0;
    else if (c === '\n') {
      row++;
      col = 0;
      line();
    } else {
      line()[col++] = c;
    }
  }
  return lines.map((l) => Array.from(l, (ch) => ch ?? ' ').join('').trimEnd()).join('\n');
}
