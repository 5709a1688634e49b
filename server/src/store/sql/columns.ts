/**
 * What the job statements select, so that every answer a row mapper reads (../job-rows.ts) is
 * written once. JSON columns are selected `::text`: parsed, integers above 2^53 would lose digits.
 */

/**
 * Columns the Lease stream needs to hand a job to a worker. Payload and labels stay JSON text; times
 * come as epoch milliseconds (float8, a JS number), which a claim of many jobs turns into Dates
 * several times cheaper than timestamp text.
 */
export const ASSIGNMENT_COLUMNS = `j.id::text as id, j.queue, j.payload::text as payload, j.lease_token::text as lease_token,
  j.attempt, j.max_attempts, j.timeout_ms, (extract(epoch from j.created_at) * 1000)::float8 as created_at,
  (extract(epoch from j.run_at) * 1000)::float8 as run_at, j.labels::text as labels, j.traceparent, j.priority`;

/** All columns, for answers that return whole jobs. */
export const JOB_COLUMNS = `j.id::text as id, j.queue, j.status, j.payload::text as payload, j.priority, j.run_at, j.attempt,
  j.max_attempts, j.backoff_initial_ms, j.backoff_max_ms, j.backoff_multiplier, j.backoff_jitter, j.timeout_ms,
  j.idempotency_key, j.labels::text as labels, j.traceparent, j.result::text as result, j.errors::text as errors,
  j.progress::text as progress, j.created_at, j.started_at, j.finished_at, j.lease_token::text as lease_token,
  j.session_id::text as session_id, j.worker_id, j.cancel_requested`;

/** What an `ids_only` batch answers with: no payloads, results or histories to read back and decode. */
export const JOB_SUMMARY_COLUMNS = `j.id::text as id, j.queue, j.status, j.idempotency_key`;
