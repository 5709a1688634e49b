/**
 * The store as a driver (River's `riverdriver`): every operation the broker performs on its
 * database, each one named and taking one params object. Core and api call these and never see
 * SQL, a pool or a connection; ./postgres-driver.ts implements them on PostgreSQL, and
 * test/store-driver.test.ts runs each one against a real database. A new storage layout is a new
 * implementation of this interface, checked by the same suite.
 *
 * Time: the operations whose outcome depends on the clock and that tests need to move (the
 * leader's duties, the throughput window) take an optional `now`. Without it the database's clock
 * decides: with several brokers, the one clock they share.
 *
 * Transitions apply only to jobs still in a status the transition starts from (the domain's
 * TRANSITIONS table) and, for running jobs, still held under the given lease token, so results
 * are recorded once and a worker whose lease moved on changes nothing.
 */
import type { ApiKeyRecord, Scope } from '../domain/api-keys.ts';
import type { BulkAction } from '../domain/bulk-actions.ts';
import type { Assignment, Enqueued, FailureReport, JobRecord, JobSummary, NewJob, ProgressReport, SuccessReport } from '../domain/job.ts';
import type { JobStatus } from '../domain/job-status.ts';
import type { QueueSettings } from '../domain/queue.ts';
import type { ScheduleRecord, ScheduleSettings, TickOutcome } from '../domain/schedule.ts';

export interface JobListParams {
  queue?: string;
  statuses?: JobStatus[];
  limit: number;
  /** Only the job with this idempotency key. */
  idempotencyKey?: string;
  /** Only jobs carrying all these labels. */
  labels?: Record<string, string>;
  /** Only jobs with ids below this one (keyset pagination, newest first). */
  beforeId?: string;
}

/** Which jobs a bulk action takes; every field given must hold. */
export interface JobBulkFilter {
  queue?: string;
  /** Narrows the action's statuses; each must be one the action applies to. */
  statuses?: JobStatus[];
  idempotencyKey?: string;
  /** Only jobs carrying all these labels. */
  labels?: Record<string, string>;
  /** Only jobs created before this time. */
  createdBefore?: Date;
  /** Only jobs created at or after this time. */
  createdAfter?: Date;
}

export interface JobBulkParams {
  action: BulkAction;
  filter: JobBulkFilter;
  /** Only jobs with ids above this one: the previous batch's `lastId`. */
  afterId?: string;
  limit: number;
  dryRun?: boolean;
}

export interface JobBulkOutcome {
  /** Jobs changed (or, dry, that would change): the batch taken. */
  changed: number;
  /** Of those, RUNNING jobs whose cancel was requested (cancel only). */
  cancelRequested: number;
  /** The highest id taken; null when the batch was empty. */
  lastId: string | null;
  /** Jobs changed per queue, for the metrics; empty for a dry run. */
  byQueue: Map<string, number>;
}

export interface JobClaimParams {
  /** The queue's settings as the caller knows them; a limited queue's are read again under its lock. */
  queue: QueueSettings;
  limit: number;
  sessionId: string;
  workerId: string;
  /**
   * Told, with when the window ends (ms since the epoch), when a rate limit held jobs back: the claim
   * took fewer than `limit` and a window's starts are used up. Nothing wakes a queue when a window
   * ends, so the caller tries again then.
   */
  onHeldBack?: (untilMs: number) => void;
}

export interface SessionOpenParams {
  workerId: string;
  brokerId: string;
  queues: string[];
  capacity: number;
  ttlMs: number;
}

/** A connected session as operators see it. */
export interface SessionInfo {
  id: string;
  workerId: string;
  brokerId: string;
  queues: string[];
  capacity: number;
  /** Jobs RUNNING under the session. */
  jobsHeld: number;
  connectedAt: Date;
  /** Renewed by each heartbeat to its time plus the lease TTL; in the past once heartbeats stopped. */
  expiresAt: Date;
}

/** What a heartbeat learns of the jobs a session holds. */
export interface HeartbeatOutcome {
  /** Tokens the worker reported that the session no longer holds. */
  lost: string[];
  /** Tokens of the session's running jobs whose cancel was requested. */
  cancelRequested: string[];
}

/** A worker's snooze of a job it holds, fenced by the lease token it was handed. */
export interface SnoozeReport {
  id: string;
  token: string;
  /** How long from now the job waits as SCHEDULED; more than 0 (the session checks the range). */
  delayMs: number;
}

/**
 * Settings to apply; those left out keep their value (or take the defaults, for a new queue).
 * `fairKeys: null` turns fair keys off.
 */
export type QueueUpsertParams = { name: string } & Partial<Omit<QueueSettings, 'name' | 'fairKeys'>> & { fairKeys?: QueueSettings['fairKeys'] | null };

/** Jobs finished per minute, oldest first; the last entry is the last 60 seconds. */
export interface Throughput {
  completed: number[];
  failed: number[];
  /** Attempts started (claimed or handed off). */
  started: number[];
  /** How long the attempts started in each minute waited on average, from when they were due (0 when none started). */
  meanWaitMs: number[];
}

/** Most jobs one `jobPromoteScheduled` moves: a full batch means more may be due. */
export const PROMOTE_BATCH = 5000;

export interface StoreDriver {
  // Producers' operations.

  /**
   * Inserts jobs in one transaction (all or nothing), creating their queues on first use. One entry
   * per input, in input order; a job whose idempotency key existed comes back as the existing job
   * with `duplicate` set; a handed-off job (NewJob.handoff) comes back with its assignment.
   */
  jobEnqueue(params: { jobs: NewJob[] }): Promise<Enqueued<JobRecord>[]>;
  /** As `jobEnqueue`, answering with each job's id, queue and status only (nothing to read back and decode). */
  jobEnqueueSummaries(params: { jobs: NewJob[] }): Promise<Enqueued<JobSummary>[]>;
  jobGet(params: { id: string }): Promise<JobRecord | null>;
  /** Newest first, keyset-paginated on id, so a page costs the same however deep it is. */
  jobList(params: JobListParams): Promise<JobRecord[]>;
  /**
   * Cancels a PENDING or SCHEDULED job; for a RUNNING one records the request and tells its holder
   * (on whichever broker its stream lives). Null when the job is missing or in another status.
   */
  jobCancel(params: { id: string }): Promise<JobRecord | null>;
  /** A FAILED or CANCELLED job back to PENDING, attempts reset. Null when missing or in another status. */
  jobRetry(params: { id: string }): Promise<JobRecord | null>;
  /**
   * One batch of a bulk action (docs/scheduling.md): up to `limit` jobs the filter matches, among
   * those the action applies to (BULK_ACTION_STATUSES), with ids above `afterId`, lowest id first.
   * Jobs another statement holds locked at that moment are skipped. Cancel cancels PENDING and
   * SCHEDULED jobs and requests the cancel of RUNNING ones not asked yet; retry is Retry's change;
   * delete removes finished jobs and frees their idempotency keys. With `dryRun`, the same batch is
   * taken and counted and nothing changes.
   */
  jobBulkAction(params: JobBulkParams): Promise<JobBulkOutcome>;

  // Workers' operations: the hot path.

  /**
   * Claims up to `limit` jobs of one queue for one session, best first, never more than a limited
   * queue's free slots across every broker. None when the queue is paused, its limit changed, or
   * the session is gone.
   */
  jobClaim(params: JobClaimParams): Promise<Assignment[]>;
  /** Records results; returns the ids whose result was accepted (the rest were stale). */
  jobComplete(params: { results: SuccessReport[] }): Promise<Set<string>>;
  /**
   * Records failed attempts; returns the ids whose failure was accepted, each with the status it
   * went to (SCHEDULED for a retry, FAILED, or CANCELLED when a cancel was pending).
   */
  jobFail(params: { failures: FailureReport[] }): Promise<Map<string, JobStatus>>;
  /**
   * Records snoozes: each job still RUNNING under its token goes to SCHEDULED after its delay with
   * its attempt given back and no error (CANCELLED when a cancel was requested meanwhile). Returns
   * the ids accepted, each with the status it went to; the rest were stale.
   */
  jobSnooze(params: { snoozes: SnoozeReport[] }): Promise<Map<string, JobStatus>>;
  /** Stores progress of jobs still held under the reported tokens; the rest is ignored. */
  jobRecordProgress(params: { updates: ProgressReport[] }): Promise<void>;

  // Sessions: one per Lease stream.

  /** Returns the new session's id. */
  sessionOpen(params: SessionOpenParams): Promise<string>;
  /**
   * Renews a session for another `ttlMs`; null when the session is gone (expired and reaped).
   * Heartbeats of many streams that fall close together may share one statement.
   */
  sessionHeartbeat(params: { sessionId: string; ttlMs: number; tokens: string[] }): Promise<HeartbeatOutcome | null>;
  /** Every session still stored (on every broker), with the jobs each holds: by broker, oldest first. */
  sessionList(): Promise<SessionInfo[]>;
  /** Ends a session whose stream closed, handing its running jobs back at once; returns how many. */
  sessionRelease(params: { sessionId: string; reason: string }): Promise<number>;

  // The leader's duties.

  /** Ends sessions not renewed within their TTL and hands their jobs back; returns how many jobs. */
  sessionReapExpired(params: { now?: Date }): Promise<number>;
  /** Fails attempts past their timeout by more than `graceMs` and tells their holders; returns how many. */
  jobTimeOut(params: { graceMs: number; now?: Date }): Promise<number>;
  /**
   * Makes due SCHEDULED jobs PENDING, at most PROMOTE_BATCH of them (call again while a batch comes
   * back full), and says when the next scheduled job falls due (ms since the epoch).
   */
  jobPromoteScheduled(params: { now?: Date }): Promise<{ promoted: number; nextDueMs: number | null }>;
  /**
   * Drops COMPLETED and CANCELLED jobs finished more than `retentionMs` ago: whole day partitions once
   * the day is past the window (so a job is kept at most a day longer), and a bounded batch of rows
   * from the default partition. Returns how many. Also drops unique keys no longer held (their
   * window ended, or their job finished or is gone).
   */
  jobPrune(params: { retentionMs: number; now?: Date }): Promise<number>;
  /**
   * The leader's upkeep of what read-outs read: folds the counters' deltas into their totals and
   * per-minute rollup, and creates the history's day partitions ahead of need.
   */
  historyUpkeep(params: { now?: Date }): Promise<{ folded: number; partitionsCreated: number }>;
  /**
   * Tries to become the leader (an advisory lock on a connection of its own, so that a broker
   * that dies frees it); true while this driver holds it. `onLost` is told when that connection
   * fails or ends, and with it the lock.
   */
  leaderAttemptElect(params: { onLost: (reason: string) => void }): Promise<boolean>;
  /** Gives up leadership (and the connection that held it). Safe to call when not the leader. */
  leaderResign(): Promise<void>;

  // Read-outs for operators.

  /** Counts by status for every queue. */
  jobCountByQueue(): Promise<Map<string, Partial<Record<JobStatus, number>>>>;
  /** The `run_at` of each queue's oldest PENDING job; queues with none are left out. */
  jobOldestPending(): Promise<Map<string, Date>>;
  /** Jobs that reached COMPLETED or FAILED in each of the last `minutes` minutes, per queue. */
  jobThroughput(params: { minutes: number; now?: Date }): Promise<Map<string, Throughput>>;

  // Queues.

  queueGet(params: { name: string }): Promise<QueueSettings | null>;
  /** Every queue, by name. */
  queueList(): Promise<QueueSettings[]>;
  /** Creates the queue if new and applies the settings given; every broker is told to reload them. */
  queueUpsert(params: QueueUpsertParams): Promise<QueueSettings>;
  /**
   * Marks a queue watched for the next minute, so that claims announce its jobs too (a Watch renews
   * the mark while open). False when the queue does not exist.
   */
  queueWatch(params: { queue: string }): Promise<boolean>;

  // Cron schedules (docs/scheduling.md): definitions, and ticks decided once each by the database.

  /** Every schedule by name, with its latest tick and latest job. */
  scheduleList(): Promise<ScheduleRecord[]>;
  scheduleGet(params: { name: string }): Promise<ScheduleRecord | null>;
  /**
   * Creates or replaces a schedule (validated by the caller), creating its queue if new; `paused`
   * changes only when given. Ticks count from `now` for a new schedule or a changed expression or
   * time zone. Every broker is told.
   */
  scheduleUpsert(params: { schedule: ScheduleSettings; paused?: boolean; now?: Date }): Promise<{ schedule: ScheduleRecord; created: boolean }>;
  /** Pauses or resumes; a resumed schedule's ticks count from `now`. Null when there is no such schedule. */
  scheduleSetPaused(params: { name: string; paused: boolean; now?: Date }): Promise<ScheduleRecord | null>;
  /** Deletes a schedule and its ticks (its jobs stay); false when there was none. */
  scheduleDelete(params: { name: string }): Promise<boolean>;
  /**
   * Decides one tick: enqueues its job, or skips it for overlap, unless the tick was decided already
   * (`duplicate`: by this broker or another), all in one statement. Null when the schedule is gone or paused.
   */
  scheduleTick(params: { name: string; tickAt: Date; now?: Date }): Promise<{ outcome: TickOutcome; jobId: string | null } | null>;
  /** Enqueues one job of the schedule now, tied to no tick; null when there is no such schedule. */
  scheduleTrigger(params: { name: string }): Promise<{ jobId: string } | null>;
  /** Forgets ticks decided before `before` (never a schedule's latest); returns how many. */
  scheduleTicksPrune(params: { before: Date }): Promise<number>;

  // API keys (docs/security.md): only the secret's hash is stored.

  apiKeyCreate(params: { id: string; name: string; scope: Scope; secretHash: string; now?: Date }): Promise<ApiKeyRecord>;
  /** One key by id, revoked or not. */
  apiKeyGet(params: { id: string }): Promise<ApiKeyRecord | null>;
  /** Oldest first; revoked keys only when asked. */
  apiKeyList(params: { includeRevoked?: boolean }): Promise<ApiKeyRecord[]>;
  /** Marks a key revoked; a revoked key is returned as it is. Null when there is no such key. */
  apiKeyRevoke(params: { id: string; now?: Date }): Promise<ApiKeyRecord | null>;
  /** Keys usable right now. */
  apiKeyCountActive(): Promise<number>;

  /** Resigns leadership and closes the driver's own connections (not the ORM it was given). */
  close(): Promise<void>;
}
