/**
 * Retention (docs/storage.md): COMPLETED and CANCELLED jobs are kept in day partitions of
 * `baton_job_history_done`, and a day is dropped whole once its last moment is older than the
 * retention window, so a job is kept for the window and at most one day more. FAILED jobs are the
 * dead-letter set and stay. Rows in the default partition (days nobody created a partition for in
 * time) are deleted row by row.
 */
import { statement } from '../sql-pool.ts';
import { CLOCK, NOW } from './clock.ts';
import { countChanges } from './history.ts';

/** Day partitions wholly before the window. Parameters: now (null for the database's), retention ms. */
export const EXPIRED_PARTITIONS = statement(
  'baton_expired_partitions',
  `
with ${CLOCK}
select c.oid::regclass::text as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
where i.inhparent = 'baton_job_history_done'::regclass and c.relname ~ '^baton_job_history_done_[0-9]{8}$'
  and (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp at time zone 'UTC' <= ${NOW} - ?::bigint * interval '1 millisecond'
order by c.relname`,
);

/** Drops one expired partition (see `baton_drop_history_partition` in the migration). Parameter: its name. */
export const DROP_PARTITION = statement('baton_drop_partition', `select baton_drop_history_partition(?::regclass) as dropped`);

/** Deletes a bounded batch of expired rows from the default partition. Parameters: now (null for the database's), retention ms. */
export const PRUNE_DEFAULT_PARTITION = statement(
  'baton_prune_default_partition',
  `
with ${CLOCK},
gone as (
  delete from baton_job_history_done_default where id in (
    select id from baton_job_history_done_default where finished_at < ${NOW} - ?::bigint * interval '1 millisecond' limit 10000
  )
  returning queue, status, id, idempotency_key
),
keys as (
  delete from baton_job_keys k using gone g where g.idempotency_key is not null and k.idempotency_key = g.idempotency_key and k.job_id = g.id
),
counted as (${countChanges('select queue, status, -1, 0::bigint from gone')})
select count(*)::int as pruned from gone`,
);

/** Day partitions for yesterday, today and the next two days (UTC), made ahead of need. Parameter: now (null for the database's). */
export const ENSURE_PARTITIONS = statement('baton_ensure_partitions', `with ${CLOCK} select baton_ensure_history_partitions(${NOW}, 2) as created`);
