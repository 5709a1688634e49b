import { PRUNED_STATUSES } from '../../domain/job-status.ts';
import { statement } from '../sql-pool.ts';
import { CLOCK, NOW } from './clock.ts';
import { statusIn } from './state-machine.ts';

/**
 * Deletes jobs the retention window lets go (COMPLETED and CANCELLED; FAILED ones are the
 * dead-letter set and stay) finished before the window, in bounded batches, through the
 * `finished_at` index. Parameters: now (null for the database's), retention ms.
 */
export const PRUNE_FINISHED = statement(
  'baton_prune_finished',
  `
with ${CLOCK},
gone as (
  delete from baton_jobs where id in (
    select id from baton_jobs where ${statusIn(PRUNED_STATUSES, 'status')}
      and finished_at < ${NOW} - ?::bigint * interval '1 millisecond' limit 10000
  )
  returning 1
)
select count(*)::int as pruned from gone`,
);
