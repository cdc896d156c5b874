// Prints the core's source files, one list read by binding.gyp and CMakeLists.txt.
const fs = require('fs');
const path = require('path');
const files = fs.readFileSync(path.join(__dirname, 'sources.txt'), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
process.stdout.write(files.join(' '));
