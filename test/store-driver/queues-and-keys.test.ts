/**
 * The store driver's queue operations (settings, Watch marks, counts and throughput for operators,
 * with time moved by passing `now`) and API keys, against PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { query } from '../support/database.ts';
import { completedJob, databaseNow, enqueue, failedJob, later, listen, newJob, runningJob, useDriver } from './harness.ts';

const h = useDriver();

describe('queueUpsert, queueGet and queueList', () => {
  it('creates a queue with the defaults, changes only the settings given, and tells every broker', async () => {
    const changes = await listen(h.url, 'baton_queue');
    try {
      expect(await h.driver.queueUpsert({ name: 'b', concurrency: 4 })).toEqual({
        name: 'b',
        concurrency: 4,
        paused: false,
        defaultMaxAttempts: 3,
        defaultTimeoutMs: 0,
      });
      expect(await h.driver.queueUpsert({ name: 'b', paused: true, defaultTimeoutMs: 5000 })).toEqual({
        name: 'b',
        concurrency: 4,
        paused: true,
        defaultMaxAttempts: 3,
        defaultTimeoutMs: 5000,
      });
      expect([await changes.next(), await changes.next()]).toEqual(['b', 'b']);
    } finally {
      await changes.close();
    }
    await h.driver.queueUpsert({ name: 'a' });
    expect((await h.driver.queueList()).map((q) => q.name)).toEqual(['a', 'b']);
    expect(await h.driver.queueGet({ name: 'b' })).toMatchObject({ paused: true });
    expect(await h.driver.queueGet({ name: 'none' })).toBeNull();
  });

  it('gives jobs of a queue its default attempts and timeout', async () => {
    await h.driver.queueUpsert({ name: 'q', defaultMaxAttempts: 7, defaultTimeoutMs: 9000 });
    expect(await enqueue(h.driver, newJob('q'))).toMatchObject({ maxAttempts: 7, timeoutMs: 9000 });
  });
});

describe('queueWatch', () => {
  it('marks an existing queue watched for a minute; false for one that does not exist', async () => {
    await h.driver.queueUpsert({ name: 'q' });
    expect(await h.driver.queueWatch({ queue: 'q' })).toBe(true);
    const [row] = await query(h.url, `select extract(epoch from watched_until - now()) as left from baton_queues where name = 'q'`);
    expect(Number(row.left)).toBeCloseTo(60, 0);
    expect(await h.driver.queueWatch({ queue: 'none' })).toBe(false);
  });
});

describe('jobCountByQueue', () => {
  it('counts jobs by queue and status, with every queue present', async () => {
    await enqueue(h.driver, newJob('a'));
    await enqueue(h.driver, newJob('a', { delayMs: 60_000 }));
    await runningJob(h.driver, newJob('b'));
    await h.driver.queueUpsert({ name: 'empty' });
    const counts = await h.driver.jobCountByQueue();
    expect(Object.fromEntries(counts)).toEqual({ a: { pending: 1, scheduled: 1 }, b: { running: 1 }, empty: {} });
  });
});

describe('jobThroughput', () => {
  it('counts jobs finished and started per minute up to `now`, oldest first, folded or not', async () => {
    const now = await databaseNow(h.url);
    await completedJob(h.driver, 'q');
    await completedJob(h.driver, 'q');
    await failedJob(h.driver, 'q');
    // Counted by the minute they happened in: `minutesAgo` whole minutes before the minute of `at`.
    const minutesAgo = (at: Date) => Math.floor(at.getTime() / 60_000) - Math.floor(now.getTime() / 60_000);
    const series = (at: Date, n: number) => [0, 0, 0].map((_, i) => (i === 2 - minutesAgo(at) ? n : 0));
    for (const fold of [false, true]) {
      if (fold) expect((await h.driver.historyUpkeep({})).folded).toBeGreaterThan(0);
      for (const at of [later(now, 30_000), later(now, 90_000)]) {
        const [[queue, throughput]] = await h.driver.jobThroughput({ minutes: 3, now: at });
        expect(queue).toBe('q');
        expect(throughput).toMatchObject({ completed: series(at, 2), failed: series(at, 1), started: series(at, 3) });
        expect(throughput.meanWaitMs.every((ms) => ms >= 0 && ms < 60_000)).toBe(true);
      }
      expect(await h.driver.jobThroughput({ minutes: 3, now: later(now, 200_000) })).toEqual(new Map());
    }
    expect(await h.driver.jobThroughput({ minutes: 0 })).toEqual(new Map());
  });
});

describe('API keys', () => {
  it('creates, reads, lists, revokes and counts keys', async () => {
    const created = new Date('2030-01-01T00:00:00Z');
    const key = await h.driver.apiKeyCreate({ id: 'aaaaaaaaaaaa', name: 'ci', scope: 'worker', secretHash: 'f'.repeat(64), now: created });
    expect(key).toEqual({ id: 'aaaaaaaaaaaa', name: 'ci', scope: 'worker', secretHash: 'f'.repeat(64), createdAt: created, revokedAt: null });
    await h.driver.apiKeyCreate({ id: 'bbbbbbbbbbbb', name: '', scope: 'admin', secretHash: 'e'.repeat(64), now: later(created, 1000) });
    expect(await h.driver.apiKeyGet({ id: 'aaaaaaaaaaaa' })).toEqual(key);
    expect(await h.driver.apiKeyGet({ id: 'cccccccccccc' })).toBeNull();
    expect(await h.driver.apiKeyCountActive()).toBe(2);

    const revokedAt = later(created, 5000);
    expect(await h.driver.apiKeyRevoke({ id: 'aaaaaaaaaaaa', now: revokedAt })).toMatchObject({ revokedAt });
    expect(await h.driver.apiKeyRevoke({ id: 'aaaaaaaaaaaa', now: later(revokedAt, 1000) })).toMatchObject({ revokedAt });
    expect(await h.driver.apiKeyRevoke({ id: 'cccccccccccc' })).toBeNull();
    expect(await h.driver.apiKeyCountActive()).toBe(1);
    expect((await h.driver.apiKeyList({})).map((k) => k.id)).toEqual(['bbbbbbbbbbbb']);
    expect((await h.driver.apiKeyList({ includeRevoked: true })).map((k) => k.id)).toEqual(['aaaaaaaaaaaa', 'bbbbbbbbbbbb']);
  });
});
