// 97: lifecycle (issue 5, part 5). Every case runs in a child process
// (test/fixtures/lifecycle.js CASE) under a hard timeout, so a crash, an
// abort or a hang fails one test instead of taking jest down: worker
// termination in the middle of push / pushAsync / a native Trainer, the
// store's JS object collected while native work still runs on its vault,
// process.exit and an uncaught exception mid-training, AbortSignal at random
// moments, and 1,000 create/use/close cycles with bounded RSS. The child
// checks the invariants it can see (exact parameter values against the
// number of applied pushes, versions that stop moving, typed errors) and
// prints `RESULT {json}`; this file checks how it ended and that summary.
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const FIXTURE = path.join(__dirname, 'fixtures', 'lifecycle.js');
const HARD_TIMEOUT_MS = 30_000;

jest.setTimeout(HARD_TIMEOUT_MS + 10_000);

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  result: any;
}

function runCase(name: string, args: string[] = [], nodeFlags: string[] = [], env: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [...nodeFlags, FIXTURE, name, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, HARD_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      let result: unknown;
      if (line) {
        try {
          result = JSON.parse(line.slice(7));
        } catch {
          result = undefined;
        }
      }
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0, timedOut, result });
    });
  });
}

const CRASH = /Assertion|FATAL|Segmentation|terminate called|Aborted|core dumped|double free|corrupted/;

/** The child ended by itself, with `code`, no signal, and no crash report on stderr. */
function expectExit(o: Outcome, code: number, label: string): void {
  const problems: string[] = [];
  if (o.timedOut) problems.push(`hung: killed after ${HARD_TIMEOUT_MS} ms`);
  else if (o.signal !== null) problems.push(`killed by ${o.signal}`);
  else if (o.code !== code) problems.push(`exit code ${o.code}, expected ${code}`);
  const crash = CRASH.exec(o.stderr);
  if (crash) problems.push(`stderr reports a crash: '${crash[0]}'`);
  if (problems.length)
    throw new Error(
      `${label}: ${problems.join('; ')}\n--- stdout (tail) ---\n${o.stdout.slice(-1500)}\n--- stderr (tail) ---\n${o.stderr.slice(-3000)}`,
    );
}

/** A case that must pass: exit 0 by itself (no process.exit), RESULT printed. */
async function passes(name: string, nodeFlags: string[] = [], env: Record<string, string> = {}) {
  const o = await runCase(name, [], nodeFlags, env);
  expectExit(o, 0, name);
  expect(o.result).toBeDefined();
  expect(o.result.case).toBe(name);
  return o;
}

describe('97.lifecycle: worker.terminate()', () => {
  test('during a tight loop of synchronous push: every push applied whole, version in [returned, attempted], store usable', async () => {
    const { result } = await passes('terminate-push');
    expect(result.rounds).toHaveLength(6);
    for (const r of result.rounds) {
      expect(r.version).toBeGreaterThan(200); // the worker announced itself after 201 pushes
      expect(r.version).toBeLessThanOrEqual(r.attempted);
      expect(r.version).toBeGreaterThanOrEqual(r.returned);
    }
  });

  test('with many pushAsync in flight: version in [resolved, issued] and settles; every element equals -version', async () => {
    const { result } = await passes('terminate-async');
    expect(result.rounds).toHaveLength(4);
    for (const r of result.rounds) {
      expect(r.inFlightAtTerminate).toBeGreaterThan(0);
      expect(r.version).toBeGreaterThanOrEqual(r.resolved);
      expect(r.version).toBeLessThanOrEqual(r.issued);
    }
  });

  test('while the worker runs a native Trainer: its threads stop with it; the main thread snapshots, pushes, trains, closes', async () => {
    const { result } = await passes('terminate-trainer');
    expect(result.rounds).toHaveLength(4);
    for (const r of result.rounds) expect(r.version).toBeGreaterThan(0);
  });
});

describe('97.lifecycle: garbage collection', () => {
  test('store/trainer objects dropped and gc forced while a native Trainer runs / pushAsync is pending / after close(): runs finish, pushes apply, objects collected after', async () => {
    const { result } = await passes('gc', ['--expose-gc']);
    expect(result.a.gcsDuringRun).toBeGreaterThan(0);
    expect(result.c.pushes).toBe(32);
  });
});

describe('97.lifecycle: the process ends mid-training', () => {
  // Main-thread native trainer, 100 pushAsync of 4 MiB in flight, and a
  // worker_thread that trains natively or pushes synchronously in a loop.
  for (const role of ['worker-trainer', 'worker-push']) {
    test(`process.exit(0) from a timer (${role}): exit code 0, no hang, no abort`, async () => {
      const o = await runCase('exit-mid-training', [role]);
      expectExit(o, 0, `exit-mid-training ${role}`);
      expect(o.result).toMatchObject({ workerRole: role });
      expect(o.result.version).toBeGreaterThan(0);
    });

    test(`an uncaught exception from a timer (${role}): exit code 1 with the message, no abort`, async () => {
      const o = await runCase('throw-mid-training', [role]);
      expectExit(o, 1, `throw-mid-training ${role}`);
      expect(o.stderr).toContain('lifecycle-boom: thrown mid-training');
      expect(o.result).toMatchObject({ workerRole: role });
    });
  }
});

describe('97.lifecycle: AbortSignal', () => {
  test('50 fits aborted at random moments (0-30 ms, at start, before start): AbortError or completed; each leaves a stopped, exact, usable store', async () => {
    const { result } = await passes('abort-random');
    const t = result.tally;
    expect(t.aborted + t.completed + t.preAborted + t.abortedBeforeStart).toBe(50);
    expect(t.preAborted).toBeGreaterThan(0);
    expect(t.aborted).toBeGreaterThan(0);
  });
});

describe('97.lifecycle: create/use/close cycles', () => {
  test('1,000 cycles (pushes, snapshots, attach, trainer runs, checkpoints): RSS bounded; double close; use after close is ClosedError', async () => {
    // Two malloc arenas: every trainer run starts native threads, and with
    // glibc's default (8 per core) their arenas keep growing RSS by 10-35 MB
    // over the first few hundred cycles before they level off, which is
    // allocator noise, not a leak (the end figure is the same either way).
    const o = await passes('cycles', ['--expose-gc'], { MALLOC_ARENA_MAX: '2' });
    const r = o.result;
    // eslint-disable-next-line no-console
    console.log(
      `97.lifecycle cycles: RSS ${r.rssWarmMB.toFixed(1)} MB after cycle 100, ${r.rssEndMB.toFixed(1)} MB after ${r.cycles}: growth ${r.growthMB.toFixed(1)} MB; ` +
        `trend ${r.slopeKBPerCycle.toFixed(2)} KB/cycle from cycle 300 (${r.trendMB.toFixed(1)} MB per 900 cycles); ` +
        `${r.trainerRuns} trainer runs, ${r.saves} save/load, ${r.closedChecks} use-after-close checks, ${o.ms} ms`,
    );
    expect(r.cycles).toBe(1000);
    expect(r.growthMB).toBeLessThan(32);
    expect(r.trendMB).toBeLessThan(20);
    expect(r.trainerRuns).toBe(100);
    expect(r.closedChecks).toBe(200);
  });
});
