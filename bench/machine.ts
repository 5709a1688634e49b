/** The machine a run happened on, for the report: CPU, cores, memory, OS, Node, PostgreSQL, Redis. */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export function describeMachine(postgres: string, redis: string): string[] {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
  const gib = (os.totalmem() / 2 ** 30).toFixed(1);
  return [
    `CPU: ${model}, ${os.availableParallelism()} cores; RAM ${gib} GiB; ${os.type()} ${os.release()}`,
    `Node ${process.version}; ${postgres}`,
    `Redis: ${redis}`,
  ];
}
