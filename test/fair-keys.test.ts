/**
 * Fair keys (docs/scheduling.md) across two brokers on one PostgreSQL: a flood of one key does not
 * starve another, whose jobs start in the first claim; a limit per key holds across brokers. Workers'
 * streams on the main ports, then on the native gRPC ports.
 */
import { describe, expect, it } from 'vitest';
import { Code } from '@connectrpc/connect';
import type { RunningBroker } from '../server/src/broker.ts';
import { clientsOn, refusal, useTwoBrokers } from './support/broker.ts';
import { query } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import { eventually } from './support/processes.ts';

const pair = useTwoBrokers();

const done = (worker: LeaseDriver, jobs = worker.jobs) =>
  worker.send({
    results: jobs.map((job) => ({ jobId: job.jobId, leaseToken: job.leaseToken, resultJson: new TextEncoder().encode('1') })),
    heartbeat: { leaseTokens: [] },
    credits: jobs.length,
  });

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const on = (broker: RunningBroker) => clientsOn(broker, port);
  const q = (name: string) => `${name}-${port}`;

  it("tenant A enqueues 20,000 jobs, then tenant B 20: B's jobs start in the first claim", async () => {
    const queue = q('fair');
    await on(pair.a).broker.enqueue({ queue, concurrencyKey: 'A' });
    await on(pair.a).admin.updateQueue({ queue, fairKeys: true });
    for (let i = 0; i < 2; i++) {
      await on(pair.b).broker.enqueueBatch({ jobs: Array.from({ length: i === 0 ? 9_999 : 10_000 }, () => ({ queue, concurrencyKey: 'A' })), idsOnly: true });
    }
    await on(pair.b).broker.enqueueBatch({ jobs: Array.from({ length: 20 }, () => ({ queue, concurrencyKey: 'B' })), idsOnly: true });
    const worker = new LeaseDriver(on(pair.a).broker);
    worker.hello([queue], 100, 100);
    await worker.jobsReceived(100);
    const rounds = await query(
      pair.db.url,
      `select concurrency_key as key, count(*)::int as n, min(started_at) = (select min(started_at) from baton_jobs where queue = $1) as first
       from baton_jobs where queue = $1 and started_at is not null group by concurrency_key order by 1`,
      [queue],
    );
    expect(rounds.find((r) => r.key === 'B')).toEqual({ key: 'B', n: 20, first: true });
    const [{ late }] = await query(
      pair.db.url,
      `select count(*)::int as late from baton_jobs where queue = $1 and concurrency_key = 'B' and started_at > (select min(started_at) from baton_jobs where queue = $1)`,
      [queue],
    );
    expect(late).toBe(0);
    worker.end();
    await worker.done;
  });

  it('a limit per key holds across brokers, and a key at its limit does not hold back the others', async () => {
    const queue = q('per-key');
    await on(pair.a).broker.enqueue({ queue, concurrencyKey: 'x' });
    await on(pair.b).admin.updateQueue({ queue, keyConcurrency: 2 });
    await on(pair.a).broker.enqueueBatch({
      jobs: [
        ...Array.from({ length: 9 }, () => ({ queue, concurrencyKey: 'x' })),
        ...Array.from({ length: 10 }, () => ({ queue, concurrencyKey: 'y' })),
        { queue },
      ],
    });
    const workers = [new LeaseDriver(on(pair.a).broker), new LeaseDriver(on(pair.b).broker)];
    for (const worker of workers) worker.hello([queue], 10, 10);
    const runningPerKey = async () =>
      query(
        pair.db.url,
        `select coalesce(concurrency_key, '') as key, count(*)::int as n from baton_live_jobs where queue = $1 and status = 'running' group by 1 order by 1`,
        [queue],
      );
    const finished = workers.map(() => 0);
    for (let round = 0; round < 5; round++) {
      // Each round: x and y at their limit (and the keyless job once), never above it, then all finished.
      await eventually(
        async () => (await runningPerKey()).filter((r) => r.key !== '' && r.n === 2).length === 2,
        10_000,
        `round ${round}: both keys at their limit`,
      );
      for (const row of await runningPerKey()) if (row.key !== '') expect(row.n).toBeLessThanOrEqual(2);
      workers.forEach((worker, i) => {
        done(worker, worker.jobs.slice(finished[i]));
        finished[i] = worker.jobs.length;
      });
      await eventually(() => workers.every((worker, i) => worker.messages.flatMap((m) => m.acks).length >= finished[i]), 10_000, 'acks');
    }
    for (const worker of workers) worker.end();
    await Promise.all(workers.map((worker) => worker.done));
    expect(workers.reduce((n, worker) => n + worker.jobs.length, 0)).toBe(21);
  });

  it('refuses rate limits and fair keys on one queue, and a bad key', async () => {
    const { admin, broker } = on(pair.a);
    await broker.enqueue({ queue: q('both') });
    await admin.updateQueue({ queue: q('both'), fairKeys: true });
    expect((await refusal(admin.updateQueue({ queue: q('both'), rateLimit: { limit: 5 } }))).code).toBe(Code.FailedPrecondition);
    expect((await refusal(admin.updateQueue({ queue: q('both'), keyConcurrency: -1 }))).code).toBe(Code.InvalidArgument);
    expect((await refusal(broker.enqueue({ queue: q('both'), concurrencyKey: 'k'.repeat(201) }))).code).toBe(Code.InvalidArgument);
    expect((await admin.updateQueue({ queue: q('both'), fairKeys: false })).queue).toMatchObject({ fairKeys: false, keyConcurrency: 0 });
  });
});
