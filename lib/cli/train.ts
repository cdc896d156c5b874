// gradvault train: one model on one data set, with progress, a report and
// a checkpoint.
import * as fs from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import type { Mode, OptimizerKind } from '../config';
import { ParameterStore } from '../store';
import { inspectCheckpoint } from '../checkpoint';
import { Trainer, describeModel, evaluate, type ModelKind, type ModelOptions, type TrainProgress, type TrainResult } from '../trainer';
import { UsageError, writable } from './args';
import { defaultLr, defaultModel, loadData, score } from './data';
import { fmt, out, table } from './output';
import { htmlReport } from './report';

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
  json: boolean;
  report?: string;
  plain?: boolean;
}

export async function train(o: TrainOptions): Promise<void> {
  writable('--save', o.save);
  writable('--report', o.report);
  // the model the --resume checkpoint records, where it records one: the
  // run's model unless --model says otherwise, and then they must agree
  const recorded = o.resume ? (await inspectCheckpoint(o.resume)).model : undefined;
  if (recorded && o.model && o.model !== recorded.model)
    throw new UsageError(
      `--model ${o.model} does not fit --resume ${o.resume}, which holds the parameters of model ${describeModel(recorded)}: leave out --model, or train a new store`,
    );
  const data = await loadData(o);
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
