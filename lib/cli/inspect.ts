// gradvault inspect FILE: a checkpoint's metadata and tensors.
import { inspectCheckpoint } from '../checkpoint';
import { fmt, out, table } from './output';

export async function inspect(file: string): Promise<void> {
  const info = await inspectCheckpoint(file);
  out(`${file}: safetensors, ${info.tensors.length} tensors`);
  for (const [k, v] of Object.entries(info.metadata)) out(`  ${k}: ${v}`);
  out('');
  const num = (v: number | null) => (v === null ? '–' : v.toPrecision(4));
  table(
    ['tensor', 'dtype', 'shape', 'elements', 'min', 'max', 'mean'],
    info.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, fmt(t.elements), num(t.min), num(t.max), num(t.mean)]),
  );
}
