/**
 * Typed errors. Every error gradvault throws is a {@link GradvaultError} with a
 * stable `code`; subclasses name the offending field, tensor or index.
 */

/** Base class of every error gradvault throws. */
export class GradvaultError extends Error {
  /** Stable machine-readable code, e.g. `ERR_CONFIG`. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An invalid configuration field; `path` names it (`optimizer.lr`). */
export class ConfigError extends GradvaultError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('ERR_CONFIG', message);
    this.path = path;
  }
}

/** An invalid call argument (wrong type, unknown tensor, foreign snapshot). */
export class InvalidArgumentError extends GradvaultError {
  readonly field: string;
  /** Arrays: the index of the offending element, when one is at fault. */
  readonly index?: number;
  constructor(field: string, message: string, index?: number) {
    super('ERR_INVALID_ARGUMENT', message);
    this.field = field;
    if (index !== undefined) this.index = index;
  }
}

/** A gradient whose size does not match its tensor. */
export class ShapeError extends GradvaultError {
  readonly tensor: string;
  constructor(tensor: string, message: string) {
    super('ERR_SHAPE', message);
    this.tensor = tensor;
  }
}

/** A NaN or infinity in a gradient (with `nonFinite: 'reject'`, the default). */
export class NonFiniteGradientError extends GradvaultError {
  readonly tensor: string;
  readonly index: number;
  constructor(tensor: string, index: number, message: string) {
    super('ERR_NON_FINITE', message);
    this.tensor = tensor;
    this.index = index;
  }
}

/**
 * A push whose `basedOn` snapshot was modified in place after it was taken
 * (with `verify: true`): the gradient was computed on values the store never held.
 */
export class InPlaceModificationError extends GradvaultError {
  readonly tensor: string;
  constructor(tensor: string, message: string) {
    super('ERR_IN_PLACE_MODIFICATION', message);
    this.tensor = tensor;
  }
}

/** A value that leaves the fixed-point range of `deterministic` or `averaging`. */
export class OverflowError extends GradvaultError {
  readonly tensor: string;
  constructor(tensor: string, message: string) {
    super('ERR_OVERFLOW', message);
    this.tensor = tensor;
  }
}

/** The store was closed (or the shared store no longer exists). */
export class ClosedError extends GradvaultError {
  constructor(message = 'the store is closed') {
    super('ERR_CLOSED', message);
  }
}

/** An error of one shard of a cluster: which one (`shard`, its index in `servers`) and where (`address`). */
export abstract class ShardError extends GradvaultError {
  readonly shard: number;
  readonly address: string;
  constructor(code: string, shard: number, address: string, message: string) {
    super(code, message);
    this.shard = shard;
    this.address = address;
  }
}

/**
 * A shard of a cluster that stopped answering (killed, unreachable, its
 * link down) within the connection's `timeout`, or that lost its tensors
 * (restarted): every pending and later call that needs it fails with this.
 * A push that fails this way may have been applied on the other shards:
 * resume from a checkpoint.
 */
export class ShardUnavailableError extends ShardError {
  constructor(shard: number, address: string, message: string) {
    super('ERR_SHARD_UNAVAILABLE', shard, address, message);
  }
}

/** A shard refused this process's handshake: it does not hold the cluster's key. */
export class AuthenticationError extends ShardError {
  constructor(shard: number, address: string, message: string) {
    super('ERR_AUTHENTICATION', shard, address, message);
  }
}

/**
 * Synchronous mode (`averaging` across the network): a round did not
 * receive every worker's push within `roundTimeout`. `missing` names the
 * ranks that did not push; `round` is the round (1-based, per shard). The
 * round was applied with the pushes that did arrive (their mean), so do
 * not push the same gradient again; a worker that comes back joins the
 * next round.
 */
export class RoundTimeoutError extends ShardError {
  readonly round: number;
  readonly missing: readonly number[];
  constructor(shard: number, address: string, message: string, round: number, missing: readonly number[]) {
    super('ERR_ROUND_TIMEOUT', shard, address, message);
    this.round = round;
    this.missing = Object.freeze([...missing]);
  }
}

/** The native addon could not be loaded; the message says what to install. */
export class NativeLoadError extends GradvaultError {
  constructor(message: string) {
    super('ERR_NATIVE_LOAD', message);
  }
}

/**
 * A malformed data file or checkpoint. Text formats (LIBSVM, CSV) give the
 * 1-based `line` and `column` of the first bad token; IDX and safetensors
 * give the byte `offset` (of the uncompressed stream for gzip), checkpoints
 * also the `tensor`. Fields that do not apply are undefined.
 */
export class DataFormatError extends GradvaultError {
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
  readonly offset?: number;
  /** Checkpoints: the tensor at fault, when one is. */
  readonly tensor?: string;
  constructor(file: string, message: string, where: { line?: number; column?: number; offset?: number; tensor?: string } = {}) {
    super('ERR_DATA_FORMAT', message);
    this.file = file;
    if (where.line !== undefined) this.line = where.line;
    if (where.column !== undefined) this.column = where.column;
    if (where.offset !== undefined) this.offset = where.offset;
    if (where.tensor !== undefined) this.tensor = where.tensor;
  }
}

/**
 * A data file that cannot be read: `code` is `ERR_NOT_FOUND` when it does not
 * exist, `ERR_IO` otherwise (a directory, no permission, a read error).
 */
export class FileError extends GradvaultError {
  readonly file: string;
  constructor(code: 'ERR_NOT_FOUND' | 'ERR_IO', file: string, message: string) {
    super(code, message);
    this.file = file;
  }
}

/**
 * Runs f, which reads user input: an exception that input raised itself (a
 * throwing getter, a revoked Proxy) becomes a typed error, never a raw one.
 */
export function guardInput<T>(f: () => T, wrap: (message: string) => Error): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof GradvaultError) throw e;
    throw wrap(e instanceof Error ? e.message : String(e));
  }
}

interface NativeErrorShape {
  code?: unknown;
  message?: unknown;
  field?: unknown;
  tensor?: unknown;
  index?: unknown;
  file?: unknown;
  line?: unknown;
  column?: unknown;
  offset?: unknown;
}

/**
 * Maps an error thrown by the addon to its typed class. The new error is
 * created here, so its stack is the caller's, not the addon's.
 */
export function fromNative(e: unknown): Error {
  if (e instanceof GradvaultError) return e;
  const n = (e ?? {}) as NativeErrorShape;
  const message = typeof n.message === 'string' ? n.message : String(e);
  const tensor = typeof n.tensor === 'string' ? n.tensor : '';
  const field = typeof n.field === 'string' ? n.field : '';
  switch (n.code) {
    case 'ERR_CONFIG':
      return new ConfigError(field, message);
    case 'ERR_INVALID_ARGUMENT':
      return new InvalidArgumentError(field, message, typeof n.index === 'number' && n.index >= 0 ? n.index : undefined);
    case 'ERR_SHAPE':
      return new ShapeError(tensor || field, message);
    case 'ERR_NON_FINITE':
      return new NonFiniteGradientError(tensor, typeof n.index === 'number' ? n.index : -1, message);
    case 'ERR_OVERFLOW':
      return new OverflowError(tensor, message);
    case 'ERR_CLOSED':
      return new ClosedError(message);
    case 'ERR_DATA_FORMAT': {
      const opt = (v: unknown) => (typeof v === 'number' ? v : undefined);
      return new DataFormatError(typeof n.file === 'string' ? n.file : '', message, {
        line: opt(n.line),
        column: opt(n.column),
        offset: opt(n.offset),
        tensor: tensor || undefined,
      });
    }
    case 'ERR_NOT_FOUND':
    case 'ERR_IO':
      return new FileError(n.code, typeof n.file === 'string' ? n.file : '', message);
    default:
      return e instanceof Error ? e : new GradvaultError('ERR_INTERNAL', message);
  }
}

/**
 * A training run stopped by its AbortSignal. The store is consistent: every
 * push either applied whole or not at all. `result` holds what was done.
 */
export class AbortError extends GradvaultError {
  readonly result: unknown;
  constructor(message: string, result?: unknown, cause?: unknown) {
    super('ABORT_ERR', message);
    this.result = result;
    if (cause !== undefined) Object.defineProperty(this, 'cause', { value: cause, enumerable: false });
  }
}
