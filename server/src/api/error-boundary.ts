import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { BrokerError, type ErrorKind } from '../domain/errors.ts';
import type { Logger } from '../logger.ts';

const CODE_OF_KIND: Record<ErrorKind, Code> = {
  'invalid-argument': Code.InvalidArgument,
  'not-found': Code.NotFound,
  'failed-precondition': Code.FailedPrecondition,
  'resource-exhausted': Code.ResourceExhausted,
  unavailable: Code.Unavailable,
};

/**
 * Turns anything thrown below the API into a ConnectError, once, at the RPC boundary. ConnectErrors
 * pass through; a BrokerError becomes the status of its kind with its message; a database that
 * cannot be reached becomes UNAVAILABLE (safe to retry); anything else is INTERNAL, with the
 * detail logged rather than sent.
 *
 * Messages quote the caller's input, cut to a length, and a cut can split a UTF-16 surrogate pair.
 * connect-node percent-encodes grpc-message with encodeURIComponent, which throws on a lone
 * surrogate, and the call then never ends (found by test/fuzz.test.ts): so messages are made
 * well-formed here (a lone surrogate becomes U+FFFD).
 */
export function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof BrokerError) return new ConnectError(error.message.toWellFormed(), CODE_OF_KIND[error.kind]);
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

/**
 * The exact status message, UTF-8 in a binary trailer. connect-node percent-encodes grpc-message
 * with encodeURIComponent and @grpc/grpc-js decodes it with decodeURI, which leaves the escapes of
 * `; , / ? : @ & = + $ #` in place; after that, a message's ";" and a literal "%3B" read the same,
 * so no client-side unescaping can be right. The worker SDK reads this trailer instead.
 */
const EXACT_MESSAGE_TRAILER = 'baton-message-bin';

/**
 * Longest status message sent, in characters. A message goes out twice, percent-encoded in
 * grpc-message (up to 9 characters for one) and base64 in the trailer above; Node's HTTP/2 refuses
 * to send a header block over 64 KiB and then closes the whole connection with FRAME_SIZE_ERROR, so
 * a message quoting a 70,000-character field took every other call on that connection down with
 * it (test/fuzz.test.ts met it). Checks quote the input cut short; this bounds what any quotes.
 */
export const MAX_STATUS_MESSAGE = 2_000;

function withinMessageLimit(error: ConnectError): ConnectError {
  const text = error.rawMessage;
  if (text.length <= MAX_STATUS_MESSAGE) return error;
  const cut = `${text.slice(0, MAX_STATUS_MESSAGE).toWellFormed()}… (${text.length.toLocaleString('en-US')} characters, cut)`;
  return new ConnectError(cut, error.code, error.metadata, undefined, error.cause);
}

/**
 * A call that failed only because its caller hung up: its request stream closed before it ended
 * (Node's "Premature close": a client that exits or drops its connection with a Watch request or a
 * reflection stream still open), or its signal was aborted by the client's reset or disconnect.
 * Deadlines are the caller's too, but a handler failing as one passes may have failed for a reason
 * of its own, so those still count.
 */
function callerWentAway(error: unknown, signal: AbortSignal): boolean {
  if ((error as { code?: unknown } | null)?.code === 'ERR_STREAM_PREMATURE_CLOSE') return true;
  return signal.aborted && !(signal.reason instanceof ConnectError && signal.reason.code === Code.DeadlineExceeded);
}

/** Converts whatever a handler throws into a status, once, and logs what the caller cannot act on. */
export function errorBoundary(logger: Logger): Interceptor {
  const convert = (error: unknown, method: string, signal: AbortSignal) => {
    let converted: ConnectError;
    if (error instanceof ConnectError || error instanceof BrokerError) {
      // A refusal meant for the caller, whether or not it is still there to read it.
      converted = toConnectError(error);
    } else if (callerWentAway(error, signal)) {
      // Nobody is left to read the status; not a broker error.
      logger.debug('caller went away', { method, error });
      converted = new ConnectError('the caller went away', Code.Canceled);
    } else {
      converted = toConnectError(error);
      logger.error('request failed', { method, error });
    }
    converted = withinMessageLimit(converted);
    converted.metadata.set(EXACT_MESSAGE_TRAILER, Buffer.from(converted.rawMessage).toString('base64'));
    return converted;
  };
  return (next) => async (request) => {
    const method = request.method.name;
    try {
      const response = await next(request);
      if (!response.stream) return response;
      const messages = response.message;
      return {
        ...response,
        message: (async function* () {
          try {
            yield* messages;
          } catch (error) {
            throw convert(error, method, request.signal);
          }
        })(),
      };
    } catch (error) {
      throw convert(error, method, request.signal);
    }
  };
}
