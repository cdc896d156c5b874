// 30: every optimizer against a float32 reference written here, step by
// step, in every mode that runs it. The core computes in float32 with no
// fused multiply-add, so Math.fround after each operation reproduces it.
import { ParameterStore, ConfigError, type Mode, type OptimizerOptions } from '../lib';
import { expectClose, expectSameBits, randoms } from './helpers';

const F = Math.fround;

interface Opt {
  kind: 'sgd' | 'adagrad' | 'rmsprop' | 'adam';
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  decoupled?: boolean;
  beta1?: number;
  beta2?: number;
  alpha?: number;
  eps?: number;
}

/** One step of the reference optimizer, in place on p, s1, s2 (t is 1-based). */
function referenceStep(o: Opt, p: Float32Array, s1: Float32Array, s2: Float32Array, g: Float32Array, t: number): void {
  const lr = F(o.lr), wd = F(o.weightDecay ?? 0), mom = F(o.momentum ?? 0);
  const b1 = F(o.beta1 ?? 0.9), b2 = F(o.beta2 ?? 0.999), alpha = F(o.alpha ?? 0.99), eps = F(o.eps ?? 1e-8);
  const bc1 = F(1 - Math.pow(b1, t)), bc2 = F(1 - Math.pow(b2, t));
  for (let i = 0; i < p.length; i++) {
    const gg = o.decoupled ? g[i] : F(g[i] + F(wd * p[i]));
    let move: number;
    switch (o.kind) {
      case 'sgd':
        if (mom === 0) move = F(-lr * gg);
        else {
          const v = F(F(mom * s1[i]) + gg);
          s1[i] = v;
          move = o.nesterov ? F(-lr * F(gg + F(mom * v))) : F(-lr * v);
        }
        break;
      case 'adagrad': {
        const s = F(s1[i] + F(gg * gg));
        s1[i] = s;
        move = F(F(-lr * gg) / F(F(Math.sqrt(s)) + eps));
        break;
      }
      case 'rmsprop': {
        const s = F(F(alpha * s1[i]) + F(F(1 - alpha) * F(gg * gg)));
        s1[i] = s;
        move = F(F(-lr * gg) / F(F(Math.sqrt(s)) + eps));
        break;
      }
      case 'adam': {
        const m = F(F(b1 * s1[i]) + F(F(1 - b1) * gg));
        const v = F(F(b2 * s2[i]) + F(F(1 - b2) * F(gg * gg)));
        s1[i] = m;
        s2[i] = v;
        move = F(F(-lr * F(m / bc1)) / F(F(Math.sqrt(F(v / bc2))) + eps));
        break;
      }
    }
    p[i] = o.decoupled ? F(F(p[i] - F(F(lr * wd) * p[i])) + move) : F(p[i] + move);
  }
}

const OPTIMIZERS: [string, Opt][] = [
  ['sgd', { kind: 'sgd', lr: 0.1 }],
  ['sgd + weight decay', { kind: 'sgd', lr: 0.1, weightDecay: 0.01 }],
  ['sgd + decoupled decay', { kind: 'sgd', lr: 0.1, weightDecay: 0.05, decoupled: true }],
  ['sgd + momentum', { kind: 'sgd', lr: 0.05, momentum: 0.9 }],
  ['sgd + nesterov + decay', { kind: 'sgd', lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 0.001 }],
  ['adagrad', { kind: 'adagrad', lr: 0.1, eps: 1e-6 }],
  ['rmsprop', { kind: 'rmsprop', lr: 0.01, alpha: 0.9 }],
  ['adam', { kind: 'adam', lr: 0.001 }],
  ['adam + decay (L2)', { kind: 'adam', lr: 0.002, weightDecay: 0.01 }],
  ['adamw', { kind: 'adam', lr: 0.002, weightDecay: 0.1, decoupled: true, beta1: 0.8, beta2: 0.99 }],
];

const N = 37; // not a multiple of any vector width
const STEPS = 12;

describe.each(['atomic', 'locked', 'versioned', 'hogwild', 'averaging'] as Mode[])('30.optimizers [%s]', (mode) => {
  test.each(OPTIMIZERS)('%s matches the float32 reference', (_name, opt) => {
    const init = randoms(N, 1);
    const store = new ParameterStore({
      mode,
      optimizer: opt as OptimizerOptions,
      tensors: { w: { shape: [N], init } },
    });
    const p = Float32Array.from(init), s1 = new Float32Array(N), s2 = new Float32Array(N);
    for (let t = 1; t <= STEPS; t++) {
      // averaging turns the gradient into Q32.32 and back: use values it holds exactly.
      const g = randoms(N, 100 + t).map((x) => Math.round(x * 2 ** 20) / 2 ** 20);
      store.push({ w: g });
      referenceStep(opt, p, s1, s2, g, t);
    }
    expectSameBits(store.snapshot().get('w'), p);
    store.close();
  });
});

describe('30.optimizers [deterministic]', () => {
  test('plain sgd in Q32.32 fixed point', () => {
    const init = randoms(N, 3);
    const store = new ParameterStore({ mode: 'deterministic', optimizer: { kind: 'sgd', lr: 0.1 }, tensors: { w: { shape: [N], init } } });
    const q = Array.from(init, (x) => Math.round(x * 2 ** 32));
    for (let t = 1; t <= STEPS; t++) {
      const g = randoms(N, 200 + t);
      store.push({ w: g });
      for (let i = 0; i < N; i++) q[i] += Math.round(-F(0.1) * g[i] * 2 ** 32);
    }
    expectClose(store.snapshot().get('w'), q.map((x) => x / 2 ** 32), 1e-6, 1e-9);
  });

  test('weight decay uses the parameters at the last sync()', () => {
    const store = new ParameterStore({
      mode: 'deterministic',
      optimizer: { kind: 'sgd', lr: 0.5, weightDecay: 0.1 },
      tensors: { w: { shape: [1], init: [2] } },
    });
    store.push({ w: new Float32Array([0]) }); // 2 - 0.5 * 0.1 * 2 = 1.9
    store.push({ w: new Float32Array([0]) }); // anchor still 2: 1.8
    expect(store.snapshot().get('w')[0]).toBeCloseTo(1.8, 6);
    store.sync(); // anchor 1.8
    store.push({ w: new Float32Array([0]) }); // 1.8 - 0.09
    expect(store.snapshot().get('w')[0]).toBeCloseTo(1.71, 6);
    expect(store.stats().rounds).toBe(1);
  });

  test('stateful optimizers are refused', () => {
    expect(() => new ParameterStore({ mode: 'deterministic', optimizer: { kind: 'rmsprop' }, tensors: { w: { shape: [1] } } })).toThrow(ConfigError);
  });
});

describe('30.optimizers [averaging rounds]', () => {
  test('a round applies the mean of its pushes through the optimizer once', () => {
    const opt: Opt = { kind: 'adam', lr: 0.01 };
    const store = new ParameterStore({ mode: 'averaging', syncEvery: 3, optimizer: opt, tensors: { w: { shape: [4], init: [1, 2, 3, 4] } } });
    const p = new Float32Array([1, 2, 3, 4]), s1 = new Float32Array(4), s2 = new Float32Array(4);
    const grads = [
      [1, 2, 3, 4],
      [3, 2, 1, 0],
      [2, 2, 2, 2],
    ].map((x) => new Float32Array(x));
    store.push({ w: grads[0] });
    store.push({ w: grads[1] });
    expect([...store.snapshot().get('w')]).toEqual([1, 2, 3, 4]); // the round is open
    expect(store.stats()).toMatchObject({ pending: 2, rounds: 0, version: 2 });
    store.push({ w: grads[2] });
    referenceStep(opt, p, s1, s2, new Float32Array([2, 2, 2, 2]), 1);
    expectSameBits(store.snapshot().get('w'), p);
    expect(store.stats()).toMatchObject({ pending: 0, rounds: 1, version: 3 });
    store.push({ w: grads[0] });
    store.sync(); // closes a partial round: the mean of one push
    referenceStep(opt, p, s1, s2, grads[0], 2);
    expectSameBits(store.snapshot().get('w'), p);
    expect(store.stats().rounds).toBe(2);
  });
});
