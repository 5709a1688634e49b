/**
 * Claims: runnable jobs of one queue to one session, best first (priority, then run time, then
 * age), through the claim index (`status = 'pending'`, ordered as the claim reads it) and
 * `for update skip locked`, so that brokers claim side by side without waiting for each other.
 */
import { statement } from '../sql-pool.ts';
import { announceWatched } from './announce.ts';
import { ASSIGNMENT_COLUMNS } from './columns.ts';
import { countChanges, movedFrom, WAITED_MS } from './history.ts';
import { RELAXED_COMMIT } from './relaxed-commit.ts';
import { canStartSql, status, targetSql } from './state-machine.ts';

const CLAIM_SET = `status = ${targetSql('claim')}, attempt = j.attempt + 1, lease_token = nextval('baton_lease_token_seq'),
  session_id = ?::bigint, worker_id = ?, started_at = now(),
  deadline_at = case when j.timeout_ms > 0 then now() + j.timeout_ms * interval '1 millisecond' end`;

/**
 * What the claims do with the rows they `picked`: start them for the session and answer with them.
 * `more` adds statements over the started jobs `j` (a rate-limited claim counts its starts).
 */
export const claimPicked = (more = '') => `j as (
  update baton_live_jobs j set ${CLAIM_SET}
  from picked where j.id = picked.id
  returning j.*
),${more}
counted as (${countChanges(movedFrom('j', 'pending', WAITED_MS))})
select ${ASSIGNMENT_COLUMNS}, (${announceWatched('j')}) as announced, ${RELAXED_COMMIT} from j order by j.priority desc, j.id`;

const CLAIM_PICKED = claimPicked();

/**
 * Claims up to `limit` runnable jobs of a queue that has no concurrency limit, for one session. The
 * queue check makes a claim that raced a pause or a new limit take nothing (the dispatcher then
 * reloads the queue's settings), and so does a claim for a session the leader has expired
 * meanwhile (its jobs would only be lost again).
 * Parameters: queue, queue, session id, limit, session id, worker id.
 */
export const CLAIM_UNLIMITED = statement(
  'baton_claim_unlimited',
  `
with picked as (
  select id from baton_live_jobs
  where queue = ? and ${canStartSql('claim', 'status')}
    and exists (select 1 from baton_queues q where q.name = ? and not q.paused and q.concurrency = 0)
    and exists (select 1 from baton_sessions s where s.id = ?::bigint)
  order by priority desc, run_at, id
  limit ?
  for update skip locked
),
${CLAIM_PICKED}`,
);

/**
 * Locks a limited queue's row for the rest of the transaction: claims of one limited queue are
 * serialised across every broker, so that the count of running jobs the next statement reads is
 * the truth and the limit holds across replicas. Parameter: queue.
 */
export const LOCK_QUEUE = statement(
  'baton_lock_queue',
  `select concurrency, paused, rate_limit, rate_interval_ms, key_rate_limit, key_rate_interval_ms, fair_keys, key_concurrency from baton_queues where name = ? for update`,
);

/**
 * Claims up to `limit` jobs of a limited queue, never more than its free slots (the limit less its
 * RUNNING jobs). Runs after LOCK_QUEUE in the same transaction (a new statement, so a new snapshot
 * that sees every claim committed before the lock was granted).
 * Parameters: concurrency, queue, queue, session id, limit, session id, worker id.
 */
export const CLAIM_LIMITED = statement(
  'baton_claim_limited',
  `
with free as (
  select greatest(0, ?::int - count(*)) as slots from baton_live_jobs where queue = ? and status = ${status('running')}
),
picked as (
  select id from baton_live_jobs
  where queue = ? and ${canStartSql('claim', 'status')}
    and exists (select 1 from baton_sessions s where s.id = ?::bigint)
  order by priority desc, run_at, id
  limit least(?::int, (select slots from free))
  for update skip locked
),
${CLAIM_PICKED}`,
);

/**
 * The start of the fixed window of `intervalMs` (a SQL expression) that the transaction's time falls
 * in; windows are aligned to the epoch, so every broker computes the same ones.
 */
const windowStart = (intervalMs: string) => `to_timestamp(floor(extract(epoch from now()) * 1000 / ${intervalMs}) * ${intervalMs} / 1000.0)`;

/**
 * Starts still allowed in the window starting at `start` for (queue, key), under `limit`. A count of
 * a later window means this transaction's time (taken when it began, before it waited for the
 * queue's lock) is behind a claim that already ran: nothing is allowed, so windows only move forward
 * and no window is counted twice.
 */
const allowance = (limit: string, key: string, start: string) => `coalesce((
  select case when w.window_start > ${start} then 0 when w.window_start = ${start} then greatest(0, ${limit} - w.started) else ${limit} end
  from baton_rate_windows w where w.queue = p.queue and w.key = ${key}), ${limit})`;

/**
 * The parameters of a rate-limited claim, the current windows, and `cap`: how many jobs it may start
 * at most (the free slots of a concurrency limit, and the queue's starts left in its window).
 */
const RATED_HEAD = `
p as (
  select ?::text as queue, ?::int as concurrency, ?::int as rate_limit, ?::int as rate_interval_ms, ?::int as key_rate_limit,
    ?::int as key_rate_interval_ms, ?::int as wanted, ?::bigint as session_id
),
win as (select ${windowStart('p.rate_interval_ms')} as q_start, ${windowStart('p.key_rate_interval_ms')} as k_start from p),
cap as (
  select case when not exists (select 1 from baton_sessions s where s.id = p.session_id) then 0 else least(p.wanted,
    case when p.concurrency = 0 then p.wanted
      else greatest(0, p.concurrency - (select count(*) from baton_live_jobs r where r.queue = p.queue and r.status = ${status('running')}))::int end,
    case when p.rate_limit = 0 then p.wanted else ${allowance('p.rate_limit', "''", 'win.q_start')} end) end as n
  from p, win
)`;

/** Counts the starts of `j` in the windows: the queue's, and each rate-limit key's. */
const RECORD_STARTS = `
recorded as (
  insert into baton_rate_windows as w (queue, key, window_start, started)
  select p.queue, '', win.q_start, count(*) from j, p, win where p.rate_limit > 0 group by p.queue, win.q_start
  union all
  select p.queue, j.rate_limit_key, win.k_start, count(*) from j, p, win
  where p.key_rate_limit > 0 and j.rate_limit_key is not null group by p.queue, j.rate_limit_key, win.k_start
  on conflict (queue, key) do update
    set started = case when w.window_start = excluded.window_start then w.started + excluded.started else excluded.started end,
      window_start = excluded.window_start
),`;

/**
 * Claims jobs of a queue with a rate limit for the whole queue (and maybe a concurrency limit), at
 * most its starts left in the current window, and counts them there. Runs after LOCK_QUEUE in the
 * same transaction, like CLAIM_LIMITED: claims of the queue are serialised across brokers, so the
 * count read is the truth. Parameters: queue, concurrency, rate limit, its interval ms, key rate
 * limit, its interval ms, limit, session id, then session id and worker id.
 */
export const CLAIM_RATED = statement(
  'baton_claim_rated',
  `
with ${RATED_HEAD},
picked as (
  select l.id from baton_live_jobs l, p
  where l.queue = p.queue and ${canStartSql('claim', 'l.status')}
  order by l.priority desc, l.run_at, l.id
  limit (select n from cap)
  for update of l skip locked
),
${claimPicked(RECORD_STARTS)}`,
);

/**
 * Claims jobs of a queue with a limit per rate-limit key: key by key (a loose scan of the keyed
 * jobs' partial index finds the keys with pending jobs), each key's best jobs up to its starts left
 * in the window, then the best of those and of the jobs without a key up to `cap`. Jobs without a
 * key are looked for among the queue's first 1,000 pending jobs only, so that a backlog of keyed
 * jobs held back by their keys' limits is not read through at every claim. Same transaction and
 * parameters as CLAIM_RATED.
 */
export const CLAIM_KEY_RATED = statement(
  'baton_claim_key_rated',
  `
with recursive ${RATED_HEAD},
keys(k) as (
  (select l.rate_limit_key from baton_live_jobs l, p
   where l.queue = p.queue and l.status = ${status('pending')} and l.rate_limit_key is not null
   order by l.rate_limit_key limit 1)
  union all
  select (select l.rate_limit_key from baton_live_jobs l, p
    where l.queue = p.queue and l.status = ${status('pending')} and l.rate_limit_key > keys.k
    order by l.rate_limit_key limit 1)
  from keys where keys.k is not null
),
candidates as (
  select c.id, c.priority, c.run_at from keys cross join p cross join win
  cross join lateral (
    select l.id, l.priority, l.run_at from baton_live_jobs l
    where l.queue = p.queue and l.status = ${status('pending')} and l.rate_limit_key = keys.k
    order by l.priority desc, l.run_at, l.id
    limit least((select n from cap), ${allowance('p.key_rate_limit', 'keys.k', 'win.k_start')})
  ) c
  where keys.k is not null
  union all
  select h.id, h.priority, h.run_at from (
    select l.id, l.priority, l.run_at, l.rate_limit_key from baton_live_jobs l, p
    where l.queue = p.queue and l.status = ${status('pending')}
    order by l.priority desc, l.run_at, l.id limit 1000
  ) h where h.rate_limit_key is null
),
best as (select id from candidates order by priority desc, run_at, id limit (select n from cap)),
picked as (
  select l.id from baton_live_jobs l where l.id in (select id from best) and l.status = ${status('pending')}
  for update of l skip locked
),
${claimPicked(RECORD_STARTS)}`,
);

/**
 * When the earliest window whose limit is used up ends (ms since the epoch), or null: after a
 * rate-limited claim that took fewer jobs than asked, the dispatcher tries again then. Parameters:
 * queue, rate limit, its interval ms, key rate limit, its interval ms.
 */
export const RATE_HELD_BACK = statement(
  'baton_rate_held_back',
  `
with p as (select ?::text as queue, ?::int as rate_limit, ?::int as rate_interval_ms, ?::int as key_rate_limit, ?::int as key_rate_interval_ms),
ends as (
  select w.window_start + (case when w.key = '' then p.rate_interval_ms else p.key_rate_interval_ms end) * interval '1 millisecond' as ends_at
  from baton_rate_windows w, p
  where w.queue = p.queue
    and ((w.key = '' and p.rate_limit > 0 and w.started >= p.rate_limit) or (w.key <> '' and p.key_rate_limit > 0 and w.started >= p.key_rate_limit))
)
select (extract(epoch from min(ends_at)) * 1000)::float8 as until_ms from ends where ends_at > now()`,
);
