import type { JobStatus } from '../../domain/job-status.ts';
import type { JobBulkFilter } from '../driver.ts';
import { announce } from './announce.ts';
import { bulkStatement, bulkTarget } from './bulk-filter.ts';
import { RETRIED } from './retry.ts';
import { copyJobs, countChanges } from './history.ts';
import { statusIn } from './state-machine.ts';

/**
 * Bulk retry: one batch of FAILED or CANCELLED jobs moved from history back to the live table,
 * PENDING, as the single Retry (./retry.ts) moves one. Answers the batch's size, its highest id and
 * the retried jobs per queue.
 */
export function bulkRetry(statuses: readonly JobStatus[], filter: JobBulkFilter, batch: { afterId?: string; limit: number; dryRun: boolean }) {
  const target = bulkTarget('baton_job_history', statuses, filter, batch);
  const made = bulkStatement('retry', batch.dryRun, target, (t) =>
    batch.dryRun
      ? `
with target as (${t})
select count(*)::int as changed, max(id)::text as last_id, 0 as requested from target`
      : `
with target as (${t}),
back as (
  -- The ids as an array: one index probe per partition for the batch, where a join to the CTE
  -- could scan every partition.
  delete from baton_job_history h where h.id = any((select array_agg(id) from target)::bigint[]) and ${statusIn(statuses, 'h.status')}
  returning h.*
),
j as (${copyJobs('baton_live_jobs', 'back', RETRIED)}),
counted as (${countChanges('select queue, status, -1, 0::bigint from back union all select queue, status, 1, 0::bigint from j')})
select (select count(*) from back)::int as changed, (select max(id) from target)::text as last_id, 0 as requested,
  (select json_object_agg(queue, n) from (select queue, count(*) as n from j group by queue) q)::text as by_queue,
  (${announce('j')}) as announced`,
  );
  return { statement: made, params: target.params };
}
