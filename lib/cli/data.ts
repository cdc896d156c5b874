// --data and its companions: which data set a command trains and tests on,
// and the model and learning rate that suit it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Dataset, loadCsv, loadIdx, loadLibsvm, synthetic } from '../data';
import { defaultLearningRate, type ModelKind } from '../trainer';
import { UsageError } from './args';
import { fmt } from './output';

export const FASHION = '/usr/share/datasets/fashion-mnist';

export interface Data {
  train: Dataset;
  test: Dataset;
  what: string;
}

/** --data: a file (IDX, LIBSVM or CSV, by --format or by its name), synthetic:KIND, or the default set. */
export async function loadData(o: { data?: string; format?: string; labels?: string; label?: string; test?: string; rows?: number; seed: number }): Promise<Data> {
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
    all = await loadFile(o.data!, o);
  }
  if (o.test) {
    const t = o.test;
    const test = /\.csv$/i.test(t) ? await loadCsv(t, { label: csvLabel(o.label) }) : /idx\d-ubyte(\.gz)?$/i.test(t) ? await loadIdx(t, t.replace('images-idx3', 'labels-idx1')) : await loadLibsvm(t, { features: all.features });
    return { train: cut(all), test, what };
  }
  const [train, test] = all.split(0.9);
  return { train: cut(train), test, what: `${what} (90% train, 10% test)` };
}

/** One data file, its format from --format or its name (IDX labels beside it, or --labels). */
export async function loadFile(file: string, o: { format?: string; labels?: string; label?: string }): Promise<Dataset> {
  const format = o.format ?? (/\.csv$/i.test(file) ? 'csv' : /idx\d-ubyte(\.gz)?$/i.test(file) ? 'idx' : 'libsvm');
  if (format === 'idx') {
    const labels = o.labels ?? file.replace('images-idx3', 'labels-idx1');
    if (labels === file) throw new UsageError('--labels FILE is needed with an IDX images file');
    return loadIdx(file, labels);
  }
  if (format === 'csv') return loadCsv(file, { label: csvLabel(o.label) });
  if (format === 'libsvm') return loadLibsvm(file);
  throw new UsageError(`--format must be idx, libsvm or csv, got '${format}'`);
}

export function csvLabel(label: string | undefined): string | number {
  if (label === undefined) throw new UsageError('--label COLUMN is needed with a CSV file (a column index or header name)');
  return /^\d+$/.test(label) ? Number(label) : label;
}

export function defaultModel(d: Dataset): ModelKind {
  if (d.kind === 'ratings') return 'mf';
  if (d.classes === 2) return 'logistic';
  if (d.classes > 2) return 'softmax';
  return 'linear';
}

export function score(r: { accuracy?: number; rmse?: number; loss: number }): string {
  return r.accuracy !== undefined ? `accuracy ${fmt(r.accuracy, 4)}` : `rmse ${fmt(r.rmse!, 4)}`;
}

/** The learning rate a command uses when none is given (sgd; adam: 0.001). */
export const defaultLr = defaultLearningRate;
