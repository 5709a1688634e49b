import { PROMOTE_BATCH } from '../driver.ts';
import { statement } from '../sql-pool.ts';
import { announce } from './announce.ts';
import { CLOCK, NOW } from './clock.ts';
import { countChanges, movedFrom } from './history.ts';
import { canStartSql, status, targetSql } from './state-machine.ts';

/**
 * Makes due SCHEDULED jobs PENDING, oldest first, in bounded batches, and returns when the next
 * scheduled job falls due so that the leader can sleep exactly until then.
 * Parameter: now (null for the database's).
 */
export const PROMOTE_SCHEDULED = statement(
  'baton_promote_scheduled',
  `
with ${CLOCK},
due as (
  select id from baton_live_jobs
  where ${canStartSql('promote', 'status')} and run_at <= ${NOW} order by run_at limit ${PROMOTE_BATCH} for update skip locked
),
j as (
  update baton_live_jobs j set status = ${targetSql('promote')} from due where j.id = due.id returning j.id, j.queue, j.status
),
counted as (${countChanges(movedFrom('j', 'scheduled'), NOW)})
select (select count(*) from j) as promoted, (${announce('j')}) as announced,
  (select extract(epoch from min(run_at)) * 1000 from baton_live_jobs
    where status = ${status('scheduled')} and id not in (select id from j)) as next_due_ms`,
);
