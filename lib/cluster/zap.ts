/**
 * The ZAP handler (ZeroMQ's authentication protocol, RFC 27): libzmq asks it
 * about every CURVE handshake a shard's socket takes. One per process (it
 * binds inproc://zeromq.zap.01), shared by the shards of the process: each
 * shard registers its ZAP domain with the one client key it accepts, the
 * workers' public key of its cluster key. Anything else is refused (the
 * shard counts its failed handshakes).
 */
import type { ClusterKey } from './key';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const zmq = () => require('zeromq') as typeof import('zeromq');

const domains = new Map<string, Buffer>();
let handler: import('zeromq').Reply | null = null;

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

/** Z85 (ZeroMQ RFC 32) text of 5k characters to its 4k bytes. */
export function z85Decode(text: string): Buffer {
  if (text.length % 5 !== 0) throw new Error('Z85 text must be a multiple of 5 characters');
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let v = 0;
    for (let k = 0; k < 5; k++) {
      const d = Z85.indexOf(text[i + k]);
      if (d < 0) throw new Error(`not a Z85 character: ${JSON.stringify(text[i + k])}`);
      v = v * 85 + d;
    }
    if (v > 0xffffffff) throw new Error('Z85 group out of range');
    out.writeUInt32BE(v, (i / 5) * 4);
  }
  return out;
}

export function clientKeyBytes(key: ClusterKey): Buffer {
  return z85Decode(key.clientPublic);
}

let ready: Promise<void> = Promise.resolve();

/** Registers a shard's domain; resolves once the handler is listening. */
export function zapAllow(domain: string, clientKey: Buffer): Promise<void> {
  domains.set(domain, clientKey);
  if (!handler) {
    const h = new (zmq().Reply)({ linger: 0 });
    handler = h;
    ready = bind(h).then(() => void serve(h));
  }
  return ready;
}

// receive() while the bind runs fails with EBUSY: serve only once bound. A
// handler closed a moment ago may still hold the endpoint (libzmq releases
// it on its own thread): the bind is tried again for a while.
async function bind(h: import('zeromq').Reply): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await h.bind('inproc://zeromq.zap.01');
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'EADDRINUSE' || attempt >= 100) {
        if (handler === h) handler = null;
        throw e;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

export function zapForget(domain: string): void {
  domains.delete(domain);
  if (domains.size === 0 && handler) {
    handler.close();
    handler = null;
  }
}

async function serve(sock: import('zeromq').Reply): Promise<void> {
  try {
    for await (const req of sock) {
      // version, request id, domain, address, identity, mechanism, credentials...
      const [version, requestId, domain, , , mechanism, credentials] = req;
      const d = domain ? domains.get(domain.toString()) : undefined;
      const ok = version?.toString() === '1.0' && mechanism?.toString() === 'CURVE' && d !== undefined && credentials !== undefined && credentials.equals(d);
      await sock.send([
        '1.0',
        requestId ?? Buffer.alloc(0),
        ok ? '200' : '400',
        ok ? 'OK' : 'not a key of this cluster',
        ok ? 'worker' : '',
        Buffer.alloc(0),
      ]);
    }
  } catch {
    // closed
  }
}
