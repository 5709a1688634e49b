/**
 * The hand-off (server/src/core/handoff.ts): a job enqueued while a worker waits idle for its queue
 * is inserted already assigned to that worker, and nothing about credits, limits, pauses or
 * fencing changes for it. On both ports: the worker's stream and the producer's calls go to the
 * main port, then to the native gRPC port (BATON_GRPC_PORT).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { grpcClients, useTestBroker } from './support/broker.ts';
import { query } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import { eventually } from './support/processes.ts';

const baton = useTestBroker({ grpcPort: 0 });
const ports = {} as Record<'main' | 'grpc', ReturnType<typeof grpcClients>>;

beforeAll(() => {
  ports.main = baton.clients;
  ports.grpc = grpcClients(`http://127.0.0.1:${baton.broker.grpcPort}`);
});

/**
 * Pacing, not proof: gives a worker's first claim time to find its queue empty, so that the next
 * enqueue is likely handed off. No assertion rests on it (enqueueHandedOff tries again when not).
 */
const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

// Both ports are one contract: every case runs on the main port and on BATON_GRPC_PORT.
describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  /** This port's clients (set in beforeAll, so read when a test runs). */
  const clients = () => ports[port];
  /** Queue names of this port's cases, apart from the other port's (one database). */
  const q = (name: string) => `${name}-${port}`;

  /** A worker connected to an existing queue (the dispatcher knows a queue's settings once it exists). */
  async function idleWorker(queue: string, capacity: number): Promise<LeaseDriver> {
    if (!queue.includes('limited')) await clients().admin.setQueueConcurrency({ queue, concurrency: 0 });
    const worker = new LeaseDriver(clients().broker);
    worker.hello([queue], capacity, capacity);
    await worker.until((m) => m.some((x) => x.welcome));
    await settle();
    return worker;
  }

  /**
   * Enqueues until a job comes back handed off. A worker is idle only once the claim its credit
   * started has found the queue empty (on a loaded machine that may take longer than the pause
   * above); until then a new job waits for that claim like any other. A job claimed that way is
   * completed, returning its credit, and the next one tried.
   */
  async function enqueueHandedOff(worker: LeaseDriver, queue: string, payloadJson?: Uint8Array) {
    for (let tries = 0; tries < 20; tries++) {
      const job = (await clients().broker.enqueue({ queue, payloadJson })).job!;
      if (job.status === JobStatus.RUNNING) return job;
      const claimed = await worker.until((m) => m.flatMap((x) => x.jobs).find((j) => j.jobId === job.id));
      worker.send({ credits: 1, results: [{ jobId: claimed.jobId, leaseToken: claimed.leaseToken }] });
      await worker.until((m) => m.flatMap((x) => x.acks).some((a) => a.jobId === job.id));
      await settle();
    }
    throw new Error(`no job of ${queue} was handed off in 20 tries`);
  }

  const received = (worker: LeaseDriver, id: string) => worker.until((m) => m.flatMap((x) => x.jobs).find((j) => j.jobId === id));

  it('hands a job enqueued for an idle worker straight to it, running, and records its result', async () => {
    const worker = await idleWorker(q('handoff-idle'), 2);
    const job = await enqueueHandedOff(worker, q('handoff-idle'), new TextEncoder().encode('{"n":1}'));
    expect(job.attempt).toBe(1);
    const assigned = await received(worker, job.id);
    expect(assigned.attempt).toBe(1);
    expect(new TextDecoder().decode(assigned.payloadJson)).toBe('{"n": 1}');
    worker.send({ credits: 1, results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken, resultJson: new TextEncoder().encode('2') }] });
    const ack = await worker.until((m) => m.flatMap((x) => x.acks).find((a) => a.jobId === job.id));
    expect(ack.accepted).toBe(true);
    expect((await clients().broker.get({ id: job.id })).job?.status).toBe(JobStatus.COMPLETED);
    worker.end();
    await worker.done;
  });

  it('hands off no more jobs than the worker has credit for; the rest wait as usual', async () => {
    const worker = await idleWorker(q('handoff-credit'), 1);
    const first = await enqueueHandedOff(worker, q('handoff-credit'));
    const second = (await clients().broker.enqueue({ queue: q('handoff-credit') })).job!;
    expect(second.status).toBe(JobStatus.PENDING);
    await received(worker, first.id);
    const count = worker.jobs.length;
    // The waiting job goes to the next worker with credit: the claim that gives it away is the
    // broker's chance to have overshot the first worker's credit, and it did not.
    const other = new LeaseDriver(clients().broker);
    other.hello([q('handoff-credit')], 1, 1);
    await received(other, second.id);
    expect(worker.jobs).toHaveLength(count);
    expect(worker.jobs.map((j) => j.jobId)).not.toContain(second.id);
    for (const driver of [worker, other]) {
      driver.end();
      await driver.done;
    }
  });

  it('does not hand off jobs of a limited or paused queue, or jobs due later', async () => {
    await clients().admin.setQueueConcurrency({ queue: q('handoff-limited'), concurrency: 5 });
    const limitedWorker = await idleWorker(q('handoff-limited'), 2);
    const limited = (await clients().broker.enqueue({ queue: q('handoff-limited') })).job!;
    expect(limited.status).toBe(JobStatus.PENDING);
    // Claimed the usual way, under the queue's lock.
    expect((await limitedWorker.jobsReceived(1))[0].jobId).toBe(limited.id);

    const pausedWorker = await idleWorker(q('handoff-paused'), 2);
    await clients().admin.pauseQueue({ queue: q('handoff-paused') });
    // The pause reaches the dispatcher as a notification, which the enqueue below may overtake;
    // the enqueue (a hand-off's insert) checks the queue itself, so PENDING is the broker's answer.
    const paused = (await clients().broker.enqueue({ queue: q('handoff-paused') })).job!;
    expect(paused.status).toBe(JobStatus.PENDING);
    // Nor was it claimed while paused: the worker gets it after the resume, not before.
    await clients().admin.resumeQueue({ queue: q('handoff-paused') });
    const [{ resumedAt }] = await query<{ resumedAt: Date }>(baton.db.url, `select updated_at as "resumedAt" from baton_queues where name = $1`, [
      q('handoff-paused'),
    ]);
    await received(pausedWorker, paused.id);
    const [{ startedAt }] = await query<{ startedAt: Date }>(baton.db.url, `select started_at as "startedAt" from baton_jobs where id = $1`, [paused.id]);
    expect(startedAt.getTime()).toBeGreaterThanOrEqual(resumedAt.getTime());
    expect(pausedWorker.jobs).toHaveLength(1);

    const laterWorker = await idleWorker(q('handoff-later'), 2);
    const later = (await clients().broker.enqueue({ queue: q('handoff-later'), delay: { seconds: 60n, nanos: 0 } })).job!;
    expect(later.status).toBe(JobStatus.SCHEDULED);
    // A job due now, enqueued after it, reaches the same worker (handed off or claimed): whichever
    // way, the broker had the scheduled job in front of it and did not send it.
    const now = (await clients().broker.enqueue({ queue: q('handoff-later') })).job!;
    await received(laterWorker, now.id);
    expect(laterWorker.jobs.map((j) => j.jobId)).toEqual([now.id]);

    for (const worker of [limitedWorker, pausedWorker, laterWorker]) {
      worker.end();
      await worker.done;
    }
  });

  it('gives a handed-off job back to the queue when its worker goes away before reporting', async () => {
    const worker = await idleWorker(q('handoff-lost'), 1);
    const job = await enqueueHandedOff(worker, q('handoff-lost'));
    await received(worker, job.id);
    worker.end();
    await worker.done;
    const released = await eventually(async () => {
      const current = (await clients().broker.get({ id: job.id })).job!;
      return current.status === JobStatus.PENDING ? current : undefined;
    });
    expect(released.attempt).toBe(1);
    expect(released.errors).toHaveLength(1);
  });
});
