/**
 * Unique keys no longer held (docs/scheduling.md, "Unique jobs"): an enqueue takes a free key over
 * by itself, so dropping them only keeps `baton_unique_keys` as small as the keys in use, and frees
 * the keys of jobs that were pruned (which an enqueue cannot tell from jobs it cannot see yet).
 */
import { statement } from '../sql-pool.ts';

/**
 * Drops up to 10,000 keys whose window ended, whose job is seen in a status the key does not cover,
 * or whose job is gone. The delete matches each key's row on its job too: a key taken over by a
 * new job after this statement's snapshot (whose job it cannot see) is then left alone.
 * Parameter: now (null for the database's clock). Returns how many.
 */
export const PRUNE_UNIQUE_KEYS = statement(
  'baton_prune_unique_keys',
  `
with free as (
  select k.queue, k.unique_key, k.job_id from baton_unique_keys k
  where k.expires_at <= coalesce(?::timestamptz, now())
    or exists (select 1 from baton_live_jobs l where l.id = k.job_id and l.status <> all (k.states))
    or exists (select 1 from baton_job_history h where h.id = k.job_id and h.status <> all (k.states))
    or (not exists (select 1 from baton_live_jobs l where l.id = k.job_id) and not exists (select 1 from baton_job_history h where h.id = k.job_id))
  limit 10000
),
dropped as (
  delete from baton_unique_keys k using free
  where k.queue = free.queue and k.unique_key = free.unique_key and k.job_id = free.job_id
  returning 1
)
select count(*)::int as dropped from dropped`,
);
