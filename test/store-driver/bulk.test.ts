/**
 * jobBulkAction against PostgreSQL: each action's change to each status, the filters, batches and
 * the cursor, dry runs that count exactly what the real run then changes, rows locked elsewhere
 * skipped, counters that stay equal to the rows, and a bulk retry of 100,000 FAILED jobs.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { BulkAction } from '../../server/src/domain/bulk-actions.ts';
import type { JobBulkFilter, JobBulkOutcome, StoreDriver } from '../../server/src/store/driver.ts';
import { query } from '../support/database.ts';
import { completedJob, enqueue, failedJob, listen, newJob, runningJob, useDriver } from './harness.ts';

const h = useDriver();

/** Every batch of an action until a short one, as the API's callers loop; the summed outcome. */
async function runAll(driver: StoreDriver, action: BulkAction, filter: JobBulkFilter, options: { limit?: number; dryRun?: boolean } = {}) {
  const limit = options.limit ?? 1000;
  let afterId: string | undefined;
  let total = 0;
  let requested = 0;
  let batches = 0;
  for (;;) {
    const outcome: JobBulkOutcome = await driver.jobBulkAction({ action, filter, afterId, limit, dryRun: options.dryRun });
    batches++;
    total += outcome.changed;
    requested += outcome.cancelRequested;
    if (outcome.changed < limit || outcome.lastId === null) return { total, requested, batches };
    afterId = outcome.lastId;
  }
}

/** The counters, as GetQueueStats reads them, must equal the rows. */
async function expectCountersMatchRows() {
  const rows = await query<{ queue: string; status: string; n: number }>(h.url, 'select queue, status, count(*)::int as n from baton_jobs group by 1, 2');
  const expected = new Map<string, Record<string, number>>();
  for (const row of rows) expected.set(row.queue, { ...expected.get(row.queue), [row.status]: row.n });
  const counted = await h.driver.jobCountByQueue();
  for (const [queue, counts] of counted) {
    const nonZero = Object.fromEntries(Object.entries(counts).filter(([, n]) => n !== 0));
    expect(nonZero, `counts of ${queue}`).toEqual(expected.get(queue) ?? {});
  }
}

async function statuses(): Promise<Record<string, string>> {
  const rows = await query<{ id: string; status: string }>(h.url, 'select id::text, status from baton_jobs order by id');
  return Object.fromEntries(rows.map((row) => [row.id, row.status]));
}

describe('bulk cancel', () => {
  it('cancels PENDING and SCHEDULED jobs at once, asks RUNNING ones to stop, leaves finished ones, and counts', async () => {
    // Claimed before the others are enqueued: a claim takes the oldest PENDING job.
    const done = await completedJob(h.driver, 'q');
    const { assignment } = await runningJob(h.driver, newJob('q'));
    const pending = await enqueue(h.driver, newJob('q'));
    const scheduled = await enqueue(h.driver, newJob('q', { delayMs: 60_000 }));
    const other = await enqueue(h.driver, newJob('other'));
    const told = await listen(h.url, 'baton_cancel');
    try {
      expect(await h.driver.jobBulkAction({ action: 'cancel', filter: { queue: 'q' }, limit: 10, dryRun: true })).toMatchObject({
        changed: 3,
        cancelRequested: 1,
      });
      const outcome = await h.driver.jobBulkAction({ action: 'cancel', filter: { queue: 'q' }, limit: 10 });
      expect(outcome).toMatchObject({ changed: 3, cancelRequested: 1, lastId: scheduled.id, byQueue: new Map([['q', 2]]) });
      expect(JSON.parse(await told.next())).toEqual({ id: assignment.id, token: assignment.leaseToken, reason: 'cancelled' });
    } finally {
      await told.close();
    }
    expect(await statuses()).toEqual({
      [pending.id]: 'cancelled',
      [scheduled.id]: 'cancelled',
      [assignment.id]: 'running',
      [done.id]: 'completed',
      [other.id]: 'pending',
    });
    expect((await h.driver.jobGet({ id: assignment.id }))!.cancelRequested).toBe(true);
    expect((await h.driver.jobGet({ id: pending.id }))!.finishedAt).toBeInstanceOf(Date);
    // A RUNNING job asked already is not taken again.
    expect(await h.driver.jobBulkAction({ action: 'cancel', filter: { queue: 'q' }, limit: 10 })).toMatchObject({ changed: 0, lastId: null });
    await expectCountersMatchRows();
  });

  it('takes only the statuses asked for', async () => {
    const pending = await enqueue(h.driver, newJob('q'));
    const scheduled = await enqueue(h.driver, newJob('q', { delayMs: 60_000 }));
    expect(await h.driver.jobBulkAction({ action: 'cancel', filter: { statuses: ['scheduled'] }, limit: 10 })).toMatchObject({ changed: 1 });
    expect(await statuses()).toEqual({ [pending.id]: 'pending', [scheduled.id]: 'cancelled' });
    await expect(h.driver.jobBulkAction({ action: 'cancel', filter: { statuses: ['failed'] }, limit: 10 })).rejects.toThrow(/applies to/);
  });
});

describe('bulk retry', () => {
  it('moves FAILED and CANCELLED jobs back to PENDING with attempts reset, and counts', async () => {
    const failed = await failedJob(h.driver, 'q');
    const cancelled = await enqueue(h.driver, newJob('q'));
    await h.driver.jobCancel({ id: cancelled.id });
    const done = await completedJob(h.driver, 'q');
    const outcome = await h.driver.jobBulkAction({ action: 'retry', filter: { queue: 'q' }, limit: 10 });
    expect(outcome).toMatchObject({ changed: 2, cancelRequested: 0, byQueue: new Map([['q', 2]]) });
    expect(await statuses()).toEqual({ [failed.id]: 'pending', [cancelled.id]: 'pending', [done.id]: 'completed' });
    const revived = (await h.driver.jobGet({ id: failed.id }))!;
    expect(revived).toMatchObject({ attempt: 0, finishedAt: null });
    expect(revived.errors).toHaveLength(1);
    await expectCountersMatchRows();
  });
});

describe('bulk delete', () => {
  it('deletes finished jobs only, frees their idempotency keys, and counts', async () => {
    const done = await completedJob(h.driver, 'q');
    const failed = await failedJob(h.driver, 'q');
    const { assignment } = await runningJob(h.driver, newJob('q'));
    const keyed = await enqueue(h.driver, newJob('q', { idempotencyKey: 'k1' }));
    await h.driver.jobCancel({ id: keyed.id });
    const pending = await enqueue(h.driver, newJob('q'));
    expect(await h.driver.jobBulkAction({ action: 'delete', filter: { queue: 'q' }, limit: 10 })).toMatchObject({ changed: 3 });
    expect(await statuses()).toEqual({ [pending.id]: 'pending', [assignment.id]: 'running' });
    expect(done.id && failed.id).toBeTruthy();
    const [again] = await h.driver.jobEnqueue({ jobs: [newJob('q', { idempotencyKey: 'k1' })] });
    expect(again.duplicate).toBe(false);
    await expectCountersMatchRows();
    await expect(h.driver.jobBulkAction({ action: 'delete', filter: { statuses: ['pending'] }, limit: 10 })).rejects.toThrow(/applies to/);
  });
});

describe('filters', () => {
  it('match by idempotency key, labels and creation time, all of them at once', async () => {
    const a = await enqueue(h.driver, newJob('q', { labels: { tenant: 'a', tier: 'gold' } }));
    const b = await enqueue(h.driver, newJob('q', { labels: { tenant: 'b' } }));
    const keyed = await enqueue(h.driver, newJob('q', { idempotencyKey: 'key-1', labels: { tenant: 'a' } }));
    await query(h.url, `update baton_live_jobs set created_at = now() - interval '2 hours' where id = $1`, [a.id]);
    const count = async (filter: JobBulkFilter) => (await h.driver.jobBulkAction({ action: 'cancel', filter, limit: 10, dryRun: true })).changed;
    expect(await count({ labels: { tenant: 'a' } })).toBe(2);
    expect(await count({ labels: { tenant: 'a', tier: 'gold' } })).toBe(1);
    expect(await count({ idempotencyKey: 'key-1' })).toBe(1);
    const hourAgo = new Date(Date.now() - 3600_000);
    expect(await count({ createdBefore: hourAgo })).toBe(1);
    expect(await count({ createdAfter: hourAgo })).toBe(2);
    expect(await count({ createdAfter: hourAgo, labels: { tenant: 'a' }, queue: 'q' })).toBe(1);
    expect(await count({ queue: 'none' })).toBe(0);
    expect(b.id && keyed.id).toBeTruthy();
  });
});

describe('batches', () => {
  it('go lowest id first past the cursor, and a dry run walks the same batches the real run then changes', async () => {
    await h.driver.jobEnqueue({ jobs: Array.from({ length: 7 }, () => newJob('q')) });
    const first = await h.driver.jobBulkAction({ action: 'cancel', filter: { queue: 'q' }, limit: 3, dryRun: true });
    const ids = (await query<{ id: string }>(h.url, 'select id::text from baton_jobs order by id')).map((row) => row.id);
    expect(first).toMatchObject({ changed: 3, lastId: ids[2] });
    expect(await h.driver.jobBulkAction({ action: 'cancel', filter: { queue: 'q' }, limit: 3, afterId: ids[5], dryRun: true })).toMatchObject({
      changed: 1,
      lastId: ids[6],
    });
    const dry = await runAll(h.driver, 'cancel', { queue: 'q' }, { limit: 3, dryRun: true });
    expect(dry).toEqual({ total: 7, requested: 0, batches: 3 });
    expect(await runAll(h.driver, 'cancel', { queue: 'q' }, { limit: 3 })).toEqual(dry);
    expect(Object.values(await statuses())).toEqual(new Array(7).fill('cancelled'));
  });

  it('skip jobs another statement holds locked at that moment', async () => {
    const [one, two] = await h.driver.jobEnqueue({ jobs: [newJob('q'), newJob('q')] });
    const client = new pg.Client({ connectionString: h.url });
    await client.connect();
    try {
      await client.query('begin');
      await client.query('select 1 from baton_live_jobs where id = $1 for update', [one.job.id]);
      expect(await h.driver.jobBulkAction({ action: 'cancel', filter: { queue: 'q' }, limit: 10 })).toMatchObject({ changed: 1, lastId: two.job.id });
      await client.query('rollback');
    } finally {
      await client.end();
    }
    expect(await statuses()).toEqual({ [one.job.id]: 'pending', [two.job.id]: 'cancelled' });
  });
});

describe('at scale', () => {
  it('retries 100,000 FAILED jobs, after a dry run that counts exactly what the retry changes', { timeout: 60_000 }, async () => {
    const n = 100_000;
    // Inserted directly (through the driver it would take minutes), with the counters told, as the statements do.
    await query(
      h.url,
      `with made as (
        insert into baton_job_history (id, queue, status, payload, priority, run_at, attempt, max_attempts, backoff_initial_ms,
          backoff_max_ms, backoff_multiplier, backoff_jitter, timeout_ms, labels, errors, created_at, started_at, finished_at, cancel_requested)
        select i, 'bulk', 'failed', '{}', 0, now(), 3, 3, 1000, 60000, 2, 0, 0, '{}', '[]', now(), now(), now(), false
        from generate_series(1, $1::int) i
        returning id
      )
      insert into baton_job_count_deltas (queue, status, minute, n) select 'bulk', 'failed', date_trunc('minute', now()), count(*) from made`,
      [n],
    );
    await query(h.url, `select setval(pg_get_serial_sequence('baton_live_jobs', 'id'), $1)`, [n]);
    await h.driver.queueUpsert({ name: 'bulk' });
    const started = performance.now();
    const dry = await runAll(h.driver, 'retry', { queue: 'bulk', statuses: ['failed'] }, { limit: 10_000, dryRun: true });
    const counted = performance.now();
    const real = await runAll(h.driver, 'retry', { queue: 'bulk', statuses: ['failed'] }, { limit: 10_000 });
    const retried = performance.now();
    console.log(`bulk retry of ${n}: dry run ${Math.round(counted - started)} ms, retry ${Math.round(retried - counted)} ms`);
    expect(dry.total).toBe(n);
    expect(real.total).toBe(dry.total);
    expect(real.batches).toBe(11);
    const [row] = await query<{ n: number }>(
      h.url,
      `select count(*)::int as n from baton_live_jobs where queue = 'bulk' and status = 'pending' and attempt = 0`,
    );
    expect(row.n).toBe(n);
    expect((await h.driver.jobCountByQueue()).get('bulk')).toEqual({ pending: n });
  });
});
