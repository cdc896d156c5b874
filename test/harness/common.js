// Shared by the test harnesses (soak.js, fault-save.js), the lifecycle
// fixture and the jest tests: the one seeded PRNG (a failing sequence can be replayed), and option
// parsing on node's util.parseArgs with checked numbers.
'use strict';
const util = require('node:util');

/** mulberry32: uniform floats in [0, 1) from a 32-bit seed. */
function mulberry32(seed) {
  let a = seed >>> 0 || 1;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Parses `--name value` options: spec maps each name to { type: 'int' |
 * 'number' | 'string' | 'boolean', min, default }. A bad or unknown option
 * calls fail(message), which must not return.
 */
function parseOptions(argv, spec, fail) {
  const options = { help: { type: 'boolean', short: 'h' } };
  for (const [name, s] of Object.entries(spec)) options[name] = { type: s.type === 'boolean' ? 'boolean' : 'string' };
  let values;
  try {
    ({ values } = util.parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (e) {
    fail(e.message);
  }
  const out = { help: values.help === true };
  for (const [name, s] of Object.entries(spec)) {
    const v = values[name];
    if (v === undefined) out[name] = s.default;
    else if (s.type === 'int' || s.type === 'number') {
      const n = Number(v);
      const ok = s.type === 'int' ? /^\d+$/.test(v) : v.trim() !== '' && Number.isFinite(n);
      if (!ok || n < s.min) fail(`--${name} must be ${s.type === 'int' ? 'an integer' : 'a number'} >= ${s.min}, got '${v}'`);
      out[name] = n;
    } else out[name] = v;
  }
  return out;
}

module.exports = { mulberry32, parseOptions };
