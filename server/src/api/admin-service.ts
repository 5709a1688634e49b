import type { ServiceImpl } from '@connectrpc/connect';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import { Admin } from '@baton/worker-sdk/gen/admin';
import { invalidArgument, notFound } from '../domain/errors.ts';
import type { Logger } from '../logger.ts';
import { JOB_STATUSES, type JobStatus } from '../domain/job-status.ts';
import type { QueueSettings } from '../domain/queue.ts';
import type { StoreDriver } from '../store/driver.ts';
import { checkQueueName } from './request-checks.ts';

function toWireQueue(queue: QueueSettings) {
  return {
    name: queue.name,
    concurrency: queue.concurrency,
    paused: queue.paused,
    defaultMaxAttempts: queue.defaultMaxAttempts,
    defaultTimeout: queue.defaultTimeoutMs > 0 ? durationFromMs(queue.defaultTimeoutMs) : undefined,
  };
}

/** `baton.v1.Admin`: queue counts and settings for operators. */
export function createAdminService(store: StoreDriver, logger?: Logger): ServiceImpl<typeof Admin> {
  async function requireQueue(name: string): Promise<QueueSettings> {
    const queue = await store.queueGet({ name: checkQueueName(name) });
    if (!queue) throw notFound(`queue "${name}" does not exist; it is created by its first Enqueue or by SetQueueConcurrency`);
    return queue;
  }

  return {
    async getQueueStats(request) {
      request.queues.forEach((queue, i) => checkQueueName(queue, `queues[${i}]`));
      const minutes = request.throughputMinutes;
      if (minutes < 0 || minutes > 60) throw invalidArgument(`throughput_minutes must be 0-60, got ${minutes}`);
      const [queues, counts, throughput] = await Promise.all([store.queueList(), store.jobCountByQueue(), store.jobThroughput({ minutes })]);
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
      if (request.concurrency < 0 || request.concurrency > 1_000_000) {
        throw invalidArgument(`concurrency must be 0 (no limit) to 1000000, got ${request.concurrency}`);
      }
      logger?.info('queue concurrency set', { queue: request.queue, concurrency: request.concurrency });
      return { queue: toWireQueue(await store.queueUpsert({ name: request.queue, concurrency: request.concurrency })) };
    },

    async listQueues() {
      return { queues: (await store.queueList()).map(toWireQueue) };
    },
  };
}

/** A per-minute series as int64s; a queue with nothing finished in the window gets zeros. */
function perMinute(series: number[] | undefined, minutes: number): bigint[] {
  return series ? series.map(BigInt) : new Array<bigint>(minutes).fill(0n);
}
