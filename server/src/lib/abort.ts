/**
 * Waiting on events with a deadline, without polling: the deadline is an AbortSignal, so a test can
 * fire it when it chooses and production code arms it with a timer.
 */

import { type Clock, realClock } from './clock.ts';

/** Resolves when `work` settles or `signal` aborts, whichever comes first; true when `work` did. */
export function settledBefore(work: Promise<unknown>, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const finish = (settled: boolean) => {
      signal.removeEventListener('abort', onAbort);
      resolve(settled);
    };
    const onAbort = () => finish(false);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      () => finish(true),
      () => finish(true),
    );
  });
}

/**
 * A signal that aborts after `ms` on `clock`. `cancel` disarms its timer once it is no longer
 * needed, so that nothing is left armed; the timer never keeps the process alive by itself.
 */
export function timeoutSignal(ms: number, clock: Clock = realClock): { signal: AbortSignal; cancel(): void } {
  const controller = new AbortController();
  const timer = clock.setTimer(() => controller.abort(), Math.max(0, ms), { unref: true });
  return { signal: controller.signal, cancel: () => timer.cancel() };
}
