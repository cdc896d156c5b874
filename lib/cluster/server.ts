/**
 * One shard of a cluster: a normal vault (a ParameterStore, any mode, the
 * optimizer on the server) behind a ZeroMQ ROUTER socket with CURVE. The
 * first worker to connect sends the shard's spec (its slices, the store
 * options) and the initial values; a later one with another spec gets a
 * ConfigError. Pushes are applied off the JavaScript thread
 * (`pushAsync`), so the socket keeps answering (pings, pulls) while they
 * run, and the store's own mode keeps concurrent pushes from losing
 * updates exactly as in one process.
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
  /** The vault's version, or -1 before the first worker created it. */
  readonly version: number;
}

interface ShardSpec {
  readonly key: string;
  readonly slices: { name: string; size: number; tensor: string; start: number }[];
}

let nextDomain = 1;

/** One shard; `ParameterServer.start()` binds it, `close()` stops it. */
export class ParameterServer {
  readonly #sock: import('zeromq').Router;
  readonly #domain: string;
  readonly #maxFloats: number;
  readonly #load: string | null;
  #creating: Promise<void> | null = null;
  #held: { release: () => void; released: Promise<void>; timer: NodeJS.Timeout } | null = null;
  #drained: (() => void) | null = null;
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

  #error(identity: Buffer, op: number, id: number, e: unknown): void {
    const err = e as GradvaultError & { field?: string; path?: string; tensor?: string; index?: number };
    const body = {
      code: e instanceof ProtocolError ? 'ERR_PROTOCOL' : typeof err.code === 'string' ? err.code : 'ERR_INTERNAL',
      message: e instanceof Error ? e.message : String(e),
      field: typeof err.field === 'string' ? err.field : typeof err.path === 'string' ? err.path : undefined,
      tensor: typeof err.tensor === 'string' ? err.tensor : undefined,
      index: typeof err.index === 'number' ? err.index : undefined,
    };
    this.#reply(identity, op, id, Status.ERROR, this.#vault ? this.#vault.version : -1, 0, [jsonFrame(body)]);
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
          await this.#hold(identity, h.id, h.a);
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
          await this.#push(identity, h.id, h.a, frames);
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
    if (frames.length !== 2 + slices.length) throw new ProtocolError('count', `a spec of ${slices.length} slices needs ${slices.length} value frames, got ${frames.length - 2}`);
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
    this.#spec = { key, slices: list };
    this.#reply(identity, Op.CREATE, id, Status.OK, this.#vault ? this.#vault.version : 0, 0);
  }

  // Holds new pushes back and answers once none runs: a cut every shard of
  // a cluster is at together. The lease ends it if the worker never releases.
  async #hold(identity: Buffer, id: number, lease: number): Promise<void> {
    if (!(Number.isSafeInteger(lease) && lease >= 1 && lease <= 600_000)) throw new ProtocolError('lease', `a hold's lease must be 1 to 600000 ms, got ${lease}`);
    this.#release();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const timer = setTimeout(() => this.#release(), lease);
    timer.unref();
    this.#held = { release, released, timer };
    while (this.#inFlight > 0) await new Promise<void>((r) => (this.#drained = r));
    this.#reply(identity, Op.HOLD, id, Status.OK, this.#vault ? this.#vault.version : 0, 0);
  }

  #release(): void {
    const h = this.#held;
    if (!h) return;
    this.#held = null;
    clearTimeout(h.timer);
    h.release();
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

  async #push(identity: Buffer, id: number, basedOn: number, frames: Buffer[]): Promise<void> {
    const v = this.#live();
    const slices = this.#spec!.slices;
    if (frames.length < 2) throw new ProtocolError('count', 'a push needs its slice ids');
    const which = ids(frames[1], slices.length, slices.length, 'slices');
    if (which.length === 0) throw new ProtocolError('slices', 'a push must name at least one slice');
    if (frames.length !== 2 + which.length) throw new ProtocolError('count', `a push of ${which.length} slices needs ${which.length} gradient frames, got ${frames.length - 2}`);
    if (basedOn !== -1 && !(Number.isSafeInteger(basedOn) && basedOn >= 0)) throw new ProtocolError('basedOn', `basedOn must be -1 or a version, got ${basedOn}`);
    const grads: Record<string, Float32Array> = Object.create(null);
    which.forEach((k, i) => {
      grads[slices[k].name] = floats(frames[2 + i], slices[k].size, `gradient[${i}]`);
    });
    while (this.#held) await this.#held.released;
    this.#inFlight++;
    try {
      const r = await v.pushAsync(grads, basedOn >= 0 ? { basedOn } : undefined);
      const status = r.applied ? Status.OK : r.reason === 'stale' ? Status.STALE : Status.SKIPPED;
      this.#reply(identity, Op.PUSH, id, status, r.version, r.staleness);
    } finally {
      if (--this.#inFlight === 0 && this.#drained) {
        this.#drained();
        this.#drained = null;
      }
    }
  }
}
