/**
 * A broker that cannot start says why in one line and exits non-zero, with no stack trace: bad
 * settings (exit 2), a DATABASE_URL that names no database or that the server refuses, a port
 * already taken (exit 1). Each case runs the real entry points (`node server/src/main.ts`,
 * `baton serve`, `baton migrate`) as child processes, against a real PostgreSQL of this file's own
 * whose authentication can be made to refuse.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../server/src/config.ts';
import { createLogger } from '../server/src/logger.ts';
import { type EmbeddedDatabase, freePort, startEmbeddedPostgres } from '../server/src/store/embedded-postgres.ts';
import { type Child, eventually, readyLine, spawnCommand, spawnTs } from './support/processes.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

let folder: string;
let server: EmbeddedDatabase;
/** postgres://baton:baton@127.0.0.1:PORT: the file's own server, which authenticates with scram-sha-256. */
let serverRoot: string;
let serverPort: string;

beforeAll(async () => {
  folder = await mkdtemp(path.join(os.tmpdir(), 'baton-startup-'));
  await chmod(folder, 0o755);
  const dataDir = path.join(folder, 'server');
  server = await startEmbeddedPostgres({ dataDir, port: 0, logger: createLogger('error') });
  serverPort = new URL(server.url).port;
  serverRoot = `postgres://baton:baton@127.0.0.1:${serverPort}`;
  // One user the server trusts without a password: a server that lets a user in unchecked says
  // when the role does not exist, where a password check says only that the check failed.
  const hba = path.join(dataDir, 'pg_hba.conf');
  await writeFile(hba, `host all ghost 127.0.0.1/32 trust\n${await readFile(hba, 'utf8')}`);
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('select pg_reload_conf()');
  await admin.end();
});

afterAll(async () => {
  await server?.stop();
  if (folder) await rm(folder, { recursive: true, force: true });
});

interface Outcome {
  code: number | null;
  output: string;
}

/** The neutral environment every case starts from: no DATABASE_URL of the test run's own, a free port, a folder of this file's. */
function neutral(): Record<string, string> {
  return { DATABASE_URL: '', BATON_PORT: '0', BATON_DATA_DIR: path.join(folder, 'unused') };
}

/** `npm start`'s entry point, run to its end with `env`. */
function run(file: string, env: Record<string, string>): Promise<Outcome> {
  return outcome(spawnTs(file, { ...neutral(), ...env }));
}

/** The `baton` CLI with `args`, run to its end. */
function cli(args: string[], env: Record<string, string>): Promise<Outcome> {
  return outcome(spawnCommand([process.execPath, path.join(ROOT, 'server/src/cli/index.ts'), ...args], { ...neutral(), ...env }));
}

/**
 * Its exit code and output. Each case is meant to refuse within a second; one that started a
 * broker instead is stopped (a drained stop, so that its database stops too) and fails its test.
 */
async function outcome(child: Child): Promise<Outcome> {
  const timer = setTimeout(() => child.process.kill('SIGTERM'), 15_000);
  const code = await child.exited;
  clearTimeout(timer);
  return { code, output: child.output() };
}

/** Exactly `line` and nothing else: one line, no stack trace. */
function expectOneLine(outcome: Outcome, line: string, code: number): void {
  expect(outcome.output, 'a stack trace').not.toMatch(/^\s+at /m);
  expect(outcome.output).toBe(`${line}\n`);
  expect(outcome.code).toBe(code);
}

describe('bad settings: the variable, what it accepts, exit 2', () => {
  it.each([
    [{ BATON_PORT: '70000' }, 'BATON_PORT must be a port number from 0 to 65535 (0 picks a free one), got "70000"'],
    [{ BATON_LOG_LEVEL: 'loud' }, 'BATON_LOG_LEVEL must be debug, info, warn or error, got "loud"'],
    [{ BATON_HEARTBEAT_MS: '99999' }, 'BATON_HEARTBEAT_MS must be a whole number of milliseconds from 1 to BATON_LEASE_TTL_MS - 1 (29999), got "99999"'],
    [{ BATON_RETENTION_MS: '-1' }, 'BATON_RETENTION_MS must be 0 (keep finished jobs) or a whole number of milliseconds of 1000 or more, got "-1"'],
    [{ BATON_DRAIN_MS: '-5' }, 'BATON_DRAIN_MS must be a whole number of milliseconds from 0 to 2147483647, got "-5"'],
    [{ BATON_LEASE_TTL_MS: '99999999999' }, 'BATON_LEASE_TTL_MS must be a whole number of milliseconds from 1000 to 2147483647, got "99999999999"'],
    [{ BATON_QUEUES: 'fib:max_attempts=0' }, 'BATON_QUEUES: queue "fib": max_attempts must be a whole number from 1 to 1000, got "0"'],
    [
      { BATON_GRPC_PORT: '7000', BATON_PORT: '7000' },
      'BATON_GRPC_PORT must differ from BATON_PORT (both are 7000): give the native gRPC port a port of its own',
    ],
    [
      { DATABASE_URL: 'postgres://baton:s3cret@db.example:5432' },
      'DATABASE_URL (postgres://baton:***@db.example:5432) names no database: add one after the host, as in postgres://USER:PASSWORD@HOST:5432/DATABASE',
    ],
    [
      { DATABASE_URL: 'mysql://root@db.example/baton' },
      'DATABASE_URL must start with postgres:// or postgresql://, got "mysql://…": write it as postgres://USER:PASSWORD@HOST:5432/DATABASE',
    ],
    [{ DATABASE_URL: 'host=db user=baton' }, 'DATABASE_URL is not a URL: write it as postgres://USER:PASSWORD@HOST:5432/DATABASE'],
  ])('%o', async (env, message) => {
    expectOneLine(await run('server/src/main.ts', env), `baton: configuration error: ${message}`, 2);
  });

  it('every variable of the README table that takes a number or a word refuses nonsense by its name', async () => {
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
    const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Operating Baton'));
    const variables = [...table.matchAll(/^\| `([A-Z_]+)`/gm)].map((m) => m[1]);
    // Free text: a host, a folder, file paths (read when the broker starts); DATABASE_URL and BATON_QUEUES have cases of their own
    // above, BATON_SCHEDULES (JSON or a file's path) in test/schedule-ticks.test.ts.
    const freeText = new Set(['BATON_HOST', 'DATABASE_URL', 'BATON_DATA_DIR', 'BATON_TLS_CERT', 'BATON_TLS_CLIENT_CA', 'BATON_QUEUES', 'BATON_SCHEDULES']);
    const checked = variables.filter((v) => !freeText.has(v));
    expect(checked.length).toBeGreaterThan(20);
    for (const variable of checked) {
      for (const nonsense of ['-1', 'lots', '1.5']) {
        let refusal: unknown;
        try {
          loadConfig({ [variable]: nonsense });
        } catch (error) {
          refusal = error;
        }
        expect(refusal, `${variable}=${nonsense}`).toBeInstanceOf(ConfigError);
        expect((refusal as Error).message, `${variable}=${nonsense}`).toMatch(new RegExp(`^${variable} must be .+, got "${nonsense.replace('.', '\\.')}"$`));
      }
    }
  });
});

describe('a DATABASE_URL the server refuses: one line naming it, the cause and the fix, exit 1', () => {
  const prefix = (url: string) => `baton: cannot connect to the database in DATABASE_URL (${url})`;

  it('connection refused', async () => {
    const port = await freePort();
    const url = `postgres://baton:hunter2@127.0.0.1:${port}/baton`;
    expectOneLine(
      await run('server/src/main.ts', { DATABASE_URL: url }),
      `${prefix(`postgres://baton:***@127.0.0.1:${port}/baton`)}: connection refused by 127.0.0.1:${port} (nothing listens there): start PostgreSQL, or correct the host and port`,
      1,
    );
  });

  it('unknown host', async () => {
    expectOneLine(
      await run('server/src/main.ts', { DATABASE_URL: 'postgres://baton:hunter2@no-such-host.invalid:5432/baton' }),
      `${prefix('postgres://baton:***@no-such-host.invalid:5432/baton')}: unknown host "no-such-host.invalid": correct the host name`,
      1,
    );
  });

  it('wrong password', async () => {
    const url = `postgres://baton:wrong@127.0.0.1:${serverPort}/postgres`;
    expectOneLine(
      await run('server/src/main.ts', { DATABASE_URL: url }),
      `${prefix(`postgres://baton:***@127.0.0.1:${serverPort}/postgres`)}: password authentication failed for user "baton": correct the user and password (an unknown user fails the same way)`,
      1,
    );
  });

  it('unknown user, where the server checks passwords', async () => {
    const url = `postgres://nobody:pw@127.0.0.1:${serverPort}/postgres`;
    expectOneLine(
      await run('server/src/main.ts', { DATABASE_URL: url }),
      `${prefix(`postgres://nobody:***@127.0.0.1:${serverPort}/postgres`)}: password authentication failed for user "nobody": correct the user and password (an unknown user fails the same way)`,
      1,
    );
  });

  it('unknown role, where the server says so', async () => {
    const url = `postgres://ghost@127.0.0.1:${serverPort}/postgres`;
    expectOneLine(
      await run('server/src/main.ts', { DATABASE_URL: url }),
      `${prefix(url)}: role "ghost" does not exist: create it (CREATE ROLE "ghost" LOGIN PASSWORD '…') or connect as an existing user`,
      1,
    );
  });

  it('no such database', async () => {
    expectOneLine(
      await run('server/src/main.ts', { DATABASE_URL: `${serverRoot}/jobs_db` }),
      `${prefix(`postgres://baton:***@127.0.0.1:${serverPort}/jobs_db`)}: database "jobs_db" does not exist: create it (createdb jobs_db), or name an existing database in the URL`,
      1,
    );
  });

  it('baton serve says it the same way; baton migrate too, after its own name', async () => {
    const port = await freePort();
    const url = `postgres://baton:hunter2@127.0.0.1:${port}/baton`;
    const line = `cannot connect to the database in DATABASE_URL (postgres://baton:***@127.0.0.1:${port}/baton): connection refused by 127.0.0.1:${port} (nothing listens there): start PostgreSQL, or correct the host and port`;
    expectOneLine(await cli(['serve'], { DATABASE_URL: url, BATON_PORT: '0' }), `baton: ${line}`, 1);
    expectOneLine(await cli(['migrate'], { DATABASE_URL: url }), `baton migrate: ${line}`, 1);
    expectOneLine(
      await cli(['migrate'], { DATABASE_URL: `${serverRoot}/jobs_db` }),
      `baton migrate: cannot connect to the database in DATABASE_URL (postgres://baton:***@127.0.0.1:${serverPort}/jobs_db): database "jobs_db" does not exist: create it (createdb jobs_db), or name an existing database in the URL`,
      1,
    );
    expectOneLine(
      await cli(['migrate'], { DATABASE_URL: 'postgres://baton:s3cret@db.example:5432' }),
      'baton migrate: configuration error: DATABASE_URL (postgres://baton:***@db.example:5432) names no database: add one after the host, as in postgres://USER:PASSWORD@HOST:5432/DATABASE',
      2,
    );
  });
});

describe('where to listen', () => {
  it("a BATON_HOST that is not this machine's, or not a host at all", async () => {
    const open = { BATON_INSECURE_ALLOW_OPEN: '1', DATABASE_URL: `${serverRoot}/postgres` };
    expectOneLine(
      await run('server/src/main.ts', { ...open, BATON_HOST: '192.0.2.1' }),
      'baton: BATON_HOST 192.0.2.1 is not an address of this machine: use 127.0.0.1, 0.0.0.0 or one of its own addresses',
      1,
    );
    expectOneLine(
      await run('server/src/main.ts', { ...open, BATON_HOST: 'no-such-host.invalid' }),
      'baton: BATON_HOST no-such-host.invalid is not a known host name: use an IP address or a name this machine resolves',
      1,
    );
  });

  it('a port already taken is refused before any database is started or touched', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      const dataDir = path.join(folder, 'never-started');
      expectOneLine(
        await run('server/src/main.ts', { BATON_PORT: String(taken), BATON_DATA_DIR: dataDir }),
        `baton: BATON_PORT ${taken} on 127.0.0.1 is already in use (by another broker?): stop what listens there, or set BATON_PORT to a free port (0 picks one)`,
        1,
      );
      // No initdb ran, and the folder's lock was let go.
      expect(existsSync(dataDir)).toBe(false);
      expect(existsSync(`${dataDir}.lock`)).toBe(false);
      expectOneLine(
        await run('server/src/main.ts', { BATON_GRPC_PORT: String(taken), DATABASE_URL: `${serverRoot}/postgres` }),
        `baton: BATON_GRPC_PORT ${taken} on 127.0.0.1 is already in use (by another broker?): stop what listens there, or set BATON_GRPC_PORT to a free port (0 picks one)`,
        1,
      );
    } finally {
      holder.close();
    }
  });
});

describe('a first start', () => {
  it('makes the data folder and its parent, as in a fresh clone without ./.baton, and stops cleanly', async () => {
    const dataDir = path.join(folder, 'fresh-clone', '.baton', 'pgdata');
    const child = spawnTs('server/src/main.ts', { ...neutral(), BATON_DATA_DIR: dataDir });
    await eventually(() => readyLine(child.output()) || child.process.exitCode !== null, 30_000, 'the broker to start or exit');
    expect(readyLine(child.output())).toBeDefined();
    child.process.kill('SIGINT');
    expect(await child.exited).toBe(0);
    expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(existsSync(`${dataDir}.lock`)).toBe(false);
  });
});
