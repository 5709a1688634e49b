import type { ServiceImpl } from '@connectrpc/connect';
import type { Broker } from '@baton/worker-sdk/gen/broker';
import { requireJob } from '../core/require-job.ts';
import { failedPrecondition } from '../domain/errors.ts';
import { TRANSITIONS } from '../domain/state-machine.ts';
import type { Logger } from '../logger.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import type { StoreDriver } from '../store/driver.ts';
import { checkJobId } from './request-checks.ts';
import { describeStatuses, toWireJob } from './job-wire.ts';

export interface CancelRetryServiceDeps {
  store: Pick<StoreDriver, 'jobGet' | 'jobCancel' | 'jobRetry'>;
  logger: Logger;
  metrics?: Pick<BrokerMetrics, 'cancelled' | 'retried'>;
}

/** What Cancel acts on: cancelled at once, or (RUNNING) asked of its holder. */
const CANCELLABLE = [...TRANSITIONS.cancel.from, ...TRANSITIONS.requestCancel.from];

/** `Cancel` and `Retry`: an operator's say over one job's fate. A job in the wrong status is refused with the statuses that would do. */
export function createCancelRetryService(deps: CancelRetryServiceDeps): Pick<ServiceImpl<typeof Broker>, 'cancel' | 'retry'> {
  const { store, logger, metrics } = deps;
  return {
    async cancel(request) {
      const id = checkJobId(request.id);
      const job = await store.jobCancel({ id });
      if (job) {
        if (job.status === 'cancelled') metrics?.cancelled.inc({ queue: job.queue });
        logger.info(job.status === 'cancelled' ? 'job cancelled' : 'job cancel requested: telling its worker', { job: id, queue: job.queue });
        return { job: toWireJob(job) };
      }
      const existing = await requireJob(store, id);
      throw failedPrecondition(`job ${id} is ${existing.status.toUpperCase()}: only ${describeStatuses(CANCELLABLE)} jobs can be cancelled`);
    },

    async retry(request) {
      const id = checkJobId(request.id);
      const job = await store.jobRetry({ id });
      if (job) {
        metrics?.retried.inc({ queue: job.queue, trigger: 'manual' });
        logger.info('job retried', { job: id, queue: job.queue });
        return { job: toWireJob(job) };
      }
      const existing = await requireJob(store, id);
      throw failedPrecondition(`job ${id} is ${existing.status.toUpperCase()}: only ${describeStatuses(TRANSITIONS.retry.from)} jobs can be retried`);
    },
  };
}
