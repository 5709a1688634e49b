/**
 * Time as a parameter (River's `TimeGenerator`, Faktory's `ReapExpiredJobs(ctx, when)`): a
 * background duty that reads the time and arms timers through a `Clock` can be driven by a test
 * that moves time instead of waiting for it (test/support/fake-clock.ts).
 */

/** A timer armed by a clock; cancelling it twice, or after it fired, is harmless. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the epoch, as `Date.now()`. */
  now(): number;
  /**
   * The time to hand to store operations that take an optional `now`. The real clock answers
   * `undefined`, so that the database's clock decides: with several brokers, the one clock they
   * share (River's `NowUTCOrNil`). A fake clock answers its own time.
   */
  storeNow(): Date | undefined;
  /**
   * Runs `callback` once after `ms`. An `unref` timer does not keep the process alive: right for
   * duties that only matter while something else (a listener) keeps it running.
   */
  setTimer(callback: () => void, ms: number, options?: { unref?: boolean }): Timer;
}

/** The wall clock and Node's timers. */
export const realClock: Clock = {
  now: () => Date.now(),
  storeNow: () => undefined,
  setTimer(callback, ms, options) {
    const timer = setTimeout(callback, ms);
    if (options?.unref) timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};
