import { statement } from '../sql-pool.ts';
import { announce, announceSchedule } from './announce.ts';
import { backoffDelaySql, canStartSql, status, statusAfterFailureSql } from './state-machine.ts';

/**
 * The SET of a failed attempt, over a jobs row `j` and an input row `v` with `message`,
 * `non_retryable` and `retry_after_ms`: SCHEDULED after its backoff (or the worker's retry_after,
 * whichever is longer), FAILED when no attempt is left, CANCELLED when a cancel was requested; the
 * attempt's error is appended to the job's history either way. `now` is the statement's time.
 */
export function failedAttemptSet(now: string): string {
  const next = statusAfterFailureSql('v.non_retryable');
  return `
    status = ${next},
    run_at = case when ${next} = ${status('scheduled')}
      then ${now} + greatest(coalesce(v.retry_after_ms, 0), ${backoffDelaySql()}) * interval '1 millisecond'
      else j.run_at end,
    finished_at = case when ${next} = ${status('scheduled')} then null else ${now} end,
    errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'message', v.message, 'at', ${now}, 'worker_id', j.worker_id)),
    lease_token = null, deadline_at = null`;
}

/**
 * Records failed attempts reported by workers, fenced like results.
 * Parameter: JSON array of {id, token, message, non_retryable, retry_after_ms}.
 */
export const FAIL_JOBS = statement(
  'baton_fail_jobs',
  `
with v as (
  select * from jsonb_to_recordset(?::jsonb) as r(id bigint, token bigint, message text, non_retryable boolean, retry_after_ms bigint)
),
j as (
  update baton_jobs j set ${failedAttemptSet('now()')}
  from v where j.id = v.id and j.lease_token = v.token and ${canStartSql('fail')}
  returning j.id, j.queue, j.status, j.run_at
)
select j.id::text as id, j.status, (${announce('j')}) as announced, (${announceSchedule('j')}) as scheduled from j`,
);
