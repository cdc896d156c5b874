import { InvalidArgumentError } from './errors';
import { describe } from './config';
import type { ResolvedTensor } from './config';
import { native } from './native';

const releaseBuffer = (b: ArrayBuffer) => native().release(b);

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
  readonly #shapes: Map<string, readonly number[]>;
  readonly #storeId: number;
  readonly #checksums: Map<string, bigint> | null;
  readonly #buffer: ArrayBuffer;
  #released = false;

  /** @internal Created by ParameterStore.snapshot(). */
  constructor(
    storeId: number,
    version: number,
    buffer: ArrayBuffer,
    tensors: readonly (ResolvedTensor & { offset: number })[],
    checksum: ((a: Float32Array) => bigint) | null,
  ) {
    this.#storeId = storeId;
    this.#buffer = buffer;
    this.version = version;
    this.#arrays = new Map();
    this.#shapes = new Map(tensors.map((t) => [t.name, t.shape]));
    this.#checksums = checksum ? new Map() : null;
    for (const t of tensors) {
      const a = new Float32Array(buffer, t.offset * 4, t.size);
      this.#arrays.set(t.name, a);
      this.#checksums?.set(t.name, checksum!(a));
    }
    this.names = Object.freeze(tensors.map((t) => t.name));
    Object.freeze(this); // private fields (#released) stay writable
  }

  /** The snapshot's copy of one tensor (row-major). */
  get(name: string): Float32Array {
    if (this.#released) throw new InvalidArgumentError('snapshot', `the snapshot at version ${this.version} was released`);
    const a = this.#arrays.get(name);
    if (!a) throw new InvalidArgumentError('name', `snapshot has no tensor ${describe(name)} (it has ${this.names.join(', ')})`);
    return a;
  }

  /** The shape of one tensor. */
  shape(name: string): readonly number[] {
    const s = this.#shapes.get(name);
    if (!s) throw new InvalidArgumentError('name', `snapshot has no tensor ${describe(name)} (it has ${this.names.join(', ')})`);
    return s;
  }

  /**
   * Gives the snapshot's memory back now (its arrays become empty), instead
   * of when it is garbage-collected. A loop that snapshots large stores then
   * copies into memory that is already mapped: for 40 MB that is the
   * difference between a page fault per 4 KiB and a plain copy. Push with
   * `basedOn` before releasing. Idempotent.
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    releaseBuffer(this.#buffer);
  }

  /** Whether release() was called. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Whether v is a Snapshot made by a store: a brand check, so an object
   * made with Object.create(Snapshot.prototype) is not one.
   */
  static isSnapshot(v: unknown): v is Snapshot {
    return typeof v === 'object' && v !== null && #storeId in v;
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
    if (s.#released)
      throw new InvalidArgumentError('basedOn', `basedOn: the snapshot at version ${s.version} was released, so it cannot be verified; push before releasing it, or pass its version number`);
    for (const [name, sum] of s.#checksums) if (checksum(s.#arrays.get(name)!) !== sum) return name;
    return null;
  }

  /** @internal */
  static hasChecksums(s: Snapshot): boolean {
    return s.#checksums !== null;
  }
}
