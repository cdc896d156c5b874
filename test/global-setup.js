// Worker fixtures (test/fixtures/*.js), the CLI tests and child processes
// run the compiled dist/, while the tests themselves load lib/ through swc.
// A stale dist/ would let them pass against old code, so it is rebuilt here
// whenever any lib/ source is newer than its output (tsc, a few seconds).
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

module.exports = async () => {
  const root = path.join(__dirname, '..');
  const lib = path.join(root, 'lib');
  const stale = fs.readdirSync(lib, { recursive: true }).filter((f) => f.endsWith('.ts')).some((f) => {
    const out = path.join(root, 'dist', f.replace(/\.ts$/, '.js'));
    return !fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(path.join(lib, f)).mtimeMs;
  });
  if (stale) execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
};
