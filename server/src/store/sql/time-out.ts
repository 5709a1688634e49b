import { statement } from '../sql-pool.ts';
import { announce, announceSchedule } from './announce.ts';
import { CLOCK, NOW } from './clock.ts';
import { NEXT_AFTER_FAILURE, retryLaterSet, settleAttempts } from './fail.ts';
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
  from baton_live_jobs where ${canStartSql('timeOut', 'status')} and deadline_at < ${NOW} - ?::bigint * interval '1 millisecond'
),
cur as (
  select j.id, ${NEXT_AFTER_FAILURE} as next, v.message, v.retry_after_ms, v.token, v.holder
  from baton_live_jobs j join v on j.id = v.id and j.lease_token = v.token where ${canStartSql('timeOut')}
  for update of j skip locked
),
${settleAttempts('scheduled', retryLaterSet(NOW), NOW)},
told as (select pg_notify('baton_cancel', json_build_object('id', id::text, 'token', token::text, 'reason', 'timeout')::text) from cur)
select c.id::text as id, (${announce('changed')}) as announced, (${announceSchedule('again')}) as scheduled,
  (select count(*) from told) as told from changed c`,
);
