// The shipped declarations (dist/*.d.ts), as a user's code sees them:
// compiled with tsc by `npm run typecheck`. Lines marked @ts-expect-error
// must stay errors (a wrong option name or type is caught at compile time).
import {
  ParameterStore,
  Trainer,
  evaluate,
  loadIdx,
  synthetic,
  AbortError,
  ConfigError,
  type Mode,
  type StoreOptions,
  type TrainProgress,
  type TrainResult,
  type EvaluateResult,
  type SaveResult,
  type Snapshot,
} from '../../dist';

async function usage(): Promise<void> {
  const opts: StoreOptions = {
    tensors: { W: { shape: [784, 10], init: 'glorot' }, b: { shape: [10] } },
    mode: 'atomic',
    optimizer: { kind: 'adam', lr: 1e-3 },
    seed: 42,
  };
  const store = new ParameterStore(opts);
  const snap: Snapshot = store.snapshot();
  const W: Float32Array = snap.get('W');
  const r = store.push({ W: new Float32Array(W.length) }, { basedOn: snap });
  const applied: boolean = r.applied;
  const saved: SaveResult = await store.save('model.safetensors');
  const again: ParameterStore = await ParameterStore.load('model.safetensors', { mode: 'versioned' });
  const mode: Mode = again.mode;

  const train = await loadIdx('images.gz', 'labels.gz');
  const blobs = synthetic('blobs', { rows: 100, classes: 3 });
  const t = new Trainer(store, { model: 'softmax', threads: 2, epochs: 5, batchSize: 32, schedule: { kind: 'step', every: 2, gamma: 0.5 } });
  for await (const p of t.run(train, { signal: new AbortController().signal })) {
    const e: number = p.epoch;
    const sps: number = p.samplesPerSec;
    const st: number = p.staleness.mean;
    void [e, sps, st];
  }
  const res: TrainResult = await t.fit(blobs);
  const auto = new Trainer({ model: 'mlp', hidden: [128], mode: 'atomic', optimizer: { kind: 'adam', lr: 1e-3 } });
  await auto.fit(train);
  const rep: EvaluateResult = evaluate(auto.store!.snapshot(), 'mlp', blobs);
  const acc: number | undefined = rep.accuracy;
  const err: unknown = null;
  if (err instanceof AbortError || err instanceof ConfigError) void err.code;
  const progress: TrainProgress | undefined = undefined;
  void [applied, saved, mode, res, acc, progress];

  // @ts-expect-error: unknown mode
  new ParameterStore({ tensors: {}, mode: 'fast' });
  // @ts-expect-error: unknown model
  new Trainer({ model: 'cnn' });
  // @ts-expect-error: threads is a number
  new Trainer({ model: 'softmax', threads: '2' });
  // @ts-expect-error: push takes Float32Arrays
  store.push({ W: [1, 2, 3] });
  // @ts-expect-error: evaluate needs a data set
  evaluate(snap, 'softmax');
}
void usage;
