import { statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { canStartSql, status, statusAfterLeaseLostSql } from './state-machine.ts';

/**
 * The SET of a job whose holder vanished (`loseLease`), with the error `message` (a SQL expression)
 * appended to its history at `now`. It keeps its `run_at` (and so its place among jobs of its
 * priority): it was due when it was claimed, and a rescue that sent it behind the whole backlog
 * would leave it waiting for minutes after its worker died.
 */
export function leaseLostSet(message: string, now: string): string {
  return `
    status = ${statusAfterLeaseLostSql()},
    finished_at = case when ${statusAfterLeaseLostSql()} = ${status('pending')} then null else ${now} end,
    errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'message', ${message}, 'at', ${now}, 'worker_id', j.worker_id)),
    lease_token = null, deadline_at = null, session_id = null`;
}

/**
 * Ends a session whose stream closed: its running jobs are runnable again at once (the attempt
 * counts), and its row is deleted. Parameters: reason, session id, session id.
 */
export const RELEASE_SESSION = statement(
  'baton_release_session',
  `
with j as (
  update baton_jobs j set ${leaseLostSet('?::text', 'now()')}
  where j.session_id = ?::bigint and ${canStartSql('loseLease')}
  returning j.id, j.queue, j.status
),
gone as (delete from baton_sessions where id = ?::bigint)
select j.id::text as id, (${announce('j')}) as announced from j`,
);
