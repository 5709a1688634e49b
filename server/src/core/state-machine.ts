/**
 * The job lifecycle, in one place. docs/state-machine.md draws it; the database enforces the status
 * set with a CHECK constraint; the store's statements apply these transitions with "only if still
 * in the expected status (and still held by this lease)" conditions. The decisions that the hot
 * path makes in SQL are written here too, next to their TypeScript twins, and a test checks that
 * both agree.
 *
 *   enqueue ──► PENDING ◄──────── promote (run_at reached) ──── SCHEDULED ◄── enqueue (run_at later)
 *                 │  ▲                                              ▲
 *           claim │  │ lease lost (attempts left)                   │ fail (retryable, attempts left)
 *                 ▼  │                                              │
 *               RUNNING ────────────────────────────────────────────┘
 *                 │ ├── complete ─────────────► COMPLETED
 *                 │ ├── fail (final) / lease lost (no attempts left) ──► FAILED ──┐
 *                 │ └── any outcome after a cancel request ──► CANCELLED ─────────┤
 *   PENDING/SCHEDULED ── cancel ──► CANCELLED                                     │
 *   FAILED/CANCELLED ── retry ──► PENDING ◄───────────────────────────────────────┘
 *   enqueue ──► RUNNING: a hand-off to a worker waiting idle for the queue (server/src/core/handoff.ts)
 */

export const JOB_STATUSES = ['pending', 'scheduled', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled']);

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
  retry: { from: ['failed', 'cancelled'], to: ['pending'] },
} as const satisfies Record<string, { from: readonly JobStatus[]; to: readonly JobStatus[] }>;

export type Transition = keyof typeof TRANSITIONS;

export function canTransition(transition: Transition, from: JobStatus): boolean {
  return (TRANSITIONS[transition].from as readonly JobStatus[]).includes(from);
}

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

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

/** The same, as SQL over a jobs row aliased `j`; `$random` is a SQL expression in [0, 1). */
export function backoffDelaySql(random = 'random()'): string {
  // nullif: a multiplier of 1 sets no bound on the exponent (least() skips NULL).
  const exponent = `least(greatest(0, j.attempt - 1), 280 / nullif(log(j.backoff_multiplier), 0))`;
  return `(least(j.backoff_max_ms::float8, j.backoff_initial_ms * power(j.backoff_multiplier, ${exponent})) * (1 - j.backoff_jitter * ${random}))`;
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

/** `statusAfterFailure` as SQL over `j`; `nonRetryable` is a SQL boolean expression. */
export function statusAfterFailureSql(nonRetryable: string): string {
  return `(CASE WHEN j.cancel_requested THEN 'cancelled' WHEN ${nonRetryable} OR j.attempt >= j.max_attempts THEN 'failed' ELSE 'scheduled' END)`;
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

export function statusAfterLeaseLostSql(): string {
  return `(CASE WHEN j.cancel_requested THEN 'cancelled' WHEN j.attempt >= j.max_attempts THEN 'failed' ELSE 'pending' END)`;
}

/** A successful result completes the job even if a cancel was requested meanwhile: the work happened. */
export function statusAfterSuccess(): 'completed' {
  return 'completed';
}
