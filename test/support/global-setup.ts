import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../server/src/store/embedded-postgres.ts';
import { migrate, openOrm } from '../../server/src/store/orm.ts';
import { createLogger } from '../../server/src/logger.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A URL with rights to create databases. */
    adminDatabaseUrl: string;
    /** A migrated database that each test file clones (CREATE DATABASE … TEMPLATE). */
    templateDatabase: string;
  }
}

/**
 * One PostgreSQL for the whole run: the one in DATABASE_URL when given (CI runs the suite once
 * against the machine's server that way), else an embedded one in a temporary folder. The schema
 * is migrated once into a template database; every test file clones it, as graphile-worker does,
 * so files are isolated from each other and cost ~50 ms to set up instead of a migration each.
 */
export default async function setup(project: TestProject) {
  let embedded: EmbeddedDatabase | null = null;
  let dataRoot: string | null = null;
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    dataRoot = await mkdtemp(path.join(os.tmpdir(), 'baton-test-pg-'));
    await chmod(dataRoot, 0o755);
    embedded = await startEmbeddedPostgres({
      dataDir: path.join(dataRoot, 'data'),
      port: 0,
      logger: createLogger('warn'),
    });
    adminUrl = embedded.url;
  }
  const template = `baton_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${template}`);
  await admin.query(`create database ${template}`);
  const templateUrl = withDatabase(adminUrl, template);
  const orm = await openOrm(templateUrl, 2);
  await migrate(orm, templateUrl);
  await orm.close();
  project.provide('adminDatabaseUrl', adminUrl);
  project.provide('templateDatabase', template);

  return async () => {
    const { rows } = await admin.query(`select datname from pg_database where datname like 'baton_t_%' or datname = $1`, [template]);
    for (const { datname } of rows) await admin.query(`drop database if exists ${datname} with (force)`).catch(() => undefined);
    await admin.end();
    await embedded?.stop();
    if (dataRoot) await rm(dataRoot, { recursive: true, force: true });
  };
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
