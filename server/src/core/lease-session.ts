import { create } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import {
  type JobResult,
  type LeaseRequest,
  type LeaseResponse,
  JobAssignmentSchema,
  LeaseResponseSchema,
} from '@baton/worker-sdk/gen/lease';
import type { Logger } from '../logger.ts';
import type { Assignment, FailureReport, SuccessReport } from '../domain/job.ts';
import type { StoreDriver } from '../store/driver.ts';
import type { CancelEvent } from '../store/notifier.ts';
import type { Consumer, Dispatcher } from './dispatcher.ts';
import { isBigintText } from '../domain/ids.ts';
import type { JobStatus } from '../domain/job-status.ts';
import { isValidJsonText } from '../domain/json-text.ts';
import { QUEUE_NAME_RULE, isQueueName } from '../domain/queue.ts';
import type { FinishedAttempt, JobObserver } from './observer.ts';

export const PROTOCOL_VERSION = 1;

export interface LeaseSessionOptions {
  store: Pick<StoreDriver, 'sessionOpen' | 'sessionHeartbeat' | 'sessionRelease' | 'jobComplete' | 'jobFail' | 'jobRecordProgress'>;
  dispatcher: Dispatcher;
  logger: Logger;
  brokerId: string;
  leaseTtlMs: number;
  heartbeatIntervalMs: number;
  maxPayloadBytes: number;
  maxCredits: number;
  /** Sends one message down the stream. */
  send: (message: LeaseResponse) => void;
  /** Told as jobs start and finish (metrics and logs). */
  observer?: JobObserver;
}

interface Held {
  jobId: string;
  queue: string;
  /** performance.now() at delivery, for the run-duration metric. */
  since: number;
  /** The worker was told to stop this job (a cancel reaches it once, by whichever path comes first). */
  cancelSent?: boolean;
}

/** Longest `retry_after` a failure may ask for (as for Enqueue's durations): beyond it PostgreSQL's interval overflows. */
const MAX_RETRY_AFTER_MS = 10 * 365 * 24 * 3600_000;
const MAX_WORKER_ID = 200;
const MAX_QUEUES = 100;
const MAX_CAPACITY = 100_000;

/**
 * One worker's Lease stream, from hello to close: the credits it granted, the jobs it holds (by
 * lease token), and the results, heartbeats and progress it reports. Protocol violations end the
 * stream with an error for this worker alone; results it cannot report (stale or unknown tokens)
 * are refused one by one in acks.
 */
export class LeaseSession implements Consumer {
  readonly #options: LeaseSessionOptions;
  readonly #held = new Map<string, Held>();
  #sessionId = '';
  #workerId = '';
  #queues: string[] = [];
  #capacity = 0;
  #credits = 0;
  /** Credit set aside by claims under way. */
  #reserved = 0;
  /** Queues that found the credit reserved by another queue's claim (see `reserve`). */
  readonly #starved = new Set<string>();
  #state: 'awaiting-hello' | 'open' | 'draining' | 'closed' = 'awaiting-hello';
  /** Results reported and not yet written, and the writes under way (see `receive`). */
  #recording = 0;
  readonly #writes = new Set<Promise<void>>();
  #logger: Logger;

  constructor(options: LeaseSessionOptions) {
    this.#options = options;
    this.#logger = options.logger;
  }

  get sessionId(): string {
    return this.#sessionId;
  }

  get workerId(): string {
    return this.#workerId;
  }

  get queues(): readonly string[] {
    return this.#queues;
  }

  /** Jobs in hand, counting those whose results are still being written: a drain waits for both. */
  get heldCount(): number {
    return this.#held.size + this.#recording;
  }

  credit(): number {
    if (this.#state !== 'open') return 0;
    return Math.max(0, Math.min(this.#credits, this.#capacity - this.#held.size) - this.#reserved);
  }

  reserve(wanted: number, queue: string): number {
    const granted = Math.min(wanted, this.credit());
    if (granted === 0 && this.#reserved > 0) this.#starved.add(queue);
    this.#reserved += granted;
    return granted;
  }

  /** Wakes the queues whose claims found this stream's credit all reserved, once some is free. */
  #wakeStarved(): void {
    if (this.#starved.size === 0 || this.credit() === 0) return;
    const queues = [...this.#starved];
    this.#starved.clear();
    for (const queue of queues) this.#options.dispatcher.wake(queue);
  }

  /** Handles one message from the worker. Throws a ConnectError to end the stream. */
  async receive(message: LeaseRequest): Promise<void> {
    if (this.#state === 'closed') return;
    if (this.#state === 'awaiting-hello') {
      await this.#hello(message);
      return;
    }
    if (message.hello) throw new ConnectError('hello was already received on this stream', Code.FailedPrecondition);
    if (message.credits < 0) throw new ConnectError(`credits must not be negative, got ${message.credits}`, Code.InvalidArgument);
    const granted = message.credits > 0 ? this.#credits + message.credits : this.#credits;
    if (granted > this.#options.maxCredits) {
      throw new ConnectError(
        `credits outstanding would be ${granted}, above the broker's limit of ${this.#options.maxCredits} per stream; grant at most your capacity`,
        Code.ResourceExhausted,
      );
    }
    // Reported jobs leave this stream's hands at once, so the claim for the credit that came with
    // them runs while their results are being written instead of after: the two round trips to the
    // database overlap rather than add up.
    const recording = message.results.length > 0 ? this.#track(this.#results(message.results)) : null;
    this.#credits = granted;
    if (this.credit() > 0) for (const queue of this.#queues) this.#options.dispatcher.wake(queue);
    await recording;
    if (message.progress.length > 0) await this.#progress(message);
    if (message.heartbeat) await this.#heartbeat(message.heartbeat.leaseTokens);
  }

  async #hello(message: LeaseRequest): Promise<void> {
    const hello = message.hello;
    if (!hello) throw new ConnectError('the first message on a Lease stream must carry hello', Code.FailedPrecondition);
    if (!hello.workerId || hello.workerId.length > MAX_WORKER_ID || hello.workerId.includes('\u0000')) {
      throw new ConnectError(`hello.worker_id must be 1-${MAX_WORKER_ID} characters, without NUL`, Code.InvalidArgument);
    }
    if (hello.queues.length === 0 || hello.queues.length > MAX_QUEUES) {
      throw new ConnectError(`hello.queues must name 1-${MAX_QUEUES} queues`, Code.InvalidArgument);
    }
    for (const queue of hello.queues) {
      if (!isQueueName(queue)) {
        // Quoted cut short: a name of megabytes would make a trailer too large for the client's HTTP/2 connection.
        const quoted = queue.slice(0, 140).toWellFormed();
        throw new ConnectError(`hello.queues: "${quoted}" is not a valid queue name (${QUEUE_NAME_RULE})`, Code.InvalidArgument);
      }
    }
    if (hello.capacity < 1 || hello.capacity > MAX_CAPACITY) {
      throw new ConnectError(`hello.capacity must be 1-${MAX_CAPACITY}, got ${hello.capacity}`, Code.InvalidArgument);
    }
    if (hello.protocolVersion !== 0 && hello.protocolVersion > PROTOCOL_VERSION) {
      throw new ConnectError(`protocol version ${hello.protocolVersion} is newer than this broker's (${PROTOCOL_VERSION})`, Code.FailedPrecondition);
    }
    this.#workerId = hello.workerId;
    this.#queues = [...new Set(hello.queues)];
    this.#capacity = hello.capacity;
    this.#sessionId = await this.#options.store.sessionOpen({
      workerId: this.#workerId,
      brokerId: this.#options.brokerId,
      queues: this.#queues,
      capacity: this.#capacity,
      ttlMs: this.#options.leaseTtlMs,
    });
    this.#logger = this.#logger.child({ session: this.#sessionId, worker: this.#workerId });
    this.#state = 'open';
    this.#options.send(
      create(LeaseResponseSchema, {
        welcome: {
          sessionId: this.#sessionId,
          heartbeatInterval: durationFromMs(this.#options.heartbeatIntervalMs),
          leaseTtl: durationFromMs(this.#options.leaseTtlMs),
          protocolVersion: PROTOCOL_VERSION,
          brokerId: this.#options.brokerId,
        },
      }),
    );
    this.#options.dispatcher.register(this);
    this.#logger.info('worker connected', { queues: this.#queues, capacity: this.#capacity });
    // Credits may ride on the hello message itself.
    if (message.credits > 0 || message.results.length > 0 || message.heartbeat) {
      await this.receive({ ...message, hello: undefined });
    }
  }

  deliver(jobs: Assignment[], reserved: number): void {
    this.#reserved -= reserved;
    if (this.#state === 'closed') return; // a closed session's release hands them back
    if (jobs.length > 0) {
      const since = performance.now();
      for (const job of jobs) this.#held.set(job.leaseToken, { jobId: job.id, queue: job.queue, since });
      this.#options.observer?.started(jobs, this.#workerId);
      this.#credits -= jobs.length;
      for (const batch of byteBoundedBatches(jobs)) {
        this.#options.send(create(LeaseResponseSchema, { jobs: batch.map(toJobAssignment) }));
      }
    }
    this.#wakeStarved();
  }

  cancel(event: CancelEvent): boolean {
    const held = this.#held.get(event.token);
    if (!held || held.jobId !== event.id || this.#state === 'closed') return false;
    if (held.cancelSent) return true;
    held.cancelSent = true;
    this.#options.send(
      create(LeaseResponseSchema, { cancels: [{ jobId: event.id, leaseToken: event.token, reason: event.reason }] }),
    );
    return true;
  }

  /** Keeps a results write where `close` finds it: a session is released only after its results are written. */
  #track(write: Promise<void>): Promise<void> {
    this.#writes.add(write);
    const untrack = () => this.#writes.delete(write);
    write.then(untrack, untrack);
    return write;
  }

  async #results(results: JobResult[]): Promise<void> {
    const successes: SuccessReport[] = [];
    const failures: FailureReport[] = [];
    // By position: a refused duplicate shares its job id and token with the result it repeats.
    const refused = new Map<number, string>();
    const unstorableAt = new Map<number, string>();
    const reported = new Map<number, Held>();
    const seen = new Set<string>();
    for (const [index, result] of results.entries()) {
      const problem = this.#checkResult(result, seen);
      seen.add(result.leaseToken);
      if (problem) {
        refused.set(index, problem);
        continue;
      }
      // Whatever the database will say, this stream no longer holds the job.
      reported.set(index, this.#held.get(result.leaseToken)!);
      this.#held.delete(result.leaseToken);
      const unstorable = result.failure ? null : this.#unstorableResult(result);
      if (unstorable) {
        // The attempt ended, but its result cannot be kept: record it as failed rather than leave
        // the job RUNNING (and its slot taken) until the stream ends. Retrying would return the same.
        failures.push({ id: result.jobId, token: result.leaseToken, message: `the worker's result could not be stored: ${unstorable}`, nonRetryable: true, retryAfterMs: null });
        unstorableAt.set(index, `${unstorable}; the attempt was recorded as failed`);
      } else if (result.failure) {
        const retryAfter = result.failure.retryAfter;
        failures.push({
          id: result.jobId,
          token: result.leaseToken,
          // PostgreSQL's text and jsonb cannot hold NUL: kept visible as U+FFFD rather than refusing the report.
          message: result.failure.message.slice(0, 4000).replaceAll('\u0000', '\ufffd') || 'failed (no message given)',
          nonRetryable: result.failure.nonRetryable,
          retryAfterMs: retryAfter ? retryAfterMs(retryAfter) : null,
        });
      } else {
        const text = new TextDecoder().decode(result.resultJson);
        successes.push({ id: result.jobId, token: result.leaseToken, resultJson: text === '' ? 'null' : text });
      }
    }
    this.#recording += reported.size;
    let completed: Set<string>;
    let failed: Map<string, JobStatus>;
    try {
      [completed, failed] = await Promise.all([
        this.#options.store.jobComplete({ results: successes }),
        this.#options.store.jobFail({ failures }),
      ]);
    } finally {
      this.#recording -= reported.size;
    }
    const finished: FinishedAttempt[] = [];
    const acks = results.map((result, index) => {
      const problem = refused.get(index);
      if (problem) return { jobId: result.jobId, leaseToken: result.leaseToken, accepted: false, error: problem };
      const held = reported.get(index);
      const accepted = completed.has(result.jobId) || failed.has(result.jobId);
      if (accepted && held) {
        const status = failed.get(result.jobId) ?? 'completed';
        finished.push({ id: result.jobId, queue: held.queue, status, runMs: performance.now() - held.since, error: result.failure?.message });
      }
      const unstorable = unstorableAt.get(index);
      if (unstorable) return { jobId: result.jobId, leaseToken: result.leaseToken, accepted: false, error: unstorable };
      return {
        jobId: result.jobId,
        leaseToken: result.leaseToken,
        accepted,
        error: accepted ? '' : 'stale lease: the job is no longer held under this token (it expired, was cancelled or was already reported)',
      };
    });
    this.#options.send(create(LeaseResponseSchema, { acks }));
    if (finished.length > 0) this.#options.observer?.finished(finished, this.#workerId);
  }

  #checkResult(result: JobResult, seen: Set<string>): string | null {
    if (!isBigintText(result.jobId) || !isBigintText(result.leaseToken)) return 'job_id and lease_token must be the values given in the assignment';
    if (seen.has(result.leaseToken)) return 'duplicate result for this lease token in one message';
    const held = this.#held.get(result.leaseToken);
    if (!held || held.jobId !== result.jobId) return 'this stream does not hold that job under that token';
    if (result.failure?.retryAfter) {
      const ms = retryAfterMs(result.failure.retryAfter);
      if (!(ms >= 0 && ms <= MAX_RETRY_AFTER_MS)) return 'failure.retry_after must be between 0 and 10 years';
    }
    return null;
  }

  /** Why a success's result cannot be stored, if it cannot. */
  #unstorableResult(result: JobResult): string | null {
    if (result.resultJson.length > this.#options.maxPayloadBytes) {
      return `result is ${result.resultJson.length} bytes, above the limit of ${this.#options.maxPayloadBytes}`;
    }
    if (result.resultJson.length > 0 && !isValidJsonText(result.resultJson)) return 'result_json is not valid UTF-8 JSON text';
    return null;
  }

  async #progress(message: LeaseRequest): Promise<void> {
    const updates = message.progress
      .filter((p) => this.#held.get(p.leaseToken)?.jobId === p.jobId && p.progressJson.length <= this.#options.maxPayloadBytes && isValidJsonText(p.progressJson))
      .map((p) => ({ id: p.jobId, token: p.leaseToken, progressJson: new TextDecoder().decode(p.progressJson) }));
    await this.#options.store.jobRecordProgress({ updates });
  }

  async #heartbeat(tokens: string[]): Promise<void> {
    const valid = tokens.filter(isBigintText);
    const outcome = await this.#options.store.sessionHeartbeat({ sessionId: this.#sessionId, ttlMs: this.#options.leaseTtlMs, tokens: valid });
    if (outcome === null) {
      throw new ConnectError('this session expired (no heartbeat within the lease TTL); reconnect to start a new one', Code.Unavailable);
    }
    // A cancel announced while this stream's claim of the job was still on its way found no holder;
    // the database remembers the request, and it is passed on here at the latest.
    for (const token of outcome.cancelRequested) {
      const held = this.#held.get(token);
      if (held) this.cancel({ id: held.jobId, token, reason: 'cancelled' });
    }
    const unknown = tokens.filter((token) => !isBigintText(token));
    const gone = [...outcome.lost, ...unknown];
    for (const token of gone) this.#held.delete(token);
    if (gone.length > 0) this.#options.send(create(LeaseResponseSchema, { lost: gone }));
  }

  /** Stops taking jobs and asks the worker to report what it holds and reconnect elsewhere. */
  drain(deadlineMs: number): void {
    if (this.#state !== 'open') return;
    this.#state = 'draining';
    this.#options.send(create(LeaseResponseSchema, { drain: { deadline: durationFromMs(deadlineMs) } }));
  }

  /**
   * Ends the session: waits for claims under way (they may still deliver), then hands every job
   * still held back to the queue in one statement. Safe to call twice.
   */
  async close(reason: string): Promise<void> {
    if (this.#state === 'closed') return;
    const opened = this.#state !== 'awaiting-hello';
    this.#state = 'closed';
    if (!opened) return;
    this.#options.dispatcher.unregister(this);
    await Promise.all([this.#options.dispatcher.settle(), Promise.allSettled([...this.#writes])]);
    const released = await this.#options.store.sessionRelease({ sessionId: this.#sessionId, reason });
    this.#held.clear();
    this.#logger.info('worker disconnected', { reason, released });
  }
}

function retryAfterMs(duration: { seconds: bigint; nanos: number }): number {
  return Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1e6);
}

/**
 * gRPC clients refuse messages above 4 MiB by default, and one claim may return hundreds of jobs
 * with payloads of up to the payload limit: split so that each message stays under 3 MiB (a single
 * larger job still goes alone).
 */
const MAX_MESSAGE_PAYLOAD_BYTES = 3 * 1024 * 1024;

function byteBoundedBatches(jobs: Assignment[]): Assignment[][] {
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
