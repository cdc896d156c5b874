// 67: two "hosts" on one machine: network namespaces joined by a veth pair
// (10.77.x.1 and 10.77.x.2). A shard runs in one, a worker in the other:
// a remote Trainer trains across the link; a link taken down mid-run fails
// the worker's next call with ShardUnavailableError within timeout + 1 s.
//
// Needs root and iproute2 (CI installs it, and runs as root); where
// namespaces cannot be made the suite says why and is skipped, never
// silently.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateKey } from '../lib';

jest.setTimeout(120_000);

const root = path.join(__dirname, '..');
const id = process.pid % 200;
const nsA = `gv${process.pid}a`, nsB = `gv${process.pid}b`;
const vethA = `gv${process.pid}x`.slice(0, 15), vethB = `gv${process.pid}y`.slice(0, 15);
const ipA = `10.77.${id}.1`, ipB = `10.77.${id}.2`;
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

function setUp(): string | null {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'making network namespaces needs root';
  try {
    ip('netns', 'add', nsA);
    ip('netns', 'add', nsB);
    ip('link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB);
    ip('link', 'set', vethA, 'netns', nsA);
    ip('link', 'set', vethB, 'netns', nsB);
    ip('-n', nsA, 'addr', 'add', `${ipA}/24`, 'dev', vethA);
    ip('-n', nsB, 'addr', 'add', `${ipB}/24`, 'dev', vethB);
    for (const [ns, dev] of [[nsA, vethA], [nsB, vethB]]) {
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    // a process must be able to run inside (ip netns exec remounts /sys, which a container may forbid)
    ip('netns', 'exec', nsB, 'true');
    return null;
  } catch (e) {
    tearDown();
    const err = e as { stderr?: Buffer; message: string };
    return `cannot make network namespaces here (ip: ${err.stderr?.toString().trim() || err.message})`;
  }
}

function tearDown(): void {
  for (const ns of [nsA, nsB]) {
    try {
      ip('netns', 'del', ns); // takes its end of the veth pair with it
    } catch {
      // not made
    }
  }
}

const why = setUp();
if (why) {
  // the reason goes to the log: a skipped suite is never silent
  process.stderr.write(`test/67 skipped: ${why}\n`);
}
const maybe = why ? describe.skip : describe;

const procs: ChildProcess[] = [];
let dir = '';
let keyFile = '';
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-netns-'));
  keyFile = path.join(dir, 'cluster.key');
  fs.writeFileSync(keyFile, generateKey(), { mode: 0o600 });
});
afterEach(() => {
  for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});
afterAll(() => {
  tearDown();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** A process inside namespace `ns`; `lines` gets each line of its stdout. */
function inNs(ns: string, args: string[], env: Record<string, string> = {}): { proc: ChildProcess; lines: string[]; next: (re: RegExp) => Promise<string> } {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { env: { ...process.env, GRADVAULT_KEY_FILE: keyFile, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  const lines: string[] = [];
  let err = '';
  const waiting: { re: RegExp; resolve: (s: string) => void }[] = [];
  let buf = '';
  proc.stdout!.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of waiting.splice(0)) if (w.re.test(l)) w.resolve(l);
      else waiting.push(w);
    }
  });
  proc.stderr!.on('data', (d) => (err += d));
  const next = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const seen = lines.find((l) => re.test(l));
      if (seen) return resolve(seen);
      waiting.push({ re, resolve });
      proc.on('exit', (code) => reject(new Error(`process in ${ns} exited (${code}) before printing ${re}: ${err}`)));
    });
  return { proc, lines, next };
}

maybe(`two hosts: network namespaces ${nsA} (${ipA}) and ${nsB} (${ipB}) joined by a veth pair`, () => {
  test('a shard on one host, a worker on the other: a remote Trainer trains across the link', async () => {
    const shard = inNs(nsA, [path.join(root, 'dist', 'cli.js'), 'server', '--listen', `tcp://${ipA}:0`, '--key-file', keyFile]);
    const address = /listening on (\S+)/.exec(await shard.next(/listening on/))![1];
    expect(address.startsWith(`tcp://${ipA}:`)).toBe(true);
    const worker = inNs(nsB, [path.join(__dirname, 'harness', 'netns-worker.js'), 'train'], { GRADVAULT_SERVERS: address });
    const r = JSON.parse(await worker.next(/accuracy/));
    expect(r.accuracy).toBeGreaterThan(0.9);
    expect(r.syncs).toBeGreaterThan(0);
  });

  test('the link taken down mid-run: ShardUnavailableError within timeout + 1 s, no hang', async () => {
    const shard = inNs(nsA, [path.join(root, 'dist', 'cli.js'), 'server', '--listen', `tcp://${ipA}:0`, '--key-file', keyFile]);
    const address = /listening on (\S+)/.exec(await shard.next(/listening on/))![1];
    const timeout = 1000;
    const worker = inNs(nsB, [path.join(__dirname, 'harness', 'netns-worker.js'), 'push', String(timeout)], { GRADVAULT_SERVERS: address });
    await worker.next(/^pushing$/);
    const down = Date.now();
    ip('-n', nsA, 'link', 'set', vethA, 'down');
    const line = await worker.next(/error/);
    const elapsed = Date.now() - down;
    expect(JSON.parse(line)).toMatchObject({ error: 'ShardUnavailableError', shard: 0, address });
    expect(elapsed).toBeLessThan(timeout + 1000);
    ip('-n', nsA, 'link', 'set', vethA, 'up');
  });
});
