/**
 * What every chaos scenario does the same way: a cluster on a database of its own, jobs enqueued in
 * batches, the health checks on the figures (nothing lost, nothing completed twice, the limit
 * held), and the cleanup after each scenario.
 */
import { expect } from 'vitest';
import { migrate, openOrm } from '../../server/src/store/orm.ts';
import { Cluster, type Figures, type Port } from './harness.ts';
import { createTestDatabase } from '../support/database.ts';

let cleanup: (() => Promise<void>)[] = [];

/** Runs after the current scenario, before those registered earlier (a cluster before its database). */
export function registerCleanup(step: () => Promise<void>): void {
  cleanup.push(step);
}

/** Stops what the scenario started, last first; a step that fails does not keep the next from running. */
export async function cleanUp(): Promise<void> {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  cleanup = [];
}

export async function cluster(via: Port, url?: string): Promise<Cluster> {
  let databaseUrl = url;
  if (databaseUrl) {
    const orm = await openOrm(databaseUrl, 2);
    await migrate(orm, databaseUrl);
    await orm.close();
  } else {
    const db = await createTestDatabase();
    registerCleanup(() => db.drop());
    databaseUrl = db.url;
  }
  const c = new Cluster(databaseUrl, via);
  registerCleanup(() => c.stop());
  await c.auditCompletions();
  return c;
}

export async function enqueue(c: Cluster, queue: string, jobs: number, payload: object, extra: { priority?: number; delayMs?: number } = {}) {
  const client = c.client(c.address(c.brokers[0]));
  try {
    for (let done = 0; done < jobs; done += 500) {
      const items = Array.from({ length: Math.min(500, jobs - done) }, () => ({
        queue,
        payload,
        maxAttempts: 25,
        priority: extra.priority,
        delay: extra.delayMs,
        retryPolicy: { initialBackoffMs: 20, maxBackoffMs: 200 },
      }));
      await client.enqueueBatch(items, { idsOnly: true });
    }
  } finally {
    client.close();
  }
}

export function expectHealthy(figures: Figures): void {
  expect(figures.lost, 'jobs lost').toBe(0);
  expect(figures.doubleCompletions, 'completions recorded twice').toBe(0);
  if (figures.limit !== null) expect(figures.maxConcurrent, 'concurrency limit').toBeLessThanOrEqual(figures.limit);
}

export async function completed(c: Cluster, queue: string): Promise<number> {
  return (await c.counts(queue)).completed ?? 0;
}
