/**
 * `new Trainer(remoteStore, { syncEvery })`: native threads train a local
 * replica of the cluster's parameters (local SGD), and this process syncs it
 * with the cluster off the training threads, overlapped with their compute:
 *
 *   1. S = a snapshot of the replica; its progress since the last sync is
 *      S - base (base: the cluster's parameters the replica last took).
 *   2. Push (base - S) / lr to the cluster, based on the pull `base` came
 *      from (the cluster's optimizer at its learning rate `lr` moves the
 *      cluster's parameters by exactly that progress under plain SGD; a
 *      stateful cluster optimizer steps once per sync on it, as an outer
 *      optimizer does). In synchronous mode the push is a round: the
 *      cluster takes the mean of every worker's progress.
 *   3. Pull the cluster's parameters R; add R - S to the replica (one push
 *      with learning rate 1, so what the threads did meanwhile is kept);
 *      base = R.
 *
 * The threads step plain SGD at the trainer's `lr` (default: the cluster's)
 * and never wait for the network. Staleness: a thread's batch reads the
 * replica, which lags the cluster by what other workers pushed since the
 * last sync; each sync's push is measured against the pull it was based on
 * (the versions other workers added in between), and progress events report
 * it in `cluster`.
 *
 * Sync k starts once the threads have pushed k * syncEvery batches, and a
 * last one at the end, so every worker that runs the same number of batches
 * makes the same number of syncs (synchronous mode's rounds need that).
 */
import { AbortError, InvalidArgumentError } from '../errors';
import { ParameterStore, nativeStoreOf } from '../store';
import type { ClusterProgress, TrainProgress, TrainResult } from '../trainer';
import type { RemoteParameterStore } from './remote';

/** The threads' run on the replica (the Trainer's own loop), with a signal that stops it. */
type RunOn = (replica: ParameterStore, signal: AbortSignal) => AsyncGenerator<TrainProgress, TrainResult, undefined>;

export async function* trainRemote(
  remote: RemoteParameterStore,
  o: { syncEvery: number; lr: number; signal: AbortSignal | undefined },
  runOn: RunOn,
): AsyncGenerator<TrainProgress, TrainResult, undefined> {
  const outerLr = remote.options.optimizer.lr;
  if (!(outerLr > 0))
    throw new InvalidArgumentError('store', `a remote store's optimizer needs a learning rate > 0 to take a replica's progress, got ${outerLr}`);
  const tensors = remote.tensors;
  let base = await remote.pull();
  const replica = new ParameterStore({
    tensors: Object.fromEntries(tensors.map((t) => [t.name, { shape: [...t.shape], init: base.get(t.name).slice() }])),
    mode: 'atomic',
    optimizer: { kind: 'sgd', lr: o.lr > 0 ? o.lr : outerLr },
  });
  const indices = tensors.map((_, i) => i);
  const stop = new AbortController();
  const onAbort = () => stop.abort(o.signal!.reason);
  o.signal?.addEventListener('abort', onAbort, { once: true });

  let syncs = 0, corrections = 0, stalenessSum = 0, stalenessMax = 0, failure: unknown = null, finished = false;
  // the threads' batches so far (the replica's version counts them and this process's corrections)
  const batches = () => replica.version - corrections;

  async function syncOnce(): Promise<void> {
    const s = replica.snapshot();
    try {
      const grads: Record<string, Float32Array> = {};
      for (const t of tensors) {
        const b = base.get(t.name), x = s.get(t.name), g = new Float32Array(t.size);
        for (let i = 0; i < g.length; i++) g[i] = (b[i] - x[i]) / outerLr;
        grads[t.name] = g;
      }
      const r = await remote.pushAsync(grads, { basedOn: base });
      stalenessSum += r.staleness;
      stalenessMax = Math.max(stalenessMax, r.staleness);
      const fresh = await remote.pull();
      const arrays = tensors.map((t) => {
        const x = s.get(t.name), f = fresh.get(t.name), c = new Float32Array(t.size);
        for (let i = 0; i < c.length; i++) c[i] = x[i] - f[i];
        return c;
      });
      corrections++;
      await nativeStoreOf(replica).pushAsync(indices, arrays, -1, 1);
      base.release();
      base = fresh;
      syncs++;
    } finally {
      s.release();
    }
  }

  // When a sync is due. Synchronous mode: sync k once the threads pushed
  // k * syncEvery batches, so every worker running the same batches makes
  // the same number of syncs (rounds). Other modes: once syncEvery batches
  // passed since the last sync began (one sync carries what a slow one let
  // pile up), and a last one for the rest.
  const rounds = remote.options.mode === 'averaging';
  let syncedAt = 0;
  const due = (end: boolean) =>
    rounds
      ? syncs < (end ? Math.ceil : Math.floor)(batches() / o.syncEvery)
      : end
        ? batches() > syncedAt
        : batches() - syncedAt >= o.syncEvery;
  const syncing = (async () => {
    try {
      for (;;) {
        if (failure) return;
        const end = finished;
        if (due(end)) {
          syncedAt = batches();
          await syncOnce();
        } else if (end) return;
        else await new Promise((r) => setTimeout(r, 1));
      }
    } catch (e) {
      failure = e;
      stop.abort(e);
    }
  })();

  const clusterNow = (): ClusterProgress =>
    Object.freeze({ syncs, version: remote.version, staleness: Object.freeze({ mean: syncs ? stalenessSum / syncs : 0, max: stalenessMax }) });
  const progress = (p: TrainProgress): TrainProgress => Object.freeze({ ...p, cluster: clusterNow() });

  const inner = runOn(replica, stop.signal);
  try {
    let result: TrainResult;
    try {
      for (;;) {
        const r = await inner.next();
        if (r.done) {
          result = r.value;
          break;
        }
        yield progress(r.value);
      }
    } catch (e) {
      if (failure && e instanceof AbortError) throw failure;
      throw e;
    }
    finished = true;
    await syncing;
    if (failure) throw failure;
    return Object.freeze({ ...result, cluster: clusterNow() });
  } finally {
    finished = true;
    if (!failure) failure = new AbortError('training stopped');
    await inner.return(undefined as never).catch(() => undefined);
    await syncing;
    o.signal?.removeEventListener('abort', onAbort);
    base.release();
    replica.close();
  }
}
