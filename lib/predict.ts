/**
 * Predictions of a trained model: `predict(store.snapshot(), 'softmax', rows)`.
 * The model runs natively on the kernels training uses, in blocks of rows,
 * on several threads for large inputs; {@link predictAsync} does the same off
 * the JavaScript thread. The parameters are found by name, as in
 * {@link evaluate}, and their shapes give the model's.
 *
 * A model trained on standardized data ({@link Dataset.standardize}) has
 * its scaler recorded in the store (`store.scaler`, kept by checkpoints):
 * predict standardizes raw input with it before the model runs, natively,
 * as `Dataset.standardize` does (so raw rows and the same rows standardized
 * give the same bits). A Dataset that carries that scaler is not scaled
 * twice; one that carries another is an InvalidArgumentError.
 */
import { constants } from 'node:buffer';
import { describe, isPlainObject } from './config';
import { InvalidArgumentError, ShapeError, fromNative, guardInput } from './errors';
import { native, type NativeDatasetInstance, type NativeModelSpec, type NativePrediction } from './native';
import { Dataset, scaledData, type Scaler, type SparseRow } from './data';
import { scalerOf, type ParameterStore } from './store';
import type { Snapshot } from './snapshot';
import { modelArg, withTensors, type ModelKind, type ModelOptions } from './trainer';

/**
 * What a model says about each row. Fields by model:
 * - `softmax`, `mlp`: `classes` (the most probable class) and
 *   `probabilities` (rows × `width` classes, row-major, each row sums to 1);
 * - `logistic`: `probabilities` = P(y = +1) per row, `labels` ±1 and
 *   `classes` 0/1 (as {@link Dataset.classIds});
 * - `svm`: `scores` (the margin x·w + b), `labels` ±1, `classes` 0/1;
 * - `linear`: `values`; `mf`: `ratings` of the (user, item) pairs.
 */
export interface Prediction {
  readonly model: ModelKind;
  readonly rows: number;
  /** Values per row in `probabilities` (softmax, mlp: the classes), else 1. */
  readonly width: number;
  /** Threads it ran on (see {@link PredictOptions.threads}). */
  readonly threads: number;
  readonly classes?: Int32Array;
  readonly probabilities?: Float32Array;
  readonly labels?: Float32Array;
  readonly scores?: Float32Array;
  readonly values?: Float32Array;
  readonly ratings?: Float32Array;
}

/** (user, item) pairs for `mf`, ids 0-based. */
export interface RatingPairs {
  readonly users: ArrayLike<number>;
  readonly items: ArrayLike<number>;
}

/**
 * Rows to predict: a {@link Dataset}; a Float32Array of rows × features
 * (row-major); an array of dense rows or of sparse rows (`{ indices, values }`);
 * for `mf`, `{ users, items }`.
 */
export type PredictInput = Dataset | Float32Array | ReadonlyArray<ArrayLike<number>> | readonly SparseRow[] | RatingPairs;

export interface PredictOptions {
  /** Threads for a large input; 0: one per core. Small inputs run on the calling thread. @default 0 */
  readonly threads?: number;
}

/**
 * Predicts with a model at the parameters of a snapshot (or a fresh snapshot
 * of a store). A row of the wrong width is a ShapeError naming the tensor
 * and both shapes; a bad value in an array input an InvalidArgumentError
 * naming the array and index. Raw input of a model trained on
 * standardized data is standardized with its scaler (see above): pass a
 * ParameterStore, or a snapshot of one.
 */
export function predict(
  params: Snapshot | ParameterStore,
  model: ModelKind | ModelOptions,
  input: PredictInput,
  options?: PredictOptions,
): Prediction {
  const m = modelArg(model, 'predict()');
  const threads = threadsOf(options, 'predict()');
  const scaler = scalerOf(params);
  return withTensors(params, 'predict', (names, shapes, arrays) => {
    const d = inputData(input, m, names, shapes, scaler);
    return shape(m, native().predict(names, shapes, arrays, m, d, threads));
  });
}

/** {@link predict} off the JavaScript thread, on a copy of the parameters. */
export async function predictAsync(
  params: Snapshot | ParameterStore,
  model: ModelKind | ModelOptions,
  input: PredictInput,
  options?: PredictOptions,
): Promise<Prediction> {
  const m = modelArg(model, 'predictAsync()');
  const threads = threadsOf(options, 'predictAsync()');
  const scaler = scalerOf(params);
  const pending = withTensors(params, 'predictAsync', (names, shapes, arrays) =>
    native().predictAsync(names, shapes, arrays, m, inputData(input, m, names, shapes, scaler), threads),
  );
  return shape(m, await pending.catch((e: unknown) => Promise.reject(fromNative(e))));
}

// Options that throw when read (a getter, a trapping Proxy) give a typed error.
function threadsOf(options: PredictOptions | undefined, what: string): number {
  return guardInput(
    () => readThreads(options),
    (msg) => new InvalidArgumentError('options', `reading the options of ${what} threw: ${msg}`),
  );
}

function readThreads(options: PredictOptions | undefined): number {
  if (options === undefined) return 0;
  if (!isPlainObject(options)) throw new InvalidArgumentError('options', `options must be an object, got ${describe(options)}`);
  for (const k of Object.keys(options))
    if (k !== 'threads') throw new InvalidArgumentError(k, `unknown option '${k}' of predict() (known: threads)`);
  const t = options.threads ?? 0;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 1024)
    throw new InvalidArgumentError('threads', `threads must be an integer in 0..1024, got ${describe(t)}`);
  return t;
}

// The model's first tensor (w [F], W [F, C], W1 [F, H]) and its input width.
function firstTensor(m: NativeModelSpec): string {
  return m.kind === 'mlp' ? 'W1' : m.kind === 'softmax' ? 'W' : 'w';
}
function featuresOf(m: NativeModelSpec, names: string[], shapes: number[][]): number | undefined {
  const i = names.indexOf(firstTensor(m));
  return i >= 0 ? shapes[i][0] : undefined;
}

// Values per row of the answer: the classes of softmax and mlp (their last
// weight's columns), else 1.
function widthOf(m: NativeModelSpec, names: string[], shapes: number[][]): number {
  let w = m.kind === 'softmax' ? 'W' : '';
  if (m.kind === 'mlp') for (let l = 1; names.includes(`W${l}`); l++) w = `W${l}`;
  const s = w ? shapes[names.indexOf(w)] : undefined;
  return s && s.length === 2 ? s[1] : 1;
}

// The rows to predict, as a native dataset; an input that throws when read
// (a getter, a revoked or trapping Proxy) is an InvalidArgumentError. An
// answer too large for one Float32Array (rows × classes) is one too, before
// the addon tries to allocate it.
function inputData(input: PredictInput, m: NativeModelSpec, names: string[], shapes: number[][], scaler?: Scaler): NativeDatasetInstance {
  const [d, rows] = guardInput(
    () => {
      const h = scaled(readInput(input, m, names, shapes), scaler);
      return [h, h.info().rows] as const;
    },
    (msg) => new InvalidArgumentError('input', `predict(): reading the input threw: ${msg}`),
  );
  const width = widthOf(m, names, shapes);
  if (rows * width > constants.MAX_LENGTH)
    throw new InvalidArgumentError(
      'input',
      `the input has ${rows} rows × ${width} classes = ${rows * width} values to answer, more than one Float32Array holds (${constants.MAX_LENGTH}): predict slices of it (dataset.slice)`,
    );
  return d;
}

function scaled(d: Dataset, scaler: Scaler | undefined): NativeDatasetInstance {
  return scaledData(d, scaler).handle;
}

function isArrayLike(v: unknown): v is ArrayLike<unknown> {
  return ArrayBuffer.isView(v) ? !(v instanceof DataView) : Array.isArray(v);
}

function readInput(input: PredictInput, m: NativeModelSpec, names: string[], shapes: number[][]): Dataset {
  if (input instanceof Dataset) {
    if (!Dataset.isDataset(input))
      throw new InvalidArgumentError('input', 'input has the Dataset prototype but was not made by gradvault (a loader, synthetic or Dataset.from*)');
    return input;
  }
  if (m.kind === 'mf') {
    if (!isPlainObject(input) || !('users' in input) || !('items' in input))
      throw new InvalidArgumentError('input', `model 'mf' predicts { users, items } pairs or a ratings Dataset, got ${describe(input)}`);
    const p = input as RatingPairs;
    return Dataset.fromRatings({ users: p.users, items: p.items });
  }
  const F = featuresOf(m, names, shapes);
  if (input instanceof Float32Array) {
    if (F === undefined || F === 0) throw new InvalidArgumentError('params', 'the parameters have no input tensor of this model');
    if (input.length % F !== 0) {
      const t = firstTensor(m);
      const i = names.indexOf(t);
      throw new ShapeError(t, `the input has ${input.length} values, not a whole number of rows of ${F} features; tensor '${t}' has shape [${shapes[i].join(', ')}]`);
    }
    return Dataset.fromDense(input, { features: F });
  }
  if (Array.isArray(input)) {
    const first: unknown = input[0];
    if (input.length > 0 && isPlainObject(first) && 'indices' in first) {
      // each row's arrays read once (a length that changes between reads
      // cannot shift the rows after it), each value a number (no null → 0)
      const rows = input as readonly SparseRow[];
      const indptr = new Float64Array(rows.length + 1);
      const read: { indices: ArrayLike<number>; values: ArrayLike<number> }[] = [];
      for (let i = 0; i < rows.length; i++) {
        const r: unknown = rows[i];
        const ri: unknown = isPlainObject(r) ? r.indices : undefined;
        const rv: unknown = isPlainObject(r) ? r.values : undefined;
        if (!isArrayLike(ri) || !isArrayLike(rv))
          throw new InvalidArgumentError('input', `input[${i}] is not a sparse row { indices, values } of equal lengths`, i);
        const num = (what: string) => (x: unknown, k: number): number => {
          if (typeof x === 'number') return x;
          if (typeof x === 'bigint') return Number(x);
          throw new InvalidArgumentError('input', `input[${i}].${what}[${k}] is ${describe(x)}, not a number`, i);
        };
        const take = (a: ArrayLike<unknown>, what: string): ArrayLike<number> =>
          // typed arrays of numbers hold nothing else: copied whole (read once)
          ArrayBuffer.isView(a) && !(a instanceof BigInt64Array) && !(a instanceof BigUint64Array)
            ? (a as unknown as Float64Array).slice()
            : Array.from(a, num(what));
        const row = { indices: take(ri, 'indices'), values: take(rv, 'values') };
        if (row.indices.length !== row.values.length)
          throw new InvalidArgumentError('input', `input[${i}] is not a sparse row { indices, values } of equal lengths`, i);
        read.push(row);
        indptr[i + 1] = indptr[i] + row.indices.length;
      }
      const indices = new Float64Array(indptr[rows.length]);
      const values = new Float32Array(indptr[rows.length]);
      read.forEach((r, i) => {
        indices.set(r.indices, indptr[i]);
        values.set(r.values, indptr[i]);
      });
      // features: the largest index + 1, so an index beyond the model is the core's ShapeError
      return Dataset.fromSparse({ indptr, indices, values });
    }
    if (input.length > 0 && (typeof first === 'number' || typeof first === 'bigint'))
      throw new InvalidArgumentError(
        'input',
        `input is one flat array of numbers: predict takes an array of rows, or a Float32Array of rows × ${F ?? 'features'} values`,
      );
    return Dataset.fromDense(input as ReadonlyArray<ArrayLike<number>>, { features: input.length ? undefined : F });
  }
  throw new InvalidArgumentError(
    'input',
    `predict takes a Dataset, a Float32Array of rows × features, or an array of rows, got ${describe(input)}`,
  );
}

function shape(m: NativeModelSpec, r: NativePrediction): Prediction {
  const base = { model: m.kind as ModelKind, rows: r.rows, width: r.width, threads: r.threads };
  switch (m.kind) {
    case 'softmax':
    case 'mlp':
      return Object.freeze({ ...base, classes: r.classes, probabilities: r.values });
    case 'logistic':
      return Object.freeze({ ...base, classes: r.classes, labels: r.labels, probabilities: r.values });
    case 'svm':
      return Object.freeze({ ...base, classes: r.classes, labels: r.labels, scores: r.values });
    case 'linear':
      return Object.freeze({ ...base, values: r.values });
    default:
      return Object.freeze({ ...base, ratings: r.values });
  }
}
