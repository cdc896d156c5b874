// 50: what each mode promises beyond a single push.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ConfigError, OverflowError, ParameterStore } from '../lib';
import { expectSameBits, randoms } from './helpers';

describe('50.modes.deterministic', () => {
  test('the same multiset of pushes in any order gives identical bytes', () => {
    const grads = Array.from({ length: 200 }, (_, i) => randoms(257, i + 1).map((x, k) => x * 10 ** ((k % 7) - 3)));
    const run = (order: number[]) => {
      const s = new ParameterStore({ mode: 'deterministic', optimizer: { kind: 'sgd', lr: 0.037, weightDecay: 0.01 }, tensors: { w: { shape: [257], init: randoms(257, 999) } } });
      for (const i of order) s.push({ w: grads[i] });
      return s.snapshot().get('w');
    };
    const forward = grads.map((_, i) => i);
    const reference = run(forward);
    expectSameBits(run([...forward].reverse()), reference);
    const shuffled = [...forward];
    let seed = 12345;
    for (let i = shuffled.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const j = seed % (i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    expectSameBits(run(shuffled), reference);
  });
});

describe('50.modes.versioned', () => {
  test('a snapshot is one version of the whole store', async () => {
    const s = new ParameterStore({ mode: 'versioned', optimizer: { kind: 'sgd', lr: 1 }, tensors: { a: { shape: [1000] }, b: { shape: [1000] } } });
    const plus = new Float32Array(1000).fill(-1), minus = new Float32Array(1000).fill(1);
    const pending = Array.from({ length: 200 }, () => s.pushAsync({ a: plus, b: minus }));
    let checked = 0;
    while (checked < 200) {
      const snap = s.snapshot();
      const a = snap.get('a'), b = snap.get('b');
      for (let i = 0; i < 1000; i++) {
        if (a[i] !== snap.version || b[i] !== -snap.version) throw new Error(`torn snapshot at version ${snap.version}`);
      }
      checked++;
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(pending);
    expect(s.version).toBe(200);
  });
});

describe('50.modes.hogwild', () => {
  test('single-threaded hogwild is exact, and counts no conflict', () => {
    const s = new ParameterStore({ mode: 'hogwild', optimizer: { kind: 'sgd', lr: 1 }, tensors: { w: { shape: [100] } } });
    for (let i = 0; i < 100; i++) s.push({ w: new Float32Array(100).fill(-1) });
    expect([...new Set(s.snapshot().get('w'))]).toEqual([100]);
    expect(s.stats().conflicts).toBe(0);
  });
});

describe('50.modes.averaging', () => {
  test('syncEvery pushes make one round; snapshots see only closed rounds', () => {
    const s = new ParameterStore({ mode: 'averaging', syncEvery: 4, optimizer: { kind: 'sgd', lr: 1 }, tensors: { w: { shape: [2] } } });
    for (let i = 1; i <= 10; i++) s.push({ w: new Float32Array([i, -i]) });
    // rounds: mean(1..4) = 2.5, mean(5..8) = 6.5; pushes 9 and 10 pending
    expect([...s.snapshot().get('w')]).toEqual([-9, 9]);
    expect(s.stats()).toMatchObject({ rounds: 2, pending: 2, version: 10, pushes: 10 });
    s.sync(); // mean(9, 10) = 9.5
    expect([...s.snapshot().get('w')]).toEqual([-18.5, 18.5]);
    s.sync(); // an empty round changes nothing
    expect(s.stats()).toMatchObject({ rounds: 3, pending: 0 });
  });
});

// Issue 11: what holds under concurrency, from JavaScript.
describe('50.modes.concurrency', () => {
  test("deterministic refuses staleness policies that make the step depend on timing", () => {
    for (const staleness of [{ policy: 'scale' }, { policy: 'reject', bound: 2 }, { policy: 'accept', bound: 3 }] as const) {
      let err: unknown;
      try {
        new ParameterStore({ mode: 'deterministic', staleness, tensors: { w: { shape: [2] } } });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).path).toBe('staleness');
      expect((err as Error).message).toMatch(/depend on timing/);
    }
    // 'accept' is allowed, and staleness is measured.
    const s = new ParameterStore({ mode: 'deterministic', staleness: { policy: 'accept' }, tensors: { w: { shape: [2] } } });
    const snap = s.snapshot();
    s.push({ w: new Float32Array([1, 1]) });
    expect(s.push({ w: new Float32Array([1, 1]) }, { basedOn: snap }).staleness).toBe(1);
  });

  test('deterministic: pushes past the range are accepted in any order; a save out of range is an OverflowError', async () => {
    const X = 0.75 * 2 ** 30;
    const run = (signs: number[]) => {
      const s = new ParameterStore({ mode: 'deterministic', optimizer: { kind: 'sgd', lr: 1 }, tensors: { w: { shape: [1] } } });
      for (const sign of signs) s.push({ w: new Float32Array([sign * X]) });
      return s;
    };
    const a = run([-1, -1, 1]), b = run([-1, 1, -1]);
    expect(a.snapshot().get('w')[0]).toBe(X);
    expectSameBits(a.snapshot().get('w'), b.snapshot().get('w'));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-modes-'));
    try {
      const c = run([-1, -1]);  // 1.5 * 2^30: exact, but outside the range a file may hold
      const err = await c.save(path.join(dir, 'out.safetensors')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OverflowError);
      expect((err as Error).message).toMatch(/parameter 'w' at index 0 is out of the fixed-point range/);
      expect(fs.existsSync(path.join(dir, 'out.safetensors'))).toBe(false);
      c.push({ w: new Float32Array([X]) });
      await c.save(path.join(dir, 'out.safetensors'));
      expect((await ParameterStore.load(path.join(dir, 'out.safetensors'))).snapshot().get('w')[0]).toBe(X);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('averaging: gradients whose round sum would leave the range close the round early; none is refused or blocks', async () => {
    const s = new ParameterStore({ mode: 'averaging', syncEvery: 2, optimizer: { kind: 'sgd', lr: 2 ** -30 }, tensors: { w: { shape: [4] } } });
    const big = new Float32Array(4).fill(0.9 * 2 ** 30);  // two of them pass 2^30
    const results = await Promise.all(Array.from({ length: 64 }, () => s.pushAsync({ w: big })));
    expect(results.every((r) => r.applied)).toBe(true);
    s.sync();
    const st = s.stats();
    expect(st.pushes).toBe(64);
    expect(st.rounds).toBe(64);  // one push per round: a second would not fit
    expect(st.pending).toBe(0);
    s.close();
  });

  test.each(['atomic', 'averaging', 'deterministic'] as const)(
    '%s: a checkpoint saved while pushes run holds exactly the pushes its version counts',
    async (mode) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-modes-'));
      try {
        const N = 400;
        const s = new ParameterStore({ mode, optimizer: { kind: 'sgd', lr: 0.5 }, ...(mode === 'averaging' ? { syncEvery: 3 } : {}), tensors: { w: { shape: [N] } } });
        // Push k touches element k only.
        const pushes = Array.from({ length: N }, (_, k) => {
          const g = new Float32Array(N);
          g[k] = 1;
          return s.pushAsync({ w: g });
        });
        const saves = Array.from({ length: 12 }, (_, i) => s.save(path.join(dir, `c${i}.safetensors`)));
        const saved = await Promise.all(saves);
        await Promise.all(pushes);
        for (let i = 0; i < saves.length; i++) {
          const back = await ParameterStore.load(path.join(dir, `c${i}.safetensors`));
          back.sync();  // averaging: the saved open round is applied, so its pushes show too
          const w = back.snapshot().get('w');
          const touched = w.reduce((n, x) => n + (x !== 0 ? 1 : 0), 0);
          expect(touched).toBe(saved[i].version);
          expect(back.version).toBe(saved[i].version);
          back.close();
        }
        s.close();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
