/**
 * The per-queue concurrency limit is enforced in the database, so it holds however many worker
 * processes (and brokers) take part: 200 jobs, limit 3, two worker processes with room for 5 each.
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunningBroker } from '../server/src/broker.ts';
import { grpcClients, startTestBroker } from './support/broker.ts';
import { createTestDatabase, query } from './support/database.ts';
import { type Child, eventually, maxOverlap, readLog, spawnTs } from './support/processes.ts';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
const workers: Child[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startTestBroker(db.url);
});

afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.kill()));
  await broker?.stop();
  await db?.drop();
});

it('never runs more than the limit at once across two worker processes', async () => {
  const { broker: api, admin } = grpcClients(broker.url);
  await admin.setQueueConcurrency({ queue: 'limited', concurrency: 3 });
  const payloadJson = new TextEncoder().encode(JSON.stringify({ ms: 15 }));
  await api.enqueueBatch({ jobs: Array.from({ length: 200 }, () => ({ queue: 'limited', payloadJson })) });

  const log = path.join(await mkdtemp(path.join(os.tmpdir(), 'baton-conc-')), 'executions.ndjson');
  for (const name of ['a', 'b']) {
    workers.push(
      spawnTs('test/fixtures/recording-worker.ts', {
        BATON_ADDRESS: `127.0.0.1:${broker.port}`,
        QUEUE: 'limited',
        CONCURRENCY: '5',
        LOG: log,
        WORKER_NAME: name,
      }),
    );
  }
  await eventually(
    async () => (await query(db.url, `select count(*)::int as n from baton_jobs where queue = 'limited' and status = 'completed'`))[0].n === 200,
    90_000,
    'all 200 jobs to complete',
  );
  const executions = readLog(log);
  const starts = executions.filter((e) => e.event === 'start');
  expect(new Set(starts.map((e) => e.id)).size).toBe(200);
  expect(maxOverlap(executions)).toBeLessThanOrEqual(3);
  // Both processes took part: the limit was shared, not won by one of them.
  expect(new Set(starts.map((e) => e.worker))).toEqual(new Set(['a', 'b']));
  const { queues } = await admin.getQueueStats({ queues: ['limited'] });
  expect(queues[0]).toMatchObject({ completed: 200n, running: 0n, pending: 0n });
}, 120_000);
