/** The one table a run prints: Baton's figure, each peer's, and the ratio Baton ÷ peer. */
import type { Plan } from './plan.ts';

/** A figure, or why there is none. */
export type Cell = number | 'n/a' | 'skipped' | 'error';

export interface Row {
  key: string;
  label: string;
  /** Which way is better: for throughput higher, for latency, memory and CPU lower. */
  better: 'higher' | 'lower';
  digits: number;
}

export function rows(plan: Plan): Row[] {
  const n = plan.jobs.toLocaleString('en-US');
  const backlog = plan.backlog.toLocaleString('en-US');
  const batch = plan.batch.toLocaleString('en-US');
  const streams = plan.streams.toLocaleString('en-US');
  return [
    { key: 'A1', label: `A. enqueue ${n}, single calls, ${plan.inFlight} in flight (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'A2', label: `A. enqueue ${n}, batches of ${batch} (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'B', label: `B. drain ${n}, concurrency ${plan.concurrency} (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'C50', label: `C. enqueue → handler start, p50 (ms)`, better: 'lower', digits: 2 },
    { key: 'C99', label: `C. enqueue → handler start, p99 (ms)`, better: 'lower', digits: 2 },
    { key: 'D1', label: `D. enqueue single, ${backlog} waiting (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'D2', label: `D. enqueue batches, ${backlog} waiting (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'D3', label: `D. drain ${n} of ${backlog} waiting (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'E1', label: `E. server RSS, ${streams} idle streams (MB)`, better: 'lower', digits: 1 },
    { key: 'E2', label: `E. RSS added by the streams (MB)`, better: 'lower', digits: 1 },
    { key: 'E3', label: `E. server CPU, idle (% of a core)`, better: 'lower', digits: 2 },
    { key: 'E4', label: `E. PostgreSQL CPU, idle (% of a core)`, better: 'lower', digits: 2 },
  ];
}

/** Figures by row key, then by system name. */
export type Results = Map<string, Map<string, Cell>>;

export function record(results: Results, key: string, system: string, value: Cell): void {
  if (!results.has(key)) results.set(key, new Map());
  results.get(key)!.set(system, value);
}

const format = (cell: Cell | undefined, digits: number): string => {
  if (cell === undefined) return '—';
  if (typeof cell !== 'number') return cell;
  if (Number.isNaN(cell)) return '—';
  return cell.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
};

const ratio = (baton: Cell | undefined, peer: Cell | undefined): string => {
  if (typeof baton !== 'number' || typeof peer !== 'number' || !Number.isFinite(baton) || !Number.isFinite(peer) || peer === 0) return '—';
  return `${(baton / peer).toFixed(2)}×`;
};

/** A Markdown table, columns padded so that it also reads well in a terminal. */
export function renderTable(plan: Plan, results: Results, systems: string[]): string {
  const [baton, ...peers] = systems;
  const header = ['Scenario', 'better', baton!, ...peers.flatMap((p) => [p, `Baton/${p}`])];
  const body = rows(plan).map((row) => {
    const cells = results.get(row.key) ?? new Map<string, Cell>();
    const b = cells.get(baton!);
    return [
      row.label,
      row.better === 'higher' ? 'higher' : 'lower',
      format(b, row.digits),
      ...peers.flatMap((p) => [format(cells.get(p), row.digits), ratio(b, cells.get(p))]),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...body.map(line)].join('\n');
}
