/**
 * Several brokers on one PostgreSQL: a worker may hold its stream on one broker while producers
 * talk to another. Cancels cross brokers through LISTEN/NOTIFY, concurrency limits are counted in
 * the database, and exactly one broker runs the background duties at a time. The workers' streams
 * (and the test's calls) go to the brokers' main ports, then to their native gRPC ports.
 */
import { describe, expect, it } from 'vitest';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import type { RunningBroker } from '../server/src/broker.ts';
import { clientsOn, grpcClients, useTwoBrokers } from './support/broker.ts';
import { query } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import { eventually } from './support/processes.ts';

const pair = useTwoBrokers();

// Both ports are one contract: every cross-broker case on the main ports, then on BATON_GRPC_PORT.
describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  /** Clients of `broker` on this port. */
  const on = (broker: RunningBroker) => clientsOn(broker, port);
  /** Queue names of this port's cases, apart from the other port's (one database). */
  const q = (name: string) => `${name}-${port}`;

  it('a Cancel received by one broker reaches the worker whose stream lives on another', async () => {
    const onA = on(pair.a);
    const onB = on(pair.b);
    const { job } = await onB.broker.enqueue({ queue: q('cross-cancel') });
    const worker = new LeaseDriver(onA.broker);
    worker.hello([q('cross-cancel')], 1, 1);
    const [assigned] = await worker.jobsReceived(1);
    await onB.broker.cancel({ id: job!.id });
    const notice = await worker.until((m) => m.flatMap((x) => x.cancels)[0]);
    expect(notice.leaseToken).toBe(assigned.leaseToken);
    worker.send({ results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken, failure: { message: 'cancelled' } }] });
    await worker.until((m) => m.flatMap((x) => x.acks).length > 0);
    expect((await onB.broker.get({ id: job!.id })).job?.status).toBe(JobStatus.CANCELLED);
    worker.end();
    await worker.done;
  });

  it('a queue limit holds across brokers, and a slot freed on one is taken on the other', async () => {
    const onA = on(pair.a);
    const onB = on(pair.b);
    await onA.admin.setQueueConcurrency({ queue: q('cross-limit'), concurrency: 2 });
    await onA.broker.enqueueBatch({ jobs: Array.from({ length: 6 }, () => ({ queue: q('cross-limit') })) });
    const workerA = new LeaseDriver(onA.broker);
    const workerB = new LeaseDriver(onB.broker);
    workerA.hello([q('cross-limit')], 5, 5);
    workerB.hello([q('cross-limit')], 5, 5);
    const out = () => workerA.jobs.length + workerB.jobs.length;
    await eventually(() => out() >= 2, 10_000, 'two jobs out');
    expect(out()).toBe(2);
    // Finish whatever one worker holds; the freed slots may go to either broker's worker. Each
    // broker hears of the completions and claims again, and its claim is its chance to overshoot:
    // the slots refilled prove those claims ran, and the count proves they stopped at the limit.
    const holder = workerA.jobs.length > 0 ? workerA : workerB;
    holder.send({ results: holder.jobs.map((j) => ({ jobId: j.jobId, leaseToken: j.leaseToken, resultJson: new TextEncoder().encode('1') })) });
    const finished = holder.jobs.length;
    await eventually(() => out() >= 2 + finished, 10_000, 'freed slots to be reused');
    expect(out()).toBe(2 + finished);
    const { queues } = await onB.admin.getQueueStats({ queues: [q('cross-limit')] });
    expect(queues[0]).toMatchObject({ running: 2n, completed: BigInt(finished), pending: BigInt(6 - 2 - finished) });
    workerA.end();
    workerB.end();
    await Promise.all([workerA.done, workerB.done]);
  });

  it('a queue Watch on one broker sees the claims and completions of a worker on another', async () => {
    const onA = on(pair.a);
    const onB = on(pair.b);
    await onA.admin.setQueueConcurrency({ queue: q('cross-watch'), concurrency: 0 });
    const abort = new AbortController();
    const seen: JobStatus[] = [];
    const stream = onA.broker.watch({ queue: q('cross-watch') }, { signal: abort.signal });
    const watching = (async () => {
      for await (const change of stream) seen.push(change.job!.status);
    })().catch(() => undefined);
    // Open once the queue is marked as watched: claims and completions announce only then.
    await eventually(
      async () => (await query(pair.db.url, `select watched_until > now() as on from baton_queues where name = $1`, [q('cross-watch')]))[0]?.on,
      5_000,
      'the queue marked',
    );
    const worker = new LeaseDriver(onB.broker);
    worker.hello([q('cross-watch')], 1, 1);
    // Enqueued on A, which has no worker: B's dispatcher claims it (a claim, not a hand-off).
    await onA.broker.enqueue({ queue: q('cross-watch') });
    const [assigned] = await worker.jobsReceived(1);
    worker.send({ results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken }] });
    await eventually(() => seen.includes(JobStatus.COMPLETED), 10_000, 'COMPLETED seen on the other broker');
    expect(seen).toContain(JobStatus.RUNNING);
    abort.abort();
    await watching;
    worker.end();
    await worker.done;
  });
});

// No Lease stream here, and it stops a broker: once, last.
it('exactly one broker runs the background duties, and another takes over when it stops', async () => {
  await eventually(() => pair.a.maintenance.isLeader || pair.b.maintenance.isLeader, 10_000, 'a leader');
  expect(pair.a.maintenance.isLeader && pair.b.maintenance.isLeader).toBe(false);
  const [leader, follower] = pair.a.maintenance.isLeader ? [pair.a, pair.b] : [pair.b, pair.a];
  const { job } = await grpcClients(follower.url).broker.enqueue({ queue: 'cross-later', delay: { seconds: 2n, nanos: 0 } });
  await leader.stop();
  await eventually(() => follower.maintenance.isLeader, 15_000, 'the follower to be elected');
  // The new leader promotes the scheduled job when it falls due.
  await eventually(async () => (await grpcClients(follower.url).broker.get({ id: job!.id })).job?.status === JobStatus.PENDING, 15_000, 'promotion');
});
