// 65: the vault as a cluster of shards, in this process (test/66 has real
// processes). A cluster starts where one process would and, pushed the same
// gradients one at a time, ends with the same bits in every mode; versions
// and staleness are per shard; verify, nonFinite and spec mismatches behave
// as in one process; a process without the key cannot connect; malformed
// and random messages are refused, counted, and change nothing.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { MODES, ParameterServer, ParameterStore, RemoteParameterStore, RoundTimeoutError, Trainer, evaluate, generateKey, modelTensors, synthetic, type Mode, type StoreOptions } from '../lib';
import { HEADER_BYTES, MAGIC, OPS, Op, ProtocolError, header, ids, json, readHeader, floats } from '../lib/cluster/protocol';
import { layout } from '../lib/cluster/shards';
import { parseKey } from '../lib/cluster/key';
import { expectClose, expectSameBits, randoms } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const zmq = require('zeromq') as typeof import('zeromq');

jest.setTimeout(60_000);

const key = generateKey();
let servers: ParameterServer[] = [];
/** Every store a test connects, closed after it even when an assertion failed (an open socket keeps jest from exiting). */
const stores: { close(): Promise<void> }[] = [];
const connect: typeof ParameterStore.connect = async (o) => {
  const s = await ParameterStore.connect(o);
  stores.push(s);
  return s;
};
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
const serverList = () => servers;
const lastServer = () => servers[servers.length - 1];
async function shards(n: number): Promise<string[]> {
  for (let i = 0; i < n; i++) servers.push(await ParameterServer.start({ key }));
  return servers.slice(-n).map((s) => s.address);
}

const spec = (mode: Mode, optimizer: object = { kind: 'sgd', lr: 0.1 }): StoreOptions => ({
  tensors: { W: { shape: [50, 7], init: 'glorot' }, b: { shape: [7], init: 'normal', std: 0.1 }, s: { shape: [] } },
  mode,
  optimizer: optimizer as never,
  seed: 11,
});

describe('a cluster computes what one process computes', () => {
  test.each([...MODES.map((m) => [m, { kind: 'sgd', lr: 0.1 }] as const), ['locked', { kind: 'adam', lr: 0.01 }] as const, ['averaging', { kind: 'rmsprop', lr: 0.01 }] as const])(
    '%s %j: same initial values and the same bits after 30 pushes through 3 shards',
    async (mode, optimizer) => {
      const o = spec(mode as Mode, optimizer);
      const remote = await connect({ ...o, servers: await shards(3), key, sliceFloats: 64 });
      const local = new ParameterStore(o);
      expect(remote.layout.slices.length).toBeGreaterThan(3);
      let r = await remote.pull(), l = local.snapshot();
      for (const n of ['W', 'b', 's']) expectSameBits(r.get(n), l.get(n));
      for (let i = 0; i < 30; i++) {
        const g = { W: randoms(350, i), b: randoms(7, 100 + i), s: randoms(1, 200 + i) };
        const res = await remote.pushAsync(g);
        expect(res.applied).toBe(true);
        local.push(g);
      }
      local.sync();
      r = await remote.pull();
      l = local.snapshot();
      for (const n of ['W', 'b', 's']) expectSameBits(r.get(n), l.get(n));
      // each of the 3 shards counted all 30 pushes (every push touches every shard here)
      const st = await remote.stats();
      expect(st.shards.map((x) => x.pushes)).toEqual([30, 30, 30]);
      expect(st.pushes).toBe(90);
      expect(remote.version).toBe(90);
      await remote.close();
      local.close();
    },
  );
});

describe('a cluster checkpoint', () => {
  test('save() writes one file a single store loads: the same bits, optimizer state and all (adam, 3 shards)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-cluster-save-'));
    const o = spec('locked', { kind: 'adam', lr: 0.01 });
    const remote = await connect({ ...o, servers: await shards(3), key, sliceFloats: 64 });
    for (let i = 0; i < 12; i++) await remote.pushAsync({ W: randoms(350, i), b: randoms(7, 50 + i), s: randoms(1, 90 + i) });
    const file = path.join(dir, 'cluster.safetensors');
    const r = await remote.save(file);
    expect(r.version).toBe(36);
    const local = await ParameterStore.load(file);
    expect(local.mode).toBe('locked');
    expect(local.options.optimizer.kind).toBe('adam');
    expect(local.version).toBe(36);
    const pulled = await remote.pull();
    for (const n of ['W', 'b', 's']) expectSameBits(local.snapshot().get(n), pulled.get(n));
    // the optimizer state came along: both go on to the same bits
    for (let i = 0; i < 5; i++) {
      const g = { W: randoms(350, 200 + i), b: randoms(7, 300 + i), s: randoms(1, 400 + i) };
      await remote.pushAsync(g);
      local.push(g);
    }
    const after = await remote.pull();
    for (const n of ['W', 'b', 's']) expectSameBits(local.snapshot().get(n), after.get(n));
    local.close();
    await remote.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('shards started with load resume from it: their slices and state, each its own version', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-cluster-load-'));
    const o = spec('atomic', { kind: 'sgd', lr: 0.1, momentum: 0.9 });
    const first = await connect({ ...o, servers: await shards(2), key, sliceFloats: 100 });
    for (let i = 0; i < 6; i++) await first.pushAsync({ W: randoms(350, i), b: randoms(7, i) });
    await first.pushAsync({ b: randoms(7, 99) });
    const file = path.join(dir, 'c.safetensors');
    await first.save(file);
    const saved = await first.pull();
    const versions = (await first.stats()).shards.map((x) => x.version);
    await first.close();
    const again: ParameterServer[] = [await ParameterServer.start({ key, load: file }), await ParameterServer.start({ key, load: file })];
    servers.push(...again);
    const resumed = await connect({ ...o, servers: again.map((x) => x.address), key, sliceFloats: 100 });
    const back = await resumed.pull();
    for (const n of ['W', 'b', 's']) expectSameBits(back.get(n), saved.get(n));
    expect((await resumed.stats()).shards.map((x) => x.version)).toEqual(versions);
    // momentum came back too: one more push moves as it would have
    const control = await ParameterStore.load(file);
    const g = { W: randoms(350, 7), b: randoms(7, 7) };
    await resumed.pushAsync(g);
    control.push(g);
    const next = await resumed.pull();
    for (const n of ['W', 'b']) expectSameBits(next.get(n), control.snapshot().get(n));
    control.close();
    await resumed.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('synchronous mode (averaging across the network)', () => {
  const adam = { kind: 'adam', lr: 0.01 };
  const grad = (rank: number, round: number) => ({ W: randoms(350, 1000 * rank + round), b: randoms(7, 5000 + 1000 * rank + round), s: randoms(1, 9000 + 1000 * rank + round) });
  const ranks = (servers: string[], n: number, extra: object = {}) =>
    Promise.all(Array.from({ length: n }, (_, rank) => connect({ ...spec('averaging', adam), servers, key, sliceFloats: 64, rank, worldSize: n, ...extra })));

  test('3 workers x 6 rounds through 2 shards, one worker pipelining: bitwise the single averaging store fed the same pushes', async () => {
    const servers = await shards(2);
    const workers = await ranks(servers, 3);
    const rounds = 6;
    const versions: number[][] = [[], [], []];
    await Promise.all(
      workers.map(async (w, rank) => {
        if (rank === 0) {
          // two rounds in flight: the second waits for the first to close
          const all = [];
          for (let i = 0; i < rounds; i++) all.push(w.pushAsync(grad(rank, i)).then((r) => versions[rank].push(r.version)));
          await Promise.all(all);
        } else for (let i = 0; i < rounds; i++) versions[rank].push((await w.pushAsync(grad(rank, i))).version);
      }),
    );
    const local = new ParameterStore({ ...spec('averaging', adam), syncEvery: 3 });
    for (let i = 0; i < rounds; i++) for (const rank of [2, 0, 1]) local.push(grad(rank, i));
    expect(local.stats().rounds).toBe(rounds);
    const r = await workers[1].pull(), l = local.snapshot();
    for (const n of ['W', 'b', 's']) expectSameBits(r.get(n), l.get(n));
    // a push is answered when its round closed: every worker saw each round's version
    const perRound = Array.from({ length: rounds }, (_, i) => 2 * 3 * (i + 1));
    for (const v of versions) expect([...v].sort((a, b) => a - b)).toEqual(perRound);
    const st = await workers[0].stats();
    expect(st.rounds).toBe(2 * rounds);
    expect(st.pending).toBe(0);
    local.close();
  });

  test('a missing worker: the round ends after roundTimeout with RoundTimeoutError naming it; the round was applied with what arrived', async () => {
    const servers = await shards(2);
    const [w0] = await ranks(servers, 2, { roundTimeout: 300 });
    const t0 = Date.now();
    const e = await w0.pushAsync(grad(0, 0)).catch((x) => x);
    expect(e).toBeInstanceOf(RoundTimeoutError);
    expect(e).toMatchObject({ code: 'ERR_ROUND_TIMEOUT', round: 1, missing: [1] });
    expect(e.message).toMatch(/round 1 waited 300 ms for rank 1 of 2: it was applied with the 1 push that arrived/);
    expect(Date.now() - t0).toBeLessThan(300 + 1000);
    const local = new ParameterStore({ ...spec('averaging', adam), syncEvery: 2 });
    local.push(grad(0, 0));
    local.sync();
    expectSameBits((await w0.pull()).get('W'), local.snapshot().get('W'));
    // the worker that was missing joins the next round, which closes as usual
    const w1 = await connect({ ...spec('averaging', adam), servers, key, sliceFloats: 64, rank: 1, worldSize: 2, roundTimeout: 300 });
    await Promise.all([w0.pushAsync(grad(0, 1)), w1.pushAsync(grad(1, 1))]);
    local.push(grad(0, 1));
    local.push(grad(1, 1));
    expectSameBits((await w1.pull()).get('W'), local.snapshot().get('W'));
    local.close();
  });

  test('save() cuts at a round boundary while another worker waits in the next round; a single store loads it', async () => {
    const servers = await shards(2);
    const [w0, w1] = await ranks(servers, 2);
    const local = new ParameterStore({ ...spec('averaging', adam), syncEvery: 2 });
    for (let i = 0; i < 3; i++) {
      await Promise.all([w0.pushAsync(grad(0, i)), w1.pushAsync(grad(1, i))]);
      local.push(grad(0, i));
      local.push(grad(1, i));
    }
    const atThree = local.snapshot();
    // worker 1 is already in round 4, waiting for worker 0, who saves first
    const waiting = w1.pushAsync(grad(1, 3));
    await new Promise((r) => setTimeout(r, 50));
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gv-sync-')), 'sync.safetensors');
    const saved = await w0.save(file);
    expect(saved.version).toBe(2 * 2 * 3); // 3 rounds of 2 pushes on each of 2 shards; round 4's push left out
    const back = await ParameterStore.load(file);
    for (const n of ['W', 'b', 's']) expectSameBits(back.snapshot().get(n), atThree.get(n));
    expect(back.stats().pending).toBe(0);
    back.close();
    // the held round goes on
    await Promise.all([w0.pushAsync(grad(0, 3)), waiting]);
    local.push(grad(0, 3));
    local.push(grad(1, 3));
    expectSameBits((await w0.pull()).get('W'), local.snapshot().get('W'));
    local.close();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  test('hostile pushes in synchronous mode: a rank out of range, a fractional rank, a bad hold target, a NaN the shard skips: refused, and the round unharmed', async () => {
    const servers = await shards(1);
    const [w0, w1] = await ranks(servers, 2, { nonFinite: 'skip', sliceFloats: 1 << 20 });
    const k = parseKey(key);
    const d = new zmq.Dealer({ curveServerKey: k.serverPublic, curvePublicKey: k.clientPublic, curveSecretKey: k.clientSecret, linger: 0, receiveTimeout: 3000 });
    d.connect(servers[0]);
    const n = w0.layout.byShard[0].length;
    const ids = Buffer.from(new Uint32Array(Array.from({ length: n }, (_, i) => i)).buffer);
    const frames = (fill: number) => w0.layout.byShard[0].map((x) => Buffer.from(new Float32Array(x.size).fill(fill).buffer));
    const send = async (h: Buffer, rest: Buffer[]) => {
      await d.send([h, ...rest]);
      const [hh, body] = await d.receive();
      return { h: readHeader(hh, true, body ? 2 : 1), body: body ? json(body, 'reply') : null };
    };
    for (const rank of [2, -1, 0.5]) {
      const r = await send(header({ op: Op.PUSH, status: 0, id: 9, count: 1 + n, a: -1, b: rank }), [ids, ...frames(1)]);
      expect([rank, r.h.status, r.body!.code, r.body!.field]).toEqual([rank, 3, 'ERR_PROTOCOL', 'rank']);
    }
    const bad = await send(header({ op: Op.HOLD, status: 0, id: 10, count: 0, a: 1000, b: 1.5 }), []);
    expect([bad.h.status, bad.body!.field]).toEqual([3, 'target']);
    // a NaN as rank 1's push: skipped by the shard, it takes no slot in the round
    const nan = await send(header({ op: Op.PUSH, status: 0, id: 11, count: 1 + n, a: -1, b: 1 }), [ids, ...frames(NaN)]);
    expect(nan.h.status).toBe(2);
    // the round still needs rank 1 and closes with the two real pushes
    await Promise.all([w0.pushAsync(grad(0, 0)), w1.pushAsync(grad(1, 0))]);
    const local = new ParameterStore({ ...spec('averaging', adam), syncEvery: 2 });
    local.push(grad(0, 0));
    local.push(grad(1, 0));
    expectSameBits((await w0.pull()).get('W'), local.snapshot().get('W'));
    expect(lastServer().stats().round).toEqual({ number: 2, ranks: [] });
    d.close();
    local.close();
  });

  test('settings are checked: rank, worldSize, syncEvery, roundTimeout, whole gradients, one world size per cluster', async () => {
    const servers = await shards(2);
    const o = { ...spec('averaging', adam), servers, key };
    await expect(connect({ ...o, rank: 2, worldSize: 2 })).rejects.toMatchObject({ name: 'ConfigError', path: 'rank' });
    await expect(connect({ ...o, worldSize: 0 })).rejects.toMatchObject({ name: 'ConfigError', path: 'worldSize' });
    await expect(connect({ ...o, worldSize: 2, syncEvery: 4 })).rejects.toMatchObject({ name: 'ConfigError', path: 'syncEvery' });
    await expect(connect({ ...spec('atomic'), servers, key, roundTimeout: 100 })).rejects.toMatchObject({ name: 'ConfigError', path: 'roundTimeout' });
    const w = await connect({ ...o, worldSize: 2 });
    await expect(w.pushAsync({ W: randoms(350, 1) })).rejects.toMatchObject({ name: 'InvalidArgumentError', field: 'grads', message: expect.stringMatching(/whole gradients: this push has no 'b', 's'/) });
    await expect(connect({ ...o, worldSize: 3 })).rejects.toMatchObject({ name: 'ConfigError' });
    // the rank from the environment, as a launcher sets it
    process.env.GRADVAULT_RANK = '1';
    process.env.GRADVAULT_WORLD_SIZE = '2';
    try {
      const e = await connect(o);
      expect([e.rank, e.worldSize]).toEqual([1, 2]);
    } finally {
      delete process.env.GRADVAULT_RANK;
      delete process.env.GRADVAULT_WORLD_SIZE;
    }
  });
});

describe('versions and staleness across shards', () => {
  test('a push based on an old snapshot reports the pushes since, per shard (the largest)', async () => {
    const remote = await connect({ ...spec('atomic'), servers: await shards(2), key, sliceFloats: 100 });
    const old = await remote.pull();
    expect(old.version).toBe(0);
    for (let i = 0; i < 4; i++) await remote.pushAsync({ W: randoms(350, i) });
    await remote.pushAsync({ b: randoms(7, 9) }); // one shard only
    const r = await remote.pushAsync({ W: randoms(350, 1), b: randoms(7, 1) }, { basedOn: old });
    expect(r.staleness).toBe(5); // the shard holding b saw 4 + 1 pushes
    const fresh = await remote.pull();
    expect((await remote.pushAsync({ b: randoms(7, 2) }, { basedOn: fresh })).staleness).toBe(0);
    const st = await remote.stats();
    expect(st.staleness.count).toBeGreaterThanOrEqual(2);
    expect(st.staleness.max).toBe(5);
    // a plain version number means nothing across several shards
    await expect(remote.pushAsync({ b: randoms(7, 2) }, { basedOn: 3 })).rejects.toMatchObject({ name: 'InvalidArgumentError', field: 'basedOn' });
    await remote.close();
  });

  test("staleness 'reject' needs one shard (it would refuse on one and apply on another)", async () => {
    const servers2 = await shards(2);
    await expect(
      connect({ ...spec('atomic'), staleness: { policy: 'reject', bound: 2 }, servers: servers2, key }),
    ).rejects.toMatchObject({ name: 'ConfigError', path: 'staleness' });
    const one = await connect({ ...spec('atomic'), staleness: { policy: 'reject', bound: 1 }, servers: [servers2[0]], key });
    const s0 = await one.pull();
    await one.pushAsync({ b: randoms(7, 1) });
    await one.pushAsync({ b: randoms(7, 1) });
    const r = await one.pushAsync({ b: randoms(7, 1) }, { basedOn: s0 });
    expect(r).toMatchObject({ applied: false, reason: 'stale', staleness: 2 });
    await one.close();
  });

  test('verify: a pulled snapshot modified in place is caught before its push', async () => {
    const remote = await connect({ ...spec('locked'), verify: true, servers: await shards(2), key });
    const s = await remote.pull();
    s.get('W')[3] += 1;
    await expect(remote.pushAsync({ W: randoms(350, 1) }, { basedOn: s })).rejects.toMatchObject({ name: 'InPlaceModificationError', tensor: 'W' });
    expect((await remote.stats()).pushes).toBe(0);
    await remote.close();
  });

  test('NaN: refused before any shard sees a part (reject), or skipped and counted (skip)', async () => {
    const addrs = await shards(2);
    const remote = await connect({ ...spec('atomic'), servers: addrs, key, sliceFloats: 50 });
    const before = await remote.pull();
    const g = randoms(350, 3);
    g[301] = NaN;
    await expect(remote.pushAsync({ W: g, b: randoms(7, 1) })).rejects.toMatchObject({ name: 'NonFiniteGradientError', tensor: 'W', index: 301 });
    const after = await remote.pull();
    expectSameBits(after.get('W'), before.get('W'));
    expectSameBits(after.get('b'), before.get('b'));
    await remote.close();
    for (const s of servers) await s.close();
    servers = [];
    const skip = await connect({ ...spec('atomic'), nonFinite: 'skip', servers: await shards(2), key });
    expect(await skip.pushAsync({ W: g })).toMatchObject({ applied: false, reason: 'nonFinite' });
    expect((await skip.stats()).skippedNonFinite).toBe(1);
    await skip.close();
  });
});

describe('joining a cluster', () => {
  test('a second worker with the same spec shares the tensors; another spec is a ConfigError', async () => {
    const addrs = await shards(2);
    const a = await connect({ ...spec('atomic'), servers: addrs, key });
    await a.pushAsync({ b: new Float32Array(7).fill(1) });
    const b = await connect({ ...spec('atomic'), servers: addrs, key });
    expect(Array.from((await b.pull()).get('b'))).toEqual(Array.from((await a.pull()).get('b')));
    await expect(connect({ ...spec('atomic'), tensors: { W: { shape: [50, 8] } }, servers: addrs, key })).rejects.toMatchObject({
      name: 'ConfigError',
      message: expect.stringContaining('another spec'),
    });
    await expect(connect({ ...spec('locked'), servers: addrs, key })).rejects.toMatchObject({ name: 'ConfigError' });
    await a.close();
    await b.close();
  });

  test('options are checked before anything is sent', async () => {
    const addrs = await shards(1);
    await expect(connect({ ...spec('atomic'), servers: [], key })).rejects.toMatchObject({ name: 'ConfigError', path: 'servers' });
    await expect(connect({ ...spec('atomic'), servers: ['http://x'], key })).rejects.toMatchObject({ name: 'ConfigError', path: 'servers' });
    await expect(connect({ ...spec('atomic'), servers: addrs, key: 'nope' })).rejects.toMatchObject({ name: 'ConfigError', path: 'key' });
    await expect(connect({ ...spec('atomic'), servers: addrs, key, timeout: 1 })).rejects.toMatchObject({ name: 'ConfigError', path: 'timeout' });
    await expect(connect({ ...spec('atomic'), optimizer: { kind: 'sgd', lr: -1 }, servers: addrs, key })).rejects.toMatchObject({
      name: 'ConfigError',
      path: 'optimizer.lr',
    });
    expect(servers[0].stats().requests).toBe(0);
  });
});

describe('only holders of the key', () => {
  test('another cluster key: AuthenticationError within the timeout; the shard counts the refusal', async () => {
    const addrs = await shards(1);
    const t0 = Date.now();
    const e = await connect({ ...spec('atomic'), servers: addrs, key: generateKey(), timeout: 300 }).catch((x) => x);
    expect(e).toMatchObject({ name: 'AuthenticationError', code: 'ERR_AUTHENTICATION', shard: 0, address: addrs[0] });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(servers[0].stats().refused.auth).toBeGreaterThan(0);
    expect(servers[0].stats().requests).toBe(0);
  });

  test('the right shard key but another client key (ZAP) is refused too', async () => {
    const addrs = await shards(1);
    const k = parseKey(key), other = parseKey(generateKey());
    const mixed = ['gvkey1', k.serverPublic, k.serverSecret, other.clientPublic, other.clientSecret].join(':');
    const e = await connect({ ...spec('atomic'), servers: addrs, key: mixed, timeout: 300 }).catch((x) => x);
    expect(e).toMatchObject({ name: 'AuthenticationError' });
    expect(servers[0].stats().requests).toBe(0);
  });

  test('a client without CURVE, and raw bytes on the port (a length claiming gigabytes): refused, the shard lives on', async () => {
    const addrs = await shards(1);
    const remote = await connect({ ...spec('atomic'), servers: addrs, key });
    const before = await remote.pull();
    const requests = servers[0].stats().requests;
    const plain = new zmq.Dealer({ linger: 0, sendTimeout: 500, receiveTimeout: 500 });
    plain.connect(addrs[0]);
    await plain.send([header({ op: Op.PULL, status: 0, id: 1, count: 0, a: -1, b: 0 })]).catch(() => undefined);
    await expect(plain.receive()).rejects.toThrow(); // no answer: the handshake never completed
    const port = Number(addrs[0].split(':').pop());
    const junk = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      // a ZMTP 3 greeting, then a long frame announcing 2^62 bytes
      Buffer.concat([Buffer.from([0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0]), Buffer.from('CURVE'), Buffer.alloc(15), Buffer.alloc(32), Buffer.from([0x06, 0x40, 0, 0, 0, 0, 0, 0, 0])]),
      Buffer.alloc(100_000, 0xa5),
    ];
    for (const bytes of junk)
      await new Promise<void>((resolve) => {
        const c = net.connect(port, '127.0.0.1', () => c.write(bytes));
        // the shard may wait for more bytes or drop the connection: either way, hang up after a while
        const t = setTimeout(() => c.destroy(), 500);
        c.on('error', () => undefined);
        c.on('close', () => {
          clearTimeout(t);
          resolve();
        });
      });
    await new Promise((r) => setTimeout(r, 300));
    plain.close();
    expect(servers[0].stats().requests).toBe(requests); // nothing got through
    const after = await remote.pull();
    expectSameBits(after.get('W'), before.get('W'));
    expect(servers[0].stats().refused.auth).toBeGreaterThan(0);
    await remote.close();
  });
});

describe('hostile messages from a client with the key', () => {
  async function rawClient(address: string) {
    const k = parseKey(key);
    const d = new zmq.Dealer({ curveServerKey: k.serverPublic, curvePublicKey: k.clientPublic, curveSecretKey: k.clientSecret, linger: 0, receiveTimeout: 3000 });
    d.connect(address);
    return d;
  }
  const H = (op: number, count: number, a = -1, id = 7) => header({ op, status: 0, id, count, a, b: 0 });

  test('each malformed message is refused, counted and answered; the vault is unchanged', async () => {
    const addrs = await shards(1);
    const remote = await connect({ ...spec('atomic'), servers: addrs, key });
    const before = await remote.pull();
    const d = await rawClient(addrs[0]);
    const n = remote.layout.byShard[0].length;
    const u32 = (...xs: number[]) => Buffer.from(new Uint32Array(xs).buffer);
    const f64 = (...xs: number[]) => Buffer.from(new Float64Array(xs).buffer);
    const bad: [string, Buffer[]][] = [
      ['short header', [Buffer.alloc(10)]],
      ['bad magic', [Buffer.alloc(HEADER_BYTES)]],
      ['reserved bits', [(() => { const h = H(Op.PING, 0); h[6] = 1; return h; })()]],
      ['unknown op', [(() => { const h = H(Op.PING, 0); h[4] = 99; return h; })()]],
      ['a reply as a request', [(() => { const h = H(Op.PING, 0); h[4] |= 0x80; return h; })()]],
      ['count mismatch', [H(Op.PULL, 3)]],
      ['push without ids', [H(Op.PUSH, 0)]],
      ['push of a slice id out of range', [H(Op.PUSH, 2), u32(n + 5), Buffer.alloc(8)]],
      ['push of ids not ascending', [H(Op.PUSH, 3), u32(1, 0), Buffer.alloc(4), Buffer.alloc(4)]],
      ['push of a short gradient', [H(Op.PUSH, 2), u32(0), Buffer.alloc(12)]],
      ['push whose ids frame has 3 bytes', [H(Op.PUSH, 2), Buffer.alloc(3), Buffer.alloc(4)]],
      ['push based on a fractional version', [H(Op.PUSH, 2, 1.5), u32(0), Buffer.alloc(remote.layout.byShard[0][0].size * 4)]],
      ['a batch of no pushes', [H(Op.PUSHES, 2), Buffer.alloc(0), Buffer.alloc(0)]],
      ['a batch whose bases are short', [H(Op.PUSHES, 4), u32(1), Buffer.alloc(4), u32(0), Buffer.alloc(remote.layout.byShard[0][0].size * 4)]],
      ['a batch naming more slices than the shard has', [H(Op.PUSHES, 3), u32(n + 1), f64(-1), u32(0)]],
      ['a batch ending inside a push', [H(Op.PUSHES, 4), u32(2), f64(-1), u32(0, 1), Buffer.alloc(remote.layout.byShard[0][0].size * 4)]],
      ['a batch with frames after its last push', [H(Op.PUSHES, 5), u32(1), f64(-1), u32(0), Buffer.alloc(remote.layout.byShard[0][0].size * 4), Buffer.alloc(4)]],
      ['a batch whose second push is malformed (nothing applied)', [H(Op.PUSHES, 6), u32(1, 1), f64(-1, -1), u32(0), Buffer.alloc(remote.layout.byShard[0][0].size * 4), u32(0), Buffer.alloc(4)]],
      ['create with no spec', [H(Op.CREATE, 0)]],
      ['create with a spec that is not JSON', [H(Op.CREATE, 1), Buffer.from('{nope')]],
      ['create with a JSON array', [H(Op.CREATE, 1), Buffer.from('[1,2]')]],
    ];
    const header0 = await (async () => {
      const answers: string[] = [];
      for (const [what, frames] of bad) {
        await d.send(frames);
        // a message that names a request of a known op is answered; the rest are only dropped
        if (frames[0].length === HEADER_BYTES && frames[0].readUInt32LE(0) === MAGIC && OPS.has(frames[0][4] & 0x7f)) {
          const [h, body] = await d.receive();
          const r = readHeader(h, true, 2);
          expect([what, r.status]).toEqual([what, 3]);
          answers.push(`${what}: ${json(body, 'error').code}`);
        }
      }
      return answers;
    })();
    expect(header0.length).toBeGreaterThan(8);
    expect(header0.every((a) => /ERR_PROTOCOL/.test(a))).toBe(true);
    const st = servers[0].stats();
    expect(st.refused.protocol).toBe(bad.length);
    const after = await remote.pull();
    for (const t of ['W', 'b', 's']) expectSameBits(after.get(t), before.get(t));
    expect((await remote.stats()).pushes).toBe(0);
    d.close();
    await remote.close();
  });

  test('random messages (generated): never a crash, never a change; the shard answers afterwards', async () => {
    const addrs = await shards(1);
    const remote = await connect({ ...spec('locked'), servers: addrs, key, sliceFloats: 100 });
    const before = await remote.pull();
    const d = await rawClient(addrs[0]);
    const frame = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constant(new Uint8Array(0)));
    const message = fc.tuple(fc.constantFrom(1, 2, 3, 4, 5, 99), fc.array(frame, { maxLength: 4 }), fc.boolean(), fc.double()).map(([op, rest, honest, a]) => {
      const h = header({ op: op % 256, status: 0, id: 1, count: honest ? rest.length : rest.length + 1, a: Number.isFinite(a) ? a : 0, b: 0 });
      return [h, ...rest.map((x) => Buffer.from(x))];
    });
    await fc.assert(
      fc.asyncProperty(message, async (frames) => {
        await d.send(frames);
      }),
      { numRuns: 300, seed: 42 },
    );
    await new Promise((r) => setTimeout(r, 300));
    const after = await remote.pull();
    for (const t of ['W', 'b', 's']) expectSameBits(after.get(t), before.get(t));
    expect(servers[0].stats().refused.protocol).toBeGreaterThan(0);
    d.close();
    await remote.close();
  });
});

describe('the decoder alone', () => {
  test('any bytes: a header or ProtocolError, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.boolean(), fc.nat(5), (bytes, reply, n) => {
        try {
          readHeader(Buffer.from(bytes), reply, n);
        } catch (e) {
          if (!(e instanceof ProtocolError)) throw e;
        }
        for (const f of [() => ids(Buffer.from(bytes), 8, 4, 'ids'), () => floats(Buffer.from(bytes), 3, 'g'), () => json(Buffer.from(bytes), 'doc')])
          try {
            f();
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
          }
      }),
      { numRuns: 2000, seed: 7 },
    );
  });
});

describe('sharding', () => {
  test('slices are whole rows of bounded size, spread so no shard holds much more than another', () => {
    const tensors = [
      { name: 'W1', shape: [784, 128], size: 784 * 128 },
      { name: 'b1', shape: [128], size: 128 },
      { name: 'W2', shape: [128, 10], size: 1280 },
      { name: 'b2', shape: [10], size: 10 },
    ];
    const l = layout(tensors, 3, 4096);
    for (const s of l.slices) {
      const t = tensors.find((x) => x.name === s.tensor)!;
      const width = t.shape.length > 1 ? t.shape[1] : 1;
      expect(s.size).toBeLessThanOrEqual(4096);
      expect(s.start % width).toBe(0);
    }
    for (const t of tensors) expect(l.slices.filter((s) => s.tensor === t.name).reduce((a, s) => a + s.size, 0)).toBe(t.size);
    // largest first to the emptiest shard: no shard holds more than one slice above another
    expect(Math.max(...l.floats) - Math.min(...l.floats)).toBeLessThanOrEqual(Math.max(...l.slices.map((s) => s.size)));
    expect(layout(tensors, 3, 4096)).toEqual(l); // every worker computes the same one
  });

  test('a shard holds only its slices: bytes per shard follow the layout', async () => {
    const remote = await connect({
      tensors: { big: { shape: [1000, 10] }, small: { shape: [10] } },
      servers: await shards(2),
      key,
      sliceFloats: 1000,
    });
    const st = await remote.stats();
    expect(st.shards.map((s) => s.floats)).toEqual([...remote.layout.floats]);
    expect(Math.abs(st.shards[0].floats - st.shards[1].floats)).toBeLessThanOrEqual(1000);
    expect(remote).toBeInstanceOf(RemoteParameterStore);
    await remote.close();
  });
});

describe('a remote trainer (local replica, synced every syncEvery batches)', () => {
  const blobs = synthetic('blobs', { rows: 4000, features: 12, classes: 4, seed: 5 });
  const [train, held] = blobs.split(0.75);
  const softmax = (mode: Mode): StoreOptions => ({ tensors: modelTensors({ model: 'softmax' }, train), mode, optimizer: { kind: 'sgd', lr: 0.05 }, seed: 3 });

  test('trains the cluster: accuracy, a push to every shard per sync, progress events that report the syncs', async () => {
    const remote = await connect({ ...softmax('atomic'), servers: await shards(2), key, sliceFloats: 16 });
    const trainer = new Trainer(remote, { model: 'softmax', threads: 2, epochs: 2, batchSize: 16, syncEvery: 4 });
    expect(trainer.store).toBe(remote);
    const events = [];
    const it = trainer.run(train);
    let step = await it.next();
    for (; !step.done; step = await it.next()) events.push(step.value);
    const result = step.value;
    expect(events).toHaveLength(2);
    for (const e of events) expect(e.cluster).toEqual({ syncs: expect.any(Number), version: expect.any(Number), staleness: { mean: expect.any(Number), max: expect.any(Number) } });
    const acc = evaluate(await remote.pull(), 'softmax', held).accuracy!;
    expect(acc).toBeGreaterThan(0.9);
    const st = await remote.stats();
    // each sync pushed every tensor once: every shard counted it, and the last sync came after the last event
    expect(result.cluster!.syncs).toBeGreaterThan(0);
    expect(result.cluster!.syncs).toBeGreaterThanOrEqual(events[1].cluster!.syncs);
    expect(st.shards.map((s) => s.pushes)).toEqual([result.cluster!.syncs, result.cluster!.syncs]);
    expect(result.cluster!.version).toBe(2 * result.cluster!.syncs);
  });

  test('one worker, one thread, sgd at the cluster\'s rate: the cluster ends where a local run of the same trainer ends (nothing lost in the syncs)', async () => {
    const o = softmax('locked');
    const remote = await connect({ ...o, servers: await shards(2), key, sliceFloats: 16 });
    const r = await new Trainer(remote, { model: 'softmax', threads: 1, epochs: 30, batchSize: 1, seed: 9, syncEvery: 5 }).fit(train);
    expect(r.cluster!.syncs).toBeGreaterThan(1); // syncs while the thread trained, not only the last
    const local = new ParameterStore(o);
    await new Trainer(local, { model: 'softmax', threads: 1, epochs: 30, batchSize: 1, seed: 9 }).fit(train);
    const got = await remote.pull(), want = local.snapshot();
    // the same steps; the syncs round each delta twice (divide by lr, add back)
    for (const n of ['W', 'b']) expectClose(got.get(n), want.get(n), 1e-4, 1e-5);
    local.close();
  });

  test('synchronous mode: two workers with equal shares make the same number of syncs, one round each', async () => {
    const servers = await shards(2);
    const half = Math.floor(train.rows / 2);
    const stores = await Promise.all([0, 1].map((rank) => connect({ ...softmax('averaging'), servers, key, sliceFloats: 16, rank, worldSize: 2 })));
    const results = await Promise.all(stores.map((s, rank) => new Trainer(s, { model: 'softmax', threads: 1, epochs: 2, batchSize: 16, seed: rank, syncEvery: 10 }).fit(train.slice(rank * half, (rank + 1) * half))));
    const syncs = results.map((r) => r.cluster!.syncs);
    expect(syncs[0]).toBe(Math.ceil((2 * Math.ceil(half / 16)) / 10));
    expect(syncs[1]).toBe(syncs[0]);
    const st = await stores[0].stats();
    expect(st.shards.map((s) => s.pushes)).toEqual([2 * syncs[0], 2 * syncs[0]]);
    expect(st.rounds).toBe(2 * syncs[0]);
    expect(evaluate(await stores[1].pull(), 'softmax', held).accuracy!).toBeGreaterThan(0.9);
  });

  test('a shard that dies mid-run: the run rejects with ShardUnavailableError and the threads stop (no hang)', async () => {
    const servers = await shards(2);
    const remote = await connect({ ...softmax('atomic'), servers, key, sliceFloats: 16, timeout: 300 });
    const big = synthetic('blobs', { rows: 200_000, features: 12, classes: 4, seed: 6 });
    const trainer = new Trainer(remote, { model: 'softmax', threads: 2, epochs: 50, batchSize: 1, syncEvery: 50 });
    const running = trainer.fit(big);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await serverList()[1].close();
    await expect(running).rejects.toMatchObject({ name: 'ShardUnavailableError', shard: 1 });
    expect(Date.now() - t0).toBeLessThan(300 + 2000);
    expect(trainer.running).toBe(false);
  });

  test('options: syncEvery checked, the store\'s settings refused, an abort signal stops the run', async () => {
    const remote = await connect({ ...softmax('atomic'), servers: await shards(1), key });
    expect(() => new Trainer(remote, { model: 'softmax', syncEvery: 0 })).toThrow(expect.objectContaining({ name: 'ConfigError', path: 'syncEvery' }));
    expect(() => new Trainer(remote, { model: 'softmax', mode: 'atomic' } as never)).toThrow(expect.objectContaining({ name: 'ConfigError', path: 'mode' }));
    expect(new Trainer(remote, { model: 'softmax' }).options).toMatchObject({ model: 'softmax' });
    const ac = new AbortController();
    const big = synthetic('blobs', { rows: 200_000, features: 12, classes: 4, seed: 6 });
    const running = new Trainer(remote, { model: 'softmax', threads: 1, epochs: 50, batchSize: 1 }).fit(big, { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
    // what the replica learned before the abort reached the cluster or not: the cluster still answers
    expect((await remote.pull()).get('W').length).toBe(48);
  });
});

describe('small pushes in flight go together (PUSHES)', () => {
  test('200 pushes issued at once: each its own version, exact sums, far fewer messages than pushes', async () => {
    const addrs = await shards(1);
    const remote = await connect({ tensors: { w: { shape: [16] } }, mode: 'locked', optimizer: { kind: 'sgd', lr: 1 }, servers: addrs, key });
    const g = (i: number) => ({ w: new Float32Array(16).fill((i % 7) + 1) });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => remote.pushAsync(g(i))));
    expect(results.every((r) => r.applied)).toBe(true);
    expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    let sum = 0;
    for (let i = 0; i < 200; i++) sum += (i % 7) + 1;
    expect([...(await remote.pull()).get('w')]).toEqual(new Array(16).fill(-sum));
    const st = servers[0].stats();
    expect(st.requests).toBeLessThan(100); // the create, the pull, and the batches
    expect((await remote.stats()).pushes).toBe(200);
  });

  test('a batch with one bad push: the others are applied, that one fails with its typed error', async () => {
    const addrs = await shards(1);
    const remote = await connect({ tensors: { w: { shape: [4] } }, mode: 'atomic', optimizer: { kind: 'sgd', lr: 1 }, servers: addrs, key });
    const k = parseKey(key);
    const d = new zmq.Dealer({ curveServerKey: k.serverPublic, curvePublicKey: k.clientPublic, curveSecretKey: k.clientSecret, linger: 0, receiveTimeout: 3000 });
    d.connect(addrs[0]);
    const one = (x: number) => Buffer.from(new Float32Array(4).fill(x).buffer);
    const u32 = (...xs: number[]) => Buffer.from(new Uint32Array(xs).buffer);
    const f64 = (...xs: number[]) => Buffer.from(new Float64Array(xs).buffer);
    await d.send([header({ op: Op.PUSHES, status: 0, id: 5, count: 8, a: -1, b: 0 }), u32(1, 1, 1), f64(-1, -1, -1), u32(0), one(1), u32(0), one(NaN), u32(0), one(2)]);
    const [h, results, errs] = await d.receive();
    expect(readHeader(h, true, 3).status).toBe(0);
    expect([0, 1, 2].map((i) => results.readDoubleLE(i * 24))).toEqual([0, 3, 0]);
    const errors = json(errs, 'errors').errors as ({ code: string } | null)[];
    expect(errors[1]).toMatchObject({ code: 'ERR_NON_FINITE' });
    expect([...(await remote.pull()).get('w')]).toEqual([-3, -3, -3, -3]);
    d.close();
  });
});
