/** DATABASE_URL: refused early when it cannot work, and masked wherever it is shown. */
import { ConfigError } from './config-errors.ts';

const DATABASE_URL_FORM = 'postgres://USER:PASSWORD@HOST:5432/DATABASE';

/**
 * Refuses a DATABASE_URL the broker could not use whatever the server says: not a URL, not
 * PostgreSQL's, no database name (the ORM needs one; PostgreSQL would silently take the user's name).
 */
export function checkDatabaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Not echoed: what does not parse cannot be masked, and it may hold a password.
    throw new ConfigError(`DATABASE_URL is not a URL: write it as ${DATABASE_URL_FORM}`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(`DATABASE_URL must start with postgres:// or postgresql://, got "${url.protocol}//…": write it as ${DATABASE_URL_FORM}`);
  }
  if (!url.pathname.replace(/^\/+/, '')) {
    throw new ConfigError(`DATABASE_URL (${maskDatabaseUrl(raw)}) names no database: add one after the host, as in ${DATABASE_URL_FORM}`);
  }
  return raw;
}

/** The URL with its password replaced by ***, fit for messages and logs. */
export function maskDatabaseUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'an unparsable URL';
  }
}
