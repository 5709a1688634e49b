/**
 * What the dashboard shows: the filters, the page of the job list, the open job, and the last
 * answers read from the broker. Every module reads and changes this one object.
 */
import type { QueueStats, WorkerSession } from '@baton/worker-sdk/gen/admin';
import { type Job, JobStatus } from '@baton/worker-sdk/gen/job';
import { JOB_STATUSES } from '../../domain/job-status.ts';

/** Minutes of throughput read per queue: the hour the charts show (the most GetQueueStats gives). */
export const MINUTES = 60;
/** Of those, the minutes each queue's sparkline shows. */
export const SPARK_MINUTES = 10;
/** While a RUNNING job is shown, its progress is re-read this often (progress changes are not announced on Watch streams). */
export const PROGRESS_MS = 2000;
/** Everything is re-read at least this often, for queues not watched and for the ages shown. */
export const POLL_MS = 10_000;

/** Each status with its wire value (the enum spells the same names in capitals), in the domain's order. */
export const STATUSES: [JobStatus, string][] = JOB_STATUSES.map((name) => [JobStatus[name.toUpperCase() as Uppercase<typeof name>], name]);
export const statusName = (status: JobStatus) => STATUSES.find(([s]) => s === status)?.[1] ?? 'unknown';

export const state = {
  queue: '',
  status: JobStatus.UNSPECIFIED as JobStatus,
  /** Page tokens from the first page ('') to the current one: "Newer" pops, "Older" pushes. */
  pages: [''],
  nextToken: '',
  selected: '',
  /** The search box: a job id, an idempotency key, or labels as `key=value` pairs. */
  search: '',
  queues: [] as QueueStats[],
  /** The connected worker sessions, on every broker. */
  workers: [] as WorkerSession[],
  /** The broker's lease TTL (GetServerInfo): a lease expiring at T was last renewed at T minus this. */
  leaseTtlMs: 0,
  jobs: [] as Job[],
  detail: null as Job | null,
  live: 0,
  updatedAt: 0,
};
