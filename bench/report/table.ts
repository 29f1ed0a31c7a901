/** Plain-text tables (what `npm run bench` prints) and their Markdown form (bench/README.md). */
import type { Cell, RunResults, ScenarioResult, Table } from './results.js';

const text = (c: Cell) => (c === null ? '—' : String(c));

export function renderTable(table: Table): string {
  const widths = table.columns.map((col, i) =>
    Math.max(col.length, ...table.rows.map((row) => text(row[i] ?? null).length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ');
  return [
    line(table.columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...table.rows.map((row) => line(row.map(text))),
  ].join('\n');
}

export function renderScenario(result: ScenarioResult): string {
  const notes = result.notes.map((n) => `  · ${n}`).join('\n');
  return `${result.title}\n${renderTable(result.table)}${notes ? `\n${notes}` : ''}\n`;
}

export function renderRun(run: RunResults): string {
  const m = run.machine;
  const head = `kube-crl-proxy benchmark — ${m.date}, ${m.nproc} cores (${m.cpuModel}), kernel ${m.kernel}, node ${m.node}, ${m.haproxy}, ${m.nginx}, ${m.openssl}, commit ${m.commit}; ${run.options.quick ? 'quick' : 'full'} run, median of ${run.options.rounds} rounds, ${run.wallSeconds.toFixed(0)} s; kube-crl-proxy: ${run.proxy}
Proxy (kube-crl-proxy or HAProxy, 1 thread) pinned to core 0; load generators and upstreams on core 1. CPU = utime+stime of the proxy process per operation.
`;
  return [head, ...run.scenarios.map(renderScenario)].join('\n');
}

export function markdownTable(table: Table): string {
  const row = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [
    row(table.columns.map(String)),
    row(table.columns.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...table.rows.map((r) => row(r.map(text))),
  ].join('\n');
}
