import type { Clock, Timer } from '../../server/src/lib/clock.ts';

/**
 * A clock that moves only when the test says so (the real one is server/src/lib/clock.ts). Timers
 * fire in order of their due time, each with the clock set to that time, and the work a timer
 * starts runs before the next one fires, so a duty that re-arms itself is seen doing so.
 *
 * Kept out of the server on purpose: production code takes a `Clock`, only tests build this one.
 * Chosen over vitest's fake timers because those replace the globals of the whole test process
 * (pg's sockets, the test's own waits) and leave the store's `now` to be passed separately anyway.
 */
export interface FakeClock extends Clock {
  /**
   * Moves the time forward by `ms`, firing every timer that falls due on the way, and waits for the
   * work each one starts (as far as it does not wait on real I/O).
   */
  advance(ms: number): Promise<void>;
  /** Due times of the timers armed and not yet fired or cancelled, soonest first. */
  pending(): number[];
}

interface Armed {
  at: number;
  seq: number;
  callback: () => void;
}

/** Lets promise chains started by a timer (or a call) run to where they wait on something real. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function createFakeClock(startMs = Date.UTC(2027, 0, 1)): FakeClock {
  let now = startMs;
  let seq = 0;
  const armed = new Set<Armed>();
  const soonest = (): Armed | undefined => [...armed].sort((a, b) => a.at - b.at || a.seq - b.seq)[0];

  return {
    now: () => now,
    storeNow: () => new Date(now),
    setTimer(callback, ms): Timer {
      // As Node does: a delay is truncated to whole milliseconds.
      const timer: Armed = { at: now + Math.max(0, Math.trunc(ms)), seq: seq++, callback };
      armed.add(timer);
      return { cancel: () => armed.delete(timer) };
    },
    async advance(ms) {
      const until = now + ms;
      await settle();
      for (let next = soonest(); next && next.at <= until; next = soonest()) {
        armed.delete(next);
        now = next.at;
        next.callback();
        await settle();
      }
      now = until;
    },
    pending: () => [...armed].sort((a, b) => a.at - b.at || a.seq - b.seq).map((timer) => timer.at),
  };
}
