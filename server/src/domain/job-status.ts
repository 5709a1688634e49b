/**
 * The statuses a job can be in: the one list. Everything else derives from it: the state machine's
 * transitions (./state-machine.ts), the store's SQL, the wire mapping (api/job-wire.ts), the metrics'
 * labels, the CLI's `--status` and the dashboard's filter. The database's CHECK constraint is the
 * one other copy (a checked-in migration), and test/state-machine.test.ts checks that it admits
 * exactly these.
 */
export const JOB_STATUSES = ['pending', 'scheduled', 'running', 'completed', 'failed', 'cancelled'] as const;

export type JobStatus = (typeof JOB_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled']);

/**
 * What the retention window deletes. FAILED jobs are the dead-letter set: they stay until someone
 * retries or inspects them.
 */
export const PRUNED_STATUSES: readonly JobStatus[] = ['completed', 'cancelled'];

export function isJobStatus(value: string): value is JobStatus {
  return (JOB_STATUSES as readonly string[]).includes(value);
}

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}
