/**
 * 99.hardening: one regression test for each broken promise of issue 10
 * (a hostile pass over the public API). Each failed on the code before the
 * fix; the comment names the item.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { Worker } from 'node:worker_threads';
import { execFileSync } from 'node:child_process';
import { ParameterStore, Snapshot, Trainer, evaluate, loadCsv, loadIdx, loadLibsvm, synthetic, type Mode } from '../lib';
import { seq } from './helpers';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const FLOAT_MODES: Mode[] = ['atomic', 'locked', 'versioned', 'hogwild'];
const tick = () => new Promise<void>((r) => setImmediate(r));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gv-hard-'));
const errorOf = (f: () => unknown): { name: string; code: string; message: string; [k: string]: unknown } => {
  try {
    f();
  } catch (e) {
    return e as never;
  }
  throw new Error('expected an error');
};
const rejectionOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as { name: string; code: string; message: string; [k: string]: unknown };
  }
  throw new Error('expected a rejection');
};
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Rewrites tensor `name` of a safetensors file in place with f(data view of its bytes). */
function patchTensor(file: string, name: string, f: (bytes: Buffer) => void) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString());
  const t = header[name];
  if (!t) throw new Error(`no tensor ${name} in ${Object.keys(header).join(', ')}`);
  f(buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]));
  fs.writeFileSync(file, buf);
  return 8 + n + t.data_offsets[0];
}
/** Rewrites the metadata of a safetensors file (the header may change length). */
function patchMetadata(file: string, f: (meta: Record<string, string>) => void) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString());
  f(header.__metadata__);
  let h = JSON.stringify(header);
  while ((8 + h.length) % 8) h += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(h)));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(h), buf.subarray(8 + n)]));
}

describe('99.hardening: no two live snapshots share memory (item 1)', () => {
  const N = 1 << 18; // 1 MiB: pooled snapshot buffers

  test('release, snapshot, a turn of the event loop, push, snapshot: the older snapshot keeps its bytes', async () => {
    const s = new ParameterStore({ tensors: { W: { shape: [N] } }, verify: true });
    s.snapshot().release();
    const b = s.snapshot();
    const bCopy = Float32Array.from(b.get('W'));
    await tick();
    gc();
    await tick();
    s.push({ W: new Float32Array(N).fill(1) });
    const c = s.snapshot();
    expect(same(b.get('W'), bCopy)).toBe(true);
    c.get('W')[0] = 42;
    expect(b.get('W')[0]).toBe(0);
    expect(() => s.push({ W: new Float32Array(N) }, { basedOn: b })).not.toThrow();
    s.close();
  });

  test('evaluate(store) and pushAsync copies do not take a live snapshot\'s memory', async () => {
    const data = synthetic('blobs', { rows: 64, features: 4096, classes: 64, seed: 1 });
    const s = new ParameterStore({ tensors: { W: { shape: [4096, 64] }, b: { shape: [64] } } });
    const live: [Snapshot, Float32Array][] = [];
    for (let round = 0; round < 6; round++) {
      evaluate(s, 'softmax', data);
      const snap = s.snapshot();
      live.push([snap, Float32Array.from(snap.get('W'))]);
      await tick();
      gc();
      await s.pushAsync({ W: seq(4096 * 64, (i) => (i % 7) - 3 + round), b: new Float32Array(64) });
      evaluate(s, 'softmax', data);
      for (const [sn, copy] of live) expect(same(sn.get('W'), copy)).toBe(true);
    }
    s.close();
  });

  test('stress: releases, collections, pushAsync and snapshots interleaved; every live snapshot keeps its bytes and is written alone', async () => {
    let x = 12345;
    const rand = (n: number) => ((x = (x * 1103515245 + 12345) >>> 0) % n);
    const s = new ParameterStore({ tensors: { W: { shape: [N] }, v: { shape: [33] } } });
    const live: { snap: Snapshot; copy: Float32Array }[] = [];
    for (let step = 0; step < 300; step++) {
      switch (rand(6)) {
        case 0: {
          const snap = s.snapshot();
          live.push({ snap, copy: Float32Array.from(snap.get('W')) });
          break;
        }
        case 1:
          if (live.length) live.splice(rand(live.length), 1)[0].snap.release();
          break;
        case 2:
          if (live.length > 3) live.splice(rand(live.length), 1); // dropped: left to the collector
          gc();
          break;
        case 3:
          await s.pushAsync({ W: new Float32Array(N).fill(rand(5) - 2) });
          break;
        case 4:
          s.push({ v: new Float32Array(33).fill(1) });
          s.snapshot().release();
          break;
        default:
          await tick();
      }
      for (const l of live) expect(same(l.snap.get('W'), l.copy)).toBe(true);
      if (live.length >= 2) {
        const [a, b] = [live[0], live[live.length - 1]];
        const old = b.snap.get('W')[5];
        a.snap.get('W')[5] = 777;
        expect(b.snap.get('W')[5]).toBe(old);
        a.snap.get('W')[5] = a.copy[5];
      }
    }
    s.close();
  });
});

describe('99.hardening: a gradient another thread changes during push (item 2)', () => {
  test.each(FLOAT_MODES)('%s: a SharedArrayBuffer flipped between NaN and 1 never lets NaN into the store', async (mode) => {
    const n = 4096;
    const sab = new SharedArrayBuffer(n * 4);
    const g = new Float32Array(sab);
    const w = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads'); const g = new Float32Array(workerData);
       parentPort.postMessage('go'); for (;;) { g.fill(NaN); g.fill(1); }`,
      { eval: true, workerData: sab },
    );
    await new Promise((r) => w.once('message', r));
    const s = new ParameterStore({ tensors: { w: { shape: [n] } }, mode, optimizer: { kind: 'sgd', lr: 1e-6 } });
    const t0 = Date.now();
    let rejected = 0;
    while (Date.now() - t0 < 300)
      try {
        s.push({ w: g });
      } catch (e) {
        expect((e as Error).name).toBe('NonFiniteGradientError');
        rejected++;
      }
    await w.terminate();
    expect(rejected).toBeGreaterThan(0);
    expect(s.snapshot().get('w').every(Number.isFinite)).toBe(true);
    s.close();
  });
});

describe('99.hardening: checkpoints are data (items 3, 5, 12)', () => {
  test.each([
    ['adagrad', 'optimizer.sum.w'],
    ['rmsprop', 'optimizer.square_avg.w'],
    ['adam', 'optimizer.exp_avg_sq.w'],
  ] as const)('%s: negative second-moment state is refused with the tensor and byte offset', async (kind, tensor) => {
    const d = tmp();
    const f = path.join(d, 'm.safetensors');
    const s = new ParameterStore({ tensors: { w: { shape: [4] } }, optimizer: { kind } });
    s.push({ w: seq(4, (i) => i + 1) });
    await s.save(f);
    const start = patchTensor(f, tensor, (b) => b.writeFloatLE(-1, 8));
    const e = await rejectionOf(ParameterStore.load(f));
    expect(e.name).toBe('DataFormatError');
    expect(e.tensor).toBe(tensor);
    expect(e.offset).toBe(start + 8);
    expect(e.message).toContain(String(start + 8));
  });

  test('fixed-point values out of range are refused (deterministic)', async () => {
    const d = tmp();
    const f = path.join(d, 'm.safetensors');
    const s = new ParameterStore({ tensors: { w: { shape: [3] } }, mode: 'deterministic' });
    await s.save(f);
    const start = patchTensor(f, 'fixed.w', (b) => b.writeBigInt64LE(2n ** 63n - 1n, 16));
    const e = await rejectionOf(ParameterStore.load(f));
    expect(e.name).toBe('DataFormatError');
    expect(e.tensor).toBe('fixed.w');
    expect(e.offset).toBe(start + 16);
  });

  test('optimizer state of the wrong size is a DataFormatError naming the tensor', async () => {
    const d = tmp();
    const f = path.join(d, 'm.safetensors');
    await new ParameterStore({ tensors: { w: { shape: [4] } }, optimizer: { kind: 'adagrad' } }).save(f);
    const buf = fs.readFileSync(f);
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString());
    // shrink the state tensor to 3 floats: shape and offsets consistent, size wrong for 'w'
    const sum = header['optimizer.sum.w'];
    sum.shape = [3];
    const data = Buffer.from(buf.subarray(8 + n));
    const end = sum.data_offsets[0] + 12;
    const rest = Object.entries(header).filter(([k, v]) => k !== '__metadata__' && (v as { data_offsets: number[] }).data_offsets[0] > sum.data_offsets[0]);
    for (const [, v] of rest) (v as { data_offsets: number[] }).data_offsets = (v as { data_offsets: number[] }).data_offsets.map((o) => o - 4);
    const newData = Buffer.concat([data.subarray(0, end), data.subarray(end + 4)]);
    sum.data_offsets = [sum.data_offsets[0], end];
    let h = JSON.stringify(header);
    while ((8 + h.length) % 8) h += ' ';
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    fs.writeFileSync(f, Buffer.concat([len, Buffer.from(h), newData]));
    const e = await rejectionOf(ParameterStore.load(f));
    expect(e.name).toBe('DataFormatError');
    expect(e.tensor).toBe('optimizer.sum.w');
  });

  test.each(['toString', '__proto__', 'constructor', 'hasOwnProperty'])('metadata optimizer kind %j is a DataFormatError', async (kind) => {
    const d = tmp();
    const f = path.join(d, 'm.safetensors');
    await new ParameterStore({ tensors: { w: { shape: [2] } } }).save(f);
    patchMetadata(f, (m) => {
      m.optimizer = JSON.stringify({ kind, lr: 0.1 });
    });
    const e = await rejectionOf(ParameterStore.load(f));
    expect(e.name).toBe('DataFormatError');
    expect(e.message).toContain('no known kind');
  });

  test('a tensor named __proto__ (or constructor) trains, saves and loads', async () => {
    const d = tmp();
    const f = path.join(d, 'm.safetensors');
    const tensors = JSON.parse('{"__proto__": {"shape": [2]}, "constructor": {"shape": [1]}}');
    const s = new ParameterStore({ tensors, optimizer: { kind: 'sgd', lr: 1 } });
    s.push(JSON.parse('{"__proto__": null}', (k, v) => (k === '__proto__' ? new Float32Array([1, 2]) : v)));
    await s.save(f);
    const back = await ParameterStore.load(f);
    expect(back.tensors.map((t) => t.name)).toEqual(['__proto__', 'constructor']);
    expect([...back.snapshot().get('__proto__')]).toEqual([-1, -2]);
  });

  test('load restores verify, nonFinite, staleness and syncEvery; options given to load override them', async () => {
    const d = tmp();
    const f = path.join(d, 'm.safetensors');
    await new ParameterStore({ tensors: { w: { shape: [2] } }, verify: true, nonFinite: 'skip', staleness: { policy: 'reject', bound: 3 } }).save(f);
    const back = await ParameterStore.load(f);
    expect(back.options.verify).toBe(true);
    expect(back.options.nonFinite).toBe('skip');
    expect(back.options.staleness).toEqual({ policy: 'reject', bound: 3 });
    const over = await ParameterStore.load(f, { nonFinite: 'reject', verify: false });
    expect(over.options.nonFinite).toBe('reject');
    expect(over.options.verify).toBe(false);
    const f2 = path.join(d, 'avg.safetensors');
    await new ParameterStore({ tensors: { w: { shape: [2] } }, mode: 'averaging', syncEvery: 5 }).save(f2);
    expect((await ParameterStore.load(f2)).options.syncEvery).toBe(5);
    expect((await ParameterStore.load(f2, { mode: 'atomic' })).mode).toBe('atomic'); // syncEvery left behind
  });

  test("load(file, { mode: 'deterministic' }) of an adam checkpoint blames the caller's option", async () => {
    const d = tmp();
    const f = path.join(d, 'm.safetensors');
    await new ParameterStore({ tensors: { w: { shape: [2] } }, optimizer: { kind: 'adam' } }).save(f);
    const e = await rejectionOf(ParameterStore.load(f, { mode: 'deterministic' }));
    expect(e.name).toBe('ConfigError');
    expect(e.message).toContain('load options');
  });
});

describe('99.hardening: finite inputs cannot make the store non-finite (item 8)', () => {
  test.each([...FLOAT_MODES, 'averaging'] as Mode[])('%s: a 3e38 step that would overflow is refused and the store keeps its state', async (mode) => {
    const s = new ParameterStore({ tensors: { w: { shape: [4] } }, mode, optimizer: { kind: 'sgd', lr: 1 } });
    const g = new Float32Array(4).fill(mode === 'averaging' ? 1e9 : -3e38);
    if (mode === 'averaging') s.learningRate = 2e29; // its gradients stay below 2^30
    s.push({ w: g });
    const before = Float32Array.from(s.snapshot().get('w'));
    const version = s.version;
    const e = errorOf(() => s.push({ w: g }));
    expect(e.name).toBe('NonFiniteGradientError');
    expect(e.tensor).toBe('w');
    const after = s.snapshot().get('w');
    if (mode !== 'averaging') {
      expect(same(after, before)).toBe(true);
      expect(s.version).toBe(version);
    }
    expect(after.every(Number.isFinite)).toBe(true);
    // save() writes a file load() accepts, holding exactly what the store holds
    const f = path.join(tmp(), 'm.safetensors');
    await s.save(f);
    const back = await ParameterStore.load(f);
    expect(same(back.snapshot().get('w'), after)).toBe(true);
  });

  test.each(['adagrad', 'rmsprop', 'adam'] as const)('%s: a 1e20 gradient (its square overflows) is refused, not stored as Infinity', (kind) => {
    const s = new ParameterStore({ tensors: { w: { shape: [3] } }, optimizer: { kind, lr: 0.1 } });
    const e = errorOf(() => s.push({ w: new Float32Array(3).fill(1e20) }));
    expect(e.name).toBe('NonFiniteGradientError');
    expect(s.version).toBe(0);
  });

  test("nonFinite: 'skip' skips and counts such a push", () => {
    const s = new ParameterStore({ tensors: { w: { shape: [1] } }, nonFinite: 'skip', optimizer: { kind: 'sgd', lr: 1 } });
    s.push({ w: new Float32Array([-3e38]) });
    const r = s.push({ w: new Float32Array([-3e38]) });
    expect(r).toMatchObject({ applied: false, reason: 'nonFinite' });
    expect(s.stats().skippedNonFinite).toBe(1);
  });

  test('ordinary pushes are not refused: 10,000 steps of an adam store near |w| = 1e30', () => {
    const s = new ParameterStore({ tensors: { w: { shape: [8], init: new Float32Array(8).fill(1e30) } }, optimizer: { kind: 'adam', lr: 1e-3 } });
    for (let i = 0; i < 10000; i++) s.push({ w: seq(8, (k) => Math.sin(i + k)) });
    expect(s.version).toBe(10000);
  });

  test('a Trainer whose loss becomes non-finite stops with NonFiniteGradientError', async () => {
    // before: this run "completed" with loss NaN
    const data = synthetic('blobs', { rows: 256, features: 8, classes: 3, seed: 2 });
    // batch 1 (batches of 8 or 32 rows at this rate separate the classes by margins of 1e37 and end at loss 0)
    const t = new Trainer({ model: 'softmax', optimizer: { kind: 'sgd', lr: 1e37 }, epochs: 3, threads: 1, batchSize: 1 });
    const e = await rejectionOf(t.fit(data));
    expect(e.name).toBe('NonFiniteGradientError');
    expect(e.message).toMatch(/non-finite/);
  });
});

describe('99.hardening: saving does not change training (item 9)', () => {
  test('averaging: syncEvery 4, two pushes, save, two pushes gives the same bits as without the save', async () => {
    const run = async (save: boolean) => {
      const s = new ParameterStore({ tensors: { w: { shape: [3] } }, mode: 'averaging', syncEvery: 4, optimizer: { kind: 'adam', lr: 0.1 } });
      s.push({ w: new Float32Array([1, 2, 3]) });
      s.push({ w: new Float32Array([3, 1, 2]) });
      if (save) await s.save(path.join(tmp(), 'm.safetensors'));
      expect(s.stats().pending).toBe(2);
      s.push({ w: new Float32Array([0.5, 4, 1]) });
      s.push({ w: new Float32Array([2, 2, 2]) });
      return s.snapshot().get('w');
    };
    expect(same(await run(true), await run(false))).toBe(true);
  });

  test('averaging: the open round is saved and loaded; finishing it after a load gives the same bits', async () => {
    const f = path.join(tmp(), 'm.safetensors');
    const mk = () => new ParameterStore({ tensors: { w: { shape: [3] }, u: { shape: [2] } }, mode: 'averaging', syncEvery: 3, optimizer: { kind: 'sgd', lr: 0.5, momentum: 0.9 } });
    const a = mk();
    a.push({ w: new Float32Array([1, 2, 3]) });
    a.push({ w: new Float32Array([3, 1, 2]) });
    await a.save(f);
    const b = await ParameterStore.load(f);
    expect(b.stats().pending).toBe(2);
    for (const s of [a, b]) s.push({ w: new Float32Array([0.5, 4, 1]), u: new Float32Array([1, 1]) });
    expect(same(a.snapshot().get('w'), b.snapshot().get('w'))).toBe(true);
    expect(b.stats().rounds).toBe(1);
  });
});

describe('99.hardening: files and paths (items 10, 11)', () => {
  test("save() leaves a user's file that only looks like a temporary", async () => {
    const d = tmp();
    const notes = path.join(d, '.model.safetensors.tmp-notes.txt');
    const other = path.join(d, '.model.safetensors.tmp-0-1');
    fs.writeFileSync(notes, 'mine');
    fs.writeFileSync(other, 'mine too');
    await new ParameterStore({ tensors: { w: { shape: [1] } } }).save(path.join(d, 'model.safetensors'));
    expect(fs.existsSync(notes)).toBe(true);
    expect(fs.existsSync(other)).toBe(true);
  });

  test('a NUL byte in a path is refused by save and load', async () => {
    const d = tmp();
    const s = new ParameterStore({ tensors: { w: { shape: [1] } } });
    for (const start of [() => s.save(path.join(d, 'a.safetensors\0.txt')), () => ParameterStore.load(path.join(d, 'a\0b'))]) {
      const e = await rejectionOf(start());
      expect(e.name).toBe('InvalidArgumentError');
      expect(e.message).toContain('NUL');
    }
    expect(fs.readdirSync(d)).toEqual([]);
  });
});

describe('99.hardening: arguments (items 7, 12, 14)', () => {
  test.each([1e300, 1e-50, -1, NaN, Infinity])('learningRate = %p is refused as the constructor refuses it', (lr) => {
    const s = new ParameterStore({ tensors: { w: { shape: [1] } } });
    const e = errorOf(() => {
      s.learningRate = lr;
    });
    expect(e.name).toBe('InvalidArgumentError');
    expect(e.message).toContain(String(lr));
    expect(s.learningRate).toBeCloseTo(0.01);
    const c = errorOf(() => new ParameterStore({ tensors: { w: { shape: [1] } }, optimizer: { lr } }));
    expect(c.name).toBe('ConfigError');
    expect(c.message).toContain(`got ${lr}`);
  });

  test('a misspelled push option is refused, naming it', () => {
    const s = new ParameterStore({ tensors: { w: { shape: [1] } } });
    const e = errorOf(() => s.push({ w: new Float32Array(1) }, { basedon: 0 } as never));
    expect(e.name).toBe('InvalidArgumentError');
    expect(e.message).toContain("did you mean 'basedOn'");
    expect(s.version).toBe(0);
  });

  test('fake Float32Arrays are InvalidArgumentErrors naming the tensor', () => {
    const s = new ParameterStore({ tensors: { w: { shape: [2] } } });
    const fakes = [Object.create(Float32Array.prototype), { [Symbol.toStringTag]: 'Float32Array', length: 2 }, new Proxy(new Float32Array(2), {})];
    for (const g of fakes) {
      const e = errorOf(() => s.push({ w: g }));
      expect(e.name).toBe('InvalidArgumentError');
      expect(e.field).toBe('grads.w');
    }
    const throwing = { get w() { throw new Error('boom'); } };
    expect(errorOf(() => s.push(throwing as never)).name).toBe('InvalidArgumentError');
  });

  test('attach() takes the options from the vault, not from the handle', () => {
    const s = new ParameterStore({ tensors: { w: { shape: [2] } }, verify: true, mode: 'locked' });
    const h = s.share();
    const a = ParameterStore.attach({ ...h, options: null as never });
    expect(a.options.mode).toBe('locked');
    expect(a.options.verify).toBe(true);
    const b = ParameterStore.attach({ ...h, options: { ...h.options, mode: 'hogwild', verify: false } });
    expect(b.options.mode).toBe('locked');
    expect(b.options.verify).toBe(true);
  });

  test('a shape whose values change between reads, or whose product overflows, never reaches the store', () => {
    let reads = 0;
    const shifty = new Proxy([2, 2], { get: (t, k) => (k === '0' ? (reads++ === 0 ? 2 : 1e9) : Reflect.get(t, k)) });
    const s = new ParameterStore({ tensors: { w: { shape: shifty } } });
    expect(s.tensors[0].size).toBe(4);
    expect(s.snapshot().get('w').length).toBe(4);
    for (const shape of [[2 ** 40, 2 ** 40, 2 ** 40, 2 ** 40, 2 ** 40, 2 ** 40, 2 ** 40, 2 ** 40], [2 ** 53, 2 ** 53]]) {
      const e = errorOf(() => new ParameterStore({ tensors: { w: { shape } } }));
      expect(e.name).toBe('ConfigError');
      expect(e.path).toBe('tensors.w.shape');
    }
  });
});

describe('99.hardening: input that throws when read (found by the probe beyond the issue)', () => {
  const trap = new Proxy({}, { get() { throw new Error('trap'); }, ownKeys() { throw new Error('trap'); } });
  test('snapshot.get/shape of a symbol or an object name, attach, Trainer and evaluate of a trapping Proxy: typed errors', () => {
    const s = new ParameterStore({ tensors: { w: { shape: [2] } } });
    const snap = s.snapshot();
    for (const name of [Symbol('x'), { toString: null }, trap]) {
      expect(errorOf(() => snap.get(name as never)).name).toBe('InvalidArgumentError');
      expect(errorOf(() => snap.shape(name as never)).name).toBe('InvalidArgumentError');
    }
    expect(errorOf(() => ParameterStore.attach(trap as never)).name).toBe('InvalidArgumentError');
    expect(errorOf(() => new Trainer(trap as never)).name).toBe('ConfigError');
    expect(errorOf(() => new Trainer(s, trap as never)).name).toBe('ConfigError');
    expect(errorOf(() => new ParameterStore(trap as never)).name).toBe('ConfigError');
    const data = synthetic('blobs', { rows: 8, features: 2, classes: 2 });
    expect(errorOf(() => evaluate(snap, trap as never, data)).name).toBe('ConfigError');
  });
});

describe('99.hardening: loaders and synthetic data (items 4, 6, 11)', () => {
  test('load() and the data loaders refuse a FIFO at once instead of waiting for a writer', async () => {
    const d = tmp();
    const fifo = path.join(d, 'pipe');
    execFileSync('mkfifo', [fifo]);
    // one at a time: a promise made before the previous one is awaited could reject unobserved
    for (const start of [() => ParameterStore.load(fifo), () => loadLibsvm(fifo), () => loadCsv(fifo, { label: 0 })]) {
      const e = await rejectionOf(start());
      expect(e.name).toBe('FileError');
      expect(e.code).toBe('ERR_IO');
      expect(e.message).toContain('not a regular file');
    }
  }, 10000);

  test('a NUL byte in a data path is refused', async () => {
    for (const start of [() => loadLibsvm('/etc/hostname\0x'), () => loadCsv('a\0b', { label: 0 }), () => loadIdx('/tmp/a\0', '/tmp/b')]) {
      const e = await rejectionOf(start());
      expect(e.name).toBe('InvalidArgumentError');
      expect(e.message).toContain('NUL');
    }
  });

  test('synthetic sets too large to make are refused before any allocation, naming the option', () => {
    const cases: [Parameters<typeof synthetic>[0], object, string][] = [
      ['sparse-logistic', { features: 4294967294, nnz: 4294967294 }, 'features'],
      ['sparse-logistic', { rows: 1e8, nnz: 100 }, 'nnz'],
      ['blobs', { rows: 4e6, features: 1e6 }, 'rows'],
      ['ratings', { rows: 1e6, users: 4e9, items: 4e9, rank: 64 }, 'rank'],
    ];
    for (const [kind, o, field] of cases) {
      const e = errorOf(() => synthetic(kind, o as never));
      expect(e.name).toBe('ConfigError');
      expect(e.path).toBe(field);
      expect(e.message).toContain('MiB');
    }
  });

  test('loader and synthetic options that throw when read are ConfigErrors', async () => {
    const trap = new Proxy({}, { get() { throw new Error('trap'); }, ownKeys() { throw new Error('trap'); } });
    expect(errorOf(() => synthetic('blobs', trap as never)).name).toBe('ConfigError');
    expect((await rejectionOf(loadCsv('/etc/hostname', trap as never))).name).toBe('ConfigError');
  });
});

describe('99.hardening: messages (item 14)', () => {
  test('bytes echoed from a data file are shown escaped (a BOM, NUL, binary junk)', async () => {
    const d = tmp();
    const f = path.join(d, 'bom.csv');
    fs.writeFileSync(f, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('a,b\n1,x\u0001\u0000y\n')]));
    const e = await rejectionOf(loadCsv(f, { label: 0, header: true }));
    expect(e.name).toBe('DataFormatError');
    expect(e.message).toContain('\\x01\\x00');
    expect(e.message).not.toMatch(/[\x00-\x08\x7f]/);
    const g = path.join(d, 'names.csv');
    fs.writeFileSync(g, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('a,b\n1,2\n')]));
    const e2 = await rejectionOf(loadCsv(g, { label: 'zz' }));
    expect(e2.message).toContain('\\xEF\\xBB\\xBFa');
  });

  test('an IDX images header larger than its file is blamed on the images file, not the labels file', async () => {
    const d = tmp();
    const images = path.join(d, 'images'), labels = path.join(d, 'labels');
    const hdr = (magic: number, dims: number[]) => {
      const b = Buffer.alloc(4 + 4 * dims.length);
      b.writeUInt32BE(magic, 0);
      dims.forEach((x, i) => b.writeUInt32BE(x, 4 + 4 * i));
      return b;
    };
    fs.writeFileSync(images, Buffer.concat([hdr(0x803, [4000000, 2, 2]), Buffer.alloc(3 * 4)])); // claims 4M images, holds 3
    fs.writeFileSync(labels, Buffer.concat([hdr(0x801, [3]), Buffer.from([0, 1, 2])]));
    const e = await rejectionOf(loadIdx(images, labels));
    expect(e.name).toBe('DataFormatError');
    expect(e.file).toBe(images);
  });
});

describe('99.hardening: found by the generated suite of the attack helper', () => {
  test('a forged Snapshot as basedOn or for evaluate is an InvalidArgumentError', () => {
    const s = new ParameterStore({ tensors: { W: { shape: [2, 2] }, b: { shape: [2] } } });
    const fake = Object.create(Snapshot.prototype);
    expect(errorOf(() => s.push({ b: new Float32Array(2) }, { basedOn: fake })).name).toBe('InvalidArgumentError');
    const data = synthetic('blobs', { rows: 4, features: 2, classes: 2 });
    expect(errorOf(() => evaluate(fake, 'softmax', data)).name).toBe('InvalidArgumentError');
  });

  test('blobs whose class centres alone would need gigabytes are refused', () => {
    const e = errorOf(() => synthetic('blobs', { features: 1e6, classes: 1e5, rows: 1 }));
    expect(e.name).toBe('ConfigError');
    expect(e.path).toBe('classes');
  });
});
