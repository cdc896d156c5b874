/**
 * A worker's connection to one shard: its DEALER socket (CURVE), the
 * requests waiting for an answer, the pushes waiting for the socket, and
 * what the shard's answers and errors mean. The store that drives it
 * (remote.ts) decides when a shard is unavailable and fails it.
 */
import { ClosedError, GradvaultError, RoundTimeoutError, ShardUnavailableError, fromNative } from '../errors';
import type { ClusterKey } from './key';
import { onEvents } from './events';
import { header, json, readHeader, type Header } from './protocol';
import type { Layout } from './shards';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const zmq = () => require('zeromq') as typeof import('zeromq');

/** What a shard connection needs from its store. */
export interface ShardOwner {
  readonly timeout: number;
  nextRequest(): number;
}

/** A push's part for one shard, waiting to be sent: its result is (status, version, staleness). */
export interface QueuedPush {
  readonly basedOn: number;
  readonly frames: Buffer[];
  resolve: (r: { status: number; a: number; b: number }) => void;
  reject: (e: Error) => void;
}

interface Pending {
  resolve: (r: { h: Header; frames: Buffer[] }) => void;
  reject: (e: Error) => void;
}

export class Shard {
  sock!: import('zeromq').Dealer;
  pending = new Map<number, Pending>();
  lastHeard = Date.now();
  lastPing = 0;
  handshakes = 0;
  connects = 0;
  authFailed = false;
  version = 0;
  sending: Promise<unknown> = Promise.resolve();
  // pushes waiting for the socket: sent together (PUSHES) once the send before them is done
  queue: QueuedPush[] = [];
  flushing = false;
  constructor(
    readonly index: number,
    readonly address: string,
    readonly key: ClusterKey,
    readonly owner: ShardOwner,
  ) {
    this.open();
  }

  open(): void {
    this.sock = new (zmq().Dealer)({
      curveServerKey: this.key.serverPublic,
      curvePublicKey: this.key.clientPublic,
      curveSecretKey: this.key.clientSecret,
      linger: 0,
      reconnectInterval: 100,
      reconnectMaxInterval: 1000,
      heartbeatInterval: 1000,
      heartbeatTimeout: 3000,
    });
    const sock = this.sock;
    onEvents(sock, (type) => {
      if (type === 'handshake') {
        this.handshakes++;
        this.authFailed = false;
      } else if (type === 'handshake:error:auth') {
        this.authFailed = true;
      } else if (type === 'connect') {
        this.connects++;
      }
    });
    sock.connect(this.address);
    void this.receive(sock);
  }

  async receive(sock: import('zeromq').Dealer): Promise<void> {
    try {
      for await (const frames of sock) {
        this.lastHeard = Date.now();
        let h: Header;
        try {
          h = readHeader(frames[0], true, frames.length);
        } catch {
          continue; // not ours: dropped
        }
        // the shard's version as last heard: every reply carries it (a); this
        // is its only owner, but for a shard re-created from a checkpoint,
        // whose version the store sets back (remote.ts #call)
        if (h.a >= 0) this.version = Math.max(this.version, h.a);
        const p = this.pending.get(h.id);
        if (!p) continue;
        this.pending.delete(h.id);
        p.resolve({ h, frames: frames.slice(1) });
      }
    } catch {
      // closed
    }
  }

  request(op: number, a: number, frames: Buffer[], b = 0): Promise<{ h: Header; frames: Buffer[] }> {
    const id = this.owner.nextRequest();
    const msg = [header({ op, status: 0, id, count: frames.length, a, b }), ...frames];
    if (this.pending.size === 0) this.lastHeard = Math.max(this.lastHeard, Date.now() - this.owner.timeout / 2);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const sock = this.sock;
      this.sending = this.sending.then(() => sock.send(msg)).catch(() => undefined);
    });
  }

  /** Fails what waits on this shard and starts a fresh socket (queued requests are dropped). */
  fail(e: Error): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    this.sock.close();
    this.sending = Promise.resolve();
    this.lastHeard = Date.now();
    this.open();
    for (const p of waiting) p.reject(e);
  }

  close(): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    this.sock.close();
    for (const p of waiting) p.reject(new ClosedError('the remote store is closed'));
  }
}


export function isEmptyShard(frame: Buffer | undefined): boolean {
  try {
    const b = json(frame, 'error');
    return b.code === 'ERR_PROTOCOL' && typeof b.message === 'string' && /holds no tensors/.test(b.message);
  } catch {
    return false;
  }
}

// A shard's ERROR reply as the typed error it names; slice names become the
// user's tensor names (and indices, tensor-wide).
export function remoteError(s: Shard, frame: Buffer | undefined, lay: Layout): Error {
  let body: Record<string, unknown>;
  try {
    body = json(frame, 'error');
  } catch {
    return new ShardUnavailableError(s.index, s.address, `shard ${s.index} (${s.address}) sent an unreadable error`);
  }
  const message = typeof body.message === 'string' ? body.message : 'unknown error';
  const slice = typeof body.tensor === 'string' ? lay.byShard[s.index].find((x) => x.name === body.tensor) : undefined;
  const where = `shard ${s.index} (${s.address}): ${message}`;
  if ((body.code === 'ERR_PROTOCOL' && /holds no tensors/.test(message)) || body.code === 'ERR_SHARD_LOST') return new ShardUnavailableError(s.index, s.address, where);
  if (body.code === 'ERR_PROTOCOL') return new GradvaultError('ERR_PROTOCOL', where);
  if (body.code === 'ERR_ROUND_TIMEOUT') {
    const missing = Array.isArray(body.missing) ? body.missing.filter((x): x is number => Number.isSafeInteger(x)) : [];
    return new RoundTimeoutError(s.index, s.address, where, Number.isSafeInteger(body.round) ? (body.round as number) : 0, missing);
  }
  return fromNative({
    code: body.code,
    message: where,
    field: body.field,
    tensor: slice ? slice.tensor : body.tensor,
    index: typeof body.index === 'number' && slice ? body.index + slice.start : body.index,
  });
}

