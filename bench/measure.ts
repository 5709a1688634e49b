/**
 * Clocks, statistics and process readings shared by the scenarios. Times are milliseconds from
 * CLOCK_MONOTONIC (`process.hrtime`), which is one clock for every process on the machine, so a
 * time taken in a worker process can be compared with one taken here.
 */
import { readFileSync } from 'node:fs';

/** Now, in ms on the machine-wide monotonic clock. */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Resident memory of a process, in MB (from /proc; Linux only). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** CPU time a process has used so far (user + system), in ms. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which sits in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

/** Ids of `pid`'s children (for PostgreSQL: its backends and background processes). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** CPU time of each process, by id, ignoring those that have exited. */
export function cpuByPid(pids: number[]): Map<number, number> {
  const times = new Map<number, number>();
  for (const pid of pids) {
    try {
      times.set(pid, cpuMs(pid));
    } catch {
      // gone
    }
  }
  return times;
}

/**
 * CPU used between two readings by `root` and its children (PostgreSQL's postmaster and backends):
 * processes started in between count whole, processes that exited in between are lost.
 */
export function treeCpuSince(root: number, before: Map<number, number>): number {
  let used = 0;
  for (const [pid, t] of cpuByPid([root, ...childPids(root)])) used += t - (before.get(pid) ?? 0);
  return used;
}

/** The parties whose CPU a timed step reads. `server` is Baton's broker(s) or Redis; `bench` is this process (the producers). */
export const PARTIES = ['server', 'workers', 'postgres', 'bench'] as const;
export type Party = (typeof PARTIES)[number];

/** CPU each party used during a timed step: as a percentage of one core, and in µs per job when the step had jobs. */
export interface CpuUse {
  percent: Partial<Record<Party, number>>;
  perJobUs: Partial<Record<Party, number>>;
}

/**
 * Reads the CPU of each party of a timed step: the system's server processes, its worker
 * processes, PostgreSQL (postmaster and backends) and this process. A party that does not exist
 * for a system (no server, no workers in an enqueue step) is left out, not read as zero.
 */
export class CpuMeter {
  readonly #t0 = now();
  readonly #parties: { name: Party; read: () => number; start: number }[] = [];

  constructor(parties: { servers?: number[]; workers?: number[]; postgres?: number }) {
    const add = (name: Party, read: () => number) => {
      try {
        this.#parties.push({ name, read, start: read() });
      } catch {
        // the process is gone
      }
    };
    const sum = (pids: number[]) => () => pids.reduce((total, pid) => total + cpuMs(pid), 0);
    if (parties.servers?.length) add('server', sum(parties.servers));
    if (parties.workers?.length) add('workers', sum(parties.workers));
    if (parties.postgres) {
      const before = cpuByPid([parties.postgres, ...childPids(parties.postgres)]);
      this.#parties.push({ name: 'postgres', read: () => treeCpuSince(parties.postgres!, before), start: 0 });
    }
    add('bench', () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1000;
    });
  }

  /** What each party used since the meter was made; per job over `jobs` jobs. */
  read(jobs: number): CpuUse {
    const elapsed = now() - this.#t0;
    const use: CpuUse = { percent: {}, perJobUs: {} };
    for (const party of this.#parties) {
      try {
        const ms = party.read() - party.start;
        use.percent[party.name] = (ms / elapsed) * 100;
        if (jobs > 0) use.perJobUs[party.name] = (ms * 1000) / jobs;
      } catch {
        // the process exited during the step: no reading
      }
    }
    return use;
  }
}

/** e.g. "CPU % of a core: server 41, workers 33, postgres 62, bench 12; µs per job: server 20, …" for a progress line. */
export function describeCpu(use: CpuUse): string {
  const list = (figures: Partial<Record<Party, number>>) =>
    PARTIES.filter((p) => figures[p] !== undefined)
      .map((p) => `${p} ${Math.round(figures[p]!)}`)
      .join(', ');
  const perJob = list(use.perJobUs);
  return `CPU % of a core: ${list(use.percent)}${perJob ? `; µs per job: ${perJob}` : ''}`;
}
