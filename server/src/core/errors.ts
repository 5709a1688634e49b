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

/*
 * Messages quote the caller's input, cut to a length, and a cut can split a UTF-16 surrogate pair.
 * connect-node percent-encodes grpc-message with encodeURIComponent, which throws on a lone
 * surrogate, and the call then never ends (found by test/fuzz.test.ts): so messages are made
 * well-formed here (a lone surrogate becomes U+FFFD).
 */

export function invalidArgument(message: string): ConnectError {
  return new ConnectError(message.toWellFormed(), Code.InvalidArgument);
}

export function notFound(message: string): ConnectError {
  return new ConnectError(message.toWellFormed(), Code.NotFound);
}

export function failedPrecondition(message: string): ConnectError {
  return new ConnectError(message.toWellFormed(), Code.FailedPrecondition);
}

export function resourceExhausted(message: string): ConnectError {
  return new ConnectError(message.toWellFormed(), Code.ResourceExhausted);
}
