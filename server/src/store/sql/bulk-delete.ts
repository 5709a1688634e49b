import type { JobStatus } from '../../domain/job-status.ts';
import type { JobBulkFilter } from '../driver.ts';
import { bulkStatement, bulkTarget } from './bulk-filter.ts';
import { countChanges } from './history.ts';
import { statusIn } from './state-machine.ts';

/**
 * Bulk delete: one batch of finished jobs (COMPLETED, FAILED, CANCELLED) deleted from history, their
 * idempotency keys freed and the counters told, as retention's pruning does (./prune.ts). Live jobs
 * are never taken (../../domain/bulk-actions.ts says why). Nothing is announced: a finished job has
 * no Watch waiting on it. Answers the batch's size, its highest id and the deletions per queue.
 */
export function bulkDelete(statuses: readonly JobStatus[], filter: JobBulkFilter, batch: { afterId?: string; limit: number; dryRun: boolean }) {
  const target = bulkTarget('baton_job_history', statuses, filter, batch);
  const made = bulkStatement('delete', batch.dryRun, target, (t) =>
    batch.dryRun
      ? `
with target as (${t})
select count(*)::int as changed, max(id)::text as last_id, 0 as requested from target`
      : `
with target as (${t}),
gone as (
  -- The ids as an array: one index probe per partition for the batch (see ./bulk-retry.ts).
  delete from baton_job_history h where h.id = any((select array_agg(id) from target)::bigint[]) and ${statusIn(statuses, 'h.status')}
  returning h.queue, h.status, h.id, h.idempotency_key
),
keys as (
  delete from baton_job_keys k using gone g where g.idempotency_key is not null and k.idempotency_key = g.idempotency_key and k.job_id = g.id
),
counted as (${countChanges('select queue, status, -1, 0::bigint from gone')})
select (select count(*) from gone)::int as changed, (select max(id) from target)::text as last_id, 0 as requested,
  (select json_object_agg(queue, n) from (select queue, count(*) as n from gone group by queue) q)::text as by_queue`,
  );
  return { statement: made, params: target.params };
}
