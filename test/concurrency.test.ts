/**
 * The per-queue concurrency limit is enforced in the database, so it holds however many worker
 * processes (and brokers) take part: 200 jobs, limit 3, two worker processes with room for 5 each.
 * On both ports: the workers hold their streams on the main port, then on the native gRPC port.
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBroker } from '../server/src/broker.ts';
import { grpcClients, startTestBroker } from './support/broker.ts';
import { createTestDatabase, query } from './support/database.ts';
import { type Child, eventually, maxOverlap, readLog, spawnTs } from './support/processes.ts';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
const workers: Child[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startTestBroker(db.url, { grpcPort: 0 });
});

// Each port's workers end with its test, so they do not run beside the next one's.
afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.kill()));
});

afterAll(async () => {
  await broker?.stop();
  await db?.drop();
});

// Both ports are one contract: the workers (and the test's calls) on the main port, then on BATON_GRPC_PORT.
describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  it('never runs more than the limit at once across two worker processes', async () => {
    const address = `127.0.0.1:${port === 'main' ? broker.port : broker.grpcPort}`;
    const { broker: api, admin } = grpcClients(`http://${address}`);
    /** This port's queue, apart from the other port's (one database). */
    const queue = `limited-${port}`;
    await admin.setQueueConcurrency({ queue, concurrency: 3 });
    const payloadJson = new TextEncoder().encode(JSON.stringify({ ms: 15 }));
    await api.enqueueBatch({ jobs: Array.from({ length: 200 }, () => ({ queue, payloadJson })) });

    const log = path.join(await mkdtemp(path.join(os.tmpdir(), 'baton-conc-')), 'executions.ndjson');
    for (const name of ['a', 'b']) {
      workers.push(
        spawnTs('test/fixtures/recording-worker.ts', {
          BATON_ADDRESS: address,
          QUEUE: queue,
          CONCURRENCY: '5',
          LOG: log,
          WORKER_NAME: name,
        }),
      );
    }
    await eventually(
      async () => (await query(db.url, `select count(*)::int as n from baton_jobs where queue = $1 and status = 'completed'`, [queue]))[0].n === 200,
      90_000,
      'all 200 jobs to complete',
    );
    const executions = readLog(log);
    const starts = executions.filter((e) => e.event === 'start');
    expect(new Set(starts.map((e) => e.id)).size).toBe(200);
    expect(maxOverlap(executions)).toBeLessThanOrEqual(3);
    // Both processes took part: the limit was shared, not won by one of them.
    expect(new Set(starts.map((e) => e.worker))).toEqual(new Set(['a', 'b']));
    const { queues } = await admin.getQueueStats({ queues: [queue] });
    expect(queues[0]).toMatchObject({ completed: 200n, running: 0n, pending: 0n });
  }, 120_000);
});
