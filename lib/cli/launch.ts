// gradvault launch --servers S --workers W script.js [args...]: a whole
// cluster on this machine. A fresh key (a private temporary file), S shard
// processes on free loopback ports, then W worker processes running the
// script with GRADVAULT_SERVERS, GRADVAULT_KEY_FILE, GRADVAULT_RANK and
// GRADVAULT_WORLD_SIZE set. Every line a process prints is shown with its
// role as prefix. When a process fails (a worker exits non-zero, a shard
// exits at all) every other is stopped and launch exits 1; when every
// worker has finished, the shards are stopped and launch exits 0.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { generateKey } from '../cluster/key';
import { UsageError } from './args';

export interface LaunchArgs {
  servers: number;
  workers: number;
}

const cli = path.join(__dirname, '..', 'cli.js');

function prefixed(proc: ChildProcess, role: string): void {
  for (const [stream, out] of [
    [proc.stdout, process.stdout],
    [proc.stderr, process.stderr],
  ] as const)
    if (stream) readline.createInterface({ input: stream }).on('line', (line) => out.write(`[${role}] ${line}\n`));
}

export async function launch(script: string, args: string[], o: LaunchArgs): Promise<number> {
  const file = path.resolve(script);
  if (!fs.existsSync(file)) throw new UsageError(`launch: ${script} does not exist`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradvault-launch-'));
  const keyFile = path.join(dir, 'cluster.key');
  fs.writeFileSync(keyFile, generateKey() + '\n', { mode: 0o600 });
  const all: ChildProcess[] = [];
  let failed: string | null = null;
  let stopping = false;
  const stopAll = () => {
    stopping = true;
    for (const p of all) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
  };
  // resolves once every process started has exited
  let live = 0;
  let allExited!: () => void;
  const done = new Promise<void>((resolve) => (allExited = resolve));
  const watch = (p: ChildProcess) => {
    live++;
    p.on('exit', () => {
      if (--live === 0) allExited();
    });
  };
  const onSignal = () => {
    failed ??= 'interrupted';
    stopAll();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // the shards, each on a free loopback port it reports
    const addresses = await Promise.all(
      Array.from({ length: o.servers }, (_, i) => {
        const role = `server ${i}`;
        const p = spawn(process.execPath, [cli, 'server', '--listen', 'tcp://127.0.0.1:0', '--key-file', keyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
        all.push(p);
        watch(p);
        prefixed(p, role);
        return new Promise<string>((resolve, reject) => {
          let out = '';
          p.stdout!.on('data', (d) => {
            out += d;
            const m = /listening on (\S+)/.exec(out);
            if (m) resolve(m[1]);
          });
          p.on('exit', (code, sig) => {
            if (!stopping) {
              failed ??= `${role} exited (${sig ?? code})`;
              stopAll();
            }
            reject(new Error(`${role} exited before listening`));
          });
        });
      }),
    );
    const env = { ...process.env, GRADVAULT_SERVERS: addresses.join(','), GRADVAULT_KEY_FILE: keyFile, GRADVAULT_WORLD_SIZE: String(o.workers) };
    let running = o.workers;
    for (let rank = 0; rank < o.workers; rank++) {
      const role = `worker ${rank}`;
      const p = spawn(process.execPath, [file, ...args], { env: { ...env, GRADVAULT_RANK: String(rank) }, stdio: ['ignore', 'pipe', 'pipe'] });
      all.push(p);
      watch(p);
      prefixed(p, role);
      p.on('exit', (code, sig) => {
        if (stopping) return;
        if (code !== 0) {
          failed ??= `${role} exited (${sig ?? code})`;
          stopAll();
        } else if (--running === 0) stopAll(); // every worker finished: the shards go
      });
    }
  } catch {
    // a shard failed to start: reported below
  }
  await done;
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  fs.rmSync(dir, { recursive: true, force: true });
  if (failed) {
    process.stderr.write(`gradvault launch: ${failed}; stopped the others\n`);
    return 1;
  }
  process.stdout.write(`gradvault launch: ${o.workers} workers finished; ${o.servers} shards stopped\n`);
  return 0;
}
