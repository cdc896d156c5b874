// 70: data loaders parse IDX (raw, gzip), LIBSVM and CSV natively; every
// malformed file rejects with a DataFormatError naming the file and the line
// and column (text) or byte offset (IDX); synthetic data is deterministic.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  loadIdx,
  loadLibsvm,
  loadCsv,
  synthetic,
  Dataset,
  DataFormatError,
  FileError,
  ConfigError,
  GradvaultError,
  InvalidArgumentError,
  type SparseRow,
} from '../lib';
import { expectSameBits } from './helpers';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-data-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, data: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, data);
  return p;
}

function be32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}

function idxImages(n: number, r: number, c: number): Buffer {
  const px = Buffer.alloc(n * r * c);
  for (let i = 0; i < px.length; i++) px[i] = (i * 37) & 0xff;
  return Buffer.concat([be32(0x803), be32(n), be32(r), be32(c), px]);
}

function idxLabels(n: number): Buffer {
  const l = Buffer.alloc(n);
  for (let i = 0; i < n; i++) l[i] = i % 10;
  return Buffer.concat([be32(0x801), be32(n), l]);
}

async function dataError(p: Promise<unknown>): Promise<DataFormatError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DataFormatError);
    expect(e).toBeInstanceOf(GradvaultError);
    expect((e as DataFormatError).code).toBe('ERR_DATA_FORMAT');
    return e as DataFormatError;
  }
  throw new Error('expected a DataFormatError');
}

async function configError(f: () => unknown): Promise<ConfigError> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('70.data', () => {
  describe('loadIdx', () => {
    test.each([false, true])('reads images and labels (gzip: %s), scaled to [0, 1]', async (gz) => {
      const enc = (b: Buffer) => (gz ? zlib.gzipSync(b) : b);
      const ds = await loadIdx(file(`im${gz}`, enc(idxImages(20, 4, 3))), file(`lb${gz}`, enc(idxLabels(20))));
      expect(ds).toBeInstanceOf(Dataset);
      expect(ds).toMatchObject({ kind: 'dense', sparse: false, rows: 20, features: 12, classes: 10 });
      expect(Array.from(ds.labels.subarray(0, 12))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
      expect(Array.from(ds.classIds!.subarray(0, 3))).toEqual([0, 1, 2]);
      const row = ds.denseRow(1);
      expect(row.length).toBe(12);
      expect(row[0]).toBe(Math.fround(((12 * 37) & 0xff) / 255));
      const raw = await loadIdx(file(`im${gz}`, enc(idxImages(20, 4, 3))), file(`lb${gz}`, enc(idxLabels(20))), { scale: false });
      expect(raw.denseRow(0)[1]).toBe(37);
    });

    // The real files, when the Debian package dataset-fashion-mnist is installed.
    const fashion = '/usr/share/datasets/fashion-mnist';
    const haveFashion = fs.existsSync(path.join(fashion, 't10k-images-idx3-ubyte.gz'));
    (haveFashion ? test : test.skip)(
      `Fashion-MNIST test set${haveFashion ? '' : ' (skipped: apt-get install dataset-fashion-mnist)'}`,
      async () => {
        const ds = await loadIdx(path.join(fashion, 't10k-images-idx3-ubyte.gz'), path.join(fashion, 't10k-labels-idx1-ubyte.gz'));
        expect(ds).toMatchObject({ rows: 10000, features: 784, classes: 10 });
        expect(new Set(ds.classIds).size).toBe(10);
        const row = ds.denseRow(0);
        expect(Math.max(...row)).toBeLessThanOrEqual(1);
        expect(Math.max(...row)).toBeGreaterThan(0.5);
      },
    );

    test('rows are copies: changing one does not change the dataset', async () => {
      const ds = await loadIdx(file('c-im', idxImages(3, 2, 2)), file('c-lb', idxLabels(3)));
      ds.denseRow(0).fill(9);
      expect(ds.denseRow(0)[1]).toBe(Math.fround(37 / 255));
    });

    test.each([
      ['wrong magic', () => Buffer.concat([Buffer.from('PK\x03\x04'), idxImages(5, 2, 2).subarray(4)]), 0, /not an IDX file/],
      ['empty', () => Buffer.alloc(0), 0, /empty file/],
      ['truncated header', () => idxImages(5, 2, 2).subarray(0, 9), 9, /truncated IDX header/],
      ['truncated pixels', () => idxImages(5, 2, 2).subarray(0, 30), 30, /does not match the header/],
      ['trailing bytes', () => Buffer.concat([idxImages(5, 2, 2), Buffer.from('zz')]), 36, /does not match the header/],
      ['a labels file', () => idxLabels(5), 3, /at least 2 dimensions/],
      ['gzip, truncated contents', () => zlib.gzipSync(idxImages(5, 2, 2).subarray(0, 30)), 30, /truncated/],
    ])('images: %s → DataFormatError with the byte offset', async (_name, bytes, offset, message) => {
      const im = file('bad-im', bytes());
      const e = await dataError(loadIdx(im, file('lb5', idxLabels(5))));
      expect(e.file).toBe(im);
      expect(e.offset).toBe(offset);
      expect(e.line).toBeUndefined();
      expect(e.message).toMatch(message);
      expect(e.message).toContain(im);
    });

    test('label count that does not match the image count', async () => {
      const lb = file('lb4', idxLabels(4));
      const e = await dataError(loadIdx(file('im5', idxImages(5, 2, 2)), lb));
      expect(e).toMatchObject({ file: lb, offset: 4 });
      expect(e.message).toMatch(/label count 4 does not match the image count 5/);
    });

    test('a corrupt gzip stream', async () => {
      const gz = zlib.gzipSync(idxImages(50, 8, 8));
      for (let i = 12; i < gz.length - 8; i++) gz[i] ^= 0x5a;
      const e = await dataError(loadIdx(file('corrupt.gz', gz), file('lb50', idxLabels(50))));
      expect(e.message).toMatch(/gzip/);
      expect(typeof e.offset).toBe('number');
    });

    test('a missing file is a FileError naming the path', async () => {
      const missing = path.join(dir, 'no-such-file');
      await expect(loadIdx(missing, file('lb1', idxLabels(1)))).rejects.toMatchObject({
        name: 'FileError',
        code: 'ERR_NOT_FOUND',
        file: missing,
      });
      const e = await loadIdx(dir, file('lb1', idxLabels(1))).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(FileError);
      expect(e).toMatchObject({ code: 'ERR_IO', file: dir });
    });

    test('bad options are ConfigErrors; bad paths InvalidArgumentErrors', async () => {
      expect((await configError(() => loadIdx('a', 'b', { scale: 1 } as never))).path).toBe('scale');
      expect((await configError(() => loadIdx('a', 'b', { scal: true } as never))).message).toMatch(/did you mean 'scale'/);
      await expect(loadIdx(3 as never, 'b')).rejects.toBeInstanceOf(InvalidArgumentError);
    });
  });

  describe('loadLibsvm', () => {
    test('sparse rows, ±1 labels, 1-based indices, comments, qid, CRLF and gzip', async () => {
      const text = '+1 1:0.5 3:-2 # a comment\n-1 qid:3 2:1e-3 4:7\n\n# only a comment\r\n+1 1:1\r\n';
      for (const p of [file('a.svm', text), file('a.svm.gz', zlib.gzipSync(text))]) {
        const ds = await loadLibsvm(p);
        expect(ds).toMatchObject({ kind: 'sparse', sparse: true, rows: 3, features: 4, classes: 2, nnz: 5 });
        expect(Array.from(ds.labels)).toEqual([1, -1, 1]);
        expect(Array.from(ds.classIds!)).toEqual([1, 0, 1]);
        const r = ds.sparseRow(1);
        expect(Array.from(r.indices)).toEqual([1, 3]);
        expect(Array.from(r.values)).toEqual([Math.fround(1e-3), 7]);
      }
    });

    test('0/1 labels become ±1; 0-based data is detected; class ids; regression targets', async () => {
      const zeroBased = await loadLibsvm(file('b.svm', '0 0:1 5:2\n1 3:1\n'));
      expect(zeroBased.features).toBe(6);
      expect(Array.from(zeroBased.labels)).toEqual([-1, 1]);
      expect(Array.from((zeroBased.row(0) as SparseRow).indices)).toEqual([0, 5]);
      const classes = await loadLibsvm(file('c.svm', '3 1:1\n0 2:1\n7 9:1\n'), { features: 20 });
      expect(classes).toMatchObject({ classes: 8, features: 20 });
      const regression = await loadLibsvm(file('d.svm', '0.5 1:1\n-2.25 2:1\n'));
      expect(regression.classes).toBe(0);
      expect(regression.classIds).toBeNull();
    });

    test.each([
      ['index 0 in 1-based data', '+1 1:1\n-1 0:1 2:1\n', { indexBase: 1 }, 2, 4, /index 0 in 1-based/],
      ['a bad label', '+1 1:1\nabc 2:1\n', {}, 2, 1, /bad label 'abc'/],
      ['a token without a colon', '+1 1:1 2\n', {}, 1, 8, /expected index:value/],
      ['a bad index', '+1 1:1 x:2\n', {}, 1, 8, /bad feature index 'x'/],
      ['a bad value', '+1 1:1 2:abc\n', {}, 1, 10, /bad value 'abc'/],
      ['a huge value', '+1 1:1e39\n', {}, 1, 6, /out of float32 range/],
      ['descending indices', '+1 3:1 2:1\n', {}, 1, 8, /ascending/],
      ['an index beyond features', '+1 1:1\n-1 2:1 4:1\n', { features: 3 }, 2, 8, /beyond features: 3/],
      ['an empty file', '', {}, 1, 1, /no data rows/],
    ])('%s → DataFormatError with line and column', async (_name, text, options, line, column, message) => {
      const p = file('bad.svm', text);
      const e = await dataError(loadLibsvm(p, options as never));
      expect(e).toMatchObject({ file: p, line, column });
      expect(e.offset).toBeUndefined();
      expect(e.message).toMatch(message);
      expect(e.message).toContain(`${p}:${line}:${column}`);
    });

    test('bad options', async () => {
      expect((await configError(() => loadLibsvm('x', { indexBase: 2 } as never))).path).toBe('indexBase');
      expect((await configError(() => loadLibsvm('x', { features: 0 }))).path).toBe('features');
      expect((await configError(() => loadLibsvm('x', { base: 1 } as never))).path).toBe('base');
      await expect(loadLibsvm(path.join(dir, 'missing.svm'))).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    });
  });

  describe('loadCsv', () => {
    test('a label column by header name, quoted cells, blank lines', async () => {
      const ds = await loadCsv(file('a.csv', 'a,y,b\n1,0,2\n3,1,4.5\r\n\n"5", 1 ,-6\n'), { label: 'y' });
      expect(ds).toMatchObject({ kind: 'dense', rows: 3, features: 2, classes: 2 });
      expect(Array.from(ds.denseRow(2))).toEqual([5, -6]);
      expect(Array.from(ds.labels)).toEqual([-1, 1, 1]);
    });

    test('a label column by index; header auto-detected or forced', async () => {
      const noHeader = await loadCsv(file('b.csv', '1,2,0\n3,4,2\n'), { label: 2 });
      expect(noHeader).toMatchObject({ rows: 2, features: 2, classes: 3 });
      const withHeader = await loadCsv(file('c.csv', '1,2,0\n3,4,2\n'), { label: 2, header: true });
      expect(withHeader.rows).toBe(1);
      const gz = await loadCsv(file('d.csv.gz', zlib.gzipSync('t,x\n0.5,1\n1.5,2')), { label: 0 });
      expect(gz).toMatchObject({ rows: 2, features: 1, classes: 0 });
    });

    test.each([
      ['a non-numeric cell', '1,2\n3,x\n', 2, 3, /bad cell 'x' in column 1: not a number/],
      ['an empty cell', '1,2\n3,\n', 2, 3, /bad cell ''/],
      ['too many cells', '1,2\n3,4,5\n', 2, 5, /expected 2 cells/],
      ['a huge number', '1,2\n3,1e40\n', 2, 3, /out of float32 range/],
      ['an unterminated quote', '1,2\n3,"4\n', 2, 3, /unterminated quoted cell/],
      ['an empty file', '', 1, 1, /no data rows/],
    ])('%s → DataFormatError with line and column', async (_name, text, line, column, message) => {
      const p = file('bad.csv', text);
      const e = await dataError(loadCsv(p, { label: 0 }));
      expect(e).toMatchObject({ file: p, line, column });
      expect(e.message).toMatch(message);
    });

    test('an unknown label name names the header', async () => {
      const e = await dataError(loadCsv(file('e.csv', 'a,b\n1,2\n'), { label: 'z' }));
      expect(e).toMatchObject({ line: 1, column: 1 });
      expect(e.message).toMatch(/no column named 'z'.*'a', 'b'/);
    });

    test('bad options', async () => {
      expect((await configError(() => loadCsv('x', undefined as never))).path).toBe('label');
      expect((await configError(() => loadCsv('x', { label: -1 }))).path).toBe('label');
      // not an int64 in the core (the cast of 1e20 is undefined behaviour): refused here
      expect((await configError(() => loadCsv('x', { label: 1e20 }))).path).toBe('label');
      expect((await configError(() => loadCsv('x', { label: 2 ** 53 }))).path).toBe('label');
      expect((await configError(() => loadCsv('x', { label: 0, header: 'yes' } as never))).path).toBe('header');
      expect((await configError(() => loadCsv('x', { label: 'y', header: false }))).path).toBe('label');
      expect((await configError(() => loadCsv('x', { label: 0, delimiter: ';;' }))).path).toBe('delimiter');
      expect((await configError(() => loadCsv('x', { label: 0, labels: 1 } as never))).message).toMatch(/did you mean 'label'/);
    });
  });

  describe('synthetic', () => {
    test('sparse-logistic looks like RCV1: 47,236 features, ~75 nonzeros per row, power-law frequencies', () => {
      const ds = synthetic('sparse-logistic', { rows: 3000, seed: 1 });
      expect(ds).toMatchObject({ kind: 'sparse', rows: 3000, features: 47236, classes: 2 });
      expect(ds.nnz / ds.rows).toBeGreaterThan(70);
      expect(ds.nnz / ds.rows).toBeLessThan(80);
      const freq = new Uint32Array(ds.features);
      for (let i = 0; i < ds.rows; i++) for (const f of ds.sparseRow(i).indices) freq[f]++;
      const sorted = Array.from(freq).sort((a, b) => a - b);
      const median = sorted[sorted.length >> 1];
      expect(sorted[sorted.length - 1]).toBeGreaterThan(100 * Math.max(median, 1));
      const positives = ds.labels.reduce((s, y) => s + (y > 0 ? 1 : 0), 0);
      expect(positives / ds.rows).toBeGreaterThan(0.25);
      expect(positives / ds.rows).toBeLessThan(0.75);
    });

    test('the same seed gives the same bytes; another seed other data', () => {
      const a = synthetic('sparse-logistic', { rows: 500, seed: 9 });
      const b = synthetic('sparse-logistic', { rows: 500, seed: 9 });
      const c = synthetic('sparse-logistic', { rows: 500, seed: 10 });
      expectSameBits(a.labels, b.labels);
      for (const i of [0, 1, 250, 499]) {
        expect(a.sparseRow(i).indices).toEqual(b.sparseRow(i).indices);
        expectSameBits(a.sparseRow(i).values, b.sparseRow(i).values);
      }
      expect(Array.from(a.sparseRow(0).indices)).not.toEqual(Array.from(c.sparseRow(0).indices));
      const x = synthetic('blobs', { rows: 100, features: 3, classes: 4, seed: 2 });
      const y = synthetic('blobs', { rows: 100, features: 3, classes: 4, seed: 2 });
      for (let i = 0; i < 100; i++) expectSameBits(x.denseRow(i), y.denseRow(i));
    });

    test('blobs: dense clusters with class ids', () => {
      const ds = synthetic('blobs', { rows: 1000, features: 5, classes: 4, spread: 0.5 });
      expect(ds).toMatchObject({ kind: 'dense', rows: 1000, features: 5, classes: 4 });
      const ids = ds.classIds!;
      expect(new Set(ids).size).toBe(4);
      // Rows of one class sit close together: spread 0.5 against centres in [-10, 10].
      const first = ds.denseRow(ids.indexOf(ids[0], 1));
      const d2 = ds.denseRow(0).reduce((s, v, k) => s + (v - first[k]) ** 2, 0);
      expect(Math.sqrt(d2)).toBeLessThan(5);
      expect(synthetic('blobs').features).toBe(2);
    });

    test('ratings: distinct (user, item) pairs of a low-rank matrix', () => {
      const ds = synthetic('ratings', { rows: 1200, users: 50, items: 60, rank: 3 });
      expect(ds).toMatchObject({ kind: 'ratings', rows: 1200, users: 50, items: 60, features: 110, classes: 0 });
      const seen = new Set<number>();
      for (let i = 0; i < ds.rows; i++) {
        const r = ds.row(i) as { user: number; item: number; rating: number };
        expect(r.user).toBeLessThan(50);
        expect(r.item).toBeLessThan(60);
        expect(r.rating).toBe(ds.labels[i]);
        seen.add(r.user * 60 + r.item);
      }
      expect(seen.size).toBe(1200);
    });

    test('bad options are ConfigErrors with their path', async () => {
      expect((await configError(() => synthetic('nope' as never))).path).toBe('kind');
      expect((await configError(() => synthetic('blobs', { rows: 0 }))).path).toBe('rows');
      expect((await configError(() => synthetic('blobs', { rows: 1.5 }))).path).toBe('rows');
      expect((await configError(() => synthetic('blobs', { nnz: 5 } as never))).path).toBe('nnz');
      expect((await configError(() => synthetic('sparse-logistic', { noise: 0.7 }))).path).toBe('noise');
      expect((await configError(() => synthetic('sparse-logistic', { features: 10, nnz: 11 }))).path).toBe('nnz');
      expect((await configError(() => synthetic('ratings', { rows: 100, users: 10, items: 10 }))).path).toBe('rows');
      expect((await configError(() => synthetic('blobs', 3 as never))).path).toBe('options');
    });
  });

  describe('Dataset', () => {
    test('slice and split copy rows in order', () => {
      const ds = synthetic('sparse-logistic', { rows: 100, seed: 3 });
      const [train, test] = ds.split(0.8);
      expect([train.rows, test.rows]).toEqual([80, 20]);
      expect(train.features).toBe(ds.features);
      expect(Array.from(test.sparseRow(0).indices)).toEqual(Array.from(ds.sparseRow(80).indices));
      expect(test.labels[19]).toBe(ds.labels[99]);
      expect(ds.split(30).map((d) => d.rows)).toEqual([30, 70]);
      expect(ds.slice(-10).rows).toBe(10);
      expect(ds.slice(5, 5).rows).toBe(0);
      const dense = synthetic('blobs', { rows: 10, seed: 3 });
      expectSameBits(dense.slice(4, 6).denseRow(1), dense.denseRow(5));
    });

    test('bad row and split arguments are InvalidArgumentErrors', () => {
      const ds = synthetic('blobs', { rows: 10 });
      expect(() => ds.row(10)).toThrow(InvalidArgumentError);
      expect(() => ds.row(-1)).toThrow(InvalidArgumentError);
      expect(() => ds.row(1.5)).toThrow(InvalidArgumentError);
      expect(() => ds.sparseRow(0)).toThrow(/needs a sparse dataset, this one is dense/);
      expect(() => ds.split(11)).toThrow(InvalidArgumentError);
      expect(() => ds.split(1.5)).toThrow(InvalidArgumentError);
      expect(() => ds.slice('a' as never)).toThrow(InvalidArgumentError);
    });
  });
});
