// The demo's worker_threads: naive in-place writes to a SharedArrayBuffer
// (the race), or pushes of -1 into a shared store (each mode).
import { parentPort, workerData } from 'node:worker_threads';
import { ParameterStore, type StoreHandle } from '../store';

interface Job {
  readonly job: 'naive' | 'push';
  readonly shared?: SharedArrayBuffer;
  readonly handle?: StoreHandle;
  readonly pushes: number;
  readonly size: number;
}

const w = workerData as Job;
if (w.job === 'naive') {
  // What a plain shared-memory trainer does: read, add, write back, racing.
  const a = new Float32Array(w.shared!);
  for (let p = 0; p < w.pushes; p++) for (let i = 0; i < w.size; i++) a[i] += 1;
} else {
  const store = ParameterStore.attach(w.handle!);
  const g = new Float32Array(w.size).fill(-1);
  for (let p = 0; p < w.pushes; p++) store.push({ w: g });
  store.close();
}
parentPort!.postMessage('done');
