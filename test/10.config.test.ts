// 10: configuration is validated once, frozen, and every bad field is named.
import { ParameterStore, ConfigError, DEFAULTS, MODES, GradvaultError } from '../lib';

const tensors = { w: { shape: [4] } };

function configError(options: unknown): ConfigError {
  try {
    new ParameterStore(options as never);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect(e).toBeInstanceOf(GradvaultError);
    expect((e as ConfigError).code).toBe('ERR_CONFIG');
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('10.config', () => {
  test('defaults are documented, frozen and applied', () => {
    expect(Object.isFrozen(DEFAULTS)).toBe(true);
    expect(Object.isFrozen(DEFAULTS.optimizer)).toBe(true);
    expect(MODES).toEqual(['atomic', 'locked', 'versioned', 'deterministic', 'averaging', 'hogwild']);
    const s = new ParameterStore({ tensors });
    expect(s.mode).toBe('atomic');
    expect(s.options.optimizer).toMatchObject({ kind: 'sgd', lr: 0.01, momentum: 0, nesterov: false, weightDecay: 0 });
    expect(s.options.staleness).toEqual({ policy: 'accept', bound: null });
    expect(s.options.verify).toBe(false);
    expect(s.options.nonFinite).toBe('reject');
    expect(Object.isFrozen(s.options)).toBe(true);
    expect(Object.isFrozen(s.options.optimizer)).toBe(true);
    expect(Object.isFrozen(s.options.tensors[0].shape)).toBe(true);
    expect(new ParameterStore({ tensors, optimizer: { kind: 'adam' } }).options.optimizer.lr).toBe(0.001);
    s.close();
  });

  test.each([
    [{ tensors, optimizer: { kind: 'sgd', lr: -1 } }, 'optimizer.lr', 'optimizer.lr must be > 0, got -1'],
    [{ tensors, optimizer: { kind: 'sgd', lr: 0 } }, 'optimizer.lr', 'optimizer.lr must be > 0, got 0'],
    [{ tensors, optimizer: { kind: 'sgd', lr: NaN } }, 'optimizer.lr', 'optimizer.lr must be > 0, got NaN'],
    [{ tensors, optimizer: { kind: 'sgd', lr: '0.1' } }, 'optimizer.lr', 'optimizer.lr must be > 0, got "0.1"'],
    [{ tensors, optimizer: { kind: 'sgd', momentum: 1 } }, 'optimizer.momentum', 'optimizer.momentum must be in [0, 1), got 1'],
    [{ tensors, optimizer: { kind: 'sgd', nesterov: true } }, 'optimizer.nesterov', 'optimizer.nesterov needs optimizer.momentum > 0'],
    [{ tensors, optimizer: { kind: 'sgd', weightDecay: -0.1 } }, 'optimizer.weightDecay', 'optimizer.weightDecay must be >= 0, got -0.1'],
    [{ tensors, optimizer: { kind: 'adam', beta1: 1.5 } }, 'optimizer.beta1', 'optimizer.beta1 must be in [0, 1), got 1.5'],
    [{ tensors, optimizer: { kind: 'adam', beta2: -1 } }, 'optimizer.beta2', 'optimizer.beta2 must be in [0, 1), got -1'],
    [{ tensors, optimizer: { kind: 'rmsprop', alpha: 2 } }, 'optimizer.alpha', 'optimizer.alpha must be in [0, 1), got 2'],
    [{ tensors, optimizer: { kind: 'adagrad', eps: 0 } }, 'optimizer.eps', 'optimizer.eps must be > 0, got 0'],
    [{ tensors, optimizer: { kind: 'lbfgs' } }, 'optimizer.kind', "optimizer.kind must be one of 'sgd', 'adagrad', 'rmsprop', 'adam', got \"lbfgs\""],
    [{ tensors, optimizer: { kind: 'adam', momentum: 0.9 } }, 'optimizer.momentum', "optimizer.momentum is not a known option of optimizer 'adam'"],
    [{ tensors, optimizer: { kind: 'sgd', learningRate: 0.1 } }, 'optimizer.learningRate', 'optimizer.learningRate is not a known option'],
    [{ tensors, optimizer: 5 }, 'optimizer', 'optimizer must be an object, got 5'],
    [{ tensors, mode: 'racy' }, 'mode', "mode must be one of 'atomic', 'locked', 'versioned', 'deterministic', 'averaging', 'hogwild', got \"racy\""],
    [{ tensors, mdoe: 'atomic' }, 'mdoe', "mdoe is not a known option of ParameterStore (did you mean 'mode'?)"],
    [{ tensors, seed: -1 }, 'seed', 'seed must be a non-negative integer, got -1'],
    [{ tensors, seed: 1.5 }, 'seed', 'seed must be a non-negative integer, got 1.5'],
    [{ tensors, verify: 'yes' }, 'verify', 'verify must be a boolean, got "yes"'],
    [{ tensors, nonFinite: 'ignore' }, 'nonFinite', "nonFinite must be one of 'reject', 'skip', got \"ignore\""],
    [{ tensors, staleness: { policy: 'drop' } }, 'staleness.policy', "staleness.policy must be one of 'accept', 'scale', 'reject'"],
    [{ tensors, staleness: {} }, 'staleness.policy', 'staleness.policy is required'],
    [{ tensors, staleness: { policy: 'reject' } }, 'staleness.bound', "staleness.bound is required with policy 'reject'"],
    [{ tensors, staleness: { policy: 'scale', bound: -2 } }, 'staleness.bound', 'staleness.bound must be a non-negative integer, got -2'],
    [{ tensors, staleness: { policy: 'scale', limit: 3 } }, 'staleness.limit', 'staleness.limit is not a known option of staleness'],
    [{ tensors, mode: 'averaging', staleness: { policy: 'accept' } }, 'staleness', "staleness does not apply to mode 'averaging'"],
    [{ tensors, mode: 'averaging', syncEvery: 0 }, 'syncEvery', 'syncEvery must be an integer >= 1, got 0'],
    [{ tensors, mode: 'atomic', syncEvery: 4 }, 'syncEvery', "syncEvery applies to mode 'averaging' only, not 'atomic'"],
    [{ tensors, mode: 'deterministic', optimizer: { kind: 'adam' } }, 'optimizer.kind', "optimizer.kind 'adam' is not supported in mode 'deterministic'"],
    [{ tensors, mode: 'deterministic', optimizer: { kind: 'sgd', momentum: 0.9 } }, 'optimizer.momentum', "optimizer.momentum is not supported in mode 'deterministic'"],
    [{}, 'tensors', 'tensors is required'],
    [{ tensors: {} }, 'tensors', 'tensors must name at least one tensor'],
    [{ tensors: [] }, 'tensors', 'tensors must be an object, got an array of length 0'],
    [{ tensors: { w: { shape: [2, -1] } } }, 'tensors.w.shape', 'tensors.w.shape[1] must be a non-negative integer, got -1'],
    [{ tensors: { w: { shape: [2.5] } } }, 'tensors.w.shape', 'tensors.w.shape[0] must be a non-negative integer, got 2.5'],
    [{ tensors: { w: { shape: 3 } } }, 'tensors.w.shape', 'tensors.w.shape must be an array of non-negative integers, got 3'],
    [{ tensors: { w: { shape: [3], init: 'ones' } } }, 'tensors.w.init', "tensors.w.init must be 'zeros', 'glorot', 'normal', a Float32Array or an array of numbers, got \"ones\""],
    [{ tensors: { w: { shape: [3], init: new Float32Array(2) } } }, 'tensors.w.init', 'tensors.w.init has 2 values, expected 3 (shape [3])'],
    [{ tensors: { w: { shape: [2], init: [1, NaN] } } }, 'tensors.w.init', 'tensors.w.init[1] must be finite, got NaN'],
    [{ tensors: { w: { shape: [2], std: -1 } } }, 'tensors.w.std', 'tensors.w.std must be >= 0, got -1'],
    [{ tensors: { w: { shape: [2], shpe: [2] } } }, 'tensors.w.shpe', "tensors.w.shpe is not a known option of a tensor (did you mean 'shape'?)"],
    [null, 'options', 'options must be an object, got null'],
  ])('%j -> ConfigError at %s', (options, path, message) => {
    const e = configError(options);
    expect(e.path).toBe(path);
    expect(e.message).toContain(message);
  });

  test('a failed construction leaves nothing behind', () => {
    // Store ids count native stores made: failures in between make none.
    const before = new ParameterStore({ tensors: { w: { shape: [1] } } });
    for (let i = 0; i < 50; i++) configError({ tensors: { w: { shape: [1000] } }, optimizer: { lr: -1 } });
    for (let i = 0; i < 50; i++) configError({ tensors: { w: { shape: [1000] }, 'fixed.w': { shape: [1] } } }); // refused in C++
    const after = new ParameterStore({ tensors: { w: { shape: [1] } } });
    expect(after.share().id).toBe(before.share().id + 1);
  });
});
