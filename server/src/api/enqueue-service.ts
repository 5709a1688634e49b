import { create } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Broker } from '@baton/worker-sdk/gen/broker';
import { JobSchema } from '@baton/worker-sdk/gen/job';
import type { BrokerConfig } from '../config.ts';
import type { Dispatcher } from '../core/dispatcher.ts';
import { enqueueHandingOff } from '../core/handoff.ts';
import { invalidArgument, resourceExhausted } from '../domain/errors.ts';
import type { Enqueued, JobRecord, JobSummary, NewJob } from '../domain/job.ts';
import { createGroupCommit } from '../lib/group-commit.ts';
import type { Logger } from '../logger.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import type { StoreDriver } from '../store/driver.ts';
import { toNewJob } from './request-checks.ts';
import { statusToWire, toWireJob } from './job-wire.ts';

export interface EnqueueServiceDeps {
  config: Pick<BrokerConfig, 'maxPayloadBytes' | 'maxBatchSize'>;
  store: Pick<StoreDriver, 'jobEnqueue' | 'jobEnqueueSummaries'>;
  dispatcher: Dispatcher;
  logger: Logger;
  metrics?: Pick<BrokerMetrics, 'enqueued'>;
}

/** `Enqueue` and `EnqueueBatch`: jobs in, durable on return. */
export function createEnqueueService(deps: EnqueueServiceDeps): Pick<ServiceImpl<typeof Broker>, 'enqueue' | 'enqueueBatch'> {
  const { config, store, dispatcher, logger, metrics } = deps;
  const limits = { maxPayloadBytes: config.maxPayloadBytes };
  // Concurrent single enqueues share INSERTs (group commit). A job that a waiting stream can take is
  // handed to it by the insert itself; for the others the dispatcher is woken directly rather than
  // by the NOTIFY coming back, so a waiting worker gets the job a round trip sooner.
  const enqueueTogether = createGroupCommit((jobs: NewJob[]) => enqueueHandingOff({ jobs, store, dispatcher }), { maxInFlight: 2, maxItems: 1000 });

  /** Counts and logs a stored job; repeats of an idempotency key were stored earlier. */
  function counted({ job, duplicate }: Enqueued<JobSummary>): void {
    if (duplicate) return;
    metrics?.enqueued.inc({ queue: job.queue });
    logger.debug('job enqueued', { job: job.id, queue: job.queue, status: job.status });
  }

  return {
    async enqueue(request) {
      const [stored] = await enqueueTogether([toNewJob(request, limits)]);
      if (stored.job.status === 'pending') dispatcher.wake(stored.job.queue);
      counted(stored);
      return { job: toWireJob(stored.job), duplicate: stored.duplicate };
    },

    async enqueueBatch(request) {
      if (request.jobs.length === 0) throw invalidArgument('jobs must hold at least one job');
      if (request.jobs.length > config.maxBatchSize) {
        throw resourceExhausted(`a batch holds at most ${config.maxBatchSize} jobs, got ${request.jobs.length}; split it`);
      }
      const jobs = request.jobs.map((job, index) => toNewJob(job, limits, `jobs[${index}].`));
      // Ids only: the jobs are not read back and decoded, only their ids, queues and statuses.
      const toWire = request.idsOnly
        ? (job: JobSummary) => create(JobSchema, { id: job.id, queue: job.queue, status: statusToWire(job.status) })
        : (job: JobSummary) => toWireJob(job as JobRecord);
      const stored: Enqueued<JobSummary>[] = await (request.idsOnly ? store.jobEnqueueSummaries({ jobs }) : store.jobEnqueue({ jobs }));
      for (const queue of new Set(jobs.map((job) => job.queue))) dispatcher.wake(queue);
      stored.forEach(counted);
      return { jobs: stored.map(({ job, duplicate }) => ({ job: toWire(job), duplicate })) };
    },
  };
}
