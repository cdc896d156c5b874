// Argument checks shared by the commands: a bad value is a usage error
// (exit 2) before anything runs, not a failure (exit 1) after.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError as ArgError } from 'commander';
import { checkPath } from '../paths';

/** A bad argument found while running a command (commander reports its own parse errors). */
export class UsageError extends Error {}

// Limits are the library's own (Trainer: threads 1..1024, batchSize 1..65536)
// or what the demo can allocate, so a bad value is a usage error (exit 2)
// before anything runs, not a failure (exit 1) after.
export const int = (name: string, min = 1, max = Number.MAX_SAFE_INTEGER) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new ArgError(max === Number.MAX_SAFE_INTEGER ? `${name} must be an integer >= ${min}, got '${v}'` : `${name} must be an integer in ${min}..${max}, got '${v}'`);
  return n;
};
export const positive = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new ArgError(`${name} must be a number > 0, got '${v}'`);
  return n;
};
export const list = (name: string, allowed?: readonly string[]) => (v: string) => {
  const xs = v.split(',').map((x) => x.trim()).filter(Boolean);
  if (xs.length === 0) throw new ArgError(`${name} must name at least one${allowed ? ` of ${allowed.join(', ')}` : ' value'}, got '${v}'`);
  for (const x of xs) if (allowed && !allowed.includes(x)) throw new ArgError(`${name}: '${x}' is not one of ${allowed.join(', ')}`);
  return xs;
};
export const intList = (name: string, max?: number) => (v: string) => list(name)(v).map((x) => int(name, 1, max)(x));

/**
 * An output file the run will write at its end, checked before it starts:
 * its folder exists and is writable and it is not a folder itself, so a
 * typo is a usage error now, not a failure after the training.
 */
export function writable(flag: string, file: string | undefined): void {
  if (file === undefined) return;
  let abs: string;
  try {
    abs = checkPath(flag, file);
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
  const dir = path.dirname(abs);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`${flag} ${file}: the folder ${dir} does not exist`);
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) throw new UsageError(`${flag} ${file}: is a folder, not a file`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    if (fs.existsSync(abs)) fs.accessSync(abs, fs.constants.W_OK);
  } catch {
    throw new UsageError(`${flag} ${file}: not writable`);
  }
}
