/**
 * The RPCs the dashboard's operator views stand on, on both ports: ListWorkers (the sessions open
 * on every broker, with the jobs each holds), UpdateQueue (settings changed one field at a time),
 * GetQueueStats' oldest pending job, and List's idempotency-key and label filters; each with the
 * status bad input gets.
 */
import { durationFromMs, durationMs, timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { code, usePortBroker } from './support/broker.ts';
import { query } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const baton = usePortBroker(port);

  it('ListWorkers lists each open Lease stream with its queues, capacity, jobs held and lease', async () => {
    await baton.clients.broker.enqueueBatch({ jobs: Array.from({ length: 3 }, () => ({ queue: 'ops-mail' })) });
    const mailer = new LeaseDriver(baton.clients.broker);
    mailer.hello(['ops-mail', 'ops-sms'], 8, 2, 'mailer-1');
    const idle = new LeaseDriver(baton.clients.broker);
    idle.hello(['ops-idle'], 4, 0, 'idler-1');
    await mailer.jobsReceived(2);
    await idle.until((m) => m.some((x) => x.welcome));

    const { sessions } = await baton.clients.admin.listWorkers({});
    const mail = sessions.find((s) => s.workerId === 'mailer-1');
    const idler = sessions.find((s) => s.workerId === 'idler-1');
    expect(mail).toMatchObject({ queues: ['ops-mail', 'ops-sms'], capacity: 8, jobsHeld: 2, brokerId: expect.any(String) });
    expect(idler).toMatchObject({ queues: ['ops-idle'], capacity: 4, jobsHeld: 0 });
    const now = Date.now();
    expect(timestampDate(mail!.connectedAt!).getTime()).toBeLessThanOrEqual(now + 1000);
    // A fresh session's lease runs a whole TTL ahead.
    expect(timestampDate(mail!.leaseExpiresAt!).getTime()).toBeGreaterThan(now);

    // Narrowed to one queue: only the sessions that list it.
    const served = await baton.clients.admin.listWorkers({ queue: 'ops-sms' });
    expect(served.sessions.map((s) => s.workerId)).toEqual(['mailer-1']);
    expect((await baton.clients.admin.listWorkers({ queue: 'ops-nobody' })).sessions).toEqual([]);
    expect(await code(baton.clients.admin.listWorkers({ queue: 'not a queue!' }))).toBe(Code.InvalidArgument);

    // A closed stream's session is gone at once.
    idle.end();
    await idle.done;
    await expect.poll(async () => (await baton.clients.admin.listWorkers({})).sessions.some((s) => s.workerId === 'idler-1')).toBe(false);
    mailer.end();
    await mailer.done;
  });

  it('UpdateQueue changes only the settings given, and refuses bad values and unknown queues', async () => {
    await baton.clients.broker.enqueue({ queue: 'ops-settings' });
    const first = await baton.clients.admin.updateQueue({ queue: 'ops-settings', concurrency: 3 });
    expect(first.queue).toMatchObject({ name: 'ops-settings', concurrency: 3 });
    const before = first.queue!;
    const second = await baton.clients.admin.updateQueue({ queue: 'ops-settings', defaultMaxAttempts: 7, defaultTimeout: durationFromMs(90_000) });
    expect(second.queue).toMatchObject({ concurrency: 3, defaultMaxAttempts: 7, paused: before.paused });
    expect(durationMs(second.queue!.defaultTimeout!)).toBe(90_000);
    // A zero timeout means no limit, and is sent back unset.
    const third = await baton.clients.admin.updateQueue({ queue: 'ops-settings', defaultTimeout: durationFromMs(0), concurrency: 0 });
    expect(third.queue?.defaultTimeout).toBeUndefined();
    expect(third.queue).toMatchObject({ concurrency: 0, defaultMaxAttempts: 7 });
    // New jobs take the queue's new default.
    const { job } = await baton.clients.broker.enqueue({ queue: 'ops-settings' });
    expect(job?.maxAttempts).toBe(7);

    expect(await code(baton.clients.admin.updateQueue({ queue: 'ops-nowhere', concurrency: 1 }))).toBe(Code.NotFound);
    expect(await code(baton.clients.admin.updateQueue({ queue: 'bad name', concurrency: 1 }))).toBe(Code.InvalidArgument);
    expect(await code(baton.clients.admin.updateQueue({ queue: 'ops-settings', concurrency: -1 }))).toBe(Code.InvalidArgument);
    expect(await code(baton.clients.admin.updateQueue({ queue: 'ops-settings', defaultMaxAttempts: 0 }))).toBe(Code.InvalidArgument);
    expect(await code(baton.clients.admin.updateQueue({ queue: 'ops-settings', defaultMaxAttempts: 1001 }))).toBe(Code.InvalidArgument);
    expect(await code(baton.clients.admin.updateQueue({ queue: 'ops-settings', defaultTimeout: { seconds: -5n, nanos: 0 } }))).toBe(Code.InvalidArgument);
    const [row] = await query<{ concurrency: number; default_max_attempts: number }>(
      baton.db.url,
      `select concurrency, default_max_attempts from baton_queues where name = 'ops-settings'`,
    );
    expect(row).toEqual({ concurrency: 0, default_max_attempts: 7 });
  });

  it('GetQueueStats gives the attempts started per minute and how long they waited since they were due', async () => {
    // Due 5 minutes ago: its start, whenever it comes, waited at least that long.
    await baton.clients.broker.enqueue({ queue: 'ops-wait', runAt: timestampFromDate(new Date(Date.now() - 5 * 60_000)) });
    const worker = new LeaseDriver(baton.clients.broker);
    worker.hello(['ops-wait'], 1, 1, 'waiter-1');
    await worker.jobsReceived(1);
    const [stats] = (await baton.clients.admin.getQueueStats({ queues: ['ops-wait'], throughputMinutes: 3 })).queues;
    expect(stats.startedPerMinute).toHaveLength(3);
    expect(stats.meanWaitMsPerMinute).toHaveLength(3);
    expect(stats.startedPerMinute.reduce((a, b) => a + b, 0n)).toBe(1n);
    const minute = stats.startedPerMinute.findIndex((n) => n === 1n);
    expect(stats.meanWaitMsPerMinute[minute]).toBeGreaterThan(299_000);
    expect(stats.meanWaitMsPerMinute[minute]).toBeLessThan(330_000);
    worker.end();
    await worker.done;
  });

  it('GetQueueStats gives the oldest pending job of each queue, and nothing for a queue with none', async () => {
    // A run_at in the past makes a job PENDING at once, due since then.
    await baton.clients.broker.enqueue({ queue: 'ops-age', runAt: timestampFromDate(new Date(Date.now() - 12 * 60_000)) });
    await baton.clients.broker.enqueue({ queue: 'ops-age', priority: 9 });
    await baton.clients.broker.enqueue({ queue: 'ops-none', delay: durationFromMs(60_000) });
    const { queues } = await baton.clients.admin.getQueueStats({ queues: ['ops-age', 'ops-none'] });
    const age = Date.now() - timestampDate(queues.find((q) => q.queue === 'ops-age')!.oldestPendingRunAt!).getTime();
    expect(age).toBeGreaterThan(11.5 * 60_000);
    expect(age).toBeLessThan(13 * 60_000);
    expect(queues.find((q) => q.queue === 'ops-none')?.oldestPendingRunAt).toBeUndefined();
    // An hour of throughput is the most asked for.
    expect((await baton.clients.admin.getQueueStats({ throughputMinutes: 60 })).queues[0].completedPerMinute).toHaveLength(60);
    expect(await code(baton.clients.admin.getQueueStats({ throughputMinutes: 61 }))).toBe(Code.InvalidArgument);
  });

  it('List finds a job by idempotency key and by labels, and refuses malformed filters', async () => {
    const { job: keyed } = await baton.clients.broker.enqueue({ queue: 'ops-search', idempotencyKey: 'invoice-77', labels: { tenant: 'acme' } });
    const { job: other } = await baton.clients.broker.enqueue({ queue: 'ops-search', labels: { tenant: 'acme', region: 'eu' } });
    await baton.clients.broker.enqueue({ queue: 'ops-search', labels: { tenant: 'globex' } });

    const byKey = await baton.clients.broker.list({ idempotencyKey: 'invoice-77' });
    expect(byKey.jobs.map((j) => j.id)).toEqual([keyed!.id]);
    expect((await baton.clients.broker.list({ idempotencyKey: 'no-such-key' })).jobs).toEqual([]);
    const acme = await baton.clients.broker.list({ labels: { tenant: 'acme' } });
    expect(acme.jobs.map((j) => j.id)).toEqual([other!.id, keyed!.id]);
    const both = await baton.clients.broker.list({ queue: 'ops-search', labels: { tenant: 'acme', region: 'eu' } });
    expect(both.jobs.map((j) => j.id)).toEqual([other!.id]);
    // Pages still follow the filter.
    const first = await baton.clients.broker.list({ labels: { tenant: 'acme' }, pageSize: 1 });
    const second = await baton.clients.broker.list({ labels: { tenant: 'acme' }, pageSize: 1, pageToken: first.nextPageToken });
    expect([...first.jobs, ...second.jobs].map((j) => j.id)).toEqual([other!.id, keyed!.id]);
    expect(second.nextPageToken).toBe('');

    expect(await code(baton.clients.broker.list({ labels: { '': 'x' } }))).toBe(Code.InvalidArgument);
    expect(await code(baton.clients.broker.list({ idempotencyKey: 'a\u0000b' }))).toBe(Code.InvalidArgument);
    expect(await code(baton.clients.broker.list({ idempotencyKey: 'k'.repeat(201) }))).toBe(Code.InvalidArgument);
    const tooMany = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
    expect(await code(baton.clients.broker.list({ labels: tooMany }))).toBe(Code.ResourceExhausted);
  });
});
