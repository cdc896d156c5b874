/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }] },
  testTimeout: 120000,
  // dist/ (used by worker fixtures, the CLI tests, child processes) rebuilt when older than lib/
  globalSetup: '<rootDir>/test/global-setup.js',
};
