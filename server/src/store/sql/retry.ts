import { statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { JOB_COLUMNS } from './columns.ts';
import { canStartSql, targetSql } from './state-machine.ts';

/** A FAILED or CANCELLED job back to PENDING with its attempts reset; its error history stays. Parameter: id. */
export const RETRY_JOB = statement(
  'baton_retry_job',
  `
with j as (
  update baton_jobs j set status = ${targetSql('retry')}, attempt = 0, run_at = now(), finished_at = null, result = null,
    cancel_requested = false, worker_id = null, progress = null
  where j.id = ?::bigint and ${canStartSql('retry')}
  returning j.*
)
select ${JOB_COLUMNS}, (${announce('j')}) as announced from j`,
);
