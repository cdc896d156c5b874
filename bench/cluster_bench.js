// The cluster's transport, beside its ceiling in the same run: raw ZeroMQ
// round trips (DEALER -> ROUTER echo, CURVE on, the same socket options the
// shards use) against gradvault pushes through one shard
// (ParameterServer in this process, RemoteParameterStore.pushAsync), for
// 4 KiB, 256 KiB and 4 MiB messages one at a time, and small messages
// pipelined (64 in flight). Medians of 5 rounds; ratios to the raw figure.
//
//   node bench/cluster_bench.js [--quick] [--json bench/results/cluster.json]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zmq = require('zeromq');
const { ParameterServer, ParameterStore, generateKey, isa } = require('../dist');
const { parseKey } = require('../dist/cluster/key');

const quick = process.argv.includes('--quick');
const jsonAt = process.argv.indexOf('--json');
const jsonFile = jsonAt > 0 ? process.argv[jsonAt + 1] : path.join(__dirname, 'results', 'cluster.json');
const ROUNDS = quick ? 1 : 5;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function rawPair(key) {
  const k = parseKey(key);
  const router = new zmq.Router({ curveServer: true, curveSecretKey: k.serverSecret, linger: 0 });
  await router.bind('tcp://127.0.0.1:*');
  const dealer = new zmq.Dealer({ curveServerKey: k.serverPublic, curvePublicKey: k.clientPublic, curveSecretKey: k.clientSecret, linger: 0 });
  dealer.connect(router.lastEndpoint);
  (async () => {
    try {
      // an echo that answers with a 32-byte reply, as a shard answers a push
      for await (const [id] of router) await router.send([id, Buffer.alloc(32)]);
    } catch {
      /* closed */
    }
  })();
  return { router, dealer };
}

// seconds for n round trips, `window` in flight: one receive loop answers
// the callers in order (one connection keeps it), sends go one at a time,
// as the remote store does them.
async function timeRaw(dealer, bytes, n, window) {
  const payload = Buffer.alloc(bytes, 1);
  const head = Buffer.alloc(32);
  const waiting = [];
  (async () => {
    try {
      for await (const _ of dealer) waiting.shift()();
    } catch {
      /* closed */
    }
  })();
  let sending = Promise.resolve();
  const call = () =>
    new Promise((resolve) => {
      waiting.push(resolve);
      sending = sending.then(() => dealer.send([head, payload]));
    });
  const t0 = process.hrtime.bigint();
  let next = 0;
  const lane = async () => {
    while (next < n) {
      next++;
      await call();
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function timePush(store, floats, n, window) {
  const g = { w: new Float32Array(floats).fill(1e-9) };
  const t0 = process.hrtime.bigint();
  let next = 0;
  const lane = async () => {
    while (next < n) {
      next++;
      await store.pushAsync(g);
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main() {
  const key = generateKey();
  const cases = [
    { name: '4 KiB, one at a time', bytes: 4096, n: quick ? 500 : 3000, window: 1 },
    { name: '256 KiB, one at a time', bytes: 256 << 10, n: quick ? 100 : 600, window: 1 },
    { name: '4 MiB, one at a time', bytes: 4 << 20, n: quick ? 10 : 60, window: 1 },
    { name: '64 B, 64 in flight', bytes: 64, n: quick ? 2000 : 30000, window: 64 },
  ];
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  console.log(`# machine: ${cpu}, ${os.cpus().length} cores, kernels ${isa().active}, zeromq ${zmq.version}, node ${process.version}`);
  const rows = [];
  for (const c of cases) {
    const raw = [], push = [];
    for (let r = 0; r < ROUNDS; r++) {
      const { router, dealer } = await rawPair(key);
      raw.push(await timeRaw(dealer, c.bytes, c.n, c.window));
      dealer.close();
      router.close();
      const server = await ParameterServer.start({ key });
      const store = await ParameterStore.connect({
        servers: [server.address],
        key,
        tensors: { w: { shape: [c.bytes / 4] } },
        optimizer: { kind: 'sgd', lr: 1e-6 },
        sliceFloats: 1 << 24,
      });
      push.push(await timePush(store, c.bytes / 4, c.n, c.window));
      await store.close();
      await server.close();
    }
    const rawS = median(raw), pushS = median(push);
    const row = {
      case: c.name,
      bytes: c.bytes,
      messages: c.n,
      rawPerSec: c.n / rawS,
      pushPerSec: c.n / pushS,
      rawMBps: (c.n * c.bytes) / rawS / 1e6,
      pushMBps: (c.n * c.bytes) / pushS / 1e6,
      ratio: rawS / pushS,
    };
    rows.push(row);
    console.log(
      `${c.name.padEnd(24)} raw ZeroMQ ${row.rawPerSec.toFixed(0).padStart(8)}/s ${row.rawMBps.toFixed(1).padStart(8)} MB/s | ` +
        `gradvault push ${row.pushPerSec.toFixed(0).padStart(8)}/s ${row.pushMBps.toFixed(1).padStart(8)} MB/s | x${row.ratio.toFixed(2)}`,
    );
  }
  const out = { bench: 'cluster-transport', machine: cpu, cores: os.cpus().length, isa: isa().active, zeromq: zmq.version, rounds: ROUNDS, date: new Date().toISOString(), rows };
  fs.mkdirSync(path.dirname(jsonFile), { recursive: true });
  fs.writeFileSync(jsonFile, JSON.stringify(out, null, 2) + '\n');
  console.log(`wrote ${jsonFile}`);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
