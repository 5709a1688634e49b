import { statement } from '../sql-pool.ts';
import { announce, announceSchedule } from './announce.ts';
import { copyJobs, countChanges, finishedSet, movedFrom } from './history.ts';
import { canStartSql, status } from './state-machine.ts';

/**
 * The label the broker counts a job's snoozes in (docs/scheduling.md#snooze): jobs have no metadata
 * column, and labels reach the handler with every assignment, so a handler can bound its own
 * snoozes without a schema change or a new field in the Lease protocol.
 */
export const SNOOZES_LABEL = 'baton.snoozes';

/** The count so far; a label a producer set to something else than a count starts it again rather than failing the statement. */
const SNOOZES_SO_FAR = `(CASE WHEN j.labels ->> '${SNOOZES_LABEL}' ~ '^[0-9]{1,9}$' THEN (j.labels ->> '${SNOOZES_LABEL}')::int ELSE 0 END)`;

/** `statusAfterSnooze` (server/src/domain/state-machine.ts) over a jobs row aliased `j`. */
const NEXT_AFTER_SNOOZE = `(CASE WHEN j.cancel_requested THEN ${status('cancelled')} ELSE ${status('scheduled')} END)`;

/** The attempt the claim counted, given back: a snooze is not an attempt. */
const ATTEMPT_GIVEN_BACK = 'greatest(0, attempt - 1)';

/**
 * Records snoozes reported by workers, fenced like results: only rows still RUNNING under the
 * reported token change. A snoozed job stays live, updated in place: SCHEDULED at now + its delay,
 * its attempt given back, no error appended, its lease dropped and `baton.snoozes` counted up. A job
 * whose cancel was requested meanwhile goes to CANCELLED instead (moved into history), as after a
 * failure. Announced always (a Watch, or another broker's stream waiting for a limited queue's slot,
 * may be waiting for the job to leave RUNNING), and the new run_at is told to the leader so that
 * its promotion wakes on time. Kept apart from the results' statements, so that a broker whose
 * workers never snooze runs nothing more on its hot path.
 * Parameter: JSON array of {id, token, delay_ms}.
 */
export const SNOOZE_JOBS = statement(
  'baton_snooze_jobs',
  `
with v as (select * from jsonb_to_recordset(?::jsonb) as r(id bigint, token bigint, delay_ms bigint)),
cur as (
  select j.id, ${NEXT_AFTER_SNOOZE} as next, v.delay_ms
  from baton_live_jobs j join v on j.id = v.id and j.lease_token = v.token where ${canStartSql('snooze')}
  for update of j
),
again as (
  update baton_live_jobs j set status = ${status('scheduled')},
    run_at = now() + v.delay_ms * interval '1 millisecond',
    attempt = greatest(0, j.attempt - 1),
    lease_token = null, deadline_at = null,
    labels = j.labels || jsonb_build_object('${SNOOZES_LABEL}', (${SNOOZES_SO_FAR} + 1)::text)
  from cur v where j.id = v.id and v.next = ${status('scheduled')}
  returning j.id, j.queue, j.status, j.run_at
),
ended as (
  delete from baton_live_jobs j using cur v where j.id = v.id and v.next <> ${status('scheduled')}
  returning j.*, v.next
),
gone as (${copyJobs('baton_job_history', 'ended', { ...finishedSet('next', 'now()'), attempt: ATTEMPT_GIVEN_BACK })}),
changed as (select id, queue, status, run_at from again union all select id, queue, status, run_at from gone),
counted as (${countChanges(movedFrom('changed', 'running'))})
select c.id::text as id, c.status, (${announce('changed')}) as announced, (${announceSchedule('again')}) as scheduled from changed c`,
);
