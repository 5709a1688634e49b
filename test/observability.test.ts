/**
 * What operators see of a running broker: `/metrics` in Prometheus text format (job counters from
 * this broker's own code paths, queue depth and oldest pending age from the database, latency
 * histograms, workers, database pools, RPCs by method and code, lease expiries, the process and
 * Node runtime metrics), structured logs with job, queue and worker fields, and the W3C
 * `traceparent` travelling from Enqueue to the worker's handler. Everything a Lease stream drives runs
 * on both ports: the Client and the workers on the main port, then on the native gRPC port
 * (BATON_GRPC_PORT), each port's run with a broker and database of its own (counters, queue depth
 * and logs are a broker's, so the two runs' figures stay apart).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, JobFailedError, NonRetryableError, Worker, type JobContext } from '@baton/worker-sdk';
import { startBroker, type RunningBroker } from '../server/src/broker.ts';
import { defaultConfig } from '../server/src/config.ts';
import { createLogger } from '../server/src/logger.ts';
import { createBrokerMetrics } from '../server/src/metrics/broker-metrics.ts';
import { grpcClients } from './support/broker.ts';
import { createTestDatabase } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import { metricValue } from './support/metrics.ts';
import { eventually } from './support/processes.ts';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/**
 * Moves a stored job's clock fields into the past, as if it had been enqueued (and run) that long
 * ago. Written for either layout of the job tables: one `baton_jobs` table, or live jobs and
 * finished ones apart (`baton_jobs` then being a view over both).
 */
async function backdate(url: string, id: string, column: 'run_at' | 'created_at', seconds: number): Promise<void> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const { rows } = await db.query(
      `select relname from pg_class where relname in ('baton_jobs', 'baton_live_jobs', 'baton_job_history') and relkind in ('r', 'p')`,
    );
    for (const { relname } of rows) {
      await db.query(`update ${relname} set ${column} = ${column} - $2 * interval '1 second' where id = $1`, [id, seconds]);
    }
  } finally {
    await db.end();
  }
}

// Both ports are one contract: each run with a broker (both ports open) and a database of its own.
describe.each(['main', 'grpc'] as const)('on the %s port', (port) => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let broker: RunningBroker;
  let client: Client;
  /** This run's port: the main one or BATON_GRPC_PORT. */
  const address = () => `127.0.0.1:${port === 'main' ? broker.port : broker.grpcPort}`;
  const logLines: Record<string, unknown>[] = [];
  const closers: (() => Promise<unknown> | void)[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const config = {
      ...defaultConfig(),
      port: 0,
      grpcPort: 0,
      databaseUrl: db.url,
      leaseTtlMs: 2000,
      heartbeatIntervalMs: 500,
      drainTimeoutMs: 2000,
      fallbackPollMs: 500,
      logLevel: 'debug' as const,
    };
    broker = await startBroker(
      config,
      createLogger('debug', (line) => logLines.push(JSON.parse(line))),
    );
    client = new Client({ address: address() });
  });

  afterAll(async () => {
    if (process.env.OBS_LOG) (await import('node:fs')).writeFileSync(`${process.env.OBS_LOG}.${port}`, logLines.map((l) => JSON.stringify(l)).join('\n'));
    for (const close of closers.reverse()) await close();
    client?.close();
    await broker?.stop();
    await db?.drop();
  });

  function startWorker(handlers: ConstructorParameters<typeof Worker>[0]['handlers'], workerId: string): Promise<void> {
    const worker = new Worker({ address: address(), workerId, handlers, logger: {} });
    closers.push(() => worker.close({ timeoutMs: 2000 }));
    return worker.start();
  }

  async function scrape(): Promise<string> {
    const res = await fetch(`${broker.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    return res.text();
  }

  describe('trace context', () => {
    it("arrives in the worker handler's context, as given to Enqueue", async () => {
      const seen = Promise.withResolvers<JobContext>();
      await startWorker({ 'obs-trace': (_payload, ctx) => seen.resolve(ctx) }, 'trace-worker');
      const job = await client.enqueue('obs-trace', { n: 1 }, { traceparent: TRACEPARENT });
      const ctx = await seen.promise;
      expect(ctx.id).toBe(job.id);
      expect(ctx.traceparent).toBe(TRACEPARENT);
      expect((await client.get(job.id)).traceparent).toBe(TRACEPARENT);
    });
  });

  describe('/metrics', () => {
    it('counts what this broker did, by queue, with latency histograms, depth and RPC codes', async () => {
      // One queue per worker: a worker serving several queues can be starved of jobs by the broker's
      // credit reservations (a dispatcher issue outside the scope of this test).
      let flaky = 0;
      await startWorker({ 'obs-ok': () => ({ ok: true }) }, 'metrics-worker');
      await startWorker(
        {
          'obs-bad': () => {
            throw new NonRetryableError('bad input: no such customer');
          },
        },
        'metrics-worker',
      );
      await startWorker(
        {
          'obs-flaky': () => {
            if (flaky++ === 0) throw new Error('temporary glitch');
            return 'fine';
          },
        },
        'metrics-worker',
      );
      const ok = await client.enqueueBatch([1, 2, 3].map((n) => ({ queue: 'obs-ok', payload: { n } })));
      await client.enqueue('obs-ok', { n: 4 }, { idempotencyKey: 'obs-key' });
      await client.enqueue('obs-ok', { n: 4 }, { idempotencyKey: 'obs-key' }); // a duplicate: not counted
      const bad = await client.enqueue('obs-bad', {});
      const flakyJob = await client.enqueue('obs-flaky', {}, { retryPolicy: { initialBackoffMs: 10, jitter: 0 } });
      const cancelMe = await client.enqueue('obs-idle', {}, { delay: 60_000 });
      // Waiting for an hour on a queue nobody serves: the age operators alert on.
      const waiting = await client.enqueue('obs-waiting', {});
      await backdate(db.url, waiting.id, 'run_at', 3600);
      for (const job of ok) await client.result(job.id);
      await expect(client.result(bad.id)).rejects.toBeInstanceOf(JobFailedError);
      await client.result(flakyJob.id);
      await client.cancel(cancelMe.id);
      await client.retry(cancelMe.id);
      await expect(client.get('999999')).rejects.toThrow(/NOT_FOUND/);

      const text = await scrape();
      expect(metricValue(text, 'baton_jobs_enqueued_total', { queue: 'obs-ok' })).toBe(4);
      expect(metricValue(text, 'baton_jobs_completed_total', { queue: 'obs-ok' })).toBe(4);
      expect(metricValue(text, 'baton_jobs_failed_total', { queue: 'obs-bad' })).toBe(1);
      expect(metricValue(text, 'baton_jobs_retried_total', { queue: 'obs-flaky', trigger: 'backoff' })).toBe(1);
      expect(metricValue(text, 'baton_jobs_completed_total', { queue: 'obs-flaky' })).toBe(1);
      expect(metricValue(text, 'baton_jobs_cancelled_total', { queue: 'obs-idle' })).toBe(1);
      expect(metricValue(text, 'baton_jobs_retried_total', { queue: 'obs-idle', trigger: 'manual' })).toBe(1);

      // Histograms: one start per first attempt, one run per attempt, cumulative buckets ending at +Inf.
      expect(metricValue(text, 'baton_job_start_latency_seconds_count', { queue: 'obs-ok' })).toBe(4);
      expect(metricValue(text, 'baton_job_run_duration_seconds_count', { queue: 'obs-flaky', outcome: 'failed' })).toBe(1);
      expect(metricValue(text, 'baton_job_run_duration_seconds_count', { queue: 'obs-flaky', outcome: 'completed' })).toBe(1);
      expect(metricValue(text, 'baton_job_start_latency_seconds_bucket', { queue: 'obs-ok', le: '+Inf' })).toBe(4);
      expect(metricValue(text, 'baton_job_start_latency_seconds_bucket', { queue: 'obs-ok', le: '3600' })).toBe(4);
      // Per attempt: the flaky job's retry after its backoff is a start of its own.
      expect(metricValue(text, 'baton_job_start_latency_seconds_count', { queue: 'obs-flaky' })).toBe(2);

      // Depth from the database, by status; this broker's workers and their jobs.
      expect(metricValue(text, 'baton_queue_jobs', { queue: 'obs-ok', status: 'completed' })).toBe(4);
      expect(metricValue(text, 'baton_queue_jobs', { queue: 'obs-bad', status: 'failed' })).toBe(1);
      expect(metricValue(text, 'baton_queue_jobs', { queue: 'obs-idle', status: 'pending' })).toBe(1);
      expect(metricValue(text, 'baton_queue_paused', { queue: 'obs-ok' })).toBe(0);
      const age = metricValue(text, 'baton_queue_oldest_pending_age_seconds', { queue: 'obs-waiting' });
      expect(age).toBeGreaterThanOrEqual(3600);
      expect(age).toBeLessThan(3600 + 120);
      expect(text).toMatch(/^baton_queue_oldest_pending_age_seconds\{queue="obs-ok"\} 0$/m);
      // Database pools: the hot path's has been used, and each reports its size.
      expect(
        metricValue(text, 'baton_db_pool_connections', { pool: 'hot', state: 'idle' }) +
          metricValue(text, 'baton_db_pool_connections', { pool: 'hot', state: 'busy' }),
      ).toBeGreaterThan(0);
      expect(metricValue(text, 'baton_db_pool_max_connections', { pool: 'hot' })).toBe(defaultConfig().poolSize);
      expect(metricValue(text, 'baton_db_pool_max_connections', { pool: 'orm' })).toBeGreaterThan(0);
      expect(text).toMatch(/^baton_db_pool_waiting\{pool="orm"\} \d+$/m);
      // The process and Node runtime metrics, as prom-client's collectDefaultMetrics names them.
      for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes']) {
        expect(metricValue(text, name)).toBeGreaterThan(0);
      }
      expect(text).toMatch(/^# TYPE nodejs_eventloop_lag_seconds gauge$/m);
      expect(text).toMatch(/^# TYPE nodejs_gc_duration_seconds histogram$/m);
      expect(metricValue(text, 'baton_workers_connected')).toBeGreaterThanOrEqual(2);
      expect(metricValue(text, 'baton_jobs_running')).toBe(0);

      // RPCs by method and status code.
      expect(metricValue(text, 'baton_rpc_requests_total', { service: 'baton.v1.Broker', method: 'EnqueueBatch', code: 'OK' })).toBe(1);
      expect(metricValue(text, 'baton_rpc_requests_total', { service: 'baton.v1.Broker', method: 'Get', code: 'NOT_FOUND' })).toBe(1);
      expect(metricValue(text, 'baton_rpc_duration_seconds_count', { service: 'baton.v1.Broker', method: 'Get' })).toBeGreaterThanOrEqual(1);

      // The whole text parses: HELP and TYPE once per family, every sample a name, labels and a number
      // (families are separated by blank lines).
      const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
      expect(new Set(types).size).toBe(types.length);
      for (const line of text.trimEnd().split('\n')) {
        if (line === '') continue;
        if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) (baton|process|nodejs)_[a-z0-9_]+ .+$/);
        else expect(line).toMatch(/^(baton|process|nodejs)_[a-z0-9_]+(\{([a-z_]+="[^"\\\n]*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$/);
      }
    });

    it("counts a retried job's start latency from its Retry, not from its first enqueue", async () => {
      let calls = 0;
      await startWorker(
        {
          'obs-late': () => {
            if (calls++ === 0) throw new NonRetryableError('the customer is not there yet');
            return 'done';
          },
        },
        'late-worker',
      );
      const job = await client.enqueue('obs-late', {});
      await expect(client.result(job.id)).rejects.toBeInstanceOf(JobFailedError);
      // The failure is two days old by now: enqueued, run and failed back then.
      await backdate(db.url, job.id, 'created_at', 2 * 86_400);
      await backdate(db.url, job.id, 'run_at', 2 * 86_400);
      await client.retry(job.id);
      await client.result(job.id);
      const text = await scrape();
      // Both attempts started at once: within a minute of becoming runnable.
      expect(metricValue(text, 'baton_job_start_latency_seconds_count', { queue: 'obs-late' })).toBe(2);
      expect(metricValue(text, 'baton_job_start_latency_seconds_bucket', { queue: 'obs-late', le: '60' })).toBe(2);
      expect(metricValue(text, 'baton_job_start_latency_seconds_sum', { queue: 'obs-late' })).toBeLessThan(60);
    });

    it('counts jobs taken back from a worker whose lease expired', async () => {
      const before = metricValue(await scrape(), 'baton_lease_expiries_total');
      const controller = new AbortController();
      const driver = new LeaseDriver(grpcClients(`http://${address()}`).broker, controller.signal);
      closers.push(() => controller.abort());
      await client.enqueue('obs-expire', {});
      driver.hello(['obs-expire'], 1, 1, 'silent-worker');
      await driver.jobsReceived(1);
      // The driver never heartbeats: once its session's TTL has run out on the database's clock, the
      // reaper (run here as well as on its timer) takes the job back, and counts it once.
      await eventually(
        async () => {
          await broker.maintenance.runOnce();
          return metricValue(await scrape(), 'baton_lease_expiries_total') > before;
        },
        20_000,
        'the lease of the silent worker to expire',
      );
      expect(metricValue(await scrape(), 'baton_lease_expiries_total')).toBe(before + 1);
    });

    it('answers 404 for unknown paths and 405 for writes', async () => {
      const missing = await fetch(`${broker.url}/nope`);
      expect(missing.status).toBe(404);
      expect(await missing.text()).toContain('/metrics');
      expect((await fetch(`${broker.url}/metrics`, { method: 'POST' })).status).toBe(405);
    });
  });

  describe('logs', () => {
    it('are JSON lines with job, queue and worker fields where jobs change hands', () => {
      const find = (msg: string, queue: string) => logLines.find((l) => l.msg === msg && l.queue === queue);
      expect(find('job enqueued', 'obs-ok')).toMatchObject({ level: 'debug', job: expect.any(String) });
      expect(find('job started', 'obs-ok')).toMatchObject({ worker: 'metrics-worker', attempt: 1 });
      expect(find('job completed', 'obs-ok')).toMatchObject({ worker: 'metrics-worker', ms: expect.any(Number) });
      expect(find('job attempt failed; will retry', 'obs-flaky')).toMatchObject({ level: 'info', error: 'temporary glitch' });
      expect(find('job failed for good', 'obs-bad')).toMatchObject({ level: 'warn', error: 'bad input: no such customer', worker: 'metrics-worker' });
      expect(find('job cancelled', 'obs-idle')).toMatchObject({ level: 'info', job: expect.any(String) });
      expect(logLines.find((l) => l.msg === 'worker connected' && l.worker === 'metrics-worker')).toBeDefined();
      for (const line of logLines) expect(line).toMatchObject({ time: expect.any(String), level: expect.any(String), msg: expect.any(String) });
    });
  });
});

describe('the broker metrics', () => {
  it('report pools and queue ages as read at scrape time, and keep the other gauges when a database read fails', async () => {
    const runAt = new Date(Date.now() - 90_000);
    let fail = false;
    const warnings: Record<string, unknown>[] = [];
    const metrics = createBrokerMetrics({
      // A store slice that answers from memory: what is under test is the rendering, not the reads.
      store: {
        jobCountByQueue: async () => (fail ? Promise.reject(new Error('database away')) : new Map([['q', { pending: 2 }]])),
        jobOldestPending: async () => new Map([['q', runAt]]),
        queueList: async () => [{ name: 'q', paused: false, concurrency: 0, defaultMaxAttempts: 3, defaultTimeoutMs: 0 }],
      },
      pools: { hot: () => ({ total: 3, idle: 1, waiting: 4, max: 10 }) },
      // Every scrape reads afresh.
      depthCacheMs: -1,
      processMetrics: false,
    });
    const logger = createLogger('debug', (line) => warnings.push(JSON.parse(line)));
    let text = await metrics.render(logger);
    expect(metricValue(text, 'baton_db_pool_connections', { pool: 'hot', state: 'busy' })).toBe(2);
    expect(metricValue(text, 'baton_db_pool_connections', { pool: 'hot', state: 'idle' })).toBe(1);
    expect(metricValue(text, 'baton_db_pool_waiting', { pool: 'hot' })).toBe(4);
    expect(metricValue(text, 'baton_db_pool_max_connections', { pool: 'hot' })).toBe(10);
    expect(metricValue(text, 'baton_queue_oldest_pending_age_seconds', { queue: 'q' })).toBeGreaterThanOrEqual(90);
    expect(metricValue(text, 'baton_queue_jobs', { queue: 'q', status: 'pending' })).toBe(2);
    expect(text).not.toMatch(/^(process|nodejs)_/m);

    fail = true;
    text = await metrics.render(logger);
    expect(metricValue(text, 'baton_queue_jobs', { queue: 'q', status: 'pending' })).toBe(2);
    expect(metricValue(text, 'baton_db_pool_waiting', { pool: 'hot' })).toBe(4);
    expect(warnings.find((w) => w.msg === 'could not collect a metric')).toMatchObject({ level: 'warn' });
  });

  it('count jobs handed back and timed out by the number given', async () => {
    const metrics = createBrokerMetrics({
      store: { jobCountByQueue: async () => new Map(), jobOldestPending: async () => new Map(), queueList: async () => [] },
      processMetrics: false,
    });
    const observer = metrics.observer(createLogger('error', () => {}));
    observer.leasesExpired(3);
    observer.timedOut(2);
    const text = await metrics.render();
    expect(metricValue(text, 'baton_lease_expiries_total')).toBe(3);
    expect(metricValue(text, 'baton_job_timeouts_total')).toBe(2);
  });
});
