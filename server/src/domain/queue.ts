/**
 * Queues: the name rule every entry point checks (Enqueue, List, Watch, Admin, a worker's hello,
 * BATON_QUEUES) and a queue's settings as the store keeps them.
 */

const QUEUE_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The rule in words, for refusals: "… is not a valid queue name: use 1-128 of A-Z a-z 0-9 _ . : -". */
export const QUEUE_NAME_RULE = '1-128 of A-Z a-z 0-9 _ . : -';

export function isQueueName(name: string): boolean {
  return QUEUE_NAME.test(name);
}

export interface QueueSettings {
  name: string;
  /** Most jobs RUNNING at once across all brokers; 0 means no limit. */
  concurrency: number;
  /** A paused queue keeps its jobs and starts none. */
  paused: boolean;
  /** max_attempts for jobs enqueued without one. */
  defaultMaxAttempts: number;
  /** Execution timeout for jobs enqueued without one, in ms; 0 means none. */
  defaultTimeoutMs: number;
  /** Starts allowed per interval (docs/scheduling.md, "Rate limits"); absent when the queue has none. */
  rateLimits?: RateLimits;
  /** Claims take the jobs' concurrency keys in turn (docs/scheduling.md, "Fair keys"); absent when off. */
  fairKeys?: FairKeys;
}

/** Fair keys: claims take keys in turn; with `keyConcurrency` > 0, at most that many RUNNING jobs per key. */
export interface FairKeys {
  keyConcurrency: number;
}

/**
 * A queue's rate limits: at most `limit` starts of its jobs per window of `intervalMs`, and at most
 * `keyLimit` starts per window of `keyIntervalMs` for each rate-limit key. Windows are fixed, aligned
 * to the epoch. A limit of 0 means none.
 */
export interface RateLimits {
  limit: number;
  intervalMs: number;
  keyLimit: number;
  keyIntervalMs: number;
}

/** A queue whose claims count nothing (no concurrency limit, no rate limit): claimed and handed off by the plain path. */
export function isPlainQueue(queue: QueueSettings): boolean {
  return queue.concurrency === 0 && !queue.rateLimits && !queue.fairKeys;
}

/** The settings a queue starts with when nothing declares it (BATON_DEFAULT_* override them). */
export type QueueDefaults = Pick<QueueSettings, 'concurrency' | 'defaultMaxAttempts' | 'defaultTimeoutMs'>;

export const QUEUE_DEFAULTS: QueueDefaults = { concurrency: 0, defaultMaxAttempts: 3, defaultTimeoutMs: 0 };
