/**
 * Sharding without hot spots: every tensor is cut into slices of whole rows
 * (its first dimension) of at most `sliceFloats` values (a row wider than
 * that is one slice), and the slices go to the shards largest first, each to
 * the shard holding the fewest values so far (LPT). The layout depends only
 * on the tensors, the shard count and the slice size, so every worker
 * computes the same one.
 */
import type { ResolvedTensor } from '../config';

/** Values per slice, at most (1 Mi float32 = 4 MiB, as BytePS's partitions). */
export const DEFAULT_SLICE_FLOATS = 1 << 20;

export interface Slice {
  /** Index in the layout (tensor order, then offset). */
  readonly id: number;
  readonly tensor: string;
  /** Element offset in the tensor and length. */
  readonly start: number;
  readonly size: number;
  readonly shard: number;
  /** Index among its shard's slices (ascending id). */
  readonly local: number;
  /** The name of the shard's tensor that holds it. */
  readonly name: string;
}

export interface Layout {
  readonly shards: number;
  readonly sliceFloats: number;
  readonly slices: readonly Slice[];
  readonly byShard: readonly (readonly Slice[])[];
  /** Values held by each shard. */
  readonly floats: readonly number[];
}

export function layout(tensors: readonly ResolvedTensor[], shards: number, sliceFloats = DEFAULT_SLICE_FLOATS): Layout {
  const cut: { tensor: string; start: number; size: number }[] = [];
  for (const t of tensors) {
    const width = t.shape.length > 1 ? t.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    const rowsPer = width > 0 ? Math.max(1, Math.floor(sliceFloats / width)) : 1;
    const step = rowsPer * width;
    if (t.size === 0 || step === 0) cut.push({ tensor: t.name, start: 0, size: 0 });
    for (let start = 0; start < t.size && step > 0; start += step) cut.push({ tensor: t.name, start, size: Math.min(step, t.size - start) });
  }
  const floats = new Array<number>(shards).fill(0);
  const shardOf = new Array<number>(cut.length);
  const order = cut.map((_, i) => i).sort((a, b) => cut[b].size - cut[a].size || a - b);
  for (const i of order) {
    let best = 0;
    for (let s = 1; s < shards; s++) if (floats[s] < floats[best]) best = s;
    shardOf[i] = best;
    floats[best] += cut[i].size;
  }
  const counts = new Array<number>(shards).fill(0);
  const slices = cut.map((c, id) => {
    const shard = shardOf[id];
    return Object.freeze({ id, ...c, shard, local: counts[shard]++, name: `${c.tensor}[${c.start}:${c.start + c.size}]` });
  });
  const byShard = Array.from({ length: shards }, (_, s) => Object.freeze(slices.filter((x) => x.shard === s)));
  return Object.freeze({ shards, sliceFloats, slices: Object.freeze(slices), byShard: Object.freeze(byShard), floats: Object.freeze(floats) });
}
