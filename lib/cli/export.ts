// gradvault export FILE --onnx OUT [--model KIND]: a checkpoint's model as
// an ONNX file for onnxruntime (lib/onnx/export.ts).
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
 * The model a checkpoint's tensor names give, where they give one (the file
 * does not record its model yet): W, b: softmax; W1, b1, ...: mlp; U, V: mf.
 * w, b fit linear, logistic and svm alike: --model decides.
 */
/** The model of a checkpoint's tensors; `flag` is the option that names one (export: --model, predict: --kind). */
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
    const model = o.model ?? inferModel(store.tensors.map((t) => t.name));
    const r = await exportOnnx(store, model, o.onnx);
    if (o.json) {
      out(JSON.stringify({ event: 'export', checkpoint: file, ...r }));
      return;
    }
    out(`${o.onnx}: ONNX (opset ${r.opset}), model ${model}${o.model ? '' : ' (from the tensor names)'}, ${fmt(r.bytes)} bytes, store version ${r.version}`);
    out(`  inputs:  ${r.inputs.map(value).join(', ')}`);
    out(`  outputs: ${r.outputs.map(value).join(', ')}`);
  } finally {
    store.close();
  }
}
