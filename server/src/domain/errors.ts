/**
 * Refusals the caller can act on, as every layer raises them: a kind that says what went wrong
 * and a message that says what to do. The api layer turns the kind into a status, once, at the
 * RPC boundary (server/src/api/error-boundary.ts), so core and the store never name a wire format.
 */

/** What went wrong, in the terms of the gRPC status it becomes. */
export type ErrorKind = 'invalid-argument' | 'not-found' | 'failed-precondition' | 'resource-exhausted' | 'unavailable';

export class BrokerError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string) {
    super(message);
    this.name = 'BrokerError';
    this.kind = kind;
  }
}

/** A field the caller sent is malformed or out of range. */
export function invalidArgument(message: string): BrokerError {
  return new BrokerError('invalid-argument', message);
}

export function notFound(message: string): BrokerError {
  return new BrokerError('not-found', message);
}

/** The request is well formed but the state it acts on does not allow it. */
export function failedPrecondition(message: string): BrokerError {
  return new BrokerError('failed-precondition', message);
}

/** The request asks for more than a limit allows. */
export function resourceExhausted(message: string): BrokerError {
  return new BrokerError('resource-exhausted', message);
}

/** Not now, from here: retrying (elsewhere, or later) may work. */
export function unavailable(message: string): BrokerError {
  return new BrokerError('unavailable', message);
}
