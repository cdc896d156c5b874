// 90: checkpoints. save() then load() gives back every tensor bit for bit,
// the optimizer state (training resumes exactly as if never stopped), the
// version and step, in every mode; deterministic values exactly. A save taken
// while a trainer runs is one point in time. Bad files (truncated, bit
// flips, bad headers, overlapping or gapped offsets, duplicates, oversized
// headers) are refused with DataFormatError and a byte offset, before any
// store exists; the old file survives a failed save. A file written by
// another writer (Python's layout) loads, and ours reads in Python.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  DataFormatError,
  FileError,
  InvalidArgumentError,
  MODES,
  ParameterStore,
  Trainer,
  synthetic,
  type Mode,
} from '../lib';
import { bits, randoms } from './helpers';

jest.setTimeout(120_000);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-ckpt-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => path.join(dir, name);

function makeStore(mode: Mode, optimizer: object = { kind: 'sgd', lr: 0.1 }) {
  return new ParameterStore({
    tensors: { W: { shape: [7, 5], init: 'glorot' }, b: { shape: [5], init: 'normal', std: 0.1 } },
    mode,
    optimizer: optimizer as never,
    seed: 3,
  });
}

function pushSome(store: ParameterStore, n: number, seed: number) {
  for (let i = 0; i < n; i++) store.push({ W: randoms(35, seed + i), b: randoms(5, seed + 100 + i) });
  store.sync();
}

describe('round trip', () => {
  test.each(MODES)('%s: tensors bit for bit, version and step', async (mode) => {
    const a = makeStore(mode);
    pushSome(a, 5, 1);
    const f = file(`rt-${mode}.safetensors`);
    const r = await a.save(f);
    expect(r.file).toBe(f);
    expect(r.bytes).toBe((35 + 5) * 4 * (mode === 'deterministic' ? 3 : 1));
    expect(r.version).toBe(a.version);
    const b = await ParameterStore.load(f);
    expect(b.mode).toBe(mode);
    expect(b.version).toBe(a.version);
    const sa = a.snapshot(), sb = b.snapshot();
    for (const n of ['W', 'b']) expect(bits(sb.get(n))).toEqual(bits(sa.get(n)));
    expect(b.tensors.map((t) => [t.name, t.shape])).toEqual([
      ['W', [7, 5]],
      ['b', [5]],
    ]);
    a.close();
    b.close();
  });

  test.each([
    ['sgd momentum', { kind: 'sgd', lr: 0.05, momentum: 0.9 }],
    ['adam', { kind: 'adam', lr: 0.01 }],
    ['rmsprop', { kind: 'rmsprop', lr: 0.01 }],
    ['adagrad', { kind: 'adagrad', lr: 0.1 }],
  ])('%s: optimizer state restored, resuming gives the same bits as never stopping', async (_n, opt) => {
    const a = makeStore('locked', opt);
    const control = makeStore('locked', opt);
    pushSome(a, 4, 10);
    pushSome(control, 4, 10);
    const f = file(`opt-${opt.kind}.safetensors`);
    await a.save(f);
    const b = await ParameterStore.load(f);
    expect(b.options.optimizer).toEqual(a.options.optimizer);
    pushSome(b, 3, 20);
    pushSome(control, 3, 20);
    expect(bits(b.snapshot().get('W'))).toEqual(bits(control.snapshot().get('W')));
    expect(bits(b.snapshot().get('b'))).toEqual(bits(control.snapshot().get('b')));
    for (const s of [a, b, control]) s.close();
  });

  test('options override the file: another mode, another optimizer (fresh state)', async () => {
    const a = makeStore('atomic', { kind: 'adam', lr: 0.01 });
    pushSome(a, 3, 5);
    const f = file('override.safetensors');
    await a.save(f);
    const b = await ParameterStore.load(f, { mode: 'deterministic', optimizer: { kind: 'sgd', lr: 0.5 } });
    expect(b.mode).toBe('deterministic');
    expect(b.options.optimizer.kind).toBe('sgd');
    expect(b.version).toBe(3);
    // deterministic holds Q32.32: the values round-trip to within 2^-32
    const wa = a.snapshot().get('W'), wb = b.snapshot().get('W');
    for (let i = 0; i < wa.length; i++) expect(Math.abs(wa[i] - wb[i])).toBeLessThan(1e-6);
    a.close();
    b.close();
  });

  test('save during training: consistent, loads, and training goes on', async () => {
    const data = synthetic('blobs', { rows: 40000, features: 20, classes: 3 });
    const t = new Trainer({ model: 'softmax', threads: 2, epochs: 3, batchSize: 1, optimizer: { kind: 'sgd', lr: 0.01 } });
    let finished = false;
    const run = t.fit(data).finally(() => {
      finished = true;
    });
    const pauses: number[] = [];
    const during: number[] = []; // versions of saves made while training ran
    for (let i = 0; i < 200 && !finished && (during.length < 5 || i < 5); i++) {
      const r = await t.store!.save(file('live.safetensors'));
      pauses.push(r.pauseSeconds);
      const b = await ParameterStore.load(file('live.safetensors'));
      expect(b.version).toBe(r.version);
      b.close();
      if (!finished && r.version > 0 && r.version < 3 * 40000) during.push(r.version);
    }
    const res = await run;
    expect(res.epochs).toBe(3);
    expect(t.store!.stats().pushes).toBe(3 * 40000);
    // the saves overlapped training: several landed mid-run, each a later version
    expect(during.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < during.length; i++) expect(during[i]).toBeGreaterThanOrEqual(during[i - 1]);
    expect(Math.max(...pauses)).toBeLessThan(1);
  });
});

describe('bad files: typed errors before any store exists', () => {
  let good: Buffer;
  beforeAll(async () => {
    const a = makeStore('atomic');
    await a.save(file('good.safetensors'));
    a.close();
    good = fs.readFileSync(file('good.safetensors'));
  });
  const headerLen = () => Number(good.readBigUInt64LE(0));
  function withHeader(h: object, data: Buffer): Buffer {
    let json = JSON.stringify(h);
    while ((8 + json.length) % 8) json += ' ';
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([len, Buffer.from(json), data]);
  }
  async function refused(bytes: Buffer, msg: RegExp) {
    const f = file('bad.safetensors');
    fs.writeFileSync(f, bytes);
    const err = await ParameterStore.load(f).catch((e) => e);
    expect(err).toBeInstanceOf(DataFormatError);
    expect(err.file).toBe(f);
    expect(err.message).toMatch(msg);
    return err as DataFormatError;
  }

  test('truncated anywhere', async () => {
    for (const n of [0, 3, 8, 20, 8 + headerLen(), good.length - 1]) await refused(good.subarray(0, n), /safetensors/);
  });
  test('header length past the end, or over 100 MB', async () => {
    const b = Buffer.from(good);
    b.writeBigUInt64LE(BigInt(good.length));
    expect((await refused(b, /runs past the end/)).offset).toBe(0);
    b.writeBigUInt64LE(BigInt(200 << 20));
    await refused(b, /exceeds the limit/);
  });
  test('bit flips in the header', async () => {
    for (const at of [8, 9, 20, 8 + headerLen() - 2]) {
      const b = Buffer.from(good);
      b[at] ^= 0x80;
      await refused(b, /safetensors/);
    }
  });
  test('offsets that overlap, leave a gap or miss the end; sizes that disagree; unknown dtype', async () => {
    const data = Buffer.alloc(24);
    await refused(withHeader({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, data), /overlaps/);
    await refused(withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [3], data_offsets: [12, 24] } }, data), /gap/);
    await refused(withHeader({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, data), /cover 16 data bytes, the file holds 24/);
    await refused(withHeader({ a: { dtype: 'F32', shape: [5], data_offsets: [0, 24] } }, data), /its shape and dtype need 20/);
    await refused(withHeader({ a: { dtype: 'Q7', shape: [6], data_offsets: [0, 24] } }, data), /unknown dtype/);
    await refused(withHeader({ a: { dtype: 'F32', shape: [-6], data_offsets: [0, 24] } }, data), /bad shape entry/);
  });
  test('duplicate names, non-string metadata, trailing garbage', async () => {
    const data = Buffer.alloc(8);
    const dup = Buffer.from('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(dup.length));
    const e = await refused(Buffer.concat([len, dup, data]), /appears twice/);
    expect(e.offset).toBeGreaterThan(8);
    await refused(withHeader({ __metadata__: { version: 3 }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data), /must be a string/);
  });
  test('a parameter of a dtype we do not load; a missing file', async () => {
    await refused(withHeader({ a: { dtype: 'F16', shape: [4], data_offsets: [0, 8] } }, Buffer.alloc(8)), /dtype F16/);
    const err = await ParameterStore.load(file('nope.safetensors')).catch((x) => x);
    expect(err).toBeInstanceOf(FileError);
    expect(err.code).toBe('ERR_NOT_FOUND');
    await expect(ParameterStore.load('')).rejects.toThrow(InvalidArgumentError);
  });
  test('a failed save leaves the old file whole; stale temporaries are swept', async () => {
    const a = makeStore('atomic');
    const f = file('keep.safetensors');
    await a.save(f);
    const before = fs.readFileSync(f);
    // a leftover of a writer that died (a pid that cannot exist)
    const stale = path.join(dir, '.keep.safetensors.tmp-999999999-1');
    fs.writeFileSync(stale, 'junk');
    pushSome(a, 1, 3);
    await a.save(f);
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.readFileSync(f).equals(before)).toBe(false);
    // a folder that does not exist: typed error, nothing written
    const err = await a.save(path.join(dir, 'no/such/dir/x.safetensors')).catch((x) => x);
    expect(err).toBeInstanceOf(FileError);
    expect(err.code).toBe('ERR_IO');
    a.close();
  });
});

describe('interoperability', () => {
  const py = '/usr/bin/python3';
  const havePy = fs.existsSync(py) && spawnSync(py, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
  (havePy ? test : test.skip)('Python reads our file (header parser + numpy) with the same values', async () => {
    const a = makeStore('atomic', { kind: 'adam', lr: 0.01 });
    pushSome(a, 2, 7);
    const f = file('for-python.safetensors');
    await a.save(f);
    const script = `
import json, struct, sys, numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
meta = h.pop('__metadata__')
out = {'meta': meta, 'sums': {}}
for name, t in h.items():
    b, e = t['data_offsets']
    a = np.frombuffer(raw[8 + n + b: 8 + n + e], dtype={'F32': np.float32, 'I64': np.int64}[t['dtype']]).reshape(t['shape'])
    out['sums'][name] = [float(a.astype(np.float64).sum()), list(a.shape)]
print(json.dumps(out))
`;
    const r = spawnSync(py, ['-c', script, f], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.meta).toMatchObject({ format: 'gradvault/1', mode: 'atomic', version: '2', step: '2' });
    const W = a.snapshot().get('W');
    expect(out.sums.W[1]).toEqual([7, 5]);
    expect(out.sums.W[0]).toBeCloseTo(W.reduce((x, y) => x + y, 0), 4);
    expect(Object.keys(out.sums).sort()).toEqual(['W', 'b', 'optimizer.exp_avg.W', 'optimizer.exp_avg.b', 'optimizer.exp_avg_sq.W', 'optimizer.exp_avg_sq.b']);
    a.close();
  });

  (havePy ? test : test.skip)('a file Python writes (numpy, F32 and F64, no metadata) loads as parameters', async () => {
    const f = file('from-python.safetensors');
    const script = `
import json, struct, sys, numpy as np
w = np.arange(12, dtype=np.float32).reshape(3, 4) / 8
b = np.array([0.5, -1.25], dtype=np.float64)
hdr = {'w': {'dtype': 'F32', 'shape': [3, 4], 'data_offsets': [0, 48]},
       'bias': {'dtype': 'F64', 'shape': [2], 'data_offsets': [48, 64]}}
js = json.dumps(hdr).encode()
js += b' ' * ((8 - (8 + len(js)) % 8) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(js)) + js + w.tobytes() + b.tobytes())
`;
    expect(spawnSync(py, ['-c', script, f], { encoding: 'utf8' }).status).toBe(0);
    const s = await ParameterStore.load(f, { mode: 'versioned' });
    expect(s.tensors.map((t) => [t.name, t.shape])).toEqual([
      ['w', [3, 4]],
      ['bias', [2]],
    ]);
    expect(Array.from(s.snapshot().get('w'))).toEqual(Array.from({ length: 12 }, (_, i) => i / 8));
    expect(Array.from(s.snapshot().get('bias'))).toEqual([0.5, -1.25]);
    expect(s.version).toBe(0);
    s.close();
  });
});
