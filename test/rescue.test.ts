/**
 * What happens to a job after something went wrong around it, on both ports: a job whose holder
 * vanished keeps its place in the queue; a cancel reaches the holder whatever the order of the
 * claim and the cancel; a retry after a broker-side timeout is announced to the leader.
 */
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { grpcClients, useTestBroker } from './support/broker.ts';
import { query } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';

const baton = useTestBroker({ grpcPort: 0 });
const ports = {} as Record<'main' | 'grpc', ReturnType<typeof grpcClients>>;

beforeAll(() => {
  ports.main = baton.clients;
  ports.grpc = grpcClients(`http://127.0.0.1:${baton.broker.grpcPort}`);
});

const text = (value: string) => new TextEncoder().encode(value);

async function closed(driver: LeaseDriver): Promise<void> {
  driver.end();
  await driver.done;
  expect(driver.error).toBeNull();
}

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const q = (name: string) => `${name}-${port}`;

  it('gives a rescued job back its place: the next worker takes it before the jobs enqueued after it', async () => {
    const queue = q('rescue-place');
    const { broker } = ports[port];
    const { job: first } = await broker.enqueue({ queue, payloadJson: text('{"n":0}') });
    const holder = new LeaseDriver(broker);
    holder.hello([queue], 1, 1, 'holder');
    const [held] = await holder.jobsReceived(1);
    expect(held.jobId).toBe(first!.id);
    // A backlog builds up while the first job runs.
    await broker.enqueueBatch({ jobs: Array.from({ length: 20 }, (_, n) => ({ queue, payloadJson: text(`{"n":${n + 1}}`) })) });
    await closed(holder);
    const [rescued] = await query(baton.db.url, `select status, attempt from baton_jobs where id = $1`, [first!.id]);
    expect(rescued).toEqual({ status: 'pending', attempt: 1 });

    const next = new LeaseDriver(broker);
    next.hello([queue], 1, 1, 'next');
    const [taken] = await next.jobsReceived(1);
    expect(taken.jobId).toBe(first!.id);
    expect(taken.attempt).toBe(2);
    await closed(next);
  });

  it('passes on a cancel whose announcement the holder missed at its next heartbeat', async () => {
    const queue = q('cancel-missed');
    const { broker } = ports[port];
    const { job } = await broker.enqueue({ queue });
    const holder = new LeaseDriver(broker);
    holder.hello([queue], 1, 1);
    const [held] = await holder.jobsReceived(1);
    // What a cancel that raced the claim leaves behind: the request recorded, no notification seen.
    await query(baton.db.url, `update baton_live_jobs set cancel_requested = true where id = $1`, [job!.id]);
    holder.send({ heartbeat: { leaseTokens: [held.leaseToken] } });
    const cancels = await holder.until((m) => {
      const told = m.flatMap((x) => x.cancels).filter((c) => c.jobId === job!.id);
      return told.length > 0 && told;
    });
    expect(cancels).toEqual([expect.objectContaining({ jobId: job!.id, leaseToken: held.leaseToken, reason: 'cancelled' })]);
    // Told once: a second heartbeat does not repeat it.
    holder.send({ heartbeat: { leaseTokens: [held.leaseToken] } });
    holder.send({ results: [{ jobId: held.jobId, leaseToken: held.leaseToken, failure: { message: 'aborted' } }] });
    await holder.until((m) => m.some((x) => x.acks.length > 0));
    expect(holder.messages.flatMap((x) => x.cancels)).toHaveLength(1);
    expect((await broker.get({ id: job!.id })).job?.status).toBe(JobStatus.CANCELLED);
    await closed(holder);
  });
});

it('announces the retry of an attempt the broker timed out, so the leader wakes for it', async () => {
  const { broker } = baton.clients;
  const queue = 'timeout-announced';
  const { job } = await broker.enqueue({ queue, timeout: { seconds: 3600n }, retryPolicy: { initialBackoff: { seconds: 30n } } });
  const holder = new LeaseDriver(broker);
  holder.hello([queue], 1, 1);
  await holder.jobsReceived(1);
  // Past due, but within the grace (the lease TTL, 3 s) the broker's own leader waits for: only the
  // call below times it out, not a reaping round of the leader that happens to fall in between.
  await query(baton.db.url, `update baton_live_jobs set deadline_at = now() - interval '10 milliseconds' where id = $1`, [job!.id]);
  const listener = new pg.Client({ connectionString: baton.db.url });
  await listener.connect();
  try {
    await listener.query('listen baton_schedule');
    const announced = new Promise<number>((resolve) => listener.on('notification', (n) => resolve(Number(n.payload))));
    const timedOut = await baton.broker.store.jobTimeOut({ graceMs: 0 });
    expect(timedOut).toBe(1);
    const [stored] = await query(baton.db.url, `select status, (extract(epoch from run_at) * 1000)::bigint::text as due from baton_jobs where id = $1`, [
      job!.id,
    ]);
    expect(stored.status).toBe('scheduled');
    expect(await announced).toBe(Number(stored.due));
  } finally {
    await listener.end();
  }
  await closed(holder);
});
