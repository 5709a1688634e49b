import type { MikroORM } from '@mikro-orm/postgresql';
import type { Assignment, Enqueued, FailureReport, JobRecord, JobSummary, NewJob, ProgressReport, SuccessReport } from '../domain/job.ts';
import type { JobStatus } from '../domain/job-status.ts';
import type { QueueSettings } from '../domain/queue.ts';
import { createGroupCommit } from '../lib/group-commit.ts';
import { QueueEntity } from './entities.ts';
import { rowJson, toAssignment, toJobRecord, toJobSummary, toQueueSettings } from './job-rows.ts';
import * as sql from './job-sql.ts';
import type { Row, SqlPool, Statement } from './sql-pool.ts';
import * as statsSql from './stats-sql.ts';

export interface ListFilter {
  queue?: string;
  statuses?: JobStatus[];
  limit: number;
  /** Only jobs with ids below this one (keyset pagination, newest first). */
  beforeId?: string;
}

/** What a heartbeat learns of the jobs a session holds. */
export interface HeartbeatOutcome {
  /** Tokens the worker reported that the session no longer holds. */
  lost: string[];
  /** Tokens of the session's running jobs whose cancel was requested. */
  cancelRequested: string[];
}

/** How long a heartbeat waits for others to share its statement: nothing next to a TTL of seconds. */
const HEARTBEAT_LINGER_MS = 20;

/**
 * The broker's storage operations, each one named and taking one params object. Nothing above this
 * module writes SQL; the hot-path statements live in ./job-sql.ts and run as prepared statements on
 * their own pool, ordinary reads and queue settings go through the ORM.
 */
export class JobStore {
  readonly orm: MikroORM;
  readonly #sql: SqlPool;
  readonly #queueDefaults: Omit<QueueSettings, 'name' | 'paused'>;

  constructor(options: { orm: MikroORM; sql: SqlPool; queueDefaults: Omit<QueueSettings, 'name' | 'paused'> }) {
    this.orm = options.orm;
    this.#sql = options.sql;
    this.#queueDefaults = options.queueDefaults;
  }

  async #run(query: Statement, params: unknown[]): Promise<Row[]> {
    return this.#sql.run(query, params);
  }

  /**
   * Inserts jobs in one statement (so one transaction: all or nothing). Returns one entry per input
   * in input order; jobs whose idempotency key existed come back as the existing job with
   * `duplicate` set.
   */
  async enqueueJobs(params: { jobs: NewJob[] }): Promise<Enqueued<JobRecord>[]> {
    return this.#enqueue(params.jobs, sql.INSERT_JOBS, toJobRecord);
  }

  /** As `enqueueJobs`, answering with each job's id, queue and status only (for `ids_only` batches). */
  async enqueueJobSummaries(params: { jobs: NewJob[] }): Promise<Enqueued<JobSummary>[]> {
    return this.#enqueue(params.jobs, sql.INSERT_JOB_SUMMARIES, toJobSummary);
  }

  async #enqueue<T extends JobSummary>(jobs: NewJob[], insert: Statement, read: (row: Row) => T): Promise<Enqueued<T>[]> {
    const input = jobs.map((job, ord) => rowJson(job, ord));
    const d = this.#queueDefaults;
    const rows = await this.#run(insert, [`[${input.join(',')}]`, d.concurrency, d.defaultMaxAttempts, d.defaultTimeoutMs]);
    const keyed = new Map<string, Enqueued<T>>();
    const plain: Enqueued<T>[] = [];
    for (const row of rows) {
      const job = read(row);
      const entry: Enqueued<T> = { job, duplicate: false };
      if (job.status === 'running') entry.assignment = toAssignment(row);
      if (job.idempotencyKey === null) plain.push(entry);
      else keyed.set(job.idempotencyKey, entry);
    }
    const missingKeys = jobs.map((job) => job.idempotencyKey).filter((key): key is string => key !== null && !keyed.has(key));
    const existing = new Map<string, T>();
    if (missingKeys.length > 0) {
      for (const row of await this.#run(sql.JOBS_BY_IDEMPOTENCY_KEY, [missingKeys])) {
        const job = read(row);
        existing.set(job.idempotencyKey!, job);
      }
    }
    // Rows come back ordered by id, which follows input order; keyed rows are matched by key.
    let next = 0;
    const claimedKeys = new Set<string>();
    return jobs.map((job) => {
      if (job.idempotencyKey === null) return plain[next++];
      const fresh = keyed.get(job.idempotencyKey);
      if (fresh && !claimedKeys.has(job.idempotencyKey)) {
        claimedKeys.add(job.idempotencyKey);
        return fresh;
      }
      const earlier = fresh?.job ?? existing.get(job.idempotencyKey);
      if (!earlier) throw new Error(`job with idempotency key ${job.idempotencyKey} vanished during enqueue`);
      return { job: earlier, duplicate: true };
    });
  }

  // Ordinary reads run on the ORM's connections, but as SQL selecting the JSON columns as text:
  // entities would hand them over parsed (see JobRecord).
  async getJob(params: { id: string }): Promise<JobRecord | null> {
    const [row] = await this.orm.em.getConnection().execute<Row[]>(sql.GET_JOB, [params.id]);
    return row ? toJobRecord(row) : null;
  }

  /** Newest first, keyset-paginated on id, so a page costs the same however deep it is. */
  async listJobs(params: ListFilter): Promise<JobRecord[]> {
    const query = sql.listJobs(params);
    return (await this.orm.em.getConnection().execute<Row[]>(query.text, query.params)).map(toJobRecord);
  }

  /** Cancels a job, or asks its holder to stop. Null when the job is missing or already terminal. */
  async cancelJob(params: { id: string }): Promise<JobRecord | null> {
    const rows = await this.#run(sql.CANCEL_JOB, [params.id]);
    return rows.length ? toJobRecord(rows[0]) : null;
  }

  /** Revives a FAILED or CANCELLED job. Null when the job is missing or in another status. */
  async retryJob(params: { id: string }): Promise<JobRecord | null> {
    const rows = await this.#run(sql.RETRY_JOB, [params.id]);
    return rows.length ? toJobRecord(rows[0]) : null;
  }

  async openSession(params: { workerId: string; brokerId: string; queues: string[]; capacity: number; ttlMs: number }): Promise<string> {
    const rows = await this.#run(sql.OPEN_SESSION, [
      params.workerId,
      params.brokerId,
      JSON.stringify(params.queues),
      params.capacity,
      params.ttlMs,
    ]);
    return rows[0].id as string;
  }

  /**
   * Renews a session; returns the tokens it no longer holds and those of its jobs whose cancel was
   * requested, or null when the session is gone. Heartbeats of all streams that fall within a few
   * milliseconds of each other share one statement.
   */
  async heartbeat(params: { sessionId: string; ttlMs: number; tokens: string[] }): Promise<HeartbeatOutcome | null> {
    const [outcome] = await this.#heartbeats([params]);
    return outcome;
  }

  readonly #heartbeats = createGroupCommit(
    async (beats: { sessionId: string; ttlMs: number; tokens: string[] }[]): Promise<(HeartbeatOutcome | null)[]> => {
      // One TTL per statement: every session of a broker has the same.
      const input = JSON.stringify(beats.map((beat) => ({ session_id: beat.sessionId, tokens: beat.tokens })));
      const rows = await this.#run(sql.HEARTBEAT, [input, beats[0].ttlMs]);
      return rows.map((row) =>
        row.alive ? { lost: JSON.parse(row.lost) as string[], cancelRequested: JSON.parse(row.cancel_requested) as string[] } : null,
      );
    },
    { maxInFlight: 1, maxItems: 500, lingerMs: HEARTBEAT_LINGER_MS },
  );

  async releaseSession(params: { sessionId: string; reason: string }): Promise<number> {
    const rows = await this.#run(sql.RELEASE_SESSION, [params.reason, params.sessionId, params.sessionId]);
    return rows.length;
  }

  /**
   * Claims up to `limit` jobs of one queue for one session. A limited queue's claim locks the
   * queue's row first, so the limit holds however many brokers claim at once.
   */
  async claimJobs(params: { queue: QueueSettings; limit: number; sessionId: string; workerId: string }): Promise<Assignment[]> {
    const { queue, limit, sessionId, workerId } = params;
    if (queue.concurrency === 0) {
      const rows = await this.#run(sql.CLAIM_UNLIMITED, [queue.name, queue.name, sessionId, limit, sessionId, workerId]);
      return rows.map(toAssignment);
    }
    return this.#sql.transaction(async (run) => {
      const [settings] = await run(sql.LOCK_QUEUE, [queue.name]);
      if (!settings || settings.paused || settings.concurrency === 0) return [];
      const rows = await run(sql.CLAIM_LIMITED, [settings.concurrency, queue.name, queue.name, sessionId, limit, sessionId, workerId]);
      return rows.map(toAssignment);
    });
  }

  /** Records results; returns the ids whose result was accepted (the rest were stale). */
  async completeJobs(params: { results: SuccessReport[] }): Promise<Set<string>> {
    if (params.results.length === 0) return new Set();
    const input = params.results.map((r) => `{"id":${r.id},"token":${r.token},"result":${r.resultJson}}`);
    const rows = await this.#run(sql.COMPLETE_JOBS, [`[${input.join(',')}]`]);
    return new Set(rows.map((row) => row.id as string));
  }

  /**
   * Records failed attempts; returns the ids whose failure was accepted, each with the status it
   * went to (SCHEDULED for a retry, FAILED, or CANCELLED when a cancel was pending).
   */
  async failJobs(params: { failures: FailureReport[] }): Promise<Map<string, JobStatus>> {
    if (params.failures.length === 0) return new Map();
    const input = params.failures.map((f) => ({
      id: f.id,
      token: f.token,
      message: f.message,
      non_retryable: f.nonRetryable,
      retry_after_ms: f.retryAfterMs,
    }));
    const rows = await this.#run(sql.FAIL_JOBS, [JSON.stringify(input)]);
    return new Map(rows.map((row) => [row.id as string, row.status as JobStatus]));
  }

  async recordProgress(params: { updates: ProgressReport[] }): Promise<void> {
    if (params.updates.length === 0) return;
    const input = params.updates.map((u) => `{"id":${u.id},"token":${u.token},"progress":${u.progressJson}}`);
    await this.#run(sql.RECORD_PROGRESS, [`[${input.join(',')}]`]);
  }

  async reapExpiredSessions(): Promise<number> {
    return (await this.#run(sql.REAP_EXPIRED_SESSIONS, [])).length;
  }

  async timeOutJobs(params: { graceMs: number }): Promise<number> {
    return (await this.#run(sql.TIME_OUT_JOBS, [params.graceMs])).length;
  }

  /** Promotes due scheduled jobs; returns how many, and when the next one falls due (ms since epoch). */
  async promoteScheduled(): Promise<{ promoted: number; nextDueMs: number | null }> {
    const [row] = await this.#run(sql.PROMOTE_SCHEDULED, []);
    return { promoted: Number(row.promoted), nextDueMs: row.next_due_ms === null ? null : Number(row.next_due_ms) };
  }

  async pruneFinished(params: { retentionMs: number }): Promise<void> {
    await this.#run(sql.PRUNE_FINISHED, [params.retentionMs]);
  }

  /** Asks claims and completions to announce the queue's jobs for the next minute; false when the queue does not exist. */
  async watchQueue(params: { queue: string }): Promise<boolean> {
    return (await this.#run(sql.WATCH_QUEUE, [params.queue])).length > 0;
  }

  async getQueue(params: { name: string }): Promise<QueueSettings | null> {
    const queue = await this.orm.em.fork().findOne(QueueEntity, { name: params.name });
    return queue ? toQueueSettings(queue) : null;
  }

  async listQueues(): Promise<QueueSettings[]> {
    const queues = await this.orm.em.fork().find(QueueEntity, {}, { orderBy: { name: 'asc' } });
    return queues.map(toQueueSettings);
  }

  /**
   * Creates the queue if new, and applies the given settings; announces the change so every
   * broker reloads it and wakes its waiting workers.
   */
  async upsertQueue(params: { name: string } & Partial<Omit<QueueSettings, 'name'>>): Promise<QueueSettings> {
    const em = this.orm.em.fork();
    const queue = await em.upsert(
      QueueEntity,
      {
        name: params.name,
        concurrency: params.concurrency ?? this.#queueDefaults.concurrency,
        paused: params.paused ?? false,
        defaultMaxAttempts: params.defaultMaxAttempts ?? this.#queueDefaults.defaultMaxAttempts,
        defaultTimeoutMs: params.defaultTimeoutMs ?? this.#queueDefaults.defaultTimeoutMs,
        createdAt: new Date(),
        updatedAt: new Date(),
      },
      {
        onConflictFields: ['name'],
        onConflictMergeFields: (['concurrency', 'paused', 'defaultMaxAttempts', 'defaultTimeoutMs', 'updatedAt'] as const).filter(
          (field) => field === 'updatedAt' || params[field as keyof typeof params] !== undefined,
        ),
      },
    );
    await this.#run(sql.ANNOUNCE_QUEUE_CHANGE, [params.name]);
    return toQueueSettings(queue);
  }

  /**
   * Jobs finished per queue in each of the last `minutes` minutes, oldest first (the last entry is
   * the last 60 seconds): the recent throughput shown by the dashboard and `baton stats`.
   */
  async recentThroughput(params: { minutes: number }): Promise<Map<string, { completed: number[]; failed: number[] }>> {
    const { minutes } = params;
    const out = new Map<string, { completed: number[]; failed: number[] }>();
    if (minutes <= 0) return out;
    for (const row of await this.#run(statsSql.RECENT_THROUGHPUT, [minutes, minutes])) {
      let entry = out.get(row.queue);
      if (!entry) out.set(row.queue, (entry = { completed: new Array(minutes).fill(0), failed: new Array(minutes).fill(0) }));
      const series = row.status === 'completed' ? entry.completed : entry.failed;
      series[minutes - 1 - Number(row.ago)] += Number(row.n);
    }
    return out;
  }

  /** Counts by status for every queue. */
  async queueCounts(): Promise<Map<string, Partial<Record<JobStatus, number>>>> {
    const counts = new Map<string, Partial<Record<JobStatus, number>>>();
    for (const row of await this.#run(sql.QUEUE_COUNTS, [])) {
      const entry = counts.get(row.queue) ?? {};
      if (row.status) entry[row.status as JobStatus] = Number(row.n);
      counts.set(row.queue, entry);
    }
    return counts;
  }
}
