// The README runs as written (issue 15): every fenced TypeScript/JavaScript
// block is a complete program, type-checked with strict tsc against the
// package's own types and executed with Node; every shell block runs in
// bash, line by line as shown (`npx gradvault` is the package's CLI), in one
// folder shared by the blocks in README order, so a file one block writes
// (a checkpoint, a data file) is there for the next. A block the test may
// not run says why in an HTML comment on the line before it:
//   <!-- readme-test: skip: REASON -->
// and `<!-- readme-test: file NAME -->` writes a program block as NAME
// (compiled to JavaScript) for a later shell block, instead of running it.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';

const ROOT = path.join(__dirname, '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

interface Block {
  lang: string;
  line: number; // README line of the block's first code line (1-based)
  code: string;
  skip?: string;
  file?: string;
}

function blocks(md: string): Block[] {
  const lines = md.split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^```(\S*)\s*$/.exec(lines[i]);
    if (!m) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && !/^```\s*$/.test(lines[j])) j++;
    if (j === lines.length) throw new Error(`README.md:${i + 1}: a fence that never closes`);
    let k = i - 1;
    while (k >= 0 && lines[k].trim() === '') k--;
    const d = k >= 0 ? /^<!-- readme-test: (skip: .+|file \S+) -->$/.exec(lines[k].trim()) : null;
    out.push({
      lang: m[1],
      line: start + 1,
      code: lines.slice(start, j).join('\n') + '\n',
      ...(d?.[1].startsWith('skip: ') ? { skip: d[1].slice(6) } : {}),
      ...(d?.[1].startsWith('file ') ? { file: d[1].slice(5) } : {}),
    });
    i = j;
  }
  return out;
}

const ALL = blocks(README);
const PROGRAMS = ['ts', 'typescript', 'js', 'javascript'];
const isProgram = (b: Block) => PROGRAMS.includes(b.lang);
const label = (b: Block) => `README.md:${b.line} (${b.lang || 'text'})${b.skip ? ` skipped: ${b.skip}` : b.file ? ` as ${b.file}` : ''}`;

let dir: string;
const env = { ...process.env };
// the repository's npm setting (for a dev dependency) makes npx warn; a user's folder has none
delete env.npm_config_onnxruntime_node_install;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gradvault-readme-'));
  // the folder of a project that installed gradvault: node_modules/gradvault
  // is this package, and its bin is on npx's path
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true });
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'gradvault'), 'dir');
  // npm's bin shim (dist/cli.js is made executable by npm install, not by tsc)
  fs.writeFileSync(path.join(dir, 'node_modules', '.bin', 'gradvault'), `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, 'dist', 'cli.js')}" "$@"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'readme-user', private: true, type: 'module' }));
  env.PATH = `${path.join(dir, 'node_modules', '.bin')}:${env.PATH}`;
  env.npm_config_yes = 'true';
  env.npm_config_update_notifier = 'false';
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('every fenced block of the README is tested or says why not', () => {
  expect(ALL.length).toBeGreaterThan(10);
  const untestable = ALL.filter((b) => !b.skip && !isProgram(b) && b.lang !== 'sh');
  expect(untestable.map(label)).toEqual([]);
  const skipped = ALL.filter((b) => b.skip);
  // a README that is mostly skipped tests nothing
  expect(skipped.length).toBeLessThanOrEqual(4);
});

test('the program blocks type-check under strict tsc against the package types', () => {
  const progs = ALL.filter((b) => isProgram(b) && !b.skip);
  const files = progs.map((b, n) => {
    const f = path.join(dir, `block${n}.mts`);
    fs.writeFileSync(f, b.code);
    return f;
  });
  const config = {
    compilerOptions: {
      strict: true,
      noEmit: true,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      types: ['node'],
      typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      skipLibCheck: true,
      // a block is a program, not a module of a larger one
      moduleDetection: 'force',
    },
    files,
  };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(config));
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8', cwd: dir });
  // name each error by its README line
  const errors = (r.stdout + r.stderr).replace(/block(\d+)\.mts\((\d+),(\d+)\)/g, (_, n, l, c) => `README.md:${progs[Number(n)].line + Number(l) - 1}:${c}`);
  expect(errors.trim()).toBe('');
  expect(r.status).toBe(0);
}, 120_000);

const run = (what: string, file: string, args: string[], input?: string) => {
  const r = spawnSync(file, args, { cwd: dir, env, encoding: 'utf8', input, timeout: 240_000, killSignal: 'SIGKILL' });
  if (r.status !== 0)
    throw new Error(`${what} exited with ${r.status ?? r.signal}\n--- stdout\n${r.stdout.slice(-1500)}\n--- stderr\n${r.stderr.slice(-3000)}`);
  return r.stdout;
};

describe.each(ALL.filter((b) => !b.skip && (isProgram(b) || b.lang === 'sh')).map((b) => [label(b), b] as const))('%s', (_name, b) => {
  test('runs as shown', () => {
    if (isProgram(b)) {
      const js = ts.transpileModule(b.code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
      const f = path.join(dir, b.file ?? `block-at-${b.line}.mjs`);
      fs.writeFileSync(f, js);
      if (!b.file) run(label(b), process.execPath, [f]);
      return;
    }
    // shell: each command as written, stopping at the first that fails;
    // servers started with & are stopped at the end
    const script = `set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n${b.code}`;
    const stdout = run(label(b), 'bash', ['-c', script]);
    // a command that trains shows a sensible result, not just exit 0
    // (the final table's line, and --json's last line)
    for (const m of stdout.matchAll(/^test accuracy {2,}(0\.\d+)$|"event":"done".*"test":\{[^}]*"accuracy":(0\.\d+)/gm)) expect(Number(m[1] ?? m[2])).toBeGreaterThan(0.75);
  }, 300_000);
});

test('every file a README command reads with --data was written by an earlier command', () => {
  const sh = ALL.filter((b) => b.lang === 'sh' && !b.skip).map((b) => b.code).join('\n');
  // every file a command reads was written by an earlier command or is the package's
  for (const m of sh.matchAll(/--data (\S+)/g)) {
    const f = m[1];
    if (f.startsWith('synthetic:')) continue;
    expect([f, sh.indexOf(`--out ${f}`) >= 0 && sh.indexOf(`--out ${f}`) < sh.indexOf(m[0])]).toEqual([f, true]);
  }
});
