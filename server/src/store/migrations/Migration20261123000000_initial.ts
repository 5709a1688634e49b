import { Migration } from '@mikro-orm/migrations';

/**
 * The initial schema. Written by hand rather than generated: the partial indexes below are what
 * keep the claim, the reaper and the concurrency count index-only as the backlog grows, and the
 * CHECK constraints are the database's copy of the state machine (server/src/core/state-machine.ts).
 */
export class Migration20261123000000_initial extends Migration {
  override name = 'Migration20261123000000_initial';

  override up(): void {
    this.addSql(`
      create table baton_queues (
        name text primary key,
        concurrency integer not null default 0 check (concurrency >= 0),
        paused boolean not null default false,
        default_max_attempts integer not null default 3 check (default_max_attempts between 1 and 1000),
        default_timeout_ms bigint not null default 0 check (default_timeout_ms >= 0),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table baton_sessions (
        id bigint generated always as identity primary key,
        worker_id text not null,
        broker_id text not null,
        queues text[] not null,
        capacity integer not null,
        connected_at timestamptz not null default now(),
        expires_at timestamptz not null
      )`);
    this.addSql(`create index baton_sessions_expires on baton_sessions (expires_at)`);
    this.addSql(`create sequence baton_lease_token_seq`);
    this.addSql(`
      create table baton_jobs (
        id bigint generated always as identity primary key,
        queue text not null,
        status text not null check (status in ('pending', 'scheduled', 'running', 'completed', 'failed', 'cancelled')),
        payload jsonb not null,
        priority smallint not null default 0 check (priority between -1000 and 1000),
        run_at timestamptz not null default now(),
        attempt integer not null default 0 check (attempt >= 0),
        max_attempts integer not null check (max_attempts between 1 and 1000),
        backoff_initial_ms bigint not null default 1000,
        backoff_max_ms bigint not null default 600000,
        backoff_multiplier float8 not null default 2,
        backoff_jitter float8 not null default 0.2,
        timeout_ms bigint not null default 0,
        idempotency_key text,
        labels jsonb not null default '{}',
        traceparent text,
        result jsonb,
        errors jsonb not null default '[]',
        progress jsonb,
        created_at timestamptz not null default now(),
        started_at timestamptz,
        finished_at timestamptz,
        lease_token bigint,
        session_id bigint,
        worker_id text,
        deadline_at timestamptz,
        cancel_requested boolean not null default false,
        constraint baton_jobs_running_has_lease check ((status = 'running') = (lease_token is not null)),
        constraint baton_jobs_terminal_has_finish check ((status in ('completed', 'failed', 'cancelled')) = (finished_at is not null))
      )`);
    // The claim reads this index in order and stops after LIMIT rows.
    this.addSql(`create index baton_jobs_claim on baton_jobs (queue, priority desc, run_at, id) where status = 'pending'`);
    this.addSql(`create index baton_jobs_scheduled on baton_jobs (run_at) where status = 'scheduled'`);
    // Concurrency counts, stream-close releases and lease checks touch running jobs only.
    this.addSql(`create index baton_jobs_running on baton_jobs (queue, session_id) where status = 'running'`);
    this.addSql(`create unique index baton_jobs_running_token on baton_jobs (lease_token) where status = 'running'`);
    this.addSql(`create index baton_jobs_deadline on baton_jobs (deadline_at) where status = 'running' and deadline_at is not null`);
    this.addSql(`create unique index baton_jobs_idempotency on baton_jobs (idempotency_key) where idempotency_key is not null`);
    // List: newest first within a queue and/or status.
    this.addSql(`create index baton_jobs_queue_status_id on baton_jobs (queue, status, id desc)`);
    this.addSql(`create index baton_jobs_status_id on baton_jobs (status, id desc)`);
    this.addSql(`create index baton_jobs_finished on baton_jobs (finished_at) where finished_at is not null`);
  }

  override down(): void {
    this.addSql(`drop table baton_jobs`);
    this.addSql(`drop sequence baton_lease_token_seq`);
    this.addSql(`drop table baton_sessions`);
    this.addSql(`drop table baton_queues`);
  }
}
