// Types of common.js for the TypeScript tests.
/** mulberry32: uniform floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number;
export function parseOptions(argv: string[], spec: Record<string, unknown>, usage: string): Record<string, unknown>;
