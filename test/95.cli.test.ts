// 95: the gradvault command (dist/cli.js, as `npx gradvault` runs it): demo
// shows lost updates for naive writes and none for the vault's modes; train
// reads each data format, saves, resumes, writes JSON lines and an HTML
// report; inspect prints a checkpoint; every bad argument is one line on
// stderr and a non-zero exit, never a stack trace.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

jest.setTimeout(120_000);

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gv-cli-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, FORCE_COLOR: '0' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('demo: naive writes vs every mode', () => {
  const r = run('demo', '--threads', '2', '--pushes', '300', '--size', '64', '--no-train');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/Naive shared writes/);
  for (const mode of ['atomic', 'locked', 'versioned', 'deterministic', 'averaging'])
    expect(r.out).toMatch(new RegExp(`^${mode}\\s+0\\s+0\\s`, 'm'));
  expect(r.out).toMatch(/^hogwild\s/m);
});

test('train on a LIBSVM file: JSON lines, save, inspect, resume, HTML report', () => {
  const lines: string[] = [];
  let s = 7;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < 3000; i++) {
    const a = rnd(), b = rnd();
    lines.push(`${a + b > 1 ? 1 : -1} 1:${a.toFixed(4)} 3:${b.toFixed(4)}`);
  }
  fs.writeFileSync(path.join(dir, 'd.svm'), lines.join('\n') + '\n');
  const r = run('train', '--data', 'd.svm', '--epochs', '3', '--threads', '2', '--batch', '8', '--lr', '2', '--json', '--save', 'm.safetensors', '--report', 'r.html');
  expect(r.code).toBe(0);
  const events = r.out.trim().split('\n').map((l) => JSON.parse(l));
  expect(events.map((e) => e.event)).toEqual(['epoch', 'epoch', 'epoch', 'done']);
  expect(events[3].test.accuracy).toBeGreaterThan(0.8);
  expect(events[3].stats.pushes).toBeGreaterThan(0);
  expect(fs.readFileSync(path.join(dir, 'r.html'), 'utf8')).toMatch(/<svg[\s\S]*polyline/);
  const ins = run('inspect', 'm.safetensors');
  expect(ins.code).toBe(0);
  expect(ins.out).toMatch(/mode: atomic/);
  expect(ins.out).toMatch(/^w\s+F32\s+\[3\]/m); // LIBSVM indices 1 and 3: 3 features
  const again = run('train', '--data', 'd.svm', '--resume', 'm.safetensors', '--epochs', '1', '--lr', '1');
  expect(again.code).toBe(0);
  expect(again.out).toMatch(/resumed from m\.safetensors/);
  expect(again.out).toMatch(/lost updates\s+0 \(by construction\)/);
});

test('train on a CSV file and on synthetic data; bench', () => {
  fs.writeFileSync(path.join(dir, 'd.csv'), 'x,y\n' + Array.from({ length: 500 }, (_, i) => `${i / 500},${(2 * i) / 500 + 1}`).join('\n'));
  const c = run('train', '--data', 'd.csv', '--label', 'y', '--epochs', '5', '--threads', '1', '--lr', '0.5');
  expect(c.code).toBe(0);
  expect(c.out).toMatch(/Training linear/);
  expect(c.out).toMatch(/test rmse/);
  const m = run('train', '--data', 'synthetic:ratings', '--rows', '5000', '--epochs', '1', '--threads', '2');
  expect(m.code).toBe(0);
  expect(m.out).toMatch(/Training mf/);
  const b = run('bench', '--data', 'synthetic:blobs', '--rows', '3000', '--modes', 'atomic,hogwild', '--threads', '1,2', '--json');
  expect(b.code).toBe(0);
  const j = JSON.parse(b.out);
  expect(j.results.map((x: { mode: string; threads: number }) => `${x.mode}/${x.threads}`)).toEqual(['atomic/1', 'hogwild/1', 'atomic/2', 'hogwild/2']);
});

test.each([
  [['train', '--epochs', 'x'], 2, /--epochs must be an integer >= 1, got 'x'/],
  [['train', '--mode', 'fast'], 2, /--mode/],
  [['nope'], 2, /unknown command 'nope'/],
  [['train', '--data', 'missing.svm'], 1, /missing\.svm/],
  [['train', '--data', 'synthetic:cats'], 2, /synthetic sets are/],
  [['inspect', 'missing.safetensors'], 1, /missing\.safetensors/],
  [['bench', '--modes', 'atomic,fast'], 2, /'fast' is not one of/],
])('bad arguments: %j -> one line, exit %i', (args, code, msg) => {
  fs.writeFileSync(path.join(dir, 'garbage.safetensors'), 'not a checkpoint');
  const r = run(...(args as string[]));
  expect(r.code).toBe(code);
  expect(r.err.trim().split('\n')).toHaveLength(1);
  expect(r.err).toMatch(msg);
  expect(r.err).not.toMatch(/\n\s+at /);
});

test('a file that is not a checkpoint: one line', () => {
  const r = run('inspect', 'garbage.safetensors');
  expect(r.code).toBe(1);
  expect(r.err.trim().split('\n')).toHaveLength(1);
  expect(r.err).toMatch(/safetensors/);
});

test('usage errors are found before any work: exit 2 and one line naming the option (issue 10)', () => {
  const cases: [string[], RegExp][] = [
    [['train', '--save', '/nonexistent-folder/m.safetensors', '--epochs', '1'], /--save .*does not exist/],
    [['train', '--report', os.tmpdir(), '--epochs', '1'], /--report .*is a folder/],
    [['train', '--threads', '2000'], /--threads must be an integer in 1\.\.1024/],
    [['train', '--batch', '100000'], /--batch must be an integer in 1\.\.65536/],
    [['bench', '--modes', ''], /--modes must name at least one/],
    [['demo', '--size', '1e12'], /--size must be an integer in 1\.\.16777216/],
  ];
  for (const [args, msg] of cases) {
    const r = run(...args);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.out).not.toMatch(/epoch/);
  }
});

describe('gradvault predict', () => {
  test('a checkpoint on a LIBSVM file: CSV rows, JSON lines, a summary with the accuracy on stderr', () => {
    const lines: string[] = [];
    for (let i = 0; i < 400; i++) lines.push(`${i % 2 ? 1 : -1} 1:${i % 2 ? 1 : -1} 2:0.5`);
    fs.writeFileSync(path.join(dir, 'p.svm'), lines.join('\n') + '\n');
    expect(run('train', '--data', 'p.svm', '--model', 'svm', '--epochs', '3', '--save', 'p.safetensors').code).toBe(0);
    // w, b fit three models: the checkpoint records svm (a file that does not: test/91, test/73)
    const r = run('predict', '--model', 'p.safetensors', '--data', 'p.svm');
    expect(r.code).toBe(0);
    const rows = r.out.trim().split('\n');
    expect(rows[0]).toBe('row,label,score');
    expect(rows.length).toBe(401);
    expect(rows[1]).toMatch(/^0,-1,-/);
    expect(rows[2]).toMatch(/^1,1,\d/);
    expect(r.err).toMatch(/predicted 400 rows with svm .* accuracy 1\.0000/);
    const j = run('predict', '--model', 'p.safetensors', '--data', 'p.svm', '--kind', 'svm', '--json', '--out', 'p.jsonl');
    expect(j.code).toBe(0);
    const first = JSON.parse(fs.readFileSync(path.join(dir, 'p.jsonl'), 'utf8').split('\n')[0]);
    expect(first).toEqual({ row: 0, label: -1, score: expect.any(Number) });
    // a file of another width: one line naming the tensor and both shapes
    fs.writeFileSync(path.join(dir, 'wide.svm'), '1 7:1\n');
    const bad = run('predict', '--model', 'p.safetensors', '--data', 'wide.svm', '--kind', 'svm');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/tensor 'w' has shape \[2\]/);
    expect(run('predict', '--model', 'missing.safetensors', '--data', 'p.svm').code).toBe(1);
  });
});

test('start: a first run whose test accuracy ends near what the data allows, predictions, what next', () => {
  const r = run('start', '--threads', '2');
  expect(r.code).toBe(0);
  const acc = Array.from(r.out.matchAll(/^\s+\d+\/\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s/gm), (m) => Number(m[1]));
  expect(acc.length).toBeGreaterThanOrEqual(6);
  // Fashion-MNIST (an MLP: 0.85+) or the synthetic set (ceiling 0.95: 0.9+)
  expect(acc[acc.length - 1]).toBeGreaterThan(r.out.includes('Fashion-MNIST') ? 0.85 : 0.9);
  expect(acc[acc.length - 1]).toBeGreaterThan(acc[0]);
  expect(r.out).toMatch(/Test accuracy 0\.\d{3}/);
  expect(r.out).toMatch(/Predictions on the first 6 test rows/);
  expect(r.out).toMatch(/What to try next:/);
}, 120_000);
