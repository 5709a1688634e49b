import type { JobStatus } from '../../domain/job-status.ts';
import type { JobBulkFilter } from '../driver.ts';
import type { Statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { bulkStatement, bulkTarget } from './bulk-filter.ts';
import { copyJobs, countChanges, finishedSet } from './history.ts';
import { canStartSql, statusIn, targetSql } from './state-machine.ts';

/**
 * Bulk cancel: one batch of live jobs, as the single Cancel (./cancel.ts) changes them. PENDING and
 * SCHEDULED jobs move into history CANCELLED; RUNNING ones whose cancel was not requested yet are
 * marked and their holders told on `baton_cancel` (a RUNNING job asked already is not taken again,
 * so a second run over the same filter counts only what is new). Answers the batch's size, its
 * highest id, how many were RUNNING, and the cancelled jobs per queue.
 */
export function bulkCancel(statuses: readonly JobStatus[], filter: JobBulkFilter, batch: { afterId?: string; limit: number; dryRun: boolean }) {
  const stopped = statuses.filter((s) => s !== 'running');
  const conditions = [];
  if (stopped.length > 0) conditions.push(statusIn(stopped));
  if (statuses.includes('running')) conditions.push(`(${statusIn(['running'])} and not j.cancel_requested)`);
  const target = bulkTarget('baton_live_jobs', statuses, filter, batch, `(${conditions.join(' or ')})`);
  const made: Statement = bulkStatement('cancel', batch.dryRun, target, (t) =>
    batch.dryRun
      ? `
with target as (${t})
select count(*)::int as changed, max(id)::text as last_id, (count(*) filter (where ${canStartSql('requestCancel', 'status')}))::int as requested
from target`
      : `
with target as (${t}),
requested as (
  update baton_live_jobs j set cancel_requested = true from target t where j.id = t.id and ${canStartSql('requestCancel', 't.status')}
  returning j.*
),
ended as (
  delete from baton_live_jobs j using target t where j.id = t.id and ${canStartSql('cancel', 't.status')}
  returning j.*
),
gone as (${copyJobs('baton_job_history', 'ended', finishedSet(targetSql('cancel'), 'now()'))}),
counted as (${countChanges('select queue, status, -1, 0::bigint from ended union all select queue, status, 1, 0::bigint from gone')}),
told as (
  select pg_notify('baton_cancel', json_build_object('id', id::text, 'token', lease_token::text, 'reason', 'cancelled')::text) from requested
),
j as (select id, queue, status from requested union all select id, queue, status from gone)
select (select count(*) from target)::int as changed, (select max(id) from target)::text as last_id,
  (select count(*) from requested)::int as requested,
  (select json_object_agg(queue, n) from (select queue, count(*) as n from gone group by queue) q)::text as by_queue,
  (${announce('j')}) as announced, (select count(*) from told) as told`,
  );
  return { statement: made, params: target.params };
}
