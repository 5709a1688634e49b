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
import { INSERT_JOBS, INSERT_JOB_SUMMARIES, JOBS_BY_IDEMPOTENCY_KEY } from './sql/enqueue.ts';
import { GET_JOB, listJobs } from './sql/read-jobs.ts';
import { RETRY_JOB } from './sql/retry.ts';

type JobOperations = Pick<StoreDriver, 'jobEnqueue' | 'jobEnqueueSummaries' | 'jobGet' | 'jobList' | 'jobCancel' | 'jobRetry'>;

export function createJobOperations(options: { orm: MikroORM; sql: SqlPool; queueDefaults: QueueDefaults }): JobOperations {
  const { orm, sql, queueDefaults: d } = options;

  async function enqueue<T extends JobSummary>(jobs: NewJob[], insert: Statement, read: (row: Row) => T): Promise<Enqueued<T>[]> {
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

  /** One changed job, or null when the statement's guard let nothing change. */
  async function changeOne(statement: Statement, id: string): Promise<JobRecord | null> {
    const [row] = await sql.run(statement, [id]);
    return row ? toJobRecord(row) : null;
  }

  return {
    jobEnqueue: ({ jobs }) => enqueue(jobs, INSERT_JOBS, toJobRecord),
    jobEnqueueSummaries: ({ jobs }) => enqueue(jobs, INSERT_JOB_SUMMARIES, toJobSummary),

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
