/**
 * 96.generated: property-based tests (fast-check, fixed seeds) that throw
 * generated types, shapes, option objects, file bytes and interleavings at
 * the public API and check the promises of docs/ARCHITECTURE.md (invariants): no crash, a typed
 * error naming its field, a store unchanged by a refused call, and no two
 * live snapshots sharing bytes. The counts are printed (and summed in
 * RELIABILITY.md).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { types as utilTypes } from 'node:util';
import fc from 'fast-check';
import { ParameterStore, Trainer, evaluate, loadCsv, loadLibsvm, synthetic, MODES, type Mode, type Snapshot } from '../lib';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-gen-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const runs: Record<string, number> = {};
afterAll(() => process.stdout.write(`96.generated cases: ${JSON.stringify(runs)} total ${Object.values(runs).reduce((a, b) => a + b, 0)}\n`));
function check<T>(name: string, arb: fc.Arbitrary<T>, pred: (t: T) => void | Promise<void>, numRuns: number, seed: number) {
  runs[name] = numRuns;
  const prop = pred.constructor.name === 'AsyncFunction' ? fc.asyncProperty(arb, pred as (t: T) => Promise<void>) : fc.property(arb, pred as (t: T) => void);
  return fc.assert(prop as fc.IProperty<[T]>, { numRuns, seed, endOnFailure: true });
}

/** A thrown value is a GradvaultError: a name, a stable ERR_ code, a message, and for ConfigError the path. */
function expectTyped(e: unknown, allowed?: string[]) {
  const err = e as { name?: unknown; code?: unknown; message?: unknown; path?: unknown };
  if (typeof err?.code !== 'string' || !/^(ERR_|ABORT_ERR)/.test(err.code) || typeof err.message !== 'string')
    throw new Error(`untyped error: ${String((e as Error)?.stack ?? e)}`);
  if (allowed && !allowed.includes(err.name as string)) throw new Error(`unexpected ${String(err.name)}: ${err.message}`);
  if (err.name === 'ConfigError' && (typeof err.path !== 'string' || err.path === '')) throw new Error(`ConfigError without a path: ${err.message}`);
}

// Values an attacker or a careless caller sends.
const hostile = fc.oneof(
  fc.constantFrom(undefined, null, NaN, Infinity, -Infinity, -0, 0, -1, 1e300, 1e-50, 2 ** 53, 2 ** 32, '', '__proto__', 'toString', true, [], {}),
  fc.double(),
  fc.integer(),
  fc.string(),
  fc.array(fc.oneof(fc.integer({ min: -3, max: 5 }), fc.double()), { maxLength: 4 }),
  fc.constant(Object.create(null)),
  fc.constant(new Proxy({}, { get() { throw new Error('trap'); }, ownKeys() { throw new Error('trap'); } })),
  fc.constant(Object.defineProperty({}, 'x', { enumerable: true, get() { throw new Error('getter'); } })),
  fc.constant(new Float64Array(2)),
  fc.constant(Symbol('s')),
  fc.constant(() => 1),
  fc.bigInt(),
);
const KEYS = ['tensors', 'mode', 'optimizer', 'seed', 'staleness', 'verify', 'nonFinite', 'syncEvery', 'shape', 'init', 'std', 'kind', 'lr', 'momentum', 'nesterov', 'weightDecay', 'decoupled', 'beta1', 'beta2', 'alpha', 'eps', 'policy', 'bound', '__proto__', 'constructor', 'lR', 'extra'];

/** A valid store config with one to three fields replaced (at any depth) by hostile values. */
const mutatedConfig = fc
  .record({
    mode: fc.constantFrom(...MODES),
    optimizer: fc.constantFrom('sgd', 'adagrad', 'rmsprop', 'adam'),
    edits: fc.array(fc.tuple(fc.constantFrom('', 'optimizer', 'tensors', 'tensors.w', 'staleness'), fc.constantFrom(...KEYS), hostile), { minLength: 1, maxLength: 3 }),
  })
  .map(({ mode, optimizer, edits }) => {
    const o: Record<string, unknown> = { mode, optimizer: { kind: optimizer, lr: 0.1 }, tensors: { w: { shape: [3, 2] }, b: { shape: [2] } } };
    for (const [where, key, value] of edits) {
      let target: Record<string, unknown> = o;
      for (const part of where ? where.split('.') : []) {
        const next = target[part];
        if (typeof next !== 'object' || next === null || ArrayBuffer.isView(next) || utilTypes.isProxy(next)) break;
        target = next as Record<string, unknown>;
      }
      Object.defineProperty(target, key, { value, enumerable: true, configurable: true, writable: true });
    }
    return o;
  });
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('96.generated: option objects', () => {
  test('a store from any mutated config, or a typed ConfigError naming its field', () =>
    check('store options', mutatedConfig, (o) => {
      let s: ParameterStore | undefined;
      try {
        s = new ParameterStore(o as never);
      } catch (e) {
        expectTyped(e, ['ConfigError', 'InvalidArgumentError']);
        return;
      }
      // what was accepted works: a zero push and a snapshot
      const g: Record<string, Float32Array> = {};
      for (const t of s.tensors) g[t.name] = new Float32Array(t.size);
      s.push(g);
      for (const t of s.tensors) expect(s.snapshot().get(t.name).every(Number.isFinite)).toBe(true);
      s.close();
    }, 2000, 10));

  test('Trainer and synthetic options: a Trainer / Dataset or a typed error', () => {
    const trainerKeys = ['model', 'hidden', 'rank', 'threads', 'epochs', 'batchSize', 'seed', 'lr', 'schedule', 'maxAhead', 'targetLoss', 'mode', 'optimizer', 'bogus'];
    check('trainer options', fc.array(fc.tuple(fc.constantFrom(...trainerKeys), hostile), { maxLength: 3 }), (edits) => {
      const o: Record<string, unknown> = { model: 'softmax' };
      for (const [k, v] of edits) Object.defineProperty(o, k, { value: v, enumerable: true, configurable: true });
      try {
        new Trainer(o as never);
      } catch (e) {
        expectTyped(e, ['ConfigError', 'InvalidArgumentError']);
      }
    }, 800, 11);
    const synthKeys = ['rows', 'seed', 'features', 'classes', 'users', 'items', 'rank', 'nnz', 'zipf', 'noise', 'spread', 'bogus'];
    check('synthetic options', fc.tuple(fc.constantFrom('sparse-logistic', 'blobs', 'ratings', 'nope'), fc.array(fc.tuple(fc.constantFrom(...synthKeys), fc.oneof(hostile, fc.constantFrom(4294967294, 1e9, 1e12, 2 ** 40))), { maxLength: 3 })), ([kind, edits]) => {
      const o: Record<string, unknown> = { rows: 50 };
      for (const [k, v] of edits) Object.defineProperty(o, k, { value: v, enumerable: true, configurable: true });
      try {
        const d = synthetic(kind as never, o as never);
        expect(d.rows).toBeGreaterThan(0);
      } catch (e) {
        expectTyped(e, ['ConfigError', 'InvalidArgumentError']);
      }
    }, 800, 12);
  });

  test('learningRate: any number is accepted as a positive normal float32, or refused with the store unchanged', () =>
    check('learningRate setter', fc.oneof(fc.double(), hostile), (lr) => {
      const s = new ParameterStore({ tensors: { w: { shape: [1] } }, optimizer: { lr: 0.5 } });
      try {
        s.learningRate = lr as number;
        expect(Math.fround(lr as number)).toBeGreaterThanOrEqual(1.1754943508222875e-38);
        expect(Number.isFinite(s.learningRate)).toBe(true);
      } catch (e) {
        expectTyped(e, ['InvalidArgumentError']);
        expect(s.learningRate).toBe(0.5);
      }
    }, 1000, 13));
});

const gradientValue = fc.oneof(
  fc.constant('ok'),
  fc.constant('nan'),
  fc.constant('short'),
  fc.constant('long'),
  fc.constant('f64'),
  fc.constant('fake'),
  fc.constant('tag'),
  fc.constant('array'),
  fc.constant('sab'),
  fc.constant('huge'),
  hostile,
);
function gradient(kind: unknown, n: number, i: number): unknown {
  switch (kind) {
    case 'ok': return Float32Array.from({ length: n }, (_, k) => Math.sin(k + i));
    case 'nan': { const a = new Float32Array(n); a[i % n] = NaN; return a; }
    case 'short': return new Float32Array(Math.max(0, n - 1));
    case 'long': return new Float32Array(n + 1);
    case 'f64': return new Float64Array(n);
    case 'fake': return Object.create(Float32Array.prototype);
    case 'tag': return { [Symbol.toStringTag]: 'Float32Array', length: n };
    case 'array': return Array.from({ length: n }, () => 1);
    case 'sab': return new Float32Array(new SharedArrayBuffer(4 * n)).fill(0.5);
    case 'huge': return new Float32Array(n).fill(3e38);
    default: return kind;
  }
}

describe('96.generated: pushes', () => {
  test.each(MODES as Mode[])('%s: any push is applied or refused with a typed error, and a refused push changes nothing', (mode) =>
    check(`pushes ${mode}`, fc.tuple(
      fc.array(fc.tuple(fc.constantFrom('W', 'b', 'x', '__proto__', 'constructor'), gradientValue), { maxLength: 3 }),
      fc.oneof(fc.constant(undefined), fc.record({ basedOn: fc.oneof(fc.integer({ min: -2, max: 10 }), hostile) }), fc.constant({ basedon: 0 }), hostile),
      fc.boolean(),
    ), async ([entries, opts, async]) => {
      const s = new ParameterStore({ mode, tensors: { W: { shape: [5, 3] }, b: { shape: [3] } }, optimizer: { kind: 'sgd', lr: 1 }, ...(mode === 'averaging' ? { syncEvery: 1 } : {}) });
      s.push({ W: new Float32Array(15).fill(1e-3) });
      const before = s.snapshot();
      const version = s.version;
      const g: Record<string, unknown> = {};
      entries.forEach(([name, kind], i) => Object.defineProperty(g, name, { value: gradient(kind, name === 'W' ? 15 : 3, i), enumerable: true, configurable: true }));
      try {
        const r = async ? await s.pushAsync(g as never, opts as never) : s.push(g as never, opts as never);
        expect(typeof r.applied).toBe('boolean');
        if (!r.applied) expect(s.version).toBe(version);
      } catch (e) {
        expectTyped(e, ['InvalidArgumentError', 'ShapeError', 'NonFiniteGradientError', 'OverflowError']);
        const after = s.snapshot();
        for (const t of ['W', 'b']) expect(bytes(after.get(t)).equals(bytes(before.get(t)))).toBe(true);
        expect(s.version).toBe(version);
      }
      for (const t of ['W', 'b']) expect(s.snapshot().get(t).every(Number.isFinite)).toBe(true);
      s.close();
    }, 400, 20 + MODES.indexOf(mode)));
});

describe('96.generated: no two live snapshots share bytes', () => {
  const N = 1 << 18; // 1 MiB: the pooled buffers
  const command = fc.constantFrom('snapshot', 'release', 'drop', 'gc', 'push', 'pushAsync', 'tick', 'evaluate', 'write');
  test('random interleavings of snapshot, release, drop + gc, push, pushAsync, event-loop turns and evaluate', () =>
    check('snapshot interleavings', fc.tuple(fc.array(command, { minLength: 5, maxLength: 40 }), fc.boolean()), async ([cmds, verify]) => {
      const s = new ParameterStore({ tensors: { W: { shape: [N / 16, 16] }, b: { shape: [16] } }, verify });
      const data = synthetic('blobs', { rows: 4, features: N / 16, classes: 16 });
      const live: { snap: Snapshot; copy: Float32Array; dirty: boolean }[] = [];
      let step = 0;
      for (const c of cmds) {
        step++;
        switch (c) {
          case 'snapshot': {
            const snap = s.snapshot();
            live.push({ snap, copy: Float32Array.from(snap.get('W')), dirty: false });
            break;
          }
          case 'release':
            if (live.length) live.shift()!.snap.release();
            break;
          case 'drop':
            live.pop();
            break;
          case 'gc':
            gc();
            break;
          case 'push': {
            // based on a snapshot: a false InPlaceModificationError would mean
            // its bytes changed under it; one written by the test must be caught
            const base = live[live.length - 1];
            const push = () => s.push({ W: new Float32Array(N).fill(step) }, base ? { basedOn: base.snap } : undefined);
            if (verify && base?.dirty) expect(push).toThrow(expect.objectContaining({ name: 'InPlaceModificationError', tensor: 'W' }));
            else push();
            break;
          }
          case 'pushAsync':
            await s.pushAsync({ W: new Float32Array(N).fill(-step) });
            break;
          case 'tick':
            await new Promise((r) => setImmediate(r));
            break;
          case 'evaluate':
            evaluate(s, 'softmax', data);
            break;
          case 'write':
            if (live.length) {
              const l = live[step % live.length];
              l.snap.get('W')[step] = 1234.5;
              l.copy[step] = 1234.5;
              l.dirty = true;
            }
            break;
        }
        for (const l of live) if (!bytes(l.snap.get('W')).equals(bytes(l.copy))) throw new Error(`a live snapshot changed after '${c}' (step ${step})`);
      }
      s.close();
    }, 150, 30));
});

describe('96.generated: files', () => {
  const ck = path.join(dir, 'base.safetensors');
  let base: Buffer;
  beforeAll(async () => {
    const s = new ParameterStore({ tensors: { W: { shape: [4, 3] }, b: { shape: [3] } }, optimizer: { kind: 'adam', lr: 0.1 }, verify: true });
    s.push({ W: new Float32Array(12).fill(0.5), b: new Float32Array(3).fill(-1) });
    await s.save(ck);
    base = fs.readFileSync(ck);
  });
  const mutation = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'flip', 'cut', 'insert')), { minLength: 1, maxLength: 4 });
  function mutate(src: Buffer, edits: [number, number, string][]): Buffer {
    let b = Buffer.from(src);
    for (const [at, v, how] of edits) {
      const i = b.length ? at % b.length : 0;
      if (how === 'set') b[i] = v;
      else if (how === 'flip') b[i] ^= 1 << (v % 8);
      else if (how === 'cut') b = b.subarray(0, i);
      else b = Buffer.concat([b.subarray(0, i), Buffer.from([v]), b.subarray(i)]);
    }
    return b;
  }
  test('a mutated checkpoint loads (and then stays finite) or is a typed DataFormatError / FileError', () =>
    check('checkpoint bytes', fc.oneof(mutation.map((m) => mutate(base, m as never)), fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a))), async (bytes) => {
      const f = path.join(dir, 'm.safetensors');
      fs.writeFileSync(f, bytes);
      let s: ParameterStore;
      try {
        s = await ParameterStore.load(f);
      } catch (e) {
        expectTyped(e, ['DataFormatError', 'FileError', 'ConfigError']);
        return;
      }
      const g: Record<string, Float32Array> = {};
      for (const t of s.tensors) g[t.name] = new Float32Array(t.size);
      try {
        s.push(g);
      } catch (e) {
        expectTyped(e, ['NonFiniteGradientError', 'OverflowError']);
      }
      for (const t of s.tensors) expect(s.snapshot().get(t.name).every(Number.isFinite)).toBe(true);
      s.close();
    }, 1000, 40));

  test('mutated CSV and LIBSVM text loads or is a DataFormatError with a line and column', () => {
    const csv = Buffer.from('a,b,label\n1,2,0\n3.5,-1,1\n0,0,1\n');
    const svm = Buffer.from('1 1:0.5 3:2\n-1 2:1 4:-0.25\n+1 1:1\n');
    return check('csv/libsvm bytes', fc.tuple(fc.boolean(), mutation), async ([isCsv, m]) => {
      const f = path.join(dir, isCsv ? 'd.csv' : 'd.svm');
      fs.writeFileSync(f, mutate(isCsv ? csv : svm, m as never));
      try {
        const d = isCsv ? await loadCsv(f, { label: 'label' }) : await loadLibsvm(f);
        expect(d.rows).toBeGreaterThanOrEqual(0);
      } catch (e) {
        expectTyped(e, ['DataFormatError', 'FileError', 'ConfigError']);
        const err = e as { name: string; line?: number; column?: number; offset?: number };
        if (err.name === 'DataFormatError') expect(err.line !== undefined || err.offset !== undefined).toBe(true);
      }
    }, 1000, 41);
  });
});
