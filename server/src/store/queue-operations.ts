/**
 * Queues on PostgreSQL: their settings (ordinary reads and writes, through the ORM), the Watch marks,
 * and the counts operators read (the dashboard, `baton stats`, /metrics).
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { JobStatus } from '../domain/job-status.ts';
import type { QueueDefaults, QueueSettings, RateLimits } from '../domain/queue.ts';
import type { StoreDriver, Throughput } from './driver.ts';
import { type Queue, QueueEntity } from './entities.ts';
import type { SqlPool } from './sql-pool.ts';
import { QUEUE_COUNTS, RECENT_THROUGHPUT } from './sql/counts.ts';
import { OLDEST_PENDING } from './sql/oldest-pending.ts';
import { ANNOUNCE_QUEUE_CHANGE, WATCH_QUEUE } from './sql/queues.ts';

type QueueOperations = Pick<StoreDriver, 'queueGet' | 'queueList' | 'queueUpsert' | 'queueWatch' | 'jobCountByQueue' | 'jobOldestPending' | 'jobThroughput'>;

/** The settings fields an upsert may change; `updatedAt` changes with every upsert. */
const SETTINGS = ['concurrency', 'paused', 'defaultMaxAttempts', 'defaultTimeoutMs'] as const;

export function createQueueOperations(options: { orm: MikroORM; sql: SqlPool; queueDefaults: QueueDefaults }): QueueOperations {
  const { orm, sql, queueDefaults } = options;

  return {
    async queueGet({ name }) {
      const queue = await orm.em.fork().findOne(QueueEntity, { name });
      return queue ? toQueueSettings(queue) : null;
    },

    async queueList() {
      const queues = await orm.em.fork().find(QueueEntity, {}, { orderBy: { name: 'asc' } });
      return queues.map(toQueueSettings);
    },

    async queueUpsert(params) {
      const now = new Date();
      const queue = await orm.em.fork().upsert(
        QueueEntity,
        {
          name: params.name,
          concurrency: params.concurrency ?? queueDefaults.concurrency,
          paused: params.paused ?? false,
          defaultMaxAttempts: params.defaultMaxAttempts ?? queueDefaults.defaultMaxAttempts,
          defaultTimeoutMs: params.defaultTimeoutMs ?? queueDefaults.defaultTimeoutMs,
          ...rateColumns(params.rateLimits),
          fairKeys: Boolean(params.fairKeys),
          keyConcurrency: params.fairKeys?.keyConcurrency ?? 0,
          createdAt: now,
          updatedAt: now,
        },
        {
          onConflictFields: ['name'],
          onConflictMergeFields: [
            ...SETTINGS.filter((field) => params[field] !== undefined),
            ...(params.rateLimits ? RATE_SETTINGS : []),
            ...(params.fairKeys !== undefined ? FAIR_SETTINGS : []),
            'updatedAt',
          ],
        },
      );
      // Every broker reloads the settings and wakes its waiting workers.
      await sql.run(ANNOUNCE_QUEUE_CHANGE, [params.name]);
      return toQueueSettings(queue);
    },

    async queueWatch({ queue }) {
      return (await sql.run(WATCH_QUEUE, [queue])).length > 0;
    },

    async jobCountByQueue() {
      const counts = new Map<string, Partial<Record<JobStatus, number>>>();
      for (const row of await sql.run(QUEUE_COUNTS, [])) {
        const entry = counts.get(row.queue) ?? {};
        if (row.status) entry[row.status as JobStatus] = Number(row.n);
        counts.set(row.queue, entry);
      }
      return counts;
    },

    async jobOldestPending() {
      const oldest = new Map<string, Date>();
      for (const row of await sql.run(OLDEST_PENDING, [])) if (row.oldest) oldest.set(row.queue, row.oldest);
      return oldest;
    },

    async jobThroughput({ minutes, now }) {
      const out = new Map<string, Throughput>();
      if (minutes <= 0) return out;
      for (const row of await sql.run(RECENT_THROUGHPUT, [now ?? null, minutes, minutes])) {
        let entry = out.get(row.queue);
        if (!entry) {
          const series = () => new Array<number>(minutes).fill(0);
          out.set(row.queue, (entry = { completed: series(), failed: series(), started: series(), meanWaitMs: series() }));
        }
        const minute = minutes - 1 - Number(row.ago);
        if (row.status === 'running') {
          entry.started[minute] = Number(row.n);
          entry.meanWaitMs[minute] = Number(row.wait_ms) / Number(row.n);
        } else {
          (row.status === 'completed' ? entry.completed : entry.failed)[minute] += Number(row.n);
        }
      }
      return out;
    },
  };
}

function toQueueSettings(queue: Queue): QueueSettings {
  return {
    name: queue.name,
    concurrency: queue.concurrency,
    paused: queue.paused,
    defaultMaxAttempts: queue.defaultMaxAttempts,
    defaultTimeoutMs: Number(queue.defaultTimeoutMs),
    ...(queue.rateLimit > 0 || queue.keyRateLimit > 0
      ? { rateLimits: { limit: queue.rateLimit, intervalMs: queue.rateIntervalMs, keyLimit: queue.keyRateLimit, keyIntervalMs: queue.keyRateIntervalMs } }
      : {}),
    ...(queue.fairKeys || queue.keyConcurrency > 0 ? { fairKeys: { keyConcurrency: queue.keyConcurrency } } : {}),
  };
}

const FAIR_SETTINGS = ['fairKeys', 'keyConcurrency'] as const;

/** The rate limit columns a change sets: all four together (a limit of 0 removes it). */
const RATE_SETTINGS = ['rateLimit', 'rateIntervalMs', 'keyRateLimit', 'keyRateIntervalMs'] as const;

function rateColumns(rate: RateLimits | undefined) {
  return {
    rateLimit: rate?.limit ?? 0,
    rateIntervalMs: rate?.intervalMs ?? 1000,
    keyRateLimit: rate?.keyLimit ?? 0,
    keyRateIntervalMs: rate?.keyIntervalMs ?? 1000,
  };
}
