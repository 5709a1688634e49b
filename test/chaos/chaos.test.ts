/**
 * The chaos suite: each scenario enqueues its jobs, injects its fault while workers are busy, and
 * checks that every job completes, none is lost, no completion is recorded twice, the concurrency
 * limit holds, and how long recovery took. Bounded: a few hundred short jobs per scenario.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, openOrm } from '../../server/src/store/orm.ts';
import { createHealthClient } from './health-client.ts';
import { Cluster, type Figures } from './harness.ts';
import { createTestDatabase, query } from '../support/database.ts';
import { OwnPostgres } from '../support/own-postgres.ts';
import { eventually } from '../support/processes.ts';

const encoder = new TextEncoder();
let cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
  cleanup = [];
});

async function cluster(url?: string): Promise<Cluster> {
  let databaseUrl = url;
  if (databaseUrl) {
    const orm = await openOrm(databaseUrl, 2);
    await migrate(orm, databaseUrl);
    await orm.close();
  } else {
    const db = await createTestDatabase();
    cleanup.push(() => db.drop());
    databaseUrl = db.url;
  }
  const c = new Cluster(databaseUrl);
  cleanup.push(() => c.stop());
  await c.auditCompletions();
  return c;
}

async function enqueue(c: Cluster, queue: string, jobs: number, payload: object, extra: { priority?: number; delayMs?: number } = {}) {
  const client = c.client(`127.0.0.1:${c.brokers[0].port}`);
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

function expectHealthy(figures: Figures): void {
  expect(figures.lost, 'jobs lost').toBe(0);
  expect(figures.doubleCompletions, 'completions recorded twice').toBe(0);
  if (figures.limit !== null) expect(figures.maxConcurrent, 'concurrency limit').toBeLessThanOrEqual(figures.limit);
}

async function completed(c: Cluster, queue: string): Promise<number> {
  return (await c.counts(queue)).completed ?? 0;
}

describe('chaos', () => {
  it('1. crash recovery: a worker SIGKILLed mid-job', async () => {
    const c = await cluster();
    await c.startBroker();
    await enqueue(c, 'crash', 200, { ms: 30 });
    const victim = c.startWorker('crash', 'victim', 4);
    c.startWorker('crash', 'steady', 4);
    await eventually(async () => (await completed(c, 'crash')) >= 40, 30_000, 'progress');
    const fault = Date.now();
    await c.kill(victim);
    const recovered = await c.firstCompletionAfter('crash', fault);
    await c.waitAllTerminal('crash');
    const figures = await c.figures({ scenario: 'worker SIGKILL mid-job', queue: 'crash', jobs: 200, faults: 1, recoveryMs: recovered - fault });
    expectHealthy(figures);
  }, 90_000);

  it('2. repeated kills: workers killed and restarted again and again under load, limit held', async () => {
    const c = await cluster();
    const broker = await c.startBroker();
    const { Client } = await import('../../worker-sdk/src/index.ts');
    const admin = new Client({ address: `127.0.0.1:${broker.port}` });
    await admin.setConcurrency('churn', 6);
    admin.close();
    await enqueue(c, 'churn', 300, { ms: 25 });
    let generation = 0;
    let live = [c.startWorker('churn', `w${generation}a`, 4), c.startWorker('churn', `w${generation}b`, 4)];
    let faults = 0;
    const recoveries: number[] = [];
    while ((await completed(c, 'churn')) < 300 && faults < 8) {
      await sleep(600);
      const fault = Date.now();
      await c.kill(live[faults % 2]);
      faults++;
      generation++;
      live[(faults + 1) % 2] = c.startWorker('churn', `w${generation}`, 4);
      if ((await completed(c, 'churn')) < 300) recoveries.push((await c.firstCompletionAfter('churn', fault)) - fault);
    }
    await c.waitAllTerminal('churn');
    const figures = await c.figures({
      scenario: 'repeated worker kills',
      queue: 'churn',
      jobs: 300,
      faults,
      limit: 6,
      recoveryMs: recoveries.length ? Math.max(...recoveries) : null,
    });
    expectHealthy(figures);
    expect(faults).toBeGreaterThanOrEqual(3);
  }, 120_000);

  it('3. a broker SIGKILLed while workers hold leases, three brokers running', async () => {
    const c = await cluster();
    for (let i = 0; i < 3; i++) await c.startBroker();
    await enqueue(c, 'brokers', 300, { ms: 20 });
    for (let i = 0; i < 3; i++) c.startWorker('brokers', `w${i}`, 4, `127.0.0.1:${c.brokers[i].port}`);
    // A fourth worker knows every broker and fails over between them.
    c.startWorker('brokers', 'roamer', 4);
    await eventually(async () => (await completed(c, 'brokers')) >= 50, 30_000, 'progress');
    const fault = Date.now();
    await c.brokers[0].child.kill('SIGKILL');
    const recovered = await c.firstCompletionAfter('brokers', fault);
    await c.restartBroker(c.brokers[0]);
    await c.waitAllTerminal('brokers');
    const figures = await c.figures({ scenario: 'broker SIGKILL (1 of 3)', queue: 'brokers', jobs: 300, faults: 1, recoveryMs: recovered - fault });
    expectHealthy(figures);
  }, 120_000);

  it('4. PostgreSQL restarted under load: NOT_SERVING and UNAVAILABLE meanwhile, recovery by itself', async () => {
    const own = new OwnPostgres();
    await own.start();
    cleanup.push(() => own.destroy());
    const c = await cluster(own.url);
    const broker = await c.startBroker({ BATON_LOG_LEVEL: 'error' });
    await enqueue(c, 'pg-restart', 300, { ms: 20 });
    c.startWorker('pg-restart', 'a', 4);
    c.startWorker('pg-restart', 'b', 4);
    await eventually(async () => (await completed(c, 'pg-restart')) >= 50, 30_000, 'progress');
    const health = createHealthClient(broker.port);
    const fault = Date.now();
    await own.stop();
    await eventually(async () => (await health.status()) === 'NOT_SERVING', 15_000, 'health to report NOT_SERVING');
    const producer = c.client(`127.0.0.1:${broker.port}`);
    await expect(producer.enqueue('pg-restart', {})).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    producer.close();
    await sleep(1000);
    await own.start();
    // Recovery is measured from the database's return: before it, nothing can complete.
    const back = Date.now();
    await eventually(async () => (await health.status()) === 'SERVING', 30_000, 'health to report SERVING again');
    const recovered = await c.firstCompletionAfter('pg-restart', back);
    await c.waitAllTerminal('pg-restart');
    expect(broker.child.process.exitCode, broker.child.output()).toBeNull();
    const figures = await c.figures({ scenario: `PostgreSQL restart (down ${back - fault} ms)`, queue: 'pg-restart', jobs: 300, faults: 1, recoveryMs: recovered - back });
    expectHealthy(figures);
  }, 120_000);

  it('5. PostgreSQL backends terminated under load', async () => {
    const c = await cluster();
    const broker = await c.startBroker({ BATON_LOG_LEVEL: 'error' });
    await enqueue(c, 'terminate', 300, { ms: 20 });
    c.startWorker('terminate', 'a', 4);
    c.startWorker('terminate', 'b', 4);
    await eventually(async () => (await completed(c, 'terminate')) >= 30, 30_000, 'progress');
    const database = new URL(c.databaseUrl).pathname.slice(1);
    let faults = 0;
    const fault = Date.now();
    for (let round = 0; round < 3; round++) {
      const killed = await query(c.databaseUrl, `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [database]);
      faults += killed.length;
      await sleep(500);
    }
    const recovered = await c.firstCompletionAfter('terminate', fault);
    await c.waitAllTerminal('terminate');
    expect(broker.child.process.exitCode, broker.child.output()).toBeNull();
    const figures = await c.figures({ scenario: 'pg_terminate_backend ×3', queue: 'terminate', jobs: 300, faults, recoveryMs: recovered - fault });
    expectHealthy(figures);
  }, 120_000);

  it('6. leader failover: the broker running background duties killed, scheduled jobs still promoted', async () => {
    const c = await cluster();
    await c.startBroker();
    await c.startBroker();
    const leader = await eventually(() => c.brokers.find((b) => b.child.output().includes('elected to run background duties')), 20_000, 'a leader');
    const follower = c.brokers.find((b) => b !== leader)!;
    await enqueue(c, 'failover', 100, { ms: 5 }, { delayMs: 3000 });
    c.startWorker('failover', 'w', 8, `127.0.0.1:${follower.port}`);
    const fault = Date.now();
    await leader.child.kill('SIGKILL');
    await eventually(() => follower.child.output().includes('elected to run background duties'), 20_000, 'the follower to take over');
    const recovered = await c.firstCompletionAfter('failover', fault);
    await c.waitAllTerminal('failover');
    const figures = await c.figures({ scenario: 'leader killed, scheduled jobs', queue: 'failover', jobs: 100, faults: 1, recoveryMs: recovered - fault });
    expectHealthy(figures);
  }, 90_000);

  it('7. pool exhaustion: far more streams and producers than database connections', async () => {
    const c = await cluster();
    const broker = await c.startBroker({ BATON_POOL_SIZE: '3' });
    for (let i = 0; i < 6; i++) c.startWorker('crowd', `w${i}`, 8);
    const producers = Array.from({ length: 20 }, () => c.client(`127.0.0.1:${broker.port}`));
    const payloadJson = { ms: 5 };
    await Promise.all(
      producers.map(async (producer) => {
        for (let i = 0; i < 15; i++) await producer.enqueue('crowd', payloadJson, { maxAttempts: 25 });
        producer.close();
      }),
    );
    await c.waitAllTerminal('crowd');
    const figures = await c.figures({ scenario: '48 streams + 20 producers on 3 connections', queue: 'crowd', jobs: 300, faults: 0 });
    expectHealthy(figures);
  }, 90_000);

  it('8. retry storm: every job fails several times before it succeeds', async () => {
    const c = await cluster();
    await c.startBroker();
    await enqueue(c, 'storm', 200, { ms: 2, failTimes: 3 });
    c.startWorker('storm', 'a', 8);
    c.startWorker('storm', 'b', 8);
    await c.waitAllTerminal('storm');
    const figures = await c.figures({ scenario: 'retry storm (3 failures per job)', queue: 'storm', jobs: 200, faults: 600 });
    expectHealthy(figures);
    expect(figures.executions).toBe(800);
  }, 90_000);

  it('9. priority starvation: low priority waits for a high-priority flood, then runs', async () => {
    const c = await cluster();
    await c.startBroker();
    await enqueue(c, 'prio', 20, { ms: 2 }, { priority: -10 });
    await enqueue(c, 'prio', 300, { ms: 2 }, { priority: 10 });
    c.startWorker('prio', 'w', 4);
    await c.waitAllTerminal('prio');
    const rows = await query<{ priority: number; started: Date }>(
      c.databaseUrl,
      `select priority, started_at as started from baton_jobs where queue = 'prio' order by started_at`,
    );
    // Strict priority (as in Oban, BullMQ and River): every low job started after the flood's last.
    const lastHigh = Math.max(...rows.filter((r) => r.priority === 10).map((r) => new Date(r.started).getTime()));
    const firstLow = Math.min(...rows.filter((r) => r.priority === -10).map((r) => new Date(r.started).getTime()));
    expect(firstLow).toBeGreaterThanOrEqual(lastHigh - 50);
    const figures = await c.figures({ scenario: 'priority flood (300 high, 20 low)', queue: 'prio', jobs: 320, faults: 0 });
    expectHealthy(figures);
  }, 90_000);

  it('10. a stale worker: its lease expired and was given to another; its late result is refused', async () => {
    const c = await cluster();
    await c.startBroker();
    await enqueue(c, 'stale', 1, { ms: 2500 });
    const stale = c.startWorker('stale', 'stale', 1);
    await eventually(() => c.executions().some((e) => e.event === 'start'), 20_000, 'the job to start');
    stale.process.kill('SIGSTOP');
    const fault = Date.now();
    c.startWorker('stale', 'fresh', 1);
    const recovered = await c.firstCompletionAfter('stale', fault, 30_000);
    stale.process.kill('SIGCONT');
    // The stale worker finishes its handler and reports; the broker must refuse it.
    await eventually(() => c.executions().filter((e) => e.event === 'end').length >= 2, 20_000, 'the stale handler to finish');
    await sleep(500);
    const [job] = await query(c.databaseUrl, `select worker_id, attempt, status from baton_jobs where queue = 'stale'`);
    expect(job).toMatchObject({ worker_id: 'fresh', attempt: 2, status: 'completed' });
    const figures = await c.figures({ scenario: 'stale worker (SIGSTOP past TTL)', queue: 'stale', jobs: 1, faults: 1, recoveryMs: recovered - fault });
    expectHealthy(figures);
  }, 60_000);
});

