import os from 'node:os';
import pg from 'pg';
import { StartupError, maskDatabaseUrl } from '../config.ts';

/** How long the start-up check waits for a server that does not answer at all (a firewall that drops). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Connects once to `url` before anything else uses it, so that a wrong DATABASE_URL becomes one
 * line naming the URL (password masked), the cause and the fix, instead of the ORM's stack trace.
 */
export async function checkDatabase(url: string, source = 'DATABASE_URL'): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // A server that drops the connection after it was made emits 'error' on the client.
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
  } catch (error) {
    throw new StartupError(`cannot connect to the database in ${source} (${maskDatabaseUrl(url)}): ${connectFailure(url, error)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A migration that failed for want of rights (PostgreSQL 15 and later no longer let every user
 * create tables in `public`) as one line; any other failure is a fault of ours and keeps its stack.
 */
export function migrationFailure(url: string, error: unknown, source = 'DATABASE_URL'): unknown {
  if ((error as { code?: unknown }).code !== '42501') return error;
  return new StartupError(
    `cannot apply Baton's migrations to the database in ${source} (${maskDatabaseUrl(url)}): ${(error as Error).message}: ` +
      `let the user create tables (GRANT CREATE ON SCHEMA public TO "${userOf(url)}"), or connect as the database's owner`,
  );
}

/** The cause of a failed connection and what to do about it, in words. */
function connectFailure(url: string, error: unknown): string {
  const parsed = new URL(url);
  const host = decodeURIComponent(parsed.hostname) || parsed.searchParams.get('host') || 'localhost';
  const port = parsed.port || '5432';
  const user = userOf(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\/+/, ''));
  const failure = error as Error & { code?: string; errors?: { code?: string }[] };
  // Node reports a refused dual-stack connect (localhost: ::1 and 127.0.0.1) as an AggregateError.
  const code = failure.code ?? failure.errors?.[0]?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return `connection refused by ${host}:${port} (nothing listens there): start PostgreSQL, or correct the host and port`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return `unknown host "${host}": correct the host name`;
    case 'ETIMEDOUT':
      return `no answer from ${host}:${port}: check the host, the port and any firewall between`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `host ${host} is unreachable: check the host and the network`;
    case '28P01':
      // PostgreSQL says the same for a user it does not know, so as not to tell which users exist.
      return `password authentication failed for user "${user}": correct the user and password (an unknown user fails the same way)`;
    case '28000':
      return /role .* does not exist/.test(failure.message)
        ? `role "${user}" does not exist: create it (CREATE ROLE "${user}" LOGIN PASSWORD '…') or connect as an existing user`
        : `the server refuses this connection (${failure.message}): allow it in the server's pg_hba.conf, or connect as a user it accepts`;
    case '3D000':
      return `database "${database}" does not exist: create it (createdb ${database}), or name an existing database in the URL`;
    case '53300':
      return `the server has no connection slots left (${failure.message}): raise its max_connections, or lower BATON_POOL_SIZE`;
    case '57P03':
      return 'the server is starting up or shutting down: start the broker again in a moment';
  }
  if (/timeout/i.test(failure.message))
    return `no answer from ${host}:${port} within ${CONNECT_TIMEOUT_MS / 1000} s: check the host, the port and any firewall between`;
  return `${failure.message || String(error)}: check the URL and that a PostgreSQL server answers there`;
}

/** The user the connection is made as: node-postgres falls back to PGUSER, then to this process's user. */
function userOf(url: string): string {
  return decodeURIComponent(new URL(url).username) || process.env.PGUSER || os.userInfo().username;
}
