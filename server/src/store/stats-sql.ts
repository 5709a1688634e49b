/**
 * Statements for operators' read-outs (the dashboard, `baton stats`, /metrics): not on the hot path,
 * but run often, so each reads an index range rather than the whole table.
 */
import { statement } from './sql-pool.ts';

/**
 * Jobs that reached COMPLETED or FAILED within the last `minutes`, per queue, status and minute ago
 * (0 = the last 60 seconds). Reads the `baton_jobs_finished` partial index over that window only, so
 * its cost follows the recent throughput, not the size of the table. Only terminal jobs carry a
 * `finished_at` (a CHECK constraint), and a retried job loses it.
 * Parameters: minutes, minutes.
 */
export const RECENT_THROUGHPUT = statement('baton_recent_throughput', `
select queue, status, least(?::int - 1, greatest(0, floor(extract(epoch from now() - finished_at) / 60)))::int as ago,
  count(*)::bigint::text as n
from baton_jobs
where finished_at > now() - ?::int * interval '1 minute' and status in ('completed', 'failed')
group by 1, 2, 3`);
