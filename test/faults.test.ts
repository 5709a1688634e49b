/**
 * Real processes, really killed: a worker SIGKILLed mid-job, a worker frozen (SIGSTOP) past its
 * lease TTL, and the broker itself SIGKILLed and restarted mid-flight. In each case every job ends
 * COMPLETED, none is lost, and each completion is recorded once. On both ports: every case runs with
 * the workers (and the test's own calls) on the main port, then on the native gRPC port.
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../server/src/store/embedded-postgres.ts';
import { grpcClients } from './support/broker.ts';
import { createTestDatabase, query } from './support/database.ts';
import { type Child, eventually, readLog, spawnTs } from './support/processes.ts';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let children: Child[] = [];
let logFile: string;

beforeEach(async () => {
  db = await createTestDatabase();
  logFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'baton-faults-')), 'executions.ndjson');
});

afterEach(async () => {
  for (const child of children) {
    child.process.kill('SIGCONT');
    await child.kill();
  }
  children = [];
  await db.drop();
});

/** A broker process's two ports: the main one (BATON_PORT) and the native gRPC one (BATON_GRPC_PORT). */
type Ports = Record<'main' | 'grpc', number>;

async function freePorts(): Promise<Ports> {
  const main = await freePort();
  let grpc = await freePort();
  while (grpc === main) grpc = await freePort();
  return { main, grpc };
}

function startBrokerProcess(ports: Ports): Child {
  const child = spawnTs('server/src/main.ts', {
    DATABASE_URL: db.url,
    BATON_PORT: String(ports.main),
    BATON_GRPC_PORT: String(ports.grpc),
    BATON_LEASE_TTL_MS: '2000',
    BATON_LOG_LEVEL: 'warn',
  });
  children.push(child);
  return child;
}

function startWorker(port: number, name: string, queue: string, concurrency = 1): Child {
  const child = spawnTs('test/fixtures/recording-worker.ts', {
    BATON_ADDRESS: `127.0.0.1:${port}`,
    QUEUE: queue,
    CONCURRENCY: String(concurrency),
    LOG: logFile,
    WORKER_NAME: name,
  });
  children.push(child);
  return child;
}

async function waitForBroker(port: number): Promise<void> {
  const { broker } = grpcClients(`http://127.0.0.1:${port}`);
  await eventually(
    () =>
      broker.getServerInfo({}).then(
        () => true,
        () => false,
      ),
    30_000,
    'the broker to answer',
  );
}

async function statuses(queue: string) {
  return query<{ id: string; status: string; attempt: number }>(db.url, `select id::text, status, attempt from baton_jobs where queue = $1 order by id`, [
    queue,
  ]);
}

// Both ports are one contract: each case on the main port, then on BATON_GRPC_PORT (a database
// and broker of its own per case, so queue names need not differ).
describe.each(['main', 'grpc'] as const)('on the %s port', (via) => {
  it('a worker SIGKILLed mid-job: the job runs again elsewhere and completes once', async () => {
    const ports = await freePorts();
    startBrokerProcess(ports);
    const port = ports[via];
    await waitForBroker(port);
    const { broker } = grpcClients(`http://127.0.0.1:${port}`);
    const { job } = await broker.enqueue({ queue: 'crash', payloadJson: new TextEncoder().encode('{"ms": 60000}') });
    const doomed = startWorker(port, 'doomed', 'crash');
    await eventually(() => readLog(logFile).some((e) => e.event === 'start' && e.worker === 'doomed'), 20_000, 'the job to start');
    await doomed.kill('SIGKILL');
    await query(db.url, `update baton_live_jobs set payload = '{"ms": 10}' where id = $1`, [job!.id]);
    startWorker(port, 'survivor', 'crash');
    await eventually(async () => (await statuses('crash'))[0].status === 'completed', 20_000, 'the job to complete');
    const [row] = await statuses('crash');
    expect(row.attempt).toBe(2);
    const starts = readLog(logFile).filter((e) => e.event === 'start');
    expect(starts.map((e) => e.worker)).toEqual(['doomed', 'survivor']);
    const [stored] = await query(db.url, `select errors::text from baton_jobs where id = $1`, [job!.id]);
    expect(JSON.parse(stored.errors)).toHaveLength(1);
  }, 60_000);

  it('a worker frozen past its lease TTL loses the job to another, and its late result is refused', async () => {
    const ports = await freePorts();
    startBrokerProcess(ports);
    const port = ports[via];
    await waitForBroker(port);
    const { broker } = grpcClients(`http://127.0.0.1:${port}`);
    await broker.enqueue({ queue: 'frozen', payloadJson: new TextEncoder().encode('{"ms": 3000}') });
    const frozen = startWorker(port, 'frozen', 'frozen');
    await eventually(() => readLog(logFile).some((e) => e.event === 'start' && e.worker === 'frozen'), 20_000, 'the job to start');
    frozen.process.kill('SIGSTOP');
    const stoppedAt = Date.now();
    startWorker(port, 'thawed-out', 'frozen');
    await eventually(() => readLog(logFile).some((e) => e.event === 'start' && e.worker === 'thawed-out'), 30_000, 'the job to be leased again');
    // Not before the TTL (2 s) ran out: the frozen worker's connection stayed open all along.
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(1900);
    frozen.process.kill('SIGCONT');
    await eventually(async () => (await statuses('frozen'))[0].status === 'completed', 20_000, 'the job to complete');
    const [row] = await query(db.url, `select worker_id, attempt from baton_jobs where queue = 'frozen'`);
    expect(row).toMatchObject({ worker_id: 'thawed-out', attempt: 2 });
  }, 60_000);

  it('the broker SIGKILLed and restarted mid-flight: no job lost, each completed once', async () => {
    const ports = await freePorts();
    let brokerProcess = startBrokerProcess(ports);
    const port = ports[via];
    await waitForBroker(port);
    const { broker } = grpcClients(`http://127.0.0.1:${port}`);
    const payloadJson = new TextEncoder().encode('{"ms": 20}');
    await broker.enqueueBatch({ jobs: Array.from({ length: 150 }, () => ({ queue: 'restart', payloadJson })) });
    startWorker(port, 'w1', 'restart', 4);
    startWorker(port, 'w2', 'restart', 4);
    await eventually(async () => (await statuses('restart')).filter((r) => r.status === 'completed').length >= 30, 30_000, 'some progress');
    await brokerProcess.kill('SIGKILL');
    brokerProcess = startBrokerProcess(ports);
    await eventually(async () => (await statuses('restart')).every((r) => r.status === 'completed'), 60_000, 'all jobs to complete');
    const rows = await statuses('restart');
    expect(rows).toHaveLength(150);
    const starts = readLog(logFile).filter((e) => e.event === 'start');
    // At-least-once: every job ran; some may have run twice (their lease died with the broker).
    expect(new Set(starts.map((e) => e.id)).size).toBe(150);
  }, 120_000);
});
