/**
 * Stored jobs and statuses as the wire has them: protobuf messages, the wire's status enum, and
 * each JSON column both as a Value and as its exact text.
 */
import { create, fromJson, type JsonValue } from '@bufbuild/protobuf';
import { ValueSchema, durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { type Job, JobSchema, JobStatus } from '@baton/worker-sdk/gen/job';
import { invalidArgument } from '../domain/errors.ts';
import type { JobRecord } from '../domain/job.ts';
import { JOB_STATUSES, type JobStatus as StoredStatus } from '../domain/job-status.ts';
import { alternatives } from '../lib/words.ts';

/** The wire enum names each status in capitals (JOB_STATUS_PENDING is PENDING); a status without one does not compile. */
const wireName = (status: StoredStatus) => status.toUpperCase() as Uppercase<StoredStatus>;

const STATUS_TO_WIRE = Object.fromEntries(JOB_STATUSES.map((status) => [status, JobStatus[wireName(status)]])) as Record<StoredStatus, JobStatus>;

const WIRE_TO_STATUS = new Map<number, StoredStatus>(Object.entries(STATUS_TO_WIRE).map(([stored, wire]) => [wire, stored as StoredStatus]));

export function statusToWire(status: StoredStatus): JobStatus {
  return STATUS_TO_WIRE[status];
}

/** A wire status filter as stored statuses; unknown numbers are refused, not ignored. */
export function statusesFromWire(statuses: JobStatus[], field: string): StoredStatus[] {
  return statuses
    .filter((status) => status !== JobStatus.UNSPECIFIED)
    .map((status) => {
      const stored = WIRE_TO_STATUS.get(status);
      if (!stored) throw invalidArgument(`${field}: unknown status ${status}; use ${describeStatuses(JOB_STATUSES)}`);
      return stored;
    });
}

/** Statuses as people read them in messages: "FAILED or CANCELLED". */
export function describeStatuses(statuses: readonly StoredStatus[]): string {
  return alternatives(statuses.map(wireName));
}

const encoder = new TextEncoder();

/** A JSON column as a Value: absent for SQL NULL and JSON null alike (its `_json` twin tells them apart). */
function jsonValue(text: string | null) {
  const value = text === null ? null : (JSON.parse(text) as JsonValue);
  return value === null ? undefined : fromJson(ValueSchema, value);
}

/** A JSON column as the exact text stored, for the `_json` twin of each Value field. */
function jsonBytes(text: string | null): Uint8Array {
  return text === null ? new Uint8Array(0) : encoder.encode(text);
}

export function toWireJob(job: JobRecord): Job {
  return create(JobSchema, {
    id: job.id,
    queue: job.queue,
    status: statusToWire(job.status),
    payload: fromJson(ValueSchema, JSON.parse(job.payloadJson) as JsonValue),
    payloadJson: jsonBytes(job.payloadJson),
    priority: job.priority,
    runAt: timestampFromDate(job.runAt),
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    retryPolicy: {
      initialBackoff: durationFromMs(job.backoff.initialMs),
      maxBackoff: durationFromMs(job.backoff.maxMs),
      multiplier: job.backoff.multiplier,
      jitter: job.backoff.jitter,
    },
    timeout: job.timeoutMs > 0 ? durationFromMs(job.timeoutMs) : undefined,
    idempotencyKey: job.idempotencyKey ?? '',
    labels: job.labels,
    result: jsonValue(job.resultJson),
    resultJson: jsonBytes(job.resultJson),
    errors: job.errors.map((error) => ({
      attempt: error.attempt,
      message: error.message,
      at: timestampFromDate(error.at),
      workerId: error.workerId ?? '',
    })),
    createdAt: timestampFromDate(job.createdAt),
    startedAt: job.startedAt ? timestampFromDate(job.startedAt) : undefined,
    finishedAt: job.finishedAt ? timestampFromDate(job.finishedAt) : undefined,
    workerId: job.workerId ?? '',
    cancelRequested: job.cancelRequested,
    progress: jsonValue(job.progressJson),
    progressJson: jsonBytes(job.progressJson),
    traceparent: job.traceparent ?? '',
  });
}
