// gradvault server: one shard of a cluster, until SIGINT or SIGTERM.
// gradvault keygen FILE: a new cluster key.
import * as fs from 'node:fs';
import { ParameterServer } from '../cluster/server';
import { generateKey, keyText, readKeyFile } from '../cluster/key';
import { checkPath } from '../paths';
import { UsageError } from './args';
import { out } from './output';

export interface ServerArgs {
  listen: string;
  keyFile?: string;
  load?: string;
}

export async function server(o: ServerArgs): Promise<void> {
  const key = o.keyFile !== undefined ? readKeyFile(checkPath('--key-file', o.keyFile), '--key-file') : undefined;
  const s = await ParameterServer.start({ listen: o.listen, key: key && keyText(key), load: o.load });
  // the first line says where it listens (a launcher reads it)
  out(`gradvault server: listening on ${s.address}`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  const st = s.stats();
  await s.close();
  out(`gradvault server: stopped after ${st.requests} requests (${st.refused.protocol} malformed and ${st.refused.auth} unauthenticated refused)`);
}

export function keygen(file: string, o: { force?: boolean }): void {
  const abs = checkPath('FILE', file);
  if (fs.existsSync(abs) && !o.force) throw new UsageError(`keygen: ${file} exists (pass --force to replace it)`);
  // readable by its owner only: the key is what lets a process read and push
  fs.writeFileSync(abs, generateKey() + '\n', { mode: 0o600 });
  fs.chmodSync(abs, 0o600);
  out(`gradvault keygen: wrote a cluster key to ${file} (mode 600); pass it to servers with --key-file and to workers with GRADVAULT_KEY_FILE`);
}
