// Bulk actions (Admin.BulkAction): the filter and one batch's answer as plain objects.

import { BulkActionKind } from './gen/baton/v1/admin_pb.ts';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { BulkActionRequestSchema } from './gen/baton/v1/admin_pb.ts';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { statusValue, type JobStatusName } from './job.ts';

/** What a bulk action does: cancel (PENDING/SCHEDULED at once, RUNNING asked to stop), retry (FAILED/CANCELLED), delete (finished jobs). */
export type BulkActionName = 'cancel' | 'retry' | 'delete';

/** Which jobs a bulk action takes; every field given must hold. An empty filter needs `all: true`. */
export interface BulkFilter {
  queue?: string;
  /** Narrows the statuses the action applies to. */
  statuses?: JobStatusName[];
  idempotencyKey?: string;
  /** Only jobs carrying all these labels. */
  labels?: Record<string, string>;
  createdBefore?: Date;
  createdAfter?: Date;
  /** Required when no other field is set: every job the action applies to. */
  all?: boolean;
}

/** Options of one batch. */
export interface BulkOptions {
  /** Count, change nothing. */
  dryRun?: boolean;
  /** Most jobs this batch takes, 1-10000. @defaultValue 1000 */
  limit?: number;
  /** `cursor` of the previous batch. */
  cursor?: string;
}

/** One batch's answer. */
export interface BulkResult {
  /** Jobs changed (dry run: that would change). */
  changed: number;
  /** Of those, RUNNING jobs asked to stop (cancel only). */
  cancelRequested: number;
  /** Pass to the next call; empty when done. */
  cursor: string;
}

const KINDS: Record<BulkActionName, BulkActionKind> = {
  cancel: BulkActionKind.CANCEL,
  retry: BulkActionKind.RETRY,
  delete: BulkActionKind.DELETE,
};

export function toBulkRequest(action: BulkActionName, filter: BulkFilter, options: BulkOptions): MessageInitShape<typeof BulkActionRequestSchema> {
  return {
    action: KINDS[action],
    filter: {
      queue: filter.queue ?? '',
      statuses: (filter.statuses ?? []).map(statusValue),
      idempotencyKey: filter.idempotencyKey ?? '',
      labels: filter.labels ?? {},
      createdBefore: filter.createdBefore ? timestampFromDate(filter.createdBefore) : undefined,
      createdAfter: filter.createdAfter ? timestampFromDate(filter.createdAfter) : undefined,
      all: filter.all ?? false,
    },
    dryRun: options.dryRun ?? false,
    limit: options.limit ?? 0,
    cursor: options.cursor ?? '',
  };
}
