/**
 * The producers' operations on PostgreSQL: enqueue, the one read path for jobs (Get and List), cancel
 * and retry. Enqueue, cancel and retry run as prepared statements on the hot path's pool; reads run
 * on the ORM's connections, so a burst of List pages never waits behind claims for a connection.
 */
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Enqueued, JobRecord, JobSummary, NewJob } from '../domain/job.ts';
import type { QueueDefaults } from '../domain/queue.ts';
import type { StoreDriver } from './driver.ts';
import { rowJson, toAssignment, toJobRecord, toJobSummary } from './job-rows.ts';
import type { Row, SqlPool, Statement } from './sql-pool.ts';
import { CANCEL_JOB } from './sql/cancel.ts';
import {
  INSERT_JOBS,
  INSERT_JOB_SUMMARIES,
  INSERT_UNIQUE_JOBS,
  INSERT_UNIQUE_JOB_SUMMARIES,
  JOBS_BY_IDEMPOTENCY_KEY,
  JOBS_BY_UNIQUE_KEY,
} from './sql/enqueue.ts';
import { GET_JOB, listJobs } from './sql/read-jobs.ts';
import { RETRY_JOB } from './sql/retry.ts';

type JobOperations = Pick<StoreDriver, 'jobEnqueue' | 'jobEnqueueSummaries' | 'jobGet' | 'jobList' | 'jobCancel' | 'jobRetry'>;

export function createJobOperations(options: { orm: MikroORM; sql: SqlPool; queueDefaults: QueueDefaults }): JobOperations {
  const { orm, sql, queueDefaults: d } = options;

  async function enqueue<T extends JobSummary>(jobs: NewJob[], insert: Statement, insertUnique: Statement, read: (row: Row) => T): Promise<Enqueued<T>[]> {
    if (jobs.some((job) => job.unique)) return enqueueUnique(jobs, insertUnique, read);
    const input = jobs.map((job, ord) => rowJson(job, ord));
    const rows = await sql.run(insert, [`[${input.join(',')}]`, d.concurrency, d.defaultMaxAttempts, d.defaultTimeoutMs]);
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
      for (const row of await sql.run(JOBS_BY_IDEMPOTENCY_KEY, [missingKeys])) {
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

  /**
   * The answer to a batch with unique keys: rows carry their input's `ord`; a job that was not
   * inserted is answered with the job holding its idempotency or unique key now (read after the
   * insert committed, so a holder that a concurrent statement inserted is seen). A holder whose key
   * was dropped in between (its window ended and the leader pruned it) leaves the key free: that
   * job is enqueued again.
   */
  async function enqueueUnique<T extends JobSummary>(jobs: NewJob[], insert: Statement, read: (row: Row) => T, again = 3): Promise<Enqueued<T>[]> {
    const input = jobs.map((job, ord) => rowJson(job, ord));
    const rows = await sql.run(insert, [`[${input.join(',')}]`, d.concurrency, d.defaultMaxAttempts, d.defaultTimeoutMs]);
    const out: (Enqueued<T> | undefined)[] = new Array(jobs.length);
    for (const row of rows) {
      const entry: Enqueued<T> = { job: read(row), duplicate: false };
      if (entry.job.status === 'running') entry.assignment = toAssignment(row);
      out[Number(row.ord)] = entry;
    }
    const missing = jobs.flatMap((job, ord) => (out[ord] ? [] : [ord]));
    if (missing.length === 0) return out as Enqueued<T>[];
    const byIdempotency = new Map<string, T>();
    const idempotencyKeys = missing.map((ord) => jobs[ord].idempotencyKey).filter((key): key is string => key !== null);
    if (idempotencyKeys.length > 0) {
      for (const row of await sql.run(JOBS_BY_IDEMPOTENCY_KEY, [idempotencyKeys])) byIdempotency.set(row.idempotency_key, read(row));
    }
    const byUnique = new Map<string, T>();
    const uniques = missing.filter((ord) => jobs[ord].idempotencyKey === null && jobs[ord].unique);
    if (uniques.length > 0) {
      const queues = uniques.map((ord) => jobs[ord].queue);
      const keys = uniques.map((ord) => jobs[ord].unique!.key);
      for (const row of await sql.run(JOBS_BY_UNIQUE_KEY, [queues, keys])) byUnique.set(`${row.unique_queue}\u0000${row.unique_key}`, read(row));
    }
    const retry: number[] = [];
    for (const ord of missing) {
      const job = jobs[ord];
      const holder = job.idempotencyKey !== null ? byIdempotency.get(job.idempotencyKey) : byUnique.get(`${job.queue}\u0000${job.unique?.key}`);
      if (holder) out[ord] = { job: holder, duplicate: true };
      else if (job.idempotencyKey === null && again > 0) retry.push(ord);
      else throw new Error(`the job holding key ${job.idempotencyKey ?? job.unique?.key} vanished during enqueue`);
    }
    if (retry.length > 0) {
      const answers = await enqueueUnique(
        retry.map((ord) => jobs[ord]),
        insert,
        read,
        again - 1,
      );
      retry.forEach((ord, i) => (out[ord] = answers[i]));
    }
    return out as Enqueued<T>[];
  }

  /** One changed job, or null when the statement's guard let nothing change. */
  async function changeOne(statement: Statement, id: string): Promise<JobRecord | null> {
    const [row] = await sql.run(statement, [id]);
    return row ? toJobRecord(row) : null;
  }

  return {
    jobEnqueue: ({ jobs }) => enqueue(jobs, INSERT_JOBS, INSERT_UNIQUE_JOBS, toJobRecord),
    jobEnqueueSummaries: ({ jobs }) => enqueue(jobs, INSERT_JOB_SUMMARIES, INSERT_UNIQUE_JOB_SUMMARIES, toJobSummary),

    async jobGet({ id }) {
      const [row] = await orm.em.getConnection().execute<Row[]>(GET_JOB, [id]);
      return row ? toJobRecord(row) : null;
    },

    async jobList(params) {
      const query = listJobs(params);
      return (await orm.em.getConnection().execute<Row[]>(query.text, query.params)).map(toJobRecord);
    },

    jobCancel: ({ id }) => changeOne(CANCEL_JOB, id),
    jobRetry: ({ id }) => changeOne(RETRY_JOB, id),
  };
}
