// gradvault train: one model on one data set, with progress, a report and
// a checkpoint.
import * as fs from 'node:fs';
import { MultiBar, Presets } from 'cli-progress';
import type { Mode, OptimizerKind } from '../config';
import { ParameterStore } from '../store';
import { inspectCheckpoint } from '../checkpoint';
import { Trainer, describeModel, evaluate, type ModelKind, type ModelOptions, type StepProgress, type TrainProgress, type TrainResult } from '../trainer';
import { UsageError, writable } from './args';
import { defaultLr, defaultModel, loadData, score } from './data';
import { fmt, out, table } from './output';
import { htmlReport, trainSample } from './report';

export interface TrainOptions {
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
  standardize?: boolean;
  json: boolean;
  report?: string;
  plain?: boolean;
  /** ms between the bar's redraws in a terminal (default 250) */
  progressEvery?: number;
}

export async function train(o: TrainOptions): Promise<void> {
  writable('--save', o.save);
  writable('--report', o.report);
  // the model the --resume checkpoint records, where it records one: the
  // run's model unless --model says otherwise, and then they must agree
  const inspected = o.resume ? await inspectCheckpoint(o.resume) : undefined;
  const recorded = inspected?.model;
  if (recorded && o.model && o.model !== recorded.model)
    throw new UsageError(
      `--model ${o.model} does not fit --resume ${o.resume}, which holds the parameters of model ${describeModel(recorded)}: leave out --model, or train a new store`,
    );
  let data = await loadData(o);
  // --standardize: a scaler fitted on the train set alone, applied to the
  // test set too (the store records it; predict applies it to raw rows).
  // A --resume checkpoint that records a scaler: that one, flag or not.
  if (o.standardize || inspected?.scaler) {
    const train = inspected?.scaler ? data.train.standardize(inspected.scaler) : data.train.standardize();
    data = { ...data, train, test: data.test.standardize(train.scaler!) };
    if (!o.json)
      out(`Standardized ${fmt(train.features)} features with ${inspected?.scaler ? `the scaler of ${o.resume}` : "the train set's mean and standard deviation"}${train.sparse ? ' (sparse: scaled, not centred)' : ''}; the test set with the same scaler`);
  }
  const model = o.model ?? recorded?.model ?? defaultModel(data.train);
  const lr = o.lr ?? defaultLr(model, o.optimizer);
  const optimizer = { kind: o.optimizer, lr, ...(o.momentum !== undefined ? { momentum: o.momentum } : {}) };
  // the options of its kind: the flags', else the checkpoint's
  const mine = recorded?.model === model ? recorded : undefined;
  const hidden = o.hidden ?? mine?.hidden;
  const rank = o.rank ?? mine?.rank;
  const modelOpts: ModelOptions = {
    model,
    ...(hidden ? { hidden } : {}),
    ...(rank ? { rank } : {}),
    ...(mine?.biases !== undefined ? { biases: mine.biases } : {}),
    ...(mine?.l2 !== undefined ? { l2: mine.l2 } : {}),
  };
  const runOpts = { threads: o.threads, epochs: o.epochs, batchSize: o.batch, seed: o.seed };
  let trainer: Trainer;
  if (o.resume) {
    const store = await ParameterStore.load(o.resume, { mode: o.mode, optimizer });
    trainer = new Trainer(store, { ...modelOpts, ...runOpts });
  } else {
    trainer = new Trainer({ ...modelOpts, ...runOpts, mode: o.mode, optimizer });
  }
  const say = o.json ? () => undefined : out;
  say(`Training ${model}${recorded && !o.model ? ` (the checkpoint's)` : ''} on ${data.what}: ${fmt(data.train.rows)} rows, ${fmt(data.train.features)} features; ` + `mode ${o.mode}, ${o.threads} threads, batch ${o.batch}, ${o.optimizer} lr ${lr}${o.resume ? `, resumed from ${o.resume}` : ''}`);
  // In a terminal: a bar over the run's rows that moves within epochs (step
  // events every --progress-every ms), each finished epoch's line printed above it (it
  // stays on screen), each kind of warning printed once.
  const tty = !o.json && !o.plain && process.stdout.isTTY;
  const every = o.progressEvery ?? 250;
  const bars = tty ? new MultiBar({ fps: Math.max(10, 1000 / every), format: '  epoch {epoch}/{epochs} [{bar}] {percentage}% | loss {loss} | {sps} samples/s | ETA {etaText}', hideCursor: true }, Presets.shades_classic) : null;
  const rowsPerEpoch = data.train.rows;
  const bar = bars?.create(Math.max(1, o.epochs * rowsPerEpoch), 0, { epoch: 1, epochs: o.epochs, loss: '–', sps: '–', etaText: '–' }) ?? null;
  const above = (line: string) => {
    if (bars) {
      bars.log(line + '\n');
      bars.update();  // now: the line above, the bar redrawn under it
    } else say(line);
  };
  const warned = new Set<string>();
  const warn = (w: string | undefined) => {
    const kind = w?.split(':')[0];
    if (!w || !kind || warned.has(kind)) return;
    warned.add(kind);
    above(`  warning: ${w}`);
  };
  const etaText = (seconds: number) => {
    if (!Number.isFinite(seconds)) return '–';
    const s = Math.ceil(seconds), two = (n: number) => String(n).padStart(2, '0');
    return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${two(s % 60)}s` : `${Math.floor(s / 3600)}h${two(Math.floor((s % 3600) / 60))}m`;
  };
  const showStep = (s: StepProgress) =>
    bar?.update(s.samples, { epoch: s.epoch, epochs: s.epochs, loss: Number.isNaN(s.loss) ? '–' : fmt(s.loss, 4), sps: fmt(s.samplesPerSec), etaText: etaText(s.eta) });
  const epochs: (TrainProgress & { test?: ReturnType<typeof evaluate>; train?: ReturnType<typeof evaluate> })[] = [];
  // the report's train curve: the same parameters on the train set (its first 10,000 rows at most)
  const trainRows = o.report ? trainSample(data.train) : undefined;
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  let result: TrainResult | undefined;
  try {
    const it = bar ? trainer.run(data.train, { signal: ac.signal, progressEvery: every }) : trainer.run(data.train, { signal: ac.signal });
    for (;;) {
      const r = await it.next();
      if (r.done) {
        result = r.value;
        break;
      }
      if (r.value.type === 'step') {
        showStep(r.value);
        warn(r.value.warning);
        continue;
      }
      const p = r.value;
      const snap = trainer.store!.snapshot();
      const test = evaluate(snap, modelOpts, data.test);
      const train = trainRows && evaluate(snap, modelOpts, trainRows);
      snap.release();
      epochs.push({ ...p, test, ...(train ? { train } : {}) });
      const { type: _epoch, ...wire } = p;  // the JSON lines as before (event: 'epoch'), warning included when present
      if (o.json) out(JSON.stringify({ event: 'epoch', ...wire, test }));
      else {
        if (bar) {
          const rate = p.seconds > 0 ? p.samples / p.seconds : 0;
          const left = Math.max(0, p.epochs * rowsPerEpoch - p.samples);
          bar.update(p.samples, { epoch: Math.min(p.epoch + 1, p.epochs), epochs: p.epochs, loss: fmt(p.loss, 4), sps: fmt(p.samplesPerSec), etaText: etaText(rate > 0 ? left / rate : NaN) });
        }
        above(`  epoch ${p.epoch}/${p.epochs}: loss ${fmt(p.loss, 4)}, test ${score(test)}, ${fmt(p.samplesPerSec)} samples/s, staleness ${fmt(p.staleness.mean, 2)}`);
        warn(p.warning);
      }
    }
  } finally {
    bars?.stop();
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
    fs.writeFileSync(o.report, htmlReport({ model: describeModel(store.model ?? modelOpts), kind: model, what: data.what, train: data.train, test: data.test, options: o, lr }, epochs, ev));
    say(`report: ${o.report}`);
  }
  store.close();
}
