/**
 * The chaos scenarios: each enqueues its jobs, injects its fault while workers are busy, and
 * checks that every job completes (or is cancelled, in the cancel storm), none is lost, no
 * completion is recorded twice, the concurrency limit holds, and how long recovery took. Bounded:
 * a few hundred short jobs per scenario, a few thousand where the backlog is the point. Both ports
 * are one contract: chaos-main.test.ts and chaos-grpc.test.ts run every scenario through one each.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, it } from 'vitest';
import { migrate, openOrm } from '../../server/src/store/orm.ts';
import { createHealthClient } from './health-client.ts';
import { Cluster, type Figures, LEASE_TTL_MS, type Port } from './harness.ts';
import { grpcClients } from '../support/broker.ts';
import { LeaseDriver } from '../support/lease-driver.ts';
import { createTestDatabase, query } from '../support/database.ts';
import { OwnPostgres } from '../support/own-postgres.ts';
import { eventually } from '../support/processes.ts';

let cleanup: (() => Promise<void>)[] = [];


async function cluster(via: Port, url?: string): Promise<Cluster> {
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
  const c = new Cluster(databaseUrl, via);
  cleanup.push(() => c.stop());
  await c.auditCompletions();
  return c;
}

async function enqueue(c: Cluster, queue: string, jobs: number, payload: object, extra: { priority?: number; delayMs?: number } = {}) {
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

function expectHealthy(figures: Figures): void {
  expect(figures.lost, 'jobs lost').toBe(0);
  expect(figures.doubleCompletions, 'completions recorded twice').toBe(0);
  if (figures.limit !== null) expect(figures.maxConcurrent, 'concurrency limit').toBeLessThanOrEqual(figures.limit);
}

async function completed(c: Cluster, queue: string): Promise<number> {
  return (await c.counts(queue)).completed ?? 0;
}

/** Every scenario, with workers and producers on `via`. */
export function chaosScenarios(via: Port): void {
  afterEach(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    cleanup = [];
  });

  it('1. crash recovery: a worker SIGKILLed mid-job', async () => {
    const c = await cluster(via);
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
    const c = await cluster(via);
    const broker = await c.startBroker();
    const { Client } = await import('@baton/worker-sdk');
    const admin = new Client({ address: c.address(broker) });
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
    const c = await cluster(via);
    for (let i = 0; i < 3; i++) await c.startBroker();
    await enqueue(c, 'brokers', 300, { ms: 20 });
    for (let i = 0; i < 3; i++) c.startWorker('brokers', `w${i}`, 4, c.address(c.brokers[i]));
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
    const c = await cluster(via, own.url);
    const broker = await c.startBroker({ BATON_LOG_LEVEL: 'error' });
    await enqueue(c, 'pg-restart', 300, { ms: 20 });
    c.startWorker('pg-restart', 'a', 4);
    c.startWorker('pg-restart', 'b', 4);
    await eventually(async () => (await completed(c, 'pg-restart')) >= 50, 30_000, 'progress');
    const health = createHealthClient(via === 'grpc' ? broker.grpcPort : broker.port);
    const fault = Date.now();
    await own.stop();
    await eventually(async () => (await health.status()) === 'NOT_SERVING', 15_000, 'health to report NOT_SERVING');
    const producer = c.client(c.address(broker));
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
    const c = await cluster(via);
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
    const c = await cluster(via);
    await c.startBroker();
    await c.startBroker();
    const leader = await eventually(() => c.brokers.find((b) => b.child.output().includes('elected to run background duties')), 20_000, 'a leader');
    const follower = c.brokers.find((b) => b !== leader)!;
    await enqueue(c, 'failover', 100, { ms: 5 }, { delayMs: 3000 });
    c.startWorker('failover', 'w', 8, c.address(follower));
    const fault = Date.now();
    await leader.child.kill('SIGKILL');
    await eventually(() => follower.child.output().includes('elected to run background duties'), 20_000, 'the follower to take over');
    const recovered = await c.firstCompletionAfter('failover', fault);
    await c.waitAllTerminal('failover');
    const figures = await c.figures({ scenario: 'leader killed, scheduled jobs', queue: 'failover', jobs: 100, faults: 1, recoveryMs: recovered - fault });
    expectHealthy(figures);
  }, 90_000);

  it('7. pool exhaustion: far more streams and producers than database connections', async () => {
    const c = await cluster(via);
    const broker = await c.startBroker({ BATON_POOL_SIZE: '3' });
    for (let i = 0; i < 6; i++) c.startWorker('crowd', `w${i}`, 8);
    const producers = Array.from({ length: 20 }, () => c.client(c.address(broker)));
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
    const c = await cluster(via);
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
    const c = await cluster(via);
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

  it('10. a stale worker: its lease expired and was given to another; its late result is refused, and it serves again', async () => {
    const c = await cluster(via);
    await c.startBroker();
    await enqueue(c, 'stale', 1, { ms: 2500 });
    const stale = c.startWorker('stale', 'stale', 1);
    await eventually(() => c.executions().some((e) => e.event === 'start'), 20_000, 'the job to start');
    stale.process.kill('SIGSTOP');
    const fault = Date.now();
    const fresh = c.startWorker('stale', 'fresh', 1);
    const recovered = await c.firstCompletionAfter('stale', fault, 30_000);
    stale.process.kill('SIGCONT');
    // The stale worker finishes its handler and reports; the broker must refuse it.
    await eventually(() => c.executions().filter((e) => e.event === 'end').length >= 2, 20_000, 'the stale handler to finish');
    // Its stream was ended when its session was found expired; it must have reconnected and serve again.
    await c.kill(fresh);
    await enqueue(c, 'stale', 1, { ms: 1 });
    await c.waitAllTerminal('stale', 30_000);
    const [job, again] = await query(c.databaseUrl, `select worker_id, attempt, status from baton_jobs where queue = 'stale' order by id`);
    expect(again).toMatchObject({ worker_id: 'stale', status: 'completed' });
    // The stale worker's report went out before it served the second job, so the broker had it by
    // now: it was refused, and the first job stays the fresh worker's.
    expect(job).toMatchObject({ worker_id: 'fresh', attempt: 2, status: 'completed' });
    const figures = await c.figures({ scenario: 'stale worker (SIGSTOP past TTL)', queue: 'stale', jobs: 2, faults: 1, recoveryMs: recovered - fault });
    expectHealthy(figures);
  }, 60_000);


  it('11. PostgreSQL SIGKILLed while a limited queue is served: the broker stays up and recovers', async () => {
    const own = new OwnPostgres();
    await own.start();
    cleanup.push(() => own.destroy());
    const c = await cluster(via, own.url);
    const broker = await c.startBroker({ BATON_LOG_LEVEL: 'error' });
    const admin = c.client(c.address(broker));
    await admin.setConcurrency('limited-crash', 4);
    admin.close();
    await enqueue(c, 'limited-crash', 300, { ms: 20 });
    c.startWorker('limited-crash', 'a', 4);
    c.startWorker('limited-crash', 'b', 4);
    await eventually(async () => (await completed(c, 'limited-crash')) >= 30, 30_000, 'progress');
    const recoveries: number[] = [];
    // Several crashes: each must find claims of the limited queue (transactions) under way.
    for (let crash = 0; crash < 3 && (await completed(c, 'limited-crash')) < 270; crash++) {
      await own.crash();
      await own.start();
      const back = Date.now();
      recoveries.push((await c.firstCompletionAfter('limited-crash', back)) - back);
      expect(broker.child.process.exitCode, broker.child.output()).toBeNull();
    }
    await c.waitAllTerminal('limited-crash');
    expect(broker.child.process.exitCode, broker.child.output()).toBeNull();
    const figures = await c.figures({
      scenario: `PostgreSQL SIGKILL ×${recoveries.length}, limited queue`,
      queue: 'limited-crash',
      jobs: 300,
      faults: recoveries.length,
      limit: 4,
      recoveryMs: Math.max(...recoveries),
    });
    expectHealthy(figures);
  }, 120_000);

  it('12. cancel storm: 600 jobs cancelled through other brokers while the holder claims them', async () => {
    const c = await cluster(via);
    for (let i = 0; i < 3; i++) await c.startBroker();
    const holder = c.address(c.brokers[0]);
    // Long jobs: only a cancel that reaches its handler ends one before the scenario's bound.
    const producer = c.client(holder);
    const ids: string[] = [];
    for (let done = 0; done < 600; done += 200) {
      const jobs = await producer.enqueueBatch(Array.from({ length: 200 }, () => ({ queue: 'storm-cancel', payload: { ms: 60_000 } })), { idsOnly: true });
      ids.push(...jobs.map((job) => job.id));
    }
    producer.close();
    for (let i = 0; i < 4; i++) c.startWorker('storm-cancel', `w${i}`, 50, holder);
    await eventually(() => c.executions().some((e) => e.event === 'start'), 20_000, 'claims to begin');
    // Cancels go through brokers 1 and 2 while broker 0 is claiming and handing out the jobs.
    const cancellers = [c.client(c.address(c.brokers[1])), c.client(c.address(c.brokers[2]))];
    // Each batch cancels held jobs (freeing their slots, so the holder claims more at once) together
    // with the jobs next in line for those claims: cancels and claims of one job cross.
    const held = 200;
    const order = [...new Set(Array.from({ length: ids.length / 25 }, (_, k) => [...ids.slice(25 * k, 25 * k + 25), ...ids.slice(held + 25 * k, held + 25 * k + 25)]).flat())];
    const fault = Date.now();
    let lastAnswered = fault;
    for (let i = 0; i < order.length; i += 50) {
      await Promise.all(order.slice(i, i + 50).map((id, n) => cancellers[n % 2].cancel(id)));
      lastAnswered = Date.now();
    }
    for (const canceller of cancellers) canceller.close();
    await c.waitAllTerminal('storm-cancel', 30_000);
    const settled = Date.now();
    const [stuck] = await query(c.databaseUrl, `select count(*)::int as n from baton_jobs where queue = 'storm-cancel' and status = 'running'`);
    expect(stuck.n).toBe(0);
    const executions = c.executions();
    // Every handler that started was aborted (its end recorded), none ran its full minute.
    expect(executions.filter((e) => e.event === 'end').length).toBe(executions.filter((e) => e.event === 'start').length);
    const figures = await c.figures({
      scenario: 'cancel storm (600 jobs, cancelled through 2 other brokers)',
      queue: 'storm-cancel',
      jobs: 600,
      faults: 600,
      recoveryMs: settled - lastAnswered,
      expected: 'cancelled',
    });
    expectHealthy(figures);
  }, 120_000);

  it('13. rescued jobs start again within 2 × TTL with 5,000+ jobs waiting behind them', async () => {
    const c = await cluster(via);
    await c.startBroker();
    // The victim's jobs are the oldest of the queue; the backlog is enqueued after them.
    await enqueue(c, 'rescue', 4, { ms: 3000 });
    await enqueue(c, 'rescue', 7000, { ms: 10 });
    const victim = c.startWorker('rescue', 'victim', 4);
    const held = await eventually(() => {
      const started = c.executions().filter((e) => e.event === 'start' && e.worker === 'victim');
      return started.length === 4 ? started : undefined;
    }, 30_000, 'the victim to hold the four oldest jobs');
    c.startWorker('rescue', 'steady', 8);
    await eventually(() => c.executions().some((e) => e.event === 'start' && e.worker === 'steady'), 30_000, 'the backlog to be worked on');
    const [{ waiting }] = await query(c.databaseUrl, `select count(*)::int as waiting from baton_jobs where queue = 'rescue' and status = 'pending'`);
    const fault = Date.now();
    // Frozen, not killed: its stream stays open, so only the lease TTL can free its jobs (a killed
    // worker's stream closes and its jobs are released at once).
    victim.process.kill('SIGSTOP');
    // "Recovered" means running again, not runnable again: each of the victim's jobs started anew.
    const restarts = await eventually(
      () => {
        const later = c.executions().filter((e) => e.event === 'start' && e.t > fault);
        const times = held.map((h) => later.find((e) => e.id === h.id)?.t);
        return times.every((t) => t !== undefined) ? (times as number[]) : undefined;
      },
      30_000,
      "the victim's jobs to start again",
    );
    const recoveryMs = Math.max(...restarts) - fault;
    await c.waitAllTerminal('rescue');
    const figures = await c.figures({ scenario: `worker frozen past its TTL, ${waiting} jobs waiting`, queue: 'rescue', jobs: 7004, faults: 1, recoveryMs });
    expectHealthy(figures);
    expect(waiting).toBeGreaterThanOrEqual(5000);
    expect(recoveryMs, 'rescued jobs started again within 2 × the lease TTL').toBeLessThanOrEqual(2 * LEASE_TTL_MS);
  }, 120_000);

  it('14. a broker-side timeout: the retry starts when its backoff ends', async () => {
    const c = await cluster(via);
    const broker = await c.startBroker();
    const producer = c.client(c.address(broker));
    const backoffMs = 500;
    const jobs = await producer.enqueueBatch(
      Array.from({ length: 5 }, () => ({
        queue: 'hung',
        payload: { ms: 1 },
        timeout: 300,
        retryPolicy: { initialBackoffMs: backoffMs, maxBackoffMs: backoffMs, jitter: 0 },
      })),
    );
    producer.close();
    // A worker that heartbeats but never reports nor stops: only the broker can time its jobs out.
    const { broker: rpc } = grpcClients(`http://${c.address(broker)}`);
    const hung = new LeaseDriver(rpc);
    hung.hello(['hung'], 5, 5, 'hung');
    const assigned = await hung.jobsReceived(5);
    const beats = setInterval(() => hung.send({ heartbeat: { leaseTokens: assigned.map((a) => a.leaseToken) } }), 300);
    cleanup.push(async () => {
      clearInterval(beats);
      hung.end();
      await hung.done;
    });
    c.startWorker('hung', 'healthy', 5);
    await c.waitAllTerminal('hung', 30_000);
    const rows = await query<{ id: string; timed_out_at: string }>(
      c.databaseUrl,
      `select id::text, errors->0->>'at' as timed_out_at from baton_jobs where queue = 'hung' and status = 'completed'`,
    );
    expect(rows.map((r) => r.id).sort()).toEqual(jobs.map((j) => j.id).sort());
    // From when each retry became due (the timeout's record plus the backoff) to its start.
    const starts = c.executions().filter((e) => e.event === 'start' && e.worker === 'healthy');
    const lateness = rows.map((row) => starts.find((s) => s.id === row.id)!.t - (new Date(row.timed_out_at).getTime() + backoffMs));
    const figures = await c.figures({ scenario: 'broker-side timeout, retry after 500 ms backoff', queue: 'hung', jobs: 5, faults: 5, recoveryMs: Math.max(...lateness) });
    expectHealthy(figures);
    expect(Math.max(...lateness), 'each retry started within a second of falling due').toBeLessThan(1000);
  }, 90_000);
}
