/**
 * Enqueue: a batch of jobs in one INSERT (so one transaction: all or nothing), the batch passed as
 * one JSON parameter and unpacked by `jsonb_to_recordset`.
 */
import { DEFAULT_BACKOFF } from '../../domain/backoff.ts';
import { statement } from '../sql-pool.ts';
import { announce, announceSchedule } from './announce.ts';
import { JOB_COLUMNS, JOB_SUMMARY_COLUMNS } from './columns.ts';
import { countChanges } from './history.ts';
import { status } from './state-machine.ts';

/**
 * Inserts a batch of jobs, creating their queues on first use with the given defaults. Jobs whose
 * idempotency key is taken already (`baton_job_keys`) are skipped (the caller looks the existing ones up).
 *
 * A job may come with a session (and its worker id) that has credit and nothing to claim: it is then
 * inserted already RUNNING under that session (a hand-off), which saves the claim's round trip and
 * commit between enqueue and start. Only when its queue has no concurrency limit, no rate limit and no fair keys
 * (a limited queue's slots and starts are counted under its row lock, see ./claim.ts), is not paused, the job is due, and the
 * session still exists; otherwise it is inserted as usual and claimed later.
 * Parameters: the jobs as a JSON array (see `rowJson` in ../job-rows.ts: a key left out takes its
 * default), then the queue defaults
 * (concurrency, max attempts, timeout ms). Returns `columns` of the inserted jobs.
 */
function insertJobs(columns: string, unique = false): string {
  return `
with input as (
  select * from jsonb_to_recordset(?::jsonb) as r(
    ord int, queue text, payload jsonb, priority smallint, run_at timestamptz, delay_ms bigint, max_attempts int,
    backoff_initial_ms bigint, backoff_max_ms bigint, backoff_multiplier float8, backoff_jitter float8,
    timeout_ms bigint, idempotency_key text, labels jsonb, traceparent text, session_id bigint, worker_id text, rate_limit_key text, concurrency_key text${unique ? UNIQUE_INPUT : ''})
),
defaults as (select ?::int as concurrency, ?::int as max_attempts, ?::bigint as timeout_ms),
new_queues as (
  insert into baton_queues (name, concurrency, default_max_attempts, default_timeout_ms)
  select distinct i.queue, d.concurrency, d.max_attempts, d.timeout_ms from input i cross join defaults d
  on conflict (name) do nothing
  returning name, default_max_attempts, default_timeout_ms, concurrency, paused, rate_limit, key_rate_limit, fair_keys, key_concurrency
),
queues as (
  select name, default_max_attempts, default_timeout_ms, concurrency, paused, rate_limit, key_rate_limit, fair_keys, key_concurrency from new_queues
  union all
  select name, default_max_attempts, default_timeout_ms, concurrency, paused, rate_limit, key_rate_limit, fair_keys, key_concurrency
  from baton_queues where name in (select queue from input)
),
-- A left join: a queue that a concurrent enqueue created (committed after this statement's snapshot
-- was taken) is in neither branch above, and its jobs would silently vanish; it has the defaults.
timed as (
  select i.*, coalesce(i.run_at, now() + coalesce(i.delay_ms, 0) * interval '1 millisecond') as due,
    coalesce(q.default_max_attempts, d.max_attempts) as default_max_attempts,
    coalesce(q.default_timeout_ms, d.timeout_ms) as default_timeout_ms,
    i.session_id is not null and i.run_at is null and coalesce(i.delay_ms, 0) <= 0 and q.concurrency = 0 and q.rate_limit = 0 and q.key_rate_limit = 0
      and not q.fair_keys and q.key_concurrency = 0 and not q.paused
      and exists (select 1 from baton_sessions s where s.id = i.session_id) as handed
  from input i cross join defaults d left join queues q on q.name = i.queue
),
numbered as (select t.*, nextval('baton_jobs_id_seq') as id from (select * from timed order by ord) t),
-- A key is taken by the job that inserts it first; a job whose key was taken is not inserted.
keys as (
  insert into baton_job_keys (idempotency_key, job_id)
  select idempotency_key, id from numbered where idempotency_key is not null order by ord
  on conflict (idempotency_key) do nothing
  returning job_id
),${unique ? UNIQUE_KEYS : ''}
j as (
  insert into baton_live_jobs (id, queue, status, payload, priority, run_at, max_attempts, backoff_initial_ms, backoff_max_ms,
    backoff_multiplier, backoff_jitter, timeout_ms, idempotency_key, labels, traceparent,
    attempt, lease_token, session_id, worker_id, started_at, deadline_at, rate_limit_key, concurrency_key) overriding system value
  select id, queue, case when handed then ${status('running')} when due > now() then ${status('scheduled')} else ${status('pending')} end,
    coalesce(payload, 'null'::jsonb), coalesce(priority, 0), due, coalesce(max_attempts, default_max_attempts),
    coalesce(backoff_initial_ms, ${DEFAULT_BACKOFF.initialMs}), coalesce(backoff_max_ms, ${DEFAULT_BACKOFF.maxMs}),
    coalesce(backoff_multiplier, ${DEFAULT_BACKOFF.multiplier}), coalesce(backoff_jitter, ${DEFAULT_BACKOFF.jitter}),
    coalesce(timeout_ms, default_timeout_ms), idempotency_key, coalesce(labels, '{}'::jsonb), traceparent,
    case when handed then 1 else 0 end,
    case when handed then nextval('baton_lease_token_seq') end,
    case when handed then session_id end,
    case when handed then worker_id end,
    case when handed then now() end,
    case when handed and coalesce(timeout_ms, default_timeout_ms) > 0
      then now() + coalesce(timeout_ms, default_timeout_ms) * interval '1 millisecond' end,
    rate_limit_key, concurrency_key
  from numbered n where (n.idempotency_key is null or n.id in (select job_id from keys))${unique ? ' and (n.unique_key is null or n.id in (select job_id from unique_keys))' : ''}
  order by ord
  returning *
),
counted as (${countChanges('select queue, status, 1, 0::bigint from j')})
select ${columns}, (${announce('j')}) as announced, (${announceSchedule('j')}) as scheduled${unique ? ', (select ord from numbered n where n.id = j.id) as ord' : ''} from j order by j.id`;
}

/** The unique option's input columns (only in the statement for batches that use it). */
const UNIQUE_INPUT = ', unique_key text, unique_window_ms bigint, unique_states text[]';

/**
 * Unique keys (docs/scheduling.md): the first job of the batch with a (queue, key) inserts the key,
 * or takes it over from a holder that no longer counts: its window ended, or its job is seen in a
 * status the holder's states do not cover. A holder's job that this statement's snapshot cannot see
 * (one enqueued by a statement that committed after this one began, or pruned) counts: the key
 * stays held rather than be doubled; keys of pruned jobs are dropped by the leader
 * (../sql/unique-keys.ts). The primary key's conflict is decided under the row's lock, so of
 * producers racing on one key on any broker exactly one inserts or takes it over.
 */
const UNIQUE_KEYS = `
unique_keys as (
  insert into baton_unique_keys as k (queue, unique_key, job_id, expires_at, states)
  select distinct on (queue, unique_key) queue, unique_key, id,
    case when unique_window_ms > 0 then now() + unique_window_ms * interval '1 millisecond' end, unique_states
  from numbered where unique_key is not null order by queue, unique_key, ord
  on conflict (queue, unique_key) do update set job_id = excluded.job_id, expires_at = excluded.expires_at, states = excluded.states
  where k.expires_at <= now()
    or exists (select 1 from baton_live_jobs l where l.id = k.job_id and l.status <> all (k.states))
    or exists (select 1 from baton_job_history h where h.id = k.job_id and h.status <> all (k.states))
  returning job_id
),`;

export const INSERT_JOBS = statement('baton_insert_jobs', insertJobs(JOB_COLUMNS));

export const INSERT_JOB_SUMMARIES = statement('baton_insert_job_summaries', insertJobs(JOB_SUMMARY_COLUMNS));

/**
 * As INSERT_JOBS and INSERT_JOB_SUMMARIES, for batches where some job has a unique key: each row
 * also answers with its input's `ord`. Separate statements, so that batches without unique keys
 * run the statement they always ran.
 */
export const INSERT_UNIQUE_JOBS = statement('baton_insert_unique_jobs', insertJobs(JOB_COLUMNS, true));

export const INSERT_UNIQUE_JOB_SUMMARIES = statement('baton_insert_unique_job_summaries', insertJobs(JOB_SUMMARY_COLUMNS, true));

/**
 * The jobs holding unique keys now (for enqueues that turned out to be duplicates), live or kept in
 * history. Parameters: queues, keys (pairwise).
 */
export const JOBS_BY_UNIQUE_KEY = statement(
  'baton_jobs_by_unique_key',
  `select ${JOB_COLUMNS}, k.queue as unique_queue, k.unique_key from baton_unique_keys k
   join lateral (select * from baton_jobs j where j.id = k.job_id) j on true
   where (k.queue, k.unique_key) in (select * from unnest(?::text[], ?::text[]))`,
);

/**
 * Existing jobs by idempotency key (for enqueues that turned out to be duplicates), live or kept in
 * history. Parameter: keys.
 */
export const JOBS_BY_IDEMPOTENCY_KEY = statement(
  'baton_jobs_by_idempotency_key',
  `select ${JOB_COLUMNS} from baton_jobs j where j.id in (select job_id from baton_job_keys where idempotency_key = any(?::text[]))`,
);
