// gradvault inspect FILE: a checkpoint's metadata (its model among them) and tensors.
import { inspectCheckpoint } from '../checkpoint';
import { describeModel } from '../trainer';
import { fmt, out, table } from './output';

export async function inspect(file: string): Promise<void> {
  const info = await inspectCheckpoint(file);
  out(`${file}: safetensors, ${info.tensors.length} tensors`);
  for (const [k, v] of Object.entries(info.metadata)) {
    // the model as words where the file records a valid one; the text as it is otherwise
    if (k === 'model' && info.model) {
      out(`  model: ${describeModel(info.model)}`);
      // a model trained on standardized data: predict applies its scaler to raw rows
      if (info.scaler) out(`  scaler: ${fmt(info.scaler.features)} features (mean and scale; predict standardizes raw rows with it)`);
    }
    else out(`  ${k}: ${v}${k === 'model' && info.metadata.format === 'gradvault/1' ? ' (not a valid model record: load refuses it)' : ''}`);
  }
  out('');
  const num = (v: number | null) => (v === null ? '–' : v.toPrecision(4));
  table(
    ['tensor', 'dtype', 'shape', 'elements', 'min', 'max', 'mean'],
    info.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, fmt(t.elements), num(t.min), num(t.max), num(t.mean)]),
  );
}
