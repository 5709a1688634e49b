/**
 * Snooze over the Lease protocol, driven by hand as a worker in another language would, on both
 * ports: the job comes back after its delay with the same attempt number, no error is recorded,
 * and the broker refuses a delay out of range in the ack.
 */
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { describe, expect, it } from 'vitest';
import { usePortBroker } from './support/broker.ts';
import { LeaseDriver } from './support/lease-driver.ts';

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const baton = usePortBroker(port);

  it('GetServerInfo lists the snooze capability', async () => {
    expect((await baton.clients.broker.getServerInfo({})).capabilities).toContain('snooze');
  });

  it('a snoozed job runs again after its delay with the same attempt, and completes with no error kept', async () => {
    const { job } = await baton.clients.broker.enqueue({ queue: 'snooze-basic', maxAttempts: 1 });
    const worker = new LeaseDriver(baton.clients.broker);
    worker.hello(['snooze-basic'], 1, 1);
    const [first] = await worker.jobsReceived(1);
    expect(first.attempt).toBe(1);
    const snoozedAt = Date.now();
    worker.send({ credits: 1, results: [{ jobId: first.jobId, leaseToken: first.leaseToken, snooze: { delay: durationFromMs(300) } }] });
    const ack = await worker.until((m) => m.flatMap((x) => x.acks)[0]);
    expect(ack).toMatchObject({ jobId: job!.id, accepted: true });
    const waiting = (await baton.clients.broker.get({ id: job!.id })).job!;
    expect(waiting.status).toBe(JobStatus.SCHEDULED);
    expect(waiting.attempt).toBe(0);
    expect(waiting.labels).toEqual({ 'baton.snoozes': '1' });

    // With one attempt allowed, a snooze that counted would have left none.
    const [, second] = await worker.jobsReceived(2);
    expect(Date.now() - snoozedAt).toBeGreaterThanOrEqual(280);
    expect(second).toMatchObject({ jobId: job!.id, attempt: 1, maxAttempts: 1, labels: { 'baton.snoozes': '1' } });
    expect(second.leaseToken).not.toBe(first.leaseToken);

    // The first lease is spent: a late result under it changes nothing.
    worker.send({ results: [{ jobId: first.jobId, leaseToken: first.leaseToken, resultJson: new TextEncoder().encode('1') }] });
    expect((await worker.until((m) => m.flatMap((x) => x.acks)[1])).accepted).toBe(false);
    worker.send({ results: [{ jobId: second.jobId, leaseToken: second.leaseToken, resultJson: new TextEncoder().encode('"done"') }] });
    expect((await worker.until((m) => m.flatMap((x) => x.acks)[2])).accepted).toBe(true);
    const done = (await baton.clients.broker.get({ id: job!.id })).job!;
    expect(done).toMatchObject({ status: JobStatus.COMPLETED, attempt: 1, errors: [] });
    worker.end();
    await worker.done;
  });

  it('refuses a delay of zero or above 365 days in the ack, recording nothing', async () => {
    await baton.clients.broker.enqueueBatch({ jobs: [{ queue: 'snooze-range' }, { queue: 'snooze-range' }, { queue: 'snooze-range' }] });
    const worker = new LeaseDriver(baton.clients.broker);
    worker.hello(['snooze-range'], 3, 3);
    const held = await worker.jobsReceived(3);
    const report = (index: number, delayMs: number | null) => ({
      jobId: held[index].jobId,
      leaseToken: held[index].leaseToken,
      snooze: { delay: delayMs === null ? undefined : durationFromMs(delayMs) },
    });
    worker.send({ results: [report(0, null), report(1, 366 * 24 * 3600_000)] });
    const refused = await worker.until((m) => {
      const acks = m.flatMap((x) => x.acks);
      return acks.length >= 2 && acks;
    });
    expect(refused.map((a) => [a.accepted, a.error])).toEqual([
      [false, 'snooze.delay must be more than 0 and at most 365 days'],
      [false, 'snooze.delay must be more than 0 and at most 365 days'],
    ]);
    expect((await baton.clients.broker.get({ id: held[0].jobId })).job?.status).toBe(JobStatus.RUNNING);
    expect((await baton.clients.broker.get({ id: held[1].jobId })).job?.status).toBe(JobStatus.RUNNING);
    worker.send({ results: [report(2, 60_000)] });
    expect((await worker.until((m) => m.flatMap((x) => x.acks)[2])).accepted).toBe(true);
    const snoozed = (await baton.clients.broker.get({ id: held[2].jobId })).job!;
    expect(snoozed.status).toBe(JobStatus.SCHEDULED);
    expect(Number(snoozed.runAt!.seconds) * 1000 - Date.now()).toBeGreaterThan(50_000);
    worker.end();
    await worker.done;
  });
});
