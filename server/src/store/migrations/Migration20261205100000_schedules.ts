import { Migration } from '@mikro-orm/migrations';

/**
 * Cron schedules (docs/scheduling.md). `baton_schedule_ticks` holds one row per decided tick: its
 * primary key is what makes a tick yield one job at most, whichever brokers try it and however often
 * (the job is inserted by the statement that inserts the tick, only when the tick row is new). A
 * schedule's ticks go with it.
 */
export class Migration20261205100000_schedules extends Migration {
  override name = 'Migration20261205100000_schedules';

  override up(): void {
    this.addSql(`
      create table baton_schedules (
        name text primary key,
        queue text not null,
        payload jsonb not null default 'null',
        cron text not null,
        time_zone text not null default 'UTC',
        priority smallint not null default 0 check (priority between -1000 and 1000),
        max_attempts int check (max_attempts between 1 and 1000),
        timeout_ms bigint check (timeout_ms >= 0),
        labels jsonb not null default '{}',
        paused boolean not null default false,
        missed text not null default 'skip' check (missed in ('skip', 'run_once', 'backfill')),
        backfill_limit int not null default 10 check (backfill_limit between 1 and 1000),
        overlap text not null default 'allow' check (overlap in ('allow', 'skip')),
        anchor_at timestamptz not null default now(),
        last_job_id bigint,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table baton_schedule_ticks (
        schedule_name text not null references baton_schedules (name) on delete cascade,
        tick_at timestamptz not null,
        job_id bigint,
        outcome text not null check (outcome in ('enqueued', 'skipped_overlap')),
        decided_at timestamptz not null default now(),
        primary key (schedule_name, tick_at)
      )`);
  }

  override down(): void {
    this.addSql('drop table baton_schedule_ticks');
    this.addSql('drop table baton_schedules');
  }
}
