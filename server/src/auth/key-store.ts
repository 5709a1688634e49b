import type { MikroORM } from '@mikro-orm/postgresql';
import type { ApiKeyRecord, Scope } from '../domain/api-keys.ts';
import { ApiKeyEntity } from '../store/entities.ts';
import { generateApiKey, hashSecret } from './api-key.ts';

/** The named operations on `baton_api_keys`; nothing else reads or writes that table. */
export class ApiKeyStore {
  readonly #orm: MikroORM;

  constructor(orm: MikroORM) {
    this.#orm = orm;
  }

  /** Stores a new key and returns it whole: the only time the full key exists outside the caller. */
  async create(params: { scope: Scope; name?: string }): Promise<{ key: string; record: ApiKeyRecord }> {
    const em = this.#orm.em.fork();
    const { id, secret, key } = generateApiKey();
    const entity = em.create(ApiKeyEntity, {
      id,
      name: params.name ?? '',
      scope: params.scope,
      secretHash: hashSecret(secret),
      createdAt: new Date(),
      revokedAt: null,
    });
    await em.flush();
    return { key, record: toRecord(entity) };
  }

  /** One key by id, revoked or not; null when there is none. */
  async find(params: { id: string }): Promise<ApiKeyRecord | null> {
    const entity = await this.#orm.em.fork().findOne(ApiKeyEntity, { id: params.id });
    return entity ? toRecord(entity) : null;
  }

  /** Every key, oldest first; revoked ones only when asked. */
  async list(params: { includeRevoked?: boolean } = {}): Promise<ApiKeyRecord[]> {
    const where = params.includeRevoked ? {} : { revokedAt: null };
    const entities = await this.#orm.em.fork().find(ApiKeyEntity, where, { orderBy: { createdAt: 'asc', id: 'asc' } });
    return entities.map(toRecord);
  }

  /**
   * Marks a key revoked (brokers stop accepting it within their cache window). Revoking a revoked
   * key changes nothing and returns it as it is; null when no key has this id.
   */
  async revoke(params: { id: string; now?: Date }): Promise<ApiKeyRecord | null> {
    const em = this.#orm.em.fork();
    const entity = await em.findOne(ApiKeyEntity, { id: params.id });
    if (!entity) return null;
    if (!entity.revokedAt) {
      entity.revokedAt = params.now ?? new Date();
      await em.flush();
    }
    return toRecord(entity);
  }

  /** How many keys can be used right now (a broker with auth on and none warns at start). */
  async countActive(): Promise<number> {
    return this.#orm.em.fork().count(ApiKeyEntity, { revokedAt: null });
  }
}

function toRecord(entity: InstanceType<typeof ApiKeyEntity.class>): ApiKeyRecord {
  return {
    id: entity.id,
    name: entity.name,
    scope: entity.scope,
    secretHash: entity.secretHash,
    createdAt: entity.createdAt,
    revokedAt: entity.revokedAt ?? null,
  };
}
