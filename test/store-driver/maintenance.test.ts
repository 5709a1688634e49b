/**
 * The store driver's leader duties against PostgreSQL, with time moved by passing `now` (no sleeps):
 * reaping silent sessions, timing out attempts, promoting scheduled jobs and pruning; and the leader
 * election between two drivers, as between two brokers.
 */
import { describe, expect, it } from 'vitest';
import { query } from '../support/database.ts';
import { completedJob, databaseNow, enqueue, failedJob, later, listen, newJob, runningJob, storedJob, useDriver } from './harness.ts';

const h = useDriver();

describe('sessionReapExpired', () => {
  it('ends sessions past their TTL at `now` and hands their jobs back, and no others', async () => {
    const now = await databaseNow(h.url);
    const { assignment, sessionId } = await runningJob(h.driver, newJob('q'));
    expect(await h.driver.sessionReapExpired({ now: later(now, 30_000) })).toBe(0);
    expect((await storedJob(h.url, assignment.id))!.status).toBe('running');
    expect(await h.driver.sessionReapExpired({ now: later(now, 90_000) })).toBe(1);
    const row = await storedJob(h.url, assignment.id);
    expect(row).toMatchObject({ status: 'pending', attempt: 1, session_id: null });
    expect(row!.errors[0]).toMatchObject({ message: 'lease expired: no heartbeat within the lease TTL', at: expect.stringMatching(/^\d{4}-/) });
    expect(new Date(row!.errors[0].at).getTime()).toBe(later(now, 90_000).getTime());
    expect(await query(h.url, 'select id from baton_sessions where id = $1', [sessionId])).toEqual([]);
  });

  it('with no `now`, goes by the database clock', async () => {
    const { sessionId } = await runningJob(h.driver, newJob('q'));
    expect(await h.driver.sessionReapExpired({})).toBe(0);
    await query(h.url, `update baton_sessions set expires_at = now() - interval '1 second' where id = $1`, [sessionId]);
    expect(await h.driver.sessionReapExpired({})).toBe(1);
  });
});

describe('jobTimeOut', () => {
  it('fails attempts past their timeout and grace at `now`, as a failure would, and tells their holders', async () => {
    const now = await databaseNow(h.url);
    const { assignment } = await runningJob(h.driver, newJob('q', { timeoutMs: 10_000, backoff: { initialMs: 5000, maxMs: 5000, multiplier: 2, jitter: 0 } }));
    expect(await h.driver.jobTimeOut({ graceMs: 5000, now: later(now, 12_000) })).toBe(0);
    const timedOut = later(now, 30_000);
    const cancels = await listen(h.url, 'baton_cancel');
    try {
      expect(await h.driver.jobTimeOut({ graceMs: 5000, now: timedOut })).toBe(1);
      expect(JSON.parse(await cancels.next())).toEqual({ id: assignment.id, token: assignment.leaseToken, reason: 'timeout' });
    } finally {
      await cancels.close();
    }
    const row = await storedJob(h.url, assignment.id);
    expect(row).toMatchObject({ status: 'scheduled', lease_token: null, finished_at: null, run_at: later(timedOut, 5000) });
    expect(row!.errors).toEqual([expect.objectContaining({ attempt: 1, message: 'timed out after 10000 ms' })]);
  });

  it('leaves attempts without a timeout alone', async () => {
    const now = await databaseNow(h.url);
    await runningJob(h.driver, newJob('q'));
    expect(await h.driver.jobTimeOut({ graceMs: 0, now: later(now, 365 * 24 * 3600_000) })).toBe(0);
  });
});

describe('jobPromoteScheduled', () => {
  it('makes jobs due at `now` PENDING and says when the next one falls due', async () => {
    const now = await databaseNow(h.url);
    const soon = await enqueue(h.driver, newJob('q', { delayMs: 60_000 }));
    const next = await enqueue(h.driver, newJob('q', { delayMs: 120_000 }));
    // Due times come back to the microsecond; the jobs' run_at as Dates, to the millisecond.
    const promote = async (at: Date) => {
      const { promoted, nextDueMs } = await h.driver.jobPromoteScheduled({ now: at });
      return { promoted, nextDueMs: nextDueMs === null ? null : Math.floor(nextDueMs) };
    };
    expect(await promote(now)).toEqual({ promoted: 0, nextDueMs: soon.runAt.getTime() });
    expect(await promote(later(now, 90_000))).toEqual({ promoted: 1, nextDueMs: next.runAt.getTime() });
    expect((await storedJob(h.url, soon.id))!.status).toBe('pending');
    expect(await promote(later(now, 180_000))).toEqual({ promoted: 1, nextDueMs: null });
  });
});

describe('jobPrune', () => {
  it('drops the day of COMPLETED and CANCELLED jobs once the whole day is before the window at `now`, keeping FAILED ones', async () => {
    const now = await databaseNow(h.url);
    const done = await completedJob(h.driver, 'q');
    const cancelled = await enqueue(h.driver, newJob('q'));
    await h.driver.jobCancel({ id: cancelled.id });
    const failed = await failedJob(h.driver, 'q');
    const pending = await enqueue(h.driver, newJob('q'));
    expect(await h.driver.jobPrune({ retentionMs: 3600_000, now: later(now, 1800_000) })).toBe(0);
    // Past the window but not yet past the end of their day: kept (at most a day longer than the window).
    const endOfDay = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
    expect(await h.driver.jobPrune({ retentionMs: 3600_000, now: new Date(endOfDay + 3600_000 - 1) })).toBe(0);
    expect(await h.driver.jobPrune({ retentionMs: 3600_000, now: new Date(endOfDay + 3600_000) })).toBe(2);
    const left = (await query(h.url, 'select id::text as job from baton_jobs order by id')).map((row) => row.job);
    expect(left).toEqual([failed.id, pending.id]);
    expect(left).not.toContain(done.id);
    expect(await h.driver.jobCountByQueue()).toEqual(new Map([['q', { failed: 1, pending: 1 }]]));
  });

  it('deletes expired jobs row by row from the default partition, where days without a partition of their own land', async () => {
    const now = await databaseNow(h.url);
    await query(
      h.url,
      `select baton_drop_history_partition(c.oid::regclass) from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'baton_job_history_done'::regclass and c.relname = 'baton_job_history_done_' || to_char(now() at time zone 'UTC', 'YYYYMMDD')`,
    );
    const done = await completedJob(h.driver, 'q');
    const [row] = await query(h.url, `select tableoid::regclass::text as partition from baton_job_history where id = $1`, [done.id]);
    expect(row.partition).toBe('baton_job_history_done_default');
    expect(await h.driver.jobPrune({ retentionMs: 3600_000, now: later(now, 1800_000) })).toBe(0);
    expect(await h.driver.jobPrune({ retentionMs: 3600_000, now: later(now, 7200_000) })).toBe(1);
    expect(await h.driver.jobGet({ id: done.id })).toBeNull();
    expect(await h.driver.jobCountByQueue()).toEqual(new Map([['q', {}]]));
    // The leader's upkeep makes today's partition again only for a day with no rows left in the default partition.
    expect((await h.driver.historyUpkeep({})).partitionsCreated).toBeGreaterThan(0);
    const [today] = await query(h.url, `select to_regclass('baton_job_history_done_' || to_char(now() at time zone 'UTC', 'YYYYMMDD'))::text as name`);
    expect(today.name).not.toBeNull();
  });
});

describe('leaderAttemptElect and leaderResign', () => {
  it('lets one driver lead at a time, and the other take over when it resigns', async () => {
    const [a, b] = [h.other(), h.other()];
    const onLost = () => {};
    expect(await a.leaderAttemptElect({ onLost })).toBe(true);
    expect(await a.leaderAttemptElect({ onLost })).toBe(true);
    expect(await b.leaderAttemptElect({ onLost })).toBe(false);
    await a.leaderResign();
    expect(await b.leaderAttemptElect({ onLost })).toBe(true);
    expect(await a.leaderAttemptElect({ onLost })).toBe(false);
    await b.leaderResign();
    await a.leaderResign();
  });

  it('tells the leader when its connection, and so its lock, is gone', async () => {
    const leader = h.other();
    const lost = Promise.withResolvers<string>();
    expect(await leader.leaderAttemptElect({ onLost: lost.resolve })).toBe(true);
    await query(h.url, `select pg_terminate_backend(pid, 10000) from pg_locks where locktype = 'advisory' and granted and objid = 7433002`);
    expect(await lost.promise).toMatch(/the leader connection (failed|ended)/);
    const successor = h.other();
    expect(await successor.leaderAttemptElect({ onLost: () => {} })).toBe(true);
    await successor.leaderResign();
  });
});
