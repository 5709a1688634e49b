/**
 * Rate limits (docs/scheduling.md) across two brokers on one PostgreSQL: a queue limited to N starts
 * per second never starts more than N in any second window, as the limiter defines the windows
 * (aligned to the epoch) and by the database's own start times; a per-key limit holds for each key;
 * jobs held back stay PENDING and spend no attempt. Workers' streams on the main ports, then on the
 * native gRPC ports.
 */
import { describe, expect, it } from 'vitest';
import { Code } from '@connectrpc/connect';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import type { RunningBroker } from '../server/src/broker.ts';
import { clientsOn, grpcClients, refusal, useTwoBrokers } from './support/broker.ts';
import { query } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';

const pair = useTwoBrokers();

/** Starts per window of `intervalMs` (epoch-aligned, as the limiter counts them), per key when asked. */
async function startsPerWindow(queue: string, intervalMs: number, byKey = false): Promise<{ w: string; key: string | null; n: number }[]> {
  return query(
    pair.db.url,
    `select floor(extract(epoch from started_at) * 1000 / $2)::text as w, ${byKey ? 'rate_limit_key' : 'null'} as key, count(*)::int as n
     from baton_jobs where queue = $1 and started_at is not null group by 1, 2 order by 1`,
    [queue, intervalMs],
  );
}

/**
 * Serves `queue` from a worker on each broker until `total` jobs have started, completing each job
 * as it arrives and heartbeating, so that the sessions outlive the lease TTL of the slow drain.
 */
async function serve(clients: ReturnType<typeof grpcClients>[], queue: string, total: number): Promise<LeaseDriver[]> {
  const workers = clients.map((c) => new LeaseDriver(c.broker));
  for (const worker of workers) worker.hello([queue], 100, 100);
  const done = workers.map(() => 0);
  const started = () => workers.reduce((sum, worker) => sum + worker.jobs.length, 0);
  const deadline = Date.now() + 30_000;
  while (started() < total && Date.now() < deadline) {
    await Promise.race(workers.map((worker) => worker.until(() => started() >= total, 300).catch(() => 0)));
    workers.forEach((worker, i) => {
      const fresh = worker.jobs.slice(done[i]);
      done[i] = worker.jobs.length;
      const results = fresh.map((job) => ({ jobId: job.jobId, leaseToken: job.leaseToken, resultJson: new TextEncoder().encode('1') }));
      worker.send({ results, heartbeat: { leaseTokens: [] }, credits: fresh.length });
    });
  }
  return workers;
}

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const on = (broker: RunningBroker) => clientsOn(broker, port);
  const q = (name: string) => `${name}-${port}`;

  it('N starts per second on a queue served by 2 brokers: never more than N in a window', async () => {
    const queue = q('rated');
    await on(pair.a).broker.enqueue({ queue });
    await on(pair.a).admin.updateQueue({ queue, rateLimit: { limit: 8, interval: durationFromMs(1000) } });
    await on(pair.b).broker.enqueueBatch({ jobs: Array.from({ length: 39 }, () => ({ queue })) });
    const workers = await serve([on(pair.a), on(pair.b)], queue, 40);
    expect(workers.flatMap((worker) => worker.jobs)).toHaveLength(40);
    const windows = await startsPerWindow(queue, 1000);
    expect(Math.max(...windows.map((w) => w.n))).toBeLessThanOrEqual(8);
    expect(windows.length).toBeGreaterThanOrEqual(5);
    // Waiting spent no attempt: every job started on its first.
    expect(workers.flatMap((worker) => worker.jobs).every((job) => job.attempt === 1)).toBe(true);
    const [{ settings }] = (await on(pair.b).admin.getQueueStats({ queues: [queue] })).queues;
    expect(settings?.rateLimit).toMatchObject({ limit: 8, keyLimit: 0 });
    for (const worker of workers) worker.end();
    await Promise.all(workers.map((worker) => worker.done));
  });

  it('a limit per key holds for each key, and keys do not hold each other back', async () => {
    const queue = q('keyed');
    await on(pair.a).broker.enqueue({ queue, rateLimitKey: 'x' });
    await on(pair.a).admin.updateQueue({ queue, rateLimit: { keyLimit: 3, keyInterval: durationFromMs(500) } });
    // A flood of key x, then a few of y and z and some without a key: y, z and the keyless ones are not stuck behind x.
    await on(pair.b).broker.enqueueBatch({ jobs: Array.from({ length: 17 }, () => ({ queue, rateLimitKey: 'x' })) });
    await on(pair.b).broker.enqueueBatch({ jobs: [...['y', 'y', 'z'].map((key) => ({ queue, rateLimitKey: key })), { queue }, { queue }] });
    const workers = await serve([on(pair.a), on(pair.b)], queue, 23);
    expect(workers.flatMap((worker) => worker.jobs)).toHaveLength(23);
    const windows = await startsPerWindow(queue, 500, true);
    for (const w of windows.filter((w) => w.key !== null)) expect(w.n).toBeLessThanOrEqual(3);
    // y, z and the keyless jobs all started in the first window that started anything.
    const [first] = await query(pair.db.url, `select min(floor(extract(epoch from started_at) * 1000 / 500))::text as w from baton_jobs where queue = $1`, [
      queue,
    ]);
    const early = await query(
      pair.db.url,
      `select count(*)::int as n from baton_jobs where queue = $1 and (rate_limit_key is distinct from 'x') and floor(extract(epoch from started_at) * 1000 / 500)::text = $2`,
      [queue, first.w],
    );
    expect(early[0].n).toBe(5);
    for (const worker of workers) worker.end();
    await Promise.all(workers.map((worker) => worker.done));
  });

  it('refuses bad rate limits and keys', async () => {
    const { admin, broker } = on(pair.a);
    await broker.enqueue({ queue: q('bad-rate') });
    for (const rateLimit of [
      { limit: -1 },
      { keyLimit: 2_000_000 },
      { limit: 1, interval: durationFromMs(0) },
      { limit: 1, keyInterval: durationFromMs(86_400_001) },
    ]) {
      expect((await refusal(admin.updateQueue({ queue: q('bad-rate'), rateLimit }))).code).toBe(Code.InvalidArgument);
    }
    expect((await refusal(broker.enqueue({ queue: q('bad-rate'), rateLimitKey: 'k'.repeat(201) }))).code).toBe(Code.InvalidArgument);
  });
});
