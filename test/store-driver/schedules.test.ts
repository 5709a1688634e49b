/**
 * The store driver's cron schedules against PostgreSQL: definitions, and ticks decided once each by
 * the tick table's primary key however many drivers race on them, the overlap policy, pause,
 * trigger, delete and pruning.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { SCHEDULE_DEFAULTS, type ScheduleSettings } from '../../server/src/domain/schedule.ts';
import { query } from '../support/database.ts';
import { databaseNow, later, listen, useDriver } from './harness.ts';

const h = useDriver();

beforeEach(async () => {
  await query(h.url, 'truncate baton_schedules, baton_schedule_ticks');
});

function schedule(name: string, overrides: Partial<ScheduleSettings> = {}): ScheduleSettings {
  return {
    ...SCHEDULE_DEFAULTS,
    name,
    queue: 'cron',
    payloadJson: '{"report":"daily"}',
    cron: '*/1 * * * * *',
    maxAttempts: null,
    timeoutMs: null,
    labels: {},
    ...overrides,
  };
}

async function jobsOf(name: string): Promise<{ id: string; status: string; run_at: Date; labels: Record<string, string> }[]> {
  return query(h.url, `select id::text, status, run_at, labels from baton_jobs where labels->>'baton.schedule' = $1 order by id`, [name]);
}

describe('scheduleUpsert, scheduleList, scheduleSetPaused, scheduleDelete', () => {
  it('creates, replaces, keeps paused unless given, moves the anchor only when the expression changes, and tells every broker', async () => {
    const changes = await listen(h.url, 'baton_cron');
    try {
      const t0 = await databaseNow(h.url);
      const first = await h.driver.scheduleUpsert({ schedule: schedule('nightly', { cron: '0 3 * * *', timeZone: 'Europe/Paris' }), now: t0 });
      expect(first.created).toBe(true);
      expect(first.schedule).toMatchObject({ name: 'nightly', queue: 'cron', cron: '0 3 * * *', timeZone: 'Europe/Paris', paused: false, lastTickAt: null });
      expect(first.schedule.anchorAt).toEqual(t0);
      expect(await h.driver.queueGet({ name: 'cron' })).not.toBeNull();

      await h.driver.scheduleSetPaused({ name: 'nightly', paused: true });
      const same = await h.driver.scheduleUpsert({
        schedule: schedule('nightly', { cron: '0 3 * * *', timeZone: 'Europe/Paris', priority: 5 }),
        now: later(t0, 1000),
      });
      expect(same.created).toBe(false);
      expect(same.schedule).toMatchObject({ priority: 5, paused: true });
      expect(same.schedule.anchorAt).toEqual(t0);

      const changed = await h.driver.scheduleUpsert({
        schedule: schedule('nightly', { cron: '0 4 * * *', timeZone: 'Europe/Paris' }),
        paused: false,
        now: later(t0, 2000),
      });
      expect(changed.schedule).toMatchObject({ cron: '0 4 * * *', paused: false });
      expect(changed.schedule.anchorAt).toEqual(later(t0, 2000));

      const resumed = await h.driver.scheduleSetPaused({ name: 'nightly', paused: false, now: later(t0, 3000) });
      // Resuming a schedule that was not paused leaves its anchor.
      expect(resumed!.anchorAt).toEqual(later(t0, 2000));
      await h.driver.scheduleSetPaused({ name: 'nightly', paused: true });
      expect((await h.driver.scheduleSetPaused({ name: 'nightly', paused: false, now: later(t0, 4000) }))!.anchorAt).toEqual(later(t0, 4000));

      expect(await h.driver.scheduleSetPaused({ name: 'none', paused: true })).toBeNull();
      expect((await h.driver.scheduleList()).map((s) => s.name)).toEqual(['nightly']);
      expect(await h.driver.scheduleDelete({ name: 'nightly' })).toBe(true);
      expect(await h.driver.scheduleDelete({ name: 'nightly' })).toBe(false);
      expect(await h.driver.scheduleGet({ name: 'nightly' })).toBeNull();
      const seen = [];
      for (let i = 0; i < 8; i++) seen.push(await changes.next());
      expect(seen).toEqual(new Array(8).fill('nightly'));
    } finally {
      await changes.close();
    }
  });
});

describe('scheduleTick', () => {
  it('enqueues one PENDING job per tick with the schedule settings, due at the tick, counted', async () => {
    await h.driver.scheduleUpsert({ schedule: schedule('s', { priority: 7, maxAttempts: 2, timeoutMs: 5000, labels: { team: 'ops' } }) });
    const tick = new Date(Math.floor((await databaseNow(h.url)).getTime() / 1000) * 1000);
    const outcome = await h.driver.scheduleTick({ name: 's', tickAt: tick });
    expect(outcome).toMatchObject({ outcome: 'enqueued' });
    const [job] = await jobsOf('s');
    expect(job).toMatchObject({
      id: outcome!.jobId,
      status: 'pending',
      run_at: tick,
      labels: { team: 'ops', 'baton.schedule': 's', 'baton.tick': tick.toISOString().replace('.000', '') },
    });
    expect(await h.driver.jobGet({ id: job.id })).toMatchObject({ priority: 7, maxAttempts: 2, timeoutMs: 5000, payloadJson: '{"report": "daily"}' });
    expect((await h.driver.jobCountByQueue()).get('cron')).toEqual({ pending: 1 });
    expect(await h.driver.scheduleGet({ name: 's' })).toMatchObject({ lastTickAt: tick, lastJobId: job.id, lastJobStatus: 'pending' });
    expect(await h.driver.scheduleTick({ name: 's', tickAt: tick })).toEqual({ outcome: 'duplicate', jobId: null });
    expect(await jobsOf('s')).toHaveLength(1);
  });

  it('makes exactly one job per tick when two drivers race on the same ticks', async () => {
    const other = h.other();
    await h.driver.scheduleUpsert({ schedule: schedule('race') });
    const base = Math.floor((await databaseNow(h.url)).getTime() / 1000) * 1000;
    const ticks = Array.from({ length: 40 }, (_, i) => new Date(base + i * 1000));
    const run = (driver: typeof other) => Promise.all(ticks.map((tickAt) => driver.scheduleTick({ name: 'race', tickAt })));
    const outcomes = (await Promise.all([run(h.driver), run(other), run(h.driver)])).flat().map((o) => o!.outcome);
    expect(outcomes.filter((o) => o === 'enqueued')).toHaveLength(40);
    expect(outcomes.filter((o) => o === 'duplicate')).toHaveLength(80);
    const jobs = await jobsOf('race');
    expect(jobs).toHaveLength(40);
    expect(new Set(jobs.map((j) => j.run_at.getTime()))).toEqual(new Set(ticks.map((t) => t.getTime())));
    expect(await query(h.url, `select count(*)::int as n from baton_schedule_ticks where schedule_name = 'race' and job_id is not null`)).toEqual([{ n: 40 }]);
    expect((await h.driver.jobCountByQueue()).get('cron')).toEqual({ pending: 40 });
  });

  it('with overlap skip, skips a tick while the latest job is live, and enqueues again once it finished', async () => {
    await h.driver.scheduleUpsert({ schedule: schedule('o', { overlap: 'skip' }) });
    const base = Math.floor((await databaseNow(h.url)).getTime() / 1000) * 1000;
    const first = await h.driver.scheduleTick({ name: 'o', tickAt: new Date(base) });
    expect(first!.outcome).toBe('enqueued');
    expect(await h.driver.scheduleTick({ name: 'o', tickAt: new Date(base + 1000) })).toEqual({ outcome: 'skipped_overlap', jobId: null });
    // Decided: trying the skipped tick again is a duplicate, not a second chance.
    expect((await h.driver.scheduleTick({ name: 'o', tickAt: new Date(base + 1000) }))!.outcome).toBe('duplicate');
    await h.driver.jobCancel({ id: first!.jobId! });
    expect((await h.driver.scheduleTick({ name: 'o', tickAt: new Date(base + 2000) }))!.outcome).toBe('enqueued');
    expect(await jobsOf('o')).toHaveLength(2);
  });

  it('yields nothing for a paused or missing schedule; a trigger enqueues one job now, paused or not', async () => {
    await h.driver.scheduleUpsert({ schedule: schedule('p'), paused: true });
    const tickAt = await databaseNow(h.url);
    expect(await h.driver.scheduleTick({ name: 'p', tickAt })).toBeNull();
    expect(await h.driver.scheduleTick({ name: 'none', tickAt })).toBeNull();
    const triggered = await h.driver.scheduleTrigger({ name: 'p' });
    expect(await jobsOf('p')).toMatchObject([{ id: triggered!.jobId, status: 'pending', labels: { 'baton.schedule': 'p' } }]);
    expect(await h.driver.scheduleGet({ name: 'p' })).toMatchObject({ lastJobId: triggered!.jobId, lastTickAt: null });
    expect(await h.driver.scheduleTrigger({ name: 'none' })).toBeNull();
    expect((await h.driver.jobCountByQueue()).get('cron')).toEqual({ pending: 1 });
  });

  it('prunes old ticks but keeps each schedule latest; deleting a schedule deletes its ticks, not its jobs', async () => {
    await h.driver.scheduleUpsert({ schedule: schedule('a') });
    await h.driver.scheduleUpsert({ schedule: schedule('b') });
    const base = Math.floor((await databaseNow(h.url)).getTime() / 1000) * 1000 - 10_000;
    for (let i = 0; i < 5; i++) await h.driver.scheduleTick({ name: 'a', tickAt: new Date(base + i * 1000) });
    await h.driver.scheduleTick({ name: 'b', tickAt: new Date(base) });
    expect(await h.driver.scheduleTicksPrune({ before: new Date(base + 60_000) })).toBe(4);
    expect(await query(h.url, 'select schedule_name, tick_at from baton_schedule_ticks order by 1')).toEqual([
      { schedule_name: 'a', tick_at: new Date(base + 4000) },
      { schedule_name: 'b', tick_at: new Date(base) },
    ]);
    await h.driver.scheduleDelete({ name: 'a' });
    expect(await query(h.url, 'select schedule_name from baton_schedule_ticks')).toEqual([{ schedule_name: 'b' }]);
    expect(await jobsOf('a')).toHaveLength(5);
  });
});
