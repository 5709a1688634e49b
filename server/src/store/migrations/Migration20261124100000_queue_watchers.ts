import { Migration } from '@mikro-orm/migrations';

/**
 * Until when a queue has a Watch open on some broker (renewed while it stays open). Claims announce
 * their jobs only for watched queues: nobody else listens for RUNNING, and every announcement costs
 * the committing transaction a database-wide lock and every listening broker a message.
 */
export class Migration20261124100000_queue_watchers extends Migration {
  override name = 'Migration20261124100000_queue_watchers';

  override up(): void {
    this.addSql(`alter table baton_queues add column watched_until timestamptz`);
  }

  override down(): void {
    this.addSql(`alter table baton_queues drop column watched_until`);
  }
}
