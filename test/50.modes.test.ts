// 50: what each mode promises beyond a single push.
import { ParameterStore } from '../lib';
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
