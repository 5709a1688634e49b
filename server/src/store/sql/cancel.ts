import { statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { JOB_COLUMNS } from './columns.ts';
import { copyJobs, countChanges, finishedSet, moved } from './history.ts';
import { canStartSql, targetSql } from './state-machine.ts';

/**
 * Cancels one job: PENDING or SCHEDULED at once (`cancel`: it moves into history); RUNNING by
 * recording the request and telling the holder (on whichever broker its stream lives) through
 * `baton_cancel` (`requestCancel`: the job stays RUNNING until its worker reports). Parameter: id.
 */
export const CANCEL_JOB = statement(
  'baton_cancel_job',
  `
with target as (
  select j.id, j.status from baton_live_jobs j where j.id = ?::bigint and ${canStartSql(['cancel', 'requestCancel'])} for update of j
),
requested as (
  update baton_live_jobs j set cancel_requested = true from target t where j.id = t.id and ${canStartSql('requestCancel', 't.status')}
  returning j.*
),
ended as (
  delete from baton_live_jobs j using target t where j.id = t.id and ${canStartSql('cancel', 't.status')}
  returning j.*
),
gone as (${copyJobs('baton_job_history', 'ended', finishedSet(targetSql('cancel'), 'now()'))}),
counted as (${countChanges(moved('gone', '(select t.status from target t where t.id = gone.id)'))}),
told as (
  select pg_notify('baton_cancel', json_build_object('id', id::text, 'token', lease_token::text, 'reason', 'cancelled')::text) from requested
),
j as (select * from requested union all select * from gone)
select ${JOB_COLUMNS}, (${announce('j')}) as announced, (select count(*) from told) as told from j`,
);
