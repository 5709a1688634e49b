/**
 * The Lease protocol's rules for what a worker sends, apart from the session's state: a hello or
 * a grant of credits that breaks them ends the stream (a BrokerError); a result that breaks them is
 * refused alone, in its ack, while the stream stays open.
 */
import { failedPrecondition, invalidArgument, resourceExhausted } from '../domain/errors.ts';
import { isBigintText } from '../domain/ids.ts';
import { isValidJsonText } from '../domain/json-text.ts';
import { isQueueName, QUEUE_NAME_RULE } from '../domain/queue.ts';
import { PROTOCOL_VERSION, type ReportedProgress, type ReportedResult, type WorkerHello } from './lease-events.ts';

const MAX_WORKER_ID = 200;
const MAX_QUEUES = 100;
const MAX_CAPACITY = 100_000;
/** Longest `retry_after` a failure may ask for (as for Enqueue's durations): beyond it PostgreSQL's interval overflows. */
const MAX_RETRY_AFTER_MS = 10 * 365 * 24 * 3600_000;
/** Longest snooze: a year, beyond which a job is better cancelled and enqueued again than kept live. */
const MAX_SNOOZE_MS = 365 * 24 * 3600_000;
/** Longest failure message kept; the rest of a stack trace is cut. */
const MAX_FAILURE_MESSAGE = 4000;

/** Throws what is wrong with the first message's hello; a stream without one is refused too. */
export function checkHello(hello: WorkerHello | undefined): asserts hello is WorkerHello {
  if (!hello) throw failedPrecondition('the first message on a Lease stream must carry hello');
  if (!hello.workerId || hello.workerId.length > MAX_WORKER_ID || hello.workerId.includes('\u0000')) {
    throw invalidArgument(`hello.worker_id must be 1-${MAX_WORKER_ID} characters, without NUL`);
  }
  if (hello.queues.length === 0 || hello.queues.length > MAX_QUEUES) {
    throw invalidArgument(`hello.queues must name 1-${MAX_QUEUES} queues`);
  }
  for (const queue of hello.queues) {
    if (!isQueueName(queue)) {
      // Quoted cut short: a name of megabytes would make a trailer too large for the client's HTTP/2 connection.
      throw invalidArgument(`hello.queues: "${queue.slice(0, 140)}" is not a valid queue name (${QUEUE_NAME_RULE})`);
    }
  }
  if (hello.capacity < 1 || hello.capacity > MAX_CAPACITY) {
    throw invalidArgument(`hello.capacity must be 1-${MAX_CAPACITY}, got ${hello.capacity}`);
  }
  if (hello.protocolVersion !== 0 && hello.protocolVersion > PROTOCOL_VERSION) {
    throw failedPrecondition(`protocol version ${hello.protocolVersion} is newer than this broker's (${PROTOCOL_VERSION})`);
  }
}

/** The credits outstanding once `added` are granted on top of `outstanding`; throws past the limit. */
export function grantCredits(outstanding: number, added: number, maxCredits: number): number {
  if (added < 0) throw invalidArgument(`credits must not be negative, got ${added}`);
  const granted = outstanding + added;
  if (granted > maxCredits) {
    throw resourceExhausted(`credits outstanding would be ${granted}, above the broker's limit of ${maxCredits} per stream; grant at most your capacity`);
  }
  return granted;
}

/**
 * Why a result cannot be taken from this stream, if it cannot: malformed ids, a second result for
 * one token in the same message (`seen`), a job the stream does not hold (`holds`), a retry delay
 * or a snooze's delay out of range. Such a result changes nothing; the job stays where it is.
 */
export function resultRefusal(result: ReportedResult, seen: ReadonlySet<string>, holds: (leaseToken: string, jobId: string) => boolean): string | null {
  if (!isBigintText(result.jobId) || !isBigintText(result.leaseToken)) return 'job_id and lease_token must be the values given in the assignment';
  if (seen.has(result.leaseToken)) return 'duplicate result for this lease token in one message';
  if (!holds(result.leaseToken, result.jobId)) return 'this stream does not hold that job under that token';
  const retryAfterMs = result.failure?.retryAfterMs ?? null;
  if (retryAfterMs !== null && !(retryAfterMs >= 0 && retryAfterMs <= MAX_RETRY_AFTER_MS)) return 'failure.retry_after must be between 0 and 10 years';
  if (result.snooze && !(result.snooze.delayMs > 0 && result.snooze.delayMs <= MAX_SNOOZE_MS)) {
    return 'snooze.delay must be more than 0 and at most 365 days';
  }
  return null;
}

/** Why a success's result cannot be stored, if it cannot: the attempt is then recorded as failed. */
export function unstorableResult(resultJson: Uint8Array, maxPayloadBytes: number): string | null {
  if (resultJson.length > maxPayloadBytes) return `result is ${resultJson.length} bytes, above the limit of ${maxPayloadBytes}`;
  if (resultJson.length > 0 && !isValidJsonText(resultJson)) return 'result_json is not valid UTF-8 JSON text';
  return null;
}

/** A failure's message as stored: cut to a length, and never empty. */
export function storedFailureMessage(message: string): string {
  // PostgreSQL's text and jsonb cannot hold NUL: kept visible as U+FFFD rather than refusing the report.
  return message.slice(0, MAX_FAILURE_MESSAGE).replaceAll('\u0000', '\ufffd') || 'failed (no message given)';
}

/** Progress is kept only when it fits the payload limit and is JSON text; the rest is dropped silently. */
export function storableProgress(progress: ReportedProgress, maxPayloadBytes: number): boolean {
  return progress.progressJson.length <= maxPayloadBytes && isValidJsonText(progress.progressJson);
}
