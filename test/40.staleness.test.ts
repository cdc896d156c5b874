// 40: versions, staleness (accept, scale, reject, bound, histogram) and the
// in-place modification check.
import { ParameterStore, InPlaceModificationError, InvalidArgumentError, type Mode } from '../lib';

const one = (x: number) => new Float32Array([x]);
const make = (opts: object = {}, mode: Mode = 'atomic') =>
  new ParameterStore({ mode, optimizer: { kind: 'sgd', lr: 1 }, tensors: { w: { shape: [1] } }, ...opts });

describe('40.staleness', () => {
  test('staleness is version - basedOn, from a Snapshot or a number', () => {
    const s = make();
    const snap = s.snapshot();
    expect(s.push({ w: one(1) }, { basedOn: snap })).toEqual({ applied: true, version: 1, staleness: 0 });
    expect(s.push({ w: one(1) }, { basedOn: snap })).toEqual({ applied: true, version: 2, staleness: 1 });
    expect(s.push({ w: one(1) }, { basedOn: 0 })).toEqual({ applied: true, version: 3, staleness: 2 });
    expect(s.push({ w: one(1) })).toEqual({ applied: true, version: 4, staleness: 0 });
    const st = s.stats().staleness;
    expect(st.count).toBe(3);
    expect(st.max).toBe(2);
    expect(st.mean).toBe(1);
    expect(st.histogram.slice(0, 3)).toEqual([
      { min: 0, max: 0, count: 1 },
      { min: 1, max: 1, count: 1 },
      { min: 2, max: 3, count: 1 },
    ]);
    expect(st.histogram[st.histogram.length - 1]).toEqual({ min: 65536, max: Infinity, count: 0 });
  });

  test('basedOn must be a version the store has reached, from this store', () => {
    const s = make();
    const other = make();
    expect(() => s.push({ w: one(1) }, { basedOn: 5 })).toThrow('basedOn 5 is ahead of the store\'s version 0');
    expect(() => s.push({ w: one(1) }, { basedOn: -1 })).toThrow(InvalidArgumentError);
    expect(() => s.push({ w: one(1) }, { basedOn: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => s.push({ w: one(1) }, { basedOn: other.snapshot() })).toThrow('basedOn is a snapshot of another store');
    expect(s.version).toBe(0);
  });

  test("policy 'scale' divides the step by 1 + staleness", () => {
    const s = make({ staleness: { policy: 'scale' } });
    s.push({ w: one(1) }); // -1
    s.push({ w: one(1) }); // -2
    s.push({ w: one(1) }, { basedOn: 0 }); // staleness 2: -1/3
    s.push({ w: one(4) }, { basedOn: 3 }); // staleness 0: -4
    expect(s.snapshot().get('w')[0]).toBeCloseTo(-2 - 1 / 3 - 4, 6);
  });

  test("policy 'reject' refuses pushes staler than the bound, and counts them", () => {
    const s = make({ staleness: { policy: 'reject', bound: 1 } });
    s.push({ w: one(1) });
    s.push({ w: one(1) });
    expect(s.push({ w: one(1) }, { basedOn: 1 })).toEqual({ applied: true, version: 3, staleness: 1 });
    expect(s.push({ w: one(100) }, { basedOn: 1 })).toEqual({ applied: false, version: 3, staleness: 2, reason: 'stale' });
    expect(s.stats()).toMatchObject({ pushes: 3, rejected: 1, rejectedStale: 1, version: 3 });
    expect(s.snapshot().get('w')[0]).toBe(-3);
  });

  test('a bound applies under any policy', async () => {
    const s = make({ staleness: { policy: 'accept', bound: 0 } });
    s.push({ w: one(1) });
    expect(await s.pushAsync({ w: one(1) }, { basedOn: 0 })).toMatchObject({ applied: false, reason: 'stale' });
  });
});

describe('40.verify', () => {
  test('a push based on a snapshot modified in place throws InPlaceModificationError naming the tensor', async () => {
    const s = new ParameterStore({ verify: true, tensors: { W: { shape: [3, 3] }, b: { shape: [3] } } });
    const snap = s.snapshot();
    expect(s.push({ b: new Float32Array(3) }, { basedOn: snap }).applied).toBe(true);
    snap.get('W')[4] += 1e-7; // any change, however small
    let err: unknown;
    try {
      s.push({ b: new Float32Array(3) }, { basedOn: snap });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InPlaceModificationError);
    expect(err).toMatchObject({ code: 'ERR_IN_PLACE_MODIFICATION', tensor: 'W' });
    expect((err as Error).message).toContain("tensor 'W' of the snapshot at version 0 was modified in place");
    await expect(s.pushAsync({ b: new Float32Array(3) }, { basedOn: snap })).rejects.toBeInstanceOf(InPlaceModificationError);
    expect(s.version).toBe(1);
    // The version number alone asks for no check.
    expect(s.push({ b: new Float32Array(3) }, { basedOn: snap.version }).applied).toBe(true);
  });

  test('without verify nothing is checked', () => {
    const s = new ParameterStore({ tensors: { w: { shape: [2] } } });
    const snap = s.snapshot();
    snap.get('w')[0] = 5;
    expect(s.push({ w: new Float32Array(2) }, { basedOn: snap }).applied).toBe(true);
  });

  test('the check covers every tensor and every element position', () => {
    const s = new ParameterStore({ verify: true, tensors: { a: { shape: [33] }, b: { shape: [100] } } });
    for (const [name, size] of [['a', 33], ['b', 100]] as const)
      for (let i = 0; i < size; i += 7) {
        const snap = s.snapshot();
        snap.get(name)[i] = -0; // even a sign bit
        expect(() => s.push({ a: new Float32Array(33) }, { basedOn: snap })).toThrow(InPlaceModificationError);
      }
  });
});
