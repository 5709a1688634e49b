/**
 * The worker conformance kit: one suite, run against every worker implementation (TypeScript SDK,
 * Python, Go, or any command line in CONFORMANCE_WORKER), one test file each so that vitest runs
 * them side by side. Each implementation runs as a real child process serving the conformance
 * handler (contract: test/conformance/README.md) against a real broker process, which the kit kills
 * and restarts; every verdict is read on the broker's side (the jobs as Get returns them, the
 * sessions and running jobs in PostgreSQL), plus the handler's own log where only the worker can
 * tell (did the handler stop?).
 *
 * Both ports are one contract (docs/protocol.md): every scenario runs once with the worker on the
 * broker's main port (BATON_PORT, connect-node) and once on its native gRPC port (BATON_GRPC_PORT,
 * grpc-js). The two ports' runs are independent (a broker, a database and a worker each) and run
 * side by side, since the scenarios mostly wait; within a port the scenarios run one after another.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { toJson } from '@bufbuild/protobuf';
import { durationFromMs, timestampMs, ValueSchema } from '@bufbuild/protobuf/wkt';
import { afterAll, afterEach, beforeAll, describe, it, type TestFunction } from 'vitest';
import { type Job, JobStatus } from '@baton/worker-sdk/gen/job';
import { freePort } from '../../server/src/store/embedded-postgres.ts';
import { grpcClients } from '../support/broker.ts';
import { createTestDatabase, query } from '../support/database.ts';
import { type Child, eventually, maxOverlap, readLog, spawnCommand, spawnTs } from '../support/processes.ts';
import type { Implementation } from './implementations.ts';

/** Short, so that the heartbeat and expiry scenarios take seconds. Heartbeats come every TTL / 3. */
const LEASE_TTL_MS = 2000;
const DRAIN_MS = 5000;
const CAPACITY = 3;
const QUEUE = 'conformance';
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** The broker's two ports; the worker under test is pointed at one, and the kit's own calls go to the same one. */
export const PORTS = ['main', 'grpc'] as const;
export type Port = (typeof PORTS)[number];

/**
 * A scenario of one port's run. The port suites are concurrent (they run side by side), which their
 * tests would inherit: a port's scenarios share one worker and one broker, so they run in turn.
 */
const scenario = (name: string, fn: TestFunction) => it(name, { concurrent: false }, fn);

export function conformanceSuite(impl: Implementation): void {
  const required = Boolean(process.env.CI);
  if (impl.missing && required) {
    it(`${impl.name} worker: toolchain present (required in CI)`, () => {
      throw new Error(`cannot run the ${impl.name} worker: ${impl.missing}`);
    });
    return;
  }
  if (impl.missing) console.warn(`conformance kit: skipping the ${impl.name} worker: ${impl.missing}`);
  describe.skipIf(Boolean(impl.missing))(`${impl.name} worker${impl.missing ? ` — SKIPPED: ${impl.missing}` : ''}`, () => {
    // Built once (the Go worker compiles) for both ports' runs.
    let command: string[];
    beforeAll(() => {
      command = impl.prepare();
    });
    describe.each(PORTS)('on the %s port', { concurrent: true }, (port) => portSuite(impl, port, () => command));
  });
}

/** Every scenario, with the worker under test connected to the broker's `port`. */
function portSuite(impl: Implementation, port: Port, command: () => string[]): void {
  const workerId = `conformance-${impl.name.replace(/\W+/g, '-')}-${port}`;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  // Chosen once: a restarted broker listens where the worker left it, on both ports.
  const ports = { main: 0, grpc: 0 };
  let broker: Child;
  let worker: Child;
  let logFile: string;
  let rpc: ReturnType<typeof grpcClients>['broker'];
  const children: Child[] = [];

  function startBroker(): Child {
    const child = spawnTs('server/src/main.ts', {
      DATABASE_URL: db.url,
      BATON_PORT: String(ports.main),
      BATON_GRPC_PORT: String(ports.grpc),
      BATON_LEASE_TTL_MS: String(LEASE_TTL_MS),
      BATON_DRAIN_MS: String(DRAIN_MS),
      BATON_LOG_LEVEL: process.env.BATON_TEST_LOG ?? 'warn',
    });
    children.push(child);
    return child;
  }

  /** The port under test answers (the native gRPC port opens just after the main one). */
  async function brokerReady(): Promise<void> {
    await eventually(
      () =>
        rpc.getServerInfo({}).then(
          () => true,
          () => false,
        ),
      30_000,
      `the broker to answer on its ${port} port`,
    );
  }

  /** The worker's sessions, newest first, as the broker recorded them. */
  async function sessions() {
    return query<{ broker_id: string; capacity: number; queues: string[] }>(
      db.url,
      `select broker_id, capacity, queues from baton_sessions where worker_id = $1 order by id desc`,
      [workerId],
    );
  }

  async function enqueue(payload: unknown, options: Record<string, unknown> = {}): Promise<string> {
    const { job } = await rpc.enqueue({ queue: QUEUE, payloadJson: json(payload), ...options });
    return job!.id;
  }

  async function get(id: string): Promise<Job> {
    return (await rpc.get({ id })).job!;
  }

  async function settled(id: string, timeoutMs = 15_000): Promise<Job> {
    return eventually(
      async () => {
        const job = await get(id);
        const terminal: JobStatus[] = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED];
        return terminal.includes(job.status) ? job : null;
      },
      timeoutMs,
      `job ${id} to finish`,
    );
  }

  async function running(id: string): Promise<Job> {
    return eventually(
      async () => {
        const job = await get(id);
        return job.status === JobStatus.RUNNING ? job : null;
      },
      10_000,
      `job ${id} to run`,
    );
  }

  const result = (job: Job) => (job.result ? toJson(ValueSchema, job.result) : undefined);
  const log = () => readLog(logFile) as (ReturnType<typeof readLog>[number] & { stopped?: boolean })[];

  beforeAll(async () => {
    db = await createTestDatabase();
    ports.main = await freePort();
    ports.grpc = await freePort();
    logFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'baton-conformance-')), 'handler.ndjson');
    rpc = grpcClients(`http://127.0.0.1:${ports[port]}`).broker;
    broker = startBroker();
    await brokerReady();
    worker = spawnCommand(command(), {
      BATON_ADDRESS: `127.0.0.1:${ports[port]}`,
      BATON_QUEUE: QUEUE,
      CAPACITY: String(CAPACITY),
      WORKER_ID: workerId,
      CONFORMANCE_LOG: logFile,
    });
    children.push(worker);
    await eventually(async () => (await sessions()).length > 0, 20_000, `the ${impl.name} worker to connect to the ${port} port`).catch((error) => {
      throw new Error(`${error.message}\nworker output:\n${worker.output()}`);
    });
  });

  afterEach((context) => {
    if (context.task.result?.state !== 'fail') return;
    const tail = (text: string) => text.slice(-4000);
    console.error(`--- ${impl.name} worker on the ${port} port, output (last 4000 characters):\n${tail(worker?.output() ?? '')}`);
    console.error(`--- broker of the ${port} port's run, output (last 4000 characters):\n${tail(broker?.output() ?? '')}`);
  });

  afterAll(async () => {
    for (const child of children.reverse()) await child.kill();
    await db?.drop();
    if (logFile) await rm(path.dirname(logFile), { recursive: true, force: true });
  });

  scenario('says hello: its worker id, queue and capacity', async ({ expect }) => {
    const [session] = await sessions();
    expect(session).toMatchObject({ capacity: CAPACITY, queues: [QUEUE] });
  });

  scenario('completes a job with the handler result', async ({ expect }) => {
    const value = { text: 'héllo', list: [1, 'two', null, { deep: true }], n: 303 };
    const job = await settled(await enqueue({ action: 'succeed', value }));
    expect(job.status).toBe(JobStatus.COMPLETED);
    expect(job.attempt).toBe(1);
    expect(job.workerId).toBe(workerId);
    expect(result(job)).toEqual({ value });
  });

  scenario('fails an attempt, is retried with backoff, then completes', async ({ expect }) => {
    const retryPolicy = { initialBackoff: durationFromMs(100), multiplier: 1, jitter: 0 };
    const id = await enqueue({ action: 'fail', message: 'boom', times: 2, value: 7 }, { maxAttempts: 5, retryPolicy });
    const job = await settled(id);
    expect(job.status).toBe(JobStatus.COMPLETED);
    expect(job.attempt).toBe(3);
    expect(result(job)).toEqual({ value: 7 });
    expect(job.errors.map((e) => [e.attempt, e.message, e.workerId])).toEqual([
      [1, expect.stringContaining('boom'), workerId],
      [2, expect.stringContaining('boom'), workerId],
    ]);
  });

  scenario('asks for a later retry with retry_after, and the broker waits that long', async ({ expect }) => {
    const retryPolicy = { initialBackoff: durationFromMs(50), multiplier: 1, jitter: 0 };
    const id = await enqueue({ action: 'fail', message: 'rate limited', times: 1, retry_after_ms: 1500, value: 'later' }, { maxAttempts: 3, retryPolicy });
    const job = await settled(id);
    expect(job.status).toBe(JobStatus.COMPLETED);
    expect(job.attempt).toBe(2);
    // Both times are the database's clock.
    expect(timestampMs(job.startedAt!) - timestampMs(job.errors[0].at!)).toBeGreaterThanOrEqual(1400);
  });

  scenario('snooze keeps the attempt count: the job runs again after the delay and completes on attempt 1', async ({ expect }) => {
    // One attempt allowed: a snooze that counted would leave none for the second run.
    const id = await enqueue({ action: 'snooze', ms: 200, times: 1, value: 'rested' }, { maxAttempts: 1 });
    const job = await settled(id);
    expect(job.status).toBe(JobStatus.COMPLETED);
    expect(job.attempt).toBe(1);
    expect(job.errors).toHaveLength(0);
    expect(job.labels).toEqual({ 'baton.snoozes': '1' });
    expect(result(job)).toEqual({ value: 'rested' });
    const runs = log().filter((e) => e.id === id);
    expect(runs.map((e) => [e.event, e.attempt])).toEqual([
      ['start', 1],
      ['end', 1],
      ['start', 1],
      ['end', 1],
    ]);
    // The second run waited out the snooze (the handler's clock; 20 ms of slack for its rounding).
    expect(runs[2].t - runs[1].t).toBeGreaterThanOrEqual(180);
  });

  scenario('fails a job for good on a non-retryable error, whatever attempts remain', async ({ expect }) => {
    const job = await settled(await enqueue({ action: 'fail_permanently', message: 'bad input' }, { maxAttempts: 5 }));
    expect(job.status).toBe(JobStatus.FAILED);
    expect(job.attempt).toBe(1);
    expect(job.errors).toHaveLength(1);
    expect(job.errors[0].message).toContain('bad input');
  });

  scenario('keeps a job longer than twice the lease TTL alive with heartbeats', async ({ expect }) => {
    const job = await settled(await enqueue({ action: 'sleep', ms: 2 * LEASE_TTL_MS + 500, value: 'long' }));
    expect(job.status).toBe(JobStatus.COMPLETED);
    expect(job.attempt).toBe(1);
    expect(job.errors).toHaveLength(0);
    expect(result(job)).toEqual({ value: 'long' });
  });

  scenario('stops a cancelled job: the handler ends and the job is CANCELLED promptly', async ({ expect }) => {
    const id = await enqueue({ action: 'sleep', ms: 60_000 });
    await running(id);
    await eventually(() => log().some((e) => e.event === 'start' && e.id === id), 5000, 'the handler to start');
    const cancelledAt = Date.now();
    const { job: asked } = await rpc.cancel({ id });
    expect(asked!.cancelRequested).toBe(true);
    const job = await settled(id, 5000);
    expect(job.status).toBe(JobStatus.CANCELLED);
    expect(Date.now() - cancelledAt).toBeLessThan(2000);
    const end = await eventually(() => log().find((e) => e.event === 'end' && e.id === id), 3000, 'the handler to stop');
    expect(end.stopped).toBe(true);
    expect(end.t - cancelledAt).toBeLessThan(2000);
  });

  scenario('enforces the job timeout itself, well before the broker would', async ({ expect }) => {
    const timeoutMs = 600;
    const id = await enqueue({ action: 'sleep', ms: 60_000 }, { timeout: durationFromMs(timeoutMs), maxAttempts: 1 });
    const job = await settled(id, 8000);
    expect(job.status).toBe(JobStatus.FAILED);
    // The broker fails overdue attempts itself only after timeout + lease TTL; the worker must not need it.
    const reportedAfter = timestampMs(job.errors[0].at!) - timestampMs(job.startedAt!);
    expect(reportedAfter).toBeGreaterThanOrEqual(timeoutMs - 50);
    expect(reportedAfter).toBeLessThan(timeoutMs + LEASE_TTL_MS / 2);
    const end = await eventually(() => log().find((e) => e.event === 'end' && e.id === id), 3000, 'the handler to stop');
    expect(end.stopped).toBe(true);
  });

  scenario('survives being frozen past its lease TTL: the job runs again and completes once', async ({ expect }) => {
    const id = await enqueue({ action: 'sleep', ms: 1000, value: 'thawed' }, { maxAttempts: 10 });
    await running(id);
    worker.process.kill('SIGSTOP');
    try {
      // The leader expires the silent session and hands the job back.
      await eventually(async () => (await get(id)).errors.length > 0, 10_000, 'the lease to expire');
    } finally {
      worker.process.kill('SIGCONT');
    }
    const job = await settled(id, 20_000);
    expect(job.status).toBe(JobStatus.COMPLETED);
    expect(result(job)).toEqual({ value: 'thawed' });
    expect(job.errors[0].message).toContain('lease expired');
    // Attempt 1 expired; the thawed worker learns its session is gone (UNAVAILABLE), reconnects and
    // runs the job again. (The broker may count one more lost attempt: it can still hand a job to
    // the expired session before the worker's next heartbeat ends that stream.)
    expect(job.attempt).toBeGreaterThanOrEqual(2);
  });

  scenario(`never holds more jobs than its capacity (${CAPACITY}), and uses all of it`, async ({ expect }) => {
    const ids = await Promise.all(Array.from({ length: 4 * CAPACITY }, (_, i) => enqueue({ action: 'sleep', ms: 300, value: i })));
    let most = 0;
    await eventually(
      async () => {
        const [row] = await query<{ running: number; done: number }>(
          db.url,
          `select count(*) filter (where status = 'running' and worker_id = $1)::int as running,
                  count(*) filter (where status = 'completed')::int as done
           from baton_jobs where id = any($2::bigint[])`,
          [workerId, ids],
        );
        most = Math.max(most, row.running);
        return row.done === ids.length;
      },
      20_000,
      'the burst to complete',
    );
    // All of it used. The database may show a little more than the capacity for a moment: a job
    // whose result is being recorded still reads RUNNING while the broker already hands the
    // worker its next one (docs/protocol.md, "Credits"). What the worker runs never exceeds it.
    expect(most).toBeGreaterThanOrEqual(CAPACITY);
    expect(maxOverlap(log().filter((e) => ids.includes(e.id!)))).toBeLessThanOrEqual(CAPACITY);
  });

  scenario('reconnects after the broker is killed and restarted, and loses no job', async ({ expect }) => {
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => enqueue({ action: 'sleep', ms: 250, value: i })));
    await eventually(async () => (await Promise.all(ids.map(get))).filter((j) => j.status === JobStatus.COMPLETED).length >= 2, 10_000, 'some progress');
    const [before] = await sessions();
    await broker.kill('SIGKILL');
    broker = startBroker();
    await brokerReady();
    const jobs = await Promise.all(ids.map((id) => settled(id, 30_000)));
    expect(jobs.map((j) => j.status)).toEqual(ids.map(() => JobStatus.COMPLETED));
    expect(jobs.map(result)).toEqual(ids.map((_, i) => ({ value: i })));
    const [after] = await sessions();
    expect(after.broker_id).not.toBe(before.broker_id);
    // At least once: every job ran; the ones in hand when the broker died ran again, never beyond capacity.
    const runs = log().filter((e) => ids.includes(e.id!));
    expect(new Set(runs.filter((e) => e.event === 'start').map((e) => e.id)).size).toBe(ids.length);
    expect(maxOverlap(runs)).toBeLessThanOrEqual(CAPACITY);
  });

  scenario('drains on request: finishes its running job, reports it, then reconnects to the next broker', async ({ expect }) => {
    const id = await enqueue({ action: 'sleep', ms: 1500, value: 'drained' });
    await running(id);
    const termAt = Date.now();
    const draining = broker;
    await draining.kill('SIGTERM');
    const code = await draining.exited;
    expect(code).toBe(0);
    // The broker closed before its drain deadline: the worker reported and let go in time.
    expect(Date.now() - termAt).toBeLessThan(DRAIN_MS);
    // With no broker up, the database says what the draining broker recorded.
    const [row] = await query(db.url, `select status, attempt, result from baton_jobs where id = $1`, [id]);
    expect(row).toEqual({ status: 'completed', attempt: 1, result: { value: 'drained' } });
    expect(log().filter((e) => e.event === 'start' && e.id === id)).toHaveLength(1);

    broker = startBroker();
    await brokerReady();
    const next = await settled(await enqueue({ action: 'succeed', value: 'after drain' }), 20_000);
    expect(next.status).toBe(JobStatus.COMPLETED);
    expect(worker.process.exitCode).toBeNull();
  });

  scenario('closes gracefully on SIGTERM: finishes its running job, reports it, exits 0', async ({ expect }) => {
    const id = await enqueue({ action: 'sleep', ms: 800, value: 'last' });
    await running(id);
    worker.process.kill('SIGTERM');
    const timeout = new Promise((resolve) => setTimeout(() => resolve('still running 8 s after SIGTERM'), 8000).unref());
    expect(await Promise.race([worker.exited, timeout])).toBe(0);
    const job = await get(id);
    expect(job.status).toBe(JobStatus.COMPLETED);
    expect(job.attempt).toBe(1);
    expect(result(job)).toEqual({ value: 'last' });
  });
}
