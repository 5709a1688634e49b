/**
 * The store driver's producer operations against PostgreSQL: enqueue (defaults, schedules,
 * idempotency, hand-off), the one read path (get, list) and the cancel and retry transitions, each
 * checked in what it answers and in the stored row.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF } from '../../server/src/domain/backoff.ts';
import { query } from '../support/database.ts';
import { completedJob, enqueue, failedJob, listen, newJob, openSession, runningJob, storedJob, useDriver } from './harness.ts';

const h = useDriver();

describe('jobEnqueue', () => {
  it('stores a due job as PENDING, creating its queue with the defaults', async () => {
    const job = await enqueue(h.driver, newJob('q', { payloadJson: '{"big":12345678901234567890}', labels: { k: 'v' } }));
    expect(job).toMatchObject({ queue: 'q', status: 'pending', attempt: 0, maxAttempts: 3, timeoutMs: 0, payloadJson: '{"big": 12345678901234567890}' });
    expect(job.labels).toEqual({ k: 'v' });
    expect(await h.driver.queueGet({ name: 'q' })).toEqual({ name: 'q', concurrency: 0, paused: false, defaultMaxAttempts: 3, defaultTimeoutMs: 0 });
    expect(await storedJob(h.url, job.id)).toMatchObject({ status: 'pending', lease_token: null, finished_at: null });
  });

  it('stores every setting as given, and the defaults for the ones its input row leaves out', async () => {
    const [plain, custom] = await h.driver.jobEnqueue({
      jobs: [
        newJob('q', { backoff: DEFAULT_BACKOFF }),
        newJob('q', {
          priority: -7,
          maxAttempts: 9,
          timeoutMs: 1234,
          backoff: { initialMs: 5, maxMs: 50, multiplier: 1.5, jitter: 0 },
          labels: { team: 'a' },
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
          rateLimitKey: 'r',
          concurrencyKey: 'c',
        }),
      ],
    });
    const columns =
      'priority, max_attempts, timeout_ms, backoff_initial_ms, backoff_max_ms, backoff_multiplier, backoff_jitter, labels, traceparent, rate_limit_key, concurrency_key';
    const stored = async (id: string) => (await query(h.url, `select ${columns} from baton_jobs where id = $1`, [id]))[0];
    expect(await stored(plain.job.id)).toEqual({
      priority: 0,
      max_attempts: 3,
      timeout_ms: '0',
      backoff_initial_ms: String(DEFAULT_BACKOFF.initialMs),
      backoff_max_ms: String(DEFAULT_BACKOFF.maxMs),
      backoff_multiplier: DEFAULT_BACKOFF.multiplier,
      backoff_jitter: DEFAULT_BACKOFF.jitter,
      labels: {},
      traceparent: null,
      rate_limit_key: null,
      concurrency_key: null,
    });
    expect(await stored(custom.job.id)).toEqual({
      priority: -7,
      max_attempts: 9,
      timeout_ms: '1234',
      backoff_initial_ms: '5',
      backoff_max_ms: '50',
      backoff_multiplier: 1.5,
      backoff_jitter: 0,
      labels: { team: 'a' },
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      rate_limit_key: 'r',
      concurrency_key: 'c',
    });
  });

  it('stores a delayed job as SCHEDULED, due after its delay', async () => {
    const job = await enqueue(h.driver, newJob('q', { delayMs: 60_000 }));
    expect(job.status).toBe('scheduled');
    const [{ ahead }] = await query(h.url, `select extract(epoch from run_at - now()) as ahead from baton_jobs where id = $1`, [job.id]);
    expect(Number(ahead)).toBeCloseTo(60, 0);
  });

  it('answers a repeated idempotency key with the existing job, in input order, all in one call', async () => {
    const first = await enqueue(h.driver, newJob('q', { idempotencyKey: 'k1' }));
    const entries = await h.driver.jobEnqueue({
      jobs: [newJob('q'), newJob('q', { idempotencyKey: 'k1' }), newJob('q', { idempotencyKey: 'k2' }), newJob('q', { idempotencyKey: 'k2' })],
    });
    expect(entries.map((e) => e.duplicate)).toEqual([false, true, false, true]);
    expect(entries[1].job.id).toBe(first.id);
    expect(entries[3].job.id).toBe(entries[2].job.id);
    expect((await query(h.url, 'select count(*)::int as n from baton_jobs'))[0].n).toBe(3);
  });

  it('inserts a job handed off to a waiting session as RUNNING, with its assignment', async () => {
    await h.driver.queueUpsert({ name: 'q' });
    const sessionId = await openSession(h.driver, 'q');
    const [entry] = await h.driver.jobEnqueue({ jobs: [newJob('q', { handoff: { sessionId, workerId: 'w1' } })] });
    expect(entry.job.status).toBe('running');
    expect(entry.assignment).toMatchObject({ id: entry.job.id, attempt: 1, payloadJson: '{"n": 1}' });
    expect(await storedJob(h.url, entry.job.id)).toMatchObject({ session_id: sessionId, lease_token: entry.assignment!.leaseToken, worker_id: 'w1' });
  });

  it('does not hand off to a limited queue: the claim counts its slots', async () => {
    await h.driver.queueUpsert({ name: 'q', concurrency: 1 });
    const sessionId = await openSession(h.driver, 'q');
    const [entry] = await h.driver.jobEnqueue({ jobs: [newJob('q', { handoff: { sessionId, workerId: 'w1' } })] });
    expect(entry.job.status).toBe('pending');
    expect(entry.assignment).toBeUndefined();
  });
});

describe('jobEnqueueSummaries', () => {
  it('answers ids, queues and statuses only', async () => {
    const [entry] = await h.driver.jobEnqueueSummaries({ jobs: [newJob('q', { idempotencyKey: 'k' })] });
    expect(entry).toEqual({ job: { id: expect.stringMatching(/^\d+$/), queue: 'q', status: 'pending', idempotencyKey: 'k' }, duplicate: false });
  });
});

describe('jobGet and jobList', () => {
  it('reads one job whole, with its error history; null for none', async () => {
    const failed = await failedJob(h.driver, 'q');
    expect(failed).toMatchObject({ status: 'failed', attempt: 1, resultJson: null, workerId: 'w1' });
    expect(failed.errors).toEqual([{ attempt: 1, message: 'boom', at: expect.any(Date), workerId: 'w1' }]);
    expect(await h.driver.jobGet({ id: '999999' })).toBeNull();
  });

  it('lists newest first, by queue and status, a page at a time', async () => {
    const a = await enqueue(h.driver, newJob('a'));
    const b = await enqueue(h.driver, newJob('b'));
    const c = await enqueue(h.driver, newJob('a', { delayMs: 60_000 }));
    const ids = (jobs: { id: string }[]) => jobs.map((job) => job.id);
    expect(ids(await h.driver.jobList({ limit: 10 }))).toEqual([c.id, b.id, a.id]);
    expect(ids(await h.driver.jobList({ queue: 'a', limit: 10 }))).toEqual([c.id, a.id]);
    expect(ids(await h.driver.jobList({ statuses: ['pending'], limit: 10 }))).toEqual([b.id, a.id]);
    expect(ids(await h.driver.jobList({ limit: 1, beforeId: c.id }))).toEqual([b.id]);
  });
});

describe('jobCancel', () => {
  it('cancels a PENDING or SCHEDULED job at once', async () => {
    for (const job of [await enqueue(h.driver, newJob('q')), await enqueue(h.driver, newJob('q', { delayMs: 60_000 }))]) {
      const cancelled = await h.driver.jobCancel({ id: job.id });
      expect(cancelled).toMatchObject({ status: 'cancelled', cancelRequested: false, finishedAt: expect.any(Date) });
    }
  });

  it('asks the holder of a RUNNING job, which stays RUNNING', async () => {
    const { job, assignment } = await runningJob(h.driver, newJob('q'));
    const cancels = await listen(h.url, 'baton_cancel');
    try {
      expect(await h.driver.jobCancel({ id: job.id })).toMatchObject({ status: 'running', cancelRequested: true, finishedAt: null });
      expect(JSON.parse(await cancels.next())).toEqual({ id: job.id, token: assignment.leaseToken, reason: 'cancelled' });
    } finally {
      await cancels.close();
    }
    expect(await storedJob(h.url, job.id)).toMatchObject({ status: 'running', cancel_requested: true });
  });

  it('changes nothing of a finished or missing job', async () => {
    const done = await completedJob(h.driver, 'q');
    expect(await h.driver.jobCancel({ id: done.id })).toBeNull();
    expect(await h.driver.jobCancel({ id: '999999' })).toBeNull();
    expect((await storedJob(h.url, done.id))!.status).toBe('completed');
  });
});

describe('jobRetry', () => {
  it('puts a FAILED job back to PENDING with its attempts reset and its errors kept', async () => {
    const failed = await failedJob(h.driver, 'q');
    const retried = await h.driver.jobRetry({ id: failed.id });
    expect(retried).toMatchObject({ status: 'pending', attempt: 0, finishedAt: null, workerId: null });
    expect(retried!.errors).toHaveLength(1);
  });

  it('puts a CANCELLED job back to PENDING', async () => {
    const job = await enqueue(h.driver, newJob('q'));
    await h.driver.jobCancel({ id: job.id });
    expect((await h.driver.jobRetry({ id: job.id }))!.status).toBe('pending');
  });

  it('changes nothing of a job in another status', async () => {
    const pending = await enqueue(h.driver, newJob('q'));
    const done = await completedJob(h.driver, 'r');
    expect(await h.driver.jobRetry({ id: pending.id })).toBeNull();
    expect(await h.driver.jobRetry({ id: done.id })).toBeNull();
    expect((await storedJob(h.url, done.id))!.status).toBe('completed');
  });
});
