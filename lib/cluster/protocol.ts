/**
 * The wire protocol between workers and shards (docs/ARCHITECTURE.md,
 * "Across processes"). A message is a ZeroMQ multipart message: a fixed
 * 32-byte header, then `count` frames. Tensors travel as raw little-endian
 * float32 frames, never JSON; only small control documents (a shard's spec,
 * stats, an error) are JSON, and those are size-capped.
 *
 *   header: magic u32 'GVP1' | op u8 | status u8 | reserved u16 (0) |
 *           request id u32 | count u32 | a f64 | b f64
 *
 * Requests (worker -> shard), `a` and `b` by op:
 *   CREATE  a: -          frames: spec JSON, then one float32 frame per slice (initial values);
 *           spec.again: a worker re-creating a shard that restarted, the spec alone (no
 *           values), refused (ERR_SHARD_LOST) unless the shard resumes from a checkpoint (--load)
 *   PUSH    a: -1 or the shard version the gradient is based on; b: the worker's rank
 *           (synchronous mode: one push per rank per round)
 *           frames: slice ids (u32 array), then one float32 frame per id (a gradient of the slice's size)
 *   PULL    frames: none                  -> a: version; frames: one float32 frame per slice
 *   STATS   frames: none                  -> frames: stats JSON
 *   PING    frames: none                  -> a: version
 *   HOLD    a: lease (ms)                 -> a: version, once no push runs; pushes wait until
 *           RELEASE or the lease ends (a worker that dies holding it cannot stop the shard)
 *           synchronous mode: b: the round to cut at -> b: that round, or (not held) the
 *           rounds this shard already closed when it is past it
 *   RELEASE frames: none
 *   SAVE    frames: none                  -> frames: the shard's own checkpoint (safetensors bytes)
 *   PUSHES  b: the worker's rank; frames: counts (u32 per push: its slices), bases (f64 per
 *           push: -1 or a version), then per push its ids frame and gradient frames. Several
 *           pushes queued while the worker's socket was busy, applied in order as separate
 *           pushes -> frames: results (f64 status, version, staleness per push), then, if
 *           any failed, { errors: [error or null per push] }
 * Replies carry op | 0x80 and a status: OK, STALE or SKIPPED (a push not
 * applied: refused as too stale, skipped for a NaN/Inf), ERROR (frames:
 * error JSON { code, message, field }). A push's reply has a: version after
 * it, b: its staleness.
 *
 * decode*() check everything (magic, op, reserved bits, counts, frame
 * sizes, ids, JSON size and shape) before anything is used and throw
 * ProtocolError naming the field; nothing here trusts a length it was sent.
 */
export const MAGIC = 0x31505647; // 'GVP1' little-endian
export const HEADER_BYTES = 32;
export const REPLY = 0x80;

export const Op = { CREATE: 1, PUSH: 2, PULL: 3, STATS: 4, PING: 5, HOLD: 6, RELEASE: 7, SAVE: 8, PUSHES: 9 } as const;
export type OpCode = (typeof Op)[keyof typeof Op];
export const OPS: ReadonlySet<number> = new Set<number>(Object.values(Op));

export const Status = { OK: 0, STALE: 1, SKIPPED: 2, ERROR: 3 } as const;
export type StatusCode = (typeof Status)[keyof typeof Status];

/** JSON documents (spec, stats, errors) are at most this many bytes. */
export const MAX_JSON_BYTES = 1 << 20;
/** Pushes in one PUSHES message, at most. */
export const MAX_BATCH = 4096;
/** Slices a shard holds, at most. */
export const MAX_SLICES = 1 << 16;

/** A message that breaks the protocol: refused (and counted) before it touches a vault. */
export class ProtocolError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.name = 'ProtocolError';
    this.field = field;
  }
}

export interface Header {
  op: number;
  status: number;
  id: number;
  count: number;
  a: number;
  b: number;
}

export function header(h: Header): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt8(h.op, 4);
  b.writeUInt8(h.status, 5);
  b.writeUInt32LE(h.id >>> 0, 8);
  b.writeUInt32LE(h.count, 12);
  b.writeDoubleLE(h.a, 16);
  b.writeDoubleLE(h.b, 24);
  return b;
}

/** Reads and checks a header; `reply`: whether a reply is expected. */
export function readHeader(frame: Buffer | undefined, reply: boolean, frames: number): Header {
  if (!frame || frame.length !== HEADER_BYTES) throw new ProtocolError('header', `header must be ${HEADER_BYTES} bytes, got ${frame ? frame.length : 'none'}`);
  if (frame.readUInt32LE(0) !== MAGIC) throw new ProtocolError('magic', 'not a gradvault message (bad magic)');
  const raw = frame.readUInt8(4);
  if (((raw & REPLY) !== 0) !== reply) throw new ProtocolError('op', `op ${raw} is not a ${reply ? 'reply' : 'request'}`);
  const op = raw & ~REPLY;
  if (!OPS.has(op)) throw new ProtocolError('op', `unknown op ${op}`);
  const status = frame.readUInt8(5);
  if (status > Status.ERROR || (!reply && status !== 0)) throw new ProtocolError('status', `bad status ${status}`);
  if (frame.readUInt16LE(6) !== 0) throw new ProtocolError('reserved', 'reserved bits set');
  const count = frame.readUInt32LE(12);
  if (count !== frames - 1) throw new ProtocolError('count', `header announces ${count} frames, the message has ${frames - 1}`);
  const a = frame.readDoubleLE(16), b = frame.readDoubleLE(24);
  if (!Number.isFinite(a) || !Number.isFinite(b)) throw new ProtocolError('header', 'non-finite header field');
  return { op, status, id: frame.readUInt32LE(8), count, a, b };
}

/**
 * A frame of float32 values of exactly `size` elements: a view of the
 * message's own memory where it is 4-byte aligned (the store copies what it
 * is given before it applies it), else an aligned copy.
 */
export function floats(frame: Buffer, size: number, field: string): Float32Array {
  if (frame.length !== size * 4) throw new ProtocolError(field, `${field} must be ${size} float32 values (${size * 4} bytes), got ${frame.length} bytes`);
  if (frame.byteOffset % 4 === 0) return new Float32Array(frame.buffer, frame.byteOffset, size);
  const out = new Float32Array(size);
  new Uint8Array(out.buffer).set(frame);
  return out;
}

/** A frame of u32 ids: at most `max`, each < `limit`, ascending and unique (unless `ascending` is false). */
export function ids(frame: Buffer, max: number, limit: number, field: string, ascending = true): Uint32Array {
  if (frame.length % 4 !== 0 || frame.length / 4 > max) throw new ProtocolError(field, `${field} must be at most ${max} u32 ids, got ${frame.length} bytes`);
  const out = new Uint32Array(frame.length / 4);
  for (let i = 0; i < out.length; i++) {
    out[i] = frame.readUInt32LE(i * 4);
    if (out[i] >= limit) throw new ProtocolError(field, `${field}[${i}] = ${out[i]} is not a slice of this shard (it has ${limit})`);
    if (ascending && i > 0 && out[i] <= out[i - 1]) throw new ProtocolError(field, `${field} must ascend without repeats (at ${i})`);
  }
  return out;
}

/** A JSON document frame: size-capped, an object. */
export function json(frame: Buffer | undefined, field: string): Record<string, unknown> {
  if (!frame || frame.length > MAX_JSON_BYTES) throw new ProtocolError(field, `${field} must be a JSON document of at most ${MAX_JSON_BYTES} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(frame.toString('utf8'));
  } catch {
    throw new ProtocolError(field, `${field} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProtocolError(field, `${field} is not a JSON object`);
  return v as Record<string, unknown>;
}

export function jsonFrame(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v), 'utf8');
}

/** The raw bytes of a float32 array, as a frame (no copy). */
export function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}
