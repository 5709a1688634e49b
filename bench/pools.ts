/** node-postgres pools of the benchmark process and its worker processes. */
import type pg from 'pg';

/** An idle client's error (a backend terminated, the server stopping) is logged, not thrown at the process. */
export function logPoolErrors(pool: pg.Pool, owner: string): void {
  const log = (error: Error) => process.stderr.write(`[${owner} pool] ${error.message}\n`);
  pool.on('error', log);
  pool.on('connect', (client) => client.on('error', log));
}
