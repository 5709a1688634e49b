// How a handler's outcome becomes a JobResult: a return value becomes `result_json`; a thrown error
// becomes a JobFailure whose flags come from the error's type (errors.ts).

import type { MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import type { JobFailureSchema } from './gen/baton/v1/lease_pb.ts';
import { NonRetryableError, RetryAfterError } from './errors.ts';
import { encodeJson } from './json.ts';

/** Longest failure message sent; the rest of a huge message helps nobody in a dashboard. */
const MAX_MESSAGE = 4096;

/** A result's payload: JSON text on success, a failure otherwise. */
export type Outcome =
  | { readonly ok: true; readonly resultJson: Uint8Array }
  | { readonly ok: false; readonly failure: MessageInitShape<typeof JobFailureSchema>; readonly error: Error };

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
