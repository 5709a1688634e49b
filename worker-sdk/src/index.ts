// The public surface of @baton/worker-sdk: Worker for consumers, Client for producers and operators,
// the errors both use, and their option and result types. Everything else is internal.

export { Client } from './client.ts';
export type { ClientOptions, EnqueuedJob, JobPage, ListOptions, ServerInfo, WaitOptions } from './client.ts';
export { Worker } from './worker.ts';
export type { CloseOptions, Logger, SessionInfo, WorkerEvents, WorkerOptions } from './worker-options.ts';
export type { Handler, JobContext } from './handler.ts';
export {
  BatonError,
  JobCancelledError,
  JobFailedError,
  NonRetryableError,
  RetryAfterError,
  SnoozeError,
  snooze,
} from './errors.ts';
export type { StatusName } from './errors.ts';
export type { ConnectionOptions, TlsOptions } from './connection.ts';
export type { EnqueueItem, EnqueueOptions, UniqueOptions } from './enqueue.ts';
export type { AttemptError, Job, JobStatusName, RetryPolicy } from './job.ts';
export type { QueueSettings, QueueStats, RateLimit } from './queue.ts';
export type { JsonValue } from './json.ts';
export type { BackoffOptions } from './backoff.ts';
export type { BulkActionName, BulkFilter, BulkOptions, BulkResult } from './bulk.ts';
export type { ListSchedulesOptions, MissedTickPolicyName, OverlapPolicyName, Schedule, ScheduleOptions, UpsertedSchedule } from './schedule.ts';
export { SDK_VERSION } from './version.ts';
