// gradvault predict --model FILE --data FILE [--out FILE]: a checkpoint's
// model on the rows of a data file, as CSV (default) or JSON lines.
import * as fs from 'node:fs';
import { evaluate, type ModelKind } from '../trainer';
import { predict, type Prediction } from '../predict';
import { scaledData } from '../data';
import { ParameterStore } from '../store';
import { InvalidArgumentError, ShapeError } from '../errors';
import { writable } from './args';
import { loadFile, score } from './data';
import { inferModel } from './export';
import { fmt } from './output';

export interface PredictCliOptions {
  model: string;
  data: string;
  kind?: ModelKind;
  format?: string;
  labels?: string;
  label?: string;
  out?: string;
  json: boolean;
}

// The columns of one row's answer, by model.
function columns(p: Prediction): { head: string[]; row: (i: number) => (number | string)[] } {
  const w = p.width;
  switch (p.model) {
    case 'softmax':
    case 'mlp':
      return {
        head: ['row', 'class', ...Array.from({ length: w }, (_, c) => `p${c}`)],
        row: (i) => [i, p.classes![i], ...Array.from(p.probabilities!.subarray(i * w, (i + 1) * w), (v) => v.toPrecision(6))],
      };
    case 'logistic':
      return { head: ['row', 'label', 'probability'], row: (i) => [i, p.labels![i], p.probabilities![i].toPrecision(6)] };
    case 'svm':
      return { head: ['row', 'label', 'score'], row: (i) => [i, p.labels![i], p.scores![i].toPrecision(6)] };
    case 'linear':
      return { head: ['row', 'value'], row: (i) => [i, p.values![i].toPrecision(7)] };
    default:
      return { head: ['row', 'rating'], row: (i) => [i, p.ratings![i].toPrecision(7)] };
  }
}

export async function predictCommand(o: PredictCliOptions): Promise<void> {
  writable('--out', o.out);
  const store = await ParameterStore.load(o.model);
  try {
    // --kind, else the model the checkpoint records, else the tensor names'
    const kind = o.kind ?? store.model?.model ?? inferModel(store.tensors.map((t) => t.name), '--kind');
    // (a LIBSVM file's width is its largest index: fewer features than the model's fit)
    const raw = await loadFile(o.data, o);
    // a model trained on standardized data: the rows standardized with its scaler (predict would, evaluate reads them as given)
    const scaler = store.scaler;
    const data = scaledData(raw, scaler);
    const t0 = process.hrtime.bigint();
    const p = predict(store, kind, data);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const { head, row } = columns(p);
    const lines: string[] = [];
    if (o.json) {
      for (let i = 0; i < p.rows; i++) lines.push(JSON.stringify(Object.fromEntries(head.map((h, k) => [h, Number(row(i)[k])]))));
    } else {
      lines.push(head.join(','));
      for (let i = 0; i < p.rows; i++) lines.push(row(i).join(','));
    }
    const text = lines.join('\n') + '\n';
    if (o.out) {
      const tmp = `${o.out}.tmp-${process.pid}`;
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, o.out);
    } else {
      process.stdout.write(text);
    }
    // The summary goes to stderr, so stdout stays the predictions alone.
    const labelled = kind === 'mf' || kind === 'linear' ? true : data.classes > 0;
    // evaluate() takes rows of the model's width only: a LIBSVM file of fewer
    // features is predicted (above) but not scored, and the command succeeds
    let vs = '';
    if (labelled) {
      try {
        vs = `; against the file's labels: ${score(evaluate(store, kind, data))}`;
      } catch (e) {
        if (!(e instanceof ShapeError || (e instanceof InvalidArgumentError && e.field === 'data'))) throw e;
        vs = `; not scored against the file's labels (${e.message})`;
      }
    }
    process.stderr.write(
      `predicted ${fmt(p.rows)} rows with ${kind} (${o.model}) in ${fmt(ms, 1)} ms${o.out ? ` into ${o.out}` : ''}` +
        `${data !== raw ? `; standardized with the checkpoint's scaler (${fmt(scaler!.features)} features)` : ''}${vs}\n`,
    );
  } finally {
    store.close();
  }
}
