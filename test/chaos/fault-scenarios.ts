/**
 * Chaos scenarios that break the machinery under a running workload: workers and brokers killed or
 * frozen, the leader lost, PostgreSQL restarted, killed or its backends terminated. Run through
 * ./scenarios.ts on each port.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { createHealthClient } from './health-client.ts';
import type { Port } from './harness.ts';
import { cluster, completed, enqueue, expectHealthy, registerCleanup } from './scenario-kit.ts';
import { query } from '../support/database.ts';
import { OwnPostgres } from '../support/own-postgres.ts';
import { eventually } from '../support/processes.ts';

/** The scenarios of this theme, with workers and producers on `via`. */
export function faultScenarios(via: Port): void {
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
    registerCleanup(() => own.destroy());
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
    const figures = await c.figures({
      scenario: `PostgreSQL restart (down ${back - fault} ms)`,
      queue: 'pg-restart',
      jobs: 300,
      faults: 1,
      recoveryMs: recovered - back,
    });
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
      const killed = await query(c.databaseUrl, `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`, [
        database,
      ]);
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
    registerCleanup(() => own.destroy());
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
}
