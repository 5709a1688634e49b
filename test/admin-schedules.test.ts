/**
 * The schedule RPCs of Admin, on both ports: upsert (create and replace), list with next run times
 * in the schedule's time zone, pause, resume, trigger and delete; the statuses bad input and unknown
 * schedules get; and a broker that ticks a seconds schedule on its own, as leader.
 */
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { MissedTickPolicy, OverlapPolicy } from '@baton/worker-sdk/gen/admin';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { usePortBroker } from './support/broker.ts';
import { query } from './support/database.ts';

async function failure(promise: Promise<unknown>): Promise<{ code: Code | 'ok'; message: string }> {
  try {
    await promise;
    return { code: 'ok', message: '' };
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: e.code, message: e.rawMessage };
  }
}

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const baton = usePortBroker(port);

  it('creates, lists with next runs in its time zone, replaces, pauses, resumes, triggers and deletes', async () => {
    const created = await baton.clients.admin.upsertSchedule({
      schedule: {
        name: 'nightly',
        queue: 'reports',
        payloadJson: new TextEncoder().encode('{"kind":"daily"}'),
        cron: '0 3 * * *',
        timeZone: 'Europe/Paris',
        priority: 4,
        labels: { team: 'ops' },
        missed: MissedTickPolicy.RUN_ONCE,
        overlap: OverlapPolicy.SKIP,
      },
    });
    expect(created.created).toBe(true);
    expect(created.schedule!.schedule).toMatchObject({
      name: 'nightly',
      queue: 'reports',
      cron: '0 3 * * *',
      timeZone: 'Europe/Paris',
      priority: 4,
      paused: false,
    });
    expect(created.schedule!.schedule!.missed).toBe(MissedTickPolicy.RUN_ONCE);
    expect(created.schedule!.schedule!.overlap).toBe(OverlapPolicy.SKIP);

    const { schedules } = await baton.clients.admin.listSchedules({ nextRuns: 3 });
    expect(schedules.map((s) => s.schedule!.name)).toEqual(['nightly']);
    const runs = schedules[0].nextRuns.map((t) => timestampDate(t));
    expect(runs).toHaveLength(3);
    for (const run of runs) {
      // 03:00 in Paris, whichever offset the date has.
      expect(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' }).format(run)).toBe('03:00');
    }

    const replaced = await baton.clients.admin.upsertSchedule({ schedule: { name: 'nightly', queue: 'reports', cron: '30 4 * * *' } });
    expect(replaced.created).toBe(false);
    expect(replaced.schedule!.schedule).toMatchObject({ cron: '30 4 * * *', timeZone: 'UTC', priority: 0 });

    const paused = await baton.clients.admin.pauseSchedule({ name: 'nightly' });
    expect(paused.schedule!.schedule!.paused).toBe(true);
    expect(paused.schedule!.nextRuns).toEqual([]);

    const { jobId } = await baton.clients.admin.triggerSchedule({ name: 'nightly' });
    const job = await baton.clients.broker.get({ id: jobId });
    expect(job.job).toMatchObject({ queue: 'reports', labels: { 'baton.schedule': 'nightly' } });
    const [listed] = (await baton.clients.admin.listSchedules({ name: 'nightly' })).schedules;
    expect(listed).toMatchObject({ lastJobId: jobId, lastJobStatus: JobStatus.PENDING });

    expect((await baton.clients.admin.resumeSchedule({ name: 'nightly' })).schedule!.schedule!.paused).toBe(false);
    await baton.clients.admin.deleteSchedule({ name: 'nightly' });
    expect((await baton.clients.admin.listSchedules({})).schedules).toEqual([]);
  });

  it('answers INVALID_ARGUMENT with the field for bad schedules, NOT_FOUND for unknown ones', async () => {
    const upsert = (schedule: { name: string; queue: string; cron: string; timeZone?: string }) => failure(baton.clients.admin.upsertSchedule({ schedule }));
    expect(await upsert({ name: 'x', queue: 'q', cron: '* * *' })).toMatchObject({
      code: Code.InvalidArgument,
      message: expect.stringMatching(/^schedule\.cron: invalid cron expression/),
    });
    expect(await upsert({ name: 'x', queue: 'q', cron: '* * * * *', timeZone: 'Nowhere/City' })).toMatchObject({
      code: Code.InvalidArgument,
      message: 'schedule.time_zone: unknown time zone "Nowhere/City": use an IANA name such as UTC or Europe/Paris',
    });
    expect(await upsert({ name: 'x', queue: '', cron: '* * * * *' })).toMatchObject({
      code: Code.InvalidArgument,
      message: 'schedule.queue: a schedule needs the queue its jobs go to',
    });
    expect(await failure(baton.clients.admin.upsertSchedule({}))).toMatchObject({ code: Code.InvalidArgument });
    // A field of 70,000 characters is quoted cut short: quoted whole, the status did not fit in
    // HTTP/2 trailers and its connection was closed under every other call on it.
    for (const huge of [{ queue: 'x'.repeat(70_000) }, { cron: 'x'.repeat(70_000) }, { timeZone: 'x'.repeat(70_000) }, { name: 'x'.repeat(70_000) }]) {
      const refused = await upsert({ name: 'x', queue: 'q', cron: '* * * * *', ...huge });
      expect(refused.code).toBe(Code.InvalidArgument);
      expect(refused.message.length).toBeLessThan(1_000);
    }
    expect((await baton.clients.admin.listSchedules({})).schedules).toBeDefined();
    // A payload JSON cannot hold (the fuzz test's NaN came back INTERNAL).
    const nan = { kind: { case: 'numberValue' as const, value: Number.NaN } };
    expect(await failure(baton.clients.admin.upsertSchedule({ schedule: { name: 'x', queue: 'q', cron: '* * * * *', payload: nan } }))).toMatchObject({
      code: Code.InvalidArgument,
      message: expect.stringMatching(/^schedule\.payload is not a JSON value/),
    });
    for (const call of [
      () => baton.clients.admin.pauseSchedule({ name: 'ghost' }),
      () => baton.clients.admin.resumeSchedule({ name: 'ghost' }),
      () => baton.clients.admin.deleteSchedule({ name: 'ghost' }),
      () => baton.clients.admin.triggerSchedule({ name: 'ghost' }),
      () => baton.clients.admin.listSchedules({ name: 'ghost' }),
    ]) {
      expect(await failure(call())).toMatchObject({ code: Code.NotFound, message: expect.stringContaining('schedule "ghost" does not exist') });
    }
    // A name no schedule can have (the fuzz test's NUL byte once reached PostgreSQL and came back INTERNAL).
    for (const name of ['q\u00003', 'a b', 'x'.repeat(129)]) {
      for (const call of [
        () => baton.clients.admin.pauseSchedule({ name }),
        () => baton.clients.admin.resumeSchedule({ name }),
        () => baton.clients.admin.deleteSchedule({ name }),
        () => baton.clients.admin.triggerSchedule({ name }),
        () => baton.clients.admin.listSchedules({ name }),
      ]) {
        expect(await failure(call())).toMatchObject({ code: Code.InvalidArgument, message: expect.stringContaining('not a valid schedule name') });
      }
    }
  });

  it('the leader ticks a seconds schedule: one job per tick, each due at its tick', async () => {
    await baton.clients.admin.upsertSchedule({ schedule: { name: `every-second-${port}`, queue: `ticks-${port}`, cron: '*/1 * * * * *' } });
    // Waits for ticks to happen (the broker's own clock), not for a duration.
    let rows: { tick_at: Date; job_id: string; run_at: Date }[] = [];
    for (let i = 0; i < 100 && rows.length < 3; i++) {
      rows = await query(
        baton.db.url,
        `select t.tick_at, t.job_id::text, j.run_at from baton_schedule_ticks t join baton_jobs j on j.id = t.job_id where t.schedule_name = $1 order by t.tick_at`,
        [`every-second-${port}`],
      );
      if (rows.length < 3) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(rows.length).toBeGreaterThanOrEqual(3);
    for (const row of rows) expect(row.run_at).toEqual(row.tick_at);
    const seconds = rows.map((row) => row.tick_at.getTime() / 1000);
    // Consecutive seconds: none missing, none doubled (the primary key forbids doubles anyway).
    expect(seconds).toEqual(seconds.map((_, i) => seconds[0] + i));
    await baton.clients.admin.deleteSchedule({ name: `every-second-${port}` });
  });
});
