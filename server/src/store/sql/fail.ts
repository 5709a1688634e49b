import type { JobStatus } from '../../domain/job-status.ts';
import { statement } from '../sql-pool.ts';
import { announce, announceSchedule } from './announce.ts';
import { copyJobs, countChanges, finishedSet, movedFrom } from './history.ts';
import { backoffDelaySql, canStartSql, status, statusAfterFailureSql } from './state-machine.ts';

/** An attempt's error appended to a job's history; the row's columns are named with `row` (empty: unqualified). */
function withAttemptError(row: string, message: string, now: string): string {
  return `${row}errors || jsonb_build_array(jsonb_build_object('attempt', ${row}attempt, 'message', ${message}, 'at', ${now}, 'worker_id', ${row}worker_id))`;
}

/**
 * Ends the attempts of the live jobs listed, locked, in a CTE `cur` (id, next: the status each goes
 * to, message: the attempt's error), at `now`. Jobs going back to `again` (SCHEDULED after a failed
 * attempt, PENDING after a lost lease) stay live, updated in place by `againSet` (a SET over the
 * job `j` and its `cur` row `v`); the others (FAILED, CANCELLED) move into history. Either way the
 * attempt's error is appended. Defines `again`, `ended`, `gone`, `changed` (id, queue, status,
 * run_at of every job changed) and `counted`.
 */
export function settleAttempts(again: JobStatus, againSet: string, now: string): string {
  return `
again as (
  update baton_live_jobs j set ${againSet}, errors = ${withAttemptError('j.', 'v.message', now)}
  from cur v where j.id = v.id and v.next = ${status(again)}
  returning j.id, j.queue, j.status, j.run_at
),
ended as (
  delete from baton_live_jobs j using cur v where j.id = v.id and v.next <> ${status(again)}
  returning j.*, v.next, v.message
),
gone as (${copyJobs('baton_job_history', 'ended', { ...finishedSet('next', now), errors: withAttemptError('', 'message', now) })}),
changed as (select id, queue, status, run_at from again union all select id, queue, status, run_at from gone),
counted as (${countChanges(movedFrom('changed', 'running'), now)})`;
}

/**
 * The rescheduling of a failed attempt, over a live job `j` and its `cur` row `v` (with
 * `retry_after_ms`): SCHEDULED after its backoff or the worker's retry_after, whichever is longer.
 */
export function retryLaterSet(now: string): string {
  return `status = ${status('scheduled')},
    run_at = ${now} + greatest(coalesce(v.retry_after_ms, 0), ${backoffDelaySql()}) * interval '1 millisecond',
    lease_token = null, deadline_at = null`;
}

/** The status after a failed attempt (SCHEDULED, FAILED, or CANCELLED when a cancel was requested), over `j` and a row `v` with `non_retryable`. */
export const NEXT_AFTER_FAILURE = statusAfterFailureSql('v.non_retryable');

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
cur as (
  select j.id, ${NEXT_AFTER_FAILURE} as next, v.message, v.retry_after_ms
  from baton_live_jobs j join v on j.id = v.id and j.lease_token = v.token where ${canStartSql('fail')}
  for update of j
),
${settleAttempts('scheduled', retryLaterSet('now()'), 'now()')}
select c.id::text as id, c.status, (${announce('changed')}) as announced, (${announceSchedule('again')}) as scheduled from changed c`,
);
