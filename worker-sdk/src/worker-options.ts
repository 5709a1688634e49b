// The Worker's options, events and logger: its configuration surface, kept apart from the
// protocol machinery in worker.ts and held-jobs.ts.

import type { BackoffOptions } from './backoff.ts';
import type { ConnectionOptions } from './connection.ts';
import type { Handler, JobContext } from './handler.ts';

/** Where the worker's messages go. Every method is optional; missing ones are silent. */
export interface Logger {
  debug?(message: string, ...details: unknown[]): void;
  info?(message: string, ...details: unknown[]): void;
  warn?(message: string, ...details: unknown[]): void;
  error?(message: string, ...details: unknown[]): void;
}

/** Options of a Worker. */
export interface WorkerOptions extends ConnectionOptions {
  /** One handler per queue served; the keys are the queue names. */
  handlers: Record<string, Handler>;
  /** Most jobs run at once by this worker. @defaultValue 10 */
  concurrency?: number;
  /**
   * Jobs leased ahead, beyond `concurrency`, so that the next ones are already here when a handler
   * frees up instead of a round trip to the broker later (RabbitMQ's prefetch, graphile-worker's
   * local queue). A prefetched job is leased from its delivery: its attempt has begun, heartbeats
   * renew it, and its timeout runs from then, while it waits. Worth it for many short jobs; leave it
   * at 0 for long ones with timeouts. On close and on a drain, waiting jobs go back to the queue
   * unstarted. Hello.capacity is `concurrency + prefetch`. @defaultValue 0
   */
  prefetch?: number;
  /** Stable name for operators. @defaultValue `${hostname()}:${process.pid}` */
  workerId?: string;
  /**
   * Where log lines go. Pass `console` to see connects, drains and refused results.
   * @defaultValue errors only, to console.error
   */
  logger?: Logger;
  /** Reconnect backoff bounds (full jitter). @defaultValue { initialMs: 100, maxMs: 10000 } */
  reconnect?: BackoffOptions;
}

/** Options of `close()`. */
export interface CloseOptions {
  /** How long running handlers may take before they are aborted. @defaultValue 30000 */
  timeoutMs?: number;
}

/** The broker session a `connected` event reports. */
export interface SessionInfo {
  sessionId: string;
  brokerId: string;
  heartbeatIntervalMs: number;
  leaseTtlMs?: number;
}

/** Events a Worker emits. Listener errors are logged, never thrown into the worker. */
export interface WorkerEvents {
  /** A job was handed to a handler. */
  active: [job: JobContext];
  /** A handler returned and the broker recorded its result (acknowledged it as accepted). */
  completed: [job: JobContext, result: unknown];
  /**
   * An attempt failed (handler threw, timed out, was cancelled) and the broker recorded the failure.
   */
  failed: [job: JobContext, error: Error];
  /** A handler threw `snooze(ms)` and the broker took it: the job runs again after `delayMs`, the attempt not counted. */
  snoozed: [job: JobContext, delayMs: number];
  /**
   * The broker refused the job's result or failure: the lease was no longer this worker's (it
   * expired, or the job was cancelled or failed by the broker meanwhile), so nothing was recorded
   * and another attempt may run or have run. `reason` is the broker's.
   */
  refused: [job: JobContext, reason: string];
  /** A Lease stream was accepted by a broker. */
  connected: [session: SessionInfo];
  /** The Lease stream ended; the worker reconnects unless it is closing. */
  disconnected: [error: Error | undefined];
  /** The broker asked this worker to drain; no new jobs come on this stream. */
  draining: [];
}
