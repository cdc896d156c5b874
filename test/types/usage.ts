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
  RemoteParameterStore,
  RoundTimeoutError,
  modelTensors,
  type ClusterProgress,
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

  // across processes: the same options plus where the shards are; pull and pushAsync only
  const remote: RemoteParameterStore = await ParameterStore.connect({ tensors: modelTensors({ model: 'mlp', hidden: [64] }, blobs), mode: 'averaging', optimizer: { kind: 'sgd', lr: 0.1 }, rank: 0, worldSize: 2, roundTimeout: 5000 });
  const pulled: Snapshot = await remote.pull();
  await remote.pushAsync({ W1: new Float32Array(pulled.get('W1').length) }, { basedOn: pulled });
  const rt = new Trainer(remote, { model: 'mlp', hidden: [64], threads: 2, syncEvery: 16 });
  const same: RemoteParameterStore | undefined = rt.store;
  const cluster: ClusterProgress | undefined = (await rt.fit(blobs)).cluster;
  if (err instanceof RoundTimeoutError) void [err.round, err.missing[0], err.shard, err.address];
  void [same, cluster];
  // @ts-expect-error: no synchronous push across a network
  remote.push({ W1: new Float32Array(1) });
  // @ts-expect-error: syncEvery is a remote trainer's option (a local store was given)
  new Trainer(store, { model: 'softmax', syncEvery: 8 });

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
