/**
 * Jobs as every layer sees them: what an enqueue asks for, what is stored, what a worker is handed
 * and what it reports. Payload, result and progress stay the JSON text PostgreSQL returns: parsed,
 * integers above 2^53 would lose digits before any reader could ask for them.
 */
import type { BackoffPolicy } from './backoff.ts';
import type { JobStatus } from './job-status.ts';

/** One failed attempt, as kept in the job's history. */
export interface AttemptError {
  attempt: number;
  message: string;
  at: Date;
  workerId: string | null;
}

/** A stored job, whole. */
export interface JobRecord {
  id: string;
  queue: string;
  status: JobStatus;
  payloadJson: string;
  priority: number;
  runAt: Date;
  attempt: number;
  maxAttempts: number;
  backoff: BackoffPolicy;
  timeoutMs: number;
  idempotencyKey: string | null;
  labels: Record<string, string>;
  traceparent: string | null;
  /** Null while the job has no result. */
  resultJson: string | null;
  errors: AttemptError[];
  /** Null while no progress was reported. */
  progressJson: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  workerId: string | null;
  cancelRequested: boolean;
}

/** What an enqueue answers with when asked for ids only. */
export interface JobSummary {
  id: string;
  queue: string;
  status: JobStatus;
  idempotencyKey: string | null;
}

/** One enqueued job; `duplicate` when its idempotency key named an existing job, which this is. */
export interface Enqueued<T extends JobSummary> {
  job: T;
  duplicate: boolean;
  /** Set when the job was handed off: what to deliver to the stream it went to. */
  assignment?: Assignment;
}

/** A job to insert, validated and defaulted by the API layer; payload is JSON text. */
export interface NewJob {
  queue: string;
  payloadJson: string;
  priority: number;
  runAt: Date | null;
  delayMs: number | null;
  /** Null for the queue's default. */
  maxAttempts: number | null;
  backoff: BackoffPolicy;
  /** Null for the queue's default. */
  timeoutMs: number | null;
  idempotencyKey: string | null;
  labels: Record<string, string>;
  traceparent: string | null;
  /**
   * A stream with credit waiting for this queue: the job is inserted already assigned to it (a
   * hand-off, see server/src/core/handoff.ts).
   */
  handoff?: { sessionId: string; workerId: string };
  /** At most one job of the queue holds this key at a time (docs/scheduling.md, "Unique jobs"). */
  unique?: UniqueOption;
  /** The key its queue's per-key rate limit counts it under (docs/scheduling.md, "Rate limits"). */
  rateLimitKey?: string;
  /** The key (e.g. a tenant) its queue's fair claims take in turn and limit (docs/scheduling.md, "Fair keys"). */
  concurrencyKey?: string;
}

/**
 * A unique key: the job holds it while it is in one of `states` and, when `windowMs` > 0, for that
 * long after its enqueue; an enqueue with a held key answers with the holder, marked duplicate.
 */
export interface UniqueOption {
  key: string;
  /** 0: no window, the states alone decide. */
  windowMs: number;
  states: JobStatus[];
}

/** A job handed to a worker. Labels stay JSON text: the Lease stream passes them on as they are. */
export interface Assignment {
  id: string;
  queue: string;
  payloadJson: string;
  leaseToken: string;
  attempt: number;
  maxAttempts: number;
  timeoutMs: number;
  createdAt: Date;
  /** When this attempt became runnable (enqueue, the end of a delay or backoff, a Retry): its start latency counts from here. */
  runAt: Date;
  labelsJson: string;
  traceparent: string | null;
  priority: number;
}

/** A worker's success, fenced by the lease token it was handed. */
export interface SuccessReport {
  id: string;
  token: string;
  resultJson: string;
}

/** A worker's failure, fenced by the lease token it was handed. */
export interface FailureReport {
  id: string;
  token: string;
  message: string;
  nonRetryable: boolean;
  /** The worker's "not before", which lengthens the backoff; null when it named none. */
  retryAfterMs: number | null;
}

/** Progress a worker reported for a job it holds. */
export interface ProgressReport {
  id: string;
  token: string;
  progressJson: string;
}
