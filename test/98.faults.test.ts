// 98: faults. A writer killed (SIGKILL) at any moment of a save leaves the
// old checkpoint or the new one, never a torn file, and its temporaries are
// swept by the next save (test/harness/fault-save.js; an in-place writer as a
// control is caught). A save on a full disk (a file-size limit; a tiny tmpfs
// where mounting is allowed) fails with FileError ERR_IO naming the file,
// leaves the old checkpoint byte for byte and no temporary. The sweep keeps a
// live writer's temporary even when that writer is another user's process.
// Every loader, and checkpoint loading, survives truncation at many points,
// 200 seeded random bit flips and oversized inputs: each attempt loads (and
// then holds what the bytes say) or rejects with a typed error that names
// the file and a place in it; nothing crashes or hangs. test/70 and test/90
// cover the hand-made malformed cases; this file covers faults at scale.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { spawn, spawnSync } from 'node:child_process';
import { DataFormatError, FileError, ParameterStore, loadCsv, loadIdx, loadLibsvm, type Dataset, type SparseRow } from '../lib';
import { mulberry32 } from './harness/common';
import { bits, randoms } from './helpers';

// Under scripts/jest-asan.sh (libasan preloaded) every child process of the
// fault harness starts and runs several times slower.
const SLOW = /asan/.test(process.env.LD_PRELOAD ?? '');
jest.setTimeout(SLOW ? 300_000 : 120_000);

const ROOT = path.join(__dirname, '..');
const SCRIPT = path.join(__dirname, 'harness', 'fault-save.js');
const rng = mulberry32;
const FIXTURE = path.join(__dirname, 'fixtures', 'disk-full.js');

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-faults-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const sub = (name: string) => {
  const d = path.join(dir, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
};


function runFaultSave(args: string[]): { status: number | null; out: string; summary: Record<string, any> } {
  const json = path.join(dir, `fault-save-${args.join('_').replace(/[^\w]/g, '')}.json`);
  const r = spawnSync(process.execPath, [SCRIPT, ...args, '--json', json], { encoding: 'utf8', timeout: SLOW ? 280_000 : 110_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  if (!fs.existsSync(json)) throw new Error(`fault-save wrote no summary (status ${r.status}, signal ${r.signal}):\n${out}`);
  return { status: r.status, out, summary: JSON.parse(fs.readFileSync(json, 'utf8')) };
}

describe('SIGKILL during save (test/harness/fault-save.js)', () => {
  test('20 kills, most inside a save: the file is always the old or the new version, never torn; temporaries swept', () => {
    const { status, out, summary: s } = runFaultSave(['--kills', '20', '--seed', '98']);
    if (status !== 0) throw new Error(`fault-save failed:\n${out}`);
    expect(s.kills).toBe(20);
    expect(s.torn).toBe(0);
    expect(s.violations).toEqual([]);
    expect(s.killsDuringSave).toBeGreaterThanOrEqual(10);
    expect(s.outcomes.old + s.outcomes.new + s.outcomes.settled + s.outcomes.absent).toBe(20);
    expect(s.outcomesDuringSave.old + s.outcomesDuringSave.new + s.outcomesDuringSave.absent).toBe(s.killsDuringSave);
    expect(s.savesCompleted).toBeGreaterThan(0);
    // every temporary a kill left was swept by a later writer; the last, clean save left only the checkpoint
    expect(s.tempsSwept).toBe(s.tempsLeft);
    expect(s.finalCleanSave).toBe(true);
  });

  test('control: a writer that overwrites the file in place is caught (torn files, exit status 1)', () => {
    // About a quarter of the kills tear the file (fewer under ASan, whose
    // children are slower): 40 kills make a run without one (0.75^40) vanish.
    const { status, summary: s } = runFaultSave(['--kills', '40', '--seed', '5', '--unsafe-writer']);
    expect(status).toBe(1);
    expect(s.torn).toBeGreaterThan(0);
    expect(s.violations.some((v: string) => /torn|does not load/.test(v))).toBe(true);
  });
});

// ---------------------------------------------------------------- disk full
// The fixture's patterns: A for the old checkpoint, B for the one that does not fit.
const A = (i: number) => (i % 1000) / 8 + 1;
const fill = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));

interface DiskFullReport {
  oldSaved: boolean;
  saveError: { name: string; code: string; file: string; message: string; isError: boolean } | null;
  after: { values?: string; length?: number; version?: number; error?: string } | null;
  entries: string[];
}

function runFixture(command: string, args: string[]): DiskFullReport {
  // stdout is a pipe: the file-size limit does not apply to it
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`disk-full fixture failed (status ${r.status}, signal ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function expectIoError(rep: DiskFullReport, file: string, reason: RegExp) {
  expect(rep.saveError).not.toBeNull();
  expect(rep.saveError!.isError).toBe(true);
  expect(rep.saveError!.name).toBe('FileError');
  expect(rep.saveError!.code).toBe('ERR_IO');
  expect(rep.saveError!.file).toBe(file);
  expect(rep.saveError!.message).toContain(file);
  expect(rep.saveError!.message).toMatch(reason);
}

describe('disk full during save', () => {
  // KB of file size allowed: nothing at all; the header but not the data; part of the data.
  test.each([0, 1, 16])(
    'ulimit -f %i (EFBIG): FileError ERR_IO naming the file; the old checkpoint byte for byte; no temporary left',
    async (kb) => {
      const d = sub(`ulimit-${kb}`);
      const f = path.join(d, 'model.safetensors');
      const old = new ParameterStore({ tensors: { w: { shape: [1000], init: fill(1000, A) } }, optimizer: { kind: 'sgd', lr: 0.1 } });
      old.push({ w: randoms(1000, 1).fill(0) });
      await old.save(f);
      old.close();
      const before = fs.readFileSync(f);
      const rep = runFixture('bash', ['-c', `trap '' XFSZ; ulimit -f ${kb}; exec "$@"`, 'bash', process.execPath, FIXTURE, f, '--big', '100000']);
      expectIoError(rep, f, /write failed \(File too large\)/);
      expect(rep.after).toMatchObject({ values: 'A', length: 1000, version: 1 });
      expect(rep.entries).toEqual(['model.safetensors']);
      expect(fs.readFileSync(f).equals(before)).toBe(true);
      const back = await ParameterStore.load(f);
      expect(bits(back.snapshot().get('w'))).toEqual(bits(fill(1000, A)));
      expect(back.version).toBe(1);
      back.close();
    },
  );

  test('ulimit -f 1 without an old checkpoint: the save fails and the folder stays empty', () => {
    const d = sub('ulimit-fresh');
    const f = path.join(d, 'model.safetensors');
    const rep = runFixture('bash', ['-c', `trap '' XFSZ; ulimit -f 1; exec "$@"`, 'bash', process.execPath, FIXTURE, f, '--big', '100000']);
    expectIoError(rep, f, /File too large/);
    expect(rep.after).toBeNull();
    expect(rep.entries).toEqual([]);
  });

  // A real full file system: a 64 KiB tmpfs in a private mount namespace
  // (unshare -rm needs no root where user namespaces are allowed).
  const tmpfsProbe = (() => {
    const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-tmpfs-probe-'));
    try {
      for (const flags of ['-rm', '-m']) {
        const r = spawnSync('unshare', [flags, 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs '${probe}'`], { encoding: 'utf8', timeout: 10_000 });
        if (r.status === 0) return flags;
      }
      return null;
    } catch {
      return null;
    } finally {
      fs.rmSync(probe, { recursive: true, force: true });
    }
  })();
  (tmpfsProbe ? test : test.skip)(
    `a full tmpfs (ENOSPC)${tmpfsProbe ? '' : ' (skipped: cannot mount a tmpfs here)'}: FileError ERR_IO, the old checkpoint intact, no temporary`,
    () => {
      const d = sub('tmpfs');
      const f = path.join(d, 'model.safetensors');
      const rep = runFixture('unshare', [
        tmpfsProbe!,
        'sh',
        '-c',
        `mount -t tmpfs -o size=64k tmpfs "$1" && shift && exec "$@"`,
        'sh',
        d,
        process.execPath,
        FIXTURE,
        f,
        '--old',
        '1000',
        '--big',
        '100000',
      ]);
      expect(rep.oldSaved).toBe(true);
      expectIoError(rep, f, /No space left on device/);
      expect(rep.after).toMatchObject({ values: 'A', length: 1000 });
      expect(rep.entries).toEqual(['model.safetensors']);
    },
  );
});

// ------------------------------------------- the sweep and other users' writers
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
// user nobody must also reach the package (a clone in a 0700 folder would not)
const asNobody = (...cmd: string[]) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd]).status === 0;
const haveSetpriv =
  isRoot &&
  spawnSync('setpriv', ['--version']).status === 0 &&
  asNobody(process.execPath, '-e', '0') &&
  asNobody('test', '-r', path.join(ROOT, 'dist', 'index.js')) &&
  asNobody('test', '-r', process.env.GRADVAULT_ADDON ?? path.join(ROOT, 'build', 'Release', 'gradvault.node'));
(haveSetpriv ? test : test.skip)(
  `the sweep keeps the temporary of a live writer it may not signal (another user), removes a dead one's${haveSetpriv ? '' : ' (skipped: needs root, setpriv, and a package user nobody can read)'}`,
  async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-sweep-users-')); // beside the others' 0700 folder: nobody must reach it
    fs.chmodSync(d, 0o777);
    const live = spawn('sleep', ['60'], { stdio: 'ignore' }); // a root process: kill(pid, 0) from nobody fails with EPERM
    try {
      const liveTemp = path.join(d, `.m.safetensors.tmp-${live.pid}-1`);
      const deadTemp = path.join(d, '.m.safetensors.tmp-999999999-1');
      fs.writeFileSync(liveTemp, 'a live writer at work');
      fs.writeFileSync(deadTemp, 'a dead writer');
      const script = `const { ParameterStore } = require(${JSON.stringify(path.join(ROOT, 'dist'))});
        new ParameterStore({ tensors: { w: { shape: [4] } } }).save(${JSON.stringify(path.join(d, 'm.safetensors'))}).then(() => console.log('saved'), (e) => { console.log(String(e)); process.exit(1); });`;
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { encoding: 'utf8', timeout: 30_000 });
      expect(`${r.stdout}${r.stderr}`.trim()).toBe('saved');
      expect(fs.existsSync(deadTemp)).toBe(false);
      expect(fs.existsSync(liveTemp)).toBe(true);
    } finally {
      live.kill('SIGKILL');
      fs.rmSync(d, { recursive: true, force: true });
    }
  },
);

// ------------------------------------------------------- loaders under faults
const BIT_FLIPS = { idxImages: 30, idxLabels: 10, idxImagesGz: 25, idxLabelsGz: 10, libsvm: 35, libsvmGz: 10, csv: 35, csvGz: 10, checkpoint: 35 };

type Outcome<T> = { ok: true; value: T } | { ok: false; error: DataFormatError | FileError };

/**
 * Runs one load: it must settle within 20 s and either resolve or reject with
 * a DataFormatError / FileError that names one of `files` (in `.file` and in
 * the message) and a place in it (`line` + `column`, or `offset`, as `where` says).
 */
type Where = 'offset' | 'line' | 'any' | 'checkpoint';
async function attempt<T>(what: string, files: string[], where: Where, load: () => Promise<T>): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in 20 s (a hang?)`)), 20_000);
  });
  try {
    return { ok: true, value: await Promise.race([load(), hang]) };
  } catch (e) {
    if (!(e instanceof DataFormatError) && !(e instanceof FileError)) throw new Error(`${what}: not a typed error: ${(e as Error)?.stack ?? e}`);
    const err = e as DataFormatError | FileError;
    if (!files.includes(err.file)) throw new Error(`${what}: the error names '${err.file}', expected one of ${files.join(', ')}: ${err.message}`);
    if (!err.message.includes(err.file)) throw new Error(`${what}: the message does not name the file: ${err.message}`);
    if (err instanceof DataFormatError) {
      const hasOffset = typeof err.offset === 'number' && err.offset >= 0;
      const hasLine = typeof err.line === 'number' && err.line >= 1 && typeof err.column === 'number' && err.column >= 1;
      // checkpoint: the safetensors layer gives the byte offset; the metadata checks above it give none
      const ok =
        where === 'offset' ? hasOffset : where === 'line' ? hasLine : where === 'checkpoint' ? hasOffset || !/: safetensors: /.test(err.message) : hasOffset || hasLine;
      if (!ok) throw new Error(`${what}: no ${where} in ${JSON.stringify({ offset: err.offset, line: err.line, column: err.column })}: ${err.message}`);
      if (hasLine && !err.message.includes(`${err.file}:${err.line}:${err.column}`)) throw new Error(`${what}: message without file:line:column: ${err.message}`);
      if (hasOffset && err.offset! > 0 && !err.message.includes(String(err.offset)) && !/safetensors/.test(err.message))
        throw new Error(`${what}: message without the byte offset ${err.offset}: ${err.message}`);
    }
    return { ok: false, error: err };
  } finally {
    clearTimeout(timer);
  }
}

function flip(buf: Buffer, at: number, bit: number): Buffer {
  const b = Buffer.from(buf);
  b[at] ^= 1 << bit;
  return b;
}

const be32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const N_IMAGES = 40;
const PIXELS = 64; // 8 x 8
const imagesRaw = Buffer.concat([be32(0x803), be32(N_IMAGES), be32(8), be32(8), Buffer.from(Array.from({ length: N_IMAGES * PIXELS }, (_, i) => (i * 37 + (i >> 6)) & 0xff))]);
const labelsRaw = Buffer.concat([be32(0x801), be32(N_IMAGES), Buffer.from(Array.from({ length: N_IMAGES }, (_, i) => (i * 7) % 10))]);
const svmText = Array.from({ length: 60 }, (_, r) => {
  const feats = [1, 3 + (r % 5), 10 + r, 80 + ((r * 13) % 40)].map((f, k) => `${f}:${((r + 1) * (k + 2) * 0.173).toFixed(3)}`);
  return `${r % 3 === 0 ? '-1' : '+1'} ${r % 10 === 0 ? 'qid:3 ' : ''}${feats.join(' ')}${r % 7 === 0 ? ' # note' : ''}`;
}).join('\n') + '\n';
const csvText = 'y,a,b,c,d\n' + Array.from({ length: 60 }, (_, r) => [r % 4, (r * 0.5).toFixed(2), -r, `${(r * 1.25e-3).toExponential(2)}`, r % 9 === 0 ? ' "7.5"' : (r / 3).toFixed(4)].join(',')).join('\n') + '\n';

describe('IDX, LIBSVM, CSV: truncation', () => {
  let files: Record<string, string>;
  beforeAll(() => {
    const d = sub('trunc-src');
    files = {
      images: path.join(d, 'images'),
      labels: path.join(d, 'labels'),
      imagesGz: path.join(d, 'images.gz'),
      labelsGz: path.join(d, 'labels.gz'),
    };
    fs.writeFileSync(files.images, imagesRaw);
    fs.writeFileSync(files.labels, labelsRaw);
    fs.writeFileSync(files.imagesGz, zlib.gzipSync(imagesRaw));
    fs.writeFileSync(files.labelsGz, zlib.gzipSync(labelsRaw));
  });
  const cutPoints = (len: number, header: number) => [...new Set([...Array.from({ length: header + 2 }, (_, i) => i), 100, len >> 1, len - 9, len - 8, len - 5, len - 4, len - 1].filter((n) => n >= 0 && n < len))].sort((a, b) => a - b);

  test('raw IDX images and labels cut anywhere: DataFormatError at an offset inside the bytes present', async () => {
    const d = sub('trunc-idx');
    for (const [which, src, header] of [['images', imagesRaw, 16], ['labels', labelsRaw, 8]] as const) {
      for (const n of cutPoints(src.length, header)) {
        const p = path.join(d, `${which}-${n}`);
        fs.writeFileSync(p, src.subarray(0, n));
        const [im, lb] = which === 'images' ? [p, files.labels] : [files.images, p];
        const r = await attempt(`${which} cut at ${n}`, [p], 'offset', () => loadIdx(im, lb));
        expect(r.ok).toBe(false);
        if (!r.ok) expect((r.error as DataFormatError).offset).toBeLessThanOrEqual(n);
      }
    }
  });

  test('gzip IDX cut anywhere (the trailer too): never loads, DataFormatError with an offset', async () => {
    const d = sub('trunc-idx-gz');
    for (const [which, src] of [['images', fs.readFileSync(files.imagesGz)], ['labels', fs.readFileSync(files.labelsGz)]] as const) {
      for (const n of cutPoints(src.length, 12)) {
        const p = path.join(d, `${which}-${n}.gz`);
        fs.writeFileSync(p, src.subarray(0, n));
        const [im, lb] = which === 'images' ? [p, files.labelsGz] : [files.imagesGz, p];
        const r = await attempt(`${which}.gz cut at ${n}`, [p], 'offset', () => loadIdx(im, lb));
        expect(r.ok).toBe(false);
      }
    }
  });

  const fashion = '/usr/share/datasets/fashion-mnist';
  const haveFashion = fs.existsSync(path.join(fashion, 't10k-images-idx3-ubyte.gz'));
  (haveFashion ? test : test.skip)(`the real Fashion-MNIST gzip files cut at 10 points each: DataFormatError${haveFashion ? '' : ' (skipped: not installed)'}`, async () => {
    const d = sub('trunc-fashion');
    const im = path.join(fashion, 't10k-images-idx3-ubyte.gz'), lb = path.join(fashion, 't10k-labels-idx1-ubyte.gz');
    for (const [src, other, isImages] of [[lb, im, false], [im, lb, true]] as const) {
      const bytes = fs.readFileSync(src);
      for (const n of [0, 1, 2, 10, 11, 100, bytes.length >> 1, bytes.length - 8, bytes.length - 4, bytes.length - 1]) {
        const p = path.join(d, `${path.basename(src)}-${n}`);
        fs.writeFileSync(p, bytes.subarray(0, n));
        const r = await attempt(`${path.basename(src)} cut at ${n}`, [p], 'offset', () => (isImages ? loadIdx(p, other) : loadIdx(other, p)));
        expect(r.ok).toBe(false);
      }
    }
  });

  test('text cut anywhere: raw LIBSVM / CSV load a prefix or fail at a line and column; gzip cut never loads', async () => {
    const d = sub('trunc-text');
    const rows = { svm: 60, csv: 60 };
    const random = rng(17);
    for (const kind of ['svm', 'csv'] as const) {
      const text = Buffer.from(kind === 'svm' ? svmText : csvText);
      const load = (p: string) => (kind === 'svm' ? loadLibsvm(p) : loadCsv(p, { label: 'y' }));
      const cuts = [...new Set([1, 2, 3, 7, text.length - 2, text.length - 1, ...Array.from({ length: 24 }, () => 1 + Math.floor(random() * (text.length - 1)))])];
      let loaded = 0;
      for (const n of cuts) {
        const p = path.join(d, `${kind}-${n}`);
        fs.writeFileSync(p, text.subarray(0, n));
        const r = await attempt(`${kind} cut at ${n}`, [p], 'line', () => load(p));
        if (r.ok) {
          loaded++;
          expect(r.value.rows).toBeGreaterThanOrEqual(1);
          expect(r.value.rows).toBeLessThanOrEqual(rows[kind]);
        }
      }
      expect(loaded).toBeGreaterThan(0); // most cuts leave whole rows and a valid last number
      const gz = zlib.gzipSync(text);
      for (const n of cutPoints(gz.length, 12).filter((n) => n >= 2)) {
        const p = path.join(d, `${kind}-${n}.gz`);
        fs.writeFileSync(p, gz.subarray(0, n));
        const r = await attempt(`${kind}.gz cut at ${n}`, [p], 'any', () => load(p));
        expect(r.ok).toBe(false);
      }
    }
  });
});

describe('200 seeded random bit flips', () => {
  const d = () => sub('flips');
  const pick = (random: () => number, lo: number, hi: number) => lo + Math.floor(random() * (hi - lo));
  const counts: Record<string, { loaded: number; rejected: number }> = {};
  const count = (k: string, ok: boolean) => {
    counts[k] ??= { loaded: 0, rejected: 0 };
    counts[k][ok ? 'loaded' : 'rejected']++;
  };
  afterAll(() => {
    // one line for the log: how each kind of file took its flips
    process.stdout.write(`98.faults bit flips: ${JSON.stringify(counts)}\n`);
  });

  let good: Dataset;
  let imagesPath: string, labelsPath: string;
  beforeAll(async () => {
    imagesPath = path.join(d(), 'images');
    labelsPath = path.join(d(), 'labels');
    fs.writeFileSync(imagesPath, imagesRaw);
    fs.writeFileSync(labelsPath, labelsRaw);
    good = await loadIdx(imagesPath, labelsPath, { scale: false });
  });

  test(`raw IDX images (${BIT_FLIPS.idxImages}) and labels (${BIT_FLIPS.idxLabels}): a header flip is refused, a data flip loads with exactly that byte changed`, async () => {
    const random = rng(101);
    for (const [which, src, header, n] of [['images', imagesRaw, 16, BIT_FLIPS.idxImages], ['labels', labelsRaw, 8, BIT_FLIPS.idxLabels]] as const) {
      for (let k = 0; k < n; k++) {
        // 40% of the flips in the header, the rest in the data
        const at = k < n * 0.4 ? pick(random, 0, header) : pick(random, header, src.length);
        const bit = pick(random, 0, 8);
        const p = path.join(d(), `${which}-flip-${k}`);
        fs.writeFileSync(p, flip(src, at, bit));
        const [im, lb] = which === 'images' ? [p, labelsPath] : [imagesPath, p];
        // (an image count changed in the header is reported against the labels file, naming both)
        const r = await attempt(`${which}: bit ${bit} of byte ${at}`, [im, lb], 'offset', () => loadIdx(im, lb, { scale: false }));
        count(`idx-${which}`, r.ok);
        if (at < header) {
          expect(r.ok).toBe(false);
          continue;
        }
        if (!r.ok) throw new Error(`${which}: a flip of data byte ${at} was refused: ${r.error.message}`);
        const ds = r.value;
        expect([ds.rows, ds.features]).toEqual([N_IMAGES, PIXELS]);
        const i = at - header;
        const want = src[at] ^ (1 << bit);
        if (which === 'images') {
          const all = (x: Dataset) => Array.from({ length: N_IMAGES }, (_, q) => Array.from(x.denseRow(q))).flat();
          const expected = all(good);
          expected[i] = want;
          expect(all(ds)).toEqual(expected);
          expect(Array.from(ds.labels)).toEqual(Array.from(good.labels));
        } else {
          const lab = Array.from(good.labels);
          lab[i] = want;
          expect(Array.from(ds.labels)).toEqual(lab);
          expect(ds.classes).toBe(Math.max(...lab) + 1);
        }
      }
    }
  });

  test(`gzip IDX images (${BIT_FLIPS.idxImagesGz}) and labels (${BIT_FLIPS.idxLabelsGz}): refused, or (a flip in an unchecked header field) the same data`, async () => {
    const random = rng(202);
    const imGz = zlib.gzipSync(imagesRaw), lbGz = zlib.gzipSync(labelsRaw);
    const imGzPath = path.join(d(), 'images.gz'), lbGzPath = path.join(d(), 'labels.gz');
    fs.writeFileSync(imGzPath, imGz);
    fs.writeFileSync(lbGzPath, lbGz);
    for (const [which, src, n] of [['images', imGz, BIT_FLIPS.idxImagesGz], ['labels', lbGz, BIT_FLIPS.idxLabelsGz]] as const) {
      for (let k = 0; k < n; k++) {
        // a third in the 10-byte gzip header, the rest anywhere
        const at = k < n / 3 ? pick(random, 0, 10) : pick(random, 0, src.length);
        const bit = pick(random, 0, 8);
        const p = path.join(d(), `${which}-gzflip-${k}.gz`);
        fs.writeFileSync(p, flip(src, at, bit));
        const [im, lb] = which === 'images' ? [p, lbGzPath] : [imGzPath, p];
        const r = await attempt(`${which}.gz: bit ${bit} of byte ${at}`, [im, lb], 'offset', () => loadIdx(im, lb, { scale: false }));
        count(`idx-${which}-gz`, r.ok);
        if (r.ok) {
          // the CRC-32 and length in the trailer catch every change of the data
          expect(at).toBeLessThan(10);
          for (let q = 0; q < N_IMAGES; q++) expect(Array.from(r.value.denseRow(q))).toEqual(Array.from(good.denseRow(q)));
          expect(Array.from(r.value.labels)).toEqual(Array.from(good.labels));
        }
      }
    }
    expect(counts['idx-images-gz'].rejected).toBeGreaterThan(BIT_FLIPS.idxImagesGz / 2);
  });

  test.each([
    ['libsvm', BIT_FLIPS.libsvm, false],
    ['libsvm', BIT_FLIPS.libsvmGz, true],
    ['csv', BIT_FLIPS.csv, false],
    ['csv', BIT_FLIPS.csvGz, true],
  ] as const)('%s (%i flips, gzip %s): loads at most the rows there were, or fails at a line and column', async (kind, n, gz) => {
    const random = rng(kind === 'csv' ? 303 : 404 + (gz ? 1 : 0));
    const text = Buffer.from(kind === 'libsvm' ? svmText : csvText);
    const src = gz ? zlib.gzipSync(text) : text;
    const load = (p: string) => (kind === 'libsvm' ? loadLibsvm(p) : loadCsv(p, { label: 0 }));
    const origPath = path.join(d(), `${kind}-orig${gz ? '.gz' : ''}`);
    fs.writeFileSync(origPath, src);
    const orig = await load(origPath);
    for (let k = 0; k < n; k++) {
      const at = pick(random, 0, src.length);
      const bit = pick(random, 0, 8);
      const p = path.join(d(), `${kind}-flip-${gz ? 'gz-' : ''}${k}`);
      fs.writeFileSync(p, flip(src, at, bit));
      // gzip: a corrupt stream is reported at its (uncompressed) byte offset
      const r = await attempt(`${kind}${gz ? '.gz' : ''}: bit ${bit} of byte ${at}`, [p], gz ? 'any' : 'line', () => load(p));
      count(`${kind}${gz ? '-gz' : ''}`, r.ok);
      if (!r.ok) continue;
      expect(r.value.rows).toBeGreaterThanOrEqual(1);
      expect(r.value.rows).toBeLessThanOrEqual(orig.rows);
      if (gz) {
        // only a flip in the gzip header's unchecked fields can pass the CRC
        expect(at).toBeLessThan(10);
        expect(Array.from(r.value.labels)).toEqual(Array.from(orig.labels));
      }
    }
    expect(counts[`${kind}${gz ? '-gz' : ''}`].rejected).toBeGreaterThan(0);
  });

  test(`a real checkpoint (${BIT_FLIPS.checkpoint} flips over header and data): a data flip loads with exactly that element changed; a header flip loads the same parameters or is a DataFormatError`, async () => {
    const s = new ParameterStore({
      tensors: { W: { shape: [64, 32], init: 'glorot' }, b: { shape: [32], init: 'normal', std: 0.1 } },
      optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.5 },
      seed: 9,
    });
    for (let i = 0; i < 3; i++) s.push({ W: randoms(2048, 10 + i).map((x) => x * 0.1), b: randoms(32, 20 + i).map((x) => x * 0.1) });
    const src = path.join(d(), 'good.safetensors');
    await s.save(src);
    const snap = s.snapshot();
    const orig: Record<string, Uint32Array> = { W: bits(snap.get('W')), b: bits(snap.get('b')) };
    s.close();
    const bytes = fs.readFileSync(src);
    const hl = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + hl).toString());
    const dataStart = 8 + hl;
    const random = rng(505);
    for (let k = 0; k < BIT_FLIPS.checkpoint; k++) {
      const at = k % 2 === 0 ? pick(random, 0, dataStart) : pick(random, dataStart, bytes.length);
      const bit = pick(random, 0, 8);
      const p = path.join(d(), `ckpt-flip-${k}.safetensors`);
      fs.writeFileSync(p, flip(bytes, at, bit));
      const r = await attempt(`checkpoint: bit ${bit} of byte ${at}`, [p], 'checkpoint', () => ParameterStore.load(p));
      count('checkpoint', r.ok);
      if (at < dataStart) {
        if (!r.ok) {
          expect(r.error).toBeInstanceOf(DataFormatError);
          continue;
        }
        const got = r.value.snapshot();
        for (const n of ['W', 'b']) expect(bits(got.get(n))).toEqual(orig[n]);
        r.value.close();
        continue;
      }
      if (!r.ok) throw new Error(`checkpoint: a flip of data byte ${at} (bit ${bit}) was refused: ${r.error.message}`);
      const off = at - dataStart;
      const [hit] = Object.entries(header).filter(([n, t]: [string, any]) => n !== '__metadata__' && off >= t.data_offsets[0] && off < t.data_offsets[1]) as [string, any][];
      const got = r.value.snapshot();
      for (const n of ['W', 'b']) {
        const want = Uint32Array.from(orig[n]);
        if (hit[0] === n) want[(off - hit[1].data_offsets[0]) >> 2] ^= 1 << (((off - hit[1].data_offsets[0]) & 3) * 8 + bit);
        expect(bits(got.get(n))).toEqual(want);
      }
      r.value.close();
    }
    expect(counts.checkpoint.rejected).toBeGreaterThan(0);
  });
  // runs last in this block: every flip the tests above made was judged
  // (loaded or refused), and together they are the 200 of the title
  test('all 200 flips were made and judged', () => {
    const judged = Object.values(counts).reduce((a, c) => a + c.loaded + c.rejected, 0);
    expect(judged).toBe(Object.values(BIT_FLIPS).reduce((a, b) => a + b, 0));
    expect(judged).toBe(200);
  });
});

describe('oversized inputs', () => {
  const d = () => sub('oversized');
  const write = (name: string, data: string | Buffer) => {
    const p = path.join(d(), name);
    fs.writeFileSync(p, data);
    return p;
  };
  const quick = async <T>(what: string, files: string[], where: Where, load: () => Promise<T>) => {
    const t0 = Date.now();
    const r = await attempt(what, files, where, load);
    return { r, ms: Date.now() - t0 };
  };

  test('IDX headers that claim huge sizes: refused from the header, without reading or allocating for them', async () => {
    const img = (dims: number[], body = 100) => Buffer.concat([Buffer.from([0, 0, 8, dims.length]), ...dims.map(be32), Buffer.alloc(body)]);
    const lab = (n: number, body = 100) => Buffer.concat([be32(0x801), be32(n), Buffer.alloc(body)]);
    const cases: [string, Buffer, Buffer, RegExp][] = [
      ['raw, 10^9 images of 28 x 28', img([1e9, 28, 28]), lab(1e9), /does not match the header/],
      ['raw, 65535 x 65535 pixels', img([5, 0xffff, 0xffff]), lab(5, 5), /does not match the header/],
      ['raw, 2^32 - 1 images', img([0xffffffff, 28, 28]), lab(0xffffffff), /too large|does not match/],
      ['raw, 4 dimensions of 2^32 - 1', img([5, 0xffffffff, 0xffffffff, 0xffffffff]), lab(5, 5), /too large/],
      ['raw, 255 dimensions', Buffer.concat([Buffer.from([0, 0, 8, 255]), Buffer.alloc(40)]), lab(5, 5), /truncated IDX header/],
      ['gzip, 10^9 images of 28 x 28', zlib.gzipSync(img([1e9, 28, 28], 1000)), zlib.gzipSync(lab(1e9, 1000)), /truncated/],
      ['gzip, 2^32 - 1 images', zlib.gzipSync(img([0xffffffff, 28, 28], 1000)), zlib.gzipSync(lab(0xffffffff, 1000)), /too large|truncated/],
    ];
    for (const [name, im, lb, msg] of cases) {
      const ip = write(`big-im-${name.replace(/\W/g, '')}`, im), lp = write(`big-lb-${name.replace(/\W/g, '')}`, lb);
      const { r, ms } = await quick(name, [ip, lp], 'offset', () => loadIdx(ip, lp));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.message).toMatch(msg);
      expect(ms).toBeLessThan(5000);
    }
  });

  test('LIBSVM: indices beyond a fixed feature count or beyond 32 bits, at their line and column; a 1000-digit token is cut short in the message', async () => {
    const p1 = write('idx-max.svm', '+1 1:1\n-1 2:1 4294967294:1\n');
    const r1 = await attempt('index 2^32-2, features 10', [p1], 'line', () => loadLibsvm(p1, { features: 10 }));
    expect(r1.ok).toBe(false);
    if (!r1.ok) expect(r1.error).toMatchObject({ line: 2, column: 8, message: expect.stringMatching(/beyond features: 10/) });
    // without a fixed count the largest index is the feature count: sparse, nothing allocated per feature
    const r2 = await attempt('index 2^32-2, no features', [p1], 'line', () => loadLibsvm(p1));
    expect(r2.ok && r2.value.features).toBe(4294967294);
    if (r2.ok) expect(Array.from((r2.value.row(1) as SparseRow).indices)).toEqual([1, 4294967293]);
    for (const [name, idx] of [['2^32 - 1', '4294967295'], ['2^64', '18446744073709551616'], ['1000 digits', '9'.repeat(1000)]]) {
      const p = write(`idx-${name.replace(/\W/g, '')}.svm`, `+1 1:1 ${idx}:1\n`);
      const r = await attempt(`index ${name}`, [p], 'line', () => loadLibsvm(p));
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error).toMatchObject({ line: 1, column: 8 });
        expect(r.error.message).toMatch(/bad feature index/);
        expect(r.error.message.length).toBeLessThan(p.length + 200);
      }
    }
  });

  test('huge lines: 8 MB of blanks before a bad token (exact column), a 300,000-feature row, an 8 MB number, an 8 MB unterminated quote', async () => {
    const M = 8 << 20;
    const p1 = write('blanks.svm', `+1 1:1\n${' '.repeat(M)}+1 x\n`);
    const r1 = await attempt('8 MB of blanks', [p1], 'line', () => loadLibsvm(p1));
    expect(r1.ok).toBe(false);
    if (!r1.ok) expect(r1.error).toMatchObject({ line: 2, column: M + 4 });
    const wide = '+1 ' + Array.from({ length: 300000 }, (_, i) => `${i + 1}:0.5`).join(' ') + '\n-1 7:1\n';
    const p2 = write('wide.svm', wide);
    const r2 = await attempt('300k features', [p2], 'line', () => loadLibsvm(p2));
    expect(r2.ok).toBe(true);
    if (r2.ok) expect(r2.value).toMatchObject({ rows: 2, features: 300000, nnz: 300001 });
    const p3 = write('long-number.csv', `1,2\n3,${'1'.repeat(M)}\n`);
    const r3 = await attempt('8 MB number', [p3], 'line', () => loadCsv(p3, { label: 0 }));
    expect(r3.ok).toBe(false);
    if (!r3.ok) {
      expect(r3.error).toMatchObject({ line: 2, column: 3 });
      expect(r3.error.message.length).toBeLessThan(p3.length + 200);
    }
    const p4 = write('long-quote.csv.gz', zlib.gzipSync(`1,2\n3,"${'x'.repeat(M)}\n4,5\n`));
    const r4 = await attempt('8 MB unterminated quote (gzip)', [p4], 'line', () => loadCsv(p4, { label: 0 }));
    expect(r4.ok).toBe(false);
    if (!r4.ok) expect(r4.error).toMatchObject({ line: 2, column: 3, message: expect.stringMatching(/unterminated quoted cell/) });
    const cols = 100000;
    const p5 = write('wide.csv', `${Array.from({ length: cols }, (_, i) => i % 3).join(',')}\n${Array.from({ length: cols }, () => '1.5').join(',')}\n`);
    const r5 = await attempt('100k columns', [p5], 'line', () => loadCsv(p5, { label: 0 }));
    expect(r5.ok && r5.value.features).toBe(cols - 1);
  });

  test('checkpoints: header lengths and header contents far out of range are DataFormatErrors at a byte offset', async () => {
    const withHeader = (json: string, data: Buffer) => {
      while ((8 + json.length) % 8) json += ' ';
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
      return Buffer.concat([len, Buffer.from(json), data]);
    };
    const len = (v: bigint, rest: Buffer) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(v);
      return Buffer.concat([b, rest]);
    };
    const t = (shape: string, offsets: string) => `{"a":{"dtype":"F32","shape":${shape},"data_offsets":${offsets}}}`;
    const cases: [string, Buffer, RegExp][] = [
      ['header length 2^64 - 1', len(2n ** 64n - 1n, Buffer.from('{}')), /exceeds the limit/],
      ['header length 100 MiB + 1', len(100n * 2n ** 20n + 1n, Buffer.from('{}')), /exceeds the limit/],
      ['header length 100 MiB, file of 2 bytes', len(100n * 2n ** 20n, Buffer.from('{}')), /runs past the end/],
      ['header length 1', len(1n, Buffer.from('{')), /too small/],
      ['a shape entry of 2^41', withHeader(t('[2199023255552]', '[0,8]'), Buffer.alloc(8)), /bad shape entry/],
      ['a shape of 2^40 x 2^40', withHeader(t('[1099511627776,1099511627776]', '[0,8]'), Buffer.alloc(8)), /shape and dtype need/],
      ['a 9-dimensional shape', withHeader(t('[1,1,1,1,1,1,1,1,2]', '[0,8]'), Buffer.alloc(8)), /bad shape/],
      ['an offset of 2^63', withHeader(t('[2]', '[0,9223372036854775808]'), Buffer.alloc(8)), /number too large/],
      ['an offset of 10^30', withHeader(t('[2]', '[0,1000000000000000000000000000000]'), Buffer.alloc(8)), /number too large/],
      ['JSON nested 40 deep', withHeader(`{"__metadata__":${'['.repeat(40)}${']'.repeat(40)}}`, Buffer.alloc(0)), /nested too deep/],
    ];
    for (const [name, bytes, msg] of cases) {
      const p = write(`ck-${name.replace(/\W/g, '')}.safetensors`, bytes);
      const { r, ms } = await quick(name, [p], 'offset', () => ParameterStore.load(p));
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error).toBeInstanceOf(DataFormatError);
        expect(r.error.message).toMatch(msg);
      }
      expect(ms).toBeLessThan(5000);
    }
  });
});

// ------------------------------------------------ regressions: bit-flip finds
// Checkpoint contents that the safetensors layer accepts but the store's
// configuration refused surfaced as a ConfigError that did not name the file
// (an infinite parameter, a corrupt lr), or not at all (NaN optimizer state,
// which made the next push turn every parameter NaN). Found by the bit-flip
// runs above; interpret() and ParameterStore.load now refuse them.
describe('corrupt contents the header allows (regressions)', () => {
  async function corrupted(name: string, edit: (b: Buffer, header: Record<string, any>, dataStart: number) => void, opt: object = { kind: 'sgd', lr: 0.1, momentum: 0.9 }) {
    const s = new ParameterStore({ tensors: { W: { shape: [4], init: new Float32Array([1, 1.5, 0.5, -1.25]) } }, optimizer: opt as never });
    s.push({ W: new Float32Array([-1, 0.5, 0.25, 1]) });
    const p = path.join(sub('known-bugs'), `${name}.safetensors`);
    await s.save(p);
    s.close();
    const b = fs.readFileSync(p);
    const hl = Number(b.readBigUInt64LE(0));
    edit(b, JSON.parse(b.subarray(8, 8 + hl).toString()), 8 + hl);
    fs.writeFileSync(p, b);
    return p;
  }

  test('a parameter made infinite by one bit flip is a DataFormatError naming the file', async () => {
    // W[0] is about 1.1: exponent 0x7f; flipping bit 30 makes it 0xff, an infinity
    const p = await corrupted('inf-param', (b, h, start) => {
      b[start + h.W.data_offsets[0] + 3] ^= 0x40;
    });
    const e = await ParameterStore.load(p).catch((x) => x);
    expect(e).toBeInstanceOf(DataFormatError);
    expect(e.file).toBe(p);
  });

  test('a corrupt optimizer setting in the metadata (lr 0.1 -> 0.0, one bit) is a DataFormatError naming the file', async () => {
    const p = await corrupted('lr-zero', (b) => {
      const at = b.indexOf('\\"lr\\":0.1');
      b[at + 9] ^= 0x01; // '1' -> '0'
    });
    const e = await ParameterStore.load(p).catch((x) => x);
    expect(e).toBeInstanceOf(DataFormatError);
    expect(e.file).toBe(p);
  });

  test('non-finite optimizer state is refused with DataFormatError (it made the next push turn the parameters NaN)', async () => {
    const p = await corrupted('nan-momentum', (b, h, start) => {
      b.writeFloatLE(NaN, start + h['optimizer.momentum_buffer.W'].data_offsets[0]);
    });
    const r = await ParameterStore.load(p).then(
      (s) => {
        s.push({ W: new Float32Array(4) });
        const w = s.snapshot().get('W');
        s.close();
        return w;
      },
      (e) => e,
    );
    expect(r).toBeInstanceOf(DataFormatError);
  });
});
