// Queue settings and counts as plain objects (numbers, not int64 bigints; milliseconds, not Durations).

import { durationMs } from '@bufbuild/protobuf/wkt';
import type { Queue as QueueMessage, QueueStats as QueueStatsMessage } from './gen/baton/v1/admin_pb.ts';

/** A queue's settings. */
export interface QueueSettings {
  name: string;
  /** Most jobs RUNNING at once across all brokers; 0 means no limit. */
  concurrency: number;
  /** A paused queue hands out no jobs (enqueue still works). */
  paused: boolean;
  /** max_attempts for jobs enqueued without one. */
  defaultMaxAttempts: number;
  /** Timeout for jobs enqueued without one; absent means no limit. */
  defaultTimeoutMs?: number;
  /** Starts allowed per interval; absent when the queue has no rate limit. */
  rateLimit?: RateLimit;
  /** Claims take the jobs' concurrency keys in turn; absent when off. */
  fairKeys?: { /** Most RUNNING jobs per key; 0 means no limit. */ keyConcurrency: number };
}

/**
 * A queue's rate limits (docs/scheduling.md, "Rate limits"): at most `limit` starts per window of
 * `intervalMs`, and at most `keyLimit` per window of `keyIntervalMs` for each rate-limit key.
 * Windows are fixed, aligned to the epoch; a limit of 0 means none.
 */
export interface RateLimit {
  limit: number;
  /** @defaultValue 1000 */
  intervalMs?: number;
  keyLimit?: number;
  /** @defaultValue 1000 */
  keyIntervalMs?: number;
}

/** A queue's job counts by status, with its settings. */
export interface QueueStats {
  queue: string;
  total: number;
  pending: number;
  scheduled: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
  settings?: QueueSettings;
  /**
   * Jobs completed in each of the last `throughputMinutes` minutes asked of `queueStats`, oldest
   * first; the last entry is the last 60 seconds. Empty unless asked for.
   */
  completedPerMinute: number[];
  /** Jobs failed for good (dead-lettered) in each of those minutes, in the same order. */
  failedPerMinute: number[];
}

/** Wire Queue → QueueSettings. */
export function toQueueSettings(q: QueueMessage): QueueSettings {
  const timeout = q.defaultTimeout ? durationMs(q.defaultTimeout) : 0;
  return {
    name: q.name,
    concurrency: q.concurrency,
    paused: q.paused,
    defaultMaxAttempts: q.defaultMaxAttempts,
    defaultTimeoutMs: timeout > 0 ? timeout : undefined,
    rateLimit: q.rateLimit
      ? {
          limit: q.rateLimit.limit,
          intervalMs: q.rateLimit.interval ? durationMs(q.rateLimit.interval) : 1000,
          keyLimit: q.rateLimit.keyLimit,
          keyIntervalMs: q.rateLimit.keyInterval ? durationMs(q.rateLimit.keyInterval) : 1000,
        }
      : undefined,
    fairKeys: q.fairKeys ? { keyConcurrency: q.keyConcurrency } : undefined,
  };
}

/** Wire QueueStats → QueueStats (counts fit a double well past any real queue). */
export function toQueueStats(s: QueueStatsMessage): QueueStats {
  return {
    queue: s.queue,
    total: Number(s.total),
    pending: Number(s.pending),
    scheduled: Number(s.scheduled),
    running: Number(s.running),
    completed: Number(s.completed),
    failed: Number(s.failed),
    cancelled: Number(s.cancelled),
    settings: s.settings ? toQueueSettings(s.settings) : undefined,
    completedPerMinute: s.completedPerMinute.map(Number),
    failedPerMinute: s.failedPerMinute.map(Number),
  };
}
