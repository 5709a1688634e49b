/**
 * The hot path: every statement that moves jobs in bulk, in one place. Each is set-based (one
 * statement for a whole batch of jobs, with the batch passed as one JSON parameter and unpacked by
 * `jsonb_to_recordset`), applies its transition only to rows still in the expected status and, for
 * running jobs, still held under the given lease token (fencing), and announces what it changed on
 * the `baton_job` channel in the same statement, so that the announcement is delivered exactly when
 * the change commits.
 *
 * Time is the database's `now()`: with several brokers, the database is the one clock they share.
 */
import { backoffDelaySql, statusAfterFailureSql, statusAfterLeaseLostSql } from './sql/state-machine.ts';
import type { ListFilter } from './job-store.ts';
import { statement } from './sql-pool.ts';

/** Columns the Lease stream needs to hand a job to a worker. Payload and labels stay JSON text. */
const ASSIGNMENT_COLUMNS = `j.id::text as id, j.queue, j.payload::text as payload, j.lease_token::text as lease_token,
  j.attempt, j.max_attempts, j.timeout_ms, j.created_at, j.labels::text as labels, j.traceparent, j.priority`;

/** All columns, for answers that return whole jobs. */
export const JOB_COLUMNS = `j.id::text as id, j.queue, j.status, j.payload::text as payload, j.priority, j.run_at, j.attempt,
  j.max_attempts, j.backoff_initial_ms, j.backoff_max_ms, j.backoff_multiplier, j.backoff_jitter, j.timeout_ms,
  j.idempotency_key, j.labels::text as labels, j.traceparent, j.result::text as result, j.errors::text as errors,
  j.progress::text as progress, j.created_at, j.started_at, j.finished_at, j.lease_token::text as lease_token,
  j.session_id::text as session_id, j.worker_id, j.cancel_requested`;

/**
 * Announces changed jobs, grouped by queue and status, at most 300 ids per notification so that each
 * payload stays under PostgreSQL's 8000-byte limit. `changed` must expose id, queue and status.
 */
function announce(changed: string): string {
  return `select count(pg_notify('baton_job', json_build_object('q', queue, 's', status, 'ids', ids)::text)) as announced
    from (select queue, status, array_agg(id::text) as ids from ${changed} group by queue, status, id / 300) as groups`;
}

/**
 * Announces the jobs of `changed` only for queues with a Watch open (`watched_until`, see
 * WATCH_QUEUE): claims announce this way, since nobody else waits for RUNNING (dispatchers ignore
 * it). A claim that took its snapshot before a Watch marked the queue goes unannounced; the Watch
 * then sees that job's next change, which is never lost: results, failures and releases announce
 * always (a Watch waiting for a job to finish must not miss it).
 */
function announceWatched(changed: string): string {
  return announce(`(select c.id, c.queue, c.status from ${changed} c
    where exists (select 1 from baton_queues q where q.name = c.queue and q.watched_until > now())) as watched`);
}

/** Tells the leader when the earliest newly SCHEDULED job of `changed` falls due, so it can sleep until then. */
function announceSchedule(changed: string): string {
  return `select count(pg_notify('baton_schedule', (extract(epoch from due) * 1000)::bigint::text))
    from (select min(run_at) as due from ${changed} where status = 'scheduled') as s where due is not null`;
}

/**
 * Inserts a batch of jobs, creating their queues on first use with the given defaults. Jobs whose
 * idempotency key exists already are skipped (the caller looks the existing ones up).
 *
 * A job may come with a session (and its worker id) that has credit and nothing to claim: it is then
 * inserted already RUNNING under that session (a hand-off), which saves the claim's round trip and
 * commit between enqueue and start. Only when its queue has no concurrency limit (a limited queue's
 * slots are counted under its row lock, see CLAIM_LIMITED), is not paused, the job is due, and the
 * session still exists; otherwise it is inserted as usual and claimed later.
 * Parameter: the jobs as a JSON array (see `EnqueueRow`), then the queue defaults. Returns `columns`
 * of the inserted jobs.
 */
function insertJobs(columns: string): string {
  return `
with input as (
  select * from jsonb_to_recordset(?::jsonb) as r(
    ord int, queue text, payload jsonb, priority smallint, run_at timestamptz, delay_ms bigint, max_attempts int,
    backoff_initial_ms bigint, backoff_max_ms bigint, backoff_multiplier float8, backoff_jitter float8,
    timeout_ms bigint, idempotency_key text, labels jsonb, traceparent text, session_id bigint, worker_id text)
),
defaults as (select ?::int as concurrency, ?::int as max_attempts, ?::bigint as timeout_ms),
new_queues as (
  insert into baton_queues (name, concurrency, default_max_attempts, default_timeout_ms)
  select distinct i.queue, d.concurrency, d.max_attempts, d.timeout_ms from input i cross join defaults d
  on conflict (name) do nothing
  returning name, default_max_attempts, default_timeout_ms, concurrency, paused
),
queues as (
  select name, default_max_attempts, default_timeout_ms, concurrency, paused from new_queues
  union all
  select name, default_max_attempts, default_timeout_ms, concurrency, paused from baton_queues where name in (select queue from input)
),
-- A left join: a queue that a concurrent enqueue created (committed after this statement's snapshot
-- was taken) is in neither branch above, and its jobs would silently vanish; it has the defaults.
timed as (
  select i.*, coalesce(i.run_at, now() + coalesce(i.delay_ms, 0) * interval '1 millisecond') as due,
    coalesce(q.default_max_attempts, d.max_attempts) as default_max_attempts,
    coalesce(q.default_timeout_ms, d.timeout_ms) as default_timeout_ms,
    i.session_id is not null and i.run_at is null and coalesce(i.delay_ms, 0) <= 0 and q.concurrency = 0 and not q.paused
      and exists (select 1 from baton_sessions s where s.id = i.session_id) as handed
  from input i cross join defaults d left join queues q on q.name = i.queue
),
j as (
  insert into baton_jobs (queue, status, payload, priority, run_at, max_attempts, backoff_initial_ms, backoff_max_ms,
    backoff_multiplier, backoff_jitter, timeout_ms, idempotency_key, labels, traceparent,
    attempt, lease_token, session_id, worker_id, started_at, deadline_at)
  select queue, case when handed then 'running' when due > now() then 'scheduled' else 'pending' end,
    coalesce(payload, 'null'::jsonb), priority, due,
    coalesce(max_attempts, default_max_attempts), backoff_initial_ms, backoff_max_ms, backoff_multiplier, backoff_jitter,
    coalesce(timeout_ms, default_timeout_ms), idempotency_key, labels, traceparent,
    case when handed then 1 else 0 end,
    case when handed then nextval('baton_lease_token_seq') end,
    case when handed then session_id end,
    case when handed then worker_id end,
    case when handed then now() end,
    case when handed and coalesce(timeout_ms, default_timeout_ms) > 0
      then now() + coalesce(timeout_ms, default_timeout_ms) * interval '1 millisecond' end
  from timed order by ord
  on conflict (idempotency_key) where idempotency_key is not null do nothing
  returning *
)
select ${columns}, (${announce('j')}) as announced, (${announceSchedule('j')}) as scheduled from j order by j.id`;
}

export const INSERT_JOBS = statement('baton_insert_jobs', insertJobs(JOB_COLUMNS));

/** What an `ids_only` batch answers with: no payloads, results or histories to read back and decode. */
const JOB_SUMMARY_COLUMNS = `j.id::text as id, j.queue, j.status, j.idempotency_key`;

export const INSERT_JOB_SUMMARIES = statement('baton_insert_job_summaries', insertJobs(JOB_SUMMARY_COLUMNS));

/** Existing jobs by idempotency key (for enqueues that turned out to be duplicates). */
export const JOBS_BY_IDEMPOTENCY_KEY = statement('baton_jobs_by_idempotency_key', `select ${JOB_COLUMNS} from baton_jobs j where j.idempotency_key = any(?::text[])`);

/**
 * Get and List: ordinary reads, run through the ORM's connection (which inlines the parameters, so
 * `?` and `in (?)` rather than this file's prepared `$n`), selecting the JSON columns as text.
 */
export const GET_JOB = `select ${JOB_COLUMNS} from baton_jobs j where j.id = ?`;

/** One List page: only the filters given, so that each shape of query gets a plan of its own. */
export function listJobs(filter: ListFilter): { text: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const filterBy = (condition: string, value: unknown) => {
    where.push(condition);
    params.push(value);
  };
  if (filter.queue) filterBy('j.queue = ?', filter.queue);
  if (filter.statuses?.length) filterBy('j.status in (?)', filter.statuses);
  if (filter.beforeId) filterBy('j.id < ?', filter.beforeId);
  params.push(filter.limit);
  return {
    text: `select ${JOB_COLUMNS} from baton_jobs j ${where.length ? `where ${where.join(' and ')}` : ''} order by j.id desc limit ?`,
    params,
  };
}

/**
 * Marks a queue as watched for the next minute (a Watch renews it while open), so that claims
 * announce its jobs. Returns no row when the queue does not exist (yet). Parameter: queue.
 */
export const WATCH_QUEUE = statement('baton_watch_queue', `
update baton_queues set watched_until = greatest(watched_until, now() + interval '60 seconds') where name = ? returning name`);

/** Tells every broker that a queue's settings changed, so each reloads them. Parameter: queue. */
export const ANNOUNCE_QUEUE_CHANGE = statement('baton_announce_queue_change', `select pg_notify('baton_queue', ?)`);

/**
 * A claim commits without waiting for its WAL to reach the disk (`synchronous_commit` off for its
 * transaction alone; SET LOCAL from inside the statement). Losing a claim in a database crash loses
 * no job: the job is PENDING again as it was before, and the worker's result for it is refused as
 * stale, so it runs again (delivery is at least once). Whatever the claim's worker reports later is
 * committed durably, and that commit flushes the claim's WAL before it. Evaluated once per claimed
 * row, so a claim that found nothing sets nothing. Saves about a third of a millisecond per claim
 * on this machine's disk (docs/reliability.md).
 */
const RELAXED_COMMIT = `set_config('synchronous_commit', 'off', true) as relaxed_commit`;

const CLAIM_SET = `status = 'running', attempt = j.attempt + 1, lease_token = nextval('baton_lease_token_seq'),
  session_id = ?::bigint, worker_id = ?, started_at = now(),
  deadline_at = case when j.timeout_ms > 0 then now() + j.timeout_ms * interval '1 millisecond' end`;

/**
 * Claims up to `limit` runnable jobs of a queue that has no concurrency limit, for one session,
 * best first (priority, then run time, then age). `skip locked` lets brokers claim side by side
 * without waiting for each other; the queue check makes a claim that raced a pause or a new limit
 * take nothing (the dispatcher then reloads the queue's settings), and so does a claim for a
 * session the leader has expired meanwhile (its jobs would only be lost again).
 * Parameters: queue, queue, session id, limit, session id, worker id.
 */
export const CLAIM_UNLIMITED = statement('baton_claim_unlimited', `
with picked as (
  select id from baton_jobs
  where queue = ? and status = 'pending'
    and exists (select 1 from baton_queues q where q.name = ? and not q.paused and q.concurrency = 0)
    and exists (select 1 from baton_sessions s where s.id = ?::bigint)
  order by priority desc, run_at, id
  limit ?
  for update skip locked
),
j as (
  update baton_jobs j set ${CLAIM_SET}
  from picked where j.id = picked.id
  returning j.*
)
select ${ASSIGNMENT_COLUMNS}, (${announceWatched('j')}) as announced, ${RELAXED_COMMIT} from j order by j.priority desc, j.id`);

/**
 * Locks a limited queue's row for the rest of the transaction: claims of one limited queue are
 * serialised across every broker, so that the count of running jobs the next statement reads is
 * the truth and the limit holds across replicas.
 */
export const LOCK_QUEUE = statement('baton_lock_queue', `select concurrency, paused from baton_queues where name = ? for update`);

/**
 * Claims up to `limit` jobs of a limited queue, never more than its free slots. Runs after
 * LOCK_QUEUE in the same transaction (a new statement, so a new snapshot that sees every claim
 * committed before the lock was granted). Parameters: concurrency, queue, queue, session id, limit, session id, worker id.
 */
export const CLAIM_LIMITED = statement('baton_claim_limited', `
with free as (
  select greatest(0, ?::int - count(*)) as slots from baton_jobs where queue = ? and status = 'running'
),
picked as (
  select id from baton_jobs
  where queue = ? and status = 'pending'
    and exists (select 1 from baton_sessions s where s.id = ?::bigint)
  order by priority desc, run_at, id
  limit least(?::int, (select slots from free))
  for update skip locked
),
j as (
  update baton_jobs j set ${CLAIM_SET}
  from picked where j.id = picked.id
  returning j.*
)
select ${ASSIGNMENT_COLUMNS}, (${announceWatched('j')}) as announced, ${RELAXED_COMMIT} from j order by j.priority desc, j.id`);

/**
 * Records successful results. Only rows still RUNNING under the reported token change: a late
 * result from a worker whose lease was reassigned changes nothing, and a duplicate result finds the
 * job no longer running. Parameter: JSON array of {id, token, result}.
 */
export const COMPLETE_JOBS = statement('baton_complete_jobs', `
with v as (select * from jsonb_to_recordset(?::jsonb) as r(id bigint, token bigint, result jsonb)),
j as (
  update baton_jobs j set status = 'completed', result = v.result, finished_at = now(), lease_token = null,
    deadline_at = null
  from v where j.id = v.id and j.lease_token = v.token and j.status = 'running'
  returning j.id, j.queue, j.status
)
select j.id::text as id, (${announce('j')}) as announced from j`);

const NEXT_AFTER_FAILURE = statusAfterFailureSql('v.non_retryable');

/**
 * Records failed attempts: each goes to SCHEDULED after its backoff (or the worker's retry_after,
 * whichever is longer), or to FAILED when no attempt is left, or to CANCELLED when a cancel was
 * requested; the attempt's error is appended to the job's history either way.
 * Parameter: JSON array of {id, token, message, non_retryable, retry_after_ms}.
 */
export const FAIL_JOBS = statement('baton_fail_jobs', `
with v as (
  select * from jsonb_to_recordset(?::jsonb) as r(id bigint, token bigint, message text, non_retryable boolean, retry_after_ms bigint)
),
j as (
  update baton_jobs j set
    status = ${NEXT_AFTER_FAILURE},
    run_at = case when ${NEXT_AFTER_FAILURE} = 'scheduled'
      then now() + greatest(coalesce(v.retry_after_ms, 0), ${backoffDelaySql()}) * interval '1 millisecond'
      else j.run_at end,
    finished_at = case when ${NEXT_AFTER_FAILURE} = 'scheduled' then null else now() end,
    errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'message', v.message, 'at', now(), 'worker_id', j.worker_id)),
    lease_token = null, deadline_at = null
  from v where j.id = v.id and j.lease_token = v.token and j.status = 'running'
  returning j.id, j.queue, j.status, j.run_at
)
select j.id::text as id, j.status, (${announce('j')}) as announced, (${announceSchedule('j')}) as scheduled from j`);

/** Stores progress of running jobs, fenced like results. Parameter: JSON array of {id, token, progress}. */
export const RECORD_PROGRESS = statement('baton_record_progress', `
update baton_jobs j set progress = v.progress
from jsonb_to_recordset(?::jsonb) as v(id bigint, token bigint, progress jsonb)
where j.id = v.id and j.lease_token = v.token and j.status = 'running'`);

/**
 * A job whose holder vanished keeps its `run_at` (and so its place among jobs of its priority): it
 * was due when it was claimed, and a rescue that sent it behind the whole backlog would leave it
 * waiting for minutes after its worker died.
 */
const LEASE_LOST_SET = (message: string) => `
    status = ${statusAfterLeaseLostSql()},
    finished_at = case when ${statusAfterLeaseLostSql()} = 'pending' then null else now() end,
    errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'message', ${message}, 'at', now(), 'worker_id', j.worker_id)),
    lease_token = null, deadline_at = null, session_id = null`;

/**
 * Ends a session whose stream closed: its running jobs are runnable again at once (the attempt
 * counts), and its row is deleted. Parameters: reason, session id, session id.
 */
export const RELEASE_SESSION = statement('baton_release_session', `
with j as (
  update baton_jobs j set ${LEASE_LOST_SET('?::text')}
  where j.session_id = ?::bigint and j.status = 'running'
  returning j.id, j.queue, j.status
),
gone as (delete from baton_sessions where id = ?::bigint)
select j.id::text as id, (${announce('j')}) as announced from j`);

/**
 * Renews sessions and reports, for each, which of the tokens its worker believes it holds are no
 * longer its own, and the tokens of its jobs whose cancel was requested (`cancel_requested`: a
 * cancel announced while the claim that handed the job to this session was still on its way is
 * delivered here at the latest); `alive` is false for a session that is gone (expired and reaped). One statement
 * for the heartbeats of many streams, committed asynchronously (see RELAXED_COMMIT: a renewal lost
 * in a crash is made good by the next one, well within the TTL).
 * Parameters: JSON array of {session_id, tokens: [string]}, ttl ms.
 */
export const HEARTBEAT = statement('baton_heartbeat', `
with v as (
  select * from rows from (jsonb_to_recordset(?::jsonb) as (session_id bigint, tokens jsonb)) with ordinality as r(session_id, tokens, ord)
),
s as (
  update baton_sessions set expires_at = now() + ?::bigint * interval '1 millisecond'
  where id in (select session_id from v) returning id
)
select v.session_id::text as session_id, s.id is not null as alive,
  coalesce((select json_agg(t.token) from jsonb_array_elements_text(v.tokens) as t(token)
    where not exists (select 1 from baton_jobs j where j.lease_token = t.token::bigint and j.status = 'running' and j.session_id = v.session_id)), '[]')::text as lost,
  coalesce((select json_agg(j.lease_token::text) from baton_jobs j
    where j.session_id = v.session_id and j.status = 'running' and j.cancel_requested), '[]')::text as cancel_requested,
  ${RELAXED_COMMIT}
from v left join s on s.id = v.session_id
order by v.ord`);

/** Opens a session. Parameters: worker id, broker id, queues (JSON array), capacity, ttl ms. */
export const OPEN_SESSION = statement('baton_open_session', `
insert into baton_sessions (worker_id, broker_id, queues, capacity, expires_at)
select ?, ?, array(select jsonb_array_elements_text(?::jsonb)), ?::int, now() + ?::bigint * interval '1 millisecond'
returning id::text as id`);

/**
 * Expires sessions not heard from within their TTL (their worker or their broker died) and hands
 * their jobs back. Run by the elected leader.
 */
export const REAP_EXPIRED_SESSIONS = statement('baton_reap_expired_sessions', `
with expired as (delete from baton_sessions where expires_at < now() returning id),
j as (
  update baton_jobs j set ${LEASE_LOST_SET(`'lease expired: no heartbeat within the lease TTL'`)}
  where j.status = 'running' and (j.session_id in (select id from expired)
    or not exists (select 1 from baton_sessions s where s.id = j.session_id))
  returning j.id, j.queue, j.status
)
select j.id::text as id, (${announce('j')}) as announced from j`);

/**
 * Fails attempts that outlived their timeout by more than `grace` ms (the worker should have
 * stopped them itself; this catches workers that did not), and tells their holders to stop.
 * Parameter: grace ms.
 */
export const TIME_OUT_JOBS = statement('baton_time_out_jobs', `
with v as (
  select id, lease_token as token, format('timed out after %s ms', timeout_ms) as message, false as non_retryable,
    null::bigint as retry_after_ms, session_id as holder
  from baton_jobs where status = 'running' and deadline_at < now() - ?::bigint * interval '1 millisecond'
  for update skip locked
),
j as (
  update baton_jobs j set
    status = ${NEXT_AFTER_FAILURE},
    run_at = case when ${NEXT_AFTER_FAILURE} = 'scheduled'
      then now() + ${backoffDelaySql()} * interval '1 millisecond' else j.run_at end,
    finished_at = case when ${NEXT_AFTER_FAILURE} = 'scheduled' then null else now() end,
    errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'message', v.message, 'at', now(), 'worker_id', j.worker_id)),
    lease_token = null, deadline_at = null
  from v where j.id = v.id and j.lease_token = v.token and j.status = 'running'
  returning j.id, j.queue, j.status, j.run_at, v.token, v.holder
),
told as (select pg_notify('baton_cancel', json_build_object('id', id::text, 'token', token::text, 'reason', 'timeout')::text) from j)
select j.id::text as id, (${announce('j')}) as announced, (${announceSchedule('j')}) as scheduled,
  (select count(*) from told) as told from j`);

/**
 * Makes due SCHEDULED jobs PENDING, oldest first, in bounded batches, and returns when the next
 * scheduled job falls due so that the leader can sleep exactly until then.
 */
export const PROMOTE_SCHEDULED = statement('baton_promote_scheduled', `
with due as (
  select id from baton_jobs where status = 'scheduled' and run_at <= now() order by run_at limit 5000 for update skip locked
),
j as (
  update baton_jobs j set status = 'pending' from due where j.id = due.id returning j.id, j.queue, j.status
)
select (select count(*) from j) as promoted, (${announce('j')}) as announced,
  (select extract(epoch from min(run_at)) * 1000 from baton_jobs where status = 'scheduled' and id not in (select id from j)) as next_due_ms`);

/**
 * Cancels one job: PENDING or SCHEDULED at once; RUNNING by recording the request and telling the
 * holder (on whichever broker its stream lives) through `baton_cancel`. Parameter: id.
 */
export const CANCEL_JOB = statement('baton_cancel_job', `
with j as (
  update baton_jobs j set
    status = case when j.status = 'running' then 'running' else 'cancelled' end,
    cancel_requested = j.status = 'running',
    finished_at = case when j.status = 'running' then null else now() end
  where j.id = ?::bigint and j.status in ('pending', 'scheduled', 'running')
  returning j.*
),
told as (
  select pg_notify('baton_cancel', json_build_object('id', id::text, 'token', lease_token::text, 'reason', 'cancelled')::text)
  from j where status = 'running'
)
select ${JOB_COLUMNS}, (${announce('j')}) as announced, (select count(*) from told) as told from j`);

/** A FAILED or CANCELLED job back to PENDING with its attempts reset; its error history stays. Parameter: id. */
export const RETRY_JOB = statement('baton_retry_job', `
with j as (
  update baton_jobs j set status = 'pending', attempt = 0, run_at = now(), finished_at = null, result = null,
    cancel_requested = false, worker_id = null, progress = null
  where j.id = ?::bigint and j.status in ('failed', 'cancelled')
  returning j.*
)
select ${JOB_COLUMNS}, (${announce('j')}) as announced from j`);

/** Counts by queue and status. The (queue, status, id) index answers it without touching rows. */
export const QUEUE_COUNTS = statement('baton_queue_counts', `
select q.name as queue, coalesce(c.status, '') as status, coalesce(c.n, 0)::bigint::text as n
from baton_queues q left join lateral (
  select status, count(*) as n from baton_jobs where queue = q.name group by status
) c on true
order by q.name`);

/** Deletes COMPLETED and CANCELLED jobs finished before the retention window, in bounded batches. Parameter: retention ms. */
export const PRUNE_FINISHED = statement('baton_prune_finished', `
delete from baton_jobs where id in (
  select id from baton_jobs where status in ('completed', 'cancelled')
    and finished_at < now() - ?::bigint * interval '1 millisecond' limit 10000
)`);
