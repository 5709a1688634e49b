import { Migration } from '@mikro-orm/migrations';

/**
 * Where a fair queue's claims are in their round of keys (server/src/store/sql/claim-fair.ts): the
 * key the last claim ended on, so that the next one starts after it and a claim walks as many keys
 * as it takes jobs, not every key with jobs waiting.
 */
export class Migration20261205110300_fair_cursor extends Migration {
  override name = 'Migration20261205110300_fair_cursor';

  override up(): void {
    this.addSql(`alter table baton_queues add column fair_cursor text`);
  }

  override down(): void {
    this.addSql(`alter table baton_queues drop column fair_cursor`);
  }
}
