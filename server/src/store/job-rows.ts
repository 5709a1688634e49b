/**
 * Job rows as the store reads and writes them: an enqueue's input row as JSON, and rows selected
 * with the columns of ./sql/columns.ts as the domain's records. JSON columns arrive as text;
 * timestamps may arrive as Date, text or epoch milliseconds.
 */
import type { AttemptError, Assignment, JobRecord, JobSummary, NewJob } from '../domain/job.ts';
import { DEFAULT_BACKOFF } from '../domain/backoff.ts';
import type { JobStatus } from '../domain/job-status.ts';
import type { Row } from './sql-pool.ts';

/**
 * One input row as JSON text, embedding the payload text as it is (it was validated as JSON). Only
 * what differs from the defaults is written (the insert fills in the rest, ./sql/enqueue.ts):
 * PostgreSQL's parse of the batch parameter costs by its length, and a row of every key was four
 * times as long as a plain job needs, which measured 7.8 against 2.3 µs of its CPU per job.
 */
export function rowJson(job: NewJob, ord: number): string {
  const row: Record<string, unknown> = { ord, queue: job.queue };
  if (job.priority !== 0) row.priority = job.priority;
  if (job.runAt) row.run_at = job.runAt.toISOString();
  if (job.delayMs) row.delay_ms = job.delayMs;
  if (job.maxAttempts !== null) row.max_attempts = job.maxAttempts;
  const backoff = job.backoff;
  if (backoff.initialMs !== DEFAULT_BACKOFF.initialMs) row.backoff_initial_ms = backoff.initialMs;
  if (backoff.maxMs !== DEFAULT_BACKOFF.maxMs) row.backoff_max_ms = backoff.maxMs;
  if (backoff.multiplier !== DEFAULT_BACKOFF.multiplier) row.backoff_multiplier = backoff.multiplier;
  if (backoff.jitter !== DEFAULT_BACKOFF.jitter) row.backoff_jitter = backoff.jitter;
  if (job.timeoutMs !== null) row.timeout_ms = job.timeoutMs;
  if (job.idempotencyKey !== null) row.idempotency_key = job.idempotencyKey;
  if (Object.keys(job.labels).length > 0) row.labels = job.labels;
  if (job.traceparent) row.traceparent = job.traceparent;
  if (job.handoff) {
    row.session_id = job.handoff.sessionId;
    row.worker_id = job.handoff.workerId;
  }
  if (job.unique) {
    row.unique_key = job.unique.key;
    row.unique_window_ms = job.unique.windowMs;
    row.unique_states = job.unique.states;
  }
  if (job.rateLimitKey) row.rate_limit_key = job.rateLimitKey;
  if (job.concurrencyKey) row.concurrency_key = job.concurrencyKey;
  return `{"payload":${job.payloadJson},${JSON.stringify(row).slice(1)}`;
}

/** A time as selected: a Date, timestamp text, or epoch milliseconds (ASSIGNMENT_COLUMNS). */
function date(value: unknown): Date {
  return value instanceof Date ? value : new Date(value as string | number);
}

function nullableDate(value: unknown): Date | null {
  return value === null || value === undefined ? null : date(value);
}

function json(text: unknown): unknown {
  return text === null || text === undefined ? null : JSON.parse(text as string);
}

/** One failed attempt as `errors` column of a job keeps it (see the statements that append to it). */
interface StoredAttemptError {
  attempt: number;
  message: string;
  at: string;
  worker_id: string | null;
}

function attemptErrors(text: unknown): AttemptError[] {
  const stored = (json(text) ?? []) as StoredAttemptError[];
  return stored.map((error) => ({ attempt: error.attempt, message: error.message, at: new Date(error.at), workerId: error.worker_id ?? null }));
}

export function toJobSummary(row: Row): JobSummary {
  return { id: String(row.id), queue: row.queue, status: row.status as JobStatus, idempotencyKey: row.idempotency_key ?? null };
}

/** A row selected with JOB_COLUMNS. */
export function toJobRecord(row: Row): JobRecord {
  return {
    id: String(row.id),
    queue: row.queue,
    status: row.status as JobStatus,
    payloadJson: row.payload,
    priority: Number(row.priority),
    runAt: date(row.run_at),
    attempt: Number(row.attempt),
    maxAttempts: Number(row.max_attempts),
    backoff: {
      initialMs: Number(row.backoff_initial_ms),
      maxMs: Number(row.backoff_max_ms),
      multiplier: Number(row.backoff_multiplier),
      jitter: Number(row.backoff_jitter),
    },
    timeoutMs: Number(row.timeout_ms),
    idempotencyKey: row.idempotency_key ?? null,
    labels: (json(row.labels) ?? {}) as Record<string, string>,
    traceparent: row.traceparent ?? null,
    resultJson: row.result ?? null,
    errors: attemptErrors(row.errors),
    progressJson: row.progress ?? null,
    createdAt: date(row.created_at),
    startedAt: nullableDate(row.started_at),
    finishedAt: nullableDate(row.finished_at),
    workerId: row.worker_id ?? null,
    cancelRequested: Boolean(row.cancel_requested),
  };
}

/** A row selected with ASSIGNMENT_COLUMNS. */
export function toAssignment(row: Row): Assignment {
  return {
    id: row.id,
    queue: row.queue,
    payloadJson: row.payload,
    leaseToken: row.lease_token,
    attempt: Number(row.attempt),
    maxAttempts: Number(row.max_attempts),
    timeoutMs: Number(row.timeout_ms),
    createdAt: date(row.created_at),
    runAt: date(row.run_at),
    labelsJson: row.labels,
    traceparent: row.traceparent ?? null,
    priority: Number(row.priority),
  };
}
