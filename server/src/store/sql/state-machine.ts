/**
 * The state machine (server/src/domain/state-machine.ts) as SQL: status literals, the statuses a
 * transition starts from, and the decisions the hot path makes inside its statements. Every status
 * a statement names comes through here, so a status or a transition changed in the domain changes
 * the SQL with it; test/state-machine.test.ts evaluates the decision twins in PostgreSQL against
 * their TypeScript originals.
 */
import type { JobStatus } from '../../domain/job-status.ts';
import { TRANSITIONS, type Transition } from '../../domain/state-machine.ts';

/** A status as a SQL literal. Typed: a misspelt status does not compile. */
export function status(name: JobStatus): string {
  return `'${name}'`;
}

/** `column` holds one of `statuses`, as SQL. */
export function statusIn(statuses: readonly JobStatus[], column = 'j.status'): string {
  // One status is written `= 'x'`, the form a partial index's `where status = 'x'` is matched by
  // the planner at a glance (the claim, running and scheduled indexes all are).
  if (statuses.length === 1) return `${column} = ${status(statuses[0])}`;
  return `${column} in (${statuses.map(status).join(', ')})`;
}

/**
 * "Still in a status `transition` may start from", as SQL over `column`: the guard of every
 * statement that applies a transition. Several transitions give the union of their starting
 * statuses (Cancel cancels or requests a cancel, whichever applies).
 */
export function canStartSql(transition: Transition | readonly Transition[], column = 'j.status'): string {
  const transitions = typeof transition === 'string' ? [transition] : transition;
  const from = new Set<JobStatus>(transitions.flatMap((t) => TRANSITIONS[t].from));
  return statusIn([...from], column);
}

/** Transitions that lead to one status only. */
type SingleTarget = { [T in Transition]: (typeof TRANSITIONS)[T]['to'] extends readonly [JobStatus] ? T : never }[Transition];

/** The status a single-target transition leads to, as a SQL literal. */
export function targetSql(transition: SingleTarget): string {
  return status(TRANSITIONS[transition].to[0]);
}

/** `statusAfterFailure` over a jobs row aliased `j`; `nonRetryable` is a SQL boolean expression. */
export function statusAfterFailureSql(nonRetryable: string): string {
  return `(CASE WHEN j.cancel_requested THEN ${status('cancelled')} WHEN ${nonRetryable} OR j.attempt >= j.max_attempts THEN ${status('failed')} ELSE ${status('scheduled')} END)`;
}

/** `statusAfterLeaseLost` over a jobs row aliased `j`. */
export function statusAfterLeaseLostSql(): string {
  return `(CASE WHEN j.cancel_requested THEN ${status('cancelled')} WHEN j.attempt >= j.max_attempts THEN ${status('failed')} ELSE ${status('pending')} END)`;
}

/** `backoffDelayMs` (server/src/domain/backoff.ts) over a jobs row aliased `j`; `random` is a SQL expression in [0, 1). */
export function backoffDelaySql(random = 'random()'): string {
  // nullif: a multiplier of 1 sets no bound on the exponent (least() skips NULL).
  const exponent = `least(greatest(0, j.attempt - 1), 280 / nullif(log(j.backoff_multiplier), 0))`;
  return `(least(j.backoff_max_ms::float8, j.backoff_initial_ms * power(j.backoff_multiplier, ${exponent})) * (1 - j.backoff_jitter * ${random}))`;
}
