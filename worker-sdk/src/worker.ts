// The worker side of the Lease protocol (proto/baton/v1/lease.proto): one bidirectional stream per
// connection, credit-based flow control, batched results and heartbeats, cancels and drains, and a
// reconnect loop with jittered backoff. Handlers are plain async functions (handler.ts); the jobs
// they run, and the slot accounting that bounds the credits granted here, live in held-jobs.ts.

import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { durationMs } from '@bufbuild/protobuf/wkt';
import { Broker } from './gen/baton/v1/broker_pb.ts';
import { LeaseRequestSchema, type Drain, type LeaseRequest, type LeaseResponse, type Welcome } from './gen/baton/v1/lease_pb.ts';
import { backoffDelay, sleep } from './backoff.ts';
import { Conditions } from './conditions.ts';
import { channelTarget } from './connection.ts';
import { BatonError, SnoozeError, statusMessage } from './errors.ts';
import { HeldJobs } from './held-jobs.ts';
import { takeOwedRequest } from './lease-request.ts';
import type { CloseOptions, Logger, WorkerEvents, WorkerOptions } from './worker-options.ts';
import { failure } from './outcome.ts';
import { openSession, type Session, type SessionEnd } from './session.ts';
import { tracedHandlers } from './tracing.ts';
import { createTransport, type BidiStream, type ServiceClient, type Transport } from './transport.ts';
import { SDK_NAME } from './version.ts';

/** The Lease protocol version this SDK speaks. */
const PROTOCOL_VERSION = 1;
/** Heartbeat period when the broker's Welcome names none. */
const DEFAULT_HEARTBEAT_MS = 10_000;
/** Drain deadline when the broker's Drain names none. */
const DEFAULT_DRAIN_MS = 30_000;

const defaultLogger: Logger = {
  error: (message, ...details) => console.error(`[baton] ${message}`, ...details),
};

/**
 * Runs handlers for jobs leased from the brokers.
 *
 * @example
 * const worker = new Worker({ handlers: { email: async (payload, ctx) => send(payload, ctx.signal) } });
 * await worker.start();
 * process.on("SIGTERM", () => worker.close());
 */
export class Worker extends EventEmitter<WorkerEvents> {
  /** This worker's id, as sent in Hello. */
  readonly workerId: string;
  /** Most jobs run at once. */
  readonly concurrency: number;
  /** Jobs leased ahead of a free handler, beyond `concurrency`. */
  readonly prefetch: number;
  /** The queues served. */
  readonly queues: readonly string[];

  readonly #options: WorkerOptions;
  readonly #logger: Logger;
  readonly #jobs: HeldJobs;
  readonly #conditions = new Conditions();
  readonly #stop = new AbortController();
  readonly #ready: Promise<void>;
  #markReady!: () => void;
  #transport: Transport | undefined;
  #broker: ServiceClient<typeof Broker> | undefined;
  #session: Session | undefined;
  #loop: Promise<void> | undefined;
  #keepAlive: NodeJS.Timeout | undefined;
  #closed: Promise<void> | undefined;
  #closing = false;
  #flushScheduled = false;
  #lastError: string | undefined;

  constructor(options: WorkerOptions) {
    super();
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 100_000) {
      throw new RangeError(`Worker: concurrency must be an integer 1..100000, got ${options.concurrency}`);
    }
    const prefetch = options.prefetch ?? 0;
    if (!Number.isInteger(prefetch) || prefetch < 0 || concurrency + prefetch > 100_000) {
      throw new RangeError(`Worker: prefetch must be an integer 0..${100_000 - concurrency}, got ${options.prefetch}`);
    }
    const queues = Object.keys(options.handlers ?? {});
    if (queues.length === 0) throw new TypeError('Worker: handlers must name at least one queue');
    for (const q of queues) {
      if (typeof options.handlers[q] !== 'function') throw new TypeError(`Worker: the handler of queue "${q}" is not a function`);
    }
    channelTarget(options.address); // throws now, not on the first connect, if the address is unusable
    this.#options = { ...options };
    this.#logger = options.logger ?? defaultLogger;
    this.concurrency = concurrency;
    this.prefetch = prefetch;
    this.queues = queues;
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}`;
    this.#jobs = new HeldJobs({
      workerId: this.workerId,
      concurrency,
      prefetch,
      // Each handler runs inside a CONSUMER span continuing the job's traceparent (tracing.ts).
      handlers: tracedHandlers(options.handlers),
      emit: (event, ...args) => this.#emit(event, ...args),
      log: (level, message, ...details) => this.#log(level, message, ...details),
      scheduleFlush: () => this.#scheduleFlush(),
      notify: () => this.#notify(),
    });
    this.#ready = new Promise((resolve) => (this.#markReady = resolve));
  }

  /** Jobs whose handlers are running right now. */
  get running(): number {
    return this.#jobs.running;
  }

  /**
   * Connects and starts taking jobs. Resolves once a broker has accepted the Lease stream (or when
   * the worker is closed first); until then, and after any disconnect, it retries in the
   * background with jittered backoff. Calling it again returns the same promise.
   */
  start(): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('Worker: start() after close()'));
    if (!this.#transport) {
      this.#transport = createTransport(this.#options, SDK_NAME);
      this.#broker = this.#transport.client(Broker);
      // A started worker keeps the process alive until close(), also while it waits to reconnect.
      this.#keepAlive = setInterval(() => {}, 1 << 30);
      this.#loop = this.#run().catch((err: unknown) => this.#log('error', 'worker loop stopped unexpectedly', err));
    }
    return this.#ready;
  }

  /**
   * Stops gracefully: grants no more credit, waits for running handlers (up to `timeoutMs`, then
   * aborts them with reason "worker closing"), sends their results, waits for the broker's acks,
   * ends the stream and closes the channel. Calling it again returns the same promise.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.#closed ??= this.#shutdown(options.timeoutMs ?? 30_000);
    return this.#closed;
  }

  async #shutdown(timeoutMs: number): Promise<void> {
    this.#closing = true;
    this.#stop.abort();
    this.#markReady();
    if (!this.#transport) return;
    if (this.#session && this.#jobs.returnWaiting(this.#session) > 0) this.#scheduleFlush();
    const allSettled = (): boolean => this.#jobs.allSettled();
    if (!(await this.#waitFor(allSettled, timeoutMs))) {
      const late = this.#jobs.unsettled();
      this.#log('warn', `close: aborting ${late.length} job(s) still running after ${timeoutMs} ms`);
      for (const h of late) h.controller.abort(new DOMException('worker closing', 'AbortError'));
      await this.#waitFor(allSettled, 1_000); // handlers that honour their signal stop at once
      for (const h of late) {
        if (h.phase === 'running') this.#jobs.report(h, failure(new Error('worker closed before the job finished')));
      }
    }
    // The last results and the half-close go out together: the broker records and acks the results,
    // then ends the stream. Ending at once leaves it no time to spend our unused credit on jobs that
    // would only be released again (the protocol has no way to take credit back).
    this.#flush();
    const s = this.#session;
    if (s && !s.ended) {
      if (!s.ending) {
        s.ending = true;
        s.call.end();
      }
      if (!(await this.#waitFor(() => s.ended, 5_000))) s.call.cancel();
    }
    await this.#loop;
    clearInterval(this.#keepAlive);
    this.#transport.close();
  }

  /** Opens Lease streams one after another until close(), pacing reconnects with full jitter. */
  async #run(): Promise<void> {
    for (let failures = 0; !this.#closing; failures++) {
      const end = await this.#connect();
      if (this.#closing) return;
      if (end.welcomed) failures = 0;
      this.#emit('disconnected', end.error);
      if (end.error) {
        const message = end.error.message;
        const level = end.welcomed || message !== this.#lastError ? 'error' : 'debug';
        this.#log(level, `lease stream ${end.welcomed ? 'lost' : 'failed'}: ${message}; reconnecting`);
        this.#lastError = message;
      } else {
        this.#log('info', end.drained ? 'drained; reconnecting' : 'broker ended the lease stream; reconnecting');
      }
      await sleep(backoffDelay(failures, this.#options.reconnect), this.#stop.signal);
    }
  }

  /** One Lease stream, from Hello to its final status. Never rejects. */
  #connect(): Promise<SessionEnd> {
    return new Promise((resolve) => {
      let call: BidiStream<LeaseRequest, LeaseResponse>;
      try {
        call = this.#broker!.lease();
      } catch (err) {
        resolve({ welcomed: false, drained: false, error: err instanceof Error ? err : new Error(String(err)) });
        return;
      }
      const s = openSession(call, resolve);
      this.#session = s;
      call.on('data', (res: LeaseResponse) => {
        try {
          this.#onResponse(s, res);
        } catch (err) {
          this.#log('error', 'failed to handle a message from the broker', err);
        }
      });
      call.on('error', () => {}); // the 'status' event below carries the same information
      call.on('status', (status) => {
        this.#endSession(s, status.code === 0 ? undefined : new BatonError(status.code, statusMessage(status)));
      });
      this.#write(s, {
        hello: {
          workerId: this.workerId,
          queues: [...this.queues],
          // The broker bounds credit by capacity: the jobs held, prefetched ones included.
          capacity: this.concurrency + this.prefetch,
          protocolVersion: PROTOCOL_VERSION,
          sdk: SDK_NAME,
        },
      });
    });
  }

  #onResponse(s: Session, res: LeaseResponse): void {
    if (s.ended) return; // late messages of a finished stream: its leases are gone
    if (res.welcome) this.#welcome(s, res.welcome);
    for (const ack of res.acks) {
      const reported = s.unacked.get(ack.leaseToken);
      s.unacked.delete(ack.leaseToken);
      if (!reported) continue;
      if (!ack.accepted) {
        const reason = ack.error || 'no reason given';
        this.#log('warn', `result of job ${ack.jobId} refused: ${reason}`);
        this.#emit('refused', reported.job, reason);
      } else if (reported.outcome.ok) {
        this.#emit('completed', reported.job, reported.outcome.value);
      } else if (reported.outcome.error instanceof SnoozeError) {
        this.#emit('snoozed', reported.job, reported.outcome.error.snoozeMs);
      } else {
        this.#emit('failed', reported.job, reported.outcome.error);
      }
    }
    for (const token of res.lost) this.#jobs.lose(s, token);
    for (const notice of res.cancels) this.#jobs.cancel(s, notice);
    if (res.jobs.length > 0) {
      if (res.jobs.length > s.credit) {
        this.#log('warn', `broker sent ${res.jobs.length} job(s) with only ${s.credit} credit(s) outstanding`);
      }
      s.credit = Math.max(0, s.credit - res.jobs.length);
      for (const assignment of res.jobs) this.#jobs.start(s, assignment);
      // Jobs that came on credit granted before a close or a drain are not started ahead of time.
      if ((this.#closing || s.draining) && this.#jobs.returnWaiting(s) > 0) this.#scheduleFlush();
    }
    if (res.drain) this.#drain(s, res.drain);
    this.#maybeHalfClose(s);
    this.#notify();
  }

  #welcome(s: Session, w: Welcome): void {
    if (s.welcomed) return;
    s.welcomed = true;
    const heartbeat = w.heartbeatInterval ? durationMs(w.heartbeatInterval) : 0;
    const interval = heartbeat > 0 ? Math.max(50, heartbeat) : DEFAULT_HEARTBEAT_MS;
    s.timers.push(
      setInterval(() => {
        s.heartbeatDue = true;
        this.#scheduleFlush();
      }, interval),
    );
    if (w.protocolVersion !== PROTOCOL_VERSION) {
      this.#log('warn', `broker speaks Lease protocol ${w.protocolVersion}, this SDK ${PROTOCOL_VERSION}`);
    }
    this.#log(this.#lastError ? 'info' : 'debug', `connected to broker ${w.brokerId} (session ${w.sessionId})`);
    this.#lastError = undefined;
    this.#markReady();
    this.#emit('connected', {
      sessionId: w.sessionId,
      brokerId: w.brokerId,
      heartbeatIntervalMs: interval,
      leaseTtlMs: w.leaseTtl ? durationMs(w.leaseTtl) : undefined,
    });
    this.#scheduleFlush(); // the first credits
  }

  /** Drain: take no more jobs, let the running ones report within the deadline, then reconnect. */
  #drain(s: Session, d: Drain): void {
    if (s.draining) return;
    s.draining = true;
    if (this.#jobs.returnWaiting(s) > 0) this.#scheduleFlush();
    const deadline = d.deadline ? durationMs(d.deadline) : 0;
    const wait = deadline > 0 ? deadline : DEFAULT_DRAIN_MS;
    this.#log('info', `broker is draining; finishing ${this.#jobs.runningTokens(s).length} job(s) within ${wait} ms, then reconnecting`);
    // The broker closes the stream at its deadline; this is only a backstop if it does not.
    s.timers.push(setTimeout(() => s.ended || s.call.cancel(), wait + 1_000));
    this.#emit('draining');
  }

  /** While draining, end the stream once every job of it is reported and acknowledged. */
  #maybeHalfClose(s: Session): void {
    if (!s.draining || s.ending || s.ended || s.unacked.size > 0 || s.results.length > 0) return;
    if (this.#jobs.anyRunning(s)) return;
    s.ending = true;
    s.call.end();
  }

  /** Coalesces everything that happens within one tick into one LeaseRequest. */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /** Sends queued results, progress, a due heartbeat and the credits freed slots allow, as one message. */
  #flush(): void {
    const s = this.#session;
    if (!s || s.ended || !s.welcomed) return;
    const msg = takeOwedRequest(s, this.#jobs, !s.draining && !s.ending && !this.#closing);
    if (msg) this.#write(s, msg);
    this.#maybeHalfClose(s);
    this.#notify();
  }

  #write(s: Session, msg: MessageInitShape<typeof LeaseRequestSchema>): void {
    if (s.ended || s.ending) return;
    try {
      s.call.write(create(LeaseRequestSchema, msg));
    } catch (err) {
      this.#log('error', 'failed to write to the lease stream', err);
    }
  }

  /**
   * The stream is over: the broker released every lease it carried, so jobs not yet reported are
   * dropped (their handlers aborted) and will be delivered again. That is the at-least-once half
   * of the contract; results are not resent on the next stream, whose leases are different.
   */
  #endSession(s: Session, error: Error | undefined): void {
    if (s.ended) return;
    s.ended = true;
    for (const t of s.timers) clearTimeout(t);
    const dropped = this.#jobs.dropSession(s, 'lease lost: the stream to the broker closed');
    if (dropped > 0 && !this.#closing) {
      this.#log('warn', `${dropped} job(s) abandoned with the lease stream; the broker will deliver them again`);
    }
    s.results = [];
    s.progress.clear();
    s.unacked.clear();
    if (this.#session === s) this.#session = undefined;
    this.#notify();
    s.finish({ welcomed: s.welcomed, drained: s.draining, error });
  }

  #waitFor(predicate: () => boolean, ms: number): Promise<boolean> {
    return this.#conditions.waitFor(predicate, ms);
  }

  #notify(): void {
    this.#conditions.notify();
  }

  #emit<K extends keyof WorkerEvents>(event: K, ...args: WorkerEvents[K]): void {
    try {
      (this.emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
    } catch (err) {
      this.#log('error', `a '${event}' listener threw`, err);
    }
  }

  #log(level: keyof Logger, message: string, ...details: unknown[]): void {
    try {
      this.#logger[level]?.(message, ...details);
    } catch {
      // a broken logger must not break the worker
    }
  }
}
