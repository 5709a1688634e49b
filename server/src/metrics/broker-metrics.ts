import type { JobObserver } from '../core/observer.ts';
import { JOB_STATUSES } from '../domain/job-status.ts';
import type { Logger } from '../logger.ts';
import type { StoreDriver } from '../store/driver.ts';
import { Registry } from './registry.ts';

/** Seconds, from a few milliseconds (a hot queue) to an hour (a backlog or a long job). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const RPC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface BrokerMetricsOptions {
  store: Pick<StoreDriver, 'jobCountByQueue' | 'queueList'>;
  /** How long a scrape reuses the previous one's database counts. @defaultValue 5000 */
  depthCacheMs?: number;
}

/** What the metrics need to know about this broker's open Lease streams, read at scrape time. */
export interface SessionView {
  readonly sessionId: string;
  readonly heldCount: number;
}

/**
 * Every metric one broker exposes at `/metrics`. Job counters count what happened in this broker's
 * own code paths (its RPCs, its Lease streams, and the background duties while it leads), never the
 * cluster-wide notifications, so summing them over all brokers gives the cluster's totals. Queue
 * depth is the exception: a database count, the same on every broker (use `max`, not `sum`).
 */
export function createBrokerMetrics(options: BrokerMetricsOptions) {
  const { store } = options;
  const depthCacheMs = options.depthCacheMs ?? 5000;
  const registry = new Registry();
  let sessions: () => Iterable<SessionView> = () => [];

  const enqueued = registry.counter(
    'baton_jobs_enqueued_total',
    'Jobs stored by Enqueue and EnqueueBatch on this broker (duplicates by idempotency key not counted).',
    ['queue'],
  );
  const completed = registry.counter('baton_jobs_completed_total', 'Jobs completed by workers connected to this broker.', ['queue']);
  const failed = registry.counter('baton_jobs_failed_total', 'Jobs that failed for good (dead-lettered) on a worker connected to this broker.', ['queue']);
  const retried = registry.counter(
    'baton_jobs_retried_total',
    'Jobs sent back for another attempt: trigger="backoff" after a failed attempt, trigger="manual" by the Retry RPC.',
    ['queue', 'trigger'],
  );
  const cancelled = registry.counter('baton_jobs_cancelled_total', 'Jobs that became CANCELLED through this broker (at once, or when their handler stopped).', [
    'queue',
  ]);
  const leaseExpiries = registry.counter(
    'baton_lease_expiries_total',
    'Jobs taken back from workers whose lease expired (counted by the leader that reaped them).',
  );
  const timeouts = registry.counter('baton_job_timeouts_total', 'Attempts failed by the broker because they outlived their timeout (leader only).');
  const startLatency = registry.histogram(
    'baton_job_start_latency_seconds',
    "Time from enqueue to the first attempt's start, for jobs started by this broker. Includes any requested delay.",
    ['queue'],
    LATENCY_BUCKETS,
  );
  const runDuration = registry.histogram(
    'baton_job_run_duration_seconds',
    'Time from handing an attempt to a worker until its result arrived, by outcome (completed or failed).',
    ['queue', 'outcome'],
    LATENCY_BUCKETS,
  );
  registry.gauge('baton_workers_connected', 'Lease streams open on this broker (after hello).', [], (gauge) => {
    let open = 0;
    for (const session of sessions()) if (session.sessionId) open++;
    gauge.set(undefined, open);
  });
  registry.gauge('baton_jobs_running', 'Jobs RUNNING on workers connected to this broker.', [], (gauge) => {
    let held = 0;
    for (const session of sessions()) held += session.heldCount;
    gauge.set(undefined, held);
  });

  // One database read serves both queue gauges, and is reused for `depthCacheMs`.
  let snapshot: Promise<{ counts: Awaited<ReturnType<StoreDriver['jobCountByQueue']>>; paused: Map<string, boolean> }> | null = null;
  let snapshotAt = 0;
  const readQueues = () => {
    if (!snapshot || Date.now() - snapshotAt > depthCacheMs) {
      snapshotAt = Date.now();
      snapshot = Promise.all([store.jobCountByQueue(), store.queueList()]).then(([counts, queues]) => ({
        counts,
        paused: new Map(queues.map((q) => [q.name, q.paused])),
      }));
      snapshot.catch(() => (snapshot = null));
    }
    return snapshot;
  };
  registry.gauge(
    'baton_queue_jobs',
    `Jobs per queue and status, counted in the database (cached ${depthCacheMs / 1000} s; the same on every broker).`,
    ['queue', 'status'],
    async (gauge) => {
      const { counts } = await readQueues();
      gauge.reset();
      for (const [queue, byStatus] of counts) {
        for (const status of JOB_STATUSES) gauge.set({ queue, status }, byStatus[status] ?? 0);
      }
    },
  );
  registry.gauge('baton_queue_paused', '1 when the queue is paused.', ['queue'], async (gauge) => {
    const { paused } = await readQueues();
    gauge.reset();
    for (const [queue, value] of paused) gauge.set({ queue }, value ? 1 : 0);
  });

  const rpcs = registry.counter('baton_rpc_requests_total', 'RPCs answered by this broker, by method and gRPC status code (streams counted when they end).', [
    'service',
    'method',
    'code',
  ]);
  const rpcDuration = registry.histogram('baton_rpc_duration_seconds', 'Time to answer unary RPCs.', ['service', 'method'], RPC_BUCKETS);

  return {
    registry,
    enqueued,
    completed,
    failed,
    retried,
    cancelled,
    leaseExpiries,
    timeouts,
    startLatency,
    runDuration,
    rpcs,
    rpcDuration,

    /** Where to find the open Lease streams (the broker service owns them). */
    bindSessions(view: () => Iterable<SessionView>): void {
      sessions = view;
    },

    /** The observer the Lease streams and background duties report to: counts, timings and logs. */
    observer(logger: Logger): JobObserver {
      return {
        started(jobs, worker) {
          const now = Date.now();
          for (const job of jobs) {
            if (job.attempt === 1) startLatency.observe({ queue: job.queue }, Math.max(0, now - job.createdAt.getTime()) / 1000);
            logger.debug('job started', { job: job.id, queue: job.queue, worker, attempt: job.attempt });
          }
        },
        finished(attempts, worker) {
          for (const a of attempts) {
            const fields = { job: a.id, queue: a.queue, worker, ms: Math.round(a.runMs) };
            runDuration.observe({ queue: a.queue, outcome: a.status === 'completed' ? 'completed' : 'failed' }, a.runMs / 1000);
            switch (a.status) {
              case 'completed':
                completed.inc({ queue: a.queue });
                logger.debug('job completed', fields);
                break;
              case 'scheduled':
              case 'pending':
                retried.inc({ queue: a.queue, trigger: 'backoff' });
                logger.info('job attempt failed; will retry', { ...fields, error: a.error });
                break;
              case 'failed':
                failed.inc({ queue: a.queue });
                logger.warn('job failed for good', { ...fields, error: a.error });
                break;
              case 'cancelled':
                cancelled.inc({ queue: a.queue });
                logger.info('job cancelled: its handler stopped', fields);
                break;
            }
          }
        },
        leasesExpired(jobs) {
          if (jobs > 0) leaseExpiries.inc(undefined, jobs);
        },
        timedOut(jobs) {
          if (jobs > 0) timeouts.inc(undefined, jobs);
        },
      };
    },

    /** The text format, for the `/metrics` response. */
    render(logger?: Logger): Promise<string> {
      return registry.render((name, error) => logger?.warn('could not collect a metric', { metric: name, error }));
    },
  };
}

export type BrokerMetrics = ReturnType<typeof createBrokerMetrics>;
