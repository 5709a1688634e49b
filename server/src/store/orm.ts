import { MikroORM } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import pg from 'pg';
import { ENTITIES } from './entities.ts';
import { Migration20261123000000_initial } from './migrations/Migration20261123000000_initial.ts';
import { Migration20261123100000_api_keys } from './migrations/Migration20261123100000_api_keys.ts';
import { Migration20261124000000_lean_job_indexes } from './migrations/Migration20261124000000_lean_job_indexes.ts';
import { Migration20261124100000_queue_watchers } from './migrations/Migration20261124100000_queue_watchers.ts';
import { Migration20261205000000_job_history } from './migrations/Migration20261205000000_job_history.ts';
import { Migration20261205100000_schedules } from './migrations/Migration20261205100000_schedules.ts';
import { Migration20261205110000_unique_jobs } from './migrations/Migration20261205110000_unique_jobs.ts';
import { Migration20261205110100_rate_limits } from './migrations/Migration20261205110100_rate_limits.ts';
import { Migration20261205110200_fair_keys } from './migrations/Migration20261205110200_fair_keys.ts';
import { Migration20261205110300_fair_cursor } from './migrations/Migration20261205110300_fair_cursor.ts';

/** Checked-in migrations, in order; listed rather than discovered so that no file globbing happens at start-up. */
export const MIGRATIONS = [
  Migration20261123000000_initial,
  Migration20261123100000_api_keys,
  Migration20261124000000_lean_job_indexes,
  Migration20261124100000_queue_watchers,
  Migration20261205000000_job_history,
  Migration20261205100000_schedules,
  Migration20261205110000_unique_jobs,
  Migration20261205110100_rate_limits,
  Migration20261205110200_fair_keys,
  Migration20261205110300_fair_cursor,
];

/** Connects the ORM (and its pool) to `url`. */
export async function openOrm(url: string, poolSize: number): Promise<MikroORM> {
  return MikroORM.init({
    clientUrl: url,
    entities: ENTITIES,
    extensions: [Migrator],
    pool: { min: 1, max: poolSize },
    migrations: { migrationsList: MIGRATIONS, tableName: 'baton_migrations', snapshot: false, silent: true },
    // Identity-map-free reads: every call forks its own EntityManager, so nothing is shared by accident.
    allowGlobalContext: false,
    debug: false,
    ensureDatabase: false,
  });
}

/**
 * Applies pending migrations. Several brokers may start at once against one database; a session
 * advisory lock, held on a connection of its own, makes the others wait for the first.
 */
export async function migrate(orm: MikroORM, url: string): Promise<void> {
  const lock = new pg.Client({ connectionString: url });
  await lock.connect();
  try {
    await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await orm.migrator.up();
  } finally {
    await lock.end();
  }
}

const MIGRATION_LOCK = 7433001;
