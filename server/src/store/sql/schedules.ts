/**
 * Cron schedules (docs/scheduling.md): their definitions, and the statement that turns one tick into
 * at most one job. Every change to a definition says so on `baton_cron`, so the leader re-reads the
 * schedules and re-arms its sleep.
 */
import { statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { countChanges } from './history.ts';
import { status } from './state-machine.ts';

/** A schedule's columns as ../schedule-operations.ts reads them, with its latest tick and the status of its latest job. */
const SCHEDULE_COLUMNS = `s.name, s.queue, s.payload::text as payload, s.cron, s.time_zone, s.priority, s.max_attempts, s.timeout_ms,
  s.labels::text as labels, s.paused, s.missed, s.backfill_limit, s.overlap, s.anchor_at, s.last_job_id::text as last_job_id,
  s.created_at, s.updated_at,
  (select max(t.tick_at) from baton_schedule_ticks t where t.schedule_name = s.name) as last_tick_at,
  (select j.status from baton_jobs j where j.id = s.last_job_id) as last_job_status`;

/** Every schedule by name, or the one named. Parameters: name or null, twice. */
export const LIST_SCHEDULES = statement(
  'baton_list_schedules',
  `select ${SCHEDULE_COLUMNS} from baton_schedules s where ?::text is null or s.name = ? order by s.name`,
);

/**
 * Creates or replaces a schedule (and its queue, with the defaults, if new). The anchor, from which
 * ticks count, moves to `now` when the expression or the time zone changes, so a changed schedule
 * does not run the new expression's past ticks; `paused` changes only when given.
 * Parameters: name, queue, payload, cron, time zone, priority, max attempts, timeout ms, labels,
 * missed, backfill limit, overlap, paused or null (twice), now or null, then the queue defaults
 * (concurrency, max attempts, timeout ms). Returns the name and whether it was created.
 */
export const UPSERT_SCHEDULE = statement(
  'baton_upsert_schedule',
  `
with input as (
  select ?::text as name, ?::text as queue, ?::jsonb as payload, ?::text as cron, ?::text as time_zone, ?::smallint as priority,
    ?::int as max_attempts, ?::bigint as timeout_ms, ?::jsonb as labels, ?::text as missed, ?::int as backfill_limit, ?::text as overlap,
    ?::boolean as paused_given, coalesce(?::boolean, false) as paused, coalesce(?::timestamptz, now()) as now_at,
    ?::int as concurrency, ?::int as default_max_attempts, ?::bigint as default_timeout_ms
),
new_queue as (
  insert into baton_queues (name, concurrency, default_max_attempts, default_timeout_ms)
  select queue, concurrency, default_max_attempts, default_timeout_ms from input
  on conflict (name) do nothing
),
up as (
  insert into baton_schedules as s (name, queue, payload, cron, time_zone, priority, max_attempts, timeout_ms, labels, paused,
    missed, backfill_limit, overlap, anchor_at, created_at, updated_at)
  select name, queue, payload, cron, time_zone, priority, max_attempts, timeout_ms, labels, paused,
    missed, backfill_limit, overlap, now_at, now_at, now_at from input
  on conflict (name) do update set queue = excluded.queue, payload = excluded.payload, cron = excluded.cron,
    time_zone = excluded.time_zone, priority = excluded.priority, max_attempts = excluded.max_attempts,
    timeout_ms = excluded.timeout_ms, labels = excluded.labels, missed = excluded.missed,
    backfill_limit = excluded.backfill_limit, overlap = excluded.overlap,
    paused = case when (select paused_given from input) is null then s.paused else excluded.paused end,
    anchor_at = case when s.cron <> excluded.cron or s.time_zone <> excluded.time_zone
      or (s.paused and not excluded.paused and (select paused_given from input) is not null) then excluded.anchor_at else s.anchor_at end,
    updated_at = excluded.updated_at
  returning s.name, s.created_at = s.updated_at as created
)
select name, created, pg_notify('baton_cron', name) as announced from up`,
);

/**
 * Pauses or resumes a schedule. Resuming moves the anchor to `now`: ticks that fell while it was
 * paused never run, whatever the missed-tick policy. Parameters: paused, now or null, name.
 */
export const SET_SCHEDULE_PAUSED = statement(
  'baton_set_schedule_paused',
  `
update baton_schedules s set paused = ?::boolean,
  anchor_at = case when s.paused and not $1::boolean then coalesce(?::timestamptz, now()) else s.anchor_at end,
  updated_at = now()
where s.name = ?
returning s.name, pg_notify('baton_cron', s.name) as announced`,
);

/** Deletes a schedule and its ticks; its jobs stay. Parameter: name. */
export const DELETE_SCHEDULE = statement(
  'baton_delete_schedule',
  `delete from baton_schedules where name = ? returning name, pg_notify('baton_cron', name) as announced`,
);

/**
 * Inserts the job of `made` (one row at most: the schedule's columns, `job_id`, `run_at`, `labels`
 * and the queue defaults), PENDING, counted and announced, and makes it the schedule's latest job.
 */
function insertJob(made: string): string {
  return `
j as (
  insert into baton_live_jobs (id, queue, status, payload, priority, run_at, max_attempts, timeout_ms, labels) overriding system value
  select m.job_id, m.queue, ${status('pending')}, m.payload, m.priority, m.run_at,
    coalesce(m.max_attempts, q.default_max_attempts, m.default_max_attempts), coalesce(m.timeout_ms, q.default_timeout_ms, m.default_timeout_ms),
    m.job_labels
  from ${made} m left join baton_queues q on q.name = m.queue
  returning *
),
latest as (update baton_schedules s set last_job_id = j.id from j where s.name = (select name from ${made})),
counted as (${countChanges('select queue, status, 1, 0::bigint from j')})`;
}

/**
 * One tick of one schedule, decided once: the tick's row (primary key: schedule and tick) and its
 * job are inserted by this one statement, the job only when the tick's row is new. A second attempt
 * at the same tick, by this broker or another (two leaders for a moment, a failover that repeats a
 * tick), waits for the first to commit, then inserts nothing and answers `duplicate`. With the
 * overlap policy `skip`, a tick while the schedule's latest job is still live (in `baton_live_jobs`)
 * is decided as skipped, with no job. A paused or deleted schedule yields nothing.
 * Parameters: name, tick, now or null, then the queue defaults (max attempts, timeout ms). Returns
 * one row: `found` (the schedule exists, unpaused), `outcome` (null for a duplicate) and `job_id`.
 */
export const TICK_SCHEDULE = statement(
  'baton_tick_schedule',
  `
with s as (
  select name, queue, payload, priority, max_attempts, timeout_ms, labels, overlap, last_job_id
  from baton_schedules where name = ? and not paused
),
input as (select ?::timestamptz as tick_at, coalesce(?::timestamptz, now()) as now_at, ?::int as default_max_attempts, ?::bigint as default_timeout_ms),
decided as (
  select s.*, i.*, i.tick_at as run_at,
    s.labels || jsonb_build_object('baton.schedule', s.name, 'baton.tick', to_char(i.tick_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) as job_labels,
    case when s.overlap = 'skip' and exists (select 1 from baton_live_jobs l where l.id = s.last_job_id) then null
      else nextval('baton_jobs_id_seq') end as job_id
  from s cross join input i
),
tick as (
  insert into baton_schedule_ticks (schedule_name, tick_at, job_id, outcome, decided_at)
  select name, tick_at, job_id, case when job_id is null then 'skipped_overlap' else 'enqueued' end, now_at from decided
  on conflict (schedule_name, tick_at) do nothing
  returning job_id, outcome
),
made as (select d.* from decided d where d.job_id in (select job_id from tick)),
${insertJob('made')}
select (select count(*) from s)::int as found, (select outcome from tick) as outcome, (select job_id::text from tick) as job_id,
  (${announce('j')}) as announced`,
);

/**
 * A job of the schedule now, tied to no tick (TriggerSchedule), paused or not; it becomes the
 * schedule's latest job, which the overlap policy looks at. Parameters: the queue defaults (max
 * attempts, timeout ms), then name. Returns the job's id; no row when there is no such schedule.
 */
export const TRIGGER_SCHEDULE = statement(
  'baton_trigger_schedule',
  `
with made as (
  select s.name, s.queue, s.payload, s.priority, s.max_attempts, s.timeout_ms, now() as run_at,
    s.labels || jsonb_build_object('baton.schedule', s.name) as job_labels, ?::int as default_max_attempts, ?::bigint as default_timeout_ms,
    nextval('baton_jobs_id_seq') as job_id
  from baton_schedules s where s.name = ?
),
${insertJob('made')}
select j.id::text as job_id, (${announce('j')}) as announced from j`,
);

/**
 * Forgets ticks decided before `before`, at most 10,000 a call, but never a schedule's latest: that
 * one is where its next ticks count from. Parameter: before. Returns how many.
 */
export const PRUNE_SCHEDULE_TICKS = statement(
  'baton_prune_schedule_ticks',
  `
with old as (
  select t.ctid from baton_schedule_ticks t
  where t.tick_at < ?::timestamptz
    and t.tick_at < (select max(u.tick_at) from baton_schedule_ticks u where u.schedule_name = t.schedule_name)
  limit 10000
),
gone as (delete from baton_schedule_ticks t where t.ctid in (select ctid from old) returning 1)
select count(*)::int as n from gone`,
);
