import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { withDatabase } from './global-setup.ts';

/** Databases this test file created, and whether each is dropped yet (read by ./leak-check.ts). */
const created = new Map<string, { dropped: boolean }>();
/** Connections found still open on a database as the file dropped it, described. */
const leftOpen: string[] = [];

/**
 * A fresh, migrated database for one test file, cloned from the run's template. Drop it in
 * afterAll; anything left over is dropped when the run ends. Dropping it checks first that the file
 * closed every connection it opened to it (its brokers' pools, LISTEN and leader connections, its
 * own clients): one still open is a leak, reported by ./leak-check.ts once the file is done.
 */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = inject('adminDatabaseUrl');
  const name = `baton_t_${randomBytes(5).toString('hex')}`;
  await withAdmin(adminUrl, (admin) => admin.query(`create database ${name} template ${inject('templateDatabase')}`));
  created.set(name, { dropped: false });
  return {
    url: withDatabase(adminUrl, name),
    drop: () =>
      withAdmin(adminUrl, async (admin) => {
        const state = created.get(name);
        if (state?.dropped) return;
        const open = await openConnections(admin, name);
        if (open.length > 0) leftOpen.push(`${open.length} connection(s) to ${name} still open when it was dropped: ${open.join('; ')}`);
        await admin.query(`drop database if exists ${name} with (force)`);
        if (state) state.dropped = true;
      }),
  };
}

/**
 * Connections to `database`, described, once they stop closing: a client that has just called
 * end() is gone from pg_stat_activity a moment later, so the count is read until it holds still.
 */
async function openConnections(admin: pg.Client, database: string): Promise<string[]> {
  let last: string[] = [];
  for (let tries = 0; tries < 40; tries++) {
    const { rows } = await admin.query<{ who: string }>(
      `select coalesce(nullif(application_name, ''), backend_type) || ' (' || state || ', ' || left(query, 60) || ')' as who
         from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`,
      [database],
    );
    last = rows.map((row) => row.who);
    if (last.length === 0) return last;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return last;
}

/**
 * What this file left open on its databases: connections found as it dropped one, and those of any
 * database it never dropped (which the run's teardown drops later). Each leak is reported once.
 */
export async function leakedConnections(): Promise<string[]> {
  const found = leftOpen.splice(0);
  const undropped = [...created].filter(([, state]) => !state.dropped).map(([name]) => name);
  if (undropped.length > 0) {
    await withAdmin(inject('adminDatabaseUrl'), async (admin) => {
      for (const name of undropped) {
        const open = await openConnections(admin, name);
        if (open.length > 0) found.push(`${open.length} connection(s) to ${name} (never dropped) still open: ${open.join('; ')}`);
      }
    });
  }
  return found;
}

async function withAdmin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Runs one query against `url` on a short-lived connection (for assertions on stored state). */
export async function query<T extends pg.QueryResultRow = any>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  return withAdmin(url, async (client) => (await client.query<T>(text, params)).rows);
}
