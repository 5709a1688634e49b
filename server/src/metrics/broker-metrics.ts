import { Counter, Gauge, Histogram, type Registry as PromRegistry } from 'prom-client';
import type { JobObserver } from '../core/observer.ts';
import { JOB_STATUSES } from '../domain/job-status.ts';
import type { Logger } from '../logger.ts';
import type { StoreDriver } from '../store/driver.ts';
import { type PoolStats, registerPoolGauges } from './pool-gauges.ts';
import { processMetrics, Registry, renderAll } from './registry.ts';

/** Seconds, from a few milliseconds (a hot queue) to an hour (a backlog or a long job). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const RPC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface BrokerMetricsOptions {
  store: Pick<StoreDriver, 'jobCountByQueue' | 'jobOldestPending' | 'queueList'>;
  /** The database pools to report, by the `pool` label (e.g. `hot` and `orm`), read at scrape time. */
  pools?: Record<string, () => PoolStats>;
  /** How long a scrape reuses the previous one's database counts. @defaultValue 5000 */
  depthCacheMs?: number;
  /** Adds the process and Node runtime metrics (shared by every broker of the process). @defaultValue true */
  processMetrics?: boolean;
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
 * depth and the oldest pending job are the exception: database reads, the same on every broker
 * (use `max`, not `sum`). The process's CPU, memory, event loop and GC come after them.
 */
export function createBrokerMetrics(options: BrokerMetricsOptions) {
  const { store } = options;
  const depthCacheMs = options.depthCacheMs ?? 5000;
  const registry = new Registry();
  const registers = [registry];
  let sessions: () => Iterable<SessionView> = () => [];
  // A gauge whose read fails keeps its previous values (stale but present) rather than failing the
  // whole scrape; the failure is logged by the scrape that met it.
  let collectFailed: (name: string, error: unknown) => void = () => {};
  const guarded =
    (name: string, collect: () => Promise<void> | void): (() => Promise<void>) =>
    async () => {
      try {
        await collect();
      } catch (error) {
        collectFailed(name, error);
      }
    };

  const enqueued = new Counter({
    name: 'baton_jobs_enqueued_total',
    help: 'Jobs stored by Enqueue and EnqueueBatch on this broker (duplicates by idempotency key not counted).',
    labelNames: ['queue'] as const,
    registers,
  });
  const completed = new Counter({
    name: 'baton_jobs_completed_total',
    help: 'Jobs completed by workers connected to this broker.',
    labelNames: ['queue'] as const,
    registers,
  });
  const failed = new Counter({
    name: 'baton_jobs_failed_total',
    help: 'Jobs that failed for good (dead-lettered) on a worker connected to this broker.',
    labelNames: ['queue'] as const,
    registers,
  });
  const retried = new Counter({
    name: 'baton_jobs_retried_total',
    help: 'Jobs sent back for another attempt: trigger="backoff" after a failed attempt, trigger="manual" by the Retry RPC.',
    labelNames: ['queue', 'trigger'] as const,
    registers,
  });
  const cancelled = new Counter({
    name: 'baton_jobs_cancelled_total',
    help: 'Jobs that became CANCELLED through this broker (at once, or when their handler stopped).',
    labelNames: ['queue'] as const,
    registers,
  });
  const leaseExpiries = new Counter({
    name: 'baton_lease_expiries_total',
    help: 'Jobs taken back from workers whose lease expired (counted by the leader that reaped them).',
    registers,
  });
  const timeouts = new Counter({
    name: 'baton_job_timeouts_total',
    help: 'Attempts failed by the broker because they outlived their timeout (leader only).',
    registers,
  });
  const scheduleTicks = new Counter({
    name: 'baton_schedule_ticks_total',
    help: 'Cron ticks this broker decided while it led: enqueued (one job), skipped_overlap (the previous job still live) or duplicate (decided already, by this broker or another).',
    labelNames: ['schedule', 'outcome'] as const,
    registers,
  });
  const rateLimited = new Counter({
    name: 'baton_rate_limited_total',
    help: "Claims by this broker that a queue's rate limit held back (fewer jobs started than asked because a window's starts were used up).",
    labelNames: ['queue'] as const,
    registers,
  });
  const startLatency = new Histogram({
    name: 'baton_job_start_latency_seconds',
    help: 'Time from an attempt becoming runnable (its run_at: enqueue, the end of a delay or backoff, a Retry) to its start, per attempt, for attempts started by this broker.',
    labelNames: ['queue'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const runDuration = new Histogram({
    name: 'baton_job_run_duration_seconds',
    help: 'Time from handing an attempt to a worker until its result arrived, by outcome (completed or failed).',
    labelNames: ['queue', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const workersConnected: Gauge = new Gauge({
    name: 'baton_workers_connected',
    help: 'Lease streams open on this broker (after hello).',
    registers,
    collect: guarded('baton_workers_connected', () => {
      let open = 0;
      for (const session of sessions()) if (session.sessionId) open++;
      workersConnected.set(open);
    }),
  });
  const jobsRunning: Gauge = new Gauge({
    name: 'baton_jobs_running',
    help: 'Jobs RUNNING on workers connected to this broker.',
    registers,
    collect: guarded('baton_jobs_running', () => {
      let held = 0;
      for (const session of sessions()) held += session.heldCount;
      jobsRunning.set(held);
    }),
  });

  // One database read serves the queue gauges, and is reused for `depthCacheMs`.
  type QueueSnapshot = {
    counts: Awaited<ReturnType<StoreDriver['jobCountByQueue']>>;
    paused: Map<string, boolean>;
    oldest: Map<string, Date>;
  };
  let snapshot: Promise<QueueSnapshot> | null = null;
  let snapshotAt = 0;
  const readQueues = () => {
    if (!snapshot || Date.now() - snapshotAt > depthCacheMs) {
      snapshotAt = Date.now();
      snapshot = Promise.all([store.jobCountByQueue(), store.queueList(), store.jobOldestPending()]).then(([counts, queues, oldest]) => ({
        counts,
        paused: new Map(queues.map((q) => [q.name, q.paused])),
        oldest,
      }));
      snapshot.catch(() => (snapshot = null));
    }
    return snapshot;
  };
  const queueJobs: Gauge<'queue' | 'status'> = new Gauge({
    name: 'baton_queue_jobs',
    help: `Jobs per queue and status, counted in the database (cached ${depthCacheMs / 1000} s; the same on every broker).`,
    labelNames: ['queue', 'status'] as const,
    registers,
    collect: guarded('baton_queue_jobs', async () => {
      const { counts } = await readQueues();
      queueJobs.reset();
      for (const [queue, byStatus] of counts) {
        for (const status of JOB_STATUSES) queueJobs.set({ queue, status }, byStatus[status] ?? 0);
      }
    }),
  });
  const queuePaused: Gauge<'queue'> = new Gauge({
    name: 'baton_queue_paused',
    help: '1 when the queue is paused.',
    labelNames: ['queue'] as const,
    registers,
    collect: guarded('baton_queue_paused', async () => {
      const { paused } = await readQueues();
      queuePaused.reset();
      for (const [queue, value] of paused) queuePaused.set({ queue }, value ? 1 : 0);
    }),
  });
  const oldestPending: Gauge<'queue'> = new Gauge({
    name: 'baton_queue_oldest_pending_age_seconds',
    help: `Age of each queue's oldest PENDING job: now minus the run_at it became runnable at, 0 when none (read from the database, cached ${depthCacheMs / 1000} s; the same on every broker).`,
    labelNames: ['queue'] as const,
    registers,
    collect: guarded('baton_queue_oldest_pending_age_seconds', async () => {
      const { paused, oldest } = await readQueues();
      // The age is taken now, not when the cached read was made, so it keeps growing between reads.
      const now = Date.now();
      oldestPending.reset();
      for (const queue of new Set([...paused.keys(), ...oldest.keys()])) {
        const runAt = oldest.get(queue);
        oldestPending.set({ queue }, runAt ? Math.max(0, now - runAt.getTime()) / 1000 : 0);
      }
    }),
  });

  registerPoolGauges(registry, options.pools ?? {}, guarded);

  const rpcs = new Counter({
    name: 'baton_rpc_requests_total',
    help: 'RPCs answered by this broker, by method and gRPC status code (streams counted when they end).',
    labelNames: ['service', 'method', 'code'] as const,
    registers,
  });
  const rpcDuration = new Histogram({
    name: 'baton_rpc_duration_seconds',
    help: 'Time to answer unary RPCs.',
    labelNames: ['service', 'method'] as const,
    buckets: RPC_BUCKETS,
    registers,
  });
  const rendered: PromRegistry[] = options.processMetrics === false ? [registry] : [registry, processMetrics()];

  return {
    registry,
    enqueued,
    completed,
    failed,
    retried,
    cancelled,
    leaseExpiries,
    timeouts,
    scheduleTicks,
    rateLimited,
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
            // From run_at, not created_at: a job retried days after its enqueue waited only since the Retry.
            startLatency.observe({ queue: job.queue }, Math.max(0, now - job.runAt.getTime()) / 1000);
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
          if (jobs > 0) leaseExpiries.inc(jobs);
        },
        timedOut(jobs) {
          if (jobs > 0) timeouts.inc(jobs);
        },
      };
    },

    /** The text format, for the `/metrics` response: this broker's metrics, then the process's. */
    render(logger?: Logger): Promise<string> {
      collectFailed = (name, error) => logger?.warn('could not collect a metric', { metric: name, error });
      return renderAll(rendered);
    },
  };
}

export type BrokerMetrics = ReturnType<typeof createBrokerMetrics>;
