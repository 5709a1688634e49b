/**
 * Statements for operators' read-outs (the dashboard, `baton stats`, /metrics) and the leader's
 * upkeep of what they read: counters, never counts of rows, so that their cost follows the number
 * of queues and not the number of jobs kept (docs/storage.md).
 */
import { statement } from '../sql-pool.ts';
import { CLOCK, NOW } from './clock.ts';

/**
 * Jobs by queue and status: the folded totals plus the deltas not folded yet, read in one snapshot
 * (the fold moves deltas into totals in one transaction, so each change is counted exactly once).
 */
export const QUEUE_COUNTS = statement(
  'baton_queue_counts',
  `
select q.name as queue, coalesce(c.status, '') as status, coalesce(c.n, 0)::bigint::text as n
from baton_queues q left join (
  select queue, status, sum(n) as n from (
    select queue, status, n from baton_job_counts
    union all
    select queue, status, n from baton_job_count_deltas
  ) all_counts group by queue, status having sum(n) <> 0
) c on c.queue = q.name
order by q.name`,
);

/**
 * Jobs that entered COMPLETED or FAILED, and jobs that started with the milliseconds they waited,
 * within the last `minutes`, per queue, status and minute ago (0 = the current minute), from the
 * per-minute rollup and the deltas not folded into it yet.
 * Parameters: now (null for the database's), minutes, minutes.
 */
export const RECENT_THROUGHPUT = statement(
  'baton_recent_throughput',
  `
with ${CLOCK},
arrivals as (
  select queue, status, minute, n, wait_ms from baton_job_minutes where minute > date_trunc('minute', ${NOW}) - ?::int * interval '1 minute'
  union all
  select queue, status, minute, n, wait_ms from baton_job_count_deltas where n > 0 and status in ('running', 'completed', 'failed')
)
select queue, status, greatest(0, floor(extract(epoch from date_trunc('minute', ${NOW}) - minute) / 60))::int as ago,
  sum(n)::bigint::text as n, sum(wait_ms)::bigint::text as wait_ms
from arrivals
where minute > date_trunc('minute', ${NOW}) - ?::int * interval '1 minute'
group by 1, 2, 3`,
);

/**
 * The leader's fold: moves every delta committed so far into the totals and, for arrivals into
 * RUNNING, COMPLETED and FAILED, into the per-minute rollup, which keeps two hours. One statement,
 * so readers see each change either as a delta or in the totals, never both.
 * Parameter: now (null for the database's).
 */
export const FOLD_COUNTS = statement(
  'baton_fold_counts',
  `
with ${CLOCK},
d as (delete from baton_job_count_deltas returning *),
totals as (
  insert into baton_job_counts as c (queue, status, n)
  select queue, status, sum(n) from d group by queue, status
  on conflict (queue, status) do update set n = c.n + excluded.n
),
minutes as (
  insert into baton_job_minutes as m (queue, status, minute, n, wait_ms)
  select queue, status, minute, sum(n), sum(wait_ms) from d where n > 0 and status in ('running', 'completed', 'failed')
  group by queue, status, minute
  on conflict (queue, status, minute) do update set n = m.n + excluded.n, wait_ms = m.wait_ms + excluded.wait_ms
),
old as (delete from baton_job_minutes where minute < ${NOW} - interval '2 hours')
select count(*)::int as folded from d`,
);
