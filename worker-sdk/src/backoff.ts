// Reconnect pacing. Full jitter (a uniform draw between 0 and the exponential cap) spreads a fleet
// of workers that lost the same broker over the whole window instead of bringing them back in waves.

/** Bounds of an exponential backoff, in milliseconds. */
export interface BackoffOptions {
  /** Cap of the first retry. @defaultValue 100 */
  initialMs?: number;
  /** Largest cap, reached after a few failures. @defaultValue 10000 */
  maxMs?: number;
}

/**
 * The delay before retry number `attempt` (0 for the first): uniform in
 * [0, min(maxMs, initialMs * 2^attempt)] ("full jitter").
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialMs ?? 100;
  const max = options.maxMs ?? 10_000;
  const cap = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}

/**
 * Waits `ms`, or less when `signal` aborts (then it resolves, not rejects: callers check the
 * signal). The timer stays referenced on purpose: a worker waiting to reconnect must keep the
 * process alive.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
