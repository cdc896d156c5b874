// gradvault data make: a data file to try the other commands on, written
// from the synthetic sets (LIBSVM for sparse-logistic, CSV for blobs), so
// every command the README shows runs on data the package makes.
import * as fs from 'node:fs';
import { synthetic, type SparseRow } from '../data';
import { UsageError, writable } from './args';
import { fmt, out } from './output';

export interface MakeOptions {
  out: string;
  rows: number;
  features?: number;
  nnz?: number;
  seed: number;
  scale?: number;
}

const KINDS = ['sparse-logistic', 'blobs'] as const;

/** The shortest decimal that reads back as the same float32. */
function f32(v: number): string {
  for (let p = 1; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return String(Number(s));
  }
  return String(v);
}

/**
 * Writes `rows` rows of a synthetic set to `out`. `scale` multiplies the
 * last feature of blobs (a CSV column in the tens of thousands, as a raw
 * price or count column is): what `train --standardize` is for.
 */
export function makeData(kind: string, o: MakeOptions): void {
  if (!(KINDS as readonly string[]).includes(kind)) throw new UsageError(`data make: the kinds are ${KINDS.join(', ')}, got '${kind}'`);
  writable('--out', o.out);
  if (o.scale !== undefined && kind !== 'blobs') throw new UsageError('--scale applies to blobs only');
  if (o.nnz !== undefined && kind !== 'sparse-logistic') throw new UsageError('--nnz applies to sparse-logistic only');
  const d = synthetic(kind as 'blobs', { rows: o.rows, seed: o.seed, ...(o.features !== undefined ? { features: o.features } : {}), ...(o.nnz !== undefined ? { nnz: o.nnz } : {}) });
  const fd = fs.openSync(o.out, 'w');
  try {
    let buf = '';
    const flush = (force = false) => {
      if (force || buf.length > 1 << 20) {
        fs.writeSync(fd, buf);
        buf = '';
      }
    };
    const labels = d.labels;
    if (kind === 'sparse-logistic') {
      for (let i = 0; i < d.rows; i++) {
        const r = d.row(i) as SparseRow;
        buf += labels[i] > 0 ? '+1' : '-1';
        for (let k = 0; k < r.indices.length; k++) buf += ` ${r.indices[k] + 1}:${f32(r.values[k])}`;
        buf += '\n';
        flush();
      }
    } else if (kind === 'blobs') {
      const f = d.features;
      buf += [...Array.from({ length: f }, (_, j) => `x${j}`), 'y'].join(',') + '\n';
      for (let i = 0; i < d.rows; i++) {
        const r = d.denseRow(i);
        const xs = Array.from(r, (v, j) => f32(j === f - 1 && o.scale !== undefined ? Math.fround(v * o.scale) : v));
        buf += `${xs.join(',')},${labels[i]}\n`;
        flush();
      }
    }
    flush(true);
  } finally {
    fs.closeSync(fd);
  }
  out(`wrote ${o.out}: ${fmt(d.rows)} rows of synthetic ${kind} (${fmt(d.features)} features, ${kind === 'blobs' ? `${d.classes} classes, label column y` : '±1 labels'}${o.scale !== undefined ? `; the last column scaled by ${o.scale}` : ''})`);
}
