/**
 * Gauges of the broker's database connection pools: how many connections are open, how many of
 * them are busy, and how many callers wait for one. A pool whose `waiting` stays above zero is the
 * database being the bottleneck (or the pool too small: BATON_POOL_SIZE).
 */
import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';

/** One pool's figures, read at scrape time. */
export interface PoolStats {
  /** Connections open, busy or idle. */
  total: number;
  idle: number;
  /** Callers waiting for a connection. */
  waiting: number;
  /** The most connections the pool opens. */
  max: number;
}

/** A `pg` pool's figures (the ORM's pool is one). */
export function pgPoolStats(pool: pg.Pool): () => PoolStats {
  return () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: pool.options.max ?? 10 });
}

type Guard = (name: string, collect: () => void) => () => Promise<void>;

/** Registers the pool gauges, one `pool` label value per entry of `pools`. */
export function registerPoolGauges(registry: Registry, pools: Record<string, () => PoolStats>, guarded: Guard): void {
  const registers = [registry];
  const read = () => Object.entries(pools).map(([pool, stats]) => ({ pool, ...stats() }));
  const connections: Gauge<'pool' | 'state'> = new Gauge({
    name: 'baton_db_pool_connections',
    help: 'Database connections open in each of this broker\'s pools (pool="hot": claims, results and heartbeats; pool="orm": reads and settings), by state: busy or idle.',
    labelNames: ['pool', 'state'] as const,
    registers,
    collect: guarded('baton_db_pool_connections', () => {
      for (const { pool, total, idle } of read()) {
        connections.set({ pool, state: 'busy' }, total - idle);
        connections.set({ pool, state: 'idle' }, idle);
      }
    }),
  });
  const waiting: Gauge<'pool'> = new Gauge({
    name: 'baton_db_pool_waiting',
    help: "Callers waiting for a connection of each of this broker's pools.",
    labelNames: ['pool'] as const,
    registers,
    collect: guarded('baton_db_pool_waiting', () => {
      for (const { pool, waiting: n } of read()) waiting.set({ pool }, n);
    }),
  });
  const max: Gauge<'pool'> = new Gauge({
    name: 'baton_db_pool_max_connections',
    help: "The most connections each of this broker's pools opens.",
    labelNames: ['pool'] as const,
    registers,
    collect: guarded('baton_db_pool_max_connections', () => {
      for (const { pool, max: n } of read()) max.set({ pool }, n);
    }),
  });
}
