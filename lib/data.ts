/**
 * Training data: loaders for IDX (MNIST family, raw or gzip), LIBSVM and CSV
 * files, and deterministic synthetic sets. Files are parsed natively, in
 * chunks, off the JavaScript thread; the rows stay in native memory, where a
 * native trainer reads them without copies. JavaScript reads copies.
 *
 * Errors: a malformed file rejects with {@link DataFormatError} (file, and
 * line + column for text or byte offset for IDX); a missing file with
 * {@link FileError} code `ERR_NOT_FOUND` (`ERR_IO` when it cannot be read);
 * invalid options throw {@link ConfigError} synchronously.
 */
import { checkKeys, describe, isPlainObject, num, oneOf, bool } from './config';
import { ConfigError, InvalidArgumentError, fromNative, guardInput } from './errors';
import { checkPath } from './paths';
import { native, type NativeDatasetInstance, type NativeScaler, type NativeSyntheticOptions } from './native';

export type DatasetKind = 'dense' | 'sparse' | 'ratings';

/** One row of a sparse dataset: 0-based feature indices (ascending) and their values. */
export interface SparseRow {
  readonly indices: Uint32Array;
  readonly values: Float32Array;
}

/** One rating of a `ratings` dataset. */
export interface RatingRow {
  readonly user: number;
  readonly item: number;
  readonly rating: number;
}

/**
 * A dataset in native memory: dense float32 rows, sparse CSR rows, or
 * (user, item, rating) triples.
 */
export class Dataset {
  readonly kind: DatasetKind;
  readonly rows: number;
  /** Columns of a row; for `ratings`, users + items (each rating a one-hot (user, item) row). */
  readonly features: number;
  /** 2 for binary labels (±1), k for class ids 0..k-1, 0 for regression targets and ratings. */
  readonly classes: number;
  /** Stored values: rows × features for dense, the nonzeros for sparse, 2 per rating. */
  readonly nnz: number;
  /** `ratings`: the number of users and items (ids are 0-based); 0 otherwise. */
  readonly users: number;
  readonly items: number;
  /** @internal The native dataset, for the native trainer. */
  readonly handle: NativeDatasetInstance;
  #labels: Float32Array | undefined;
  #classIds: Int32Array | null | undefined;
  #scaler: Scaler | null | undefined;

  /** @internal Datasets come from the loaders, {@link synthetic} and {@link Dataset.slice}. */
  constructor(handle: NativeDatasetInstance) {
    const info = handle.info();
    this.handle = handle;
    this.kind = info.kind;
    this.rows = info.rows;
    this.features = info.features;
    this.classes = info.classes;
    this.nnz = info.nnz;
    this.users = info.users;
    this.items = info.items;
  }

  get sparse(): boolean {
    return this.kind === 'sparse';
  }

  /**
   * Per row: ±1 for binary data, the class id, the regression target or the
   * rating. A copy made on first access (changing it changes nothing native).
   */
  get labels(): Float32Array {
    return (this.#labels ??= this.handle.labels());
  }

  /** Class ids 0..classes-1 per row (binary: 0 for -1, 1 for +1); null without classes. A copy, as `labels`. */
  get classIds(): Int32Array | null {
    if (this.#classIds === undefined) this.#classIds = this.handle.classIds();
    return this.#classIds;
  }

  /** A copy of row i: a Float32Array (dense), `{ indices, values }` (sparse) or `{ user, item, rating }`. */
  row(i: number): Float32Array | SparseRow | RatingRow {
    this.#checkRow(i);
    return this.handle.row(i);
  }

  /** A copy of dense row i; InvalidArgumentError for another kind. */
  denseRow(i: number): Float32Array {
    this.#checkKind('dense', 'denseRow');
    return this.row(i) as Float32Array;
  }

  /** A copy of sparse row i; InvalidArgumentError for another kind. */
  sparseRow(i: number): SparseRow {
    this.#checkKind('sparse', 'sparseRow');
    return this.row(i) as SparseRow;
  }

  /**
   * The scaler this dataset's values were standardized with
   * ({@link Dataset.standardize}); null for raw data. Slices and shuffles
   * of a standardized dataset carry it. Apply it to other data with
   * `other.standardize(dataset.scaler)`; a Trainer records it in the store
   * (`store.scaler`, saved in checkpoints), and {@link predict} applies it
   * to raw rows.
   */
  get scaler(): Scaler | null {
    if (this.#scaler === undefined) {
      const n = this.handle.scaler();
      this.#scaler = n ? scalerFromNative(n) : null;
    }
    return this.#scaler;
  }

  /**
   * Feature scaling: a new dataset whose every feature is standardized,
   * x' = (x - mean) / scale, computed in double and rounded to float32 once.
   * It carries its scaler as {@link Dataset.scaler} (this dataset is
   * unchanged: datasets are immutable, as {@link shuffle}).
   *
   * - `standardize()` fits the scaler on this dataset, natively in double
   *   precision over its rows: per feature the mean and the (population)
   *   standard deviation; a constant feature gets scale 1. Fit it on the
   *   training set only.
   * - `standardize(scaler)` applies an existing scaler, e.g. the training
   *   set's to the test set: `test.standardize(train.scaler)`. It is checked:
   *   `mean` and `scale` of `features` numbers, each finite, each scale > 0;
   *   an {@link InvalidArgumentError} naming the field and index otherwise.
   *
   * Sparse datasets (LIBSVM) are scaled, not centred: centring would make
   * every row dense, so the fitted mean is recorded as 0 and each stored
   * value divided by its feature's standard deviation (computed with the
   * implicit zeros included), and a scaler applied to sparse data must have
   * an all-zero mean. A sparse file's width is its largest index + 1, so
   * a scaler of a wider (training) set is accepted for it.
   *
   * Ratings datasets (mf) have no features to scale, and a dataset already
   * standardized is not scaled twice: both are InvalidArgumentErrors.
   */
  standardize(scaler?: ScalerLike): Dataset {
    if (this.kind === 'ratings')
      throw new InvalidArgumentError('kind', 'standardize() needs a dense or sparse dataset: a ratings dataset ((user, item) pairs for mf) has no features to scale');
    if (this.scaler)
      throw new InvalidArgumentError('data', 'this dataset is already standardized (dataset.scaler): standardize the raw data, not this copy');
    if (scaler === undefined) return fromMemory(() => this.handle.standardize(null, null), 'standardize');
    const [mean, scale] = guardInput(
      () => readScaler(scaler, this.features, this.kind === 'sparse'),
      (msg) => new InvalidArgumentError('scaler', `reading the scaler threw: ${msg}`),
    );
    return fromMemory(() => this.handle.standardize(mean, scale), 'standardize');
  }

  /** Rows [start, end) as a new dataset (a native copy); negative values count from the end, as Array.slice. */
  slice(start = 0, end = this.rows): Dataset {
    const norm = (v: unknown, name: string) => {
      if (typeof v !== 'number' || !Number.isInteger(v))
        throw new InvalidArgumentError(name, `${name} must be an integer, got ${describe(v)}`);
      return Math.min(Math.max(v < 0 ? this.rows + v : v, 0), this.rows);
    };
    const a = norm(start, 'start');
    const b = Math.max(norm(end, 'end'), a);
    try {
      return new Dataset(this.handle.slice(a, b));
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Splits in order, without shuffling, into `[first, rest]`: `first` has
   * `at` rows when `at` is an integer, `round(at × rows)` when it is a
   * fraction in (0, 1). Shuffle first when the file is sorted (the synthetic
   * sets are not).
   */
  split(at: number): [Dataset, Dataset] {
    const ok = typeof at === 'number' && (Number.isInteger(at) ? at >= 0 && at <= this.rows : at > 0 && at < 1);
    if (!ok)
      throw new InvalidArgumentError('at', `split takes a row count in 0..${this.rows} or a fraction in (0, 1), got ${describe(at)}`);
    const n = Number.isInteger(at) ? at : Math.round(at * this.rows);
    return [this.slice(0, n), this.slice(n, this.rows)];
  }

  /**
   * A shuffled copy: the rows in an order drawn from `seed` (the same order
   * on every platform). Shuffle a file sorted by label before {@link split}.
   */
  shuffle(seed = 0): Dataset {
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0)
      throw new InvalidArgumentError('seed', `seed must be a non-negative safe integer, got ${describe(seed)}`);
    return fromMemory(() => this.handle.shuffle(seed), 'shuffle');
  }

  /**
   * Dense rows from memory, copied into native memory: `x` is rows ×
   * features values row-major (a Float32Array is read as it is; other
   * arrays are converted), or an array of rows. `labels` (optional: without
   * them the set is for {@link predict}) follow the loaders' rule: ±1 or 0/1
   * binary, other non-negative integers class ids, else regression targets.
   * A bad value is an {@link InvalidArgumentError} naming the array and its
   * `index`.
   */
  static fromDense(
    x: Float32Array | ArrayLike<number> | ArrayLike<ArrayLike<number>>,
    options: DenseOptions = {},
  ): Dataset {
    return fromMemory(() => {
      const o = options ?? {};
      checkKeys(o, ['features', 'labels'], '', 'Dataset.fromDense()');
      let flat: Float32Array;
      let features = o.features;
      if (isRowArray(x)) {
        // each row read once, each value as floats() reads it (no null → 0, no '' → 0)
        const rows = x as ArrayLike<ArrayLike<number>>;
        const first: unknown = rows[0];
        if (!isArrayLike(first)) throw new InvalidArgumentError('x', `x[0] is not a row of numbers (got ${describe(first)})`, 0);
        const width = first.length;
        if (features !== undefined && features !== width)
          throw new InvalidArgumentError('x', `x[0] has ${width} values, features says ${features}`, 0);
        features = width;
        flat = new Float32Array(rows.length * width);
        for (let r = 0; r < rows.length; ++r) {
          const row: unknown = r === 0 ? first : rows[r];
          if (!isArrayLike(row) || row.length !== width)
            throw new InvalidArgumentError('x', `x[${r}] is not a row of ${width} numbers (got ${describe(row)})`, r);
          for (let c = 0; c < width; ++c) {
            const v: unknown = row[c];
            if (typeof v !== 'number' && typeof v !== 'bigint')
              throw new InvalidArgumentError('x', `x[${r}][${c}] is ${describe(v)}, not a number`, r * width + c);
            flat[r * width + c] = Number(v);
          }
        }
      } else {
        flat = floats(x, 'x');
      }
      if (features === undefined)
        throw new InvalidArgumentError('features', 'features is required when x is one flat array (rows × features values)');
      checkCount(features, 'features');
      const labels = o.labels === undefined ? null : floats(o.labels, 'labels');
      if (features > 0 && flat.length % features === 0) checkLabels(labels, flat.length / features, 'labels');
      return native().fromDense(flat, features, labels);
    }, 'fromDense');
  }

  /**
   * Sparse rows in CSR form (as scipy.sparse.csr_matrix holds them):
   * row r's features are `indices[indptr[r] .. indptr[r+1])` (0-based,
   * ascending) with their `values`. `features` defaults to the largest index
   * + 1. Copied; checked as {@link fromDense}.
   */
  static fromSparse(input: SparseInput): Dataset {
    return fromMemory(() => {
      const o = requireInput(input, 'Dataset.fromSparse()');
      checkKeys(o, ['indptr', 'indices', 'values', 'features', 'labels'], '', 'Dataset.fromSparse()');
      if (o.features !== undefined) checkCount(o.features, 'features');
      const indptr = doubles(o.indptr, 'indptr');
      const labels = o.labels === undefined ? null : floats(o.labels, 'labels');
      checkLabels(labels, indptr.length - 1, 'labels');
      return native().fromSparse(indptr, doubles(o.indices, 'indices'), floats(o.values, 'values'), o.features ?? 0, labels);
    }, 'fromSparse');
  }

  /**
   * (user, item, rating) triples, ids 0-based; `userCount`/`itemCount`
   * default to the largest id + 1. Without `ratings` the pairs are for
   * {@link predict}. Copied; checked as {@link fromDense}.
   */
  static fromRatings(input: RatingsInput): Dataset {
    return fromMemory(() => {
      const o = requireInput(input, 'Dataset.fromRatings()');
      checkKeys(o, ['users', 'items', 'ratings', 'userCount', 'itemCount'], '', 'Dataset.fromRatings()');
      if (o.userCount !== undefined) checkCount(o.userCount, 'userCount');
      if (o.itemCount !== undefined) checkCount(o.itemCount, 'itemCount');
      const users = doubles(o.users, 'users');
      const ratings = o.ratings === undefined ? null : floats(o.ratings, 'ratings');
      if (ratings && ratings.length !== users.length)
        throw new InvalidArgumentError('ratings', `ratings has ${ratings.length} values, users ${users.length}`);
      return native().fromRatings(users, doubles(o.items, 'items'), ratings, o.userCount ?? 0, o.itemCount ?? 0);
    }, 'fromRatings');
  }

  /**
   * An Apache Arrow table (from the `apache-arrow` package, or what DuckDB,
   * Polars and Parquet readers hand out through it) as dense rows: the
   * `label` column is the label, the `features` columns (default: every
   * other column) the features, in order. Columns must be numeric (a null
   * is an error naming the column and row). `apache-arrow` is an optional
   * peer dependency: the table is read through its public methods.
   */
  static fromArrow(table: ArrowTableLike, options: ArrowOptions = {}): Dataset {
    return fromMemory(() => arrowRows(table, options ?? {}), 'fromArrow');
  }

  /** @internal Whether v is a Dataset made here (a brand check: Object.create(Dataset.prototype) is not one). */
  static isDataset(v: unknown): v is Dataset {
    return typeof v === 'object' && v !== null && #labels in v;
  }

  #checkRow(i: number): void {
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= this.rows)
      throw new InvalidArgumentError('row', `row must be an integer in 0..${this.rows - 1}, got ${describe(i)}`);
  }

  #checkKind(kind: DatasetKind, what: string): void {
    if (this.kind !== kind) throw new InvalidArgumentError('kind', `${what}() needs a ${kind} dataset, this one is ${this.kind}`);
  }
}

/**
 * A feature scaler (see {@link Dataset.standardize}): per feature, the mean
 * subtracted and the scale divided by. A frozen plain object (JSON-friendly:
 * `JSON.stringify(dataset.scaler)` and back is accepted by `standardize`).
 */
export interface Scaler {
  readonly features: number;
  /** All 0 for a scaler fitted on sparse data (scaled, not centred). */
  readonly mean: readonly number[];
  /** Each finite and > 0 (1 for a constant feature). */
  readonly scale: readonly number[];
}

/** A scaler as {@link Dataset.standardize} takes it: a {@link Scaler}, or arrays of your own. */
export interface ScalerLike {
  /** When given, it must be the length of `mean` and `scale`. */
  readonly features?: number;
  readonly mean: ArrayLike<number>;
  readonly scale: ArrayLike<number>;
}

/** @internal A native scaler as the public, frozen one. */
export function scalerFromNative(n: NativeScaler): Scaler {
  return Object.freeze({
    features: n.mean.length,
    mean: Object.freeze(Array.from(n.mean)),
    scale: Object.freeze(Array.from(n.scale)),
  });
}

/** @internal Whether two scalers hold the same numbers. */
export function sameScaler(a: Scaler, b: Scaler): boolean {
  if (a.features !== b.features) return false;
  for (let j = 0; j < a.features; j++) if (a.mean[j] !== b.mean[j] || a.scale[j] !== b.scale[j]) return false;
  return true;
}

/**
 * @internal Rows for a model trained with `scaler` (none: as they are): a
 * raw dataset standardized with it, one standardized with it as it is; one
 * standardized with another scaler is an InvalidArgumentError. Rows of
 * another width than the scaler's are left for the core's ShapeError.
 */
export function scaledData(data: Dataset, scaler: Scaler | undefined): Dataset {
  if (!scaler || data.kind === 'ratings') return data;
  const own = data.scaler;
  if (own) {
    if (sameScaler(own, scaler)) return data;
    throw new InvalidArgumentError(
      'input',
      'the input dataset was standardized with another scaler than the one the model was trained with (store.scaler): ' +
        'pass the raw rows, or standardize them with store.scaler',
    );
  }
  const fits = data.kind === 'sparse' ? data.features <= scaler.features : data.features === scaler.features;
  return fits ? data.standardize(scaler) : data;
}

// A scaler argument, checked (typed errors naming the field and index) and
// read once, as the Float64Arrays the addon takes.
function readScaler(v: unknown, features: number, sparse: boolean): [Float64Array, Float64Array] {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v))
    throw new InvalidArgumentError('scaler', `a scaler is an object { mean, scale } (dataset.scaler), got ${describe(v)}`);
  const o = v as Record<string, unknown>;
  const arrays = (['mean', 'scale'] as const).map((name) => {
    const a: unknown = o[name];
    if (!isArrayLike(a)) throw new InvalidArgumentError(name, `the scaler's ${name} must be an array of numbers, got ${describe(a)}`);
    if (ArrayBuffer.isView(a)) checkAttached(a, name);
    const out = Float64Array.from(a as ArrayLike<unknown>, numberAt(name));
    const ok = sparse ? out.length >= features : out.length === features;
    if (!ok) throw new InvalidArgumentError(name, `the scaler's ${name} has ${out.length} values, the data ${features} features`);
    return out;
  });
  const [mean, scale] = arrays;
  if (mean.length !== scale.length) throw new InvalidArgumentError('scale', `the scaler's scale has ${scale.length} values, its mean ${mean.length}`);
  const f: unknown = o.features;
  if (f !== undefined && f !== mean.length)
    throw new InvalidArgumentError('features', `the scaler's features is ${describe(f)}, its mean and scale hold ${mean.length} values`);
  for (let j = 0; j < mean.length; j++) {
    if (!Number.isFinite(mean[j])) throw new InvalidArgumentError('mean', `the scaler's mean[${j}] is ${mean[j]}, not a finite number`, j);
    if (!(Number.isFinite(scale[j]) && scale[j] > 0))
      throw new InvalidArgumentError('scale', `the scaler's scale[${j}] is ${scale[j]}, not a finite number > 0`, j);
    if (sparse && mean[j] !== 0)
      throw new InvalidArgumentError(
        'mean',
        `the scaler's mean[${j}] is ${mean[j]}: a sparse dataset is scaled, not centred (centring would make every row dense), so its scaler's mean must be 0`,
        j,
      );
  }
  return [mean, scale];
}

export interface DenseOptions {
  /** Values per row; required for one flat array, else taken from the rows. */
  readonly features?: number;
  /** One per row; omit for data to predict. */
  readonly labels?: ArrayLike<number>;
}

export interface SparseInput {
  /** rows + 1 offsets into indices/values, from 0 to their length. */
  readonly indptr: ArrayLike<number>;
  readonly indices: ArrayLike<number>;
  readonly values: ArrayLike<number>;
  /** @default the largest index + 1 */
  readonly features?: number;
  readonly labels?: ArrayLike<number>;
}

export interface RatingsInput {
  readonly users: ArrayLike<number>;
  readonly items: ArrayLike<number>;
  /** Omit for pairs to predict. */
  readonly ratings?: ArrayLike<number>;
  /** @default the largest user id + 1 */
  readonly userCount?: number;
  /** @default the largest item id + 1 */
  readonly itemCount?: number;
}

export interface ArrowOptions {
  /** The label column's name; omit for data to predict. */
  readonly label?: string;
  /** The feature columns, in order. @default every column but the label */
  readonly features?: readonly string[];
}

/** The part of an `apache-arrow` Table that {@link Dataset.fromArrow} reads. */
export interface ArrowTableLike {
  readonly numRows: number;
  readonly schema: { readonly fields: ReadonlyArray<{ readonly name: string; readonly type: unknown }> };
  getChild(name: string): ArrowVectorLike | null;
}
export interface ArrowVectorLike {
  readonly length: number;
  readonly nullCount: number;
  isValid(i: number): boolean;
  toArray(): ArrayLike<number | bigint> | unknown;
}

export interface IdxOptions {
  /** Scale pixels to [0, 1] (divide by 255). @default true */
  readonly scale?: boolean;
}

export interface LibsvmOptions {
  /** Index base: `auto` reads 1-based data unless an index 0 appears. @default 'auto' */
  readonly indexBase?: 'auto' | 0 | 1;
  /** Fix the feature count (e.g. to match a training file); larger indices are errors. @default the largest index seen */
  readonly features?: number;
}

export interface CsvOptions {
  /** The label column: its 0-based index, or its name in the header row. */
  readonly label: number | string;
  /** Whether the first row is a header; `auto`: when it has a non-numeric cell. @default 'auto' */
  readonly header?: boolean | 'auto';
  /** One character. @default ',' */
  readonly delimiter?: string;
}

export type SyntheticKind = 'sparse-logistic' | 'blobs' | 'ratings';

export interface SyntheticOptions {
  /** Rows (ratings: the number of ratings). @default 10000 */
  readonly rows?: number;
  /** @default 0 */
  readonly seed?: number;
  /** sparse-logistic and blobs. @default 47236 (sparse-logistic), 2 (blobs) */
  readonly features?: number;
  /** sparse-logistic: mean nonzeros per row. @default 75 */
  readonly nnz?: number;
  /** sparse-logistic: feature frequency ∝ rank^-zipf. @default 1 */
  readonly zipf?: number;
  /** sparse-logistic: label flip probability (≤ 0.5), @default 0.05; ratings: rating noise std, @default 0.1 */
  readonly noise?: number;
  /** blobs: clusters. @default 3 */
  readonly classes?: number;
  /** blobs: cluster standard deviation. @default 1 */
  readonly spread?: number;
  /** ratings. @default 1000 */
  readonly users?: number;
  /** ratings. @default 1500 */
  readonly items?: number;
  /** ratings: rank of the hidden factors. @default 10 */
  readonly rank?: number;
}

const SYNTHETIC_KINDS: readonly SyntheticKind[] = ['sparse-logistic', 'blobs', 'ratings'];
const SYNTHETIC_KEYS: Record<SyntheticKind, readonly string[]> = {
  'sparse-logistic': ['rows', 'seed', 'features', 'nnz', 'zipf', 'noise'],
  blobs: ['rows', 'seed', 'features', 'classes', 'spread'],
  ratings: ['rows', 'seed', 'users', 'items', 'rank', 'noise'],
};

const int = (lo: number, hi: number) => (x: number) => Number.isInteger(x) && x >= lo && x <= hi;
const inRange = (lo: number, hi: number) => (x: number) => Number.isFinite(x) && x >= lo && x <= hi;

function options(raw: unknown, what: string): Record<string, unknown> {
  if (raw === undefined) return {};
  if (!isPlainObject(raw)) throw new ConfigError('options', `options of ${what} must be an object, got ${describe(raw)}`);
  return raw;
}

function fileArg(v: unknown, name: string): string {
  if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(name, `${name} must be a file path, got ${describe(v)}`);
  return checkPath(name, v);  // a NUL byte would silently name another file
}

// Options that throw when read (a getter, a trapping Proxy) give a typed error.
const readingOptions = (what: string) => (m: string) => new ConfigError('options', `reading the options of ${what} threw: ${m}`);

async function settle(p: () => Promise<NativeDatasetInstance>): Promise<Dataset> {
  try {
    return new Dataset(await p());
  } catch (e) {
    throw fromNative(e);
  }
}

/** Loads an IDX images file (n × rows × cols unsigned bytes) and its labels file; raw or gzip. */
export function loadIdx(imagesFile: string, labelsFile: string, opts?: IdxOptions): Promise<Dataset> {
  return Promise.resolve().then(() => guardInput(() => {
    const o = options(opts, 'loadIdx');
    checkKeys(o, ['scale'], '', 'loadIdx');
    const scale = bool(o.scale, 'scale', true);
    const images = fileArg(imagesFile, 'imagesFile');
    const labels = fileArg(labelsFile, 'labelsFile');
    return settle(() => native().loadIdx(images, labels, scale));
  }, readingOptions('loadIdx')));
}

/** Loads a LIBSVM / SVMLight file (sparse; raw or gzip). `qid:` tokens are ignored. */
export function loadLibsvm(file: string, opts?: LibsvmOptions): Promise<Dataset> {
  return Promise.resolve().then(() => guardInput(() => {
    const o = options(opts, 'loadLibsvm');
    checkKeys(o, ['indexBase', 'features'], '', 'loadLibsvm');
    let indexBase = -1;
    if (o.indexBase !== undefined && o.indexBase !== 'auto') {
      if (o.indexBase !== 0 && o.indexBase !== 1)
        throw new ConfigError('indexBase', `indexBase must be one of 'auto', 0, 1, got ${describe(o.indexBase)}`);
      indexBase = o.indexBase;
    }
    const features = num(o.features, 'features', 0, int(1, 0xfffffffe), 'an integer in 1..4294967294');
    const path = fileArg(file, 'file');
    return settle(() => native().loadLibsvm(path, { indexBase, features }));
  }, readingOptions('loadLibsvm')));
}

/** Loads a CSV file (dense; raw or gzip): every cell a number but the header's. */
export function loadCsv(file: string, opts: CsvOptions): Promise<Dataset> {
  return Promise.resolve().then(() => guardInput(() => {
    if (!isPlainObject(opts)) throw new ConfigError('label', `loadCsv needs { label: column index or header name }, got ${describe(opts)}`);
    checkKeys(opts, ['label', 'header', 'delimiter'], '', 'loadCsv');
    const label: unknown = opts.label;
    let labelIndex = -1;
    let labelName = '';
    if (typeof label === 'string' && label !== '') labelName = label;
    // a safe integer: the core reads it as an int64 (1e20 would not fit)
    else if (typeof label === 'number' && Number.isSafeInteger(label) && label >= 0) labelIndex = label;
    else throw new ConfigError('label', `label must be a column index (integer >= 0) or a header name, got ${describe(label)}`);
    const h: unknown = opts.header;
    if (h !== undefined && h !== 'auto' && typeof h !== 'boolean')
      throw new ConfigError('header', `header must be true, false or 'auto', got ${describe(h)}`);
    if (h === false && labelName) throw new ConfigError('label', `label names a column ('${labelName}') but header is false`);
    const delimiter = opts.delimiter ?? ',';
    if (typeof delimiter !== 'string' || delimiter.length !== 1 || delimiter === '"' || delimiter === '\n')
      throw new ConfigError('delimiter', `delimiter must be one character (not a quote or newline), got ${describe(opts.delimiter)}`);
    const header = h === true ? 1 : h === false ? 0 : -1;
    const path = fileArg(file, 'file');
    return settle(() => native().loadCsv(path, { labelIndex, labelName, header, delimiter }));
  }, readingOptions('loadCsv')));
}

/**
 * A deterministic synthetic dataset (same kind, options and seed: the same
 * bytes on a given platform), made synchronously:
 * - `sparse-logistic`: like RCV1, 47,236 features, ~75 nonzeros per row with
 *   power-law (Zipf) feature frequencies, rows L2-normalised, labels ±1 from a
 *   hidden weight vector with `noise` of them flipped;
 * - `blobs`: dense Gaussian clusters, label = cluster id;
 * - `ratings`: users × items of a low-rank matrix plus noise, distinct pairs.
 */
export function synthetic(kind: SyntheticKind, opts?: SyntheticOptions): Dataset {
  return guardInput(() => makeSynthetic(kind, opts), readingOptions('synthetic'));
}

function makeSynthetic(kind: SyntheticKind, opts?: SyntheticOptions): Dataset {
  const k = oneOf(kind, 'kind', 'sparse-logistic', SYNTHETIC_KINDS);
  const o = options(opts, `synthetic('${k}')`);
  checkKeys(o, SYNTHETIC_KEYS[k], '', `synthetic('${k}')`);
  const rows = num(o.rows, 'rows', 10000, int(1, 2 ** 32), 'an integer in 1..4294967296');
  const seed = num(o.seed, 'seed', 0, int(0, Number.MAX_SAFE_INTEGER), 'a non-negative safe integer');
  let resolved: NativeSyntheticOptions;
  if (k === 'sparse-logistic') {
    const features = num(o.features, 'features', 47236, int(1, 0xfffffffe), 'an integer in 1..4294967294');
    resolved = {
      rows,
      seed,
      features,
      nnz: num(o.nnz, 'nnz', Math.min(75, features), inRange(1, features), `a number in 1..features (${features})`),
      zipf: num(o.zipf, 'zipf', 1, inRange(0, 10), 'a number in [0, 10]'),
      noise: num(o.noise, 'noise', 0.05, inRange(0, 0.5), 'a probability in [0, 0.5]'),
    };
  } else if (k === 'blobs') {
    resolved = {
      rows,
      seed,
      features: num(o.features, 'features', 2, int(1, 1e6), 'an integer in 1..1000000'),
      classes: num(o.classes, 'classes', 3, int(1, 1e5), 'an integer in 1..100000'),
      spread: num(o.spread, 'spread', 1, inRange(0, Number.MAX_VALUE), 'a finite number >= 0'),
    };
  } else {
    resolved = {
      rows,
      seed,
      users: num(o.users, 'users', 1000, int(1, 0xfffffffe), 'an integer in 1..4294967294'),
      items: num(o.items, 'items', 1500, int(1, 0xfffffffe), 'an integer in 1..4294967294'),
      rank: num(o.rank, 'rank', 10, int(1, 4096), 'an integer in 1..4096'),
      noise: num(o.noise, 'noise', 0.1, inRange(0, Number.MAX_VALUE), 'a finite number >= 0'),
    };
    if (rows > 0.5 * resolved.users * resolved.items)
      throw new ConfigError('rows', `rows must be at most half of users × items (${0.5 * resolved.users * resolved.items}) for distinct pairs, got ${rows}`);
  }
  try {
    return new Dataset(native().synthetic(k, resolved));
  } catch (e) {
    throw fromNative(e);
  }
}

// ---- datasets from memory

function fromMemory(f: () => NativeDatasetInstance, what: string): Dataset {
  const handle = guardInput(
    () => {
      try {
        return f();
      } catch (e) {
        throw fromNative(e);
      }
    },
    (msg) => new InvalidArgumentError('input', `Dataset.${what}(): reading the input threw: ${msg}`),
  );
  return new Dataset(handle);
}

function requireInput<T>(input: T, what: string): T {
  if (!isPlainObject(input)) throw new InvalidArgumentError('input', `${what} takes an object, got ${describe(input)}`);
  return input;
}

function checkCount(v: unknown, name: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new InvalidArgumentError(name, `${name} must be a non-negative integer, got ${describe(v)}`);
}

function isArrayLike(v: unknown): v is ArrayLike<unknown> {
  return ArrayBuffer.isView(v) ? !(v instanceof DataView) : Array.isArray(v);
}

function isRowArray(x: unknown): boolean {
  return Array.isArray(x) && x.length > 0 && typeof x[0] === 'object' && x[0] !== null;
}

// A typed array whose buffer was transferred (postMessage, structuredClone)
// reads as empty: an error, not a dataset of 0 rows.
function checkAttached(v: ArrayBufferView, name: string): void {
  if (v.byteLength !== 0 || v.buffer instanceof SharedArrayBuffer) return;
  try {
    new Uint8Array(v.buffer, 0, 0);
  } catch {
    throw new InvalidArgumentError(name, `${name} is a view of a detached ArrayBuffer (transferred to a worker?): it has no values to read`);
  }
}

// A Float32Array as it is (the addon copies it), but one over shared memory
// is copied here: another thread could write a NaN between the addon's check
// and its copy. Other arrays converted.
function floats(v: unknown, name: string): Float32Array {
  if (ArrayBuffer.isView(v)) checkAttached(v, name);
  if (v instanceof Float32Array) return v.buffer instanceof SharedArrayBuffer ? v.slice() : v;
  if (!isArrayLike(v)) throw new InvalidArgumentError(name, `${name} must be an array or typed array of numbers, got ${describe(v)}`);
  // a typed array of numbers holds nothing else: converted whole (a copy, so shared memory is read once)
  if (isNumberTypedArray(v)) return new Float32Array(v);
  return Float32Array.from(v as ArrayLike<unknown>, numberAt(name));
}

function isNumberTypedArray(v: unknown): v is ArrayLike<number> {
  return ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array);
}

// Labels (or ratings) of the wrong count; checked here too because the addon
// reads an empty typed array as no labels at all.
function checkLabels(labels: Float32Array | null, rows: number, name: string): void {
  if (labels && rows >= 0 && labels.length !== rows)
    throw new InvalidArgumentError(name, `${name} has ${labels.length} values, the data ${rows} rows`);
}

// Offsets and ids travel as doubles so the core sees negatives and fractions.
function doubles(v: unknown, name: string): Float64Array {
  if (ArrayBuffer.isView(v)) checkAttached(v, name);
  if (!isArrayLike(v)) throw new InvalidArgumentError(name, `${name} must be an array or typed array of integers, got ${describe(v)}`);
  if (v instanceof Float64Array && !(v.buffer instanceof SharedArrayBuffer)) return v;
  if (isNumberTypedArray(v)) return new Float64Array(v);
  return Float64Array.from(v as ArrayLike<unknown>, numberAt(name));
}

function numberAt(name: string) {
  return (x: unknown, i: number): number => {
    if (typeof x === 'number') return x;
    if (typeof x === 'bigint') return Number(x);
    throw new InvalidArgumentError(name, `${name}[${i}] is ${describe(x)}, not a number`, i);
  };
}

function arrowRows(table: ArrowTableLike, o: ArrowOptions): NativeDatasetInstance {
  checkKeys(o, ['label', 'features'], '', 'Dataset.fromArrow()');
  if (typeof table !== 'object' || table === null || typeof table.getChild !== 'function' || !table.schema || typeof table.numRows !== 'number')
    throw new InvalidArgumentError('table', `Dataset.fromArrow() takes an apache-arrow Table, got ${describe(table)}`);
  const rows = table.numRows;
  if (!Number.isSafeInteger(rows) || rows < 0)
    throw new InvalidArgumentError('table', `the table's numRows must be a non-negative integer, got ${describe(rows)}`);
  if (o.label !== undefined && typeof o.label !== 'string')
    throw new InvalidArgumentError('label', `label must be a column name, got ${describe(o.label)}`);
  if (o.features != null && !(Array.isArray(o.features) && o.features.every((n) => typeof n === 'string')))
    throw new InvalidArgumentError('features', `features must be an array of column names, got ${describe(o.features)}`);
  const all = table.schema.fields.map((f) => f.name);
  if (o.label !== undefined && !all.includes(o.label))
    throw new InvalidArgumentError('label', `the table has no column '${o.label}' (columns: ${all.join(', ')})`);
  const names = o.features ? [...o.features] : all.filter((n) => n !== o.label);
  if (names.length === 0) throw new InvalidArgumentError('features', 'the table has no feature column');
  const column = (name: string, field: string): ArrayLike<number> => {
    const v = table.getChild(name);
    if (!v) throw new InvalidArgumentError(field, `the table has no column '${name}' (columns: ${all.join(', ')})`);
    if (v.nullCount > 0) {
      let r = 0;
      while (r < rows && v.isValid(r)) ++r;
      throw new InvalidArgumentError(field, `column '${name}' is null at row ${r}`, r);
    }
    const a = v.toArray() as unknown;
    const type = table.schema.fields.find((f) => f.name === name)?.type;
    // toArray() of a decimal (or another type stored in several words per
    // value) is its raw storage, not one number per row
    if (!ArrayBuffer.isView(a) || a instanceof DataView)
      throw new InvalidArgumentError(field, `column '${name}' is ${String(type)}, not numeric`);
    const n = (a as unknown as ArrayLike<unknown>).length;
    if (n !== rows)
      throw new InvalidArgumentError(field, `column '${name}' is ${String(type)}, not numeric: its values are ${n} numbers for ${rows} rows`);
    if (a instanceof BigInt64Array || a instanceof BigUint64Array) return Float64Array.from(a as ArrayLike<bigint>, (x) => Number(x));
    // Float16 (apache-arrow's Type.Float, Precision.HALF): toArray() gives the raw bits
    const t = type as { typeId?: unknown; precision?: unknown } | undefined;
    if (t?.typeId === 3 && t.precision === 0 && a instanceof Uint16Array) return Float64Array.from(a, half);
    return a as unknown as ArrayLike<number>;
  };
  const F = names.length;
  const x = new Float32Array(rows * F);
  names.forEach((name, c) => {
    const col = column(name, 'features');
    for (let r = 0; r < rows; ++r) x[r * F + c] = col[r];
  });
  const labels = o.label === undefined ? null : floats(column(o.label, 'label'), 'label');
  return native().fromDense(x, F, labels);
}

// An IEEE 754 half-precision value from its bits.
function half(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const f = bits & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}
