/**
 * Unique jobs (docs/scheduling.md) through two brokers on one PostgreSQL: producers racing on one
 * key through both get one job; the key is free again once its job left the covered statuses or
 * its window ended. On the main ports, then on the native gRPC ports.
 */
import { describe, expect, it } from 'vitest';
import { Code } from '@connectrpc/connect';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import type { RunningBroker } from '../server/src/broker.ts';
import { clientsOn, grpcClients, refusal, useTwoBrokers } from './support/broker.ts';
import { query } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';

const pair = useTwoBrokers();

const ALL = [JobStatus.PENDING, JobStatus.SCHEDULED, JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED];

describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const on = (broker: RunningBroker) => clientsOn(broker, port);
  const q = (name: string) => `${name}-${port}`;

  it('8 producers on 2 brokers racing on one key get one job; the key is free once the job finished', async () => {
    const queue = q('race');
    const producers = Array.from({ length: 8 }, (_, i) => on(i % 2 === 0 ? pair.a : pair.b));
    let k4 = '';
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(
        producers.map((p, i) => p.broker.enqueue({ queue, payload: { kind: { case: 'numberValue', value: i } }, unique: { key: `k${round}` } })),
      );
      const ids = new Set(answers.map((answer) => answer.job!.id));
      expect(ids.size).toBe(1);
      expect(answers.filter((answer) => !answer.duplicate)).toHaveLength(1);
      k4 = answers[0].job!.id;
    }
    const [{ n }] = await query(pair.db.url, `select count(*)::int as n from baton_jobs where queue = $1`, [queue]);
    expect(n).toBe(5);

    // Batches too: within one batch and across concurrent batches, one job per key.
    const batches = await Promise.all(
      producers.map((p) =>
        p.broker.enqueueBatch({
          jobs: [
            { queue, unique: { key: 'batch' } },
            { queue, unique: { key: 'batch' } },
          ],
          idsOnly: port === 'grpc',
        }),
      ),
    );
    const batchIds = new Set(batches.flatMap((batch) => batch.jobs.map((entry) => entry.job!.id)));
    expect(batchIds.size).toBe(1);
    expect(batches.flatMap((batch) => batch.jobs).filter((entry) => !entry.duplicate)).toHaveLength(1);

    // The default states are PENDING, SCHEDULED and RUNNING: a running holder keeps the key, a finished one frees it.
    const worker = new LeaseDriver(on(pair.b).broker);
    worker.hello([queue], 10, 10);
    const jobs = await worker.jobsReceived(6);
    const held = jobs.find((job) => job.jobId === k4)!;
    expect((await on(pair.a).broker.enqueue({ queue, unique: { key: 'k4' } })).duplicate).toBe(true);
    worker.send({ results: jobs.map((job) => ({ jobId: job.jobId, leaseToken: job.leaseToken, resultJson: new TextEncoder().encode('1') })) });
    await worker.until((m) => m.flatMap((x) => x.acks).length >= 6);
    expect(held).toBeDefined();
    const again = await Promise.all(producers.map((p) => p.broker.enqueue({ queue, unique: { key: 'k4' } })));
    expect(new Set(again.map((answer) => answer.job!.id)).size).toBe(1);
    expect(again.filter((answer) => !answer.duplicate)).toHaveLength(1);
    expect(again[0].job!.id).not.toBe(held.jobId);
    worker.end();
    await worker.done;
  });

  it('a window with every status: the key is held after the job finished, until the window ends', async () => {
    const queue = q('window');
    const unique = { key: 'report', window: durationFromMs(3_600_000), states: ALL };
    const first = await on(pair.a).broker.enqueue({ queue, unique });
    expect(first.duplicate).toBe(false);
    await on(pair.b).broker.cancel({ id: first.job!.id });
    const second = await on(pair.b).broker.enqueue({ queue, unique });
    expect(second).toMatchObject({ duplicate: true, job: { id: first.job!.id, status: JobStatus.CANCELLED } });
    // The window's end, moved in the database rather than waited for.
    await query(pair.db.url, `update baton_unique_keys set expires_at = now() - interval '1 second' where queue = $1`, [queue]);
    const third = await on(pair.b).broker.enqueue({ queue, unique });
    expect(third.duplicate).toBe(false);
    expect(third.job!.id).not.toBe(first.job!.id);
    // Within the window, a new key is not held by the old job of another key.
    expect((await on(pair.a).broker.enqueue({ queue, unique: { ...unique, key: 'other' } })).duplicate).toBe(false);
  });

  it('keys of different queues do not collide; the states given are the ones that hold', async () => {
    const x = await on(pair.a).broker.enqueue({ queue: q('qx'), unique: { key: 'same' } });
    const y = await on(pair.b).broker.enqueue({ queue: q('qy'), unique: { key: 'same' } });
    expect([x.duplicate, y.duplicate]).toEqual([false, false]);
    // Held only while SCHEDULED: a pending holder does not hold it.
    const pending = await on(pair.a).broker.enqueue({ queue: q('qs'), unique: { key: 's', states: [JobStatus.SCHEDULED] } });
    const next = await on(pair.b).broker.enqueue({ queue: q('qs'), unique: { key: 's', states: [JobStatus.SCHEDULED] } });
    expect(next.duplicate).toBe(false);
    expect(next.job!.id).not.toBe(pending.job!.id);
    const later = { queue: q('qs'), delay: durationFromMs(3_600_000), unique: { key: 't', states: [JobStatus.SCHEDULED] } };
    const scheduled = await on(pair.a).broker.enqueue(later);
    expect(await on(pair.b).broker.enqueue(later)).toMatchObject({ duplicate: true, job: { id: scheduled.job!.id } });
  });

  it('refuses a malformed unique option, and one given with an idempotency key', async () => {
    const { broker } = on(pair.a);
    const queue = q('bad');
    expect((await refusal(broker.enqueue({ queue, unique: { key: '' } }))).code).toBe(Code.InvalidArgument);
    expect((await refusal(broker.enqueue({ queue, unique: { key: 'x'.repeat(201) } }))).code).toBe(Code.InvalidArgument);
    expect((await refusal(broker.enqueue({ queue, unique: { key: 'k', states: [42 as JobStatus] } }))).code).toBe(Code.InvalidArgument);
    expect((await refusal(broker.enqueue({ queue, unique: { key: 'k', window: { seconds: -1n, nanos: 0 } } }))).code).toBe(Code.InvalidArgument);
    const both = await refusal(broker.enqueue({ queue, idempotencyKey: 'i', unique: { key: 'k' } }));
    expect(both.code).toBe(Code.InvalidArgument);
    expect(both.rawMessage).toMatch(/exclusive/);
  });
});

it("the leader's prune drops keys no longer held and keeps the rest", async () => {
  const { broker } = grpcClients(pair.a.url);
  const held = await broker.enqueue({ queue: 'prune', unique: { key: 'held' } });
  const expired = await broker.enqueue({ queue: 'prune', unique: { key: 'expired', window: durationFromMs(60_000) } });
  const cancelled = await broker.enqueue({ queue: 'prune', unique: { key: 'cancelled' } });
  await broker.cancel({ id: cancelled.job!.id });
  await query(pair.db.url, `update baton_unique_keys set expires_at = now() - interval '1 second' where unique_key = 'expired'`);
  const pruned = await query(pair.db.url, `select * from baton_unique_keys where queue = 'prune' order by unique_key`);
  expect(pruned).toHaveLength(3);
  await pair.a.store.jobPrune({ retentionMs: 86_400_000 });
  const left = await query(pair.db.url, `select unique_key, job_id::text as job_id from baton_unique_keys where queue = 'prune'`);
  expect(left).toEqual([{ unique_key: 'held', job_id: held.job!.id }]);
  expect(expired.duplicate).toBe(false);
});
