import { Code, ConnectError } from '@connectrpc/connect';

/**
 * Turns anything thrown below the API into a ConnectError, once, at the RPC boundary. Errors that
 * are already ConnectErrors pass through; a database that cannot be reached becomes UNAVAILABLE
 * (safe to retry); anything else is INTERNAL, with the detail logged rather than sent.
 */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (isDatabaseUnavailable(error)) {
    return new ConnectError('the job database is unavailable; retry shortly', Code.Unavailable);
  }
  return new ConnectError('internal error; see the broker log', Code.Internal);
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08006']);

/** True for errors that mean "the database is not there right now", as opposed to a bad statement. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: string }).code;
  if (code && UNAVAILABLE_CODES.has(code)) return true;
  return /Connection terminated|connection.*(closed|ended|refused)|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    error.message,
  );
}

export function invalidArgument(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

export function notFound(message: string): ConnectError {
  return new ConnectError(message, Code.NotFound);
}

export function failedPrecondition(message: string): ConnectError {
  return new ConnectError(message, Code.FailedPrecondition);
}

export function resourceExhausted(message: string): ConnectError {
  return new ConnectError(message, Code.ResourceExhausted);
}
