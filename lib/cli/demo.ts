// gradvault demo: the race made visible (naive shared writes lose updates;
// every mode loses none), then a short training run.
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { MODES } from '../config';
import { isa } from '../native';
import { ParameterStore } from '../store';
import { train } from './train';
import { VERSION } from './version';
import { fmt, out, table } from './output';

export function runWorkers(count: number, data: object): Promise<void> {
  const file = path.join(__dirname, 'demo-worker.js');
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(file, { workerData: data });
          w.once('message', () => resolve());
          w.once('error', reject);
        }),
    ),
  ).then(() => undefined);
}


export async function demo(o: { threads: number; pushes: number; size: number; train: boolean }): Promise<void> {
  const T = o.threads, P = o.pushes, N = o.size;
  const cpu = isa();
  out(`gradvault ${VERSION} demo — kernels ${cpu.active}, ${os.availableParallelism()} CPUs\n`);
  out(`The race: ${T} threads each add 1 to all ${N} numbers of one shared tensor, ${P} times.`);
  out(`Every number should end at ${T * P}.\n`);

  const shared = new SharedArrayBuffer(N * 4);
  let t0 = process.hrtime.bigint();
  await runWorkers(T, { job: 'naive', shared, pushes: P, size: N });
  let secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const a = new Float32Array(shared);
  let lost = 0;
  for (const v of a) lost += T * P - v;
  out(`Naive shared writes (a[i] += 1 from ${T} worker_threads on a SharedArrayBuffer):`);
  out(`  ${fmt(lost)} of ${fmt(T * P * N)} updates lost (${fmt((100 * lost) / (T * P * N), 2)}%), ${fmt((T * P) / secs)} tensor updates/s\n`);

  out('The same through the vault, each mode (pushes of a gradient of -1, lr 1):');
  const rows: (string | number)[][] = [];
  for (const mode of MODES) {
    const store = new ParameterStore({
      tensors: { w: { shape: [N] } },
      mode,
      // averaging applies the mean of each round: lr = syncEvery makes it the sum
      optimizer: { kind: 'sgd', lr: mode === 'averaging' ? T : 1 },
      ...(mode === 'averaging' ? { syncEvery: T } : {}),
    });
    t0 = process.hrtime.bigint();
    await runWorkers(T, { job: 'push', handle: store.share(), pushes: P, size: N });
    secs = Number(process.hrtime.bigint() - t0) / 1e9;
    store.sync();
    const w = store.snapshot().get('w');
    let l = 0;
    for (const v of w) l += T * P - v;
    const s = store.stats();
    rows.push([mode, fmt(l), fmt(s.conflicts), fmt((T * P) / secs)]);
    store.close();
  }
  table(['mode', 'lost updates', 'overlapping writes', 'pushes/s'], rows);
  out('\n(hogwild is the racy reference: its overlapping writes are counted, and each may have lost an update.)');
  if (!o.train) return;
  out('');
  await train({ epochs: 2, batch: 32, mode: 'atomic', threads: Math.min(2, os.availableParallelism()), optimizer: 'sgd', seed: 1, json: false, plain: true, rows: 30000 });
}
