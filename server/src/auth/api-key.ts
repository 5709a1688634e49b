import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyRecord, Scope } from '../domain/api-keys.ts';
import type { StoreDriver } from '../store/driver.ts';

/**
 * API keys look like `bk_<id>_<secret>`: `bk_` marks a Baton key (so secret scanners and people
 * can recognise one), `<id>` is 12 hex digits naming the key (not secret: it is listed, logged and
 * used to revoke), `<secret>` is 64 hex digits (256 random bits). Only a SHA-256 hash of the secret
 * is stored. A fast hash is enough here, unlike for passwords: with 256 random bits there is
 * nothing to guess, so slowing each guess down (bcrypt, scrypt, argon2) buys nothing and would
 * cost CPU on every cache miss.
 */
export interface ApiKeyParts {
  id: string;
  secret: string;
}

export const API_KEY_PREFIX = 'bk_';
const FORMAT = /^bk_([0-9a-f]{12})_([0-9a-f]{64})$/;

/** A new random key; the full key is shown once and never stored. */
export function generateApiKey(): ApiKeyParts & { key: string } {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('hex');
  return { id, secret, key: `${API_KEY_PREFIX}${id}_${secret}` };
}

/** Makes a key and stores it; the result is the only time the full key exists outside the caller. */
export async function issueApiKey(
  store: Pick<StoreDriver, 'apiKeyCreate'>,
  params: { scope: Scope; name?: string },
): Promise<{ key: string; record: ApiKeyRecord }> {
  const { id, secret, key } = generateApiKey();
  const record = await store.apiKeyCreate({ id, name: params.name ?? '', scope: params.scope, secretHash: hashSecret(secret) });
  return { key, record };
}

/** Splits a key into id and secret, or null when the text is not shaped like a Baton key. */
export function parseApiKey(token: string): ApiKeyParts | null {
  const match = FORMAT.exec(token);
  return match ? { id: match[1], secret: match[2] } : null;
}

/** What is stored for a secret: its SHA-256, hex. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Compares a presented secret with a stored hash in constant time. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

/** `bk_<id>_…`: how a key is shown once its secret must not be. */
export function redactedKey(id: string): string {
  return `${API_KEY_PREFIX}${id}_…`;
}
