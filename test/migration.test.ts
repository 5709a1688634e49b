// The job-history migration converts a database filled under the previous layout (one job table)
// in place: every job, idempotency key and count survives, and the driver works on the result.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../server/src/logger.ts';
import { createPostgresDriver, type PostgresDriver } from '../server/src/store/postgres-driver.ts';
import { openOrm } from '../server/src/store/orm.ts';
import { createTestDatabase, query } from './support/database.ts';
import { newJob } from './store-driver/harness.ts';

const PREVIOUS = 'Migration20261124100000_queue_watchers';

describe('Migration20261205000000_job_history', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let orm: Awaited<ReturnType<typeof openOrm>>;
  let driver: PostgresDriver;
  const before: Record<string, unknown>[] = [];

  beforeAll(async () => {
    // The test template is migrated to the latest schema: start from an empty database instead.
    db = await createTestDatabase();
    await query(db.url, `drop schema public cascade; create schema public`);
    orm = await openOrm(db.url, 2);
    await orm.migrator.up({ to: PREVIOUS });
    await query(db.url, `insert into baton_queues (name) values ('old'), ('other')`);
    await query(
      db.url,
      `insert into baton_sessions (id, worker_id, broker_id, queues, capacity, expires_at) overriding system value
      values (7, 'w', 'b', '{old}', 5, now() + interval '1 hour')`,
    );
    // One job in each status, finished ones spread over three days, some with idempotency keys.
    await query(
      db.url,
      `insert into baton_jobs (queue, status, payload, max_attempts, attempt, idempotency_key, result, errors, started_at, finished_at, lease_token, session_id, worker_id)
       values
         ('old', 'pending', '{"n": 1}', 3, 0, 'key-pending', null, '[]', null, null, null, null, null),
         ('old', 'scheduled', '{"n": 2}', 3, 1, null, null, '[{"attempt": 1, "message": "boom", "at": "2026-12-01T00:00:00Z", "worker_id": "w"}]', now(), null, null, null, 'w'),
         ('old', 'running', '{"n": 3}', 3, 1, null, null, '[]', now(), null, 41, 7, 'w'),
         ('old', 'completed', '{"n": 4}', 3, 1, 'key-done', '{"ok": true}', '[]', now(), now() - interval '2 days', null, 7, 'w'),
         ('old', 'completed', '{"n": 5}', 3, 1, null, '{"ok": 2}', '[]', now(), now() - interval '1 day', null, 7, 'w'),
         ('other', 'failed', '{"n": 6}', 1, 1, 'key-failed', null, '[{"attempt": 1, "message": "bad", "at": "2026-12-01T00:00:00Z", "worker_id": "w"}]', now(), now(), null, 7, 'w'),
         ('other', 'cancelled', '{"n": 7}', 3, 0, null, null, '[]', null, now(), null, null, null)`,
    );
    before.push(...(await query(db.url, `select to_jsonb(j) as row from baton_jobs j order by id`)).map((r) => r.row));
    await orm.migrator.up();
    driver = createPostgresDriver({ orm, url: db.url, logger: createLogger('error'), poolSize: 2 });
  });

  afterAll(async () => {
    await driver?.close();
    await orm?.close();
    await db?.drop();
  });

  it('keeps every job, field for field, live ones live and finished ones in history', async () => {
    const after = (await query(db.url, `select to_jsonb(j) as row from baton_jobs j order by id`)).map((r) => r.row);
    // Columns that later migrations add (the scheduling issue's job keys) are new, and null on old jobs.
    const added = Object.keys(after[0]).filter((column) => !(column in before[0]));
    for (const row of after) for (const column of added) expect([column, row[column]]).toEqual([column, null]);
    expect(after.map((row) => Object.fromEntries(Object.entries(row).filter(([column]) => !added.includes(column))))).toEqual(before);
    const live = await query(db.url, `select status from baton_live_jobs order by id`);
    expect(live.map((r) => r.status)).toEqual(['pending', 'scheduled', 'running']);
    const history = await query(db.url, `select status, tableoid::regclass::text as partition from baton_job_history order by id`);
    expect(history.map((r) => r.status)).toEqual(['completed', 'completed', 'failed', 'cancelled']);
    expect(history.filter((r) => r.partition === 'baton_job_history_done_default')).toEqual([]);
  });

  it('counts as the rows did', async () => {
    expect(await driver.jobCountByQueue()).toEqual(
      new Map([
        ['old', { pending: 1, scheduled: 1, running: 1, completed: 2 }],
        ['other', { failed: 1, cancelled: 1 }],
      ]),
    );
  });

  it('keeps idempotency keys taken: a repeated key answers with the migrated job', async () => {
    for (const key of ['key-pending', 'key-done', 'key-failed']) {
      const [entry] = await driver.jobEnqueue({ jobs: [newJob('old', { idempotencyKey: key })] });
      expect(entry.duplicate).toBe(true);
      expect(entry.job.idempotencyKey).toBe(key);
    }
  });

  it('lets the migrated jobs go on: the running one completes, the failed one is retried', async () => {
    const [running] = await query(db.url, `select id::text from baton_live_jobs where status = 'running'`);
    expect(await driver.jobComplete({ results: [{ id: running.id, token: '41', resultJson: '1' }] })).toEqual(new Set([running.id]));
    const [failed] = await query(db.url, `select id::text from baton_job_history where status = 'failed'`);
    expect((await driver.jobRetry({ id: failed.id }))?.status).toBe('pending');
    expect((await driver.jobCountByQueue()).get('other')).toEqual({ pending: 1, cancelled: 1 });
  });
});
