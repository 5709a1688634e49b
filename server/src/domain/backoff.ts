/**
 * Retry backoff: how long a failed attempt waits before the next. The store evaluates the same
 * formula in SQL where it records failures (server/src/store/sql/state-machine.ts), tested to agree.
 */

/** A job's backoff settings, in the units stored. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 600_000, multiplier: 2, jitter: 0.2 };

/**
 * Delay before the attempt after `attempt` failed: exponential, capped, and shortened by up to
 * `jitter` of itself so that failures that happened together do not retry together.
 */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: number): number {
  // The exponent stops where multiplier^exponent reaches 1e280, far past any cap: without that, a
  // steep policy late in many attempts overflows (to Infinity here, and 0 × Infinity is NaN; to an
  // error in PostgreSQL, which fails the whole batch statement).
  const exponent = Math.min(Math.max(0, attempt - 1), 280 / Math.log10(policy.multiplier));
  const exponential = policy.initialMs * Math.pow(policy.multiplier, exponent);
  return Math.min(policy.maxMs, exponential) * (1 - policy.jitter * random);
}
