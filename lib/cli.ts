#!/usr/bin/env node
/**
 * The `gradvault` command: `demo` (the race made visible), `train`, `bench`
 * and `inspect` (one file each in lib/cli/). Bad arguments and failures
 * print one line and exit non-zero (2 for usage, 1 for the rest), never a
 * stack trace.
 */
import { main } from './cli/main';

export { main };

if (require.main === module) {
  // `gradvault inspect f | head`: a reader that stops early is not an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`gradvault: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
