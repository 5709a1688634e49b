import { Migration } from '@mikro-orm/migrations';

/** The job columns before this migration, in the order both tables declare them (frozen here: later columns are later migrations'). */
const BEFORE = `id, queue, status, payload, priority, run_at, attempt, max_attempts, backoff_initial_ms, backoff_max_ms,
  backoff_multiplier, backoff_jitter, timeout_ms, idempotency_key, labels, traceparent, result, errors, progress, created_at,
  started_at, finished_at, lease_token, session_id, worker_id, deadline_at, cancel_requested`;

/**
 * Rate limits (docs/scheduling.md): a queue's starts per interval, and per rate-limit key (a job's
 * `rate_limit_key`, e.g. a customer id) starts per interval for each key. Counted per fixed window
 * (aligned to the epoch) in `baton_rate_windows`, one row per queue ('' for the queue as a whole)
 * and key, written by the claims of a rate-limited queue under the queue's row lock, so the limit
 * holds across brokers. Keyed jobs enter a partial index of their own, which the claim walks key by
 * key; jobs without a key never enter it.
 */
export class Migration20261205110100_rate_limits extends Migration {
  override name = 'Migration20261205110100_rate_limits';

  override up(): void {
    this.addSql(`alter table baton_queues add column rate_limit integer not null default 0`);
    this.addSql(`alter table baton_queues add column rate_interval_ms integer not null default 1000`);
    this.addSql(`alter table baton_queues add column key_rate_limit integer not null default 0`);
    this.addSql(`alter table baton_queues add column key_rate_interval_ms integer not null default 1000`);
    this.addSql(`alter table baton_live_jobs add column rate_limit_key text`);
    this.addSql(`alter table baton_job_history add column rate_limit_key text`);
    this.addSql(`create or replace view baton_jobs as
      select ${BEFORE}, rate_limit_key from baton_live_jobs
      union all
      select ${BEFORE}, rate_limit_key from baton_job_history`);
    this.addSql(
      `create index baton_live_jobs_rate_key on baton_live_jobs (queue, rate_limit_key, priority desc, run_at, id) where status = 'pending' and rate_limit_key is not null`,
    );
    this.addSql(`
      create table baton_rate_windows (
        queue text not null,
        key text not null,
        window_start timestamptz not null,
        started integer not null,
        primary key (queue, key)
      )`);
  }

  override down(): void {
    this.addSql(`drop table baton_rate_windows`);
    this.addSql(`drop view baton_jobs`);
    this.addSql(`alter table baton_job_history drop column rate_limit_key`);
    this.addSql(`alter table baton_live_jobs drop column rate_limit_key`);
    this.addSql(`create view baton_jobs as select ${BEFORE} from baton_live_jobs union all select ${BEFORE} from baton_job_history`);
    for (const column of ['rate_limit', 'rate_interval_ms', 'key_rate_limit', 'key_rate_interval_ms'])
      this.addSql(`alter table baton_queues drop column ${column}`);
  }
}
