// gradvault export FILE --onnx OUT [--model KIND]: a checkpoint's model (the
// one it records, else --model or the tensor names') as an ONNX file for
// onnxruntime (lib/onnx/export.ts).
import { exportOnnx, type OnnxValueInfo } from '../onnx/export';
import { ParameterStore } from '../store';
import type { ModelKind } from '../trainer';
import { UsageError, writable } from './args';
import { fmt, out } from './output';

export interface ExportOptions {
  onnx: string;
  model?: ModelKind;
  json: boolean;
}

/**
 * The model a checkpoint's tensor names give, where they give one (for a
 * file that does not record its model: older ones, a store never trained):
 * W, b: softmax; W1, b1, ...: mlp; U, V: mf. w, b fit linear, logistic and
 * svm alike: `flag` (export: --model, predict: --kind) decides.
 */
export function inferModel(names: readonly string[], flag = '--model'): ModelKind {
  const has = (n: string) => names.includes(n);
  if (has('W1')) return 'mlp';
  if (has('W') && has('b')) return 'softmax';
  if (has('U') && has('V')) return 'mf';
  if (has('w') && has('b'))
    throw new UsageError(`the tensors w, b fit the models 'linear', 'logistic' and 'svm' alike: choose one with ${flag} linear|logistic|svm`);
  throw new UsageError(`cannot tell the model from the tensors ${names.length ? names.join(', ') : '(none)'}: give ${flag}`);
}

const value = (v: OnnxValueInfo) => `${v.name} ${v.type} [${v.shape.join(', ')}]`;

export async function exportCommand(file: string, o: ExportOptions): Promise<void> {
  writable('--onnx', o.onnx);
  const store = await ParameterStore.load(file);
  try {
    const recorded = store.model?.model;
    const model = o.model ?? recorded ?? inferModel(store.tensors.map((t) => t.name));
    const r = await exportOnnx(store, model, o.onnx);
    if (o.json) {
      out(JSON.stringify({ event: 'export', checkpoint: file, ...r }));
      return;
    }
    out(`${o.onnx}: ONNX (opset ${r.opset}), model ${model}${o.model ? '' : recorded ? ' (recorded in the checkpoint)' : ' (from the tensor names)'}, ${fmt(r.bytes)} bytes, store version ${r.version}`);
    out(`  inputs:  ${r.inputs.map(value).join(', ')}`);
    out(`  outputs: ${r.outputs.map(value).join(', ')}`);
  } finally {
    store.close();
  }
}
