import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import { defaultConfig, type LogLevel } from '../config.ts';
import { createLogger } from '../logger.ts';
import { migrate, openOrm } from '../store/orm.ts';

/** The database a command works on, open; `close()` also stops an embedded PostgreSQL it started. */
export interface CliDatabase {
  orm: MikroORM;
  /** "DATABASE_URL", "the running embedded PostgreSQL in DIR" or "the embedded PostgreSQL in DIR". */
  description: string;
  /** Names of the migrations this command applied (usually none: brokers migrate at start too). */
  applied: string[];
  close(): Promise<void>;
}

// The credentials server/src/store/embedded-postgres.ts gives the embedded server.
const EMBEDDED_USER = 'baton';
const EMBEDDED_PASSWORD = 'baton';

/**
 * Opens the broker's database the way the broker finds it: DATABASE_URL when set; otherwise the
 * embedded PostgreSQL in BATON_DATA_DIR (default ./.baton/pgdata) — the one a broker is running
 * right now if there is one (found through its postmaster.pid, and left running), else started for
 * this command and stopped after it. Pending migrations are applied, as a broker would at start.
 */
export async function openCliDatabase(env: NodeJS.ProcessEnv): Promise<CliDatabase> {
  const logger = createLogger((env.BATON_LOG_LEVEL as LogLevel) || 'warn');
  let url = env.DATABASE_URL || undefined;
  let description = 'DATABASE_URL';
  let stopEmbedded = async () => {};
  if (!url) {
    const dataDir = env.BATON_DATA_DIR ? path.resolve(env.BATON_DATA_DIR) : defaultConfig().dataDir;
    const runningPort = runningEmbeddedPort(dataDir);
    if (runningPort !== null) {
      url = `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${runningPort}/postgres`;
      description = `the running embedded PostgreSQL in ${dataDir}`;
    } else {
      const { startEmbeddedPostgres } = await import('../store/embedded-postgres.ts');
      const port = Number(env.BATON_EMBEDDED_PG_PORT || 0);
      const embedded = await startEmbeddedPostgres({ dataDir, port, logger });
      url = embedded.url;
      description = `the embedded PostgreSQL in ${dataDir}`;
      stopEmbedded = () => embedded.stop();
    }
  }
  let orm: MikroORM | undefined;
  let applied: string[];
  try {
    orm = await openOrm(url, 2);
    applied = (await orm.migrator.getPending()).map((migration) => migration.name);
    await migrate(orm, url);
  } catch (error) {
    await orm?.close().catch(() => undefined);
    await stopEmbedded().catch(() => undefined);
    throw error;
  }
  const opened = orm;
  return {
    orm: opened,
    description,
    applied,
    async close() {
      await opened.close();
      await stopEmbedded();
    },
  };
}

/**
 * The port of a PostgreSQL already running on `dataDir` (a broker's embedded one), or null. Such a
 * server must be used, not started again: starting would stop it under the running broker.
 * postmaster.pid holds the pid on its first line and the port on its fourth.
 */
function runningEmbeddedPort(dataDir: string): number | null {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return null;
  try {
    process.kill(pid, 0);
    return port;
  } catch (error) {
    // EPERM: alive but another user's (the `postgres` user when the broker runs as root).
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? port : null;
  }
}
