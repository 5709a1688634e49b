import type { MikroORM } from '@mikro-orm/postgresql';
import { loadDatabaseSettings } from '../config.ts';
import { createLogger } from '../logger.ts';
import { checkDatabase, migrationFailure } from '../store/database-check.ts';
import { embeddedDatabaseUrl, runningPostmaster } from '../store/data-dir.ts';
import type { StoreDriver } from '../store/driver.ts';
import { migrate, openOrm } from '../store/orm.ts';
import { createPostgresDriver } from '../store/postgres-driver.ts';

/** The database a command works on, open; `close()` also stops an embedded PostgreSQL it started. */
export interface CliDatabase {
  orm: MikroORM;
  /** The store's operations on it (its pool connects only when an operation needs it). */
  store: StoreDriver;
  /** "DATABASE_URL", "the running embedded PostgreSQL in DIR" or "the embedded PostgreSQL in DIR". */
  description: string;
  /** Names of the migrations this command applied (usually none: brokers migrate at start too). */
  applied: string[];
  close(): Promise<void>;
}

/**
 * Opens the broker's database the way the broker finds it: DATABASE_URL when set; otherwise the
 * embedded PostgreSQL in BATON_DATA_DIR (default ./.baton/pgdata) — the one a broker is running
 * right now if there is one (found through its postmaster.pid, and left running), else started for
 * this command and stopped after it. Pending migrations are applied, as a broker would at start.
 * `command` names this command to a broker refused the folder meanwhile.
 */
export async function openCliDatabase(env: NodeJS.ProcessEnv, command = 'a baton command'): Promise<CliDatabase> {
  // The broker's own rules and messages: a bad variable or an unreachable database is one line.
  const settings = loadDatabaseSettings(env);
  // Quieter than a broker unless asked: a command's output is its answer.
  const logger = createLogger(env.BATON_LOG_LEVEL ? settings.logLevel : 'warn');
  let url = settings.databaseUrl;
  let description = 'DATABASE_URL';
  let stopEmbedded = async () => {};
  if (url) await checkDatabase(url);
  else {
    const { dataDir } = settings;
    // A server already running on the folder (a broker's) must be used, not started again:
    // starting would stop it under the running broker.
    const running = runningPostmaster(dataDir);
    if (running && running.port > 0) {
      url = embeddedDatabaseUrl(running.port);
      description = `the running embedded PostgreSQL in ${dataDir}`;
    } else {
      const { startEmbeddedPostgres } = await import('../store/embedded-postgres.ts');
      const embedded = await startEmbeddedPostgres({ dataDir, port: settings.embeddedPostgresPort, logger, owner: command });
      url = embedded.url;
      description = `the embedded PostgreSQL in ${dataDir}`;
      stopEmbedded = () => embedded.stop(5_000);
    }
  }
  let orm: MikroORM | undefined;
  let applied: string[];
  try {
    orm = await openOrm(url, 2);
    applied = (await orm.migrator.getPending()).map((migration) => migration.name);
    await migrate(orm, url).catch((error) => {
      throw migrationFailure(url, error, description);
    });
  } catch (error) {
    await orm?.close().catch(() => undefined);
    await stopEmbedded().catch(() => undefined);
    throw error;
  }
  const opened = orm;
  const store = createPostgresDriver({ orm: opened, url, logger, poolSize: 2 });
  return {
    orm: opened,
    store,
    description,
    applied,
    async close() {
      await store.close();
      await opened.close();
      await stopEmbedded();
    },
  };
}
