/**
 * Chaos scenarios that push the workload itself: more streams than connections, retry and cancel
 * storms, a priority flood, a rescue behind a deep backlog, broker-side timeouts and their retries.
 * Run through ./scenarios.ts on each port.
 */
import { expect, it } from 'vitest';
import { LEASE_TTL_MS, type Port } from './harness.ts';
import { cluster, completed, enqueue, expectHealthy, registerCleanup } from './scenario-kit.ts';
import { grpcClients } from '../support/broker.ts';
import { LeaseDriver } from '../support/lease-driver.ts';
import { query } from '../support/database.ts';
import { eventually } from '../support/processes.ts';

/** The scenarios of this theme, with workers and producers on `via`. */
export function loadScenarios(via: Port): void {
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

  it('12. cancel storm: 600 jobs cancelled through other brokers while the holder claims them', async () => {
    const c = await cluster(via);
    for (let i = 0; i < 3; i++) await c.startBroker();
    const holder = c.address(c.brokers[0]);
    // Long jobs: only a cancel that reaches its handler ends one before the scenario's bound.
    const producer = c.client(holder);
    const ids: string[] = [];
    for (let done = 0; done < 600; done += 200) {
      const jobs = await producer.enqueueBatch(
        Array.from({ length: 200 }, () => ({ queue: 'storm-cancel', payload: { ms: 60_000 } })),
        { idsOnly: true },
      );
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
    const order = [
      ...new Set(
        Array.from({ length: ids.length / 25 }, (_, k) => [...ids.slice(25 * k, 25 * k + 25), ...ids.slice(held + 25 * k, held + 25 * k + 25)]).flat(),
      ),
    ];
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
    const held = await eventually(
      () => {
        const started = c.executions().filter((e) => e.event === 'start' && e.worker === 'victim');
        return started.length === 4 ? started : undefined;
      },
      30_000,
      'the victim to hold the four oldest jobs',
    );
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
    registerCleanup(async () => {
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
    const figures = await c.figures({
      scenario: 'broker-side timeout, retry after 500 ms backoff',
      queue: 'hung',
      jobs: 5,
      faults: 5,
      recoveryMs: Math.max(...lateness),
    });
    expectHealthy(figures);
    expect(Math.max(...lateness), 'each retry started within a second of falling due').toBeLessThan(1000);
  }, 90_000);
}
