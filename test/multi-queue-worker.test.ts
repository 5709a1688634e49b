/**
 * A worker serving several queues shares one credit among them. Claims of different queues run at
 * once; a queue whose claim found that credit reserved by another queue's claim must be served when
 * the other hands back what it did not use (a regression: such queues used to wait forever).
 * The worker runs on the main port, then on the native gRPC port (BATON_GRPC_PORT).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Worker } from '@baton/worker-sdk';
import type { RunningBroker } from '../server/src/broker.ts';
import { startTestBroker } from './support/broker.ts';
import { createTestDatabase } from './support/database.ts';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let broker: RunningBroker;
let client: Client;

beforeAll(async () => {
  db = await createTestDatabase();
  broker = await startTestBroker(db.url, { grpcPort: 0 });
  client = new Client({ address: `127.0.0.1:${broker.port}` });
});

afterAll(async () => {
  client.close();
  await broker.stop();
  await db.drop();
});

// Both ports are one contract: the worker's Lease stream on the main port, then on BATON_GRPC_PORT.
describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  it('every queue of a multi-queue worker gets its jobs', async () => {
    for (let round = 0; round < 10; round++) {
      const [a, b, c] = ['a', 'b', 'c'].map((name) => `${name}${round}-${port}`);
      const worker = new Worker({
        address: `127.0.0.1:${port === 'main' ? broker.port : broker.grpcPort}`,
        logger: { info() {}, warn() {}, error() {} },
        handlers: { [a]: () => 'a', [b]: () => 'b', [c]: () => 'c' },
      });
      await worker.start();
      const jobs = [
        ...(await client.enqueueBatch([1, 2, 3, 4].map((n) => ({ queue: a, payload: { n } })))),
        await client.enqueue(b, {}),
        await client.enqueue(c, {}),
      ];
      const results = await Promise.all(jobs.map((job) => client.result(job.id, { signal: AbortSignal.timeout(5000) })));
      expect(results).toEqual(['a', 'a', 'a', 'a', 'b', 'c']);
      await worker.close({ timeoutMs: 1000 });
    }
  }, 120_000);
});
