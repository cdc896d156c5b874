// gradvault inspect FILE: a checkpoint's metadata and tensors.
import { types } from 'node:util';
import { fromNative } from '../errors';
import { native } from '../native';
import { checkPath } from '../paths';
import { fmt, out, table } from './output';

export async function inspect(file: string): Promise<void> {
  let raw;
  try {
    raw = await native().readCheckpoint(checkPath('file', file));
  } catch (e) {
    throw fromNative(e);
  }
  const m = raw.metadata;
  out(`${file}: safetensors, ${raw.tensors.length} tensors`);
  for (const [k, v] of Object.entries(m)) out(`  ${k}: ${v}`);
  out('');
  table(
    ['tensor', 'dtype', 'shape', 'elements', 'min', 'max', 'mean'],
    raw.tensors.map((t) => {
      const n = t.shape.reduce((a, b) => a * b, 1);
      let min = '–', max = '–', mean = '–';
      if (types.isFloat32Array(t.data) && t.data.length) {
        let lo = Infinity, hi = -Infinity, s = 0;
        for (const v of t.data) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
          s += v;
        }
        [min, max, mean] = [lo.toPrecision(4), hi.toPrecision(4), (s / t.data.length).toPrecision(4)];
      }
      return [t.name, t.dtype, `[${t.shape.join(', ')}]`, fmt(n), min, max, mean];
    }),
  );
}
