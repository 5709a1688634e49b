/**
 * API keys on PostgreSQL (docs/security.md): ordinary reads and writes of `baton_api_keys` through
 * the ORM. Keys are made and checked in server/src/auth; only a key's id, scope, name and the hash
 * of its secret reach this table.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { ApiKeyRecord } from '../domain/api-keys.ts';
import type { StoreDriver } from './driver.ts';
import { type ApiKey, ApiKeyEntity } from './entities.ts';

type ApiKeyOperations = Pick<StoreDriver, 'apiKeyCreate' | 'apiKeyGet' | 'apiKeyList' | 'apiKeyRevoke' | 'apiKeyCountActive'>;

export function createApiKeyOperations(options: { orm: MikroORM }): ApiKeyOperations {
  const { orm } = options;

  return {
    async apiKeyCreate({ id, name, scope, secretHash, now }) {
      const em = orm.em.fork();
      const entity = em.create(ApiKeyEntity, { id, name, scope, secretHash, createdAt: now ?? new Date(), revokedAt: null });
      await em.flush();
      return toApiKeyRecord(entity);
    },

    async apiKeyGet({ id }) {
      const entity = await orm.em.fork().findOne(ApiKeyEntity, { id });
      return entity ? toApiKeyRecord(entity) : null;
    },

    async apiKeyList({ includeRevoked }) {
      const where = includeRevoked ? {} : { revokedAt: null };
      const entities = await orm.em.fork().find(ApiKeyEntity, where, { orderBy: { createdAt: 'asc', id: 'asc' } });
      return entities.map(toApiKeyRecord);
    },

    async apiKeyRevoke({ id, now }) {
      const em = orm.em.fork();
      const entity = await em.findOne(ApiKeyEntity, { id });
      if (!entity) return null;
      if (!entity.revokedAt) {
        entity.revokedAt = now ?? new Date();
        await em.flush();
      }
      return toApiKeyRecord(entity);
    },

    async apiKeyCountActive() {
      return orm.em.fork().count(ApiKeyEntity, { revokedAt: null });
    },
  };
}

function toApiKeyRecord(entity: ApiKey): ApiKeyRecord {
  return {
    id: entity.id,
    name: entity.name,
    scope: entity.scope,
    secretHash: entity.secretHash,
    createdAt: entity.createdAt,
    revokedAt: entity.revokedAt ?? null,
  };
}
