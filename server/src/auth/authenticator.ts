import { Code, ConnectError } from '@connectrpc/connect';
import { parseApiKey, redactedKey, secretMatches } from './api-key.ts';
import { type ApiKeyRecord, type Scope, scopeAllows } from '../domain/api-keys.ts';
import { describeScopes } from './scopes.ts';

/** The key a request was made with, once verified. */
export interface Principal {
  keyId: string;
  name: string;
  scope: Scope;
}

export interface AuthenticatorOptions {
  /** Reads one key by id (the store's apiKeyGet); called at most once per key per cache window. */
  findKey: (id: string) => Promise<ApiKeyRecord | null>;
  /**
   * How long a key read from the database is trusted before it is read again, in ms. A revoked key
   * keeps working on a broker for up to this long. 0 reads the database on every call.
   */
  cacheMs: number;
  /** Most keys (including ids that matched nothing) kept in the cache. @defaultValue 10_000 */
  maxCached?: number;
  /** The clock, replaceable in tests. */
  now?: () => number;
}

interface CacheEntry {
  record: ApiKeyRecord | null;
  until: number;
}

/**
 * Verifies bearer tokens and checks scopes, for the RPC interceptor and for plain HTTP routes alike.
 * Keys are cached by id for `cacheMs` so the hot path does not query the database per call: the
 * secret is still hashed and compared on every call (a microsecond), only the lookup is cached.
 * Ids that match no key are cached too, so a flood of made-up keys costs one query per id and window.
 */
export class Authenticator {
  readonly #findKey: AuthenticatorOptions['findKey'];
  readonly #cacheMs: number;
  readonly #maxCached: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #loading = new Map<string, Promise<ApiKeyRecord | null>>();

  constructor(options: AuthenticatorOptions) {
    this.#findKey = options.findKey;
    this.#cacheMs = options.cacheMs;
    this.#maxCached = options.maxCached ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The principal behind an `authorization` header value (`Bearer <key>`), or UNAUTHENTICATED
   * saying what is wrong: no header, not a bearer token, not a Baton key, unknown or revoked key.
   */
  async authenticate(authorization: string | null | undefined): Promise<Principal> {
    if (!authorization) {
      throw unauthenticated(
        'this broker requires an API key: send the header "authorization: Bearer <key>" ' +
          '(an operator creates keys with "baton keys create --scope producer|worker|admin")',
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) throw unauthenticated('the authorization header must be "Bearer <key>"');
    const parts = parseApiKey(match[1]);
    if (!parts) throw unauthenticated('the bearer token is not a Baton API key (they look like bk_<12 hex>_<64 hex>)');
    const record = await this.#lookup(parts.id);
    // Unknown id and wrong secret answer alike, so a guess learns nothing about which ids exist.
    if (!record || !secretMatches(parts.secret, record.secretHash)) {
      throw unauthenticated(`API key ${redactedKey(parts.id)} is not valid`);
    }
    if (record.revokedAt) throw unauthenticated(`API key ${redactedKey(parts.id)} was revoked at ${record.revokedAt.toISOString()}`);
    return { keyId: record.id, name: record.name, scope: record.scope };
  }

  /** PERMISSION_DENIED unless `principal` may do what needs one of `required`; `what` names it. */
  authorize(principal: Principal, required: readonly Scope[], what: string): void {
    if (scopeAllows(principal.scope, required)) return;
    const named = principal.name ? ` ("${principal.name}")` : '';
    throw new ConnectError(
      `${what} needs an API key with ${describeScopes(required)}; key ${principal.keyId}${named} has the ${principal.scope} scope`,
      Code.PermissionDenied,
    );
  }

  /** Forgets every cached key (the next call of each key reads the database). */
  clear(): void {
    this.#cache.clear();
  }

  async #lookup(id: string): Promise<ApiKeyRecord | null> {
    const now = this.#now();
    const cached = this.#cache.get(id);
    if (cached && cached.until > now) return cached.record;
    // Concurrent first calls with one key share one query.
    let loading = this.#loading.get(id);
    if (!loading) {
      loading = this.#findKey(id).finally(() => this.#loading.delete(id));
      this.#loading.set(id, loading);
    }
    const record = await loading;
    if (this.#cacheMs > 0) {
      this.#cache.delete(id); // re-inserted last: the Map's order is then oldest-first
      this.#cache.set(id, { record, until: now + this.#cacheMs });
      if (this.#cache.size > this.#maxCached) this.#cache.delete(this.#cache.keys().next().value!);
    }
    return record;
  }
}

function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}
