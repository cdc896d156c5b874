#!/usr/bin/env node
// Crash-safety of store.save(): a parent spawns child processes that save a
// ~2.4 MB store to ONE checkpoint path over and over, and SIGKILLs each child
// at a random moment, most of them inside a save. After every kill the file
// must be absent (only before the first complete save) or a complete,
// loadable checkpoint holding exactly one version a child wrote: the last
// completed one ("old") or the one being saved ("new"), every element of
// every tensor equal to that version's pattern, the metadata version equal to
// it (never torn). Temporaries a killed writer leaves behind
// (`.<name>.tmp-<pid>-<rand>`) must be gone once a later child has completed a
// save (the writer sweeps dead writers' temporaries). A last child saves once
// and exits normally: the folder must then hold the checkpoint and nothing else.
//
//   node test/harness/fault-save.js [--kills N] [--json FILE] [--seed S] [--dir DIR] [--window-ms MS]
//
// --kills     how many children to kill (default 200)
// --json      also write the summary as JSON to FILE
// --seed      seed of the kill delays (default 1)
// --dir       folder for the checkpoint (default: a fresh one under the OS temp
//             folder, removed at the end)
// --window-ms kills land uniformly in [0, window] ms after the child is ready
//             (default: 4 x the median save time seen so far, at least 40 ms)
// --unsafe-writer  the children overwrite the file in place, chunk by chunk,
//             instead of calling save() on it: a control that must end in torn
//             files and exit status 1 (it shows the checks can fail)
//
// Runs against dist/ (npm run build:ts). Exit status 0 when every invariant
// held, 1 on any violation, 2 on bad arguments.
//
// What it proves and what it does not: a SIGKILL stops the process at any
// instruction, so this checks the write-temporary / rename protocol and the
// sweep; it does not simulate a power loss (the page cache survives a
// SIGKILL), for which the fsyncs in the writer are what counts.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { mulberry32, parseOptions } = require('./common');

const DIST = path.join(__dirname, '..', '..', 'dist');

// ---- the content of version v: integers, so that pushes of -STRIDE with
// lr 1 move every element exactly to the next version's value.
const SHAPES = { W: [512, 1024], V: [256, 256], b: [1024] };
const NAMES = Object.keys(SHAPES);
const STRIDE = 256; // value = v * STRIDE + h(t, i), h in [0, 256): exact in float32 while v < 65535
const size = (n) => SHAPES[n].reduce((a, b) => a * b, 1);
function h(t, i) {
  return (Math.imul(i + 1, 0x9e3779b1) ^ Math.imul(t + 7, 0x85ebca6b)) >>> 24;
}
function pattern(v, t, n) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = v * STRIDE + h(t, i);
  return a;
}

// ---------------------------------------------------------------- the child
async function child(file, saves, unsafe) {
  const { ParameterStore } = require(DIST);
  let store;
  if (fs.existsSync(file)) {
    store = await ParameterStore.load(file);
  } else {
    const tensors = {};
    NAMES.forEach((n, t) => (tensors[n] = { shape: SHAPES[n], init: pattern(0, t, size(n)) }));
    store = new ParameterStore({ tensors, mode: 'atomic', optimizer: { kind: 'sgd', lr: 1 } });
  }
  const grads = {};
  for (const n of NAMES) grads[n] = new Float32Array(size(n)).fill(-STRIDE);
  // stdout is a pipe: writes are synchronous on Linux, so every marker
  // written before the SIGKILL reaches the parent.
  process.stdout.write(`R ${store.version}\n`);
  for (let k = 0; saves === 0 || k < saves; k++) {
    store.push(grads);
    const v = store.version;
    const t0 = process.hrtime.bigint();
    process.stdout.write(`S ${v}\n`);
    if (unsafe) await unsafeSave(store, file);
    else await store.save(file);
    process.stdout.write(`E ${v} ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(3)}\n`);
    // a little time outside save(), so that some kills land between saves
    if (saves === 0 && (k & 3) === 3) await new Promise((r) => setTimeout(r, 1));
  }
  store.close();
}

// The control: a writer without the temporary file and the rename.
async function unsafeSave(store, file) {
  const side = `${file}.side-${process.pid}`;
  await store.save(side);
  const buf = fs.readFileSync(side);
  fs.unlinkSync(side);
  const fd = fs.openSync(file, fs.existsSync(file) ? 'r+' : 'w');
  for (let o = 0; o < buf.length; o += 1 << 18) {
    fs.writeSync(fd, buf, o, Math.min(1 << 18, buf.length - o), o);
    fs.fdatasyncSync(fd);
  }
  fs.ftruncateSync(fd, buf.length);
  fs.closeSync(fd);
}

// --------------------------------------------------------------- the parent
function parseArgs(argv) {
  const o = parseOptions(
    argv,
    {
      kills: { type: 'int', min: 1, default: 200 },
      json: { type: 'string', default: null },
      seed: { type: 'int', min: 0, default: 1 },
      dir: { type: 'string', default: null },
      'window-ms': { type: 'int', min: 1, default: 0 },
      'unsafe-writer': { type: 'boolean', default: false },
    },
    usage,
  );
  if (o.help) {
    const lines = fs.readFileSync(__filename, 'utf8').split('\n').slice(1);
    const head = lines.slice(0, lines.findIndex((l) => !l.startsWith('//')));
    process.stdout.write(head.map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
    process.exit(0);
  }
  return { kills: o.kills, json: o.json, seed: o.seed, dir: o.dir, windowMs: o['window-ms'], unsafe: o['unsafe-writer'] };
}

function usage(msg) {
  process.stderr.write(`fault-save: ${msg} (try --help)\n`);
  process.exit(2);
}

// Loads the checkpoint and checks it is one whole version; returns
// { version } or { error }.
async function inspect(ParameterStore, file) {
  let store;
  try {
    store = await ParameterStore.load(file);
  } catch (e) {
    return { error: `does not load: ${e && e.name} ${e && e.code}: ${e && e.message}` };
  }
  try {
    const names = store.tensors.map((t) => t.name);
    if (names.join() !== NAMES.join()) return { error: `tensors ${names.join()} (expected ${NAMES.join()})` };
    const snap = store.snapshot();
    const W = snap.get('W');
    const v = (W[0] - h(0, 0)) / STRIDE;
    if (!Number.isInteger(v) || v < 0) return { error: `W[0] = ${W[0]} is no version's value` };
    for (let t = 0; t < NAMES.length; t++) {
      const a = snap.get(NAMES[t]);
      for (let i = 0; i < a.length; i++)
        if (a[i] !== v * STRIDE + h(t, i))
          return { error: `torn: ${NAMES[t]}[${i}] = ${a[i]} is not version ${v}'s ${v * STRIDE + h(t, i)} (version ${(a[i] - h(t, i)) / STRIDE}?)` };
    }
    if (store.version !== v) return { error: `metadata version ${store.version} but the data is version ${v}` };
    snap.release();
    return { version: v };
  } finally {
    store.close();
  }
}

function temporaries(dir, base) {
  const prefix = `.${base}.tmp-`;
  return fs
    .readdirSync(dir)
    .filter((n) => n.startsWith(prefix))
    .map((n) => ({ name: n, pid: Number(/^(\d+)-/.exec(n.slice(prefix.length))?.[1] ?? -1) }));
}

function runChild(file, saves, unsafe, onReady) {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [__filename, '--child', file, String(saves), unsafe ? 'unsafe' : 'safe'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // A child that is not ready in 30 s is stuck (the load hangs?): killed, and reported as never ready.
    const watchdog = setTimeout(() => c.kill('SIGKILL'), 30000);
    let out = '';
    let err = '';
    let ready = false;
    c.stdout.setEncoding('utf8');
    c.stderr.setEncoding('utf8');
    c.stdout.on('data', (d) => {
      out += d;
      if (!ready && /^R \d+$/m.test(out)) {
        ready = true;
        clearTimeout(watchdog);
        onReady(c);
      }
    });
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code, signal) => {
      clearTimeout(watchdog);
      resolve({ pid: c.pid, code, signal, out, err });
    });
  });
}

async function parent(o) {
  const { ParameterStore } = require(DIST);
  const ownDir = !o.dir;
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'gv-fault-save-'));
  fs.mkdirSync(dir, { recursive: true });
  const base = 'model.safetensors';
  const file = path.join(dir, base);
  fs.rmSync(file, { force: true });
  const rng = mulberry32(o.seed);
  const t0 = Date.now();
  const s = {
    kills: 0,
    killsDuringSave: 0,
    duringSaveFraction: 0,
    outcomes: { old: 0, new: 0, settled: 0, absent: 0 },
    outcomesDuringSave: { old: 0, new: 0, absent: 0 },
    tempsLeft: 0,
    tempsSwept: 0,
    torn: 0,
    savesStarted: 0,
    savesCompleted: 0,
    saveMs: { median: 0, p90: 0, max: 0 },
    fileBytes: 0,
    lastVersion: null,
    finalCleanSave: false,
    seconds: 0,
    seed: o.seed,
    writer: o.unsafe ? 'unsafe (in place, control)' : 'store.save',
    violations: [],
  };
  const saveMs = [];
  const violation = (m) => {
    s.violations.push(m);
    process.stderr.write(`fault-save: VIOLATION: ${m}\n`);
  };
  let fileVersion = null; // what the file held after the previous child
  let pending = []; // temporaries of dead children, to be swept by a later save
  const median = () => {
    if (saveMs.length === 0) return 30;
    const a = [...saveMs].sort((x, y) => x - y);
    return a[a.length >> 1];
  };

  const parse = (r) => {
    let readyVersion = null;
    let inSave = null;
    let lastDone = null;
    let started = 0;
    let done = 0;
    for (const line of r.out.split('\n')) {
      const m = /^([RSE]) (\d+)(?: ([\d.]+))?$/.exec(line);
      if (!m) continue;
      const v = Number(m[2]);
      if (m[1] === 'R') readyVersion = v;
      else if (m[1] === 'S') {
        inSave = v;
        started++;
      } else {
        if (inSave !== v) violation(`child ${r.pid}: save of ${v} ended, but ${inSave} was the one started`);
        inSave = null;
        lastDone = v;
        done++;
        saveMs.push(Number(m[3]));
      }
    }
    s.savesStarted += started;
    s.savesCompleted += done;
    return { readyVersion, inSave, lastDone, done };
  };

  const checkSweep = (r, done) => {
    const temps = temporaries(dir, base);
    if (done > 0) {
      for (const p of pending) {
        if (temps.some((t) => t.name === p.name)) violation(`${p.name} (dead writer ${p.pid}) survived ${done} complete saves of child ${r.pid}`);
        else s.tempsSwept++;
      }
      pending = pending.filter((p) => temps.some((t) => t.name === p.name));
    }
    return temps;
  };

  for (let k = 0; k < o.kills; k++) {
    const windowMs = o.windowMs || Math.max(40, 4 * median());
    const delay = rng() * windowMs;
    const r = await runChild(file, 0, o.unsafe, (c) => setTimeout(() => c.kill('SIGKILL'), delay));
    s.kills++;
    if (r.signal !== 'SIGKILL') {
      violation(`child ${r.pid} ended with code ${r.code}, signal ${r.signal}, before the kill: ${r.err.trim().slice(0, 500)}`);
      continue;
    }
    const { readyVersion, inSave, lastDone, done } = parse(r);
    if (readyVersion === null) {
      violation(`child ${r.pid} was killed but never printed ready: ${r.err.trim().slice(0, 300)}`);
      continue;
    }
    if (fileVersion !== null && readyVersion !== fileVersion)
      violation(`child ${r.pid} loaded version ${readyVersion}, the file held ${fileVersion}`);
    const during = inSave !== null;
    if (during) s.killsDuringSave++;
    const old = lastDone ?? fileVersion; // null: nothing saved yet
    let outcome;
    if (!fs.existsSync(file)) {
      if (old !== null) violation(`after kill ${k + 1} the file is gone; version ${old} had been saved`);
      outcome = 'absent';
      fileVersion = null;
    } else {
      const got = await inspect(ParameterStore, file);
      if (got.error) {
        s.torn++;
        violation(`after kill ${k + 1} (child ${r.pid}, ${during ? `inside the save of ${inSave}` : 'between saves'}): ${got.error}`);
        // go on from whatever the file is: remove it so the next child starts afresh
        fs.rmSync(file, { force: true });
        fileVersion = null;
        checkSweep(r, done);
        continue;
      }
      if (got.version === old) outcome = during ? 'old' : 'settled';
      else if (during && got.version === inSave) outcome = 'new';
      else {
        violation(`after kill ${k + 1}: the file holds version ${got.version}; allowed: ${old}${during ? ` or ${inSave}` : ''}`);
        outcome = 'settled';
      }
      fileVersion = got.version;
    }
    s.outcomes[outcome]++;
    if (during) s.outcomesDuringSave[outcome === 'settled' ? 'old' : outcome]++;
    const temps = checkSweep(r, done);
    for (const t of temps) {
      if (t.pid === r.pid) {
        s.tempsLeft++;
        pending.push(t);
        if (!during) violation(`child ${r.pid} left ${t.name} although it was killed between saves`);
      } else if (!pending.some((p) => p.name === t.name)) {
        violation(`unexpected temporary ${t.name}`);
      }
    }
    if ((k + 1) % 50 === 0)
      process.stderr.write(`fault-save: ${k + 1}/${o.kills} kills, ${s.killsDuringSave} inside a save, torn ${s.torn}\n`);
  }

  // A last child saves once and exits normally: everything is swept.
  const last = await runChild(file, 1, o.unsafe, () => {});
  const lp = parse(last);
  if (last.code !== 0) violation(`the last child failed (code ${last.code}, signal ${last.signal}): ${last.err.trim().slice(0, 500)}`);
  else {
    const got = await inspect(ParameterStore, file);
    if (got.error) {
      s.torn++;
      violation(`after the clean save: ${got.error}`);
    } else if (got.version !== lp.lastDone) violation(`after the clean save the file holds ${got.version}, expected ${lp.lastDone}`);
    else {
      s.finalCleanSave = true;
      s.lastVersion = got.version;
    }
    checkSweep(last, lp.done);
    const left = temporaries(dir, base);
    if (left.length) violation(`after a clean save, temporaries remain: ${left.map((t) => t.name).join(', ')}`);
    const others = fs.readdirSync(dir).filter((n) => n !== base);
    if (others.length) violation(`the folder holds more than the checkpoint: ${others.join(', ')}`);
    s.fileBytes = fs.statSync(file).size;
  }

  const sorted = [...saveMs].sort((x, y) => x - y);
  if (sorted.length) {
    s.saveMs = {
      median: sorted[sorted.length >> 1],
      p90: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))],
      max: sorted[sorted.length - 1],
    };
  }
  s.duringSaveFraction = s.kills ? Number((s.killsDuringSave / s.kills).toFixed(3)) : 0;
  s.seconds = Number(((Date.now() - t0) / 1000).toFixed(1));
  if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
  return s;
}

function report(s) {
  const lines = [
    `fault-save: ${s.kills} SIGKILLs of a writer (${s.writer}) saving ${(s.fileBytes / 1048576).toFixed(2)} MB checkpoints to one path (seed ${s.seed})`,
    `  kills inside a save   ${s.killsDuringSave} (${(100 * s.duringSaveFraction).toFixed(1)}%)`,
    `  file afterwards       old ${s.outcomes.old}, new ${s.outcomes.new} (inside a save); last complete ${s.outcomes.settled} (between saves); absent ${s.outcomes.absent}`,
    `  torn or unloadable    ${s.torn}`,
    `  temporaries           left by a kill ${s.tempsLeft}, swept by the next writer ${s.tempsSwept}`,
    `  saves                 ${s.savesStarted} started, ${s.savesCompleted} completed; median ${s.saveMs.median.toFixed(1)} ms, p90 ${s.saveMs.p90.toFixed(1)} ms, max ${s.saveMs.max.toFixed(1)} ms`,
    `  final clean save      ${s.finalCleanSave ? `ok (version ${s.lastVersion}, folder holds only the checkpoint)` : 'FAILED'}`,
    `  duration              ${s.seconds} s`,
    s.violations.length ? `  VIOLATIONS            ${s.violations.length}:\n    ${s.violations.slice(0, 20).join('\n    ')}` : '  violations            none',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

if (process.argv[2] === '--child') {
  child(process.argv[3], Number(process.argv[4] ?? 0), process.argv[5] === 'unsafe').catch((e) => {
    process.stderr.write(`child: ${e && e.stack}\n`);
    process.exit(3);
  });
} else {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(DIST, 'index.js'))) usage('dist/ is missing: run npm run build:ts first');
  parent(o).then(
    (s) => {
      report(s);
      if (o.json) fs.writeFileSync(o.json, JSON.stringify(s, null, 2) + '\n');
      process.exit(s.violations.length === 0 && s.torn === 0 ? 0 : 1);
    },
    (e) => {
      process.stderr.write(`fault-save: ${e && e.stack}\n`);
      process.exit(1);
    },
  );
}
