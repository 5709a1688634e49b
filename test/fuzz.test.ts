/**
 * Fuzzing every RPC of baton.v1.Broker and baton.v1.Admin, and the Lease stream (issue 3, "Bad
 * input"): thousands of random and mutated requests through three channels (raw gRPC with mutated
 * protobuf bytes, Connect JSON over HTTP/1.1, structured random messages through a gRPC client),
 * plus misbehaving Lease streams beside a well-behaved worker. The broker must never crash, must
 * answer each request with a status from the expected set (never INTERNAL or UNKNOWN), and must not
 * change any job that existed before the run.
 *
 * Both ports, one contract: the broker serves its main port (connect-node) and its native gRPC port
 * (BATON_GRPC_PORT, grpc-js). Raw gRPC, typed gRPC and the misbehaving Lease streams are split
 * between the two (Connect JSON goes to the main port alone: the gRPC port speaks only gRPC), each
 * port has a well-behaved worker and liveness probes of its own, and the report shows each port.
 *
 * Deterministic: request i of a channel on a port is a function of the seed alone (FUZZ_SEED; a
 * random seed is printed otherwise), whatever order the answers come back in. FUZZ_COUNT sets how
 * many requests (default 12,000: 7,200 to the main port, 4,800 to the gRPC port), and with it how
 * many Lease streams (one per 35 requests, half on each port). FUZZ_STRICT_INTERNAL=1 also fails on
 * the INTERNAL that each port's gRPC library itself answers to undecodable protobuf (see
 * fuzz-report.ts). FUZZ_REPORT_LIMIT sets how many distinct
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
import { Health, HealthCheckResponse_ServingStatus } from '@baton/worker-sdk/gen/grpc/health/v1/health';
import type { RunningBroker } from '../server/src/broker.ts';
import { createTestDatabase, query } from './support/database.ts';
import { grpcClients, startTestBroker } from './support/broker.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import { type ChannelDeps, connectJsonRequest, grpcRawRequest, grpcTypedRequest } from './support/fuzz-channels.ts';
import { GoodWorker, leaseChaos } from './support/fuzz-lease.ts';
import { FIRST_UNUSED_ID, type FuzzContext } from './support/fuzz-messages.ts';
import { Rng, mixSeed, runSeed } from './support/fuzz-random.ts';
import { FuzzReport, type Port, PORTS } from './support/fuzz-report.ts';
import { ConnectJson, RawGrpc } from './support/fuzz-wire.ts';

const SEED = runSeed();
const COUNT = Number(process.env.FUZZ_COUNT ?? 12_000);
const IN_FLIGHT = 32;
const LEASE_STREAMS_IN_FLIGHT = 4;
const LIMITS = { maxPayloadBytes: 8192, maxBatchSize: 50, maxPageSize: 100 };
/** Each port's well-behaved worker serves a queue of its own. */
const GOOD_QUEUES: Record<Port, string> = { main: 'good-worker-main', grpc: 'good-worker-grpc' };
const SNAPSHOT_QUEUES = ['snap-pending', 'snap-scheduled', 'snap-finished', 'snap-cancelled', 'snap-running'];
/**
 * A broken broker can make a finding of every request, and a Lease stream that never ends costs the
 * whole 20 s allowed it: the run stops sending once this many findings are in hand, so that it fails
 * with its report well inside the test's timeout.
 */
const STOP_AFTER_FINDINGS = 8;

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
/** The main port's clients, which set up and check the run. */
let clients: ReturnType<typeof grpcClients>;
const portClients = {} as Record<Port, ReturnType<typeof grpcClients>>;
const portUrls = {} as Record<Port, string>;
const crashes: string[] = [];
const onUncaught = (error: unknown) => crashes.push(`uncaughtException: ${String((error as Error)?.stack ?? error)}`);
const onUnhandled = (reason: unknown) => crashes.push(`unhandledRejection: ${String((reason as Error)?.stack ?? reason)}`);

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUnhandled);
  db = await createTestDatabase();
  // Leases outlive the run, so the snapshot's RUNNING jobs stay RUNNING without any help.
  broker = await startTestBroker(db.url, { ...LIMITS, leaseTtlMs: 180_000, heartbeatIntervalMs: 60_000, grpcPort: 0 });
  portUrls.main = broker.url;
  portUrls.grpc = `http://127.0.0.1:${broker.grpcPort}`;
  for (const port of PORTS) portClients[port] = grpcClients(portUrls[port]);
  clients = portClients.main;
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
      labels: { team: 'snapshot', ünï: '𝄞' },
      idempotencyKey: 'snapshot-key-1',
      traceparent: `00-${'a1'.repeat(16)}-${'b2'.repeat(8)}-01`,
    }),
  );
  ids.push(
    await enqueue({
      queue: 'snap-scheduled',
      delay: durationFromMs(3_600_000),
      maxAttempts: 7,
      retryPolicy: { initialBackoff: durationFromMs(2000), multiplier: 3, jitter: 0 },
    }),
  );
  ids.push(
    await enqueue({ queue: 'snap-scheduled', runAt: { seconds: BigInt(Math.floor(Date.now() / 1000) + 86_400), nanos: 0 }, timeout: durationFromMs(5000) }),
  );
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
      const { jobs } = await clients.broker.enqueueBatch({
        jobs: Array.from({ length: 50 }, (_, i) => ({ queue, payloadJson: json({ batch, i }), maxAttempts: 100 })),
      });
      owned.push(...jobs.map((j) => j.job!.id));
    }
  }
  return owned;
}

type Row = { id: string; row: unknown };
const snapshotRows = (ids: string[]) =>
  query<Row>(db.url, `select id::text as id, to_jsonb(j) as row from baton_jobs j where id = any($1::bigint[]) order by id`, [ids]);
const snapshotQueues = () =>
  query(db.url, `select name, concurrency, paused, default_max_attempts, default_timeout_ms from baton_queues where name = any($1) order by name`, [
    [...SNAPSHOT_QUEUES, ...Object.values(GOOD_QUEUES)],
  ]);

/** Runs `count` tasks, `inFlight` at a time, starting no more once `stop()` holds. */
async function pool(count: number, inFlight: number, task: (index: number) => Promise<void>, stop: () => boolean): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (next < count && !stop()) await task(next++);
    }),
  );
}

it(`answers ${COUNT} random and mutated requests with the right codes, and changes no stored job`, { timeout: 240_000 }, async () => {
  const report = new FuzzReport(process.env.FUZZ_STRICT_INTERNAL === '1');
  const stopEarly = () => report.findings.length >= STOP_AFTER_FINDINGS;
  const setupStarted = performance.now();
  const { ids: protectedIds, holder } = await createProtectedJobs();
  const ownedIds = await createOwnedJobs();
  for (const queue of Object.values(GOOD_QUEUES)) await clients.admin.setQueueConcurrency({ queue, concurrency: 0 });
  const before = await snapshotRows(protectedIds);
  const queuesBefore = await snapshotQueues();
  expect(before).toHaveLength(protectedIds.length);

  const ctx: FuzzContext = {
    // The Lease streams' queues are left out, so that fuzzed PauseQueue and SetQueueConcurrency calls
    // do not starve the streams that should hold jobs.
    queues: ['fz-a', 'fz-b', 'fz-owned'],
    leaseQueues: ['fz-lease-0', 'fz-lease-1', 'fz-lease-2', 'fz-owned'],
    ownedIds,
    protectedQueues: new Set([...SNAPSHOT_QUEUES, ...Object.values(GOOD_QUEUES)]),
    ...LIMITS,
  };
  const owned = new Set(ownedIds);
  const raw = { main: new RawGrpc(portUrls.main, 4), grpc: new RawGrpc(portUrls.grpc, 4) };
  const jsonClient = new ConnectJson(portUrls.main);
  const depsOf = (port: Port): ChannelDeps => ({
    seed: SEED,
    port,
    ctx,
    owned,
    raw: raw[port],
    json: jsonClient,
    clients: portClients[port],
    onGuarded: () => report.guarded++,
    timeoutMs: 20_000,
    openMs: 150,
  });
  const deps = { main: depsOf('main'), grpc: depsOf('grpc') };

  // A well-behaved worker on each port, and a producer feeding them for as long as the fuzzer runs.
  const good = { main: new GoodWorker(portClients.main.broker, GOOD_QUEUES.main, 8), grpc: new GoodWorker(portClients.grpc.broker, GOOD_QUEUES.grpc, 8) };
  for (const port of PORTS) await good[port].start();
  const goodIds: Record<Port, string[]> = { main: [], grpc: [] };
  let fuzzing = true;
  // Failures of the test's own helpers (producer, Lease streams), kept apart from the broker's.
  const helperFailures: string[] = [];
  const producer = (async () => {
    while (fuzzing) {
      for (const port of PORTS) {
        const { jobs } = await clients.broker.enqueueBatch({
          jobs: Array.from({ length: 4 }, (_, i) => ({ queue: GOOD_QUEUES[port], payloadJson: json({ i }) })),
        });
        goodIds[port].push(...jobs.map((j) => j.job!.id));
      }
      await sleep(150);
    }
  })().catch((error) => helperFailures.push(`producer: ${String(error)}`));

  // Liveness on each port while the fuzzer runs: server info and health, four times a second.
  const health = {
    main: createClient(Health, createGrpcTransport({ baseUrl: portUrls.main })),
    grpc: createClient(Health, createGrpcTransport({ baseUrl: portUrls.grpc })),
  };
  const probes = { count: 0, failures: [] as string[], slowestMs: 0 };
  const monitor = (async () => {
    while (fuzzing) {
      const probeStarted = performance.now();
      await Promise.all(
        PORTS.map(async (port) => {
          try {
            const [info, status] = await Promise.all([portClients[port].broker.getServerInfo({}), health[port].check({ service: '' })]);
            if (info.protocolVersion !== 1 || status.status !== HealthCheckResponse_ServingStatus.SERVING)
              probes.failures.push(`${port} port: unexpected answer: ${info.protocolVersion}, ${status.status}`);
          } catch (error) {
            probes.failures.push(`${port} port: ${String(error)}`);
          }
        }),
      );
      probes.count++;
      probes.slowestMs = Math.max(probes.slowestMs, performance.now() - probeStarted);
      await sleep(250);
    }
  })();

  // Misbehaving Lease streams, a few at once, spread over the whole run: stream i starts once i/n of
  // the other requests are answered, on the main port when i is even and on the gRPC port when odd.
  const lease = { streams: 0, messages: { main: 0, grpc: 0 }, jobs: { main: 0, grpc: 0 }, falseAccepts: [] as string[] };
  let answered = 0;
  const leaseStreams = Math.max(48, Math.floor(COUNT / 35));
  const leaseRun = Promise.all(
    Array.from({ length: LEASE_STREAMS_IN_FLIGHT }, async () => {
      while (lease.streams < leaseStreams && !stopEarly()) {
        const index = lease.streams++;
        const port = PORTS[index % 2];
        while (answered < (index * COUNT) / leaseStreams && !stopEarly()) await sleep(20);
        const streamStarted = performance.now();
        const result = await leaseChaos(new Rng(mixSeed(SEED, 4, index)), portClients[port].broker, ctx, owned, 20_000);
        lease.messages[port] += result.sent;
        lease.jobs[port] += result.jobs;
        report.guarded += result.guarded;
        lease.falseAccepts.push(...result.falseAccepts.map((token) => `${port} port: ${token}`));
        report.record({
          channel: 'lease-stream',
          port,
          method: `Lease (${result.style})`,
          index,
          outcome: result.outcome,
          describe: result.describe,
          ms: performance.now() - streamStarted,
        });
      }
    }),
  ).catch((error) => helperFailures.push(`lease stream: ${String(error)}`));

  const fuzzStarted = performance.now();
  const cpuStarted = process.cpuUsage();
  console.log(
    `fuzz: seed ${SEED} (rerun with FUZZ_SEED=${SEED}), ${COUNT} requests, ${IN_FLIGHT} in flight; setup took ${Math.round(fuzzStarted - setupStarted)} ms`,
  );
  // Of every ten requests: raw gRPC three to each port, Connect JSON two (main port), typed gRPC one to each port.
  const channels: [typeof grpcRawRequest, Port][] = [
    [grpcRawRequest, 'main'],
    [grpcRawRequest, 'grpc'],
    [connectJsonRequest, 'main'],
    [grpcRawRequest, 'main'],
    [grpcRawRequest, 'grpc'],
    [grpcTypedRequest, 'main'],
    [grpcRawRequest, 'main'],
    [grpcRawRequest, 'grpc'],
    [connectJsonRequest, 'main'],
    [grpcTypedRequest, 'grpc'],
  ];
  const perChannel = new Map<string, number>();
  await pool(
    COUNT,
    IN_FLIGHT,
    async (i) => {
      const [send, port] = channels[i % channels.length];
      const key = `${send.name}/${port}`;
      const index = perChannel.get(key) ?? 0;
      perChannel.set(key, index + 1);
      const sent = performance.now();
      const sample = await send(deps[port], index);
      report.record({ ...sample, ms: performance.now() - sent });
      answered++;
    },
    stopEarly,
  );
  await leaseRun;
  if (stopEarly()) console.log(`fuzz: stopped early, after ${answered} requests and ${lease.streams} Lease streams: ${report.findings.length} findings`);
  const fuzzMs = performance.now() - fuzzStarted;
  const cpu = process.cpuUsage(cpuStarted);
  fuzzing = false;
  await Promise.all([producer, monitor]);
  console.log(
    [
      `fuzz: seed ${SEED}: ${report.total} requests and Lease streams in ${(fuzzMs / 1000).toFixed(1)} s (${Math.round((report.total / fuzzMs) * 1000)}/s); ` +
        `CPU of this process (fuzzer and broker) ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s`,
      report.summary(),
      ...PORTS.map(
        (port) =>
          `  lease streams on the ${port} port: ${report.count(port, 'lease-stream')} (${lease.messages[port]} messages sent, ${lease.jobs[port]} jobs handed to them)`,
      ),
      `  liveness probes (both ports each time): ${probes.count}, slowest ${Math.round(probes.slowestMs)} ms, failures ${probes.failures.length}`,
    ].join('\n'),
  );

  // Each good worker finishes everything it was given.
  const longestGap = { main: 0, grpc: 0 };
  for (const port of PORTS) {
    await good[port].completed(goodIds[port].length, 30_000);
    await good[port].stop();
    const at = good[port].completedAt;
    longestGap[port] = Math.max(0, ...at.slice(1).map((t, i) => t - at[i]));
    console.log(`fuzz: the good worker on the ${port} port completed ${at.length} jobs; longest gap between completions ${longestGap[port]} ms`);
  }
  for (const port of PORTS) raw[port].close();
  jsonClient.close();

  // Still alive on both ports, and nothing leaked out of the broker as an exception.
  for (const port of PORTS) {
    expect((await portClients[port].broker.getServerInfo({})).protocolVersion, `${port} port`).toBe(1);
    expect((await health[port].check({ service: '' })).status, `${port} port`).toBe(HealthCheckResponse_ServingStatus.SERVING);
  }
  const [{ max_id: maxId }] = await query<{ max_id: string }>(db.url, 'select max(id)::text as max_id from baton_jobs');

  expect(crashes, 'uncaught exceptions or unhandled rejections in the process running the broker').toEqual([]);
  expect(helperFailures, 'the good producer or a Lease stream failed').toEqual([]);
  expect(report.findings.length, report.findingsReport()).toBe(0);
  expect([...raw.main.sessionFailures, ...raw.grpc.sessionFailures.map((f) => `gRPC port: ${f}`)], 'HTTP/2 connections broken by a request').toEqual([]);
  expect(probes.failures, 'liveness probes that failed during the run').toEqual([]);
  expect(lease.falseAccepts, 'results accepted for jobs the stream was never given').toEqual([]);
  expect(report.total).toBeGreaterThanOrEqual(COUNT);
  // Each port had its share of the misbehaving Lease streams.
  for (const port of PORTS)
    expect(report.count(port, 'lease-stream'), `Lease streams on the ${port} port`).toBeGreaterThanOrEqual(Math.floor(leaseStreams / 2));

  // No protected job or queue changed; the fuzzer never reached a real id it does not own.
  expect(await snapshotRows(protectedIds)).toEqual(before);
  expect(await snapshotQueues()).toEqual(queuesBefore);
  expect(BigInt(maxId)).toBeLessThan(FIRST_UNUSED_ID);

  // Each well-behaved worker was served throughout and lost nothing.
  for (const port of PORTS) {
    const goodRows = await query<{ status: string; n: number }>(db.url, `select status, count(*)::int as n from baton_jobs where queue = $1 group by status`, [
      GOOD_QUEUES[port],
    ]);
    expect(goodRows, `the good worker's jobs on the ${port} port`).toEqual([{ status: 'completed', n: goodIds[port].length }]);
    expect(good[port].completedAt.length).toBe(goodIds[port].length);
    // Jobs arrive every 150 ms: a long gap would mean the misbehaving streams held the good worker up.
    expect(longestGap[port], `longest wait between two completions of the good worker on the ${port} port (ms)`).toBeLessThan(10_000);
  }

  holder.end();
  await holder.done;
});
