import { describe, expect, it } from 'vitest';
import { Code, ConnectError } from '@connectrpc/connect';
import { toJson } from '@bufbuild/protobuf';
import { ValueSchema, durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { query } from './support/database.ts';
import { code, usePortBroker } from './support/broker.ts';
import { LeaseDriver } from './support/lease-driver.ts';

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

// Both ports are one contract: each runs every test, with a broker and database of its own.
describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  const baton = usePortBroker(port);

  describe('producer RPCs', () => {
    it('Enqueue stores a job durably and returns it', async () => {
      const { job, duplicate } = await baton.clients.broker.enqueue({ queue: 'api-enqueue', payloadJson: json({ n: 303 }), priority: 5 });
      expect(duplicate).toBe(false);
      expect(job?.status).toBe(JobStatus.PENDING);
      expect(job?.payload?.kind).toMatchObject({ case: 'structValue' });
      const { job: read } = await baton.clients.broker.get({ id: job!.id });
      expect(read?.priority).toBe(5);
      expect(read?.maxAttempts).toBe(3);
    });

    it('a delayed job is SCHEDULED; run_at in the past is PENDING', async () => {
      const later = await baton.clients.broker.enqueue({ queue: 'api-sched', delay: durationFromMs(60_000) });
      expect(later.job?.status).toBe(JobStatus.SCHEDULED);
      const past = await baton.clients.broker.enqueue({ queue: 'api-sched', runAt: timestampFromDate(new Date(Date.now() - 1000)) });
      expect(past.job?.status).toBe(JobStatus.PENDING);
    });

    it('an idempotency key returns the first job again', async () => {
      const first = await baton.clients.broker.enqueue({ queue: 'api-idem', idempotencyKey: 'order-42' });
      const second = await baton.clients.broker.enqueue({ queue: 'api-idem', idempotencyKey: 'order-42', payloadJson: json(1) });
      expect(second.duplicate).toBe(true);
      expect(second.job?.id).toBe(first.job?.id);
    });

    it('EnqueueBatch stores all jobs in order, or none when one is bad', async () => {
      const { jobs } = await baton.clients.broker.enqueueBatch({
        jobs: Array.from({ length: 5 }, (_, i) => ({ queue: 'api-batch', payloadJson: json({ i }) })),
      });
      expect(jobs.map((j) => toJson(ValueSchema, j.job!.payload!))).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
      const ids = jobs.map((j) => BigInt(j.job!.id));
      expect([...ids].sort((a, b) => (a < b ? -1 : 1))).toEqual(ids);

      const before = (await baton.clients.broker.list({ queue: 'api-batch', pageSize: 100 })).jobs.length;
      const failure = await code(
        baton.clients.broker.enqueueBatch({
          jobs: [{ queue: 'api-batch' }, { queue: 'api-batch', payloadJson: new TextEncoder().encode('{not json') }],
        }),
      );
      expect(failure).toBe(Code.InvalidArgument);
      expect((await baton.clients.broker.list({ queue: 'api-batch', pageSize: 100 })).jobs.length).toBe(before);
    });

    it('List pages newest first with keyset tokens and filters by status', async () => {
      const { jobs } = await baton.clients.broker.enqueueBatch({ jobs: Array.from({ length: 7 }, () => ({ queue: 'api-list' })) });
      const created = jobs.map((j) => j.job!.id).reverse();
      const seen: string[] = [];
      let pageToken = '';
      do {
        const page = await baton.clients.broker.list({ queue: 'api-list', pageSize: 3, pageToken });
        seen.push(...page.jobs.map((j) => j.id));
        pageToken = page.nextPageToken;
      } while (pageToken);
      expect(seen).toEqual(created);
      await baton.clients.broker.cancel({ id: created[0] });
      const cancelled = await baton.clients.broker.list({ queue: 'api-list', statuses: [JobStatus.CANCELLED] });
      expect(cancelled.jobs.map((j) => j.id)).toEqual([created[0]]);
    });

    it('Cancel and Retry follow the state machine', async () => {
      const { job } = await baton.clients.broker.enqueue({ queue: 'api-cancel' });
      const cancelled = await baton.clients.broker.cancel({ id: job!.id });
      expect(cancelled.job?.status).toBe(JobStatus.CANCELLED);
      expect(await code(baton.clients.broker.cancel({ id: job!.id }))).toBe(Code.FailedPrecondition);
      const retried = await baton.clients.broker.retry({ id: job!.id });
      expect(retried.job?.status).toBe(JobStatus.PENDING);
      expect(await code(baton.clients.broker.retry({ id: job!.id }))).toBe(Code.FailedPrecondition);
      expect(await code(baton.clients.broker.get({ id: '999999999' }))).toBe(Code.NotFound);
    });

    // gRPC-Web and Connect are the main port's alone.
    it.runIf(port === 'main')('answers gRPC-Web and the Connect protocol on the same port', async () => {
      const { createClient } = await import('@connectrpc/connect');
      const { createGrpcWebTransport, createConnectTransport } = await import('@connectrpc/connect-node');
      const { Broker } = await import('@baton/worker-sdk/gen/broker');
      for (const transport of [
        createGrpcWebTransport({ baseUrl: baton.broker.url, httpVersion: '1.1' }),
        createConnectTransport({ baseUrl: baton.broker.url, httpVersion: '1.1' }),
        createConnectTransport({ baseUrl: baton.broker.url, httpVersion: '2' }),
      ]) {
        const client = createClient(Broker, transport);
        const { job } = await client.enqueue({ queue: 'api-web', payloadJson: json({ via: 'web' }) });
        expect((await client.get({ id: job!.id })).job?.status).toBe(JobStatus.PENDING);
      }
    });

    it('GetServerInfo names the protocol version and capabilities', async () => {
      const info = await baton.clients.broker.getServerInfo({});
      expect(info.protocolVersion).toBe(1);
      expect(info.capabilities).toEqual([
        'batch',
        'cancel',
        'drain',
        'progress',
        'heartbeat-fencing',
        'retry-after',
        'snooze',
        'unique-jobs',
        'schedules',
        'bulk-actions',
        'rate-limits',
        'fair-keys',
      ]);
      // One spelling for every name, as docs/protocol.md lists them.
      for (const name of info.capabilities) expect(name).toMatch(/^[a-z]+(-[a-z]+)*$/);
    });
  });

  describe('the Lease stream', () => {
    it('hello, job, heartbeat, result: the job completes with its result', async () => {
      const { job } = await baton.clients.broker.enqueue({ queue: 'lease-basic', payloadJson: json({ n: 10 }) });
      const worker = new LeaseDriver(baton.clients.broker);
      worker.hello(['lease-basic'], 4, 4);
      const welcome = await worker.until((m) => m.find((x) => x.welcome)?.welcome);
      expect(Number(welcome.leaseTtl?.seconds)).toBe(3);
      const [assigned] = await worker.jobsReceived(1);
      expect(assigned.jobId).toBe(job!.id);
      expect(JSON.parse(text(assigned.payloadJson))).toEqual({ n: 10 });
      expect(assigned.attempt).toBe(1);
      expect((await baton.clients.broker.get({ id: job!.id })).job?.status).toBe(JobStatus.RUNNING);

      worker.send({ heartbeat: { leaseTokens: [assigned.leaseToken, '123456789'] } });
      const lost = await worker.until((m) => m.find((x) => x.lost.length > 0)?.lost);
      expect(lost).toEqual(['123456789']);

      worker.send({ results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken, resultJson: json({ value: '55' }) }] });
      const ack = await worker.until((m) => m.flatMap((x) => x.acks)[0]);
      expect(ack.accepted).toBe(true);
      const done = (await baton.clients.broker.get({ id: job!.id })).job!;
      expect(done.status).toBe(JobStatus.COMPLETED);
      expect(toJson(ValueSchema, done.result!)).toEqual({ value: '55' });
      expect(done.finishedAt).toBeDefined();

      // A second result for the same lease is refused: completion is recorded once.
      worker.send({ results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken, resultJson: json(1) }] });
      const second = await worker.until((m) => m.flatMap((x) => x.acks)[1]);
      expect(second.accepted).toBe(false);
      worker.end();
      await worker.done;
    });

    it('never sends more jobs than the credits granted', async () => {
      await baton.clients.broker.enqueueBatch({ jobs: Array.from({ length: 10 }, () => ({ queue: 'lease-credits' })) });
      const worker = new LeaseDriver(baton.clients.broker);
      worker.hello(['lease-credits'], 10, 3);
      await worker.jobsReceived(3);
      // New work while the worker has no credit left, then two more credits.
      await baton.clients.broker.enqueue({ queue: 'lease-credits' });
      worker.send({ credits: 2 });
      await worker.jobsReceived(5);
      // A second worker with credit to spare drains the queue: once it holds the other 6 of the 11,
      // every job is out and the first worker got all it ever will. Had the broker overshot the
      // credits, the first would hold more than 5 and the second could not reach 6.
      const drainer = new LeaseDriver(baton.clients.broker);
      drainer.hello(['lease-credits'], 20, 20);
      await drainer.jobsReceived(6);
      expect(worker.jobs).toHaveLength(5);
      expect(drainer.jobs).toHaveLength(6);
      for (const driver of [worker, drainer]) {
        driver.end();
        await driver.done;
      }
    });

    it('retries failures with backoff, then dead-letters with every error kept', async () => {
      const { job } = await baton.clients.broker.enqueue({
        queue: 'lease-retry',
        maxAttempts: 3,
        retryPolicy: { initialBackoff: durationFromMs(200), multiplier: 2, jitter: 0 },
      });
      const worker = new LeaseDriver(baton.clients.broker);
      worker.hello(['lease-retry'], 1, 1);
      const startedAt: number[] = [];
      for (let attempt = 1; attempt <= 3; attempt++) {
        const assigned = (await worker.jobsReceived(attempt, 15_000))[attempt - 1];
        startedAt.push(Date.now());
        expect(assigned.attempt).toBe(attempt);
        worker.send({ credits: 1, results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken, failure: { message: `boom ${attempt}` } }] });
      }
      await worker.until((m) => m.flatMap((x) => x.acks).length >= 3);
      const dead = (await baton.clients.broker.get({ id: job!.id })).job!;
      expect(dead.status).toBe(JobStatus.FAILED);
      expect(dead.errors.map((e) => e.message)).toEqual(['boom 1', 'boom 2', 'boom 3']);
      expect(dead.errors.map((e) => e.attempt)).toEqual([1, 2, 3]);
      // Backoff: 200 ms after the first failure, 400 ms after the second.
      expect(startedAt[1] - startedAt[0]).toBeGreaterThanOrEqual(180);
      expect(startedAt[2] - startedAt[1]).toBeGreaterThanOrEqual(380);
      const revived = await baton.clients.broker.retry({ id: job!.id });
      expect(revived.job?.status).toBe(JobStatus.PENDING);
      worker.end();
      await worker.done;
    });

    it('a non-retryable failure fails the job at once', async () => {
      const { job } = await baton.clients.broker.enqueue({ queue: 'lease-fatal', maxAttempts: 5 });
      const worker = new LeaseDriver(baton.clients.broker);
      worker.hello(['lease-fatal'], 1, 1);
      const [assigned] = await worker.jobsReceived(1);
      worker.send({ results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken, failure: { message: 'bad input', nonRetryable: true } }] });
      await worker.until((m) => m.flatMap((x) => x.acks).length >= 1);
      expect((await baton.clients.broker.get({ id: job!.id })).job?.status).toBe(JobStatus.FAILED);
      worker.end();
      await worker.done;
    });

    it('a scheduled job does not start before its time', async () => {
      const runAt = Date.now() + 1500;
      const { job } = await baton.clients.broker.enqueue({ queue: 'lease-later', runAt: timestampFromDate(new Date(runAt)) });
      const worker = new LeaseDriver(baton.clients.broker);
      worker.hello(['lease-later'], 1, 1);
      const [assigned] = await worker.jobsReceived(1, 10_000);
      expect(Date.now()).toBeGreaterThanOrEqual(runAt - 5);
      expect(assigned.jobId).toBe(job!.id);
      worker.end();
      await worker.done;
    });

    it('higher priority runs first', async () => {
      await baton.clients.broker.enqueueBatch({
        jobs: [
          { queue: 'lease-prio', priority: 0, payloadJson: json('low') },
          { queue: 'lease-prio', priority: 10, payloadJson: json('high') },
          { queue: 'lease-prio', priority: 5, payloadJson: json('mid') },
        ],
      });
      const worker = new LeaseDriver(baton.clients.broker);
      worker.hello(['lease-prio'], 3, 3);
      const jobs = await worker.jobsReceived(3);
      expect(jobs.map((j) => JSON.parse(text(j.payloadJson)))).toEqual(['high', 'mid', 'low']);
      worker.end();
      await worker.done;
    });

    it('cancelling a running job tells its holder; it ends CANCELLED', async () => {
      const { job } = await baton.clients.broker.enqueue({ queue: 'lease-cancel' });
      const worker = new LeaseDriver(baton.clients.broker);
      worker.hello(['lease-cancel'], 1, 1);
      const [assigned] = await worker.jobsReceived(1);
      const requested = await baton.clients.broker.cancel({ id: job!.id });
      expect(requested.job?.status).toBe(JobStatus.RUNNING);
      expect(requested.job?.cancelRequested).toBe(true);
      const notice = await worker.until((m) => m.flatMap((x) => x.cancels)[0]);
      expect(notice).toMatchObject({ jobId: job!.id, leaseToken: assigned.leaseToken, reason: 'cancelled' });
      worker.send({ results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken, failure: { message: 'cancelled' } }] });
      await worker.until((m) => m.flatMap((x) => x.acks).length >= 1);
      expect((await baton.clients.broker.get({ id: job!.id })).job?.status).toBe(JobStatus.CANCELLED);
      worker.end();
      await worker.done;
    });

    it('a closed stream releases its jobs at once, and the attempt counts', async () => {
      const { job } = await baton.clients.broker.enqueue({ queue: 'lease-release' });
      const first = new LeaseDriver(baton.clients.broker);
      first.hello(['lease-release'], 1, 1);
      const [assigned] = await first.jobsReceived(1);
      first.end();
      await first.done;
      const second = new LeaseDriver(baton.clients.broker);
      second.hello(['lease-release'], 1, 1);
      const [again] = await second.jobsReceived(1);
      expect(again.jobId).toBe(job!.id);
      expect(again.attempt).toBe(2);
      expect(again.leaseToken).not.toBe(assigned.leaseToken);
      second.end();
      await second.done;
    });

    it('Watch streams a job until it is terminal', async () => {
      const { job } = await baton.clients.broker.enqueue({ queue: 'lease-watch' });
      const statuses: JobStatus[] = [];
      const first = Promise.withResolvers<void>();
      const watching = (async () => {
        for await (const change of baton.clients.broker.watch({ id: job!.id })) {
          statuses.push(change.job!.status);
          first.resolve();
        }
      })();
      // The worker starts only once the watch is open, or the job could finish before it is watched.
      await first.promise;
      const worker = new LeaseDriver(baton.clients.broker);
      worker.hello(['lease-watch'], 1, 1);
      const [assigned] = await worker.jobsReceived(1);
      worker.send({ results: [{ jobId: assigned.jobId, leaseToken: assigned.leaseToken, resultJson: json('ok') }] });
      await watching;
      expect(statuses[0]).toBe(JobStatus.PENDING);
      expect(statuses.at(-1)).toBe(JobStatus.COMPLETED);
      worker.end();
      await worker.done;
    });

    it('a stream must open with hello', async () => {
      const worker = new LeaseDriver(baton.clients.broker);
      worker.send({ credits: 5 });
      await worker.done;
      expect(ConnectError.from(worker.error).code).toBe(Code.FailedPrecondition);
    });
  });

  describe('Admin', () => {
    it('counts by status, pauses, resumes and limits concurrency', async () => {
      await baton.clients.broker.enqueueBatch({ jobs: Array.from({ length: 4 }, () => ({ queue: 'admin-q' })) });
      await baton.clients.admin.pauseQueue({ queue: 'admin-q' });
      const worker = new LeaseDriver(baton.clients.broker);
      worker.hello(['admin-q'], 4, 4);
      await worker.until((m) => m.some((x) => x.welcome));
      await baton.clients.admin.setQueueConcurrency({ queue: 'admin-q', concurrency: 2 });
      await baton.clients.admin.resumeQueue({ queue: 'admin-q' });
      const [{ resumedAt }] = await query<{ resumedAt: Date }>(baton.db.url, `select updated_at as "resumedAt" from baton_queues where name = 'admin-q'`);
      // One claim answers the resume, in one message: a limit overshot shows here at once.
      await worker.jobsReceived(2);
      expect(worker.jobs).toHaveLength(2);
      // Nothing was claimed while paused: both jobs started after the resume was stored.
      const started = await query<{ started_at: Date }>(baton.db.url, `select started_at from baton_jobs where queue = 'admin-q' and status = 'running'`);
      expect(started).toHaveLength(2);
      for (const { started_at } of started) expect(started_at.getTime()).toBeGreaterThanOrEqual(resumedAt.getTime());
      // A finished job frees one slot: the claim that follows it takes exactly one more, although the
      // worker has credit for two.
      const [done] = worker.jobs;
      worker.send({ results: [{ jobId: done.jobId, leaseToken: done.leaseToken, resultJson: json(1) }] });
      await worker.jobsReceived(3);
      expect(worker.jobs).toHaveLength(3);
      const { queues } = await baton.clients.admin.getQueueStats({ queues: ['admin-q'] });
      expect(queues[0]).toMatchObject({ queue: 'admin-q', total: 4n, pending: 1n, running: 2n, completed: 1n });
      expect(queues[0].settings?.concurrency).toBe(2);
      expect(await code(baton.clients.admin.pauseQueue({ queue: 'no-such-queue' }))).toBe(Code.NotFound);
      worker.end();
      await worker.done;
    });
  });
});
