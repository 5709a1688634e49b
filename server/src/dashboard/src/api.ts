/// <reference lib="dom" />
/**
 * The dashboard's connection to the broker that served it: connect-web's Connect transport (plain
 * fetch over HTTP/1.1 or HTTP/2, binary protobuf), the Broker and Admin clients, and the API key.
 */
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-web';
import { Admin } from '@baton/worker-sdk/gen/admin';
import { Broker } from '@baton/worker-sdk/gen/broker';

const TOKEN_KEY = 'baton.token';

/** The API key the user gave, kept for this browser tab only. */
export function getToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function setToken(token: string): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

const auth: Interceptor = (next) => (request) => {
  const token = getToken();
  if (token) request.header.set('authorization', `Bearer ${token}`);
  return next(request);
};

// Relative to the page, so a broker behind a path prefix (a reverse proxy) works too.
const baseUrl = new URL('.', location.href).href.replace(/\/$/, '');
const transport = createConnectTransport({ baseUrl, useBinaryFormat: true, interceptors: [auth] });

export const broker = createClient(Broker, transport);
export const admin = createClient(Admin, transport);

/** True for errors that an API key would fix. */
export function needsKey(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return code === Code.Unauthenticated || code === Code.PermissionDenied;
}

/** True when the call was stopped on purpose (an AbortSignal), not a failure to report. */
export function wasAborted(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Canceled;
}

/** A one-line message for a failed call. */
export function errorText(error: unknown): string {
  const e = ConnectError.from(error);
  if (e.code === Code.Unavailable || e.code === Code.Unknown) return `The broker is unreachable (${e.rawMessage}); retrying.`;
  return e.rawMessage;
}
