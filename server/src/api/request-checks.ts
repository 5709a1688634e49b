/**
 * Requests checked into store inputs: every bad field is named with what it accepts, and the
 * right status (INVALID_ARGUMENT for a malformed value, RESOURCE_EXHAUSTED for a size limit).
 */
import { toJson } from '@bufbuild/protobuf';
import { type Duration, type Timestamp, type Value, ValueSchema, timestampDate } from '@bufbuild/protobuf/wkt';
import type { EnqueueRequest, UniqueOptions } from '@baton/worker-sdk/gen/broker';
import { invalidArgument, resourceExhausted } from '../domain/errors.ts';
import { DEFAULT_BACKOFF } from '../domain/backoff.ts';
import { isBigintText } from '../domain/ids.ts';
import type { NewJob, UniqueOption } from '../domain/job.ts';
import type { JobStatus } from '../domain/job-status.ts';
import { checkJsonText, parseJsonText } from '../domain/json-text.ts';
import { QUEUE_NAME_RULE, isQueueName } from '../domain/queue.ts';
import { statusesFromWire } from './job-wire.ts';

/**
 * A `google.protobuf.Value` as JSON text, or INVALID_ARGUMENT naming `field`: a Value may hold what
 * JSON cannot (NaN, an infinity, no kind set) or text PostgreSQL refuses (a NUL character).
 */
export function valueJsonText(value: Value, field: string): string {
  let text: string;
  try {
    text = JSON.stringify(toJson(ValueSchema, value));
  } catch (error) {
    throw invalidArgument(`${field} is not a JSON value: ${(error as Error).message} (set one of its kinds, e.g. struct_value)`);
  }
  const checked = checkJsonText(text);
  if ('error' in checked) throw invalidArgument(`${field} ${checked.error}`);
  return text;
}

export function checkQueueName(queue: string, field = 'queue'): string {
  if (!isQueueName(queue)) {
    throw invalidArgument(`${field} "${queue.slice(0, 140)}" is not a valid queue name: use ${QUEUE_NAME_RULE}`);
  }
  return queue;
}

/** Job ids are decimal numbers below 2^63; anything else cannot name a job. */
export function checkJobId(id: string, field = 'id'): string {
  if (!isBigintText(id)) {
    throw invalidArgument(`${field} "${id.slice(0, 40)}" is not a job id (ids are the decimal strings Enqueue returns)`);
  }
  return id;
}

export function checkIdempotencyKey(key: string, field = 'idempotency_key'): string {
  if (key.length > 200) throw invalidArgument(`${field} must be at most 200 characters`);
  // PostgreSQL's text and jsonb cannot hold NUL (found by test/fuzz.test.ts).
  if (key.includes('\u0000')) throw invalidArgument(`${field} must not contain NUL (\\u0000)`);
  return key;
}

/**
 * Labels as Enqueue takes them, and List filters by them. How many there are and how long is a size
 * limit (RESOURCE_EXHAUSTED, as the proto says); an empty key or a NUL is a malformed label.
 */
export function checkLabels(labels: Record<string, string>, field = 'labels'): Record<string, string> {
  const entries = Object.entries(labels);
  if (entries.length > 32) throw resourceExhausted(`${field}: at most 32 labels, got ${entries.length}`);
  for (const [key, value] of entries) {
    if (key.length === 0 || key.includes('\u0000') || value.includes('\u0000')) {
      throw invalidArgument(`${field}: keys must not be empty, and keys and values must not contain NUL ("${key.slice(0, 70)}")`);
    }
    if (key.length > 64 || value.length > 256) {
      throw resourceExhausted(`${field}: keys must be at most 64 and values at most 256 characters ("${key.slice(0, 70)}")`);
    }
  }
  return labels;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const MAX_DURATION_MS = 10 * 365 * 24 * 3600_000;

export function durationMs(duration: Duration, field: string): number {
  const ms = Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1e6);
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_DURATION_MS || duration.nanos < 0) {
    throw invalidArgument(`${field} must be between 0 and 10 years`);
  }
  return ms;
}

function timestamp(value: Timestamp, field: string): Date {
  const date = timestampDate(value);
  if (Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1970 || date.getUTCFullYear() > 9999) {
    throw invalidArgument(`${field} must be a time between 1970 and 9999`);
  }
  return date;
}

/** The statuses a unique key is held in when the request names none: until the job finishes. */
const UNIQUE_DEFAULT_STATES: JobStatus[] = ['pending', 'scheduled', 'running'];

/** EnqueueRequest.unique checked; `field` names it in messages. */
export function checkUnique(unique: UniqueOptions, field: string): UniqueOption {
  if (unique.key.length === 0) throw invalidArgument(`${field}.key must not be empty: it names what is unique`);
  checkIdempotencyKey(unique.key, `${field}.key`);
  const states = [...new Set(statusesFromWire(unique.states, `${field}.states`))];
  return {
    key: unique.key,
    windowMs: unique.window ? durationMs(unique.window, `${field}.window`) : 0,
    states: states.length > 0 ? states : UNIQUE_DEFAULT_STATES,
  };
}

export interface EnqueueLimits {
  maxPayloadBytes: number;
}

/** Validates one EnqueueRequest; `field` prefixes error messages (e.g. "jobs[3]."). */
export function toNewJob(request: EnqueueRequest, limits: EnqueueLimits, field = ''): NewJob {
  const queue = checkQueueName(request.queue, `${field}queue`);
  let payloadJson: string;
  if (request.payloadJson.length > 0) {
    if (request.payloadJson.length > limits.maxPayloadBytes) {
      throw resourceExhausted(`${field}payload_json is ${request.payloadJson.length} bytes; the limit is ${limits.maxPayloadBytes}`);
    }
    const parsed = parseJsonText(request.payloadJson);
    if ('error' in parsed) throw invalidArgument(`${field}payload_json ${parsed.error}`);
    payloadJson = parsed.text;
  } else if (request.payload) {
    const text = valueJsonText(request.payload, `${field}payload`);
    if (Buffer.byteLength(text) > limits.maxPayloadBytes) {
      throw resourceExhausted(`${field}payload is ${Buffer.byteLength(text)} bytes as JSON; the limit is ${limits.maxPayloadBytes}`);
    }
    payloadJson = text;
  } else {
    payloadJson = 'null';
  }
  if (!Number.isInteger(request.priority) || request.priority < -1000 || request.priority > 1000) {
    throw invalidArgument(`${field}priority must be -1000..1000 (higher runs first), got ${request.priority}`);
  }
  if (request.runAt && request.delay) throw invalidArgument(`${field}run_at and delay are exclusive: give one`);
  if (request.maxAttempts < 0 || request.maxAttempts > 1000) {
    throw invalidArgument(`${field}max_attempts must be 1-1000, or 0 for the queue's default; got ${request.maxAttempts}`);
  }
  const policy = request.retryPolicy;
  const backoff = {
    initialMs: policy?.initialBackoff ? durationMs(policy.initialBackoff, `${field}retry_policy.initial_backoff`) : DEFAULT_BACKOFF.initialMs,
    maxMs: policy?.maxBackoff ? durationMs(policy.maxBackoff, `${field}retry_policy.max_backoff`) : DEFAULT_BACKOFF.maxMs,
    multiplier: policy?.multiplier ?? DEFAULT_BACKOFF.multiplier,
    jitter: policy?.jitter ?? DEFAULT_BACKOFF.jitter,
  };
  if (!(backoff.multiplier >= 1 && backoff.multiplier <= 100)) {
    throw invalidArgument(`${field}retry_policy.multiplier must be 1-100, got ${backoff.multiplier}`);
  }
  if (!(backoff.jitter >= 0 && backoff.jitter <= 1)) {
    throw invalidArgument(`${field}retry_policy.jitter must be 0-1, got ${backoff.jitter}`);
  }
  if (backoff.maxMs < backoff.initialMs) backoff.maxMs = backoff.initialMs;
  checkIdempotencyKey(request.idempotencyKey, `${field}idempotency_key`);
  checkLabels(request.labels, `${field}labels`);
  if (request.traceparent && !TRACEPARENT.test(request.traceparent)) {
    throw invalidArgument(`${field}traceparent must be a W3C trace context (00-<32 hex>-<16 hex>-<2 hex>)`);
  }
  const unique = request.unique ? checkUnique(request.unique, `${field}unique`) : undefined;
  if (unique && request.idempotencyKey) {
    throw invalidArgument(
      `${field}idempotency_key and unique are exclusive: give one (a unique key with no window and every status acts as an idempotency key)`,
    );
  }
  if (request.rateLimitKey) checkIdempotencyKey(request.rateLimitKey, `${field}rate_limit_key`);
  if (request.concurrencyKey) checkIdempotencyKey(request.concurrencyKey, `${field}concurrency_key`);
  return {
    ...(unique && { unique }),
    ...(request.rateLimitKey && { rateLimitKey: request.rateLimitKey }),
    ...(request.concurrencyKey && { concurrencyKey: request.concurrencyKey }),
    queue,
    payloadJson,
    priority: request.priority,
    runAt: request.runAt ? timestamp(request.runAt, `${field}run_at`) : null,
    delayMs: request.delay ? durationMs(request.delay, `${field}delay`) : null,
    maxAttempts: request.maxAttempts || null,
    backoff,
    timeoutMs: request.timeout ? durationMs(request.timeout, `${field}timeout`) : null,
    idempotencyKey: request.idempotencyKey || null,
    labels: request.labels,
    traceparent: request.traceparent || null,
  };
}
