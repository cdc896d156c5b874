/**
 * (About 650 lines: the shard's socket loop, its request handlers, and
 * synchronous mode's rounds, which share the shard's state (the vault, the
 * hold, the open round) and change together; the rounds are the part to
 * move out when it grows.)
 *
 * One shard of a cluster: a normal vault (a ParameterStore, any mode, the
 * optimizer on the server) behind a ZeroMQ ROUTER socket with CURVE. The
 * first worker to connect sends the shard's spec (its slices, the store
 * options) and the initial values; a later one with another spec gets a
 * ConfigError. Pushes are applied off the JavaScript thread
 * (`pushAsync`), so the socket keeps answering (pings, pulls) while they
 * run, and the store's own mode keeps concurrent pushes from losing
 * updates exactly as in one process.
 *
 * Synchronous mode (`averaging`): the shard's vault takes one push from
 * each of the cluster's `worldSize` ranks per round (syncEvery = worldSize),
 * sums them in fixed point and steps once. A rank's second push waits for
 * the round to close; every push of a round is answered when it closes; a
 * round still open `roundTimeout` ms after its first push is applied with
 * what arrived and its pushes fail with ERR_ROUND_TIMEOUT naming the ranks
 * that were missing.
 *
 * Every message is checked (protocol.ts) before it touches the vault; a
 * malformed one is refused, counted in `stats().refused`, and answered
 * with ERR_PROTOCOL where it carried a request id.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { resolveLoadOptions } from '../config';
import { ConfigError, GradvaultError, InvalidArgumentError, fromNative } from '../errors';
import { native } from '../native';
import { checkPath } from '../paths';
import { ParameterStore, adoptNative } from '../store';
import { clientKeyBytes, zapAllow, zapForget } from './zap';
import { onEvents } from './events';
import { resolveKey, type ClusterKey } from './key';
import {
  HEADER_BYTES,
  MAGIC,
  MAX_BATCH,
  MAX_SLICES,
  OPS,
  Op,
  ProtocolError,
  REPLY,
  Status,
  bytesOf,
  floats,
  header,
  ids,
  json,
  jsonFrame,
  readHeader,
  type StatusCode,
} from './protocol';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const zmq = () => require('zeromq') as typeof import('zeromq');

export interface ServerOptions {
  /** ZeroMQ endpoint. @default 'tcp://127.0.0.1:0' (loopback, a free port) */
  readonly listen?: string;
  /** The cluster key (text, or GRADVAULT_KEY / GRADVAULT_KEY_FILE). */
  readonly key?: string;
  /** The largest message accepted, in bytes (larger are refused by ZeroMQ before they are read). @default 1 GiB */
  readonly maxMessageBytes?: number;
  /** The most float32 values the shard may hold (a spec asking more is refused). @default 2^31 */
  readonly maxFloats?: number;
  /**
   * A checkpoint (a cluster's `save()`, or a single store's) to resume from:
   * when a worker creates the tensors, this shard takes its slices of the
   * file (values and optimizer state) instead of the worker's initial values.
   */
  readonly load?: string;
}

export interface ServerStats {
  readonly address: string;
  /** Requests answered. */
  readonly requests: number;
  /** Messages refused: malformed (protocol) or from a client without the key (auth). */
  readonly refused: { readonly protocol: number; readonly auth: number };
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Pushes being applied now. */
  readonly queueDepth: number;
  /** Synchronous mode: the open round (1-based) and the ranks that pushed into it; null in other modes. */
  readonly round: { readonly number: number; readonly ranks: readonly number[] } | null;
  /** The vault's version, or -1 before the first worker created it. */
  readonly version: number;
}

interface ShardSpec {
  readonly key: string;
  readonly slices: { name: string; size: number; tensor: string; start: number }[];
}

let nextDomain = 1;

/** The open round of synchronous mode. */
interface Round {
  readonly number: number;
  readonly ranks: Set<number>;
  /** Pushes of this round the vault has taken. */
  done: number;
  /** The vault's version when the round closed. */
  version: number;
  /** Set when the round timed out: no more pushes join it. */
  timedOut: { missing: number[]; ms: number } | null;
  timer: NodeJS.Timeout | null;
  readonly closed: Promise<void>;
  close: () => void;
}

function openRound(number: number): Round {
  let close!: () => void;
  const closed = new Promise<void>((r) => (close = r));
  return { number, ranks: new Set(), done: 0, version: 0, timedOut: null, timer: null, closed, close };
}

/** A push of at most this many values is applied on the shard's JavaScript thread (no hop to the pool). */
const SMALL_PUSH_FLOATS = 4096;

/** The default round timeout of synchronous mode (ms). */
export const DEFAULT_ROUND_TIMEOUT = 30_000;

/** One shard; `ParameterServer.start()` binds it, `close()` stops it. */
export class ParameterServer {
  readonly #sock: import('zeromq').Router;
  readonly #domain: string;
  readonly #maxFloats: number;
  readonly #load: string | null;
  #creating: Promise<void> | null = null;
  // target: in synchronous mode, the round the hold cuts at (pushes of
  // rounds up to it are still taken)
  #held: { release: () => void; released: Promise<void>; timer: NodeJS.Timeout; target: number } | null = null;
  // woken whenever a push finishes or a round closes
  #changed: (() => void)[] = [];
  #sync: { size: number; timeout: number } | null = null;
  #round: Round = openRound(1);
  // synchronous mode: per rank, the admission of its latest push
  readonly #lines = new Map<number, Promise<void>>();
  #address = '';
  #vault: ParameterStore | null = null;
  #spec: ShardSpec | null = null;
  #sending: Promise<unknown> = Promise.resolve();
  #closed = false;
  #loop: Promise<void> = Promise.resolve();
  #requests = 0;
  #refusedProtocol = 0;
  #refusedAuth = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #inFlight = 0;

  private constructor(key: ClusterKey, options: ServerOptions) {
    this.#domain = `gradvault-${process.pid}-${nextDomain++}`;
    this.#maxFloats = options.maxFloats ?? 2 ** 31;
    this.#load = options.load !== undefined ? checkPath('load', options.load) : null;
    this.#sock = new (zmq().Router)({
      curveServer: true,
      curveSecretKey: key.serverSecret,
      zapDomain: this.#domain,
      maxMessageSize: options.maxMessageBytes ?? 2 ** 30,
      linger: 0,
      // ZMTP heartbeats: a dead peer's connection is dropped
      heartbeatInterval: 1000,
      heartbeatTimeout: 3000,
    });
    // A handshake that fails: a client without the shard's key (CURVE) or
    // with a client key not the cluster's (ZAP) is refused before any message.
    onEvents(this.#sock, (type) => {
      if (type.startsWith('handshake:error')) this.#refusedAuth++;
    });
  }

  /** Binds a shard and starts answering. */
  static async start(options: ServerOptions = {}): Promise<ParameterServer> {
    if (!isMainThread)
      throw new InvalidArgumentError('ParameterServer', 'start a server on the main thread: a ZeroMQ socket owned by a worker_thread aborts the process when the worker is terminated');
    const key = resolveKey(options.key);
    const listen = options.listen ?? process.env.GRADVAULT_LISTEN ?? 'tcp://127.0.0.1:0';
    if (typeof listen !== 'string' || !/^(tcp|ipc|inproc):\/\//.test(listen))
      throw new ConfigError('listen', `listen must be a ZeroMQ endpoint such as tcp://127.0.0.1:5555, got ${JSON.stringify(listen)}`);
    const s = new ParameterServer(key, options);
    try {
      await zapAllow(s.#domain, clientKeyBytes(key));
      // port 0 (or *): a free port, which libzmq spells '*'
      const endpoint = listen.replace(/^tcp:\/\/localhost:/, 'tcp://127.0.0.1:').replace(/^(tcp:\/\/.*):0$/, '$1:*');
      for (let attempt = 1; ; attempt++) {
        try {
          await s.#sock.bind(endpoint);
          break;
        } catch (e) {
          // a free port taken between libzmq's choice and its listen(): another is tried
          if (!endpoint.endsWith(':*') || (e as { code?: string }).code !== 'EADDRINUSE' || attempt === 20) throw e;
        }
      }
    } catch (e) {
      s.#sock.close();
      zapForget(s.#domain);
      throw new ConfigError('listen', `cannot listen on ${listen}: ${(e as Error).message} (${(e as { code?: string }).code ?? 'no code'})`);
    }
    s.#address = s.#sock.lastEndpoint ?? listen;
    s.#loop = s.#serve();
    return s;
  }

  /** Where workers connect (the bound endpoint, with the port chosen). */
  get address(): string {
    return this.#address;
  }

  stats(): ServerStats {
    return {
      address: this.#address,
      requests: this.#requests,
      refused: { protocol: this.#refusedProtocol, auth: this.#refusedAuth },
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      queueDepth: this.#inFlight,
      round: this.#sync ? { number: this.#round.number, ranks: [...this.#round.ranks].sort((a, b) => a - b) } : null,
      version: this.#vault ? this.#vault.version : -1,
    };
  }

  /** Stops answering and frees the vault. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.close();
    zapForget(this.#domain);
    await this.#loop.catch(() => undefined);
    this.#release();
    if (this.#round.timer) clearTimeout(this.#round.timer);
    this.#vault?.close();
    this.#vault = null;
  }

  async #serve(): Promise<void> {
    try {
      for await (const msg of this.#sock) {
        const [identity, ...frames] = msg;
        for (const f of msg) this.#bytesIn += f.length;
        void this.#handle(identity, frames);
      }
    } catch (e) {
      if (!this.#closed) throw e;
    }
  }

  #send(identity: Buffer, frames: Buffer[]): void {
    if (this.#closed) return;
    for (const f of frames) this.#bytesOut += f.length;
    // one send at a time on a ZeroMQ socket
    this.#sending = this.#sending.then(() => (this.#closed ? undefined : this.#sock.send([identity, ...frames]))).catch(() => undefined);
  }

  #reply(identity: Buffer, op: number, id: number, status: StatusCode, a: number, b: number, frames: Buffer[] = []): void {
    this.#send(identity, [header({ op: op | REPLY, status, id, count: frames.length, a, b }), ...frames]);
  }

  #errorBody(e: unknown): Record<string, unknown> {
    const err = e as GradvaultError & { field?: string; path?: string; tensor?: string; index?: number; round?: unknown; missing?: unknown };
    return {
      code: e instanceof ProtocolError ? 'ERR_PROTOCOL' : typeof err.code === 'string' ? err.code : 'ERR_INTERNAL',
      message: e instanceof Error ? e.message : String(e),
      field: typeof err.field === 'string' ? err.field : typeof err.path === 'string' ? err.path : undefined,
      tensor: typeof err.tensor === 'string' ? err.tensor : undefined,
      index: typeof err.index === 'number' ? err.index : undefined,
      round: typeof err.round === 'number' ? err.round : undefined,
      missing: Array.isArray(err.missing) ? err.missing : undefined,
    };
  }

  #error(identity: Buffer, op: number, id: number, e: unknown): void {
    this.#reply(identity, op, id, Status.ERROR, this.#vault ? this.#vault.version : -1, 0, [jsonFrame(this.#errorBody(e))]);
  }

  async #handle(identity: Buffer, frames: Buffer[]): Promise<void> {
    let h;
    try {
      h = readHeader(frames[0], false, frames.length);
    } catch (e) {
      this.#refusedProtocol++;
      // answer where the message names a request, so its sender is not left waiting
      const f = frames[0];
      if (f?.length === HEADER_BYTES && f.readUInt32LE(0) === MAGIC && OPS.has(f.readUInt8(4) & ~REPLY)) this.#error(identity, f.readUInt8(4) & ~REPLY, f.readUInt32LE(8), e);
      return;
    }
    this.#requests++;
    try {
      switch (h.op) {
        case Op.PING:
          this.#reply(identity, h.op, h.id, Status.OK, this.#vault ? this.#vault.version : -1, 0);
          return;
        case Op.CREATE:
          await this.#create(identity, h.id, frames);
          return;
        case Op.HOLD:
          await this.#hold(identity, h.id, h.a, h.b);
          return;
        case Op.RELEASE:
          this.#release();
          this.#reply(identity, h.op, h.id, Status.OK, this.#vault ? this.#vault.version : 0, 0);
          return;
        case Op.SAVE:
          await this.#save(identity, h.id);
          return;
        case Op.PULL: {
          if (this.#spec && this.#spec.slices.length === 0) {
            this.#reply(identity, h.op, h.id, Status.OK, 0, 0);
            return;
          }
          const v = this.#live();
          const snap = v.snapshot();
          const out = this.#spec!.slices.map((s) => Buffer.from(bytesOf(snap.get(s.name))));
          snap.release();
          this.#reply(identity, h.op, h.id, Status.OK, snap.version, 0, out);
          return;
        }
        case Op.STATS: {
          const v = this.#vault;
          const body = { server: this.stats(), store: v ? v.stats() : null, slices: this.#spec ? this.#spec.slices.length : 0 };
          this.#reply(identity, h.op, h.id, Status.OK, v ? v.version : -1, 0, [jsonFrame(body)]);
          return;
        }
        case Op.PUSH:
          await this.#push(identity, h.id, h.a, h.b, frames);
          return;
        case Op.PUSHES:
          await this.#pushes(identity, h.id, h.b, frames);
          return;
      }
    } catch (e) {
      if (e instanceof ProtocolError) this.#refusedProtocol++;
      this.#error(identity, h.op, h.id, e);
    }
  }

  #live(): ParameterStore {
    if (!this.#vault) throw new ProtocolError('shard', 'this shard holds no tensors yet (a worker creates them when it connects; a restarted shard starts empty)');
    return this.#vault;
  }

  async #create(identity: Buffer, id: number, frames: Buffer[]): Promise<void> {
    // one creation at a time: a second worker's spec is compared with the first's
    while (this.#creating) await this.#creating.catch(() => undefined);
    const spec = json(frames[1], 'spec');
    if (typeof spec.key !== 'string' || typeof spec.store !== 'object' || spec.store === null)
      throw new ProtocolError('spec', 'spec must name its key and store options');
    const key = spec.key;
    if (!this.#spec && spec.again === true && !this.#load)
      throw new GradvaultError(
        'ERR_SHARD_LOST',
        'this shard restarted without a checkpoint: the slices it held are lost (restart it with --load FILE to resume from the last save(), or start a new cluster)',
      );
    if (this.#spec) {
      if (this.#spec.key !== key)
        throw new ConfigError(
          'tensors',
          'the cluster already holds tensors made with another spec (tensors, shapes, mode, optimizer, shard count or slice size differ): ' +
            'connect with the spec it was created with, or start new shards',
        );
      this.#reply(identity, Op.CREATE, id, Status.OK, this.#vault ? this.#vault.version : 0, 0);
      return;
    }
    const slices = spec.slices;
    // (a shard may hold no slice: more shards than slices)
    if (!Array.isArray(slices) || slices.length > MAX_SLICES) throw new ProtocolError('spec.slices', `spec.slices must be an array of at most ${MAX_SLICES} slices`);
    // a spec sent again (to resume from the checkpoint) comes without values
    const values = spec.again === true ? 0 : slices.length;
    if (frames.length !== 2 + values) throw new ProtocolError('count', `a spec of ${slices.length} slices needs ${values} value frames, got ${frames.length - 2}`);
    let total = 0;
    const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
    const list = slices.map((s: unknown, i: number) => {
      const o = s as { name?: unknown; size?: unknown; tensor?: unknown; start?: unknown };
      if (typeof o !== 'object' || o === null || typeof o.name !== 'string' || typeof o.tensor !== 'string' || !count(o.size) || !count(o.start))
        throw new ProtocolError(`spec.slices[${i}]`, `spec.slices[${i}] must be { name, size, tensor, start }`);
      total += o.size as number;
      return { name: o.name, size: o.size as number, tensor: o.tensor, start: o.start as number };
    });
    if (!count(spec.shard)) throw new ProtocolError('spec.shard', 'spec.shard must be the shard index');
    if (total > this.#maxFloats) throw new ConfigError('tensors', `the shard's slices hold ${total} values, more than its limit of ${this.#maxFloats}`);
    const tensors: Record<string, { shape: number[]; init: Float32Array }> = Object.create(null);
    if (values > 0)
      list.forEach((s, i) => {
        tensors[s.name] = { shape: [s.size], init: floats(frames[2 + i], s.size, `values[${i}]`) };
      });
    if (list.length > 0) {
      if (this.#load) {
        // the slices of the checkpoint, with the cluster's options over the file's (the core checks both)
        const file = this.#load;
        const options = resolveLoadOptions(spec.store);
        const creating = native()
          .loadSlices(file, options, list, spec.shard as number)
          .then((n) => {
            this.#vault = adoptNative(n);
          }, (e) => {
            throw fromNative(e);
          });
        this.#creating = creating;
        try {
          await creating;
        } finally {
          this.#creating = null;
        }
      } else {
        // The store validates the options as for any store (ConfigError naming the field).
        this.#vault = new ParameterStore({ ...(spec.store as object), tensors } as never);
      }
    }
    if (this.#vault && this.#vault.options.mode === 'averaging') {
      const t = spec.roundTimeout ?? DEFAULT_ROUND_TIMEOUT;
      if (!(Number.isSafeInteger(t) && (t as number) >= 1 && (t as number) <= 3_600_000)) throw new ProtocolError('spec.roundTimeout', `spec.roundTimeout must be 1 to 3600000 ms, got ${String(t)}`);
      this.#sync = { size: this.#vault.options.syncEvery, timeout: t as number };
    }
    this.#spec = { key, slices: list };
    this.#reply(identity, Op.CREATE, id, Status.OK, this.#vault ? this.#vault.version : 0, 0);
  }

  // Holds new pushes back and answers once none runs: a cut every shard of
  // a cluster is at together. The lease ends it if the worker never releases.
  // Synchronous mode cuts at a round boundary, `target` (rounds closed): a
  // shard that closed more answers at once with its count (b), and the
  // worker asks every shard again for the largest; a shard behind takes the
  // pushes of rounds up to the target, then holds. Pushes of the round
  // after the target that arrived before stay in its open round, which the
  // checkpoint leaves out (cluster.cpp).
  async #hold(identity: Buffer, id: number, lease: number, target: number): Promise<void> {
    if (!(Number.isSafeInteger(lease) && lease >= 1 && lease <= 600_000)) throw new ProtocolError('lease', `a hold's lease must be 1 to 600000 ms, got ${lease}`);
    if (!(Number.isSafeInteger(target) && target >= -1)) throw new ProtocolError('target', `a hold's target round must be -1 or a round, got ${target}`);
    this.#release();
    const version = () => (this.#vault ? this.#vault.version : 0);
    const closed = () => this.#round.number - 1;
    if (this.#sync && closed() > target) {
      this.#reply(identity, Op.HOLD, id, Status.OK, version(), closed());
      return;
    }
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const timer = setTimeout(() => this.#release(), lease);
    timer.unref();
    const held = { release, released, timer, target: this.#sync ? target : -1 };
    this.#held = held;
    const atCut = () => this.#inFlight === 0 && (!this.#sync || closed() >= target);
    while (!atCut() && this.#held === held) await new Promise<void>((r) => this.#changed.push(r));
    if (this.#held !== held)
      throw new GradvaultError('ERR_HOLD_EXPIRED', `the hold's lease of ${lease} ms ended before this shard reached its cut${this.#sync ? ` (round ${target})` : ''}`);
    this.#reply(identity, Op.HOLD, id, Status.OK, version(), this.#sync ? target : 0);
  }

  #wake(): void {
    for (const w of this.#changed.splice(0)) w();
  }

  #release(): void {
    const h = this.#held;
    if (!h) return;
    this.#held = null;
    clearTimeout(h.timer);
    h.release();
    this.#wake();
  }

  // The shard's own checkpoint (the core writes it, to a private temporary
  // file), sent as bytes; the worker merges the shards' (native/core/checkpoint/cluster.cpp).
  async #save(identity: Buffer, id: number): Promise<void> {
    const v = this.#live();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradvault-shard-'));
    try {
      const r = await v.save(path.join(dir, 'shard.safetensors'));
      const bytes = fs.readFileSync(path.join(dir, 'shard.safetensors'));
      this.#reply(identity, Op.SAVE, id, Status.OK, r.version, 0, [bytes]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  // One push's slice ids and gradient frames, checked, as the vault's gradients.
  #decode(idFrame: Buffer | undefined, grads: Buffer[], basedOn: number, field: string): Record<string, Float32Array> {
    const slices = this.#spec!.slices;
    if (!idFrame) throw new ProtocolError('count', `${field} needs its slice ids`);
    const which = ids(idFrame, slices.length, slices.length, `${field}.slices`);
    if (which.length === 0) throw new ProtocolError(`${field}.slices`, `${field} must name at least one slice`);
    if (grads.length !== which.length) throw new ProtocolError('count', `${field} of ${which.length} slices needs ${which.length} gradient frames, got ${grads.length}`);
    if (basedOn !== -1 && !(Number.isSafeInteger(basedOn) && basedOn >= 0)) throw new ProtocolError('basedOn', `basedOn must be -1 or a version, got ${basedOn}`);
    const out: Record<string, Float32Array> = Object.create(null);
    which.forEach((k, i) => {
      out[slices[k].name] = floats(grads[i], slices[k].size, `gradient[${i}]`);
    });
    return out;
  }

  async #push(identity: Buffer, id: number, basedOn: number, rank: number, frames: Buffer[]): Promise<void> {
    const v = this.#live();
    const grads = this.#decode(frames[1], frames.slice(2), basedOn, 'a push');
    const r = await this.#apply(v, basedOn, rank, grads);
    this.#reply(identity, Op.PUSH, id, r.status, r.version, r.staleness);
  }

  // PUSHES: several pushes in one message (a worker's pushes queued while
  // its socket was busy), each checked before any is applied, applied in
  // order as separate pushes, answered together: per push (status, version,
  // staleness) as f64, and the errors of those that failed.
  async #pushes(identity: Buffer, id: number, rank: number, frames: Buffer[]): Promise<void> {
    const v = this.#live();
    const slices = this.#spec!.slices.length;
    if (frames.length < 3) throw new ProtocolError('count', 'a batch needs its counts, its bases and its pushes');
    const counts = ids(frames[1], MAX_BATCH, Number.MAX_SAFE_INTEGER, 'counts', false);
    if (counts.length === 0) throw new ProtocolError('counts', 'a batch must hold at least one push');
    if (frames[2].length !== counts.length * 8) throw new ProtocolError('bases', `bases must be ${counts.length} f64 values`);
    let at = 3;
    const batch = Array.from(counts, (k, i) => {
      if (k < 1 || k > slices) throw new ProtocolError('counts', `counts[${i}] = ${k}: a push names 1 to ${slices} slices`);
      if (at + 1 + k > frames.length) throw new ProtocolError('count', `the batch ends inside push ${i}`);
      const basedOn = frames[2].readDoubleLE(i * 8);
      const grads = this.#decode(frames[at], frames.slice(at + 1, at + 1 + k), basedOn, `push ${i}`);
      at += 1 + k;
      return { basedOn, grads };
    });
    if (at !== frames.length) throw new ProtocolError('count', `the batch has ${frames.length - at} frames after its last push`);
    const results = Buffer.alloc(batch.length * 24);
    const errors: unknown[] = [];
    const settle = (i: number, p: Promise<{ status: StatusCode; version: number; staleness: number }>) =>
      p.then(
        (r) => r,
        (e) => {
          errors[i] = this.#errorBody(e);
          return { status: Status.ERROR as StatusCode, version: v.version, staleness: 0 };
        },
      );
    // Synchronous mode: all at once (each takes its place in its rank's line
    // now, in order, and joins its own round); otherwise one after another.
    const out = this.#sync
      ? await Promise.all(batch.map((b, i) => settle(i, this.#apply(v, b.basedOn, rank, b.grads))))
      : [];
    if (!this.#sync) for (let i = 0; i < batch.length; i++) out.push(await settle(i, this.#apply(v, batch[i].basedOn, rank, batch[i].grads)));
    out.forEach((r, i) => {
      results.writeDoubleLE(r.status, i * 24);
      results.writeDoubleLE(r.version, i * 24 + 8);
      results.writeDoubleLE(r.staleness, i * 24 + 16);
    });
    this.#reply(identity, Op.PUSHES, id, Status.OK, v.version, 0, errors.length ? [results, jsonFrame({ errors })] : [results]);
  }

  // Applies one push with the shard's mode: a small one on this thread (a
  // hop to the pool costs more than a few values), a larger one off it, so
  // the socket keeps answering while it runs.
  async #apply(v: ParameterStore, basedOn: number, rank: number, grads: Record<string, Float32Array>): Promise<{ status: StatusCode; version: number; staleness: number }> {
    if (this.#sync) return this.#pushRound(rank, v, grads);
    while (this.#held) await this.#held.released;
    this.#inFlight++;
    try {
      const opts = basedOn >= 0 ? { basedOn } : undefined;
      let floats = 0;
      for (const k in grads) floats += grads[k].length;
      const r = floats <= SMALL_PUSH_FLOATS ? v.push(grads, opts) : await v.pushAsync(grads, opts);
      return { status: r.applied ? Status.OK : r.reason === 'stale' ? Status.STALE : Status.SKIPPED, version: r.version, staleness: r.staleness };
    } finally {
      this.#inFlight--;
      this.#wake();
    }
  }

  // Synchronous mode: the push joins the open round (one per rank) and is
  // answered when the round closes.
  async #pushRound(rank: number, v: ParameterStore, grads: Record<string, Float32Array>): Promise<{ status: StatusCode; version: number; staleness: number }> {
    const sync = this.#sync!;
    if (!(Number.isSafeInteger(rank) && rank >= 0 && rank < sync.size)) throw new ProtocolError('rank', `rank must be 0 to ${sync.size - 1} (the cluster's worldSize is ${sync.size}), got ${rank}`);
    // A rank's pushes join rounds in the order they arrived: each waits for
    // the one before it to be admitted (taken now, before any await).
    const before = this.#lines.get(rank);
    let admitted!: () => void;
    this.#lines.set(rank, new Promise<void>((r) => (admitted = r)));
    let round: Round;
    try {
      await before;
      for (;;) {
        const open = this.#round;
        const held = this.#held;
        if (held && open.number > held.target) await held.released;
        else if (open.ranks.has(rank) || open.timedOut) await open.closed;
        else break;
      }
      round = this.#round;
      round.ranks.add(rank);
      if (!round.timer) {
        const r = round;
        r.timer = setTimeout(() => this.#timeOut(r), sync.timeout);
        r.timer.unref();
      }
    } finally {
      admitted();
    }
    this.#inFlight++;
    let r;
    try {
      r = await v.pushAsync(grads);
      // a push the vault skipped (nonFinite: 'skip') took no slot: the rank still owes this round its push
      if (r.applied) round.done++;
      else round.ranks.delete(rank);
    } catch (e) {
      round.ranks.delete(rank); // refused before it took a slot (the vault checks first)
      throw e;
    } finally {
      this.#inFlight--;
      if (round.done === sync.size || (round.timedOut && round.done === round.ranks.size)) this.#closeRound(round);
      this.#wake();
    }
    if (!r.applied) return { status: Status.SKIPPED, version: r.version, staleness: 0 };
    await round.closed;
    if (round.timedOut) {
      const t = round.timedOut;
      throw Object.assign(
        new GradvaultError(
          'ERR_ROUND_TIMEOUT',
          `round ${round.number} waited ${t.ms} ms for rank${t.missing.length > 1 ? 's' : ''} ${t.missing.join(', ')} of ${sync.size}: ` +
            `it was applied with the ${round.ranks.size} push${round.ranks.size === 1 ? '' : 'es'} that arrived (do not push them again)`,
        ),
        { round: round.number, missing: t.missing },
      );
    }
    return { status: Status.OK, version: round.version, staleness: 0 };
  }

  #timeOut(round: Round): void {
    if (round !== this.#round || this.#closed) return;
    if (this.#held) {
      // the missing pushes may be the ones a save holds back: wait again
      round.timer = setTimeout(() => this.#timeOut(round), this.#sync!.timeout);
      round.timer.unref();
      return;
    }
    if (round.ranks.size === 0) {
      // every push it had was refused: the round is empty again, and its next first push starts a timer
      round.timer = null;
      return;
    }
    const missing = [];
    for (let r = 0; r < this.#sync!.size; r++) if (!round.ranks.has(r)) missing.push(r);
    round.timedOut = { missing, ms: this.#sync!.timeout };
    if (round.done === round.ranks.size) this.#closeRound(round);
  }

  #closeRound(round: Round): void {
    if (round !== this.#round) return;
    if (round.timer) clearTimeout(round.timer);
    // a round that timed out is applied with the pushes it has
    if (round.timedOut && round.done > 0 && this.#vault) this.#vault.sync();
    round.version = this.#vault ? this.#vault.version : 0;
    this.#round = openRound(round.number + 1);
    round.close();
    this.#wake();
  }
}
