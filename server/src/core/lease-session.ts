import type { Assignment, FailureReport, SuccessReport } from '../domain/job.ts';
import type { JobStatus } from '../domain/job-status.ts';
import { failedPrecondition, unavailable } from '../domain/errors.ts';
import { isBigintText } from '../domain/ids.ts';
import type { Logger } from '../logger.ts';
import type { SnoozeReport, StoreDriver } from '../store/driver.ts';
import type { CancelEvent } from '../store/notification-listener.ts';
import type { Consumer, Dispatcher } from './dispatcher.ts';
import { checkHello, grantCredits, resultRefusal, storableProgress, storedFailureMessage, unstorableResult } from './lease-checks.ts';
import { type LeaseEvent, PROTOCOL_VERSION, type ReportedProgress, type ReportedResult, type ResultAck, type WorkerMessage } from './lease-events.ts';
import type { FinishedAttempt, JobObserver } from './observer.ts';

export interface LeaseSessionOptions {
  store: Pick<StoreDriver, 'sessionOpen' | 'sessionHeartbeat' | 'sessionRelease' | 'jobComplete' | 'jobFail' | 'jobSnooze' | 'jobRecordProgress'>;
  dispatcher: Pick<Dispatcher, 'register' | 'unregister' | 'wake' | 'settle'>;
  logger: Logger;
  brokerId: string;
  leaseTtlMs: number;
  heartbeatIntervalMs: number;
  maxPayloadBytes: number;
  maxCredits: number;
  /** Told everything the worker must hear, in order; the api layer turns each event into messages. */
  onEvent: (event: LeaseEvent) => void;
  /** Told as jobs start and finish (metrics and logs). */
  observer?: JobObserver;
  /** A monotonic clock in ms, for how long attempts ran; performance.now() unless a test moves it. */
  now?: () => number;
}

interface Held {
  jobId: string;
  queue: string;
  /** `now()` at delivery, for the run-duration metric. */
  since: number;
  /** The worker was told to stop this job (a cancel reaches it once, by whichever path comes first). */
  cancelSent?: boolean;
}

const STALE_LEASE = 'stale lease: the job is no longer held under this token (it expired, was cancelled or was already reported)';
const decoder = new TextDecoder();

/**
 * One worker's Lease stream, from hello to close: the credits it granted, the jobs it holds (by
 * lease token), and the results, heartbeats and progress it reports. It speaks the protocol's
 * domain events (./lease-events.ts), never a wire format. Protocol violations end the stream with
 * a BrokerError for this worker alone; results it cannot record (stale or unknown tokens) are
 * refused one by one in acks.
 */
export class LeaseSession implements Consumer {
  readonly #options: LeaseSessionOptions;
  readonly #now: () => number;
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
  /** Waiting for the session to hold nothing (see `idle`). */
  #idleWaiters: (() => void)[] = [];
  #logger: Logger;

  constructor(options: LeaseSessionOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
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

  /** Resolves once `heldCount` is 0 (at once if it is): a drain awaits this instead of polling. */
  idle(): Promise<void> {
    if (this.heldCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Called wherever `heldCount` may have dropped. */
  #checkIdle(): void {
    if (this.heldCount > 0 || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
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

  /** Handles one message from the worker. Throws a BrokerError to end the stream. */
  async receive(message: WorkerMessage): Promise<void> {
    if (this.#state === 'closed') return;
    if (this.#state === 'awaiting-hello') {
      await this.#hello(message);
      return;
    }
    if (message.hello) throw failedPrecondition('hello was already received on this stream');
    const granted = grantCredits(this.#credits, message.credits, this.#options.maxCredits);
    // Reported jobs leave this stream's hands at once, so the claim for the credit that came with
    // them runs while their results are being written instead of after: the two round trips to the
    // database overlap rather than add up.
    const recording = message.results.length > 0 ? this.#track(this.#results(message.results)) : null;
    this.#credits = granted;
    if (this.credit() > 0) for (const queue of this.#queues) this.#options.dispatcher.wake(queue);
    await recording;
    if (message.progress.length > 0) await this.#progress(message.progress);
    if (message.heartbeat) await this.#heartbeat(message.heartbeat);
  }

  async #hello(message: WorkerMessage): Promise<void> {
    const hello = message.hello;
    checkHello(hello);
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
    this.#options.onEvent({
      type: 'welcome',
      sessionId: this.#sessionId,
      heartbeatIntervalMs: this.#options.heartbeatIntervalMs,
      leaseTtlMs: this.#options.leaseTtlMs,
      protocolVersion: PROTOCOL_VERSION,
      brokerId: this.#options.brokerId,
    });
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
      const since = this.#now();
      for (const job of jobs) this.#held.set(job.leaseToken, { jobId: job.id, queue: job.queue, since });
      this.#options.observer?.started(jobs, this.#workerId);
      this.#credits -= jobs.length;
      this.#options.onEvent({ type: 'jobs', jobs });
    }
    this.#wakeStarved();
  }

  cancel(event: CancelEvent): boolean {
    const held = this.#held.get(event.token);
    if (!held || held.jobId !== event.id || this.#state === 'closed') return false;
    if (held.cancelSent) return true;
    held.cancelSent = true;
    this.#options.onEvent({ type: 'cancel', jobId: event.id, leaseToken: event.token, reason: event.reason });
    return true;
  }

  /** Keeps a results write where `close` finds it: a session is released only after its results are written. */
  #track(write: Promise<void>): Promise<void> {
    this.#writes.add(write);
    const untrack = () => this.#writes.delete(write);
    write.then(untrack, untrack);
    return write;
  }

  async #results(results: ReportedResult[]): Promise<void> {
    const successes: SuccessReport[] = [];
    const failures: FailureReport[] = [];
    const snoozes: SnoozeReport[] = [];
    // By position: a refused duplicate shares its job id and token with the result it repeats.
    const refused = new Map<number, string>();
    const unstorableAt = new Map<number, string>();
    const reported = new Map<number, Held>();
    const seen = new Set<string>();
    const holds = (token: string, jobId: string) => this.#held.get(token)?.jobId === jobId;
    for (const [index, result] of results.entries()) {
      const refusal = resultRefusal(result, seen, holds);
      seen.add(result.leaseToken);
      if (refusal) {
        refused.set(index, refusal);
        continue;
      }
      // Whatever the database will say, this stream no longer holds the job.
      reported.set(index, this.#held.get(result.leaseToken)!);
      this.#held.delete(result.leaseToken);
      if (result.snooze) {
        snoozes.push({ id: result.jobId, token: result.leaseToken, delayMs: result.snooze.delayMs });
        continue;
      }
      const unstorable = result.failure ? null : unstorableResult(result.resultJson, this.#options.maxPayloadBytes);
      if (unstorable) {
        // The attempt ended, but its result cannot be kept: record it as failed rather than leave
        // the job RUNNING (and its slot taken) until the stream ends. Retrying would return the same.
        failures.push({
          id: result.jobId,
          token: result.leaseToken,
          message: `the worker's result could not be stored: ${unstorable}`,
          nonRetryable: true,
          retryAfterMs: null,
        });
        unstorableAt.set(index, `${unstorable}; the attempt was recorded as failed`);
      } else if (result.failure) {
        failures.push({
          id: result.jobId,
          token: result.leaseToken,
          message: storedFailureMessage(result.failure.message),
          nonRetryable: result.failure.nonRetryable,
          retryAfterMs: result.failure.retryAfterMs,
        });
      } else {
        const text = decoder.decode(result.resultJson);
        successes.push({ id: result.jobId, token: result.leaseToken, resultJson: text === '' ? 'null' : text });
      }
    }
    this.#recording += reported.size;
    let completed: Set<string>;
    let failed: Map<string, JobStatus>;
    let snoozed: Map<string, JobStatus>;
    try {
      [completed, failed, snoozed] = await Promise.all([
        this.#options.store.jobComplete({ results: successes }),
        this.#options.store.jobFail({ failures }),
        // Apart, and only when asked: workers that never snooze run nothing more per result.
        snoozes.length > 0 ? this.#options.store.jobSnooze({ snoozes }) : new Map<string, JobStatus>(),
      ]);
    } finally {
      this.#recording -= reported.size;
      this.#checkIdle();
    }
    const finished: FinishedAttempt[] = [];
    const acks = results.map((result, index): ResultAck => {
      let refusal = refused.get(index) ?? null;
      if (refusal === null) {
        const held = reported.get(index);
        const snoozedTo = snoozed.get(result.jobId);
        const accepted = completed.has(result.jobId) || failed.has(result.jobId) || snoozedTo !== undefined;
        // A snooze that rescheduled the job ended no attempt: nothing for the attempts' metrics.
        if (accepted && held && snoozedTo !== 'scheduled') {
          const status = snoozedTo ?? failed.get(result.jobId) ?? 'completed';
          finished.push({ id: result.jobId, queue: held.queue, status, runMs: this.#now() - held.since, error: result.failure?.message });
        }
        refusal = unstorableAt.get(index) ?? (accepted ? null : STALE_LEASE);
      }
      return { jobId: result.jobId, leaseToken: result.leaseToken, refusal };
    });
    this.#options.onEvent({ type: 'acks', acks });
    if (finished.length > 0) this.#options.observer?.finished(finished, this.#workerId);
  }

  async #progress(progress: ReportedProgress[]): Promise<void> {
    const updates = progress
      .filter((p) => this.#held.get(p.leaseToken)?.jobId === p.jobId && storableProgress(p, this.#options.maxPayloadBytes))
      .map((p) => ({ id: p.jobId, token: p.leaseToken, progressJson: decoder.decode(p.progressJson) }));
    await this.#options.store.jobRecordProgress({ updates });
  }

  async #heartbeat(tokens: string[]): Promise<void> {
    const valid = tokens.filter(isBigintText);
    const outcome = await this.#options.store.sessionHeartbeat({ sessionId: this.#sessionId, ttlMs: this.#options.leaseTtlMs, tokens: valid });
    if (outcome === null) throw unavailable('this session expired (no heartbeat within the lease TTL); reconnect to start a new one');
    // A cancel announced while this stream's claim of the job was still on its way found no holder;
    // the database remembers the request, and it is passed on here at the latest.
    for (const token of outcome.cancelRequested) {
      const held = this.#held.get(token);
      if (held) this.cancel({ id: held.jobId, token, reason: 'cancelled' });
    }
    const unknown = tokens.filter((token) => !isBigintText(token));
    const gone = [...outcome.lost, ...unknown];
    for (const token of gone) this.#held.delete(token);
    if (gone.length > 0) this.#options.onEvent({ type: 'lost', leaseTokens: gone });
    this.#checkIdle();
  }

  /** Stops taking jobs and asks the worker to report what it holds and reconnect elsewhere. */
  drain(deadlineMs: number): void {
    if (this.#state !== 'open') return;
    this.#state = 'draining';
    this.#options.onEvent({ type: 'drain', deadlineMs });
  }

  /**
   * Ends the session: waits for claims under way (they may still deliver), then hands every job
   * still held back to the queue in one statement, each with `releaseMessage` as its attempt's
   * error. `reason` is why the stream ended (logged). Safe to call twice.
   */
  async close(reason: string, releaseMessage = reason): Promise<void> {
    if (this.#state === 'closed') return;
    const opened = this.#state !== 'awaiting-hello';
    this.#state = 'closed';
    if (!opened) return;
    this.#options.dispatcher.unregister(this);
    await Promise.all([this.#options.dispatcher.settle(), Promise.allSettled([...this.#writes])]);
    try {
      const released = await this.#options.store.sessionRelease({ sessionId: this.#sessionId, reason: releaseMessage });
      this.#logger.info('worker disconnected', { reason, released });
    } finally {
      // Released or not, this stream holds nothing any more: whoever waits for it to be idle may go on.
      this.#held.clear();
      this.#checkIdle();
    }
  }
}
