/**
 * The leader's operations on PostgreSQL: the election itself, and the duties only the leader runs
 * (reaping silent sessions, timing out attempts, promoting scheduled jobs, pruning). Each duty takes
 * an optional `now` (./sql/clock.ts), so that tests move time instead of waiting for it.
 */
import pg from 'pg';
import type { StoreDriver } from './driver.ts';
import { type SqlPool, statement } from './sql-pool.ts';
import { PROMOTE_SCHEDULED } from './sql/promote.ts';
import { FOLD_COUNTS } from './sql/counts.ts';
import { DROP_PARTITION, ENSURE_PARTITIONS, EXPIRED_PARTITIONS, PRUNE_DEFAULT_PARTITION } from './sql/prune.ts';
import { REAP_EXPIRED_SESSIONS } from './sql/reap.ts';
import { TIME_OUT_JOBS } from './sql/time-out.ts';
import { PRUNE_UNIQUE_KEYS } from './sql/unique-keys.ts';

type MaintenanceOperations = Pick<
  StoreDriver,
  'sessionReapExpired' | 'jobTimeOut' | 'jobPromoteScheduled' | 'jobPrune' | 'historyUpkeep' | 'leaderAttemptElect' | 'leaderResign'
>;

const SHORT_LOCK_TIMEOUT = statement('baton_short_lock_timeout', `select set_config('lock_timeout', '2000', true)`);

/** Key of the session advisory lock whose holder is the leader. */
const LEADER_LOCK = 7433002;

export function createMaintenanceOperations(options: { sql: SqlPool; url: string }): MaintenanceOperations {
  const { sql, url } = options;
  // The lock lives as long as this connection: a pooled one would hand it to whoever borrows it
  // next, and a broker that dies must free it with its connection.
  let lockClient: pg.Client | null = null;

  /** Drops the lock's connection; events from a connection already dropped are not a loss. */
  function drop(client: pg.Client): boolean {
    if (lockClient !== client) return false;
    lockClient = null;
    client.end().catch(() => undefined);
    return true;
  }

  return {
    async sessionReapExpired({ now }) {
      return (await sql.run(REAP_EXPIRED_SESSIONS, [now ?? null])).length;
    },

    async jobTimeOut({ graceMs, now }) {
      return (await sql.run(TIME_OUT_JOBS, [now ?? null, graceMs])).length;
    },

    async jobPromoteScheduled({ now }) {
      const [row] = await sql.run(PROMOTE_SCHEDULED, [now ?? null]);
      return { promoted: Number(row.promoted), nextDueMs: row.next_due_ms === null ? null : Number(row.next_due_ms) };
    },

    async jobPrune({ retentionMs, now }) {
      let pruned = 0;
      for (const { name } of await sql.run(EXPIRED_PARTITIONS, [now ?? null, retentionMs])) {
        pruned += await sql.transaction(async (run) => {
          // Dropping a partition locks its parent: give up rather than queue every completion behind a long read.
          await run(SHORT_LOCK_TIMEOUT, []);
          const [row] = await run(DROP_PARTITION, [name]);
          return Number(row.dropped);
        });
      }
      const [row] = await sql.run(PRUNE_DEFAULT_PARTITION, [now ?? null, retentionMs]);
      await sql.run(PRUNE_UNIQUE_KEYS, [now ?? null]);
      return pruned + Number(row.pruned);
    },

    async historyUpkeep({ now }) {
      const [fold] = await sql.run(FOLD_COUNTS, [now ?? null]);
      const [ensure] = await sql.run(ENSURE_PARTITIONS, [now ?? null]);
      return { folded: Number(fold.folded), partitionsCreated: Number(ensure.created) };
    },

    async leaderAttemptElect({ onLost }) {
      let client = lockClient;
      try {
        if (!client) {
          const fresh = new pg.Client({ connectionString: url, keepAlive: true });
          fresh.on('error', () => drop(fresh) && onLost('the leader connection failed'));
          fresh.on('end', () => drop(fresh) && onLost('the leader connection ended'));
          client = lockClient = fresh;
          await fresh.connect();
        }
        const { rows } = await client.query('select pg_try_advisory_lock($1) as won', [LEADER_LOCK]);
        return rows[0].won as boolean;
      } catch (error) {
        if (client) drop(client);
        throw error;
      }
    },

    async leaderResign() {
      const client = lockClient;
      lockClient = null;
      await client?.end().catch(() => undefined);
    },
  };
}
