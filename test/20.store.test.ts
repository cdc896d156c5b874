// 20: the store: initialisation, snapshots that are private copies, pushes
// with the documented arithmetic, bad input refused without damage.
import {
  ParameterStore,
  Snapshot,
  ShapeError,
  InvalidArgumentError,
  NonFiniteGradientError,
  ClosedError,
  GradvaultError,
  type Mode,
} from '../lib';
import { ALL_MODES, bits, expectSameBits, randoms, seq } from './helpers';

const f32 = (...v: number[]) => new Float32Array(v);

describe('20.store.init', () => {
  test('zeros, values, glorot and normal; the same seed gives the same bits', () => {
    const make = (seed: number) =>
      new ParameterStore({
        seed,
        tensors: {
          W: { shape: [784, 10], init: 'glorot' },
          b: { shape: [10] },
          e: { shape: [64], init: 'normal', std: 0.5 },
          v: { shape: [2, 2], init: [1, 2, 3, 4] },
          s: { shape: [] },
        },
      });
    const a = make(42).snapshot();
    const b = make(42).snapshot();
    const c = make(43).snapshot();
    expect(a.names).toEqual(['W', 'b', 'e', 'v', 's']);
    expect(a.version).toBe(0);
    expectSameBits(a.get('W'), b.get('W'));
    expectSameBits(a.get('e'), b.get('e'));
    expect(bits(a.get('W'))).not.toEqual(bits(c.get('W')));
    const limit = Math.sqrt(6 / (784 + 10));
    const W = a.get('W');
    expect(W.length).toBe(7840);
    const max = W.reduce((x, y) => Math.max(x, y), -Infinity);
    const min = W.reduce((x, y) => Math.min(x, y), Infinity);
    expect(max).toBeLessThanOrEqual(limit);
    expect(min).toBeGreaterThanOrEqual(-limit);
    expect(max).toBeGreaterThan(limit * 0.9); // it fills the range
    const mean = W.reduce((x, y) => x + y, 0) / W.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    const e = a.get('e');
    const sd = Math.sqrt(e.reduce((x, y) => x + y * y, 0) / e.length);
    expect(sd).toBeGreaterThan(0.35);
    expect(sd).toBeLessThan(0.65);
    expect([...a.get('b')]).toEqual(new Array(10).fill(0));
    expect([...a.get('v')]).toEqual([1, 2, 3, 4]);
    expect(a.get('s').length).toBe(1);
  });

  test('tensors report names, shapes and sizes', () => {
    const s = new ParameterStore({ tensors: { W: { shape: [3, 2] }, b: { shape: [2] } } });
    expect(s.tensors.map((t) => [t.name, [...t.shape], t.size])).toEqual([
      ['W', [3, 2], 6],
      ['b', [2], 2],
    ]);
  });
});

describe.each(ALL_MODES)('20.store.push [%s]', (mode: Mode) => {
  const make = (opts: object = {}) =>
    new ParameterStore({
      mode,
      optimizer: { kind: 'sgd', lr: 0.5 },
      tensors: { W: { shape: [2, 3], init: [1, 2, 3, 4, 5, 6] }, b: { shape: [3] } },
      ...opts,
    });

  test('a push moves the parameters by -lr * g and counts a version', () => {
    const s = make();
    const r = s.push({ W: f32(2, 2, 2, 2, 2, 2), b: f32(1, -1, 4) });
    expect(r).toEqual({ applied: true, version: 1, staleness: 0 });
    expect(s.version).toBe(1);
    const snap = s.snapshot();
    expect(snap.version).toBe(1);
    expect([...snap.get('W')]).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...snap.get('b')]).toEqual([-0.5, 0.5, -2]);
    s.push({ b: f32(1, 1, 1) });
    expect([...s.snapshot().get('b')]).toEqual([-1, 0, -2.5]);
    expect([...s.snapshot().get('W')]).toEqual([0, 1, 2, 3, 4, 5]);
    expect(s.stats()).toMatchObject({ mode, version: 2, pushes: 2, rejected: 0, snapshots: 3 });
  });

  test('a snapshot is a private copy: changing it never changes the store', () => {
    const s = make();
    const snap = s.snapshot();
    expect(snap).toBeInstanceOf(Snapshot);
    const W = snap.get('W');
    expect(snap.get('W')).toBe(W); // the same object each call
    W.fill(1e6);
    snap.get('b')[0] = 7;
    const again = s.snapshot();
    expect([...again.get('W')]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...again.get('b')]).toEqual([0, 0, 0]);
    expect(again.get('W')).not.toBe(W);
    expect(Object.isFrozen(snap)).toBe(true);
    expect(() => snap.get('nope')).toThrow(InvalidArgumentError);
  });

  test('a pushed buffer reused right after push() changes nothing', () => {
    const s = make();
    const g = f32(1, 1, 1);
    s.push({ b: g });
    g.fill(1000);
    expect([...s.snapshot().get('b')]).toEqual([-0.5, -0.5, -0.5]);
  });

  test('pushAsync copies the buffer first and resolves after applying', async () => {
    const s = make();
    const g = f32(2, 2, 2);
    const p = s.pushAsync({ b: g });
    g.fill(NaN); // reused at once: the copy was taken already
    const r = await p;
    expect(r).toEqual({ applied: true, version: 1, staleness: 0 });
    expect([...s.snapshot().get('b')]).toEqual([-1, -1, -1]);
    const many = await Promise.all(Array.from({ length: 50 }, () => s.pushAsync({ b: f32(0.5, 0.5, 0.5) })));
    expect(many.map((x) => x.applied).every(Boolean)).toBe(true);
    expect(s.version).toBe(51);
    expect([...s.snapshot().get('b')]).toEqual([-13.5, -13.5, -13.5]);
  });

  test('bad gradients are refused with typed errors and the store keeps its state', () => {
    const s = make();
    s.push({ b: f32(1, 2, 3) });
    const before = s.snapshot();
    const cases: [unknown, Function, string][] = [
      [{ W: f32(1, 2) }, ShapeError, 'grads.W has 2 elements, expected 6 (shape [2, 3])'],
      [{ W: [1, 2, 3, 4, 5, 6] }, InvalidArgumentError, 'grads.W must be a Float32Array, got an array of length 6'],
      [{ W: new Float64Array(6) }, InvalidArgumentError, 'grads.W must be a Float32Array, got a Float64Array'],
      [{ nope: f32(1) }, InvalidArgumentError, "grads.nope: the store has no tensor 'nope' (it has W, b)"],
      [{}, InvalidArgumentError, 'grads must name at least one tensor'],
      [null, InvalidArgumentError, 'grads must be an object of Float32Arrays by tensor name, got null'],
      [f32(1, 2, 3), InvalidArgumentError, 'grads must be an object'],
      [{ W: f32(1, 2, 3, 4, 5, 6), b: f32(0, Infinity, 0) }, NonFiniteGradientError, "gradient for 'b' has a non-finite value (inf) at index 1"],
      [{ W: f32(1, 2, 3, NaN, 5, 6) }, NonFiniteGradientError, "gradient for 'W' has a non-finite value (nan) at index 3"],
    ];
    for (const [grads, cls, message] of cases) {
      let err: unknown;
      try {
        s.push(grads as never);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(cls);
      expect(err).toBeInstanceOf(GradvaultError);
      expect((err as Error).message).toContain(message);
    }
    const nf = (() => {
      try {
        s.push({ W: f32(1, 2, 3, NaN, 5, 6) });
      } catch (e) {
        return e as NonFiniteGradientError;
      }
    })()!;
    expect(nf.code).toBe('ERR_NON_FINITE');
    expect(nf.tensor).toBe('W');
    expect(nf.index).toBe(3);
    const after = s.snapshot();
    expect(after.version).toBe(before.version);
    expectSameBits(after.get('W'), before.get('W'));
    expectSameBits(after.get('b'), before.get('b'));
    expect(s.version).toBe(1);
  });

  test("nonFinite: 'skip' ignores the push and counts it", async () => {
    const s = make({ nonFinite: 'skip' });
    expect(s.push({ b: f32(NaN, 0, 0) })).toEqual({ applied: false, version: 0, staleness: 0, reason: 'nonFinite' });
    expect(await s.pushAsync({ b: f32(0, -Infinity, 0) })).toMatchObject({ applied: false, reason: 'nonFinite' });
    s.push({ b: f32(1, 1, 1) });
    expect(s.stats()).toMatchObject({ pushes: 1, skippedNonFinite: 2, rejected: 2, version: 1 });
    expect([...s.snapshot().get('b')]).toEqual([-0.5, -0.5, -0.5]);
  });

  test('pushAsync rejects with the same typed errors', async () => {
    const s = make();
    await expect(s.pushAsync({ W: f32(1) })).rejects.toBeInstanceOf(ShapeError);
    await expect(s.pushAsync({ b: f32(NaN, 1, 1) })).rejects.toMatchObject({ code: 'ERR_NON_FINITE', tensor: 'b', index: 0 });
    expect(s.version).toBe(0);
  });

  test('close() is idempotent; every later call throws ClosedError; pending pushAsync completes', async () => {
    const s = make();
    const p = s.pushAsync({ b: f32(1, 1, 1) });
    s.close();
    s.close();
    expect(s.closed).toBe(true);
    await expect(p).resolves.toMatchObject({ applied: true });
    expect(() => s.snapshot()).toThrow(ClosedError);
    expect(() => s.push({ b: f32(1, 1, 1) })).toThrow(ClosedError);
    expect(() => s.version).toThrow('the store is closed');
    expect(() => s.stats()).toThrow(ClosedError);
    await expect(s.pushAsync({ b: f32(1, 1, 1) })).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('20.store.stats', () => {
  test('bytes count parameters and optimizer state', () => {
    const plain = new ParameterStore({ tensors: { w: { shape: [1024] } } });
    const adam = new ParameterStore({ tensors: { w: { shape: [1024] } }, optimizer: { kind: 'adam' } });
    expect(plain.stats().bytes).toBeGreaterThanOrEqual(4096);
    expect(plain.stats().bytes).toBeLessThan(4096 + 1024); // parameters plus a stripe lock or two
    expect(adam.stats().bytes).toBe(plain.stats().bytes + 2 * 4096); // m and v
  });

  test('learningRate can be changed between pushes', () => {
    const s = new ParameterStore({ tensors: { w: { shape: [2] } }, optimizer: { kind: 'sgd', lr: 1 } });
    s.push({ w: f32(1, 1) });
    s.learningRate = 0.25;
    expect(s.learningRate).toBe(0.25);
    s.push({ w: f32(1, 1) });
    expect([...s.snapshot().get('w')]).toEqual([-1.25, -1.25]);
    expect(() => {
      s.learningRate = -1;
    }).toThrow(InvalidArgumentError);
  });

  test('a large store round-trips exactly', () => {
    const values = randoms(1_000_003, 7);
    for (const mode of ['atomic', 'locked', 'versioned', 'hogwild', 'averaging'] as Mode[]) {
      const s = new ParameterStore({ mode, tensors: { w: { shape: [values.length], init: values } } });
      expectSameBits(s.snapshot().get('w'), values);
      s.close();
    }
  });

  test('many stores can be created and closed', () => {
    for (let i = 0; i < 200; i++) {
      const s = new ParameterStore({ mode: ALL_MODES[i % 6], tensors: { w: { shape: [1024] } }, optimizer: { kind: 'sgd', lr: 1 } });
      s.push({ w: seq(1024, (k) => k) });
      s.sync();
      expect(s.version).toBe(1);
      const w = s.snapshot().get('w');
      expect([w[0] + 0, w[1], w[1023]]).toEqual([0, -1, -1023]); // + 0: the sign of zero differs by mode
      s.close();
      expect(s.closed).toBe(true);
      expect(() => s.snapshot()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    }
  });
});

describe('20.store.release', () => {
  test('release() gives a snapshot back at once; its arrays empty, get() refused, the store untouched', () => {
    const s = new ParameterStore({ verify: true, tensors: { w: { shape: [1 << 19] }, b: { shape: [3] } } }); // 2 MiB: pooled
    const snap = s.snapshot();
    const w = snap.get('w');
    s.push({ b: f32(1, 1, 1) }, { basedOn: snap });
    snap.release();
    snap.release();
    expect(snap.released).toBe(true);
    expect(w.length).toBe(0);
    expect(() => snap.get('w')).toThrow('was released');
    expect(() => s.push({ b: f32(1, 1, 1) }, { basedOn: snap })).toThrow(InvalidArgumentError);
    expect(s.push({ b: f32(1, 1, 1) }, { basedOn: snap.version }).applied).toBe(true);
    // Recycled buffers never show an earlier snapshot's contents.
    for (let i = 0; i < 5; i++) {
      const again = s.snapshot();
      expect(again.get('w').every((x) => x === 0)).toBe(true);
      expect([...again.get('b')]).toEqual([-0.02, -0.02, -0.02].map(Math.fround));
      again.release();
    }
  });
});
