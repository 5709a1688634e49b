/**
 * Fuzzing every RPC of baton.v1.Broker and baton.v1.Admin, and the Lease stream (issue 3, "Bad
 * input"): thousands of random and mutated requests through three channels (raw gRPC with mutated
 * protobuf bytes, Connect JSON over HTTP/1.1, structured random messages through a gRPC client),
 * plus misbehaving Lease streams beside one well-behaved worker. The broker must never crash, must
 * answer each request with a status from the expected set (never INTERNAL or UNKNOWN), and must not
 * change any job that existed before the run.
 *
 * Deterministic: request i of a channel is a function of the seed alone (FUZZ_SEED; a random seed is
 * printed otherwise), whatever order the answers come back in. FUZZ_COUNT sets how many requests
 * (default 10,500). FUZZ_STRICT_INTERNAL=1 also fails on the INTERNAL that the gRPC library itself
 * answers to undecodable protobuf (see fuzz-report.ts). FUZZ_REPORT_LIMIT sets how many distinct
 * findings a failure lists (default 8).
 *
 * Protected jobs. Before the run the test creates jobs in every status (PENDING, SCHEDULED, RUNNING,
 * RUNNING with a cancel pending, COMPLETED, FAILED, CANCELLED, and a retried one carrying an error
 * history) in queues named `snap-*`, and snapshots their whole rows. The fuzzer may never change
 * them, so it must never name them in a request that could: it names real job ids only from the set
 * of jobs it owns (created for it, in every status, in `fz-*` queues), and otherwise only ids at or
 * above 10^9, which no job of this run reaches (asserted). A mutation could still turn an owned id
 * into a protected one, so a guard decodes every outgoing request exactly as the broker will (same
 * framing, same decompression, same decoder) and draws a new one when a Cancel, Retry, Enqueue,
 * Admin call or Lease hello would reach a protected job or queue; the guard's count is printed.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import { Health, HealthCheckResponse_ServingStatus } from '../server/src/gen/grpc/health/v1/health_pb.ts';
import type { RunningBroker } from '../server/src/broker.ts';
import { createTestDatabase, query } from './support/database.ts';
import { grpcClients, startTestBroker } from './support/broker.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import { type ChannelDeps, connectJsonRequest, grpcRawRequest, grpcTypedRequest } from './support/fuzz-channels.ts';
import { GoodWorker, leaseChaos } from './support/fuzz-lease.ts';
import { FIRST_UNUSED_ID, type FuzzContext } from './support/fuzz-messages.ts';
import { Rng, mixSeed, runSeed } from './support/fuzz-random.ts';
import { FuzzReport } from './support/fuzz-report.ts';
import { ConnectJson, RawGrpc } from './support/fuzz-wire.ts';

const SEED = runSeed();
const COUNT = Number(process.env.FUZZ_COUNT ?? 10_500);
const IN_FLIGHT = 32;
const LEASE_STREAMS_IN_FLIGHT = 3;
const LIMITS = { maxPayloadBytes: 8192, maxBatchSize: 50, maxPageSize: 100 };
const GOOD_QUEUE = 'good-worker';
const SNAPSHOT_QUEUES = ['snap-pending', 'snap-scheduled', 'snap-finished', 'snap-cancelled', 'snap-running'];

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
let clients: ReturnType<typeof grpcClients>;
const crashes: string[] = [];
const onUncaught = (error: unknown) => crashes.push(`uncaughtException: ${String((error as Error)?.stack ?? error)}`);
const onUnhandled = (reason: unknown) => crashes.push(`unhandledRejection: ${String((reason as Error)?.stack ?? reason)}`);

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUnhandled);
  db = await createTestDatabase();
  // Leases outlive the run, so the snapshot's RUNNING jobs stay RUNNING without any help.
  broker = await startTestBroker(db.url, { ...LIMITS, leaseTtlMs: 180_000, heartbeatIntervalMs: 60_000 });
  clients = grpcClients(broker.url);
});

afterAll(async () => {
  await broker?.stop();
  await db?.drop();
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUnhandled);
});

/** Enqueues `init` and returns the job id. */
async function enqueue(init: Parameters<typeof clients.broker.enqueue>[0]): Promise<string> {
  return (await clients.broker.enqueue(init)).job!.id;
}

/**
 * Completes `complete` new jobs of `queue` and fails `fail` more (max_attempts 1, non-retryable)
 * through a stream of its own.
 */
async function finishJobs(queue: string, complete: number, fail: number): Promise<{ completed: string[]; failed: string[] }> {
  const completed: string[] = [];
  const failed: string[] = [];
  for (let i = 0; i < complete; i++) completed.push(await enqueue({ queue, payloadJson: json({ i, kind: 'completed' }) }));
  for (let i = 0; i < fail; i++) failed.push(await enqueue({ queue, payloadJson: json({ i, kind: 'failed' }), maxAttempts: 1 }));
  const worker = new LeaseDriver(clients.broker);
  worker.hello([queue], complete + fail, complete + fail, 'fixture-maker');
  const jobs = await worker.jobsReceived(complete + fail);
  worker.send({
    results: jobs.map((job) =>
      failed.includes(job.jobId)
        ? { jobId: job.jobId, leaseToken: job.leaseToken, failure: { message: `failed on purpose: ${job.jobId}`, nonRetryable: true } }
        : { jobId: job.jobId, leaseToken: job.leaseToken, resultJson: json({ done: job.jobId, nested: { list: [1, 'two', null] } }) },
    ),
  });
  await worker.until((messages) => messages.flatMap((m) => m.acks).filter((a) => a.accepted).length >= complete + fail || undefined);
  worker.end();
  await worker.done;
  return { completed, failed };
}

/** The jobs the fuzzer must not change, in every status; returns their ids and the stream holding the RUNNING ones. */
async function createProtectedJobs(): Promise<{ ids: string[]; holder: LeaseDriver }> {
  const ids: string[] = [];
  ids.push(await enqueue({ queue: 'snap-pending', payloadJson: json({ n: 1 }) }));
  ids.push(
    await enqueue({
      queue: 'snap-pending',
      payload: { kind: { case: 'structValue', value: { fields: { a: { kind: { case: 'numberValue', value: 1.5 } } } } } },
      priority: 7,
      labels: { team: 'snapshot', 'ünï': '𝄞' },
      idempotencyKey: 'snapshot-key-1',
      traceparent: `00-${'a1'.repeat(16)}-${'b2'.repeat(8)}-01`,
    }),
  );
  ids.push(await enqueue({ queue: 'snap-scheduled', delay: durationFromMs(3_600_000), maxAttempts: 7, retryPolicy: { initialBackoff: durationFromMs(2000), multiplier: 3, jitter: 0 } }));
  ids.push(await enqueue({ queue: 'snap-scheduled', runAt: { seconds: BigInt(Math.floor(Date.now() / 1000) + 86_400), nanos: 0 }, timeout: durationFromMs(5000) }));
  const { completed, failed } = await finishJobs('snap-finished', 3, 3);
  ids.push(...completed, ...failed);
  // A FAILED job retried: PENDING again, with its error history (no stream serves its queue any more).
  await clients.broker.retry({ id: failed[0] });
  for (let i = 0; i < 2; i++) {
    const id = await enqueue({ queue: 'snap-cancelled', payloadJson: json({ i }) });
    await clients.broker.cancel({ id });
    ids.push(id);
  }
  // RUNNING, and RUNNING with a cancel pending, held by a stream that stays open all run long.
  for (let i = 0; i < 3; i++) ids.push(await enqueue({ queue: 'snap-running', payloadJson: json({ running: i }) }));
  const holder = new LeaseDriver(clients.broker);
  holder.hello(['snap-running'], 3, 3, 'snapshot-holder');
  const held = await holder.jobsReceived(3);
  await clients.broker.cancel({ id: held[2].jobId });
  await holder.until((messages) => messages.some((m) => m.cancels.length > 0));
  return { ids, holder };
}

/** Jobs the fuzzer owns, in every status, and queues of jobs for its Lease streams. */
async function createOwnedJobs(): Promise<string[]> {
  const owned: string[] = [];
  const { completed, failed } = await finishJobs('fz-owned', 4, 4);
  owned.push(...completed, ...failed);
  for (let i = 0; i < 6; i++) owned.push(await enqueue({ queue: 'fz-owned', payloadJson: json({ i }), priority: i }));
  for (let i = 0; i < 4; i++) owned.push(await enqueue({ queue: 'fz-owned', delay: durationFromMs(3_600_000) }));
  for (let i = 0; i < 4; i++) {
    const id = await enqueue({ queue: 'fz-owned' });
    await clients.broker.cancel({ id });
    owned.push(id);
  }
  for (const queue of ['fz-lease-0', 'fz-lease-1', 'fz-lease-2']) {
    for (let batch = 0; batch < 4; batch++) {
      const { jobs } = await clients.broker.enqueueBatch({ jobs: Array.from({ length: 50 }, (_, i) => ({ queue, payloadJson: json({ batch, i }), maxAttempts: 100 })) });
      owned.push(...jobs.map((j) => j.job!.id));
    }
  }
  return owned;
}

type Row = { id: string; row: unknown };
const snapshotRows = (ids: string[]) => query<Row>(db.url, `select id::text as id, to_jsonb(j) as row from baton_jobs j where id = any($1::bigint[]) order by id`, [ids]);
const snapshotQueues = () =>
  query(db.url, `select name, concurrency, paused, default_max_attempts, default_timeout_ms from baton_queues where name = any($1) order by name`, [[...SNAPSHOT_QUEUES, GOOD_QUEUE]]);

/** Runs `count` tasks, `inFlight` at a time. */
async function pool(count: number, inFlight: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

it(`answers ${COUNT} random and mutated requests with the right codes, and changes no stored job`, { timeout: 240_000 }, async () => {
  const report = new FuzzReport(process.env.FUZZ_STRICT_INTERNAL === '1');
  const setupStarted = performance.now();
  const { ids: protectedIds, holder } = await createProtectedJobs();
  const ownedIds = await createOwnedJobs();
  await clients.admin.setQueueConcurrency({ queue: GOOD_QUEUE, concurrency: 0 });
  const before = await snapshotRows(protectedIds);
  const queuesBefore = await snapshotQueues();
  expect(before).toHaveLength(protectedIds.length);

  const ctx: FuzzContext = {
    // The Lease streams' queues are left out, so that fuzzed PauseQueue and SetQueueConcurrency calls
    // do not starve the streams that should hold jobs.
    queues: ['fz-a', 'fz-b', 'fz-owned'],
    leaseQueues: ['fz-lease-0', 'fz-lease-1', 'fz-lease-2', 'fz-owned'],
    ownedIds,
    protectedQueues: new Set([...SNAPSHOT_QUEUES, GOOD_QUEUE]),
    ...LIMITS,
  };
  const owned = new Set(ownedIds);
  const raw = new RawGrpc(broker.url, 4);
  const jsonClient = new ConnectJson(broker.url);
  const deps: ChannelDeps = { seed: SEED, ctx, owned, raw, json: jsonClient, clients, onGuarded: () => report.guarded++, timeoutMs: 20_000, openMs: 150 };

  // The well-behaved worker, and a producer feeding it for as long as the fuzzer runs.
  const good = new GoodWorker(clients.broker, GOOD_QUEUE, 8);
  await good.start();
  const goodIds: string[] = [];
  let fuzzing = true;
  // Failures of the test's own helpers (producer, Lease streams), kept apart from the broker's.
  const helperFailures: string[] = [];
  const producer = (async () => {
    while (fuzzing) {
      const { jobs } = await clients.broker.enqueueBatch({ jobs: Array.from({ length: 4 }, (_, i) => ({ queue: GOOD_QUEUE, payloadJson: json({ i }) })) });
      goodIds.push(...jobs.map((j) => j.job!.id));
      await sleep(150);
    }
  })().catch((error) => helperFailures.push(`producer: ${String(error)}`));

  // Liveness while the fuzzer runs: server info and health, four times a second.
  const health = createClient(Health, createGrpcTransport({ baseUrl: broker.url }));
  const probes = { count: 0, failures: [] as string[], slowestMs: 0 };
  const monitor = (async () => {
    while (fuzzing) {
      const probeStarted = performance.now();
      try {
        const [info, status] = await Promise.all([clients.broker.getServerInfo({}), health.check({ service: '' })]);
        if (info.protocolVersion !== 1 || status.status !== HealthCheckResponse_ServingStatus.SERVING) probes.failures.push(`unexpected answer: ${info.protocolVersion}, ${status.status}`);
      } catch (error) {
        probes.failures.push(String(error));
      }
      probes.count++;
      probes.slowestMs = Math.max(probes.slowestMs, performance.now() - probeStarted);
      await sleep(250);
    }
  })();

  // Misbehaving Lease streams, a few at once, spread over the whole run: stream i starts once i/n of
  // the other requests are answered.
  const lease = { streams: 0, messages: 0, jobs: 0, falseAccepts: [] as string[] };
  let answered = 0;
  const leaseStreams = Math.max(24, Math.floor(COUNT / 50));
  const leaseRun = Promise.all(
    Array.from({ length: LEASE_STREAMS_IN_FLIGHT }, async () => {
      while (lease.streams < leaseStreams) {
        const index = lease.streams++;
        while (answered < (index * COUNT) / leaseStreams) await sleep(20);
        const streamStarted = performance.now();
        const result = await leaseChaos(new Rng(mixSeed(SEED, 4, index)), clients.broker, ctx, owned, 20_000);
        lease.messages += result.sent;
        lease.jobs += result.jobs;
        report.guarded += result.guarded;
        lease.falseAccepts.push(...result.falseAccepts);
        report.record({ channel: 'lease-stream', method: `Lease (${result.style})`, index, outcome: result.outcome, describe: result.describe, ms: performance.now() - streamStarted });
      }
    }),
  ).catch((error) => helperFailures.push(`lease stream: ${String(error)}`));

  const fuzzStarted = performance.now();
  const cpuStarted = process.cpuUsage();
  console.log(`fuzz: seed ${SEED} (rerun with FUZZ_SEED=${SEED}), ${COUNT} requests, ${IN_FLIGHT} in flight; setup took ${Math.round(fuzzStarted - setupStarted)} ms`);
  // Four in ten requests raw gRPC, three Connect JSON, three through the typed gRPC client.
  const channels = [grpcRawRequest, grpcRawRequest, grpcRawRequest, grpcRawRequest, connectJsonRequest, connectJsonRequest, connectJsonRequest, grpcTypedRequest, grpcTypedRequest, grpcTypedRequest];
  const perChannel = new Map<unknown, number>();
  await pool(COUNT, IN_FLIGHT, async (i) => {
    const send = channels[i % channels.length];
    const index = perChannel.get(send) ?? 0;
    perChannel.set(send, index + 1);
    const sent = performance.now();
    const sample = await send(deps, index);
    report.record({ ...sample, ms: performance.now() - sent });
    answered++;
  });
  await leaseRun;
  const fuzzMs = performance.now() - fuzzStarted;
  const cpu = process.cpuUsage(cpuStarted);
  fuzzing = false;
  await Promise.all([producer, monitor]);
  console.log(
    [
      `fuzz: seed ${SEED}: ${report.total} requests and Lease streams in ${(fuzzMs / 1000).toFixed(1)} s (${Math.round((report.total / fuzzMs) * 1000)}/s); ` +
        `CPU of this process (fuzzer and broker) ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s`,
      report.summary(),
      `  lease streams: ${lease.streams} (${lease.messages} messages sent, ${lease.jobs} jobs handed to them)`,
      `  liveness probes: ${probes.count}, slowest ${Math.round(probes.slowestMs)} ms, failures ${probes.failures.length}`,
    ].join('\n'),
  );

  // The good worker finishes everything it was given.
  await good.completed(goodIds.length, 30_000);
  await good.stop();
  raw.close();
  jsonClient.close();
  const gaps = good.completedAt.slice(1).map((t, i) => t - good.completedAt[i]);
  const longestGap = Math.max(0, ...gaps);
  console.log(`fuzz: the good worker completed ${good.completedAt.length} jobs; longest gap between completions ${longestGap} ms`);

  // Still alive, and nothing leaked out of the broker as an exception.
  expect((await clients.broker.getServerInfo({})).protocolVersion).toBe(1);
  expect((await health.check({ service: '' })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  const [{ max_id: maxId }] = await query<{ max_id: string }>(db.url, 'select max(id)::text as max_id from baton_jobs');

  expect(crashes, 'uncaught exceptions or unhandled rejections in the process running the broker').toEqual([]);
  expect(helperFailures, 'the good producer or a Lease stream failed').toEqual([]);
  expect(report.findings.length, report.findingsReport()).toBe(0);
  expect(raw.sessionFailures, 'HTTP/2 connections broken by a request').toEqual([]);
  expect(probes.failures, 'liveness probes that failed during the run').toEqual([]);
  expect(lease.falseAccepts, 'results accepted for jobs the stream was never given').toEqual([]);
  expect(report.total).toBeGreaterThanOrEqual(COUNT);

  // No protected job or queue changed; the fuzzer never reached a real id it does not own.
  expect(await snapshotRows(protectedIds)).toEqual(before);
  expect(await snapshotQueues()).toEqual(queuesBefore);
  expect(BigInt(maxId)).toBeLessThan(FIRST_UNUSED_ID);

  // The well-behaved worker was served throughout and lost nothing.
  const goodRows = await query<{ status: string; n: number }>(db.url, `select status, count(*)::int as n from baton_jobs where queue = $1 group by status`, [GOOD_QUEUE]);
  expect(goodRows).toEqual([{ status: 'completed', n: goodIds.length }]);
  expect(good.completedAt.length).toBe(goodIds.length);
  // Jobs arrive every 150 ms: a long gap would mean the misbehaving streams held the good worker up.
  expect(longestGap, 'longest wait between two completions of the good worker (ms)').toBeLessThan(10_000);

  holder.end();
  await holder.done;
});
