// Typed errors of the SDK: the ones handlers throw to steer retries, and the ones the SDK throws so
// that callers can tell a failed RPC from a failed job without parsing messages.

import type { Job } from './job.ts';

/**
 * Thrown by a handler when retrying cannot help (bad input, a missing record): the job is FAILED at
 * once whatever attempts remain. Reported as `JobFailure.non_retryable`.
 */
export class NonRetryableError extends Error {
  override readonly name = 'NonRetryableError';
}

/**
 * Thrown by a handler to ask for the next attempt no sooner than `retryAfterMs` from now (a rate
 * limit, a dependency known to be down), overriding the job's backoff. Reported as
 * `JobFailure.retry_after`; the attempt still counts.
 */
export class RetryAfterError extends Error {
  override readonly name = 'RetryAfterError';
  /** The least time to wait before the next attempt, in milliseconds. */
  readonly retryAfterMs: number;

  constructor(retryAfterMs: number, message?: string, options?: ErrorOptions) {
    super(message ?? `retry after ${retryAfterMs} ms`, options);
    if (!Number.isFinite(retryAfterMs) || retryAfterMs < 0) {
      throw new RangeError(`RetryAfterError: retryAfterMs must be a finite number >= 0, got ${retryAfterMs}`);
    }
    this.retryAfterMs = retryAfterMs;
  }
}

/** Longest snooze the broker takes (`JobSnooze.delay`). */
const MAX_SNOOZE_MS = 365 * 24 * 3600_000;

/**
 * Thrown by a handler to run the job again after `snoozeMs` without spending an attempt (River's
 * JobSnooze): an upstream that is not ready yet, a poll that found nothing. The job goes back to
 * SCHEDULED, `attempt` does not go up and no error is recorded. Reported as `JobResult.snooze`
 * (with a retryable failure beside it, which only a broker older than snooze would act on).
 * `snooze(ms)` makes one.
 */
export class SnoozeError extends Error {
  override readonly name = 'SnoozeError';
  /** How long the job waits before it runs again, in milliseconds (rounded up to a whole one). */
  readonly snoozeMs: number;

  constructor(snoozeMs: number, options?: ErrorOptions) {
    super(`snoozed for ${Math.ceil(snoozeMs)} ms`, options);
    if (!Number.isFinite(snoozeMs) || snoozeMs <= 0 || snoozeMs > MAX_SNOOZE_MS) {
      throw new RangeError(`snooze: the delay must be more than 0 ms and at most 365 days, got ${snoozeMs}`);
    }
    this.snoozeMs = Math.ceil(snoozeMs);
  }
}

/** `throw snooze(60_000)` in a handler: run the job again in a minute, the attempt not counted. */
export function snooze(ms: number): SnoozeError {
  return new SnoozeError(ms);
}

/**
 * gRPC status names, so that callers compare `err.code === "NOT_FOUND"` instead of magic numbers.
 * Indexed by the numeric status code.
 */
const STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** A gRPC status as a name, e.g. `"NOT_FOUND"`. */
export type StatusName = (typeof STATUS_NAMES)[number];

/**
 * An RPC the broker answered with an error status (or that never reached a broker). `code` says
 * what kind (`UNAVAILABLE` is safe to retry); the message is the broker's, meant for people.
 */
export class BatonError extends Error {
  override readonly name = 'BatonError';
  /** The gRPC status name, e.g. `"INVALID_ARGUMENT"`. */
  readonly code: StatusName;
  /** The numeric gRPC status code. */
  readonly grpcCode: number;

  constructor(code: number, message: string, options?: ErrorOptions) {
    const name = STATUS_NAMES[code] ?? 'UNKNOWN';
    super(`${name}: ${message}`, options);
    this.code = name;
    this.grpcCode = code;
  }
}

/**
 * The broker's status message exactly as it was written.
 *
 * grpc-js decodes the percent-encoded grpc-message with decodeURI (grpc-node's subchannel-call),
 * which leaves the escapes of reserved characters (`; , / ? : @ & = + $ #`) in place. Baton's native
 * gRPC port (grpc-js) encodes with encodeURI, its exact inverse, so those messages arrive intact; the
 * main port (connect-node) encodes with encodeURIComponent, so "1-100, got 0" arrives as
 * "1-100%2C got 0". Unescaping those leftovers here cannot be right: a message's ";" and a literal
 * "%3B" in it (a queue name the broker quotes, say) both arrive as "%3B", and only one of them may
 * become ";". grpc-js has kept decodeURI through the threads about it (grpc/grpc-node#1195 on
 * commas; #2209, where a "%" the server left unencoded made decodeURI throw, now falls back to the
 * raw text), and the advice for text that must arrive exact is a `-bin` trailer
 * (timostamm/protobuf-ts#110). So the broker sends each message a second time, UTF-8 in
 * `baton-message-bin`, and that copy wins; a status without it (the native port, or one the
 * transport raised itself) keeps grpc-js's text as it is.
 */
export function statusMessage(status: { details?: unknown; metadata?: unknown }): string {
  const metadata = status.metadata as { get?: (key: string) => unknown[] } | undefined;
  const exact = typeof metadata?.get === 'function' ? metadata.get(EXACT_MESSAGE_TRAILER)[0] : undefined;
  if (exact instanceof Uint8Array) return utf8.decode(exact);
  return typeof status.details === 'string' ? status.details : '';
}

const EXACT_MESSAGE_TRAILER = 'baton-message-bin';
const utf8 = new TextDecoder();

/**
 * Converts whatever a grpc-js call rejected with into a BatonError, once, at the transport boundary,
 * so that no grpc-js type leaks into the SDK's public surface.
 */
export function toBatonError(err: unknown): BatonError | Error {
  if (err instanceof BatonError) return err;
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'number') {
    const message = 'details' in err && typeof err.details === 'string' ? statusMessage(err) : String(err);
    return new BatonError(err.code, message, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * `Client.result()` rejects with this when the job ended FAILED: its attempts ran out or a handler
 * threw NonRetryableError. `job.errors` holds every attempt's error.
 */
export class JobFailedError extends Error {
  override readonly name = 'JobFailedError';
  /** The job as the broker last reported it. */
  readonly job: Job;

  constructor(job: Job) {
    const last = job.errors.at(-1);
    super(`job ${job.id} failed${last ? `: ${last.message}` : ''}`);
    this.job = job;
  }
}

/** `Client.result()` rejects with this when the job ended CANCELLED. */
export class JobCancelledError extends Error {
  override readonly name = 'JobCancelledError';
  /** The job as the broker last reported it. */
  readonly job: Job;

  constructor(job: Job) {
    super(`job ${job.id} was cancelled`);
    this.job = job;
  }
}
