/**
 * `Admin.BulkAction`: cancel, retry or delete the jobs a filter matches, one bounded batch per call
 * (docs/scheduling.md, "Bulk actions"). The caller loops on the cursor; each batch commits on its
 * own, so a run that stops half way resumes where it stopped, and a dry run walks the same batches.
 */
import type { ServiceImpl } from '@connectrpc/connect';
import { type Timestamp, timestampDate } from '@bufbuild/protobuf/wkt';
import { type Admin, BulkActionKind, type BulkJobFilter } from '@baton/worker-sdk/gen/admin';
import { type BulkAction, BULK_ACTION_STATUSES, BULK_LIMIT_DEFAULT, BULK_LIMIT_MAX } from '../domain/bulk-actions.ts';
import { invalidArgument } from '../domain/errors.ts';
import { isBigintText } from '../domain/ids.ts';
import type { Logger } from '../logger.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import type { JobBulkFilter, StoreDriver } from '../store/driver.ts';
import { describeStatuses, statusesFromWire } from './job-wire.ts';
import { checkIdempotencyKey, checkLabels, checkQueueName } from './request-checks.ts';

export interface BulkServiceDeps {
  store: Pick<StoreDriver, 'jobBulkAction'>;
  logger?: Logger;
  metrics?: Pick<BrokerMetrics, 'cancelled' | 'retried'>;
}

const ACTIONS = new Map<BulkActionKind, BulkAction>([
  [BulkActionKind.CANCEL, 'cancel'],
  [BulkActionKind.RETRY, 'retry'],
  [BulkActionKind.DELETE, 'delete'],
]);

export function createBulkService(deps: BulkServiceDeps): Pick<ServiceImpl<typeof Admin>, 'bulkAction'> {
  const { store, logger, metrics } = deps;
  return {
    async bulkAction(request) {
      const action = ACTIONS.get(request.action);
      if (!action) throw invalidArgument('action is required: CANCEL, RETRY or DELETE');
      const filter = checkFilter(action, request.filter);
      if (request.limit < 0 || request.limit > BULK_LIMIT_MAX) {
        throw invalidArgument(`limit must be 1-${BULK_LIMIT_MAX}, or 0 for ${BULK_LIMIT_DEFAULT}; got ${request.limit}`);
      }
      const limit = request.limit || BULK_LIMIT_DEFAULT;
      const afterId = request.cursor ? decodeCursor(request.cursor) : undefined;
      const outcome = await store.jobBulkAction({ action, filter, afterId, limit, dryRun: request.dryRun });
      if (!request.dryRun && outcome.changed > 0) {
        for (const [queue, n] of outcome.byQueue) {
          if (action === 'cancel') metrics?.cancelled.inc({ queue }, n);
          if (action === 'retry') metrics?.retried.inc({ queue, trigger: 'manual' }, n);
        }
        logger?.info(`bulk ${action}`, { changed: outcome.changed, cancelRequested: outcome.cancelRequested, afterId, lastId: outcome.lastId });
      }
      return {
        changed: BigInt(outcome.changed),
        cancelRequested: BigInt(outcome.cancelRequested),
        // A full batch may have more behind it; a short one means nothing past it matched.
        cursor: outcome.lastId !== null && outcome.changed >= limit ? encodeCursor(outcome.lastId) : '',
      };
    },
  };
}

function checkFilter(action: BulkAction, wire: BulkJobFilter | undefined): JobBulkFilter {
  const filter: JobBulkFilter = {};
  if (wire?.queue) filter.queue = checkQueueName(wire.queue, 'filter.queue');
  const statuses = statusesFromWire(wire?.statuses ?? [], 'filter.statuses');
  const allowed = BULK_ACTION_STATUSES[action];
  const refused = statuses.filter((status) => !allowed.includes(status));
  if (refused.length > 0) {
    const hint = action === 'delete' ? ' (live jobs are never deleted: cancel them first)' : '';
    throw invalidArgument(`filter.statuses: ${action} applies to ${describeStatuses(allowed)} jobs, not ${describeStatuses(refused)}${hint}`);
  }
  if (statuses.length > 0) filter.statuses = statuses;
  if (wire?.idempotencyKey) filter.idempotencyKey = checkIdempotencyKey(wire.idempotencyKey, 'filter.idempotency_key');
  if (wire && Object.keys(wire.labels).length > 0) filter.labels = checkLabels(wire.labels, 'filter.labels');
  if (wire?.createdBefore) filter.createdBefore = checkTime(wire.createdBefore, 'filter.created_before');
  if (wire?.createdAfter) filter.createdAfter = checkTime(wire.createdAfter, 'filter.created_after');
  if (filter.createdBefore && filter.createdAfter && filter.createdAfter >= filter.createdBefore) {
    throw invalidArgument('filter.created_after must be earlier than filter.created_before: no job was created in between');
  }
  if (Object.keys(filter).length === 0 && !wire?.all) {
    throw invalidArgument(`the filter is empty, so it matches every job the ${action} applies to: set filter.all to mean it, or narrow it`);
  }
  return filter;
}

function checkTime(value: Timestamp, field: string): Date {
  const date = timestampDate(value);
  if (Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1970 || date.getUTCFullYear() > 9999) {
    throw invalidArgument(`${field} must be a time between 1970 and 9999`);
  }
  return date;
}

function encodeCursor(lastId: string): string {
  return Buffer.from(`after:${lastId}`).toString('base64url');
}

function decodeCursor(cursor: string): string {
  const match = /^after:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match || !isBigintText(match[1])) throw invalidArgument('cursor is not one this broker issued; pass the cursor of the previous call');
  return match[1];
}
