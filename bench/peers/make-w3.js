#!/usr/bin/env node
'use strict';
// W3 data: an RCV1-like sparse binary set made by gradvault's own generator
// (synthetic('sparse-logistic'), 47,236 features, ~75 nonzeros per row, rows
// L2-normalised, labels ±1), written as LIBSVM text so that every peer reads
// exactly the same rows:
//
//   bench/data/w3-train.svm   the first 200,000 rows
//   bench/data/w3-test.svm    the last 20,000 rows
//
// 1-based indices, labels +1 / -1, each value a decimal of 7 to 9 digits that
// reads back as the same float32. Does nothing when both files exist (--force
// rewrites them). The generator is synchronous (~4 s for 220,000 rows); the
// text is ~0.28 GB and takes a further ~30 s to format.
//
// Usage: node bench/peers/make-w3.js [--force] [--out DIR]
// Needs dist/ (npm run build).

const fs = require('node:fs');
const path = require('node:path');
const { synthetic } = require('../../dist');

const TRAIN_ROWS = 200_000;
const TEST_ROWS = 20_000;
const SEED = 7;

const args = process.argv.slice(2);
const force = args.includes('--force');
const outAt = args.indexOf('--out');
const outDir = outAt >= 0 ? path.resolve(args[outAt + 1]) : path.join(__dirname, '..', 'data');
const trainFile = path.join(outDir, 'w3-train.svm');
const testFile = path.join(outDir, 'w3-test.svm');

/**
 * A short decimal that parses back to the float32 v: 7 significant digits
 * when they suffice, else 8, else 9 (always enough). Nearly all values of
 * this set need 8 or 9, so shorter precisions are not tried.
 */
function float32Text(v) {
  let s = v.toPrecision(8);
  if (Math.fround(Number(s)) !== v) s = v.toPrecision(9);
  else {
    const s7 = v.toPrecision(7);
    if (Math.fround(Number(s7)) === v) s = s7;
  }
  // Trailing zeros of the fixed form (rare): 0.1250000 -> 0.125.
  if (s.charCodeAt(s.length - 1) === 48 && s.includes('.') && !s.includes('e')) s = s.replace(/\.?0+$/, '');
  return s;
}

/** Writes rows [start, end) of d to file (via a temporary file, renamed when complete). */
function writeLibsvm(d, labels, start, end, file) {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    const CHUNK = 2000; // rows per write
    for (let r0 = start; r0 < end; r0 += CHUNK) {
      const lines = [];
      for (let i = r0; i < Math.min(r0 + CHUNK, end); i++) {
        const { indices, values } = d.sparseRow(i);
        let line = labels[i] > 0 ? '+1' : '-1';
        for (let k = 0; k < indices.length; k++) line += ` ${indices[k] + 1}:${float32Text(values[k])}`;
        lines.push(line);
      }
      fs.writeSync(fd, lines.join('\n') + '\n');
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function main() {
  if (!force && fs.existsSync(trainFile) && fs.existsSync(testFile)) {
    console.error(`make-w3: ${trainFile} and ${testFile} exist; nothing to do (--force rewrites them)`);
    return;
  }
  fs.mkdirSync(outDir, { recursive: true });
  let t = process.hrtime.bigint();
  const d = synthetic('sparse-logistic', { rows: TRAIN_ROWS + TEST_ROWS, seed: SEED });
  const secs = () => Number(process.hrtime.bigint() - t) / 1e9;
  console.error(`make-w3: synthetic: ${d.rows} rows, ${d.features} features, ${d.nnz} nonzeros in ${secs().toFixed(1)} s`);
  const labels = d.labels;
  t = process.hrtime.bigint();
  writeLibsvm(d, labels, 0, TRAIN_ROWS, trainFile);
  writeLibsvm(d, labels, TRAIN_ROWS, TRAIN_ROWS + TEST_ROWS, testFile);
  console.error(`make-w3: wrote ${trainFile} and ${testFile} in ${secs().toFixed(1)} s`);
}

main();
