// How a handler's outcome becomes a JobResult: a return value becomes `result_json`; a thrown error
// becomes a JobFailure whose flags come from the error's type (errors.ts), and a SnoozeError a
// JobSnooze.

import type { MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import type { JobFailureSchema, JobSnoozeSchema } from './gen/baton/v1/lease_pb.ts';
import { NonRetryableError, RetryAfterError, SnoozeError } from './errors.ts';
import { encodeJson } from './json.ts';

/** Longest failure message sent; the rest of a huge message helps nobody in a dashboard. */
const MAX_MESSAGE = 4096;

/**
 * A result's payload: JSON text on success, a failure otherwise; a snooze carries a failure too,
 * which a broker that knows snooze ignores and an older one records instead (a retry after the same
 * delay, rather than the success it would make of a result it cannot read).
 */
export type Outcome =
  | { readonly ok: true; readonly resultJson: Uint8Array }
  | {
      readonly ok: false;
      readonly failure: MessageInitShape<typeof JobFailureSchema>;
      readonly error: Error;
      readonly snooze?: MessageInitShape<typeof JobSnoozeSchema>;
    };

/** Success, unless the value cannot be JSON-encoded (a BigInt, a cycle): that fails for good. */
export function success(value: unknown): Outcome {
  try {
    return { ok: true, resultJson: encodeJson(value) };
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    return failure(new NonRetryableError(`the handler's result is not JSON-encodable: ${error.message}`, { cause: err }));
  }
}

/** A failure shaped by the error's type: NonRetryableError and RetryAfterError steer the broker. */
export function failure(thrown: unknown): Outcome {
  const error = thrown instanceof Error ? thrown : new Error(typeof thrown === 'string' ? thrown : safeString(thrown));
  let message = error.message || error.name || 'handler failed';
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE)}…`;
  if (error instanceof SnoozeError) {
    const delay = durationFromMs(error.snoozeMs);
    return { ok: false, error, failure: { message, retryAfter: delay }, snooze: { delay } };
  }
  return {
    ok: false,
    error,
    failure: {
      message,
      nonRetryable: error instanceof NonRetryableError,
      retryAfter: error instanceof RetryAfterError ? durationFromMs(error.retryAfterMs) : undefined,
    },
  };
}

function safeString(value: unknown): string {
  try {
    return `handler threw a non-Error value: ${JSON.stringify(value) ?? String(value)}`;
  } catch {
    return 'handler threw a non-Error value';
  }
}
