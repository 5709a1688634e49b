import { statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { JOB_COLUMNS } from './columns.ts';
import { type JobColumn, copyJobs, countChanges, moved } from './history.ts';
import { canStartSql, targetSql } from './state-machine.ts';

/** What a retried job looks like back in the live table (also bulk retry's, ./bulk-retry.ts). */
export const RETRIED: Partial<Record<JobColumn, string>> = {
  status: targetSql('retry'),
  attempt: '0',
  run_at: 'now()',
  finished_at: 'null',
  result: 'null',
  cancel_requested: 'false',
  worker_id: 'null',
  session_id: 'null',
  progress: 'null',
};

/**
 * A FAILED or CANCELLED job back from history to the live table, PENDING, with its attempts reset
 * and its id kept; its error history stays. Parameter: id.
 */
export const RETRY_JOB = statement(
  'baton_retry_job',
  `
with back as (
  delete from baton_job_history h where h.id = ?::bigint and ${canStartSql('retry', 'h.status')}
  returning h.*
),
j as (${copyJobs('baton_live_jobs', 'back', RETRIED)}),
counted as (${countChanges(moved('j', '(select b.status from back b where b.id = j.id)'))})
select ${JOB_COLUMNS}, (${announce('j')}) as announced from j`,
);
