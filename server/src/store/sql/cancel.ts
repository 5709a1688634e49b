import { statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { JOB_COLUMNS } from './columns.ts';
import { canStartSql, targetSql } from './state-machine.ts';

/**
 * Cancels one job: PENDING or SCHEDULED at once (`cancel`); RUNNING by recording the request and
 * telling the holder (on whichever broker its stream lives) through `baton_cancel`
 * (`requestCancel`: the job stays RUNNING until its worker reports). Parameter: id.
 */
export const CANCEL_JOB = statement(
  'baton_cancel_job',
  `
with j as (
  update baton_jobs j set
    status = case when ${canStartSql('requestCancel')} then j.status else ${targetSql('cancel')} end,
    cancel_requested = ${canStartSql('requestCancel')},
    finished_at = case when ${canStartSql('requestCancel')} then null else now() end
  where j.id = ?::bigint and ${canStartSql(['cancel', 'requestCancel'])}
  returning j.*
),
told as (
  select pg_notify('baton_cancel', json_build_object('id', id::text, 'token', lease_token::text, 'reason', 'cancelled')::text)
  from j where ${canStartSql('requestCancel', 'status')}
)
select ${JOB_COLUMNS}, (${announce('j')}) as announced, (select count(*) from told) as told from j`,
);
