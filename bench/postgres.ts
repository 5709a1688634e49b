/**
 * The one PostgreSQL of a benchmark run: the embedded server the broker itself uses (its binaries,
 * its configuration, PostgreSQL's durable defaults), in a temporary folder removed at the end, or
 * the server in BENCH_DATABASE_URL. Every system gets a fresh database of its own on it.
 */
import { readFileSync, rmSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createLogger } from '../server/src/logger.ts';
import { startEmbeddedPostgres } from '../server/src/store/embedded-postgres.ts';

export interface BenchPostgres {
  /** URL of the maintenance database (rights to create databases). */
  adminUrl: string;
  /** The postmaster's process id when it runs on this machine and we know it (for CPU readings). */
  pid: number | undefined;
  /** e.g. "PostgreSQL 18.1 (embedded), fsync=on, synchronous_commit=on, shared_buffers=128MB" */
  description: string;
  /** Writes dirty pages out now, so that a checkpoint is less likely to land inside a timed step. */
  checkpoint(): Promise<void>;
  /** Creates (or recreates) a database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<BenchPostgres> {
  let adminUrl = process.env.BENCH_DATABASE_URL;
  let stopServer = async () => {};
  let pid: number | undefined;
  const origin = adminUrl ? 'external' : 'embedded';
  if (!adminUrl) {
    const root = await mkdtemp(path.join(os.tmpdir(), 'baton-bench-pg-'));
    await chmod(root, 0o755); // the postgres user must reach the data folder when we run as root
    const dataDir = path.join(root, 'data');
    // Interrupted runs too: embedded-postgres stops its server on SIGINT/SIGTERM before exiting.
    process.on('exit', () => rmSync(root, { recursive: true, force: true }));
    const server = await startEmbeddedPostgres({ dataDir, port: 0, logger: createLogger('warn') });
    adminUrl = server.url;
    pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    stopServer = async () => {
      await server.stop();
      await rm(root, { recursive: true, force: true });
    };
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  admin.on('error', (error) => process.stderr.write(`[bench admin connection] ${error.message}\n`));
  await admin.connect();
  const show = async (name: string) => (await admin.query(`show ${name}`)).rows[0][name] as string;
  const version = (await show('server_version')).split(' ')[0];
  const fsync = await show('fsync');
  const syncCommit = await show('synchronous_commit');
  if (fsync !== 'on' || syncCommit !== 'on') {
    throw new Error(`PostgreSQL must be durable for the benchmark: fsync=${fsync}, synchronous_commit=${syncCommit}`);
  }
  const description =
    `PostgreSQL ${version} (${origin}), fsync=${fsync}, synchronous_commit=${syncCommit}, ` +
    `wal_sync_method=${await show('wal_sync_method')}, shared_buffers=${await show('shared_buffers')}`;
  const created: string[] = [];
  return {
    adminUrl,
    pid,
    description,
    async checkpoint() {
      await admin.query('checkpoint');
    },
    async createDatabase(name) {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.query(`create database ${name}`);
      created.push(name);
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      return url.toString();
    },
    async stop() {
      for (const name of created) await admin.query(`drop database if exists ${name} with (force)`).catch(() => undefined);
      await admin.end();
      await stopServer();
    },
  };
}
