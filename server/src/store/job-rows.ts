/**
 * Job rows as the store reads and writes them: an enqueue's input row as JSON, and rows selected
 * with the columns of ./sql/columns.ts as the domain's records. JSON columns arrive as text;
 * timestamps may arrive as Date or text.
 */
import type { AttemptError, Assignment, JobRecord, JobSummary, NewJob } from '../domain/job.ts';
import type { JobStatus } from '../domain/job-status.ts';
import type { Row } from './sql-pool.ts';

/** One input row as JSON text, embedding the payload text as it is (it was validated as JSON). */
export function rowJson(job: NewJob, ord: number): string {
  const rest = JSON.stringify({
    ord,
    queue: job.queue,
    priority: job.priority,
    run_at: job.runAt?.toISOString() ?? null,
    delay_ms: job.delayMs,
    max_attempts: job.maxAttempts,
    backoff_initial_ms: job.backoff.initialMs,
    backoff_max_ms: job.backoff.maxMs,
    backoff_multiplier: job.backoff.multiplier,
    backoff_jitter: job.backoff.jitter,
    timeout_ms: job.timeoutMs,
    idempotency_key: job.idempotencyKey,
    labels: job.labels,
    traceparent: job.traceparent,
    session_id: job.handoff?.sessionId ?? null,
    worker_id: job.handoff?.workerId ?? null,
    // Only a unique job carries these, so the common batch's JSON stays as short as it was.
    ...(job.unique && { unique_key: job.unique.key, unique_window_ms: job.unique.windowMs, unique_states: job.unique.states }),
    ...(job.rateLimitKey && { rate_limit_key: job.rateLimitKey }),
    ...(job.concurrencyKey && { concurrency_key: job.concurrencyKey }),
  });
  return `{"payload":${job.payloadJson},${rest.slice(1)}`;
}

function date(value: unknown): Date {
  return value instanceof Date ? value : new Date(value as string);
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
