/**
 * The cluster key: who may read and push. ZeroMQ CURVE encrypts and
 * authenticates every connection; the key holds the shards' key pair and the
 * workers' key pair (Z85, 40 characters each):
 *
 *   gvkey1:<server public>:<server secret>:<client public>:<client secret>
 *
 * A shard accepts a connection only from the client public key of its
 * cluster key (checked in its ZAP handler), and a worker reaches a shard
 * only knowing the shard's public key, so a process without the key can
 * neither read nor push. `gradvault keygen FILE` writes a new one.
 */
import * as fs from 'node:fs';
import { ConfigError } from '../errors';

export interface ClusterKey {
  readonly serverPublic: string;
  readonly serverSecret: string;
  readonly clientPublic: string;
  readonly clientSecret: string;
}

const PREFIX = 'gvkey1';
const Z85 = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const zmq = () => require('zeromq') as typeof import('zeromq');

/** A new key (two fresh CURVE key pairs), as the text `parseKey` reads. */
export function generateKey(): string {
  const s = zmq().curveKeyPair();
  const c = zmq().curveKeyPair();
  return [PREFIX, s.publicKey, s.secretKey, c.publicKey, c.secretKey].join(':');
}

export function parseKey(text: unknown, field = 'key'): ClusterKey {
  if (typeof text !== 'string') throw new ConfigError(field, `${field} must be a cluster key string (gradvault keygen FILE makes one)`);
  const t = text.trim();
  // Z85 may hold ':' itself: the four keys are found by position, not by splitting
  if (!t.startsWith(`${PREFIX}:`) || t.length !== PREFIX.length + 4 * 41)
    throw new ConfigError(field, `${field} is not a gradvault cluster key (expected '${PREFIX}:' and four 40-character keys; gradvault keygen FILE makes one)`);
  const part = (k: number) => t.slice(PREFIX.length + 1 + k * 41, PREFIX.length + 1 + k * 41 + 40);
  for (let k = 1; k < 4; k++)
    if (t[PREFIX.length + k * 41] !== ':') throw new ConfigError(field, `${field} is not a gradvault cluster key (a separator is missing)`);
  const [serverPublic, serverSecret, clientPublic, clientSecret] = [0, 1, 2, 3].map(part);
  for (const k of [serverPublic, serverSecret, clientPublic, clientSecret])
    if (!Z85.test(k)) throw new ConfigError(field, `${field} holds a key that is not 40 Z85 characters`);
  return Object.freeze({ serverPublic, serverSecret, clientPublic, clientSecret });
}

export function readKeyFile(file: string, field = 'keyFile'): ClusterKey {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(field, `${field}: cannot read ${file} (${(e as Error).message})`);
  }
  return parseKey(text, `${field} ${file}`);
}

/** The key from an option, else GRADVAULT_KEY, else the file GRADVAULT_KEY_FILE names. */
export function resolveKey(option: unknown): ClusterKey {
  if (option !== undefined) return typeof option === 'object' && option !== null ? parseKey(keyText(option as ClusterKey)) : parseKey(option);
  if (process.env.GRADVAULT_KEY) return parseKey(process.env.GRADVAULT_KEY, 'GRADVAULT_KEY');
  if (process.env.GRADVAULT_KEY_FILE) return readKeyFile(process.env.GRADVAULT_KEY_FILE, 'GRADVAULT_KEY_FILE');
  throw new ConfigError('key', 'key is required: pass the cluster key, or set GRADVAULT_KEY or GRADVAULT_KEY_FILE (gradvault keygen FILE makes one)');
}

export function keyText(k: ClusterKey): string {
  return [PREFIX, k.serverPublic, k.serverSecret, k.clientPublic, k.clientSecret].join(':');
}
