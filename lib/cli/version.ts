import * as fs from 'node:fs';
import * as path from 'node:path';

/** The package's version (dist/cli/version.js reads ../../package.json). */
export const VERSION: string = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version;
