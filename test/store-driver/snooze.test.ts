/**
 * The store driver's jobSnooze against PostgreSQL: a snoozed job is SCHEDULED again after its delay
 * with its attempt given back and no error, fenced by the lease token, counted in the counters and
 * in its `baton.snoozes` label, and announced to the leader's promotion.
 */
import { describe, expect, it } from 'vitest';
import { query } from '../support/database.ts';
import { databaseNow, enqueue, later, listen, newJob, runningJob, storedJob, useDriver } from './harness.ts';

const h = useDriver();

describe('jobSnooze', () => {
  it('schedules the job after its delay with the attempt given back, no error, and the snooze counted', async () => {
    const { assignment } = await runningJob(h.driver, newJob('q', { labels: { tenant: 'a' } }));
    expect(assignment.attempt).toBe(1);
    const outcome = await h.driver.jobSnooze({ snoozes: [{ id: assignment.id, token: assignment.leaseToken, delayMs: 30_000 }] });
    expect(outcome).toEqual(new Map([[assignment.id, 'scheduled']]));
    const [row] = await query(h.url, `select extract(epoch from run_at - now()) as wait from baton_jobs where id = $1`, [assignment.id]);
    expect(Math.round(Number(row.wait))).toBe(30);
    expect(await storedJob(h.url, assignment.id)).toMatchObject({
      status: 'scheduled',
      attempt: 0,
      errors: [],
      lease_token: null,
      deadline_at: null,
      finished_at: null,
      labels: { tenant: 'a', 'baton.snoozes': '1' },
    });
    expect(await h.driver.jobCountByQueue()).toEqual(new Map([['q', { scheduled: 1 }]]));
  });

  it('runs the job again with the same attempt number once promoted, counting each snooze', async () => {
    const { assignment, sessionId } = await runningJob(h.driver, newJob('q'));
    await h.driver.jobSnooze({ snoozes: [{ id: assignment.id, token: assignment.leaseToken, delayMs: 1000 }] });
    await h.driver.jobPromoteScheduled({ now: later(await databaseNow(h.url), 2000) });
    const queue = (await h.driver.queueGet({ name: 'q' }))!;
    const [again] = await h.driver.jobClaim({ queue, limit: 1, sessionId, workerId: 'w1' });
    expect(again).toMatchObject({ id: assignment.id, attempt: 1, labelsJson: '{"baton.snoozes": "1"}' });
    await h.driver.jobSnooze({ snoozes: [{ id: again.id, token: again.leaseToken, delayMs: 1000 }] });
    expect(await storedJob(h.url, again.id)).toMatchObject({ attempt: 0, labels: { 'baton.snoozes': '2' } });
  });

  it('refuses a stale token, or a job no longer running, and changes nothing', async () => {
    const { assignment } = await runningJob(h.driver, newJob('q'));
    expect(await h.driver.jobSnooze({ snoozes: [{ id: assignment.id, token: '1', delayMs: 1000 }] })).toEqual(new Map());
    expect((await storedJob(h.url, assignment.id))!.status).toBe('running');
    await h.driver.jobComplete({ results: [{ id: assignment.id, token: assignment.leaseToken, resultJson: 'null' }] });
    expect(await h.driver.jobSnooze({ snoozes: [{ id: assignment.id, token: assignment.leaseToken, delayMs: 1000 }] })).toEqual(new Map());
    expect(await storedJob(h.url, assignment.id)).toMatchObject({ status: 'completed', attempt: 1 });
  });

  it('cancels a job whose cancel was requested while it ran, without counting the attempt', async () => {
    const { assignment } = await runningJob(h.driver, newJob('q'));
    await h.driver.jobCancel({ id: assignment.id });
    const outcome = await h.driver.jobSnooze({ snoozes: [{ id: assignment.id, token: assignment.leaseToken, delayMs: 1000 }] });
    expect(outcome).toEqual(new Map([[assignment.id, 'cancelled']]));
    expect(await storedJob(h.url, assignment.id)).toMatchObject({ status: 'cancelled', attempt: 0, errors: [], finished_at: expect.any(Date) });
    expect(await h.driver.jobCountByQueue()).toEqual(new Map([['q', { cancelled: 1 }]]));
  });

  it("keeps counting from a producer's label that is no count, instead of failing the batch", async () => {
    const { assignment: odd } = await runningJob(h.driver, newJob('q', { labels: { 'baton.snoozes': 'many' } }));
    const { assignment: plain } = await runningJob(h.driver, newJob('q'));
    const outcome = await h.driver.jobSnooze({
      snoozes: [
        { id: odd.id, token: odd.leaseToken, delayMs: 500 },
        { id: plain.id, token: plain.leaseToken, delayMs: 500 },
      ],
    });
    expect(outcome.size).toBe(2);
    expect((await storedJob(h.url, odd.id))!.labels).toEqual({ 'baton.snoozes': '1' });
  });

  it("tells the leader when the earliest snoozed job falls due, and announces the jobs' new status", async () => {
    const schedule = await listen(h.url, 'baton_schedule');
    const jobs = await listen(h.url, 'baton_job');
    try {
      const { assignment } = await runningJob(h.driver, newJob('q'));
      const before = Date.now();
      await h.driver.jobSnooze({ snoozes: [{ id: assignment.id, token: assignment.leaseToken, delayMs: 60_000 }] });
      const [row] = await query(h.url, `select (extract(epoch from run_at) * 1000)::bigint::text as due from baton_jobs where id = $1`, [assignment.id]);
      expect(await schedule.next()).toBe(row.due);
      expect(Number(row.due) - before).toBeGreaterThan(50_000);
      let announced = JSON.parse(await jobs.next());
      while (announced.s !== 'scheduled') announced = JSON.parse(await jobs.next());
      expect(announced).toEqual({ q: 'q', s: 'scheduled', ids: [assignment.id] });
    } finally {
      await schedule.close();
      await jobs.close();
    }
  });

  it('leaves other jobs of the session alone', async () => {
    const { assignment, sessionId } = await runningJob(h.driver, newJob('q', { priority: 1 }));
    await enqueue(h.driver, newJob('q'));
    const [other] = await h.driver.jobClaim({ queue: (await h.driver.queueGet({ name: 'q' }))!, limit: 1, sessionId, workerId: 'w1' });
    await h.driver.jobSnooze({ snoozes: [{ id: assignment.id, token: assignment.leaseToken, delayMs: 1000 }] });
    expect(await storedJob(h.url, other.id)).toMatchObject({ status: 'running', attempt: 1, lease_token: other.leaseToken });
  });
});
