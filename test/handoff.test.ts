/**
 * The hand-off (server/src/core/handoff.ts): a job enqueued while a worker waits idle for its queue
 * is inserted already assigned to that worker, and nothing about credits, limits, pauses or
 * fencing changes for it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { JobStatus } from '../server/src/gen/baton/v1/job_pb.ts';
import type { RunningBroker } from '../server/src/broker.ts';
import { createTestDatabase } from './support/database.ts';
import { grpcClients, startTestBroker } from './support/broker.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import { eventually } from './support/processes.ts';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
let clients: ReturnType<typeof grpcClients>;

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startTestBroker(db.url);
  clients = grpcClients(broker.url);
});

afterAll(async () => {
  await broker?.stop();
  await db?.drop();
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

/** A worker connected to an existing queue (the dispatcher knows a queue's settings once it exists). */
async function idleWorker(queue: string, capacity: number): Promise<LeaseDriver> {
  if (!queue.includes('limited')) await clients.admin.setQueueConcurrency({ queue, concurrency: 0 });
  const worker = new LeaseDriver(clients.broker);
  worker.hello([queue], capacity, capacity);
  await worker.until((m) => m.some((x) => x.welcome));
  // The claim its credit started finds the queue empty and ends; the worker is idle from then on.
  await settle();
  return worker;
}

it('hands a job enqueued for an idle worker straight to it, running, and records its result', async () => {
  const worker = await idleWorker('handoff-idle', 2);
  const { job } = await clients.broker.enqueue({ queue: 'handoff-idle', payloadJson: new TextEncoder().encode('{"n":1}') });
  expect(job?.status).toBe(JobStatus.RUNNING);
  expect(job?.attempt).toBe(1);
  const [assigned] = await worker.jobsReceived(1);
  expect(assigned.jobId).toBe(job!.id);
  expect(assigned.attempt).toBe(1);
  expect(new TextDecoder().decode(assigned.payloadJson)).toBe('{"n": 1}');
  worker.send({ credits: 1, results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken, resultJson: new TextEncoder().encode('2') }] });
  const ack = await worker.until((m) => m.flatMap((x) => x.acks).find((a) => a.accepted));
  expect(ack.jobId).toBe(job!.id);
  expect((await clients.broker.get({ id: job!.id })).job?.status).toBe(JobStatus.COMPLETED);
  worker.end();
  await worker.done;
});

it('hands off no more jobs than the worker has credit for; the rest wait as usual', async () => {
  const worker = await idleWorker('handoff-credit', 1);
  const first = (await clients.broker.enqueue({ queue: 'handoff-credit' })).job!;
  const second = (await clients.broker.enqueue({ queue: 'handoff-credit' })).job!;
  expect(first.status).toBe(JobStatus.RUNNING);
  expect(second.status).toBe(JobStatus.PENDING);
  const [assigned] = await worker.jobsReceived(1);
  await settle();
  expect(worker.jobs).toHaveLength(1);
  worker.send({ credits: 1, results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken }] });
  const jobs = await worker.jobsReceived(2);
  expect(jobs[1].jobId).toBe(second.id);
  worker.end();
  await worker.done;
});

it('does not hand off jobs of a limited or paused queue, or jobs due later', async () => {
  await clients.admin.setQueueConcurrency({ queue: 'handoff-limited', concurrency: 5 });
  const limitedWorker = await idleWorker('handoff-limited', 2);
  const limited = (await clients.broker.enqueue({ queue: 'handoff-limited' })).job!;
  expect(limited.status).toBe(JobStatus.PENDING);
  // Claimed the usual way, under the queue's lock.
  expect((await limitedWorker.jobsReceived(1))[0].jobId).toBe(limited.id);

  const pausedWorker = await idleWorker('handoff-paused', 2);
  await clients.admin.pauseQueue({ queue: 'handoff-paused' });
  await settle();
  const paused = (await clients.broker.enqueue({ queue: 'handoff-paused' })).job!;
  expect(paused.status).toBe(JobStatus.PENDING);
  await settle();
  expect(pausedWorker.jobs).toHaveLength(0);

  const laterWorker = await idleWorker('handoff-later', 2);
  const later = (await clients.broker.enqueue({ queue: 'handoff-later', delay: { seconds: 60n, nanos: 0 } })).job!;
  expect(later.status).toBe(JobStatus.SCHEDULED);
  await settle();
  expect(laterWorker.jobs).toHaveLength(0);

  for (const worker of [limitedWorker, pausedWorker, laterWorker]) {
    worker.end();
    await worker.done;
  }
});

it('gives a handed-off job back to the queue when its worker goes away before reporting', async () => {
  const worker = await idleWorker('handoff-lost', 1);
  const job = (await clients.broker.enqueue({ queue: 'handoff-lost' })).job!;
  expect(job.status).toBe(JobStatus.RUNNING);
  await worker.jobsReceived(1);
  worker.end();
  await worker.done;
  const released = await eventually(async () => {
    const current = (await clients.broker.get({ id: job.id })).job!;
    return current.status === JobStatus.PENDING ? current : undefined;
  });
  expect(released.attempt).toBe(1);
  expect(released.errors).toHaveLength(1);
});
