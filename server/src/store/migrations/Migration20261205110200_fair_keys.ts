import { Migration } from '@mikro-orm/migrations';

/** The job columns before this migration, in the order both tables declare them (frozen here). */
const BEFORE = `id, queue, status, payload, priority, run_at, attempt, max_attempts, backoff_initial_ms, backoff_max_ms,
  backoff_multiplier, backoff_jitter, timeout_ms, idempotency_key, labels, traceparent, result, errors, progress, created_at,
  started_at, finished_at, lease_token, session_id, worker_id, deadline_at, cancel_requested, rate_limit_key`;

/**
 * Fair keys (docs/scheduling.md): a job's `concurrency_key` (e.g. a tenant); a queue with
 * `fair_keys` claims keys in turn, and `key_concurrency` limits each key's RUNNING jobs across
 * brokers (counted under the queue's row lock, as the queue's own limit is). Keyed jobs enter a
 * partial index of their own, which the claim walks key by key; jobs without a key never enter it.
 */
export class Migration20261205110200_fair_keys extends Migration {
  override name = 'Migration20261205110200_fair_keys';

  override up(): void {
    this.addSql(`alter table baton_queues add column fair_keys boolean not null default false`);
    this.addSql(`alter table baton_queues add column key_concurrency integer not null default 0`);
    this.addSql(`alter table baton_live_jobs add column concurrency_key text`);
    this.addSql(`alter table baton_job_history add column concurrency_key text`);
    this.addSql(`create or replace view baton_jobs as
      select ${BEFORE}, concurrency_key from baton_live_jobs
      union all
      select ${BEFORE}, concurrency_key from baton_job_history`);
    this.addSql(
      `create index baton_live_jobs_fair_key on baton_live_jobs (queue, concurrency_key, priority desc, run_at, id) where status = 'pending' and concurrency_key is not null`,
    );
  }

  override down(): void {
    this.addSql(`drop view baton_jobs`);
    this.addSql(`alter table baton_job_history drop column concurrency_key`);
    this.addSql(`alter table baton_live_jobs drop column concurrency_key`);
    this.addSql(`create view baton_jobs as select ${BEFORE} from baton_live_jobs union all select ${BEFORE} from baton_job_history`);
    this.addSql(`alter table baton_queues drop column key_concurrency`);
    this.addSql(`alter table baton_queues drop column fair_keys`);
  }
}
