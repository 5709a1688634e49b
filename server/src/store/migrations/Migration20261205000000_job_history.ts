import { Migration } from '@mikro-orm/migrations';

/** The columns every job row has, live or finished, in the order both tables declare them. */
const JOB_COLUMN_LIST = `id, queue, status, payload, priority, run_at, attempt, max_attempts, backoff_initial_ms, backoff_max_ms,
  backoff_multiplier, backoff_jitter, timeout_ms, idempotency_key, labels, traceparent, result, errors, progress, created_at,
  started_at, finished_at, lease_token, session_id, worker_id, deadline_at, cancel_requested`;

/**
 * Live jobs and finished jobs in tables of their own (docs/storage.md):
 *
 * - `baton_live_jobs` (the former `baton_jobs`, renamed) holds only what claims scan and update:
 *   PENDING, SCHEDULED and RUNNING jobs. It stays small however much history is kept, and a job
 *   leaves it in the statement that finishes it.
 * - `baton_job_history` holds COMPLETED, FAILED and CANCELLED jobs, written once. FAILED jobs (the
 *   dead-letter set, never pruned) have a partition of their own; COMPLETED and CANCELLED ones are
 *   partitioned by the UTC day they finished, so retention drops a day's partition instead of
 *   deleting rows one by one. A default partition takes rows of days whose partition is missing (no
 *   leader created it in time); those are pruned row by row.
 * - `baton_jobs` becomes a view over both: every job, as operators' ad-hoc SQL knew the table.
 * - `baton_job_keys` holds idempotency keys: a unique index cannot span two tables, and a key must
 *   stay taken while its job is live or kept in history.
 * - Counters instead of counts: each statement that changes jobs' statuses appends its net change
 *   per (queue, status) to `baton_job_count_deltas` (an append-only table without indexes, so
 *   concurrent writers never wait for each other); the leader folds the deltas into
 *   `baton_job_counts` (totals) and `baton_job_minutes` (arrivals per minute, for throughput and
 *   wait time). Totals plus the deltas not folded yet are exact in any snapshot.
 *
 * Existing finished jobs are moved across, counted, and their idempotency keys carried over.
 */
export class Migration20261205000000_job_history extends Migration {
  override name = 'Migration20261205000000_job_history';

  override up(): void {
    this.addSql(`alter table baton_jobs rename to baton_live_jobs`);
    this.addSql(`
      create table baton_job_history (
        id bigint not null,
        queue text not null,
        status text not null check (status in ('completed', 'failed', 'cancelled')),
        payload jsonb not null,
        priority smallint not null,
        run_at timestamptz not null,
        attempt integer not null,
        max_attempts integer not null,
        backoff_initial_ms bigint not null,
        backoff_max_ms bigint not null,
        backoff_multiplier float8 not null,
        backoff_jitter float8 not null,
        timeout_ms bigint not null,
        idempotency_key text,
        labels jsonb not null,
        traceparent text,
        result jsonb,
        errors jsonb not null,
        progress jsonb,
        created_at timestamptz not null,
        started_at timestamptz,
        finished_at timestamptz not null,
        lease_token bigint,
        session_id bigint,
        worker_id text,
        deadline_at timestamptz,
        cancel_requested boolean not null
      ) partition by list (status)`);
    this.addSql(`create table baton_job_history_failed partition of baton_job_history for values in ('failed')`);
    this.addSql(`create table baton_job_history_done partition of baton_job_history for values in ('completed', 'cancelled') partition by range (finished_at)`);
    this.addSql(`create table baton_job_history_done_default partition of baton_job_history_done default`);
    // Get (by id), List (newest first, by queue); cancelled jobs are few among the completed.
    this.addSql(`create index baton_job_history_id on baton_job_history (id)`);
    this.addSql(`create index baton_job_history_queue_id on baton_job_history (queue, id desc)`);
    this.addSql(`create index baton_job_history_cancelled on baton_job_history_done (id desc) where status = 'cancelled'`);

    // Creates the day partitions around a time (the day before, to `ahead` days after). A day whose
    // rows already sit in the default partition is left there: attaching it would fail.
    this.addSql(`
      create function baton_ensure_history_partitions(around timestamptz, ahead int) returns int language plpgsql as $$
      declare
        day date;
        created int := 0;
      begin
        for day in select d::date from generate_series((around at time zone 'UTC')::date - 1, (around at time zone 'UTC')::date + ahead, interval '1 day') d loop
          if to_regclass('baton_job_history_done_' || to_char(day, 'YYYYMMDD')) is null then
            begin
              execute format('create table %I partition of baton_job_history_done for values from (%L) to (%L)',
                'baton_job_history_done_' || to_char(day, 'YYYYMMDD'), day::timestamp at time zone 'UTC', (day + 1)::timestamp at time zone 'UTC');
              created := created + 1;
            exception when check_violation then
              null;
            end;
          end if;
        end loop;
        return created;
      end $$`);
    // Drops one day's partition (retention), first taking its jobs off the counters and freeing their
    // idempotency keys; returns how many jobs it held. The caller holds a short lock_timeout: the drop
    // locks the parent table, and must not queue every completion behind a long read.
    this.addSql(`
      create function baton_drop_history_partition(part regclass) returns bigint language plpgsql as $$
      declare
        dropped bigint;
      begin
        execute format('with d as (insert into baton_job_count_deltas (queue, status, minute, n)
          select queue, status, date_trunc(''minute'', now()), -count(*) from %s group by queue, status returning n)
          select coalesce(-sum(n), 0) from d', part) into dropped;
        execute format('delete from baton_job_keys k using %s h
          where h.idempotency_key is not null and k.idempotency_key = h.idempotency_key and k.job_id = h.id', part);
        execute format('drop table %s', part);
        return dropped;
      end $$`);
    // Partitions for every day that has finished jobs now, so the move below lands in them.
    this.addSql(`
      select baton_ensure_history_partitions(d, 0) from (
        select distinct date_trunc('day', finished_at at time zone 'UTC') at time zone 'UTC' as d
        from baton_live_jobs where status in ('completed', 'cancelled')
      ) days`);
    this.addSql(`select baton_ensure_history_partitions(now(), 2)`);

    this.addSql(`create table baton_job_keys (idempotency_key text primary key, job_id bigint not null)`);
    this.addSql(`insert into baton_job_keys (idempotency_key, job_id) select idempotency_key, id from baton_live_jobs where idempotency_key is not null`);
    this.addSql(`
      insert into baton_job_history (${JOB_COLUMN_LIST})
      select ${JOB_COLUMN_LIST} from baton_live_jobs where status in ('completed', 'failed', 'cancelled')`);
    this.addSql(`delete from baton_live_jobs where status in ('completed', 'failed', 'cancelled')`);

    this.addSql(`drop index baton_jobs_idempotency`);
    this.addSql(`drop index baton_jobs_finished`);
    this.addSql(`drop index baton_jobs_listed`);
    this.addSql(`create index baton_live_jobs_listed on baton_live_jobs (status, id desc) where status in ('pending', 'scheduled')`);
    this.addSql(`alter table baton_live_jobs drop constraint baton_jobs_status_check`);
    this.addSql(`alter table baton_live_jobs drop constraint baton_jobs_terminal_has_finish`);
    this.addSql(`alter table baton_live_jobs add constraint baton_live_jobs_status_check check (status in ('pending', 'scheduled', 'running'))`);
    this.addSql(`alter table baton_live_jobs add constraint baton_live_jobs_not_finished check (finished_at is null)`);

    this.addSql(`
      create view baton_jobs as
      select ${JOB_COLUMN_LIST} from baton_live_jobs
      union all
      select ${JOB_COLUMN_LIST} from baton_job_history`);

    this.addSql(`
      create table baton_job_counts (
        queue text not null,
        status text not null,
        n bigint not null,
        primary key (queue, status)
      )`);
    this.addSql(`
      create table baton_job_count_deltas (
        queue text not null,
        status text not null,
        minute timestamptz not null,
        n integer not null,
        wait_ms bigint not null default 0
      )`);
    // Jobs that entered a status in each minute (RUNNING with the time they waited; COMPLETED; FAILED).
    this.addSql(`
      create table baton_job_minutes (
        queue text not null,
        status text not null,
        minute timestamptz not null,
        n bigint not null,
        wait_ms bigint not null,
        primary key (queue, status, minute)
      )`);
    this.addSql(`insert into baton_job_counts (queue, status, n) select queue, status, count(*) from baton_jobs group by queue, status`);
    this.addSql(`
      insert into baton_job_minutes (queue, status, minute, n, wait_ms)
      select queue, status, date_trunc('minute', finished_at), count(*), 0 from baton_job_history
      where status in ('completed', 'failed') and finished_at > now() - interval '2 hours'
      group by 1, 2, 3`);
  }

  override down(): void {
    this.addSql(`drop view baton_jobs`);
    this.addSql(`alter table baton_live_jobs drop constraint baton_live_jobs_not_finished`);
    this.addSql(`alter table baton_live_jobs drop constraint baton_live_jobs_status_check`);
    this.addSql(
      `alter table baton_live_jobs add constraint baton_jobs_status_check check (status in ('pending', 'scheduled', 'running', 'completed', 'failed', 'cancelled'))`,
    );
    this.addSql(`insert into baton_live_jobs (${JOB_COLUMN_LIST}) overriding system value select ${JOB_COLUMN_LIST} from baton_job_history`);
    this.addSql(
      `alter table baton_live_jobs add constraint baton_jobs_terminal_has_finish check ((status in ('completed', 'failed', 'cancelled')) = (finished_at is not null))`,
    );
    this.addSql(`drop index baton_live_jobs_listed`);
    this.addSql(`create index baton_jobs_listed on baton_live_jobs (status, id desc) where status in ('pending', 'scheduled', 'failed', 'cancelled')`);
    this.addSql(`create index baton_jobs_finished on baton_live_jobs (finished_at) where finished_at is not null`);
    this.addSql(`create unique index baton_jobs_idempotency on baton_live_jobs (idempotency_key) where idempotency_key is not null`);
    this.addSql(`drop table baton_job_minutes`);
    this.addSql(`drop table baton_job_count_deltas`);
    this.addSql(`drop table baton_job_counts`);
    this.addSql(`drop table baton_job_keys`);
    this.addSql(`drop table baton_job_history`);
    this.addSql(`drop function baton_drop_history_partition`);
    this.addSql(`drop function baton_ensure_history_partitions`);
    this.addSql(`alter table baton_live_jobs rename to baton_jobs`);
  }
}
