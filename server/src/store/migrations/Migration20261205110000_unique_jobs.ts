import { Migration } from '@mikro-orm/migrations';

/**
 * Unique jobs (docs/scheduling.md): `baton_unique_keys` holds, per queue and unique key, the job
 * that holds the key, until when (null: no window) and in which statuses it counts. Its primary key
 * is what decides a race between producers on any broker: an enqueue inserts the key, or takes it
 * over only when the holder no longer counts (its window ended, or its job left the statuses),
 * checked by `on conflict … do update … where` in the enqueue's own statement. The key is not
 * released by the statements that finish jobs, so that the hot path pays nothing for it.
 */
export class Migration20261205110000_unique_jobs extends Migration {
  override name = 'Migration20261205110000_unique_jobs';

  override up(): void {
    this.addSql(`
      create table baton_unique_keys (
        queue text not null,
        unique_key text not null,
        job_id bigint not null,
        expires_at timestamptz,
        states text[] not null,
        primary key (queue, unique_key)
      )`);
    // The leader drops keys whose window ended, oldest first.
    this.addSql(`create index baton_unique_keys_expires on baton_unique_keys (expires_at) where expires_at is not null`);
  }

  override down(): void {
    this.addSql(`drop table baton_unique_keys`);
  }
}
