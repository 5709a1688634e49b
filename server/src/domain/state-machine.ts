/**
 * The job lifecycle, in one place: which named transition may start from which status, and where a
 * running job goes when its attempt ends. docs/state-machine.md draws it; the database enforces the
 * status set with a CHECK constraint; the store's statements apply these transitions with "only if
 * still in a status the transition starts from (and still held by this lease)" conditions rendered
 * from TRANSITIONS, and evaluate the decisions below in SQL (server/src/store/sql/state-machine.ts,
 * tested to agree with these).
 *
 *   enqueue ──► PENDING ◄──────── promote (run_at reached) ──── SCHEDULED ◄── enqueue (run_at later)
 *                 │  ▲                                              ▲
 *           claim │  │ lease lost (attempts left)                   │ fail (retryable, attempts left),
 *                 │  │                                              │ snooze (the attempt given back)
 *                 ▼  │                                              │
 *               RUNNING ────────────────────────────────────────────┘
 *                 │ ├── complete ─────────────► COMPLETED
 *                 │ ├── fail (final) / lease lost (no attempts left) ──► FAILED ──┐
 *                 │ └── any outcome after a cancel request ──► CANCELLED ─────────┤
 *   PENDING/SCHEDULED ── cancel ──► CANCELLED                                     │
 *   FAILED/CANCELLED ── retry ──► PENDING ◄───────────────────────────────────────┘
 *   enqueue ──► RUNNING: a hand-off to a worker waiting idle for the queue (server/src/core/handoff.ts)
 */
import type { JobStatus } from './job-status.ts';

/** Named transitions and the statuses each may start from. */
export const TRANSITIONS = {
  promote: { from: ['scheduled'], to: ['pending'] },
  claim: { from: ['pending'], to: ['running'] },
  complete: { from: ['running'], to: ['completed'] },
  fail: { from: ['running'], to: ['scheduled', 'pending', 'failed', 'cancelled'] },
  loseLease: { from: ['running'], to: ['pending', 'failed', 'cancelled'] },
  timeOut: { from: ['running'], to: ['scheduled', 'pending', 'failed', 'cancelled'] },
  cancel: { from: ['pending', 'scheduled'], to: ['cancelled'] },
  requestCancel: { from: ['running'], to: ['running'] },
  snooze: { from: ['running'], to: ['scheduled', 'cancelled'] },
  retry: { from: ['failed', 'cancelled'], to: ['pending'] },
} as const satisfies Record<string, { from: readonly JobStatus[]; to: readonly JobStatus[] }>;

export type Transition = keyof typeof TRANSITIONS;

export function canTransition(transition: Transition, from: JobStatus): boolean {
  return (TRANSITIONS[transition].from as readonly JobStatus[]).includes(from);
}

export interface FailureFacts {
  attempt: number;
  maxAttempts: number;
  nonRetryable: boolean;
  cancelRequested: boolean;
}

/** Where a RUNNING job goes when its attempt fails. A cancel request always wins. */
export function statusAfterFailure(facts: FailureFacts): 'cancelled' | 'failed' | 'scheduled' {
  if (facts.cancelRequested) return 'cancelled';
  if (facts.nonRetryable || facts.attempt >= facts.maxAttempts) return 'failed';
  return 'scheduled';
}

/**
 * Where a RUNNING job goes when its holder vanished (stream closed, lease expired). The attempt
 * counts, so a job that kills its workers ends FAILED instead of looping; otherwise it is runnable
 * again at once, since the failure was the worker's, not the job's.
 */
export function statusAfterLeaseLost(facts: Omit<FailureFacts, 'nonRetryable'>): 'cancelled' | 'failed' | 'pending' {
  if (facts.cancelRequested) return 'cancelled';
  if (facts.attempt >= facts.maxAttempts) return 'failed';
  return 'pending';
}

/**
 * Where a RUNNING job goes when its handler snoozes it: SCHEDULED for later, with the attempt given
 * back; a cancel request wins here as over a failure, since the handler did not finish the work.
 */
export function statusAfterSnooze(facts: Pick<FailureFacts, 'cancelRequested'>): 'cancelled' | 'scheduled' {
  return facts.cancelRequested ? 'cancelled' : 'scheduled';
}

/** A successful result completes the job even if a cancel was requested meanwhile: the work happened. */
export function statusAfterSuccess(): 'completed' {
  return 'completed';
}
