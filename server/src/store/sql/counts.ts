/**
 * Statements for operators' read-outs (the dashboard, `baton stats`, /metrics): not on the hot path,
 * but run often, so each reads an index range rather than the whole table.
 */
import { statement } from '../sql-pool.ts';
import { CLOCK, NOW } from './clock.ts';
import { statusIn } from './state-machine.ts';

/** Counts by queue and status. The (queue, status, id) index answers it without touching rows. */
export const QUEUE_COUNTS = statement(
  'baton_queue_counts',
  `
select q.name as queue, coalesce(c.status, '') as status, coalesce(c.n, 0)::bigint::text as n
from baton_queues q left join lateral (
  select status, count(*) as n from baton_jobs where queue = q.name group by status
) c on true
order by q.name`,
);

/**
 * Jobs that reached COMPLETED or FAILED within the last `minutes`, per queue, status and minute ago
 * (0 = the last 60 seconds). Reads the `baton_jobs_finished` partial index over that window only, so
 * its cost follows the recent throughput, not the size of the table. Only terminal jobs carry a
 * `finished_at` (a CHECK constraint), and a retried job loses it.
 * Parameters: now (null for the database's), minutes, minutes.
 */
export const RECENT_THROUGHPUT = statement(
  'baton_recent_throughput',
  `
with ${CLOCK}
select queue, status, least(?::int - 1, greatest(0, floor(extract(epoch from ${NOW} - finished_at) / 60)))::int as ago,
  count(*)::bigint::text as n
from baton_jobs
where finished_at > ${NOW} - ?::int * interval '1 minute' and ${statusIn(['completed', 'failed'], 'status')}
group by 1, 2, 3`,
);
