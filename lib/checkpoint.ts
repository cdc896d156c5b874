/**
 * Checkpoints: safetensors files (README "Checkpoints"). The format has one
 * owner, the core (native/core/checkpoint: save, load with the caller's
 * options over the file's, inspect, the metadata both ways); this file holds
 * the public types and the calls.
 */
import { fromNative } from './errors';
import { checkPath } from './paths';
import type { ModelDescription } from './trainer';
import { scalerFromNative, type Scaler } from './data';
import { native, type Assert, type IsWire, type NativeSaveResult, type NativeInspection } from './native';

/** What `store.save()` resolves to. */
export interface SaveResult {
  readonly file: string;
  /** Bytes of tensor data written. */
  readonly bytes: number;
  /** The store's version in the file. */
  readonly version: number;
  /** How long pushes were held back for the copy (0 in versioned mode without optimizer state). */
  readonly pauseSeconds: number;
  /** The whole save, write and fsyncs included. */
  readonly seconds: number;
}

/** A tensor of an inspected file. */
export interface TensorSummary {
  readonly name: string;
  /** safetensors dtype: F32, F64, I64, ... */
  readonly dtype: string;
  readonly shape: number[];
  /** Byte offset of its data in the file. */
  readonly offset: number;
  readonly elements: number;
  /** Range and mean of the values: F32 and F64 tensors that are not empty; null otherwise. */
  readonly min: number | null;
  readonly max: number | null;
  readonly mean: number | null;
}

/** What {@link inspectCheckpoint} tells of a safetensors file. */
export interface CheckpointInfo {
  /** The header's `__metadata__`: for ours format, mode, version, step, tensors, optimizer, options and, where known, model. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: TensorSummary[];
  /** The model the file records (metadata `model`), where it records a valid one. */
  readonly model?: ModelDescription;
  /** The scaler that model records (its training data was standardized: {@link Dataset.standardize}), where it records one. */
  readonly scaler?: Scaler;
}

// As the addon builds them (lib/native.ts): a change on one side only fails to compile.
type _SaveIsWire = Assert<IsWire<SaveResult, NativeSaveResult>>;
type _InspectionIsWire = Assert<IsWire<Omit<CheckpointInfo, 'scaler'>, Omit<NativeInspection, 'scaler'>>>;

/**
 * Reads a safetensors file's header (validated: DataFormatError with the byte
 * offset otherwise) and summarises each tensor; `gradvault inspect` prints it.
 */
export async function inspectCheckpoint(file: string): Promise<CheckpointInfo> {
  const abs = checkPath('file', file);
  try {
    const r = await native().inspectCheckpoint(abs);
    return r.scaler ? { ...r, scaler: scalerFromNative(r.scaler) } : (r as Omit<typeof r, 'scaler'>);
  } catch (e) {
    throw fromNative(e);
  }
}
