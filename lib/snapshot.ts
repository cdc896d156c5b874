import { InvalidArgumentError } from './errors';
import type { ResolvedTensor } from './config';

/**
 * A private copy of every tensor, read from the vault at one moment. Nothing
 * done to it reaches the store. `get(name)` returns the same Float32Array on
 * every call.
 */
export class Snapshot {
  /** The store's version when this copy was read. */
  readonly version: number;
  /** Tensor names, in the store's order. */
  readonly names: readonly string[];
  readonly #arrays: Map<string, Float32Array>;
  readonly #storeId: number;
  readonly #checksums: Map<string, bigint> | null;

  /** @internal Created by ParameterStore.snapshot(). */
  constructor(
    storeId: number,
    version: number,
    buffer: ArrayBuffer,
    tensors: readonly (ResolvedTensor & { offset: number })[],
    checksum: ((a: Float32Array) => bigint) | null,
  ) {
    this.#storeId = storeId;
    this.version = version;
    this.#arrays = new Map();
    this.#checksums = checksum ? new Map() : null;
    for (const t of tensors) {
      const a = new Float32Array(buffer, t.offset * 4, t.size);
      this.#arrays.set(t.name, a);
      this.#checksums?.set(t.name, checksum!(a));
    }
    this.names = Object.freeze(tensors.map((t) => t.name));
    Object.freeze(this);
  }

  /** The snapshot's copy of one tensor (row-major). */
  get(name: string): Float32Array {
    const a = this.#arrays.get(name);
    if (!a) throw new InvalidArgumentError('name', `snapshot has no tensor '${name}' (it has ${this.names.join(', ')})`);
    return a;
  }

  /** @internal */
  static storeId(s: Snapshot): number {
    return s.#storeId;
  }

  /**
   * @internal The first tensor whose contents no longer match the checksum
   * taken at snapshot time, or null. Needs a store with `verify: true`.
   */
  static modifiedTensor(s: Snapshot, checksum: (a: Float32Array) => bigint): string | null {
    if (!s.#checksums) return null;
    for (const [name, sum] of s.#checksums) if (checksum(s.#arrays.get(name)!) !== sum) return name;
    return null;
  }

  /** @internal */
  static hasChecksums(s: Snapshot): boolean {
    return s.#checksums !== null;
  }
}
