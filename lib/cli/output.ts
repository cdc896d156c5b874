// What the commands print: numbers, lines and tables.

export const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : '–');
export const out = (s = '') => process.stdout.write(s + '\n');

export function table(head: string[], rows: (string | number)[][]): void {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const width = head.map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((x, c) => (c === 0 ? x.padEnd(width[c]) : x.padStart(width[c]))).join('  ');
  out(line(head));
  out(width.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells.slice(1)) out(line(r));
}
