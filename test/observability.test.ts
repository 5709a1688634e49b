/**
 * What operators see of a running broker: `/metrics` in Prometheus text format (job counters from
 * this broker's own code paths, queue depth from the database, latency histograms, workers, RPCs by
 * method and code, lease expiries), structured logs with job, queue and worker fields, and the W3C
 * `traceparent` travelling from Enqueue to the worker's handler. Everything a Lease stream drives runs
 * on both ports: the Client and the workers on the main port, then on the native gRPC port
 * (BATON_GRPC_PORT), each port's run with a broker and database of its own (counters, queue depth
 * and logs are a broker's, so the two runs' figures stay apart).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, JobFailedError, NonRetryableError, Worker, type JobContext } from '@baton/worker-sdk';
import { startBroker, type RunningBroker } from '../server/src/broker.ts';
import { defaultConfig } from '../server/src/config.ts';
import { createLogger } from '../server/src/logger.ts';
import { Counter, Histogram, Registry } from '../server/src/metrics/registry.ts';
import { grpcClients } from './support/broker.ts';
import { createTestDatabase } from './support/database.ts';
import { LeaseDriver } from './support/lease-driver.ts';
import { eventually } from './support/processes.ts';

/** The value of one sample, e.g. value(text, 'baton_jobs_completed_total', { queue: 'q' }); 0 when absent. */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = match[2] ? match[2].split(/,(?=[a-zA-Z_]+=")/) : [];
    if (wanted.every((w) => have.includes(w)) && have.length === wanted.length) return Number(match[3]);
  }
  return 0;
}

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

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
      for (const job of ok) await client.result(job.id);
      await expect(client.result(bad.id)).rejects.toBeInstanceOf(JobFailedError);
      await client.result(flakyJob.id);
      await client.cancel(cancelMe.id);
      await client.retry(cancelMe.id);
      await expect(client.get('999999')).rejects.toThrow(/NOT_FOUND/);

      const text = await scrape();
      expect(value(text, 'baton_jobs_enqueued_total', { queue: 'obs-ok' })).toBe(4);
      expect(value(text, 'baton_jobs_completed_total', { queue: 'obs-ok' })).toBe(4);
      expect(value(text, 'baton_jobs_failed_total', { queue: 'obs-bad' })).toBe(1);
      expect(value(text, 'baton_jobs_retried_total', { queue: 'obs-flaky', trigger: 'backoff' })).toBe(1);
      expect(value(text, 'baton_jobs_completed_total', { queue: 'obs-flaky' })).toBe(1);
      expect(value(text, 'baton_jobs_cancelled_total', { queue: 'obs-idle' })).toBe(1);
      expect(value(text, 'baton_jobs_retried_total', { queue: 'obs-idle', trigger: 'manual' })).toBe(1);

      // Histograms: one start per first attempt, one run per attempt, cumulative buckets ending at +Inf.
      expect(value(text, 'baton_job_start_latency_seconds_count', { queue: 'obs-ok' })).toBe(4);
      expect(value(text, 'baton_job_run_duration_seconds_count', { queue: 'obs-flaky', outcome: 'failed' })).toBe(1);
      expect(value(text, 'baton_job_run_duration_seconds_count', { queue: 'obs-flaky', outcome: 'completed' })).toBe(1);
      expect(value(text, 'baton_job_start_latency_seconds_bucket', { queue: 'obs-ok', le: '+Inf' })).toBe(4);
      expect(value(text, 'baton_job_start_latency_seconds_bucket', { queue: 'obs-ok', le: '3600' })).toBe(4);

      // Depth from the database, by status; this broker's workers and their jobs.
      expect(value(text, 'baton_queue_jobs', { queue: 'obs-ok', status: 'completed' })).toBe(4);
      expect(value(text, 'baton_queue_jobs', { queue: 'obs-bad', status: 'failed' })).toBe(1);
      expect(value(text, 'baton_queue_jobs', { queue: 'obs-idle', status: 'pending' })).toBe(1);
      expect(value(text, 'baton_queue_paused', { queue: 'obs-ok' })).toBe(0);
      expect(value(text, 'baton_workers_connected')).toBeGreaterThanOrEqual(2);
      expect(value(text, 'baton_jobs_running')).toBe(0);

      // RPCs by method and status code.
      expect(value(text, 'baton_rpc_requests_total', { service: 'baton.v1.Broker', method: 'EnqueueBatch', code: 'OK' })).toBe(1);
      expect(value(text, 'baton_rpc_requests_total', { service: 'baton.v1.Broker', method: 'Get', code: 'NOT_FOUND' })).toBe(1);
      expect(value(text, 'baton_rpc_duration_seconds_count', { service: 'baton.v1.Broker', method: 'Get' })).toBeGreaterThanOrEqual(1);

      // The whole text parses: HELP and TYPE once per family, every sample a name, labels and a number.
      const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
      expect(new Set(types).size).toBe(types.length);
      for (const line of text.trimEnd().split('\n')) {
        if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) baton_[a-z_]+ .+$/);
        else expect(line).toMatch(/^baton_[a-z_]+(\{([a-z_]+="[^"\\\n]*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$/);
      }
    });

    it('counts jobs taken back from a worker whose lease expired', async () => {
      const before = value(await scrape(), 'baton_lease_expiries_total');
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
          return value(await scrape(), 'baton_lease_expiries_total') > before;
        },
        20_000,
        'the lease of the silent worker to expire',
      );
      expect(value(await scrape(), 'baton_lease_expiries_total')).toBe(before + 1);
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

describe('the metrics registry', () => {
  it('renders counters, gauges and histograms in the text format, escaping label values', async () => {
    const registry = new Registry();
    const c: Counter<'queue'> = registry.counter('t_total', 'A counter\nwith a newline.', ['queue']);
    c.inc({ queue: 'a"b\\c\nd' }, 2);
    registry.gauge('t_gauge', 'A gauge.', [], (g) => g.set(undefined, 1.5));
    const hist: Histogram<never> = registry.histogram('t_seconds', 'A histogram.', [], [0.1, 1]);
    for (const v of [0.05, 0.5, 5]) hist.observe(undefined, v);
    expect(await registry.render()).toBe(
      [
        '# HELP t_total A counter\\nwith a newline.',
        '# TYPE t_total counter',
        't_total{queue="a\\"b\\\\c\\nd"} 2',
        '# HELP t_gauge A gauge.',
        '# TYPE t_gauge gauge',
        't_gauge 1.5',
        '# HELP t_seconds A histogram.',
        '# TYPE t_seconds histogram',
        't_seconds_bucket{le="0.1"} 1',
        't_seconds_bucket{le="1"} 2',
        't_seconds_bucket{le="+Inf"} 3',
        't_seconds_sum 5.55',
        't_seconds_count 3',
        '',
      ].join('\n'),
    );
    expect(() => registry.counter('t_total', 'again')).toThrow(/twice/);
  });
});
