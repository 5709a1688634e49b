import { Code, ConnectError, createContextKey, createContextValues, type ContextValues, type Interceptor } from '@connectrpc/connect';
import type { TLSSocket } from 'node:tls';
import type { Authenticator, Principal } from './authenticator.ts';
import { requiredScopes } from './scopes.ts';

/** The verified key of the current request, for handlers that want to log or check it. */
export const principalKey = createContextKey<Principal | null>(null, { description: 'baton principal' });

/** Whether the request came over TLS with a client certificate the broker's client CA verified. */
export const clientCertificateKey = createContextKey<boolean>(false, { description: 'verified client certificate' });

/**
 * `contextValues` for `connectNodeAdapter`: records whether the connection presented a verified
 * client certificate, which only the Node request (not Connect's universal request) can tell.
 */
export function connectionContextValues(req: { socket: unknown }): ContextValues {
  const values = createContextValues();
  const socket = req.socket as Partial<TLSSocket> | null;
  values.set(clientCertificateKey, Boolean(socket?.encrypted && socket.authorized));
  return values;
}

export interface AuthInterceptorOptions {
  /** Verifies API keys; null when auth is off (BATON_AUTH=off), so only certificates are checked. */
  authenticator: Authenticator | null;
  /**
   * Workers must present a client certificate verified by BATON_TLS_CLIENT_CA: the worker-only
   * RPCs (Lease) are refused without one, whatever the key.
   */
  workerCertificateRequired: boolean;
}

/**
 * The one place where RPCs are allowed or refused. Every request of every service passes here:
 * health and reflection are open (see scopes.ts), everything else needs a key whose scope the
 * scope table allows, and, with mutual TLS for workers, Lease needs a verified client certificate.
 * Refusals are UNAUTHENTICATED (no, bad, revoked key; no certificate) or PERMISSION_DENIED (wrong
 * scope), each saying what is missing.
 */
export function createAuthInterceptor(options: AuthInterceptorOptions): Interceptor {
  const { authenticator, workerCertificateRequired } = options;
  return (next) => async (request) => {
    const required = requiredScopes(request.method);
    if (required === 'open') return next(request);
    const what = `${request.service.typeName}/${request.method.name}`;
    if (workerCertificateRequired && required.length === 1 && required[0] === 'worker' && !request.contextValues.get(clientCertificateKey)) {
      throw new ConnectError(
        `${what} requires a client certificate signed by the broker's client CA (mutual TLS for workers, BATON_TLS_CLIENT_CA)`,
        Code.Unauthenticated,
      );
    }
    if (authenticator) {
      const principal = await authenticator.authenticate(request.header.get('authorization'));
      authenticator.authorize(principal, required, what);
      request.contextValues.set(principalKey, principal);
    }
    return next(request);
  };
}
