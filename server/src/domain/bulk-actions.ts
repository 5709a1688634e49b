/**
 * Bulk actions (docs/scheduling.md, "Bulk actions"): what each one applies to, written once for the
 * store's statements, the API's checks, the CLI and the dashboard.
 */
import { JOB_STATUSES, type JobStatus, TERMINAL_STATUSES } from './job-status.ts';
import { TRANSITIONS } from './state-machine.ts';

export const BULK_ACTIONS = ['cancel', 'retry', 'delete'] as const;

export type BulkAction = (typeof BULK_ACTIONS)[number];

/**
 * The statuses each action changes. Cancel cancels PENDING and SCHEDULED jobs and asks RUNNING ones
 * to stop, as the single Cancel does; retry revives FAILED and CANCELLED ones. Delete takes finished
 * jobs only: a live job may have a Watch or a `result()` waiting for it to finish, and a RUNNING one
 * is held under a lease whose worker would report into nothing. Cancel them first.
 */
export const BULK_ACTION_STATUSES: Record<BulkAction, readonly JobStatus[]> = {
  cancel: [...TRANSITIONS.cancel.from, ...TRANSITIONS.requestCancel.from],
  retry: TRANSITIONS.retry.from,
  delete: JOB_STATUSES.filter((status) => TERMINAL_STATUSES.has(status)),
};

/** Most jobs one call changes; the default when the caller gives none. */
export const BULK_LIMIT_MAX = 10_000;
export const BULK_LIMIT_DEFAULT = 1000;
