/**
 * (About 570 lines: the store's options, its calls with their retry of a
 * restarted shard, the push queue and the cluster save, which share the
 * shards and their versions; connection.ts holds the socket to one shard.)
 *
 * A store whose vault is a cluster of shards (ParameterStore.connect): the
 * same options, tensors, snapshots and pushes as a local store, across the
 * network. Tensors are cut into slices spread over the shards (shards.ts);
 * a pull reads every shard, a push sends each shard its slices only.
 *
 * Versions: each shard counts the pushes applied to it. The store's
 * `version` is the sum over the shards, a snapshot remembers each shard's
 * version, and a push based on it is measured per shard: its staleness is
 * the largest over the shards it touches (the pushes applied there since the
 * pull). A plain version number as `basedOn` needs a single shard.
 *
 * Synchronous mode (`averaging`): every round takes one push from each of
 * `worldSize` worker processes (each its `rank`), summed in fixed point at
 * every shard and applied once, so the result is bitwise the one a single
 * averaging store with syncEvery = worldSize reaches from the same pushes.
 * A push resolves when its round closes; a round missing a rank for
 * `roundTimeout` ms fails with RoundTimeoutError naming it.
 *
 * Faults: every shard is pinged while it is quiet; one that answers nothing
 * for `timeout` ms fails every pending and later call that needs it with
 * ShardUnavailableError (its index and address), and its socket is made
 * anew, so a request never reaches a shard after its caller was told it
 * failed.
 */
import { isMainThread } from 'node:worker_threads';
import { OPTIMIZER_KEYS, describe, isPlainObject, resolveStoreOptions, type ResolvedStoreOptions, type ResolvedTensor, type StoreOptions } from '../config';
import {
  AuthenticationError,
  ClosedError,
  ConfigError,
  GradvaultError,
  InvalidArgumentError,
  NonFiniteGradientError,
  ShardUnavailableError,
  fromNative,
  guardInput,
} from '../errors';
import { native } from '../native';
import { checkPath } from '../paths';
import type { SaveResult } from '../checkpoint';
import { Snapshot } from '../snapshot';
import { ParameterStore, readPush, type Gradients, type PushLayout, type PushOptions, type PushResult, type StoreStats } from '../store';
import { resolveKey, type ClusterKey } from './key';
import { MAX_BATCH, Op, Status, bytesOf, json, type Header } from './protocol';
import { Shard, isEmptyShard, remoteError, type QueuedPush } from './connection';
import { DEFAULT_SLICE_FLOATS, layout, type Layout } from './shards';
import { DEFAULT_ROUND_TIMEOUT } from './server';

/** Options of ParameterStore.connect: a store's options, and where its shards are. */
export interface ConnectOptions extends StoreOptions {
  /** The shards' addresses (tcp://host:port), in order. @default GRADVAULT_SERVERS (comma-separated) */
  readonly servers?: readonly string[];
  /** The cluster key. @default GRADVAULT_KEY, or the file GRADVAULT_KEY_FILE names */
  readonly key?: string;
  /** A shard silent this long (ms) is unavailable. @default 2000 */
  readonly timeout?: number;
  /** Values per slice, at most. @default 2^20 (4 MiB) */
  readonly sliceFloats?: number;
  /** This worker's rank, 0 to worldSize - 1 (synchronous mode: one push per rank per round). @default GRADVAULT_RANK, else 0 */
  readonly rank?: number;
  /** Worker processes in the cluster (synchronous mode: pushes per round). @default GRADVAULT_WORLD_SIZE, else 1 */
  readonly worldSize?: number;
  /** Synchronous mode: a round still missing a rank this long (ms) after its first push fails with RoundTimeoutError. @default 30000 */
  readonly roundTimeout?: number;
}

/** One shard's counters, as `stats().shards` reports them. */
export interface ShardStats {
  readonly shard: number;
  readonly address: string;
  readonly version: number;
  /** Values it holds. */
  readonly floats: number;
  readonly pushes: number;
  readonly rejected: number;
  readonly requests: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Pushes being applied when it answered. */
  readonly queueDepth: number;
  /** Messages it refused: malformed, or without the key. */
  readonly refused: { readonly protocol: number; readonly auth: number };
}

/** Counters of a cluster: StoreStats summed over the shards (a push to k shards counts k times), and each shard's. */
export interface ClusterStats extends StoreStats {
  readonly shards: readonly ShardStats[];
}

const CONNECT_KEYS = ['servers', 'key', 'timeout', 'sliceFloats', 'rank', 'worldSize', 'roundTimeout'];
let nextId = 2 ** 40; // remote store ids: apart from the addon's

/**
 * A store whose vault is a cluster of shards; made by
 * {@link ParameterStore.connect}. Reads are `pull()` (asynchronous) and
 * pushes `pushAsync()`: there is no synchronous push across a network.
 */
export class RemoteParameterStore {
  /** The validated, frozen configuration. */
  readonly options: ResolvedStoreOptions;
  /** How the tensors are cut and spread over the shards. */
  readonly layout: Layout;
  readonly timeout: number;
  /** This worker's rank and the number of worker processes (they matter in synchronous mode). */
  readonly rank: number;
  readonly worldSize: number;
  readonly #shards: Shard[];
  readonly #id = nextId++;
  readonly #push: PushLayout;
  readonly #bases = new WeakMap<Snapshot, number[]>();
  #requests = 0;
  #skipped = 0;
  // each shard's spec: sent again (without values) to a shard that restarted to resume from a checkpoint
  #specs: Record<string, unknown>[] = [];
  #closed = false;
  readonly #timer: NodeJS.Timeout;

  private constructor(options: ResolvedStoreOptions, servers: string[], key: ClusterKey, timeout: number, sliceFloats: number, rank: number, worldSize: number) {
    this.options = options;
    this.timeout = timeout;
    this.rank = rank;
    this.worldSize = worldSize;
    this.layout = layout(options.tensors, servers.length, sliceFloats);
    let offset = 0;
    const tensors = options.tensors.map((t) => {
      const r = { ...t, offset };
      offset += Math.ceil(t.size / 16) * 16;
      return r;
    });
    this.#push = { tensors, index: new Map(tensors.map((t, i) => [t.name, i])) };
    this.#shards = servers.map((a, i) => new Shard(i, a, key, this));
    this.#timer = setInterval(() => this.#watch(), Math.max(20, Math.min(250, timeout / 8)));
    this.#timer.unref();
  }

  /** @internal */
  nextRequest(): number {
    this.#requests = (this.#requests + 1) >>> 0;
    return this.#requests;
  }

  // Pings quiet shards; fails those silent past the timeout while someone waits on them.
  #watch(): void {
    const now = Date.now();
    for (const s of this.#shards) {
      const quiet = now - s.lastHeard;
      if (s.pending.size === 0) continue;
      if (quiet > this.timeout) {
        s.fail(this.#unavailable(s, `shard ${s.index} (${s.address}) answered nothing for ${quiet} ms`));
      } else if (quiet > this.timeout / 4 && now - s.lastPing > this.timeout / 4) {
        s.lastPing = now;
        void s.request(Op.PING, 0, []).catch(() => undefined);
      }
    }
  }

  // A shard that took the connection but never completed a handshake
  // refused the key (CURVE drops a client that does not know the shard's
  // key; the ZAP handler refuses a client key that is not the cluster's).
  #unavailable(s: Shard, why: string): GradvaultError {
    if (s.authFailed || (s.handshakes === 0 && s.connects > 0))
      return new AuthenticationError(s.index, s.address, `shard ${s.index} (${s.address}) refused this process's handshake: the key is not the cluster's key`);
    return new ShardUnavailableError(s.index, s.address, `${why}: it is unavailable (killed, unreachable or its link down)`);
  }

  /** Connects to the shards; the first worker's spec creates the tensors there. */
  static async connect(options: ConnectOptions): Promise<RemoteParameterStore> {
    if (!isMainThread)
      throw new InvalidArgumentError(
        'connect',
        'connect from the main thread: a ZeroMQ socket owned by a worker_thread aborts the process when the worker is terminated (zeromq.js #411); ' +
          'share the remote store with workers through messages instead',
      );
    if (!isPlainObject(options)) throw new ConfigError('options', `connect options must be an object, got ${describe(options)}`);
    const o = guardInput(() => ({ ...options }), (m) => new ConfigError('options', `reading the options threw: ${m}`)) as Record<string, unknown>;
    const servers = o.servers ?? (process.env.GRADVAULT_SERVERS ? process.env.GRADVAULT_SERVERS.split(',').map((x) => x.trim()) : undefined);
    if (!Array.isArray(servers) || servers.length === 0 || servers.some((a) => typeof a !== 'string' || !/^(tcp|ipc|inproc):\/\/\S+$/.test(a)))
      throw new ConfigError('servers', `servers must be a non-empty array of endpoints such as tcp://127.0.0.1:5555 (or set GRADVAULT_SERVERS), got ${describe(servers)}`);
    const key = resolveKey(o.key);
    const timeout = o.timeout ?? 2000;
    if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout < 50)
      throw new ConfigError('timeout', `timeout must be an integer number of milliseconds >= 50, got ${describe(timeout)}`);
    const sliceFloats = o.sliceFloats ?? DEFAULT_SLICE_FLOATS;
    if (typeof sliceFloats !== 'number' || !Number.isSafeInteger(sliceFloats) || sliceFloats < 1)
      throw new ConfigError('sliceFloats', `sliceFloats must be a positive integer, got ${describe(sliceFloats)}`);
    const fromEnv = (name: string) => (process.env[name] !== undefined && process.env[name] !== '' ? Number(process.env[name]) : undefined);
    const worldSize = o.worldSize ?? fromEnv('GRADVAULT_WORLD_SIZE') ?? 1;
    if (typeof worldSize !== 'number' || !Number.isSafeInteger(worldSize) || worldSize < 1 || worldSize > 65_536)
      throw new ConfigError('worldSize', `worldSize must be an integer from 1 to 65536 (or set GRADVAULT_WORLD_SIZE), got ${describe(worldSize)}`);
    const rank = o.rank ?? fromEnv('GRADVAULT_RANK') ?? 0;
    if (typeof rank !== 'number' || !Number.isSafeInteger(rank) || rank < 0 || rank >= worldSize)
      throw new ConfigError('rank', `rank must be an integer from 0 to worldSize - 1 = ${worldSize - 1} (or set GRADVAULT_RANK), got ${describe(rank)}`);
    const sync = o.mode === 'averaging';
    if (o.roundTimeout !== undefined && !sync) throw new ConfigError('roundTimeout', `roundTimeout applies to mode 'averaging' only, not '${String(o.mode ?? 'atomic')}'`);
    const roundTimeout = o.roundTimeout ?? DEFAULT_ROUND_TIMEOUT;
    if (typeof roundTimeout !== 'number' || !Number.isSafeInteger(roundTimeout) || roundTimeout < 1 || roundTimeout > 3_600_000)
      throw new ConfigError('roundTimeout', `roundTimeout must be an integer number of milliseconds from 1 to 3600000, got ${describe(roundTimeout)}`);
    // Synchronous mode: a round is one push of every worker process.
    if (sync && o.syncEvery !== undefined && o.syncEvery !== worldSize)
      throw new ConfigError('syncEvery', `across the network a round of mode 'averaging' is one push of each of the worldSize = ${worldSize} workers: leave syncEvery out or set it to ${worldSize}, got ${describe(o.syncEvery)}`);
    const storeOptions = Object.fromEntries(Object.entries({ ...o, ...(sync ? { syncEvery: worldSize } : {}) }).filter(([k]) => !CONNECT_KEYS.includes(k))) as unknown as StoreOptions;
    const cfg = resolveStoreOptions(storeOptions);
    const r = cfg.resolved;
    if (servers.length > 1 && (r.staleness.policy === 'reject' || r.staleness.bound !== null))
      throw new ConfigError(
        'staleness',
        "staleness 'reject' and bounds need one shard: with several, each shard would decide alone and a push could be refused on one and applied on another",
      );
    // The initial values: a local store of the same options made them (so a
    // cluster starts exactly where one process would).
    const local = new ParameterStore(storeOptions);
    const initial = local.snapshot();
    local.close();
    const store = new RemoteParameterStore(r, servers as string[], key, timeout, sliceFloats, rank, worldSize);
    const spec = JSON.stringify({
      protocol: 1,
      shards: servers.length,
      sliceFloats,
      tensors: r.tensors.map((t) => [t.name, t.shape]),
      store: shardOptions(r),
      ...(sync ? { roundTimeout } : {}),
    });
    try {
      await Promise.all(
        store.#shards.map(async (s) => {
          const slices = store.layout.byShard[s.index];
          const body = {
            key: spec,
            shard: s.index,
            slices: slices.map((x) => ({ name: x.name, size: x.size, tensor: x.tensor, start: x.start })),
            store: JSON.parse(spec).store,
            ...(sync ? { roundTimeout } : {}),
          };
          const values = slices.map((x) => Buffer.from(bytesOf(initial.get(x.tensor).subarray(x.start, x.start + x.size))));
          store.#specs[s.index] = body;
          const rep = await store.#call(s, Op.CREATE, -1, [Buffer.from(JSON.stringify(body)), ...values]);
          s.version = rep.h.a;
        }),
      );
    } catch (e) {
      await store.close();
      throw e;
    } finally {
      initial.release();
    }
    return store;
  }

  async #call(s: Shard, op: number, a: number, frames: Buffer[], b = 0): Promise<{ h: Header; frames: Buffer[] }> {
    if (this.#closed) throw new ClosedError('the remote store is closed');
    let rep = await s.request(op, a, frames, b);
    // A shard that restarted (empty, or to resume from a checkpoint with
    // --load) is given the spec again, then asked once more: the request
    // was refused, not applied.
    if (rep.h.status === Status.ERROR && op !== Op.CREATE && this.#specs[s.index] && isEmptyShard(rep.frames[0])) {
      // `again`, the spec alone: a shard resuming from a checkpoint takes its
      // slices from the file; one that restarted without a checkpoint refuses
      // it (its slices are lost; the initial values would reset them silently)
      const c = await s.request(Op.CREATE, -1, [Buffer.from(JSON.stringify({ ...this.#specs[s.index], again: true }))]);
      if (c.h.status === Status.ERROR) throw remoteError(s, c.frames[0], this.layout);
      s.version = c.h.a;
      if (op === Op.PUSH && a >= 0) a = Math.min(a, c.h.a);
      if (op === Op.PUSHES) {
        const bases = new Float64Array(frames[1].length / 8);
        for (let i = 0; i < bases.length; i++) bases[i] = Math.min(frames[1].readDoubleLE(i * 8), c.h.a);
        frames = [frames[0], Buffer.from(bases.buffer), ...frames.slice(2)];
      }
      rep = await s.request(op, a, frames, b);
    }
    if (rep.h.status === Status.ERROR) throw remoteError(s, rep.frames[0], this.layout);
    return rep;
  }

  // A push's part for shard `s`. The first goes out at once; those that
  // arrive while its send is under way wait and go together in one PUSHES
  // message (small pushes with many in flight cost one message per batch,
  // not one each), applied by the shard in order as separate pushes.
  #enqueue(s: Shard, basedOn: number, frames: Buffer[]): Promise<{ status: number; a: number; b: number }> {
    const p = new Promise<{ status: number; a: number; b: number }>((resolve, reject) => s.queue.push({ basedOn, frames, resolve, reject }));
    if (!s.flushing) void this.#flush(s);
    return p;
  }

  async #flush(s: Shard): Promise<void> {
    s.flushing = true;
    try {
      while (s.queue.length > 0) {
        const batch = s.queue.splice(0, MAX_BATCH);
        this.#sendPushes(s, batch);
        await s.sending; // this send done: what queued meanwhile goes next, together
      }
    } finally {
      s.flushing = false;
    }
  }

  #sendPushes(s: Shard, batch: QueuedPush[]): void {
    if (batch.length === 1) {
      const [q] = batch;
      this.#call(s, Op.PUSH, q.basedOn, q.frames, this.rank).then((rep) => q.resolve(rep.h), q.reject);
      return;
    }
    const counts = new Uint32Array(batch.map((q) => q.frames.length - 1));
    const bases = new Float64Array(batch.map((q) => q.basedOn));
    const frames = [Buffer.from(counts.buffer), Buffer.from(bases.buffer), ...batch.flatMap((q) => q.frames)];
    this.#call(s, Op.PUSHES, -1, frames, this.rank).then(
      (rep) => {
        const results = rep.frames[0];
        if (!results || results.length !== batch.length * 24) {
          const e = new ShardUnavailableError(s.index, s.address, `shard ${s.index} answered a batch of ${batch.length} pushes with ${results ? results.length : 0} bytes of results`);
          for (const q of batch) q.reject(e);
          return;
        }
        let errors: unknown[] = [];
        if (rep.frames[1]) {
          try {
            const body = json(rep.frames[1], 'errors');
            if (Array.isArray(body.errors)) errors = body.errors;
          } catch {
            // unreadable: each failed push gets the generic error below
          }
        }
        batch.forEach((q, i) => {
          const status = results.readDoubleLE(i * 24);
          if (status === Status.ERROR) q.reject(remoteError(s, errors[i] ? Buffer.from(JSON.stringify(errors[i])) : undefined, this.layout));
          else q.resolve({ status, a: results.readDoubleLE(i * 24 + 8), b: results.readDoubleLE(i * 24 + 16) });
        });
      },
      (e) => {
        for (const q of batch) q.reject(e);
      },
    );
  }

  /**
   * Writes one checkpoint of the whole cluster, in the format a single
   * store loads (and `gradvault server --load` resumes from): every shard
   * holds new pushes back until all are at a cut (none running), each saves
   * its slices, the pushes resume, and the core merges the shards' files
   * into one. Parameters and optimizer state come from that one cut
   * (synchronous mode: a round boundary, the same round on every shard).
   */
  async save(file: string): Promise<SaveResult> {
    this.#live();
    const abs = checkPath('file', file);
    const t0 = Date.now();
    const lease = Math.max(10_000, this.timeout * 5);
    const holding = this.#shards.filter((s) => this.layout.byShard[s.index].length > 0);
    let parts: Buffer[];
    let paused = 0;
    try {
      // Synchronous mode cuts at a round boundary every shard agrees on: a
      // shard past the asked round says which it could cut at, and all are
      // asked again for the largest (rounds close on every shard, so this
      // settles within a round or two).
      const sync = this.options.mode === 'averaging';
      for (let target = sync ? 0 : -1, attempt = 1; ; attempt++) {
        const reps = await Promise.all(holding.map((s) => this.#call(s, Op.HOLD, lease, [], target)));
        if (!sync || reps.every((r) => r.h.b === target)) break;
        await Promise.all(holding.map((s) => this.#call(s, Op.RELEASE, -1, [])));
        if (attempt === 20)
          throw new GradvaultError('ERR_SAVE', `the shards did not meet at one round boundary in 20 tries (rounds ${reps.map((r) => r.h.b).join(', ')}): did a shard restart?`);
        target = Math.max(...reps.map((r) => r.h.b));
      }
      const held = Date.now();
      parts = await Promise.all(holding.map(async (s) => (await this.#call(s, Op.SAVE, -1, [])).frames[0]));
      paused = (Date.now() - held) / 1000;
    } finally {
      await Promise.all(holding.map((s) => this.#call(s, Op.RELEASE, -1, []).catch(() => undefined)));
    }
    const part = new Map(holding.map((s, k) => [s.index, k]));
    const tensors = this.options.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      slices: this.layout.slices.filter((x) => x.tensor === t.name).map((x) => ({ part: part.get(x.shard)!, name: x.name, start: x.start, size: x.size })),
    }));
    let r;
    try {
      r = await native().mergeCheckpoints(abs, parts, tensors);
    } catch (e) {
      throw fromNative(e);
    }
    return { ...r, pauseSeconds: paused, seconds: (Date.now() - t0) / 1000 };
  }

  #live(): void {
    if (this.#closed) throw new ClosedError('the remote store is closed');
  }

  get mode(): ResolvedStoreOptions['mode'] {
    return this.options.mode;
  }

  get tensors(): readonly ResolvedTensor[] {
    return this.options.tensors;
  }

  /** The sum of the shards' versions, as last heard from them (pull, push, stats). */
  get version(): number {
    this.#live();
    return this.#shards.reduce((a, s) => a + s.version, 0);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Reads every tensor from the shards into a private copy (each shard's part from one point in time). */
  async pull(): Promise<Snapshot> {
    this.#live();
    const padded = this.#push.tensors.reduce((a, t) => a + Math.ceil(t.size / 16) * 16, 0);
    const buffer = new ArrayBuffer(padded * 4);
    const versions = new Array<number>(this.#shards.length).fill(0);
    await Promise.all(
      this.#shards.map(async (s) => {
        const slices = this.layout.byShard[s.index];
        const rep = await this.#call(s, Op.PULL, -1, []);
        if (rep.frames.length !== slices.length) throw new ShardUnavailableError(s.index, s.address, `shard ${s.index} sent ${rep.frames.length} slices, expected ${slices.length}`);
        slices.forEach((x, k) => {
          const f = rep.frames[k];
          if (f.length !== x.size * 4) throw new ShardUnavailableError(s.index, s.address, `shard ${s.index} sent a slice of ${f.length} bytes, expected ${x.size * 4}`);
          const t = this.#push.tensors[this.#push.index.get(x.tensor)!];
          new Uint8Array(buffer, (t.offset + x.start) * 4, f.length).set(f);
        });
        versions[s.index] = rep.h.a;
      }),
    );
    const snap = new Snapshot(this.#id, versions.reduce((a, b) => a + b, 0), buffer, this.#push.tensors, this.options.verify ? native().checksum : null);
    this.#bases.set(snap, versions);
    return snap;
  }

  /**
   * Applies gradients on the shards (each gets its slices), through each
   * shard's optimizer and mode. The gradients are copied before this
   * returns. Resolves when every shard has applied its part.
   */
  async pushAsync(grads: Gradients, opts?: PushOptions): Promise<PushResult> {
    this.#live();
    const p = readPush({ layout: this.#push, id: this.#id, verify: this.options.verify }, grads, opts);
    let bases: number[] | null = null;
    if (p.snapshot) bases = this.#bases.get(p.snapshot) ?? null;
    else if (p.basedOn >= 0) {
      if (this.#shards.length !== 1)
        throw new InvalidArgumentError('basedOn', 'with several shards, basedOn must be a snapshot from pull() (it knows each shard\'s version), not a number');
      bases = [p.basedOn];
    }
    if (this.options.mode === 'averaging' && p.indices.length !== this.#push.tensors.length) {
      const missing = this.#push.tensors.filter((_, i) => !p.indices.includes(i)).map((t) => t.name);
      throw new InvalidArgumentError('grads', `a synchronous round takes whole gradients: this push has no ${missing.map((n) => `'${n}'`).join(', ')}`);
    }
    // NaN/Inf is refused here, before any shard sees a part of the push.
    for (let k = 0; k < p.arrays.length; k++) {
      const g = p.arrays[k];
      for (let i = 0; i < g.length; i++)
        if (!Number.isFinite(g[i])) {
          const name = this.#push.tensors[p.indices[k]].name;
          if (this.options.nonFinite === 'skip') {
            this.#skipped++;
            return { applied: false, version: this.version, staleness: 0, reason: 'nonFinite' };
          }
          throw new NonFiniteGradientError(name, i, `gradient '${name}' holds ${g[i]} at index ${i}: pushes must be finite (nonFinite: 'reject')`);
        }
    }
    // Each shard's slices of the pushed tensors, copied now.
    const parts = this.#shards.map(() => ({ ids: [] as number[], frames: [] as Buffer[] }));
    const pushed = new Map(p.indices.map((t, k) => [this.#push.tensors[t].name, p.arrays[k]]));
    for (const x of this.layout.slices) {
      const g = pushed.get(x.tensor);
      if (!g) continue;
      parts[x.shard].ids.push(x.local);
      parts[x.shard].frames.push(Buffer.from(bytesOf(g.subarray(x.start, x.start + x.size))));
    }
    const results = await Promise.all(
      this.#shards.map(async (s) => {
        const part = parts[s.index];
        if (part.ids.length === 0) return null;
        const idFrame = Buffer.from(new Uint32Array(part.ids).buffer);
        const rep = await this.#enqueue(s, bases ? bases[s.index] : -1, [idFrame, ...part.frames]);
        return rep;
      }),
    );
    let staleness = 0;
    let reason: PushResult['reason'];
    for (const h of results) {
      if (!h) continue;
      staleness = Math.max(staleness, h.b);
      if (h.status === Status.STALE) reason = 'stale';
      else if (h.status === Status.SKIPPED && reason === undefined) reason = 'nonFinite';
    }
    // the version after this push: each shard it reached as that shard answered it, the others as last heard
    const version = this.#shards.reduce((a, s, i) => a + (results[i] ? results[i]!.a : s.version), 0);
    return reason ? { applied: false, version, staleness, reason } : { applied: true, version, staleness };
  }

  /** Counters of every shard, and their sums. */
  async stats(): Promise<ClusterStats> {
    this.#live();
    const shards = await Promise.all(
      this.#shards.map(async (s) => {
        const rep = await this.#call(s, Op.STATS, -1, []);
        const body = json(rep.frames[0], 'stats') as { server: Record<string, never>; store: StoreStats | null };
        return { s, body };
      }),
    );
    const stores = shards.map((x) => x.body.store).filter((x): x is StoreStats => x !== null);
    const sum = (f: (x: StoreStats) => number) => stores.reduce((a, x) => a + f(x), 0);
    const count = sum((x) => x.staleness.count);
    const histogram = (stores[0]?.staleness.histogram ?? []).map((b, i) => ({ ...b, count: sum((x) => x.staleness.histogram[i].count) }));
    return {
      mode: this.options.mode,
      version: sum((x) => x.version),
      pushes: sum((x) => x.pushes),
      rejected: sum((x) => x.rejected) + this.#skipped,
      rejectedStale: sum((x) => x.rejectedStale),
      skippedNonFinite: sum((x) => x.skippedNonFinite) + this.#skipped,
      conflicts: sum((x) => x.conflicts),
      snapshots: sum((x) => x.snapshots),
      rounds: sum((x) => x.rounds),
      pending: sum((x) => x.pending),
      staleness: {
        count,
        mean: count ? sum((x) => x.staleness.mean * x.staleness.count) / count : 0,
        max: stores.reduce((a, x) => Math.max(a, x.staleness.max), 0),
        histogram,
      },
      bytes: sum((x) => x.bytes),
      shards: shards.map(({ s, body }) => {
        const srv = body.server as unknown as { requests: number; bytesIn: number; bytesOut: number; queueDepth: number; refused: { protocol: number; auth: number } };
        return {
          shard: s.index,
          address: s.address,
          version: body.store?.version ?? -1,
          floats: this.layout.floats[s.index],
          pushes: body.store?.pushes ?? 0,
          rejected: body.store?.rejected ?? 0,
          requests: srv.requests,
          bytesIn: srv.bytesIn,
          bytesOut: srv.bytesOut,
          queueDepth: srv.queueDepth,
          refused: srv.refused,
        };
      }),
    };
  }

  /** Disconnects (the shards and their tensors stay). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const s of this.#shards) s.close();
  }
}

// The store options of a shard: what the worker resolved, as options a
// ParameterStore takes again (each optimizer kind its own settings; no
// staleness or syncEvery where they do not apply).
function shardOptions(r: ResolvedStoreOptions): Omit<StoreOptions, 'tensors'> {
  const optimizer = Object.fromEntries(Object.entries(r.optimizer).filter(([k]) => OPTIMIZER_KEYS[r.optimizer.kind].includes(k)));
  return {
    mode: r.mode,
    optimizer,
    ...(r.staleness.policy !== 'accept' || r.staleness.bound !== null
      ? { staleness: r.staleness.bound === null ? { policy: r.staleness.policy } : { policy: r.staleness.policy, bound: r.staleness.bound } }
      : {}),
    nonFinite: r.nonFinite,
    ...(r.mode === 'averaging' ? { syncEvery: r.syncEvery } : {}),
    verify: r.verify,
  };
}
