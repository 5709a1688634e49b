import type { ServiceImpl } from '@connectrpc/connect';
import { durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Admin, type RateLimit } from '@baton/worker-sdk/gen/admin';
import { failedPrecondition, invalidArgument, notFound } from '../domain/errors.ts';
import type { Logger } from '../logger.ts';
import { createScheduleAdmin } from './schedule-admin.ts';
import { JOB_STATUSES, type JobStatus } from '../domain/job-status.ts';
import type { QueueSettings, RateLimits } from '../domain/queue.ts';
import type { QueueUpsertParams, StoreDriver } from '../store/driver.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import { createBulkService } from './bulk-service.ts';
import { checkQueueName, durationMs } from './request-checks.ts';

function toWireQueue(queue: QueueSettings) {
  return {
    name: queue.name,
    concurrency: queue.concurrency,
    paused: queue.paused,
    defaultMaxAttempts: queue.defaultMaxAttempts,
    defaultTimeout: queue.defaultTimeoutMs > 0 ? durationFromMs(queue.defaultTimeoutMs) : undefined,
    rateLimit: queue.rateLimits
      ? {
          limit: queue.rateLimits.limit,
          interval: durationFromMs(queue.rateLimits.intervalMs),
          keyLimit: queue.rateLimits.keyLimit,
          keyInterval: durationFromMs(queue.rateLimits.keyIntervalMs),
        }
      : undefined,
    fairKeys: queue.fairKeys !== undefined,
    keyConcurrency: queue.fairKeys?.keyConcurrency ?? 0,
  };
}

/** A RateLimit checked: limits 0-1000000, intervals 1 ms to 1 day (1 s when unset). */
function checkRateLimit(rate: RateLimit): RateLimits {
  const interval = (duration: RateLimit['interval'], field: string) => {
    if (!duration) return 1000;
    const ms = durationMs(duration, field);
    if (ms < 1 || ms > 86_400_000) throw invalidArgument(`${field} must be 1 ms to 1 day, got ${ms} ms`);
    return ms;
  };
  for (const [field, value] of [
    ['rate_limit.limit', rate.limit],
    ['rate_limit.key_limit', rate.keyLimit],
  ] as const) {
    if (value < 0 || value > 1_000_000) throw invalidArgument(`${field} must be 0 (no limit) to 1000000, got ${value}`);
  }
  return {
    limit: rate.limit,
    intervalMs: interval(rate.interval, 'rate_limit.interval'),
    keyLimit: rate.keyLimit,
    keyIntervalMs: interval(rate.keyInterval, 'rate_limit.key_interval'),
  };
}

/** `baton.v1.Admin`: queue counts and settings, the connected workers, and bulk actions (./bulk-service.ts), for operators. */
export function createAdminService(store: StoreDriver, logger?: Logger, metrics?: Pick<BrokerMetrics, 'cancelled' | 'retried'>): ServiceImpl<typeof Admin> {
  async function requireQueue(name: string): Promise<QueueSettings> {
    const queue = await store.queueGet({ name: checkQueueName(name) });
    if (!queue) throw notFound(`queue "${name}" does not exist; it is created by its first Enqueue or by SetQueueConcurrency`);
    return queue;
  }

  return {
    ...createBulkService({ store, logger, metrics }),
    ...createScheduleAdmin(store, logger),

    async getQueueStats(request) {
      request.queues.forEach((queue, i) => checkQueueName(queue, `queues[${i}]`));
      const minutes = request.throughputMinutes;
      if (minutes < 0 || minutes > 60) throw invalidArgument(`throughput_minutes must be 0-60, got ${minutes}`);
      const [queues, counts, throughput, oldest] = await Promise.all([
        store.queueList(),
        store.jobCountByQueue(),
        store.jobThroughput({ minutes }),
        store.jobOldestPending(),
      ]);
      const wanted = new Set(request.queues);
      return {
        queues: queues
          .filter((queue) => wanted.size === 0 || wanted.has(queue.name))
          .map((queue) => {
            const c = counts.get(queue.name) ?? {};
            // QueueStats has a count field named after each status.
            const byStatus = Object.fromEntries(JOB_STATUSES.map((status) => [status, BigInt(c[status] ?? 0)])) as Record<JobStatus, bigint>;
            return {
              queue: queue.name,
              ...byStatus,
              total: Object.values(c).reduce((sum, value) => sum + BigInt(value ?? 0), 0n),
              settings: toWireQueue(queue),
              completedPerMinute: perMinute(throughput.get(queue.name)?.completed, minutes),
              failedPerMinute: perMinute(throughput.get(queue.name)?.failed, minutes),
              startedPerMinute: perMinute(throughput.get(queue.name)?.started, minutes),
              meanWaitMsPerMinute: throughput.get(queue.name)?.meanWaitMs ?? new Array<number>(minutes).fill(0),
              oldestPendingRunAt: oldest.has(queue.name) ? timestampFromDate(oldest.get(queue.name)!) : undefined,
            };
          }),
      };
    },

    async pauseQueue(request) {
      await requireQueue(request.queue);
      logger?.info('queue paused', { queue: request.queue });
      return { queue: toWireQueue(await store.queueUpsert({ name: request.queue, paused: true })) };
    },

    async resumeQueue(request) {
      await requireQueue(request.queue);
      logger?.info('queue resumed', { queue: request.queue });
      return { queue: toWireQueue(await store.queueUpsert({ name: request.queue, paused: false })) };
    },

    async setQueueConcurrency(request) {
      checkQueueName(request.queue);
      checkConcurrency(request.concurrency);
      logger?.info('queue concurrency set', { queue: request.queue, concurrency: request.concurrency });
      return { queue: toWireQueue(await store.queueUpsert({ name: request.queue, concurrency: request.concurrency })) };
    },

    async listQueues() {
      return { queues: (await store.queueList()).map(toWireQueue) };
    },

    async updateQueue(request) {
      const change: QueueUpsertParams = { name: checkQueueName(request.queue) };
      if (request.concurrency !== undefined) change.concurrency = checkConcurrency(request.concurrency);
      if (request.defaultMaxAttempts !== undefined) {
        if (request.defaultMaxAttempts < 1 || request.defaultMaxAttempts > 1000) {
          throw invalidArgument(`default_max_attempts must be 1-1000, got ${request.defaultMaxAttempts}`);
        }
        change.defaultMaxAttempts = request.defaultMaxAttempts;
      }
      if (request.defaultTimeout) change.defaultTimeoutMs = durationMs(request.defaultTimeout, 'default_timeout');
      if (request.rateLimit) change.rateLimits = checkRateLimit(request.rateLimit);
      const current = await requireQueue(request.queue);
      if (request.fairKeys !== undefined || request.keyConcurrency !== undefined) {
        const keyConcurrency = request.keyConcurrency ?? current.fairKeys?.keyConcurrency ?? 0;
        if (keyConcurrency < 0 || keyConcurrency > 1_000_000) throw invalidArgument(`key_concurrency must be 0 (no limit) to 1000000, got ${keyConcurrency}`);
        const on = keyConcurrency > 0 || (request.fairKeys ?? current.fairKeys !== undefined);
        if (request.fairKeys === false && keyConcurrency > 0)
          throw invalidArgument('fair_keys false with a key_concurrency above 0: a limit per key needs fair keys');
        change.fairKeys = on ? { keyConcurrency } : null;
      }
      const rated = change.rateLimits ? change.rateLimits.limit > 0 || change.rateLimits.keyLimit > 0 : current.rateLimits !== undefined;
      const fair = change.fairKeys !== undefined ? change.fairKeys !== null : current.fairKeys !== undefined;
      if (rated && fair) {
        throw failedPrecondition(`queue "${request.queue}" would have both rate limits and fair keys; a queue has one or the other (docs/scheduling.md)`);
      }
      // Between the check and the upsert the queue cannot disappear: queues are never deleted.
      logger?.info('queue settings updated', { ...change, queue: change.name });
      return { queue: toWireQueue(await store.queueUpsert(change)) };
    },

    async listWorkers(request) {
      const queue = request.queue ? checkQueueName(request.queue) : '';
      const sessions = await store.sessionList();
      return {
        sessions: sessions
          .filter((session) => !queue || session.queues.includes(queue))
          .map((session) => ({
            sessionId: session.id,
            workerId: session.workerId,
            brokerId: session.brokerId,
            queues: session.queues,
            capacity: session.capacity,
            jobsHeld: session.jobsHeld,
            connectedAt: timestampFromDate(session.connectedAt),
            leaseExpiresAt: timestampFromDate(session.expiresAt),
          })),
      };
    },
  };
}

/** A per-minute series as int64s; a queue with nothing finished in the window gets zeros. */
function perMinute(series: number[] | undefined, minutes: number): bigint[] {
  return series ? series.map(BigInt) : new Array<bigint>(minutes).fill(0n);
}

function checkConcurrency(concurrency: number): number {
  if (concurrency < 0 || concurrency > 1_000_000) throw invalidArgument(`concurrency must be 0 (no limit) to 1000000, got ${concurrency}`);
  return concurrency;
}
