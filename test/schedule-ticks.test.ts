/**
 * Which ticks of a schedule fall due (server/src/domain/schedule.ts): on-time ticks all fire, missed
 * ones (due before the leader took over) by the missed-tick policy; time zones and DST are croner's.
 * And the rules every entry point checks a schedule with.
 */
import { describe, expect, it } from 'vitest';
import { SCHEDULE_DEFAULTS, type ScheduleSettings, nextTicks, scheduleProblem, ticksToFire } from '../server/src/domain/schedule.ts';

const T = Date.UTC(2027, 0, 1, 12, 0, 0);
const iso = (ticks: Date[]) => ticks.map((tick) => tick.toISOString().slice(11, 19));
const everySecond = { cron: '*/1 * * * * *', timeZone: 'UTC', backfillLimit: 3 };

describe('ticksToFire', () => {
  it('fires every tick due since the cursor while this broker led, none before it is due', () => {
    expect(iso(ticksToFire({ ...everySecond, missed: 'skip' }, T, T - 60_000, T + 3000))).toEqual(['12:00:01', '12:00:02', '12:00:03']);
    expect(ticksToFire({ ...everySecond, missed: 'skip' }, T, T - 60_000, T + 999)).toEqual([]);
  });

  it('skip: ticks missed before the leader took over never run; the one at the take-over does', () => {
    expect(iso(ticksToFire({ ...everySecond, missed: 'skip' }, T, T + 10_000, T + 10_500))).toEqual(['12:00:10']);
    expect(iso(ticksToFire({ ...everySecond, missed: 'skip' }, T, T + 10_200, T + 10_500))).toEqual([]);
  });

  it('run_once: the latest missed tick, then the on-time ones', () => {
    expect(iso(ticksToFire({ ...everySecond, missed: 'run_once' }, T, T + 10_200, T + 11_000))).toEqual(['12:00:10', '12:00:11']);
  });

  it('backfill: the latest N missed ticks, oldest first, none at or before the cursor', () => {
    expect(iso(ticksToFire({ ...everySecond, missed: 'backfill' }, T, T + 10_200, T + 11_000))).toEqual(['12:00:08', '12:00:09', '12:00:10', '12:00:11']);
    expect(iso(ticksToFire({ ...everySecond, missed: 'backfill', backfillLimit: 100 }, T + 7000, T + 9500, T + 9500))).toEqual(['12:00:08', '12:00:09']);
  });

  it('reads the expression in the schedule time zone, across a DST change', () => {
    // 03:00 in Paris, in winter (UTC+1) then summer (UTC+2): DST starts on 28 March 2027.
    const paris = { cron: '0 3 * * *', timeZone: 'Europe/Paris' };
    expect(nextTicks(paris, 2, Date.UTC(2027, 2, 27)).map((tick) => tick.toISOString())).toEqual(['2027-03-27T02:00:00.000Z', '2027-03-28T01:00:00.000Z']);
  });
});

describe('scheduleProblem', () => {
  const ok: ScheduleSettings = {
    ...SCHEDULE_DEFAULTS,
    name: 'n',
    queue: 'q',
    payloadJson: 'null',
    cron: '0 3 * * *',
    maxAttempts: null,
    timeoutMs: null,
    labels: {},
  };

  it('accepts 5 and 6 fields, refuses the rest with the field and what to do', () => {
    expect(scheduleProblem(ok)).toBeNull();
    expect(scheduleProblem({ ...ok, cron: '*/5 * * * * *' })).toBeNull();
    expect(scheduleProblem({ ...ok, cron: '* * * *' })).toMatch(/^cron: invalid cron expression "\* \* \* \*"/);
    expect(scheduleProblem({ ...ok, cron: '61 * * * *' })).toMatch(/^cron: .*minute/);
    expect(scheduleProblem({ ...ok, timeZone: 'Mars/Base' })).toBe('time_zone: unknown time zone "Mars/Base": use an IANA name such as UTC or Europe/Paris');
    expect(scheduleProblem({ ...ok, queue: '' })).toBe('queue: a schedule needs the queue its jobs go to');
    expect(scheduleProblem({ ...ok, cron: '0 0 30 2 *' })).toBe('cron: "0 0 30 2 *" never fires');
    expect(scheduleProblem({ ...ok, labels: { 'baton.schedule': 'x' } })).toBe('labels: "baton.schedule" is set by the broker on each job');
    expect(scheduleProblem({ ...ok, missed: 'backfill', backfillLimit: 0 })).toMatch(/^backfill_limit: must be 1-1000/);
  });
});

describe('BATON_SCHEDULES', () => {
  it('reads inline JSON or a file, with defaults, and refuses a bad entry naming it and the field', async () => {
    const { parseSchedules } = await import('../server/src/config/schedule-declarations.ts');
    const [declared] = parseSchedules('[{"name":"n","queue":"q","cron":"0 3 * * *","payload":{"a":1},"missed":"run_once"}]');
    expect(declared).toEqual({
      settings: {
        ...SCHEDULE_DEFAULTS,
        name: 'n',
        queue: 'q',
        cron: '0 3 * * *',
        payloadJson: '{"a":1}',
        missed: 'run_once',
        maxAttempts: null,
        timeoutMs: null,
        labels: {},
      },
      paused: undefined,
    });
    const fs = await import('node:fs');
    const os = await import('node:os');
    const file = `${fs.mkdtempSync(`${os.tmpdir()}/baton-schedules-`)}/schedules.json`;
    fs.writeFileSync(file, '[{"name":"f","queue":"q","cron":"*/5 * * * * *","paused":true}]');
    expect(parseSchedules(file)).toMatchObject([{ settings: { name: 'f' }, paused: true }]);
    expect(() => parseSchedules('[{"name":"n","queue":"q","cron":"0 3 * * *","time_zone":"Moon/Base"}]')).toThrow(
      'BATON_SCHEDULES[0] (schedule "n"): time_zone: unknown time zone "Moon/Base"',
    );
    expect(() => parseSchedules('[{"name":"n","cron":"0 3 * * *"}]')).toThrow('BATON_SCHEDULES[0]: "queue" must be a string and is required');
    expect(() => parseSchedules('[{"name":"n","queue":"q","cron":"0 3 * * *","every":1}]')).toThrow('unknown field "every"');
    expect(() => parseSchedules('/nonexistent/schedules.json')).toThrow(/cannot read the file/);
  });
});
