// The jobs this process holds, from assignment until their result is sent or dropped: running the
// handler, its timeout, cancels and lost leases, and queuing the result on the job's session.
//
// Slot accounting, the one invariant everything here keeps: a job occupies one of `concurrency +
// prefetch` slots from the moment it is assigned until its handler has settled AND its result has
// been sent (or dropped). Credits granted to the broker are `concurrency + prefetch - occupied -
// credit already granted`, so the broker's in-hand jobs plus its credit never exceed that, even
// while handlers of an earlier, broken stream are still winding down. At most `concurrency`
// handlers run at once; the prefetched rest wait here in arrival order, already leased (their
// attempt, heartbeats and timeout run from delivery, as the broker counts them).

import { create } from '@bufbuild/protobuf';
import { durationMs, timestampDate } from '@bufbuild/protobuf/wkt';
import { JobProgressSchema, JobResultSchema, type CancelNotice, type JobAssignment } from './gen/baton/v1/lease_pb.ts';
import { NonRetryableError, SnoozeError } from './errors.ts';
import type { Handler, JobContext } from './handler.ts';
import { decodeJson, encodeJson, jsonText } from './json.ts';
import { failure, success, type Outcome } from './outcome.ts';
import type { Reported, Session } from './session.ts';
import type { Logger, WorkerEvents } from './worker-options.ts';

type Phase = 'running' | 'queued' | 'sent' | 'dropped';

/** One job this process holds (see the slot accounting note at the top). */
export interface Held {
  readonly token: string;
  readonly session: Session;
  readonly controller: AbortController;
  readonly ctx: JobContext;
  readonly timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  /** running → queued (result waiting for the next flush) → sent; or dropped (lease gone). */
  phase: Phase;
  /** The handler's promise has settled (or no handler ran). */
  settled: boolean;
  /** Its handler was started (or found missing); false while it waits, prefetched, for a free handler. */
  begun: boolean;
  readonly payloadJson: Uint8Array;
  /** The outcome queued or sent, announced when the broker acknowledges it. */
  reported?: Reported;
}

/** What the held jobs need of the Worker that owns them. */
export interface JobOwner {
  readonly workerId: string;
  readonly concurrency: number;
  /** Jobs leased beyond `concurrency`, waiting here for a handler to free up. */
  readonly prefetch: number;
  readonly handlers: Readonly<Record<string, Handler>>;
  emit<K extends keyof WorkerEvents>(event: K, ...args: WorkerEvents[K]): void;
  log(level: keyof Logger, message: string, ...details: unknown[]): void;
  /** A result, progress or a freed slot waits for the next LeaseRequest. */
  scheduleFlush(): void;
  /** A handler settled, which close() may be waiting for. */
  notify(): void;
}

/** The jobs held, keyed by lease token; their count is the occupied slots. */
export class HeldJobs {
  readonly #held = new Map<string, Held>();
  /** Prefetched jobs not begun yet, oldest first. */
  readonly #waiting = new Set<Held>();
  readonly #owner: JobOwner;
  /** Handlers begun and not settled. */
  #executing = 0;

  constructor(owner: JobOwner) {
    this.#owner = owner;
  }

  /** Jobs whose handlers are running right now. */
  get running(): number {
    return this.#executing;
  }

  /** Jobs whose handlers have not settled yet. */
  unsettled(): Held[] {
    return [...this.#held.values()].filter((h) => !h.settled);
  }

  allSettled(): boolean {
    return [...this.#held.values()].every((h) => h.settled);
  }

  /** Credits `s` may grant now: the slots neither occupied nor promised to the broker already. */
  grantable(s: Session): number {
    return this.#owner.concurrency + this.#owner.prefetch - this.#held.size - s.credit;
  }

  anyRunning(s: Session): boolean {
    for (const h of this.#held.values()) if (h.session === s && h.phase === 'running') return true;
    return false;
  }

  /** Lease tokens of the session's jobs still running: what a heartbeat renews. */
  runningTokens(s: Session): string[] {
    const tokens: string[] = [];
    for (const h of this.#held.values()) if (h.session === s && h.phase === 'running') tokens.push(h.token);
    return tokens;
  }

  start(s: Session, a: JobAssignment): void {
    if (this.#held.has(a.leaseToken)) {
      this.#owner.log('warn', `job ${a.jobId} assigned twice with the same lease token; ignored`);
      return;
    }
    const controller = new AbortController();
    const timeoutMs = a.timeout ? durationMs(a.timeout) : 0;
    const ctx: JobContext = {
      id: a.jobId,
      queue: a.queue,
      attempt: a.attempt,
      maxAttempts: a.maxAttempts,
      priority: a.priority,
      createdAt: a.createdAt ? timestampDate(a.createdAt) : undefined,
      labels: Object.freeze({ ...a.labels }),
      traceparent: a.traceparent || undefined,
      workerId: this.#owner.workerId,
      // Decoded only if asked for: most handlers never read it.
      get payloadJson() {
        return jsonText(a.payloadJson);
      },
      signal: controller.signal,
      progress: (value) => this.#progress(h, value),
    };
    const h: Held = {
      token: a.leaseToken,
      session: s,
      controller,
      ctx,
      timeoutMs,
      timer: undefined,
      phase: 'running',
      settled: false,
      begun: false,
      payloadJson: a.payloadJson,
    };
    this.#held.set(h.token, h);
    // Armed at delivery, prefetched or not: the broker's deadline for the attempt runs from its claim.
    if (timeoutMs > 0) h.timer = setTimeout(() => this.#timeout(h), timeoutMs);
    if (this.#executing < this.#owner.concurrency) this.#begin(h);
    else this.#waiting.add(h);
  }

  /** Hands a held job to its handler. */
  #begin(h: Held): void {
    h.begun = true;
    this.#owner.emit('active', h.ctx);
    const handlers = this.#owner.handlers;
    const queue = h.ctx.queue;
    const handler = Object.hasOwn(handlers, queue) ? handlers[queue] : undefined;
    if (!handler) {
      h.settled = true; // retryable: another worker may serve the queue
      this.report(h, failure(new Error(`no handler for queue "${queue}" on worker ${this.#owner.workerId}`)));
      return;
    }
    let payload: unknown;
    try {
      payload = decodeJson(h.payloadJson);
    } catch (err) {
      h.settled = true;
      this.report(h, failure(new NonRetryableError(`payload is not valid JSON: ${(err as Error).message}`)));
      return;
    }
    this.#executing++;
    let result: Promise<unknown>;
    try {
      result = Promise.resolve(handler(payload, h.ctx));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (value) => this.#settle(h, success(value), value),
      (err: unknown) => this.#settle(h, failure(err)),
    );
  }

  /** Begins waiting jobs while handlers are free. */
  #beginWaiting(): void {
    for (const h of this.#waiting) {
      if (this.#executing >= this.#owner.concurrency) return;
      this.#waiting.delete(h);
      this.#begin(h);
    }
  }

  /** A waiting job leaves the line without running (cancelled, timed out, lost, handed back): it is settled as it is. */
  #unqueue(h: Held): void {
    if (h.begun) return;
    h.begun = true;
    h.settled = true;
    this.#waiting.delete(h);
  }

  /**
   * Hands the session's waiting jobs back to the broker unstarted, as a snooze of 1 ms (the attempt
   * does not count, docs/protocol.md): a closing or draining worker should not start new jobs, and
   * they should not wait for its running ones to finish either. Returns how many.
   */
  returnWaiting(s: Session): number {
    let returned = 0;
    for (const h of [...this.#waiting]) {
      if (h.session !== s) continue;
      this.#unqueue(h);
      this.report(h, failure(new SnoozeError(1)), undefined, false);
      returned++;
    }
    return returned;
  }

  /** The handler is done; report its outcome unless the job was already reported or dropped. */
  #settle(h: Held, outcome: Outcome, value?: unknown): void {
    h.settled = true;
    this.#executing--;
    this.#beginWaiting();
    clearTimeout(h.timer);
    if (h.phase === 'running') {
      // A handler that stopped because we aborted it mostly rejects with a generic AbortError; the
      // reason we aborted it ("worker closing") says more.
      if (!outcome.ok && h.controller.signal.aborted) outcome = failure(h.controller.signal.reason);
      this.report(h, outcome, value);
    } else if (h.phase === 'sent' || h.phase === 'dropped') {
      this.#held.delete(h.token); // its slot is free again: the next flush grants a credit
      this.#owner.scheduleFlush();
    }
    this.#owner.notify();
  }

  /** Queues a result for the next flush (which also returns the slot as credit). */
  report(h: Held, outcome: Outcome, value?: unknown, announce = true): void {
    h.phase = 'queued';
    clearTimeout(h.timer);
    const s = h.session;
    s.progress.delete(h.token);
    s.results.push(
      create(JobResultSchema, {
        jobId: h.ctx.id,
        leaseToken: h.token,
        ...(outcome.ok ? { resultJson: outcome.resultJson } : { failure: outcome.failure, snooze: outcome.snooze }),
      }),
    );
    // Announced only once the broker has taken the result (worker.ts, on its ack): a result it
    // refuses, its lease gone stale, completed nothing.
    h.reported = announce ? { job: h.ctx, outcome: outcome.ok ? { ok: true, value } : { ok: false, error: outcome.error } } : undefined;
    this.#owner.scheduleFlush();
  }

  /**
   * The flush put this job's result on the wire; a settled handler frees its slot now. Returns
   * what to announce when the broker acknowledges it.
   */
  sent(token: string): Reported | undefined {
    const h = this.#held.get(token);
    if (!h) return undefined;
    h.phase = 'sent';
    if (h.settled) this.#held.delete(h.token);
    return h.reported;
  }

  /** The job's own timeout: abort with a TimeoutError and report a retryable failure at once. */
  #timeout(h: Held): void {
    if (h.phase !== 'running') return;
    this.#unqueue(h);
    const reason = new DOMException(h.timeoutMs > 0 ? `timed out after ${h.timeoutMs} ms` : 'timed out', 'TimeoutError');
    h.controller.abort(reason);
    this.report(h, failure(reason));
  }

  /** CancelNotice: abort the handler and report at once, so the job becomes CANCELLED promptly. */
  cancel(s: Session, notice: CancelNotice): void {
    const h = this.#held.get(notice.leaseToken);
    if (!h || h.session !== s || h.phase !== 'running') return;
    if (notice.reason === 'timeout') return this.#timeout(h);
    this.#unqueue(h);
    h.controller.abort(new DOMException('cancelled', 'AbortError'));
    this.report(h, failure(new NonRetryableError('cancelled')));
  }

  /** The broker no longer knows this lease: abort the handler and drop whatever it produces. */
  lose(s: Session, token: string): void {
    const h = this.#held.get(token);
    if (!h || h.session !== s || (h.phase !== 'running' && h.phase !== 'queued')) return;
    if (h.phase === 'queued') s.results = s.results.filter((r) => r.leaseToken !== token);
    this.#owner.log('warn', `lease of job ${h.ctx.id} lost; its result will be dropped`);
    this.#drop(h, 'lease lost');
  }

  /** The stream is over: drops its jobs not yet reported and says how many there were. */
  dropSession(s: Session, why: string): number {
    let dropped = 0;
    for (const h of [...this.#held.values()]) {
      if (h.session === s && (h.phase === 'running' || h.phase === 'queued')) {
        dropped++;
        this.#drop(h, why);
      }
    }
    return dropped;
  }

  #drop(h: Held, why: string): void {
    h.phase = 'dropped';
    clearTimeout(h.timer);
    h.session.progress.delete(h.token);
    this.#unqueue(h);
    if (h.settled) this.#held.delete(h.token);
    else h.controller.abort(new DOMException(why, 'AbortError'));
  }

  #progress(h: Held, value: unknown): void {
    if (h.phase !== 'running') return;
    const progressJson = encodeJson(value); // throws to the handler if it cannot be encoded
    h.session.progress.set(h.token, create(JobProgressSchema, { jobId: h.ctx.id, leaseToken: h.token, progressJson }));
    this.#owner.scheduleFlush();
  }
}
