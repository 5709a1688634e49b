import { defineEntity, p } from '@mikro-orm/core';
import type { Scope } from '../domain/api-keys.ts';

/**
 * The ORM's view of the tables it reads and writes (queue settings and API keys; see ./migrations
 * for the schema). Jobs and sessions are read and written only by the driver's SQL (./sql), so
 * their rows are described once, by the columns those statements select (./sql/columns.ts).
 */
export const QueueEntity = defineEntity({
  name: 'Queue',
  tableName: 'baton_queues',
  properties: {
    name: p.text().primary(),
    concurrency: p.integer(),
    paused: p.boolean(),
    defaultMaxAttempts: p.integer().fieldName('default_max_attempts'),
    defaultTimeoutMs: p.bigint('number').fieldName('default_timeout_ms'),
    createdAt: p
      .datetime()
      .fieldName('created_at')
      .onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .fieldName('updated_at')
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
    watchedUntil: p.datetime().fieldName('watched_until').nullable(),
    rateLimit: p.integer().fieldName('rate_limit').default(0),
    rateIntervalMs: p.integer().fieldName('rate_interval_ms').default(1000),
    keyRateLimit: p.integer().fieldName('key_rate_limit').default(0),
    keyRateIntervalMs: p.integer().fieldName('key_rate_interval_ms').default(1000),
    fairKeys: p.boolean().fieldName('fair_keys').default(false),
    keyConcurrency: p.integer().fieldName('key_concurrency').default(0),
  },
});

/** An API key (docs/security.md): only the SHA-256 of its secret is stored. */
export const ApiKeyEntity = defineEntity({
  name: 'ApiKey',
  tableName: 'baton_api_keys',
  properties: {
    id: p.text().primary(),
    name: p.text(),
    scope: p.text().$type<Scope>(),
    secretHash: p.text().fieldName('secret_hash'),
    createdAt: p
      .datetime()
      .fieldName('created_at')
      .onCreate(() => new Date()),
    revokedAt: p.datetime().fieldName('revoked_at').nullable(),
  },
});

export type Queue = InstanceType<typeof QueueEntity.class>;
export type ApiKey = InstanceType<typeof ApiKeyEntity.class>;

export const ENTITIES = [QueueEntity, ApiKeyEntity];
