// 66: the cluster with real processes on this machine: shards run as
// `gradvault server` processes, workers as separate Node processes. In every
// safe mode, W workers x T pushes in flight x N pushes through S shards lose
// nothing (exact sums); a shard killed with SIGKILL fails every pending and
// later call with ShardUnavailableError within the stated bound, never a
// hang, and the other workers and shards are not affected.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ParameterStore, Trainer, evaluate, generateKey, modelTensors, synthetic, type Mode } from '../lib';
import { SAFE_MODES } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { clusterSpec, expected, gradient } = require('./harness/cluster-common');

jest.setTimeout(120_000);

const root = path.join(__dirname, '..');
const cli = path.join(root, 'dist', 'cli.js');
let dir: string;
let keyFile: string;
const procs: ChildProcess[] = [];
/** Every store a test connects, closed after it even when an assertion failed (an open socket keeps jest from exiting). */
const stores: { close(): Promise<void> }[] = [];
const connect: typeof ParameterStore.connect = async (o) => {
  const s = await ParameterStore.connect(o);
  stores.push(s);
  return s;
};

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-cluster-'));
  keyFile = path.join(dir, 'cluster.key');
  fs.writeFileSync(keyFile, generateKey(), { mode: 0o600 });
  process.env.GRADVAULT_KEY_FILE = keyFile;
});
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});
afterAll(() => {
  delete process.env.GRADVAULT_KEY_FILE;
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A `gradvault server` process; resolves with its address once it listens. */
function shard(listen = 'tcp://127.0.0.1:0'): Promise<{ proc: ChildProcess; address: string }> {
  const proc = spawn(process.execPath, [cli, 'server', '--listen', listen, '--key-file', keyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  return new Promise((resolve, reject) => {
    let out = '', err = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve({ proc, address: m[1] });
    });
    proc.stderr!.on('data', (d) => (err += d));
    proc.on('exit', (code) => reject(new Error(`shard exited (${code}) before listening: ${err}`)));
  });
}

function worker(servers: string[], o: { mode: Mode; rank: number; pushes: number; inflight: number; optimizer?: object }, world = 2): Promise<{ rank: number; applied: number }> {
  const proc = spawn(process.execPath, [path.join(__dirname, 'harness', 'cluster-worker.js'), JSON.stringify(o)], {
    env: { ...process.env, GRADVAULT_SERVERS: servers.join(','), GRADVAULT_KEY_FILE: keyFile, GRADVAULT_RANK: String(o.rank), GRADVAULT_WORLD_SIZE: String(world) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(proc);
  return new Promise((resolve, reject) => {
    let out = '', err = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (err += d));
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`worker ${o.rank} exited ${code}: ${err}`))));
  });
}

describe('exact sums: 2 worker processes x 8 pushes in flight x 300 pushes through 2 shard processes', () => {
  test.each(SAFE_MODES)('%s: zero lost updates', async (mode) => {
    const shards = await Promise.all([shard(), shard()]);
    const servers = shards.map((s) => s.address);
    const results = await Promise.all([0, 1].map((rank) => worker(servers, { mode, rank, pushes: 300, inflight: 8 })));
    expect(results.map((r) => r.applied)).toEqual([300, 300]);
    // averaging: synchronous rounds of one push per worker, each applying their mean
    const sync = mode === 'averaging';
    const store = await connect({ ...clusterSpec(mode), servers, ...(sync ? { worldSize: 2 } : {}) });
    const snap = await store.pull();
    const sum = expected(2, 300);
    const want = sync ? { W: sum.W.map((x: number) => x / 2), b: sum.b.map((x: number) => x / 2) } : sum;
    let wrongW = 0, wrongB = 0;
    snap.get('W').forEach((v, k) => (wrongW += v === want.W[k] ? 0 : 1));
    snap.get('b').forEach((v, k) => (wrongB += v === want.b[k] ? 0 : 1));
    expect([wrongW, wrongB]).toEqual([0, 0]);
    const st = await store.stats();
    expect(st.shards.map((s) => s.pushes)).toEqual([600, 600]);
    expect(store.version).toBe(1200);
    await store.close();
  });
});

describe('synchronous mode: 3 worker processes x 40 rounds through 2 shard processes', () => {
  test('bitwise the single-process averaging store fed the same pushes (adam, 4 pushes in flight per worker)', async () => {
    const shards = await Promise.all([shard(), shard()]);
    const servers = shards.map((s) => s.address);
    const optimizer = { kind: 'adam', lr: 0.01 };
    const results = await Promise.all([0, 1, 2].map((rank) => worker(servers, { mode: 'averaging', rank, pushes: 40, inflight: 4, optimizer }, 3)));
    expect(results.map((r) => r.applied)).toEqual([40, 40, 40]);
    const { sliceFloats: _, ...one } = clusterSpec('averaging');
    const local = new ParameterStore({ ...one, optimizer, syncEvery: 3 });
    for (let i = 0; i < 40; i++) for (const rank of [0, 1, 2]) local.push(gradient(rank, i));
    const store = await connect({ ...clusterSpec('averaging'), optimizer, servers, rank: 0, worldSize: 3 });
    const snap = await store.pull();
    for (const n of ['W', 'b']) {
      const a = snap.get(n), b = local.snapshot().get(n);
      expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
    }
    expect((await store.stats()).rounds).toBe(2 * 40);
    local.close();
  });
});

describe('a shard killed with SIGKILL', () => {
  test('pending and later calls fail with ShardUnavailableError within timeout + 1 s; the other shard serves on', async () => {
    const shards = await Promise.all([shard(), shard()]);
    const servers = shards.map((s) => s.address);
    const timeout = 1000;
    const store = await connect({ ...clusterSpec('atomic'), servers, timeout });
    // a second worker, on its own connection, keeps pushing to shard 0 only
    const g = new Float32Array(8).fill(1);
    let killedAt = 0;
    const failures: { ms: number; e: { name: string; shard: number; address: string } }[] = [];
    const pushing = (async () => {
      for (let i = 0; i < 100_000 && failures.length === 0; i++) {
        try {
          await store.pushAsync({ W: new Float32Array(2400).fill(1), b: g });
        } catch (e) {
          failures.push({ ms: Date.now() - killedAt, e: e as never });
        }
        if (i === 50) {
          killedAt = Date.now();
          shards[1].proc.kill('SIGKILL');
        }
      }
    })();
    await pushing;
    expect(failures).toHaveLength(1);
    expect(failures[0].e).toMatchObject({ name: 'ShardUnavailableError', shard: 1, address: servers[1] });
    expect(failures[0].ms).toBeLessThan(timeout + 1000);
    // a later call that needs the dead shard: the same error, within the same bound
    const t0 = Date.now();
    await expect(store.pull()).rejects.toMatchObject({ name: 'ShardUnavailableError', shard: 1 });
    expect(Date.now() - t0).toBeLessThan(timeout + 1000);
    // the live shard still answers
    const st = await connect({ ...clusterSpec('atomic'), servers: [servers[0]], timeout }).catch((e) => e);
    expect(st).toMatchObject({ name: 'ConfigError' }); // another shard count is another spec: shard 0 answered
    await store.close();
  });
});

describe('a shard restarted from the last checkpoint', () => {
  test('SIGKILL, restart with --load on the same port: its slices come back from the checkpoint, and training goes on', async () => {
    const shards = await Promise.all([shard(), shard()]);
    const servers = shards.map((s) => s.address);
    const spec = { ...clusterSpec('locked'), optimizer: { kind: 'adam', lr: 0.01 } };
    // a generous timeout: this test is about what comes back, not how fast (the
    // restarted shard reads its checkpoint, slowly under the ASan build)
    const store = await connect({ ...spec, servers, timeout: 5000 });
    const g = () => ({ W: new Float32Array(2400).fill(0.5), b: new Float32Array(8).fill(-1) });
    for (let i = 0; i < 20; i++) await store.pushAsync(g());
    const file = path.join(dir, 'last.safetensors');
    await store.save(file);
    const atSave = await store.pull();
    for (let i = 0; i < 10; i++) await store.pushAsync(g());
    shards[1].proc.kill('SIGKILL');
    await expect(store.pushAsync(g())).rejects.toMatchObject({ name: 'ShardUnavailableError', shard: 1 });
    const proc = spawn(process.execPath, [cli, 'server', '--listen', servers[1], '--key-file', keyFile, '--load', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(proc);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (d) => {
        out += d;
        if (/listening on/.test(out)) resolve();
      });
      proc.on('exit', (code) => reject(new Error(`the restarted shard exited (${code})`)));
    });
    // the next call finds the shard empty, gives it the spec again; it loads its slices
    const back = await store.pull();
    const onShard1 = store.layout.byShard[1];
    expect(onShard1.length).toBeGreaterThan(0);
    for (const x of onShard1) {
      const got = back.get(x.tensor).subarray(x.start, x.start + x.size);
      const want = atSave.get(x.tensor).subarray(x.start, x.start + x.size);
      expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))).toBe(true);
    }
    const st = await store.stats();
    expect(st.shards[1].version).toBe(20); // its version at the checkpoint
    expect(st.shards[0].version).toBe(31); // the other shard went on (the failed push reached it, as documented)
    const r = await store.pushAsync(g());
    expect(r.applied).toBe(true);
    expect((await store.stats()).shards.map((x) => x.version)).toEqual([32, 21]);
    await store.close();
  });
});

describe('a shard restarted without a checkpoint', () => {
  test('is not quietly reset to the initial values: calls that need it fail with ShardUnavailableError saying to restart it with --load', async () => {
    const shards = await Promise.all([shard(), shard()]);
    const servers = shards.map((s) => s.address);
    const store = await connect({ ...clusterSpec('atomic'), servers, timeout: 5000 });
    const g = () => ({ W: new Float32Array(2400).fill(0.5), b: new Float32Array(8).fill(-1) });
    for (let i = 0; i < 5; i++) await store.pushAsync(g());
    shards[1].proc.kill('SIGKILL');
    await new Promise((r) => shards[1].proc.once('exit', r));
    const proc = spawn(process.execPath, [cli, 'server', '--listen', servers[1], '--key-file', keyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(proc);
    await new Promise<void>((resolve) => proc.stdout!.on('data', (d) => /listening on/.test(String(d)) && resolve()));
    for (let k = 0; k < 2; k++)
      await expect(store.pull()).rejects.toMatchObject({ name: 'ShardUnavailableError', shard: 1, message: expect.stringMatching(/restarted without a checkpoint.*--load FILE/) });
    // it stays empty: nothing was created there from the initial values
    expect((await store.stats()).shards.map((x) => x.version)).toEqual([5, -1]);
  });
});

describe('training through a shard restart', () => {
  test('a remote Trainer, a checkpoint, SIGKILL, restart with --load, training goes on: accuracy within 0.02 of an uninterrupted run', async () => {
    const data = synthetic('blobs', { rows: 8000, features: 12, classes: 4, seed: 5 });
    const [train, held] = data.split(0.75);
    const spec = { tensors: modelTensors({ model: 'softmax' }, train), mode: 'locked' as Mode, optimizer: { kind: 'sgd' as const, lr: 0.05 }, sliceFloats: 16, seed: 3 };
    const opts = { model: 'softmax' as const, threads: 1, epochs: 1, batchSize: 16, syncEvery: 8 };
    const run = async (interrupt: boolean) => {
      const shards = await Promise.all([shard(), shard()]);
      const servers = shards.map((s) => s.address);
      const store = await connect({ ...spec, servers, timeout: 5000 });
      await new Trainer(store, { ...opts, seed: 1 }).fit(train);
      if (interrupt) {
        const file = path.join(dir, 'train.safetensors');
        await store.save(file);
        shards[1].proc.kill('SIGKILL');
        await new Promise((r) => shards[1].proc.once('exit', r));
        const proc = spawn(process.execPath, [cli, 'server', '--listen', servers[1], '--key-file', keyFile, '--load', file], { stdio: ['ignore', 'pipe', 'pipe'] });
        procs.push(proc);
        await new Promise<void>((resolve) => proc.stdout!.on('data', (d) => /listening on/.test(String(d)) && resolve()));
      }
      await new Trainer(store, { ...opts, seed: 2 }).fit(train);
      return evaluate(await store.pull(), 'softmax', held).accuracy!;
    };
    const straight = await run(false);
    const restarted = await run(true);
    expect(straight).toBeGreaterThan(0.9);
    expect(Math.abs(restarted - straight)).toBeLessThan(0.02);
  });
});

describe('gradvault launch', () => {
  const run = (...args: string[]) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, [cli, 'launch', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      p.on('exit', (code) => resolve({ code, out, err }));
    });
  const script = path.join(__dirname, 'harness', 'launch-worker.js');

  test('2 shards x 3 workers: every line prefixed with its role, exit 0 once the workers finish', async () => {
    const r = await run('--servers', '2', '--workers', '3', script);
    expect(r.code).toBe(0);
    for (const role of ['server 0', 'server 1']) expect(r.out).toContain(`[${role}] gradvault server: listening on tcp://127.0.0.1:`);
    for (const rank of [0, 1, 2]) expect(r.out).toContain(`[worker ${rank}] rank ${rank} of 3 pushed 50`);
    expect(r.out).toMatch(/3 workers finished; 2 shards stopped/);
  });

  test('a worker that fails stops every other process; exit 1 naming it', async () => {
    const r = await run('--servers', '1', '--workers', '2', script, 'fail');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/worker 1 exited \(3\); stopped the others/);
  });
});
