/**
 * The Lease stream's wire format: protobuf messages to the session's domain inputs, and its
 * events (server/src/core/lease-events.ts) to protobuf messages, assignments split by size.
 */
import { create } from '@bufbuild/protobuf';
import { type Duration, durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { JobAssignmentSchema, type JobResult, type LeaseRequest, type LeaseResponse, LeaseResponseSchema } from '@baton/worker-sdk/gen/lease';
import type { LeaseEvent, ReportedResult, WorkerMessage } from '../core/lease-events.ts';
import type { Assignment } from '../domain/job.ts';

/** A worker's message as the session takes it. Nothing is checked here: the session's rules do that. */
export function fromLeaseRequest(message: LeaseRequest): WorkerMessage {
  const hello = message.hello;
  return {
    hello: hello && { workerId: hello.workerId, queues: hello.queues, capacity: hello.capacity, protocolVersion: hello.protocolVersion },
    credits: message.credits,
    results: message.results.length > 0 ? message.results.map(fromJobResult) : [],
    progress: message.progress,
    heartbeat: message.heartbeat?.leaseTokens,
  };
}

function fromJobResult(result: JobResult): ReportedResult {
  const failure = result.failure;
  const snooze = result.snooze;
  return {
    jobId: result.jobId,
    leaseToken: result.leaseToken,
    resultJson: result.resultJson,
    failure: failure && {
      message: failure.message,
      nonRetryable: failure.nonRetryable,
      retryAfterMs: failure.retryAfter ? durationMs(failure.retryAfter) : null,
    },
    snooze: snooze && { delayMs: snooze.delay ? durationMs(snooze.delay) : 0 },
  };
}

function durationMs(duration: Duration): number {
  return Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1e6);
}

/** The messages that tell the worker one event: one each, except assignments, split by size. */
export function toLeaseResponses(event: LeaseEvent): LeaseResponse[] {
  switch (event.type) {
    case 'welcome':
      return [
        create(LeaseResponseSchema, {
          welcome: {
            sessionId: event.sessionId,
            heartbeatInterval: durationFromMs(event.heartbeatIntervalMs),
            leaseTtl: durationFromMs(event.leaseTtlMs),
            protocolVersion: event.protocolVersion,
            brokerId: event.brokerId,
          },
        }),
      ];
    case 'jobs':
      return byteBoundedBatches(event.jobs).map((batch) => create(LeaseResponseSchema, { jobs: batch.map(toJobAssignment) }));
    case 'acks':
      return [
        create(LeaseResponseSchema, {
          acks: event.acks.map(({ jobId, leaseToken, refusal }) => ({ jobId, leaseToken, accepted: refusal === null, error: refusal ?? '' })),
        }),
      ];
    case 'lost':
      return [create(LeaseResponseSchema, { lost: event.leaseTokens })];
    case 'cancel':
      return [create(LeaseResponseSchema, { cancels: [{ jobId: event.jobId, leaseToken: event.leaseToken, reason: event.reason }] })];
    case 'drain':
      return [create(LeaseResponseSchema, { drain: { deadline: durationFromMs(event.deadlineMs) } })];
  }
}

/**
 * gRPC clients refuse messages above 4 MiB by default, and one claim may return hundreds of jobs
 * with payloads of up to the payload limit: split so that each message stays under 3 MiB (a single
 * larger job still goes alone).
 */
const MAX_MESSAGE_PAYLOAD_BYTES = 3 * 1024 * 1024;

export function byteBoundedBatches(jobs: Assignment[]): Assignment[][] {
  const batches: Assignment[][] = [];
  let current: Assignment[] = [];
  let bytes = 0;
  for (const job of jobs) {
    const size = job.payloadJson.length + job.labelsJson.length + 128;
    if (current.length > 0 && bytes + size > MAX_MESSAGE_PAYLOAD_BYTES) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(job);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

function toJobAssignment(job: Assignment) {
  return create(JobAssignmentSchema, {
    jobId: job.id,
    queue: job.queue,
    payloadJson: Buffer.from(job.payloadJson),
    leaseToken: job.leaseToken,
    attempt: job.attempt,
    maxAttempts: job.maxAttempts,
    timeout: job.timeoutMs > 0 ? durationFromMs(job.timeoutMs) : undefined,
    createdAt: timestampFromDate(job.createdAt),
    labels: JSON.parse(job.labelsJson) as Record<string, string>,
    traceparent: job.traceparent ?? '',
    priority: job.priority,
  });
}
