/**
 * The leader's cron duty (server/src/core/schedule-ticker.ts) on a fake clock and a real store: time
 * moves when the test says, the ticks and jobs are read back from PostgreSQL. Leadership is handed
 * to the ticker directly (Maintenance's election is test/maintenance.test.ts's subject).
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ScheduleTicker } from '../server/src/core/schedule-ticker.ts';
import { SCHEDULE_DEFAULTS, type ScheduleSettings, type TickOutcome } from '../server/src/domain/schedule.ts';
import { createLogger } from '../server/src/logger.ts';
import type { StoreDriver } from '../server/src/store/driver.ts';
import { query } from './support/database.ts';
import { createFakeClock, type FakeClock } from './support/fake-clock.ts';
import { useDriver } from './store-driver/harness.ts';

const h = useDriver();

function schedule(name: string, overrides: Partial<ScheduleSettings> = {}): ScheduleSettings {
  return { ...SCHEDULE_DEFAULTS, name, queue: 'cron', payloadJson: '{}', cron: '*/1 * * * * *', maxAttempts: null, timeoutMs: null, labels: {}, ...overrides };
}

interface Rig {
  clock: FakeClock;
  notifications: EventEmitter<{ cron: [string] }>;
  tickers: ScheduleTicker[];
  outcomes: [string, TickOutcome][];
  ticker(store?: StoreDriver): ScheduleTicker;
  /** Moves time, then waits for every ticker's round to end. */
  step(ms: number): Promise<void>;
  /** Seconds after the start of each tick decided with a job, per schedule. */
  ticks(name: string): Promise<number[]>;
  start: number;
}

let rig: Rig;

beforeEach(async () => {
  await query(h.url, 'truncate baton_schedules, baton_schedule_ticks');
  // Near the real time, so that the jobs' run_at and the database's own now() agree.
  const start = Math.ceil(Date.now() / 1000) * 1000 + 500;
  const clock = createFakeClock(start);
  const notifications = new EventEmitter<{ cron: [string] }>();
  const tickers: ScheduleTicker[] = [];
  const outcomes: [string, TickOutcome][] = [];
  rig = {
    clock,
    notifications,
    tickers,
    outcomes,
    start,
    ticker(store = h.driver) {
      const ticker = new ScheduleTicker({
        store,
        notifications,
        logger: createLogger('error'),
        clock,
        onTick: (name, outcome) => outcomes.push([name, outcome]),
      });
      tickers.push(ticker);
      return ticker;
    },
    async step(ms) {
      await clock.advance(ms);
      for (const ticker of tickers) await ticker.runOnce();
    },
    async ticks(name) {
      const rows = await query(h.url, 'select tick_at from baton_schedule_ticks where schedule_name = $1 and job_id is not null order by tick_at', [name]);
      return rows.map((row) => (row.tick_at.getTime() - (start - 500)) / 1000);
    },
  };
});

afterEach(async () => {
  for (const ticker of rig.tickers) await ticker.unlead();
});

describe('ScheduleTicker', () => {
  it('sleeps until the next tick, then enqueues one job per tick', async () => {
    await h.driver.scheduleUpsert({ schedule: schedule('s'), now: rig.clock.storeNow() });
    const ticker = rig.ticker();
    ticker.lead(rig.clock.now());
    await ticker.runOnce();
    expect(await rig.ticks('s')).toEqual([]);
    // Armed for the next whole second, not a polling interval.
    expect(rig.clock.pending()).toEqual([rig.start + 500]);
    await rig.step(500);
    expect(await rig.ticks('s')).toEqual([1]);
    await rig.step(1000);
    await rig.step(1000);
    expect(await rig.ticks('s')).toEqual([1, 2, 3]);
    const jobs = await query(h.url, `select run_at from baton_jobs where labels->>'baton.schedule' = 's' order by id`);
    expect(jobs.map((job) => (job.run_at.getTime() - (rig.start - 500)) / 1000)).toEqual([1, 2, 3]);
    expect(rig.outcomes).toEqual([
      ['s', 'enqueued'],
      ['s', 'enqueued'],
      ['s', 'enqueued'],
    ]);
  });

  it('applies the missed-tick policy to ticks missed while it did not lead: skip, run_once, backfill', async () => {
    for (const [name, missed] of [
      ['skip', 'skip'],
      ['once', 'run_once'],
      ['fill', 'backfill'],
    ] as const) {
      await h.driver.scheduleUpsert({ schedule: schedule(name, { missed, backfillLimit: 3 }), now: rig.clock.storeNow() });
    }
    const ticker = rig.ticker();
    ticker.lead(rig.clock.now());
    await rig.step(1500);
    // No leader from 2.0 to 8.0: ticks 3 to 7 are missed; 8 comes due as the leader takes over.
    await ticker.unlead();
    await rig.clock.advance(6000);
    ticker.lead(rig.clock.now());
    await ticker.runOnce();
    await rig.step(1000);
    expect(await rig.ticks('skip')).toEqual([1, 2, 8, 9]);
    expect(await rig.ticks('once')).toEqual([1, 2, 7, 8, 9]);
    expect(await rig.ticks('fill')).toEqual([1, 2, 5, 6, 7, 8, 9]);
  });

  it('is re-armed by a schedule change: a new schedule ticks at its first tick, a paused one stops', async () => {
    const ticker = rig.ticker();
    ticker.lead(rig.clock.now());
    await ticker.runOnce();
    // Nothing to tick: the longest sleep.
    expect(rig.clock.pending()).toEqual([rig.start + 60_000]);
    await h.driver.scheduleUpsert({ schedule: schedule('every5', { cron: '*/5 * * * * *' }), now: rig.clock.storeNow() });
    rig.notifications.emit('cron', 'every5');
    await ticker.runOnce();
    const nextFive = Math.ceil(rig.start / 5000) * 5000;
    expect(rig.clock.pending()).toEqual([nextFive]);
    await rig.step(nextFive - rig.clock.now());
    expect(await rig.ticks('every5')).toHaveLength(1);
    await h.driver.scheduleSetPaused({ name: 'every5', paused: true });
    rig.notifications.emit('cron', 'every5');
    await ticker.runOnce();
    await rig.step(10_000);
    expect(await rig.ticks('every5')).toHaveLength(1);
  });

  it('two tickers leading at once (a failover overlap) make one job per tick', async () => {
    await h.driver.scheduleUpsert({ schedule: schedule('both'), now: rig.clock.storeNow() });
    const a = rig.ticker();
    const b = rig.ticker(h.other());
    a.lead(rig.clock.now());
    b.lead(rig.clock.now());
    for (let i = 0; i < 5; i++) await rig.step(1000);
    expect(await rig.ticks('both')).toEqual([1, 2, 3, 4, 5]);
    const jobs = await query(h.url, `select count(*)::int as n from baton_jobs where labels->>'baton.schedule' = 'both'`);
    expect(jobs).toEqual([{ n: 5 }]);
    expect(rig.outcomes.filter(([, outcome]) => outcome === 'enqueued')).toHaveLength(5);
    // The other one either read the schedule after the tick was decided, or tried it and was told.
    expect(rig.outcomes.every(([, outcome]) => outcome === 'enqueued' || outcome === 'duplicate')).toBe(true);
  });
});
