/** The one table a run prints: Baton's figure, each peer's, and the ratio Baton ÷ peer. */
import type { Party } from './measure.ts';
import type { Plan } from './plan.ts';

/** A figure, or why there is none. */
export type Cell = number | 'n/a' | 'skipped' | 'error';

export interface Row {
  key: string;
  /** The scenario (--scenarios letter) that fills it: rows of scenarios not run are left out. */
  scenario: string;
  label: string;
  /** Which way is better: for throughput higher, for latency, memory and CPU lower. */
  better: 'higher' | 'lower';
  digits: number;
}

/** How the CPU rows name each party. */
const PARTY_LABELS: Record<Party, string> = {
  server: 'broker/server',
  workers: 'workers',
  postgres: 'PostgreSQL',
  bench: 'producers (bench)',
};

/** The parties that take part in a step: enqueue steps run no workers. */
export const ENQUEUE_PARTIES: Party[] = ['server', 'postgres', 'bench'];
export const DRAIN_PARTIES: Party[] = ['server', 'workers', 'postgres', 'bench'];

/** The key of the row holding `party`'s CPU per job in the step whose figure is row `key`. */
export const cpuKey = (key: string, party: Party) => `${key}:cpu:${party}`;

const cpuRows = (key: string, scenario: string, step: string, parties: Party[]): Row[] =>
  parties.map((party) => ({ key: cpuKey(key, party), scenario, label: `${step}: ${PARTY_LABELS[party]} CPU per job (µs)`, better: 'lower', digits: 0 }));

export function rows(plan: Plan): Row[] {
  const count = (n: number) => n.toLocaleString('en-US');
  const n = count(plan.jobs);
  const backlog = count(plan.backlog);
  const history = count(plan.history);
  const batches = `batches of ${count(plan.batch)}`;
  const all: Row[] = [
    { key: 'A1', scenario: 'A', label: `A. enqueue ${n}, single calls, ${plan.inFlight} in flight (jobs/s)`, better: 'higher', digits: 0 },
    ...cpuRows('A1', 'A', 'A. single calls', ENQUEUE_PARTIES),
    { key: 'A1r', scenario: 'A', label: `A. single calls, one RPC each (Baton: coalesceEnqueues false) (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'A2', scenario: 'A', label: `A. enqueue ${n}, ${batches}, 1 in flight (jobs/s)`, better: 'higher', digits: 0 },
    ...cpuRows('A2', 'A', 'A. batches, 1 in flight', ENQUEUE_PARTIES),
    { key: 'A3', scenario: 'A', label: `A. enqueue ${n}, ${batches}, ${plan.batchesInFlight} in flight (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'B', scenario: 'B', label: `B. drain ${n}, concurrency ${plan.concurrency} (jobs/s)`, better: 'higher', digits: 0 },
    ...cpuRows('B', 'B', 'B. drain', DRAIN_PARTIES),
    { key: 'S1', scenario: 'S', label: `B. drain ${n}, ${plan.scaleProcs} processes × ${plan.concurrency} (jobs/s)`, better: 'higher', digits: 0 },
    {
      key: 'S2',
      scenario: 'S',
      label: `B. drain ${n}, ${plan.brokers} brokers, a process × ${plan.concurrency} on each (jobs/s)`,
      better: 'higher',
      digits: 0,
    },
    { key: 'C50', scenario: 'C', label: `C. enqueue → handler start, p50 (ms)`, better: 'lower', digits: 2 },
    { key: 'C99', scenario: 'C', label: `C. enqueue → handler start, p99 (ms)`, better: 'lower', digits: 2 },
    { key: 'D1', scenario: 'D', label: `D. enqueue single, ${backlog} waiting (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'D2', scenario: 'D', label: `D. enqueue batches, ${backlog} waiting (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'D3', scenario: 'D', label: `D. drain ${n} of ${backlog} waiting (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'E1', scenario: 'E', label: `E. server RSS, ${count(plan.streams)} idle streams (MB)`, better: 'lower', digits: 1 },
    { key: 'E2', scenario: 'E', label: `E. RSS added by the streams (MB)`, better: 'lower', digits: 1 },
    { key: 'E3', scenario: 'E', label: `E. server CPU, idle (% of a core)`, better: 'lower', digits: 2 },
    { key: 'E4', scenario: 'E', label: `E. PostgreSQL CPU, idle (% of a core)`, better: 'lower', digits: 2 },
    { key: 'F1', scenario: 'F', label: `F. enqueue ${n} single, ${history} finished kept (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'F2', scenario: 'F', label: `F. drain ${n}, ${history} finished kept (jobs/s)`, better: 'higher', digits: 0 },
    { key: 'F3', scenario: 'F', label: `F. queue stats (GetQueueStats), p50 (ms)`, better: 'lower', digits: 2 },
    { key: 'F4', scenario: 'F', label: `F. queue stats (GetQueueStats), p99 (ms)`, better: 'lower', digits: 2 },
    { key: 'F5', scenario: 'F', label: `F. /metrics scrape, p50 (ms)`, better: 'lower', digits: 2 },
    { key: 'F6', scenario: 'F', label: `F. /metrics scrape, p99 (ms)`, better: 'lower', digits: 2 },
    { key: 'G1', scenario: 'G', label: `G. tenant B's ${count(plan.tenantB)} jobs behind tenant A's ${n}: wait, p50 (ms)`, better: 'lower', digits: 2 },
    { key: 'G2', scenario: 'G', label: `G. tenant B's ${count(plan.tenantB)} jobs behind tenant A's ${n}: wait, p99 (ms)`, better: 'lower', digits: 2 },
    { key: 'G3', scenario: 'G', label: `G. drain ${n} over ${count(plan.fairKeys)} fair keys (jobs/s)`, better: 'higher', digits: 0 },
  ];
  return all.filter((row) => plan.scenarios.includes(row.scenario));
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
