/**
 * The two job tables' shared vocabulary (docs/storage.md): live jobs (PENDING, SCHEDULED, RUNNING)
 * in `baton_live_jobs`, finished ones moved into `baton_job_history` by the statement that finishes
 * them, and every status change counted in `baton_job_count_deltas` by the statement that makes it.
 */
import type { JobStatus } from '../../domain/job-status.ts';
import { status } from './state-machine.ts';

/** Every column of a job row, in the order both tables declare them. */
export const JOB_COLUMN_NAMES = [
  'id',
  'queue',
  'status',
  'payload',
  'priority',
  'run_at',
  'attempt',
  'max_attempts',
  'backoff_initial_ms',
  'backoff_max_ms',
  'backoff_multiplier',
  'backoff_jitter',
  'timeout_ms',
  'idempotency_key',
  'labels',
  'traceparent',
  'result',
  'errors',
  'progress',
  'created_at',
  'started_at',
  'finished_at',
  'lease_token',
  'session_id',
  'worker_id',
  'deadline_at',
  'cancel_requested',
  'rate_limit_key',
  'concurrency_key',
] as const;

export type JobColumn = (typeof JOB_COLUMN_NAMES)[number];

/**
 * Copies rows of `source` (whose columns include every job column) into `table`, each column from
 * `set` where given and from the source's column of the same name otherwise. Returns every column.
 */
export function copyJobs(table: 'baton_live_jobs' | 'baton_job_history', source: string, set: Partial<Record<JobColumn, string>>): string {
  const overriding = table === 'baton_live_jobs' ? ' overriding system value' : '';
  return `insert into ${table} (${JOB_COLUMN_NAMES.join(', ')})${overriding}
    select ${JOB_COLUMN_NAMES.map((column) => set[column] ?? column).join(', ')} from ${source}
    returning *`;
}

/** What a job looks like once finished: no lease, no deadline, finished at `now`. */
export function finishedSet(statusSql: string, now: string): Partial<Record<JobColumn, string>> {
  return { status: statusSql, finished_at: now, lease_token: 'null', deadline_at: 'null' };
}

/**
 * Appends the net status changes of a statement to the counters, at `now`'s minute. `changes`
 * yields (queue, status, n, wait_ms): -1 for a status a job left, +1 for the one it entered, and
 * for jobs entering RUNNING the milliseconds they waited since they were due. Groups whose changes
 * cancel out (a job that stayed RUNNING) write nothing.
 */
export function countChanges(changes: string, now = 'now()'): string {
  return `insert into baton_job_count_deltas (queue, status, minute, n, wait_ms)
    select queue, status, date_trunc('minute', ${now}), sum(n), sum(wait_ms) from (${changes}) as changes(queue, status, n, wait_ms)
    group by queue, status having sum(n) <> 0`;
}

/** The changes of rows of `rows` (with queue and status) that left status `from` (a SQL expression over the row) for their status now. */
export function moved(rows: string, from: string, waitMs = '0'): string {
  return `select queue, ${from}, -1, 0::bigint from ${rows} union all select queue, status, 1, ${waitMs} from ${rows}`;
}

/** Milliseconds a job waited to start, from when it was due (its `run_at`) to `started_at`. */
export const WAITED_MS = `greatest(0, (extract(epoch from started_at - run_at) * 1000))::bigint`;

/** `changes` for rows of `rows` that left the fixed status `from`. */
export function movedFrom(rows: string, from: JobStatus, waitMs = '0'): string {
  return moved(rows, status(from), waitMs);
}
