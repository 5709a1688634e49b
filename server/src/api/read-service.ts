import type { ServiceImpl } from '@connectrpc/connect';
import type { Broker } from '@baton/worker-sdk/gen/broker';
import type { BrokerConfig } from '../config.ts';
import { requireJob } from '../core/require-job.ts';
import { invalidArgument } from '../domain/errors.ts';
import { isBigintText } from '../domain/ids.ts';
import type { StoreDriver } from '../store/driver.ts';
import { checkIdempotencyKey, checkJobId, checkLabels, checkQueueName } from './request-checks.ts';
import { statusesFromWire, toWireJob } from './job-wire.ts';

export interface ReadServiceDeps {
  config: Pick<BrokerConfig, 'maxPageSize'>;
  store: Pick<StoreDriver, 'jobGet' | 'jobList'>;
}

/** `Get` and `List`: stored jobs, one by id or a page at a time. */
export function createReadService(deps: ReadServiceDeps): Pick<ServiceImpl<typeof Broker>, 'get' | 'list'> {
  const { config, store } = deps;
  return {
    async get(request) {
      return { job: toWireJob(await requireJob(store, checkJobId(request.id))) };
    },

    async list(request) {
      if (request.pageSize < 0 || request.pageSize > config.maxPageSize) {
        throw invalidArgument(`page_size must be 1-${config.maxPageSize}, or 0 for 50; got ${request.pageSize}`);
      }
      const limit = request.pageSize || 50;
      const queue = request.queue ? checkQueueName(request.queue) : undefined;
      const statuses = statusesFromWire(request.statuses, 'statuses');
      const beforeId = request.pageToken ? decodePageToken(request.pageToken) : undefined;
      const idempotencyKey = checkIdempotencyKey(request.idempotencyKey) || undefined;
      const labels = checkLabels(request.labels);
      const jobs = await store.jobList({ queue, statuses, idempotencyKey, labels, limit: limit + 1, beforeId });
      const page = jobs.slice(0, limit);
      return {
        jobs: page.map(toWireJob),
        nextPageToken: jobs.length > limit ? encodePageToken(page[page.length - 1].id) : '',
      };
    },
  };
}

function encodePageToken(lastId: string): string {
  return Buffer.from(`before:${lastId}`).toString('base64url');
}

function decodePageToken(token: string): string {
  const decoded = Buffer.from(token, 'base64url').toString();
  const match = /^before:(\d+)$/.exec(decoded);
  if (!match || !isBigintText(match[1])) throw invalidArgument('page_token is not one this broker issued; pass next_page_token from the previous page');
  return match[1];
}
