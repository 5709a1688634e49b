import type { Assignment } from '../domain/job.ts';
import type { JobStatus } from '../domain/job-status.ts';

/** One result the database accepted: where the job went, and how long the attempt ran. */
export interface FinishedAttempt {
  id: string;
  queue: string;
  /** COMPLETED, or after a failure SCHEDULED (a retry), FAILED (for good) or CANCELLED. */
  status: JobStatus;
  /** From delivery to the worker until its result arrived, on this broker's monotonic clock. */
  runMs: number;
  /** The failure message, for failed attempts. */
  error?: string;
}

/**
 * Told whenever jobs change hands on this broker, so that metrics and logs can follow them without
 * the Lease stream or the background duties knowing about either. Every method must be cheap and
 * must not throw.
 */
export interface JobObserver {
  /** Jobs handed to a worker. */
  started(jobs: readonly Assignment[], workerId: string): void;
  /** Results (successes and failures) recorded for jobs a worker held. */
  finished(attempts: readonly FinishedAttempt[], workerId: string): void;
  /** Jobs taken back from workers whose lease expired (counted by the leader that reaped them). */
  leasesExpired(jobs: number): void;
  /** Attempts failed by the broker because they outlived their timeout (leader only). */
  timedOut(jobs: number): void;
}
