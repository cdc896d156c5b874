// gradvault bench: every mode at every thread count on one data set, beside
// hogwild (the racy speed reference).
import * as os from 'node:os';
import type { Mode } from '../config';
import { isa } from '../native';
import { Trainer, evaluate, type ModelKind } from '../trainer';
import { defaultLr, defaultModel, loadData, score } from './data';
import { fmt, out, table } from './output';

export async function bench(o: { data?: string; model?: ModelKind; modes: Mode[]; threads: number[]; epochs: number; batch: number; lr?: number; rows?: number; seed: number; json: boolean }): Promise<void> {
  const data = await loadData(o);
  const model = o.model ?? defaultModel(data.train);
  const lr = o.lr ?? defaultLr(model);
  const results: { mode: Mode; threads: number; samplesPerSec: number; seconds: number; test: ReturnType<typeof evaluate>; conflicts: number }[] = [];
  if (!o.json) out(`${model} on ${data.what}: ${fmt(data.train.rows)} rows, batch ${o.batch}, ${o.epochs} epoch(s), kernels ${isa().active}, ${os.availableParallelism()} CPUs\n`);
  for (const threads of o.threads)
    for (const mode of o.modes) {
      const t = new Trainer({ model, threads, epochs: o.epochs, batchSize: o.batch, seed: o.seed, mode, ...(mode === 'averaging' ? { syncEvery: threads } : {}), optimizer: { kind: 'sgd', lr } });
      const r = await t.fit(data.train);
      results.push({ mode, threads, samplesPerSec: r.samplesPerSec, seconds: r.seconds, test: evaluate(t.store!, model, data.test), conflicts: t.store!.stats().conflicts });
      t.store!.close();
    }
  if (o.json) {
    out(JSON.stringify({ model, data: data.what, isa: isa().active, cpus: os.availableParallelism(), results }));
    return;
  }
  const base = (threads: number) => results.find((r) => r.mode === 'hogwild' && r.threads === threads);
  table(
    ['mode', 'threads', 'samples/s', '× hogwild', '× 1 thread', 'test', 'lost updates'],
    results.map((r) => {
      const h = base(r.threads), one = results.find((x) => x.mode === r.mode && x.threads === 1);
      return [r.mode, r.threads, fmt(r.samplesPerSec), h ? `${fmt(r.samplesPerSec / h.samplesPerSec, 2)}×` : '–', one ? `${fmt(r.samplesPerSec / one.samplesPerSec, 2)}×` : '–', score(r.test), r.mode === 'hogwild' ? `≤ ${fmt(r.conflicts)}` : '0'];
    }),
  );
  out('\nBaseline: hogwild, racy in-place updates (the speed reference; its overlapping writes may have lost updates).');
}
