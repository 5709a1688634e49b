import { statement } from '../sql-pool.ts';
import { announce, announceSchedule } from './announce.ts';
import { CLOCK, NOW } from './clock.ts';
import { failedAttemptSet } from './fail.ts';
import { canStartSql } from './state-machine.ts';

/**
 * Fails attempts that outlived their timeout by more than `grace` ms (the worker should have
 * stopped them itself; this catches workers that did not), as a failure report would, and tells
 * their holders to stop. Run by the elected leader.
 * Parameters: now (null for the database's), grace ms.
 */
export const TIME_OUT_JOBS = statement(
  'baton_time_out_jobs',
  `
with ${CLOCK},
v as (
  select id, lease_token as token, format('timed out after %s ms', timeout_ms) as message, false as non_retryable,
    null::bigint as retry_after_ms, session_id as holder
  from baton_jobs where ${canStartSql('timeOut', 'status')} and deadline_at < ${NOW} - ?::bigint * interval '1 millisecond'
  for update skip locked
),
j as (
  update baton_jobs j set ${failedAttemptSet(NOW)}
  from v where j.id = v.id and j.lease_token = v.token and ${canStartSql('timeOut')}
  returning j.id, j.queue, j.status, j.run_at, v.token, v.holder
),
told as (select pg_notify('baton_cancel', json_build_object('id', id::text, 'token', token::text, 'reason', 'timeout')::text) from j)
select j.id::text as id, (${announce('j')}) as announced, (${announceSchedule('j')}) as scheduled,
  (select count(*) from told) as told from j`,
);
