/**
 * Bulk actions on PostgreSQL (docs/scheduling.md, "Bulk actions"): one bounded batch per call, run
 * as a single statement on the hot path's pool, so a batch commits (or fails) whole and the caller
 * resumes after its last id.
 */
import { BULK_ACTION_STATUSES } from '../domain/bulk-actions.ts';
import type { JobBulkOutcome, StoreDriver } from './driver.ts';
import type { SqlPool } from './sql-pool.ts';
import { bulkCancel } from './sql/bulk-cancel.ts';
import { bulkDelete } from './sql/bulk-delete.ts';
import { bulkRetry } from './sql/bulk-retry.ts';

type BulkOperations = Pick<StoreDriver, 'jobBulkAction'>;

const STATEMENTS = { cancel: bulkCancel, retry: bulkRetry, delete: bulkDelete };

export function createBulkOperations(options: { sql: SqlPool }): BulkOperations {
  const { sql } = options;
  return {
    async jobBulkAction({ action, filter, afterId, limit, dryRun = false }): Promise<JobBulkOutcome> {
      // The action's statuses in their fixed order, narrowed by the filter's: one statement per set.
      const wanted = filter.statuses?.length ? new Set(filter.statuses) : null;
      const statuses = BULK_ACTION_STATUSES[action].filter((status) => !wanted || wanted.has(status));
      if (wanted && statuses.length < wanted.size) {
        throw new Error(`bulk ${action} applies to ${BULK_ACTION_STATUSES[action].join(', ')} jobs only, not ${[...wanted].join(', ')}`);
      }
      const { statement, params } = STATEMENTS[action](statuses, filter, { afterId, limit, dryRun });
      const [row] = await sql.run(statement, params);
      const byQueue = new Map<string, number>(Object.entries(row.by_queue ? (JSON.parse(row.by_queue) as Record<string, number>) : {}));
      return { changed: row.changed, cancelRequested: row.requested, lastId: row.last_id ?? null, byQueue };
    },
  };
}
