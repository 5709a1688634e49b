// The job as the SDK hands it to callers: plain values (lowercase status names, Dates, parsed JSON,
// milliseconds) instead of protobuf messages, so that user code never imports generated types.

import { toJson } from '@bufbuild/protobuf';
import { durationMs, timestampDate, ValueSchema, type Duration, type Timestamp, type Value } from '@bufbuild/protobuf/wkt';
import { JobStatus, type Job as JobMessage, type RetryPolicy as RetryPolicyMessage } from './gen/baton/v1/job_pb.ts';
import type { JsonValue } from './json.ts';

/**
 * Where a job is in its lifecycle: `pending` (runnable now), `scheduled` (waiting for run_at or a
 * retry backoff), `running`, and the terminal `completed`, `failed` (dead-lettered) and `cancelled`.
 * `unknown` stands for a status a newer broker added that this SDK does not know.
 */
export type JobStatusName = 'pending' | 'scheduled' | 'running' | 'completed' | 'failed' | 'cancelled' | 'unknown';

const STATUS_NAME: Record<number, JobStatusName> = {
  [JobStatus.PENDING]: 'pending',
  [JobStatus.SCHEDULED]: 'scheduled',
  [JobStatus.RUNNING]: 'running',
  [JobStatus.COMPLETED]: 'completed',
  [JobStatus.FAILED]: 'failed',
  [JobStatus.CANCELLED]: 'cancelled',
};

/** Status name → the wire enum, for List filters. */
export function statusValue(name: JobStatusName): JobStatus {
  for (const [value, n] of Object.entries(STATUS_NAME)) if (n === name) return Number(value) as JobStatus;
  throw new TypeError(`unknown job status "${name}"`);
}

/** True for the statuses a job never leaves by itself. */
export function isTerminal(status: JobStatusName): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/**
 * Backoff between attempts: the delay before attempt n+1 is
 * min(maxBackoffMs, initialBackoffMs * multiplier^(n-1)), less a random fraction up to `jitter`.
 */
export interface RetryPolicy {
  /** @defaultValue 1000 */
  initialBackoffMs?: number;
  /** @defaultValue 600000 (10 min) */
  maxBackoffMs?: number;
  /** At least 1. @defaultValue 2 */
  multiplier?: number;
  /** 0..1. @defaultValue 0.2 */
  jitter?: number;
}

/** The error of one failed attempt. */
export interface AttemptError {
  /** Which attempt, from 1. */
  attempt: number;
  /** What went wrong. */
  message: string;
  /** When it was recorded. */
  at?: Date;
  /** The worker that held the attempt. */
  workerId?: string;
}

/** A job as the broker stores it. Optional fields are absent when the broker left them empty. */
export interface Job<P = JsonValue, R = JsonValue> {
  /** Opaque and unique; always a string. */
  id: string;
  queue: string;
  status: JobStatusName;
  /**
   * The payload, parsed with JSON.parse: numbers are doubles, so an integer above 2^53
   * (Number.MAX_SAFE_INTEGER) comes back rounded. `payloadJson` has every digit.
   */
  payload: P;
  /** The payload as the exact JSON text the broker stores (PostgreSQL's formatting, e.g. `{"n": 1}`). */
  payloadJson: string;
  priority: number;
  runAt?: Date;
  /** Attempts started so far. */
  attempt: number;
  maxAttempts: number;
  retryPolicy?: RetryPolicy;
  /** Longest one attempt may run; absent means no limit. */
  timeoutMs?: number;
  idempotencyKey?: string;
  labels: Record<string, string>;
  /** What the handler returned, parsed like `payload`; set once completed. */
  result?: R;
  /** The result as the exact JSON text stored; set once completed. */
  resultJson?: string;
  /** Every failed attempt's error, oldest first. */
  errors: AttemptError[];
  createdAt?: Date;
  startedAt?: Date;
  finishedAt?: Date;
  workerId?: string;
  /** A cancel was asked for while the job ran; it becomes cancelled when the handler stops. */
  cancelRequested: boolean;
  /** The latest progress the worker reported, parsed like `payload`. */
  progress?: JsonValue;
  /** The latest progress as the exact JSON text stored. */
  progressJson?: string;
  traceparent?: string;
}

const date = (t: Timestamp | undefined): Date | undefined => (t ? timestampDate(t) : undefined);
const ms = (d: Duration | undefined): number | undefined => (d ? durationMs(d) : undefined);
const utf8 = new TextDecoder();

/**
 * One JSON field of a Job: its exact text (the `_json` twin) and its value. The value is parsed from
 * the text when there is one, so it is what a worker's handler got for the same JSON; brokers older
 * than the `_json` fields send only the Value.
 */
function json(bytes: Uint8Array, v: Value | undefined): { text?: string; value?: JsonValue } {
  if (bytes.length > 0) {
    const text = utf8.decode(bytes);
    return { text, value: JSON.parse(text) as JsonValue };
  }
  return { value: v ? (toJson(ValueSchema, v) as JsonValue) : undefined };
}
const text = (s: string): string | undefined => (s === '' ? undefined : s);

function retryPolicy(p: RetryPolicyMessage | undefined): RetryPolicy | undefined {
  if (!p) return undefined;
  return {
    initialBackoffMs: ms(p.initialBackoff),
    maxBackoffMs: ms(p.maxBackoff),
    multiplier: p.multiplier || undefined,
    jitter: p.jitter,
  };
}

/** Converts the wire Job into the friendly shape. */
export function toJob(m: JobMessage): Job {
  const timeoutMs = ms(m.timeout);
  const payload = json(m.payloadJson, m.payload);
  const result = json(m.resultJson, m.result);
  const progress = json(m.progressJson, m.progress);
  return {
    id: m.id,
    queue: m.queue,
    status: STATUS_NAME[m.status] ?? 'unknown',
    payload: payload.value ?? null,
    payloadJson: payload.text ?? JSON.stringify(payload.value ?? null),
    priority: m.priority,
    runAt: date(m.runAt),
    attempt: m.attempt,
    maxAttempts: m.maxAttempts,
    retryPolicy: retryPolicy(m.retryPolicy),
    timeoutMs: timeoutMs ? timeoutMs : undefined,
    idempotencyKey: text(m.idempotencyKey),
    labels: { ...m.labels },
    result: result.value ?? undefined,
    resultJson: result.text,
    errors: m.errors.map((e) => ({ attempt: e.attempt, message: e.message, at: date(e.at), workerId: text(e.workerId) })),
    createdAt: date(m.createdAt),
    startedAt: date(m.startedAt),
    finishedAt: date(m.finishedAt),
    workerId: text(m.workerId),
    cancelRequested: m.cancelRequested,
    progress: progress.value ?? undefined,
    progressJson: progress.text,
    traceparent: text(m.traceparent),
  };
}
