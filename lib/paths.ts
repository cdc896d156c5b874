/**
 * File paths that cross into native code. A path is checked once, here,
 * wherever it enters (loaders, save, load, the CLI): the C++ side receives a
 * NUL-terminated string, so a path with a NUL byte in it would silently name
 * another file.
 */
import * as path from 'node:path';
import { describe } from './config';
import { InvalidArgumentError } from './errors';

/** The absolute form of a user's path; InvalidArgumentError naming `field` when it is not a usable path. */
export function checkPath(field: string, p: unknown): string {
  if (typeof p !== 'string' || p.length === 0)
    throw new InvalidArgumentError(field, `${field} must be a non-empty string, got ${describe(p)}`);
  const nul = p.indexOf('\0');
  if (nul >= 0)
    throw new InvalidArgumentError(field, `${field} has a NUL byte at character ${nul} (${JSON.stringify(p)}): no file has such a name`);
  return path.resolve(p);
}
