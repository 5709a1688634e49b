import { settledBefore } from '../lib/abort.ts';

/** A Lease session as a drain sees it (./lease-session.ts). */
export interface Drainable {
  /** Asks the worker to report what it holds and reconnect elsewhere; stops giving it jobs. */
  drain(deadlineMs: number): void;
  readonly heldCount: number;
  /** Resolves once the session holds nothing. */
  idle(): Promise<void>;
}

/**
 * Tells every open session to drain, then waits until none holds a job or `deadline` aborts. Each
 * session says when its count reaches zero, so the wait ends on the last report rather than on
 * the next tick of a poll. `sessions` is asked again after every wake-up: a session that closed
 * meanwhile is no longer waited for.
 */
export async function drainSessions(sessions: () => Iterable<Drainable>, deadlineMs: number, deadline: AbortSignal): Promise<void> {
  for (const session of sessions()) session.drain(deadlineMs);
  for (;;) {
    const busy = [...sessions()].filter((session) => session.heldCount > 0);
    if (busy.length === 0 || deadline.aborted) return;
    await settledBefore(Promise.all(busy.map((session) => session.idle())), deadline);
  }
}
