/**
 * API keys (docs/security.md): the scopes a key may have, and what is stored of a key. Which RPC
 * needs which scope is the auth layer's table (server/src/auth/scopes.ts), typed by the generated
 * service descriptors.
 */

/**
 * What an API key may do. `admin` may do everything; `producer` and `worker` only the RPCs listed
 * for them. A key has exactly one scope.
 */
export type Scope = 'producer' | 'worker' | 'admin';

export const SCOPES: readonly Scope[] = ['producer', 'worker', 'admin'];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** True when a key of `scope` may do what needs one of `required`; admin may do everything. */
export function scopeAllows(scope: Scope, required: readonly Scope[]): boolean {
  return scope === 'admin' || required.includes(scope);
}

/** An API key as stored: everything but the secret, which only its hash stands for. */
export interface ApiKeyRecord {
  id: string;
  name: string;
  scope: Scope;
  secretHash: string;
  createdAt: Date;
  /** When it stopped working; null while it is active. */
  revokedAt: Date | null;
}
