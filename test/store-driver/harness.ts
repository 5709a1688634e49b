/**
 * The store driver suite's harness (River's riverdrivertest): a driver on a fresh migrated database
 * per file, emptied before each test, and factories that bring jobs into a status through the
 * driver's own operations, so that each test states only what it is about.
 */
import pg from 'pg';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { DEFAULT_BACKOFF } from '../../server/src/domain/backoff.ts';
import type { Assignment, JobRecord, NewJob } from '../../server/src/domain/job.ts';
import { createLogger } from '../../server/src/logger.ts';
import type { StoreDriver } from '../../server/src/store/driver.ts';
import { openOrm } from '../../server/src/store/orm.ts';
import { createPostgresDriver } from '../../server/src/store/postgres-driver.ts';
import { createTestDatabase, query } from '../support/database.ts';

export interface DriverHarness {
  readonly driver: StoreDriver;
  readonly url: string;
  /** A second driver on the same database, as a second broker would have. */
  other(): StoreDriver;
}

/** Registers the hooks of one file: a database and a driver for it, every table empty before each test. */
export function useDriver(): DriverHarness {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let orm: Awaited<ReturnType<typeof openOrm>>;
  let driver: StoreDriver;
  const others: StoreDriver[] = [];
  beforeAll(async () => {
    db = await createTestDatabase();
    orm = await openOrm(db.url, 2);
    driver = createPostgresDriver({ orm, url: db.url, logger: createLogger('error'), poolSize: 4 });
  });
  beforeEach(async () => {
    await query(
      db.url,
      'truncate baton_live_jobs, baton_job_history, baton_job_keys, baton_job_counts, baton_job_count_deltas, baton_job_minutes, baton_sessions, baton_queues, baton_api_keys',
    );
  });
  afterAll(async () => {
    for (const other of others) await other.close();
    await driver?.close();
    await orm?.close();
    await db?.drop();
  });
  return {
    get driver() {
      return driver;
    },
    get url() {
      return db.url;
    },
    other() {
      const other = createPostgresDriver({ orm, url: db.url, logger: createLogger('error'), poolSize: 2 });
      others.push(other);
      return other;
    },
  };
}

/** A job to enqueue, with the defaults the API layer would fill in. */
export function newJob(queue: string, overrides: Partial<NewJob> = {}): NewJob {
  return {
    queue,
    payloadJson: '{"n":1}',
    priority: 0,
    runAt: null,
    delayMs: null,
    maxAttempts: null,
    backoff: { ...DEFAULT_BACKOFF, jitter: 0 },
    timeoutMs: null,
    idempotencyKey: null,
    labels: {},
    traceparent: null,
    ...overrides,
  };
}

export async function enqueue(driver: StoreDriver, job: NewJob): Promise<JobRecord> {
  const [entry] = await driver.jobEnqueue({ jobs: [job] });
  return entry.job;
}

export async function openSession(driver: StoreDriver, queue: string, ttlMs = 60_000): Promise<string> {
  return driver.sessionOpen({ workerId: 'w1', brokerId: 'b1', queues: [queue], capacity: 100, ttlMs });
}

/** A job RUNNING under a new session of its own. */
export async function runningJob(driver: StoreDriver, job: NewJob): Promise<{ job: JobRecord; assignment: Assignment; sessionId: string }> {
  const enqueued = await enqueue(driver, job);
  const sessionId = await openSession(driver, job.queue);
  const queue = (await driver.queueGet({ name: job.queue }))!;
  const [assignment] = await driver.jobClaim({ queue, limit: 1, sessionId, workerId: 'w1' });
  if (assignment?.id !== enqueued.id) throw new Error(`job ${enqueued.id} was not claimed`);
  return { job: enqueued, assignment, sessionId };
}

/** A job whose one attempt failed for good. */
export async function failedJob(driver: StoreDriver, queue: string): Promise<JobRecord> {
  const { assignment } = await runningJob(driver, newJob(queue, { maxAttempts: 1 }));
  await driver.jobFail({ failures: [{ id: assignment.id, token: assignment.leaseToken, message: 'boom', nonRetryable: false, retryAfterMs: null }] });
  return (await driver.jobGet({ id: assignment.id }))!;
}

/** A job completed with `result`. */
export async function completedJob(driver: StoreDriver, queue: string, resultJson = '{"ok":true}'): Promise<JobRecord> {
  const { assignment } = await runningJob(driver, newJob(queue));
  await driver.jobComplete({ results: [{ id: assignment.id, token: assignment.leaseToken, resultJson }] });
  return (await driver.jobGet({ id: assignment.id }))!;
}

/** The stored row, as PostgreSQL has it. */
export async function storedJob(url: string, id: string): Promise<Record<string, any> | undefined> {
  const [row] = await query(url, `select *, lease_token::text as lease_token, session_id::text as session_id from baton_jobs where id = $1`, [id]);
  return row;
}

/** The database's clock: `now` arguments are set relative to it, never to the test's. */
export async function databaseNow(url: string): Promise<Date> {
  const [{ now }] = await query<{ now: Date }>(url, 'select now()');
  return now;
}

/** Notifications on `channel`, from now on, in order; `close` when done. */
export async function listen(url: string, channel: string): Promise<{ next(): Promise<string>; close(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`listen ${channel}`);
  const received: string[] = [];
  const waiting: ((payload: string) => void)[] = [];
  client.on('notification', (n) => {
    const waiter = waiting.shift();
    if (waiter) waiter(n.payload ?? '');
    else received.push(n.payload ?? '');
  });
  return {
    next: () => (received.length > 0 ? Promise.resolve(received.shift()!) : new Promise((resolve) => waiting.push(resolve))),
    close: () => client.end(),
  };
}

export function later(base: Date, ms: number): Date {
  return new Date(base.getTime() + ms);
}
