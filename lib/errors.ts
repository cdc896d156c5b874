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
  constructor(field: string, message: string) {
    super('ERR_INVALID_ARGUMENT', message);
    this.field = field;
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

/** The native addon could not be loaded; the message says what to install. */
export class NativeLoadError extends GradvaultError {
  constructor(message: string) {
    super('ERR_NATIVE_LOAD', message);
  }
}

interface NativeErrorShape {
  code?: unknown;
  message?: unknown;
  field?: unknown;
  tensor?: unknown;
  index?: unknown;
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
      return new InvalidArgumentError(field, message);
    case 'ERR_SHAPE':
      return new ShapeError(tensor, message);
    case 'ERR_NON_FINITE':
      return new NonFiniteGradientError(tensor, typeof n.index === 'number' ? n.index : -1, message);
    case 'ERR_OVERFLOW':
      return new OverflowError(tensor, message);
    case 'ERR_CLOSED':
      return new ClosedError(message);
    default:
      return e instanceof Error ? e : new GradvaultError('ERR_INTERNAL', message);
  }
}
