import { statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { settleAttempts } from './fail.ts';
import { canStartSql, status, statusAfterLeaseLostSql } from './state-machine.ts';

/**
 * Ends the attempts of jobs whose holder vanished (`loseLease`), listed in a CTE `cur` as
 * `settleAttempts` wants it. A job with attempts left is PENDING again and keeps its `run_at` (and
 * so its place among jobs of its priority): it was due when it was claimed, and a rescue that sent
 * it behind the whole backlog would leave it waiting for minutes after its worker died.
 */
export function loseLeases(now: string): string {
  return settleAttempts('pending', `status = ${status('pending')}, lease_token = null, deadline_at = null, session_id = null`, now);
}

/** The status a job whose lease was lost goes to, over a live job `j`. */
export const NEXT_AFTER_LEASE_LOST = statusAfterLeaseLostSql();

/**
 * Ends a session whose stream closed: its running jobs are runnable again at once (the attempt
 * counts), and its row is deleted. Parameters: reason, session id, session id.
 */
export const RELEASE_SESSION = statement(
  'baton_release_session',
  `
with cur as (
  select j.id, ${NEXT_AFTER_LEASE_LOST} as next, ?::text as message
  from baton_live_jobs j where j.session_id = ?::bigint and ${canStartSql('loseLease')}
  for update of j
),
${loseLeases('now()')},
ended_session as (delete from baton_sessions where id = ?::bigint)
select c.id::text as id, (${announce('changed')}) as announced from changed c`,
);
