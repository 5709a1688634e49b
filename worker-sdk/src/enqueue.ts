// What a producer may say about a new job, and its translation into an EnqueueRequest. The payload
// always travels as JSON text in `payload_json`: no google.protobuf.Value conversion on either side.

import type { MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { EnqueueRequestSchema } from './gen/baton/v1/broker_pb.ts';
import { statusValue, type JobStatusName, type RetryPolicy } from './job.ts';
import { encodeJson } from './json.ts';

/** Options of one job; everything left out takes the queue's or broker's default. */
export interface EnqueueOptions {
  /** Higher runs first, -1000..1000. @defaultValue 0 */
  priority?: number;
  /** Do not start before this time. Exclusive with `delay`. */
  runAt?: Date;
  /** Do not start before now + delay (ms). Exclusive with `runAt`. */
  delay?: number;
  /** Attempts allowed in all, 1..1000. @defaultValue the queue's default */
  maxAttempts?: number;
  /**
   * Backoff between attempts; fields left out take the defaults (1 s, 10 min, ×2, 0.2 jitter).
   * @defaultValue the broker's policy: 1 s doubling up to 10 min, 20 % jitter
   */
  retryPolicy?: RetryPolicy;
  /** Longest one attempt may run (ms). @defaultValue the queue's default */
  timeout?: number;
  /** At most one job with this key exists; a repeat returns the first (with `duplicate: true`). */
  idempotencyKey?: string;
  /** Free-form labels (at most 32). */
  labels?: Record<string, string>;
  /** W3C trace context handed to the worker. */
  traceparent?: string;
  /**
   * At most one job of the queue holds this key at a time (docs/scheduling.md, "Unique jobs"): an
   * enqueue while it is held returns the holder with `duplicate: true`. Exclusive with `idempotencyKey`.
   */
  unique?: UniqueOptions;
  /** The key its queue's per-key rate limit counts the job under (e.g. a customer id). */
  rateLimitKey?: string;
  /** The key (e.g. a tenant) a queue with fair keys takes in turn and limits per key. */
  concurrencyKey?: string;
}

/** A unique key, the statuses in which its job holds it, and for how long at most. */
export interface UniqueOptions {
  key: string;
  /** The holder keeps the key at most this long (ms) after its enqueue. @defaultValue no limit */
  window?: number;
  /** @defaultValue ['pending', 'scheduled', 'running']: free again once the job finished */
  states?: JobStatusName[];
}

/** One job of `enqueueBatch`. */
export interface EnqueueItem extends EnqueueOptions {
  queue: string;
  /** Any JSON value. */
  payload: unknown;
}

/** The broker's documented RetryPolicy defaults (job.proto), filled into partial policies. */
const RETRY_DEFAULTS = { initialBackoffMs: 1_000, maxBackoffMs: 600_000, multiplier: 2, jitter: 0.2 } as const;

type EnqueueRequestInit = MessageInitShape<typeof EnqueueRequestSchema>;

/** Builds the wire request; throws a TypeError for options no broker would accept. */
export function toEnqueueRequest(queue: string, payload: unknown, o: EnqueueOptions = {}): EnqueueRequestInit {
  if (o.runAt !== undefined && o.delay !== undefined) throw new TypeError('enqueue: give runAt or delay, not both');
  if (o.unique && o.idempotencyKey !== undefined) throw new TypeError('enqueue: give unique or idempotencyKey, not both');
  const p = o.retryPolicy;
  return {
    queue,
    payloadJson: encodeJson(payload),
    priority: o.priority ?? 0,
    runAt: o.runAt ? timestampFromDate(o.runAt) : undefined,
    delay: o.delay !== undefined ? durationFromMs(o.delay) : undefined,
    maxAttempts: o.maxAttempts ?? 0,
    // Every field is sent, defaults filled in: proto3 cannot tell "unset" from 0, and a broker
    // may read a 0 multiplier as given rather than as "use the default".
    retryPolicy: p
      ? {
          initialBackoff: durationFromMs(p.initialBackoffMs ?? RETRY_DEFAULTS.initialBackoffMs),
          maxBackoff: durationFromMs(p.maxBackoffMs ?? RETRY_DEFAULTS.maxBackoffMs),
          multiplier: p.multiplier ?? RETRY_DEFAULTS.multiplier,
          jitter: p.jitter ?? RETRY_DEFAULTS.jitter,
        }
      : undefined,
    timeout: o.timeout !== undefined ? durationFromMs(o.timeout) : undefined,
    idempotencyKey: o.idempotencyKey ?? '',
    labels: o.labels ?? {},
    traceparent: o.traceparent ?? '',
    rateLimitKey: o.rateLimitKey ?? '',
    concurrencyKey: o.concurrencyKey ?? '',
    unique: o.unique
      ? { key: o.unique.key, window: o.unique.window ? durationFromMs(o.unique.window) : undefined, states: (o.unique.states ?? []).map(statusValue) }
      : undefined,
  };
}
