import type { IncomingHttpHeaders } from 'node:http';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Authenticator, Principal } from './authenticator.ts';
import type { Scope } from '../domain/api-keys.ts';

export type HttpAuthResult =
  | { ok: true; principal: Principal | null }
  | { ok: false; status: 401 | 403 | 503; message: string; headers: Record<string, string> };

/**
 * The RPC interceptor's check for plain HTTP routes (the dashboard, /metrics): the same keys, cache
 * and scopes. `authenticator` null means auth is off and everything is allowed. A failed check says
 * what to answer: 401 with `WWW-Authenticate: Bearer` for no, bad or revoked keys, 403 for a wrong
 * scope, 503 when the key database cannot be read.
 *
 * @example
 * const auth = await authorizeHttpRequest(authenticator, req.headers, ['admin'], 'GET /metrics');
 * if (!auth.ok) { res.writeHead(auth.status, { 'content-type': 'text/plain', ...auth.headers }).end(auth.message + '\n'); return; }
 */
export async function authorizeHttpRequest(
  authenticator: Authenticator | null,
  headers: IncomingHttpHeaders,
  required: readonly Scope[],
  what: string,
): Promise<HttpAuthResult> {
  if (!authenticator) return { ok: true, principal: null };
  try {
    const principal = await authenticator.authenticate(headers.authorization);
    authenticator.authorize(principal, required, what);
    return { ok: true, principal };
  } catch (error) {
    const connectError = error instanceof ConnectError ? error : null;
    if (connectError?.code === Code.Unauthenticated) {
      return { ok: false, status: 401, message: connectError.rawMessage, headers: { 'www-authenticate': 'Bearer realm="baton"' } };
    }
    if (connectError?.code === Code.PermissionDenied) return { ok: false, status: 403, message: connectError.rawMessage, headers: {} };
    return { ok: false, status: 503, message: 'cannot check the API key right now; retry shortly', headers: {} };
  }
}
