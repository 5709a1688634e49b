import { Migration } from '@mikro-orm/migrations';

/**
 * API keys (docs/security.md). Only the SHA-256 of each key's secret is kept; the key itself is
 * shown once, by `baton keys create`. Revoked keys stay, marked, so that `baton keys list` can
 * still say who had access and until when.
 */
export class Migration20261123100000_api_keys extends Migration {
  override name = 'Migration20261123100000_api_keys';

  override up(): void {
    this.addSql(`
      create table baton_api_keys (
        id text primary key check (id ~ '^[0-9a-f]{12}$'),
        name text not null default '',
        scope text not null check (scope in ('producer', 'worker', 'admin')),
        secret_hash text not null check (secret_hash ~ '^[0-9a-f]{64}$'),
        created_at timestamptz not null default now(),
        revoked_at timestamptz
      )`);
  }

  override down(): void {
    this.addSql(`drop table baton_api_keys`);
  }
}
