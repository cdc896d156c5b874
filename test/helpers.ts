import { mulberry32 } from './harness/common';
import { Dataset, MODES, type Mode } from '../lib';

/** Every mode with no lost updates. */
export const SAFE_MODES: Mode[] = MODES.filter((m) => m !== 'hogwild');
export const ALL_MODES: Mode[] = [...MODES];

/** Float32 bits of an array, for bitwise comparisons. */
export function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

export function seq(n: number, f: (i: number) => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = f(i);
  return a;
}

/** Deterministic pseudo-random floats in [-1, 1). */
export function randoms(n: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  return seq(n, () => next() * 2 - 1);
}

export function expectClose(actual: Float32Array, expected: ArrayLike<number>, rel = 1e-6, abs = 1e-7): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const tol = abs + rel * Math.abs(expected[i]);
    if (!(Math.abs(actual[i] - expected[i]) <= tol))
      throw new Error(`element ${i}: got ${actual[i]}, expected ${expected[i]} (tolerance ${tol})`);
  }
}

/** Bitwise equality of two float arrays (fast, with the first differing index on failure). */
export function expectSameBits(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (!a.equals(b)) {
    const x = bits(actual), y = bits(expected);
    let i = 0;
    while (x[i] === y[i]) i++;
    throw new Error(`bits differ first at element ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

/**
 * Linear regression on raw features, one column in the tens of thousands:
 * x² ~ 3e8, so plain SGD diverges for any lr above ~6.7e-9. At lr 0.1 it
 * reaches Infinity within a few rows (NonFiniteGradientError); at 7.5e-9
 * the loss grows epoch by epoch, finite.
 */
export function wide(rows: number): Dataset {
  const next = mulberry32(7);
  const x: number[][] = [], y: number[] = [];
  for (let i = 0; i < rows; i++) {
    const a = next(), b = next() * 30000;
    x.push([a, b]);
    y.push(2 * a + b / 30000 + 0.1 * (next() - 0.5));
  }
  return Dataset.fromDense(x, { labels: y });
}
