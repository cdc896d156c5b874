// 60: worker_threads attached to one vault: no lost update in any mode but
// hogwild, deterministic bytes independent of threads and order, and the
// vault's lifetime across holders.
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { ParameterStore, ClosedError, InvalidArgumentError, type Mode, type StoreHandle } from '../lib';
import { SAFE_MODES, expectSameBits } from './helpers';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const gradients = require('./fixtures/gradients') as { exact(w: number, n: number): Float32Array; random(w: number, s: number, n: number): Float32Array };

const WORKERS = 4;
const PUSHES = 10_000;
const SIZE = 1000;

function runWorkers(handle: StoreHandle, opts: { pushes: number; kind: 'exact' | 'random'; async?: boolean; snapshotEvery?: number }) {
  return Promise.all(
    Array.from(
      { length: WORKERS },
      (_, worker) =>
        new Promise<{ snapshots: number }>((resolve, reject) => {
          const w = new Worker(path.join(__dirname, 'fixtures', 'pusher.js'), { workerData: { handle, worker, ...opts } });
          w.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve(m)));
          w.once('error', reject);
        }),
    ),
  );
}

function expectedExact(pushes: number): Float32Array {
  const e = new Float32Array(SIZE);
  let workerSum = 0;
  for (let w = 0; w < WORKERS; w++) workerSum += w + 1;
  for (let i = 0; i < SIZE; i++) e[i] = pushes * workerSum * ((i % 3) + 1);
  return e;
}

describe.each(SAFE_MODES)('60.worker-threads [%s]', (mode: Mode) => {
  test(`${WORKERS} threads x ${PUSHES} pushes lose no update`, async () => {
    const store = new ParameterStore({
      mode,
      // averaging applies each round's mean: lr = syncEvery turns it into the sum
      optimizer: { kind: 'sgd', lr: mode === 'averaging' ? 4 : 1 },
      tensors: { w: { shape: [SIZE] } },
      ...(mode === 'averaging' ? { syncEvery: 4 } : {}),
    });
    const pushes = mode === 'versioned' ? PUSHES / 2 : PUSHES;
    const results = await runWorkers(store.share(), { pushes, kind: 'exact', snapshotEvery: 97 });
    expect(results.reduce((a, r) => a + r.snapshots, 0)).toBeGreaterThan(0);
    store.sync();
    expectSameBits(store.snapshot().get('w'), expectedExact(pushes));
    const stats = store.stats();
    expect(stats.version).toBe(WORKERS * pushes);
    expect(stats.pushes).toBe(WORKERS * pushes);
    if (mode === 'averaging') expect(stats.rounds).toBe((WORKERS * pushes) / 4);
    store.close();
  });
});

describe('60.worker-threads [pushAsync]', () => {
  test('pushAsync from several threads loses no update', async () => {
    const store = new ParameterStore({ mode: 'atomic', optimizer: { kind: 'sgd', lr: 1 }, tensors: { w: { shape: [SIZE] } } });
    await runWorkers(store.share(), { pushes: 2000, kind: 'exact', async: true });
    expectSameBits(store.snapshot().get('w'), expectedExact(2000));
  });
});

describe('60.worker-threads [deterministic]', () => {
  test('identical bytes on 1 thread and on 4, whatever the interleaving', async () => {
    const options = { mode: 'deterministic' as const, optimizer: { kind: 'sgd' as const, lr: 0.01 }, tensors: { w: { shape: [SIZE] } } };
    const pushes = 2500;
    const serial = new ParameterStore(options);
    // one thread, a different order: worker by worker, steps backwards
    for (let w = WORKERS - 1; w >= 0; w--) for (let s = pushes - 1; s >= 0; s--) serial.push({ w: gradients.random(w, s, SIZE) });
    const reference = serial.snapshot().get('w');
    for (let run = 0; run < 2; run++) {
      const parallel = new ParameterStore(options);
      await runWorkers(parallel.share(), { pushes, kind: 'random' });
      expectSameBits(parallel.snapshot().get('w'), reference);
      parallel.close();
    }
  });
});

describe('60.worker-threads [lifetime]', () => {
  test('the vault lives while any holder keeps it; attach to a closed one fails', async () => {
    const store = new ParameterStore({ optimizer: { kind: 'sgd', lr: 1 }, tensors: { w: { shape: [SIZE] } } });
    const handle = store.share();
    const other = ParameterStore.attach(handle);
    store.close();
    other.push({ w: new Float32Array(SIZE).fill(-2) });
    await runWorkers(other.share(), { pushes: 10, kind: 'exact' });
    const e = expectedExact(10);
    expectSameBits(other.snapshot().get('w'), e.map((x) => x + 2));
    other.close();
    expect(() => ParameterStore.attach(handle)).toThrow(ClosedError);
    expect(() => ParameterStore.attach({ kind: 'nope' } as never)).toThrow(InvalidArgumentError);
  });
});
