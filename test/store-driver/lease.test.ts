/**
 * The store driver's Lease operations against PostgreSQL: sessions, claims (unlimited and limited
 * queues), results fenced by lease tokens, failures and their next status, progress and heartbeats.
 */
import { describe, expect, it } from 'vitest';
import type { QueueSettings } from '../../server/src/domain/queue.ts';
import { query } from '../support/database.ts';
import { enqueue, listen, newJob, openSession, runningJob, storedJob, useDriver } from './harness.ts';

const h = useDriver();

async function queue(name: string): Promise<QueueSettings> {
  return (await h.driver.queueGet({ name }))!;
}

describe('sessionOpen', () => {
  it('stores a session expiring after its TTL', async () => {
    const id = await h.driver.sessionOpen({ workerId: 'w9', brokerId: 'b9', queues: ['a', 'b'], capacity: 7, ttlMs: 30_000 });
    const [row] = await query(
      h.url,
      `select worker_id, broker_id, queues, capacity, extract(epoch from expires_at - now()) as left from baton_sessions where id = $1`,
      [id],
    );
    expect(row).toMatchObject({ worker_id: 'w9', broker_id: 'b9', queues: ['a', 'b'], capacity: 7 });
    expect(Number(row.left)).toBeCloseTo(30, 0);
  });
});

describe('jobClaim', () => {
  it('claims the best jobs first (priority, then run time, then age), at most `limit`', async () => {
    const low = await enqueue(h.driver, newJob('q', { priority: -1 }));
    const first = await enqueue(h.driver, newJob('q'));
    const high = await enqueue(h.driver, newJob('q', { priority: 5 }));
    const second = await enqueue(h.driver, newJob('q'));
    const sessionId = await openSession(h.driver, 'q');
    const claimed = await h.driver.jobClaim({ queue: await queue('q'), limit: 3, sessionId, workerId: 'w1' });
    expect(claimed.map((job) => job.id)).toEqual([high.id, first.id, second.id]);
    expect(claimed[0]).toMatchObject({ queue: 'q', attempt: 1, maxAttempts: 3, payloadJson: '{"n": 1}', labelsJson: '{}', priority: 5 });
    expect(await storedJob(h.url, high.id)).toMatchObject({
      status: 'running',
      attempt: 1,
      session_id: sessionId,
      worker_id: 'w1',
      lease_token: claimed[0].leaseToken,
    });
    expect((await storedJob(h.url, low.id))!.status).toBe('pending');
  });

  it('claims nothing from a paused queue, nor for a session that is gone', async () => {
    await enqueue(h.driver, newJob('q'));
    const sessionId = await openSession(h.driver, 'q');
    const settings = await queue('q');
    await h.driver.queueUpsert({ name: 'q', paused: true });
    expect(await h.driver.jobClaim({ queue: settings, limit: 5, sessionId, workerId: 'w1' })).toEqual([]);
    await h.driver.queueUpsert({ name: 'q', paused: false });
    await h.driver.sessionRelease({ sessionId, reason: 'gone' });
    expect(await h.driver.jobClaim({ queue: settings, limit: 5, sessionId, workerId: 'w1' })).toEqual([]);
  });

  it('never takes more than a limited queue has free slots, across claims of two brokers', async () => {
    await h.driver.queueUpsert({ name: 'q', concurrency: 3 });
    for (let i = 0; i < 6; i++) await enqueue(h.driver, newJob('q'));
    const other = h.other();
    const [a, b] = [await openSession(h.driver, 'q'), await openSession(other, 'q')];
    const settings = await queue('q');
    const [fromA, fromB] = await Promise.all([
      h.driver.jobClaim({ queue: settings, limit: 2, sessionId: a, workerId: 'wa' }),
      other.jobClaim({ queue: settings, limit: 2, sessionId: b, workerId: 'wb' }),
    ]);
    expect(fromA.length + fromB.length).toBe(3);
    expect(await h.driver.jobClaim({ queue: settings, limit: 5, sessionId: a, workerId: 'wa' })).toEqual([]);
  });
});

describe('jobComplete', () => {
  it('completes a job held under the reported token, once', async () => {
    const { assignment } = await runningJob(h.driver, newJob('q'));
    const report = { id: assignment.id, token: assignment.leaseToken, resultJson: '{"r":12345678901234567890}' };
    expect(await h.driver.jobComplete({ results: [report] })).toEqual(new Set([assignment.id]));
    expect(await storedJob(h.url, assignment.id)).toMatchObject({ status: 'completed', lease_token: null, finished_at: expect.any(Date) });
    expect((await h.driver.jobGet({ id: assignment.id }))!.resultJson).toBe('{"r": 12345678901234567890}');
    expect(await h.driver.jobComplete({ results: [report] })).toEqual(new Set());
  });

  it('announces completions only of queues someone listens to: watched, or limited', async () => {
    const channel = await listen(h.url, 'baton_job');
    try {
      const complete = async (queue: string) => {
        const { assignment } = await runningJob(h.driver, newJob(queue));
        await h.driver.jobComplete({ results: [{ id: assignment.id, token: assignment.leaseToken, resultJson: 'null' }] });
        return assignment.id;
      };
      await complete('unheard');
      await h.driver.queueUpsert({ name: 'limited', concurrency: 5 });
      const limited = await complete('limited');
      await h.driver.queueUpsert({ name: 'watched' });
      await h.driver.queueWatch({ queue: 'watched' });
      const watched = await complete('watched');
      // Every announcement in order, up to the last completion: notifications arrive in commit order.
      const heard: { q: string; s: string; ids: string[] }[] = [];
      while (!heard.some((event) => event.q === 'watched' && event.s === 'completed')) heard.push(JSON.parse(await channel.next()));
      expect(heard.filter((event) => event.s === 'completed')).toEqual([
        { q: 'limited', s: 'completed', ids: [limited] },
        { q: 'watched', s: 'completed', ids: [watched] },
      ]);
      expect(heard.some((event) => event.q === 'unheard' && event.s !== 'pending')).toBe(false);
    } finally {
      await channel.close();
    }
  });

  it('refuses a stale token and changes nothing', async () => {
    const { assignment } = await runningJob(h.driver, newJob('q'));
    const stale = String(BigInt(assignment.leaseToken) + 1000n);
    expect(await h.driver.jobComplete({ results: [{ id: assignment.id, token: stale, resultJson: 'null' }] })).toEqual(new Set());
    expect((await storedJob(h.url, assignment.id))!.status).toBe('running');
  });
});

describe('jobFail', () => {
  const failure = (id: string, token: string, extra: { nonRetryable?: boolean; retryAfterMs?: number } = {}) => ({
    id,
    token,
    message: 'boom',
    nonRetryable: extra.nonRetryable ?? false,
    retryAfterMs: extra.retryAfterMs ?? null,
  });

  it('schedules a retry after the backoff, or the retry_after when longer, and keeps the error', async () => {
    const { assignment: a } = await runningJob(h.driver, newJob('a', { backoff: { initialMs: 10_000, maxMs: 60_000, multiplier: 2, jitter: 0 } }));
    const { assignment: b } = await runningJob(h.driver, newJob('b', { backoff: { initialMs: 10_000, maxMs: 60_000, multiplier: 2, jitter: 0 } }));
    const outcome = await h.driver.jobFail({ failures: [failure(a.id, a.leaseToken), failure(b.id, b.leaseToken, { retryAfterMs: 40_000 })] });
    expect(outcome).toEqual(
      new Map([
        [a.id, 'scheduled'],
        [b.id, 'scheduled'],
      ]),
    );
    const rows = await query(h.url, `select id::text, extract(epoch from run_at - now()) as wait, errors, finished_at from baton_jobs order by id`);
    expect(rows.map((row) => Math.round(Number(row.wait)))).toEqual([10, 40]);
    expect(rows[0]).toMatchObject({ finished_at: null, errors: [{ attempt: 1, message: 'boom', worker_id: 'w1' }] });
  });

  it('fails for good on the last attempt or when not retryable; cancels when a cancel was requested', async () => {
    const { assignment: last } = await runningJob(h.driver, newJob('a', { maxAttempts: 1 }));
    const { assignment: fatal } = await runningJob(h.driver, newJob('b'));
    const { assignment: asked } = await runningJob(h.driver, newJob('c'));
    await h.driver.jobCancel({ id: asked.id });
    const outcome = await h.driver.jobFail({
      failures: [failure(last.id, last.leaseToken), failure(fatal.id, fatal.leaseToken, { nonRetryable: true }), failure(asked.id, asked.leaseToken)],
    });
    expect(outcome).toEqual(
      new Map([
        [last.id, 'failed'],
        [fatal.id, 'failed'],
        [asked.id, 'cancelled'],
      ]),
    );
    expect(await storedJob(h.url, fatal.id)).toMatchObject({ status: 'failed', lease_token: null, finished_at: expect.any(Date) });
  });

  it('refuses a stale token', async () => {
    const { assignment } = await runningJob(h.driver, newJob('q'));
    expect(await h.driver.jobFail({ failures: [failure(assignment.id, '1')] })).toEqual(new Map());
    expect((await storedJob(h.url, assignment.id))!.status).toBe('running');
  });
});

describe('jobRecordProgress', () => {
  it('stores progress under the current token only', async () => {
    const { assignment } = await runningJob(h.driver, newJob('q'));
    await h.driver.jobRecordProgress({ updates: [{ id: assignment.id, token: assignment.leaseToken, progressJson: '{"done":3}' }] });
    await h.driver.jobRecordProgress({ updates: [{ id: assignment.id, token: '1', progressJson: '{"done":99}' }] });
    expect((await h.driver.jobGet({ id: assignment.id }))!.progressJson).toBe('{"done": 3}');
  });
});

describe('sessionHeartbeat', () => {
  it('renews the session, and names the tokens it no longer holds and those whose cancel was requested', async () => {
    const { assignment: kept, sessionId } = await runningJob(h.driver, newJob('q', { priority: 1 }));
    await enqueue(h.driver, newJob('q'));
    const [asked] = await h.driver.jobClaim({ queue: (await h.driver.queueGet({ name: 'q' }))!, limit: 1, sessionId, workerId: 'w1' });
    await h.driver.jobCancel({ id: asked.id });
    await query(h.url, `update baton_sessions set expires_at = now() where id = $1`, [sessionId]);
    const outcome = await h.driver.sessionHeartbeat({ sessionId, ttlMs: 45_000, tokens: [kept.leaseToken, asked.leaseToken, '424242'] });
    expect(outcome).toEqual({ lost: ['424242'], cancelRequested: [asked.leaseToken] });
    const [row] = await query(h.url, `select extract(epoch from expires_at - now()) as left from baton_sessions where id = $1`, [sessionId]);
    expect(Number(row.left)).toBeCloseTo(45, 0);
  });

  it('answers null for a session that is gone', async () => {
    const sessionId = await openSession(h.driver, 'q');
    await h.driver.sessionRelease({ sessionId, reason: 'closed' });
    expect(await h.driver.sessionHeartbeat({ sessionId, ttlMs: 1000, tokens: [] })).toBeNull();
  });
});

describe('sessionRelease', () => {
  it('hands the running jobs back at once, keeping their place and counting the attempt, and ends the session', async () => {
    const { assignment, sessionId, job } = await runningJob(h.driver, newJob('q'));
    expect(await h.driver.sessionRelease({ sessionId, reason: 'stream closed by the worker' })).toBe(1);
    const row = await storedJob(h.url, assignment.id);
    expect(row).toMatchObject({ status: 'pending', attempt: 1, session_id: null, lease_token: null, run_at: job.runAt });
    expect(row!.errors).toEqual([expect.objectContaining({ attempt: 1, message: 'stream closed by the worker', worker_id: 'w1' })]);
    expect(await query(h.url, 'select id from baton_sessions')).toEqual([]);
  });

  it('fails for good a job whose last attempt was lost', async () => {
    const { sessionId, assignment } = await runningJob(h.driver, newJob('q', { maxAttempts: 1 }));
    await h.driver.sessionRelease({ sessionId, reason: 'gone' });
    expect((await storedJob(h.url, assignment.id))!.status).toBe('failed');
  });
});
