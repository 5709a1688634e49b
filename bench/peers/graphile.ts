/**
 * graphile-worker, tuned as its performance guide says: a local queue (a pool fetches and locks a
 * batch of jobs, its workers take them without a round trip), batched completions
 * (`completeJobBatchDelay: 0`), prepared statements (the default), and no per-job success log
 * (`NO_LOG_SUCCESS`). Jobs are deleted when they complete, which is graphile-worker's design. The
 * pool gets the guide's size, concurrency + 2.
 */
import { Logger, makeWorkerUtils, run, runMigrations, type Runner, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';
import { logPoolErrors } from '../pools.ts';
import type { BenchPostgres } from '../postgres.ts';
import { PRODUCER_CONNECTIONS, QUEUE, type BenchPayload, type CreateConsumer, type System } from '../system.ts';

/** Jobs a worker pool fetches and locks at once: five times its concurrency (50 and 100 were slower here). */
const LOCAL_QUEUE_SIZE = 250;

/** Errors only: graphile-worker logs at info level by default. */
const quietLogger = new Logger(() => (level, message) => {
  if (level === 'error') process.stderr.write(`[graphile-worker] ${message}\n`);
});

export function createGraphileSystem(postgres: BenchPostgres): System {
  let url = '';
  let sql: pg.Pool | undefined;
  let utils: WorkerUtils | undefined;
  return {
    name: 'graphile-worker',
    storage: 'postgres',
    async setup() {
      url = await postgres.createDatabase('bench_graphile');
      await runMigrations({ connectionString: url, logger: quietLogger });
      sql = new pg.Pool({ connectionString: url, max: PRODUCER_CONNECTIONS });
      logPoolErrors(sql, 'graphile-worker');
      utils = await makeWorkerUtils({ pgPool: sql, logger: quietLogger });
    },
    async reset() {
      await sql!.query('truncate graphile_worker._private_jobs');
    },
    async enqueue(payload) {
      await utils!.addJob(QUEUE, payload);
    },
    async enqueueBatch(payloads) {
      await utils!.addJobs(payloads.map((payload) => ({ identifier: QUEUE, payload })));
    },
    async insertBacklog(n) {
      await sql!.query(`insert into graphile_worker._private_tasks (identifier) values ($1) on conflict do nothing`, [QUEUE]);
      await sql!.query(
        `insert into graphile_worker._private_jobs (task_id, payload)
         select t.id, json_build_object('i', g) from graphile_worker._private_tasks t, generate_series(1, $2::int) as g
         where t.identifier = $1`,
        [QUEUE, n],
      );
      await sql!.query('vacuum analyze graphile_worker._private_jobs');
    },
    async mark() {
      return 0;
    },
    // The worker processes count a job only once the statement deleting it (graphile-worker's
    // completion) has returned, so their count is of durable completions (see createConsumer).
    async drained(_mark, n, progress) {
      return progress.handled >= n;
    },
    get worker() {
      return { peer: 'graphile', config: { url }, env: { NO_LOG_SUCCESS: '1' } };
    },
    async serverPid() {
      return undefined;
    },
    async close() {
      await utils?.release();
      await sql?.end();
    },
  };
}

/** graphile-worker's completion statements (sql/completeJobs.ts, prepared under these names). */
const COMPLETION = /^complete_jobs?\//;

/**
 * graphile-worker deletes a completed job some time after its handler returned (completions are
 * batched) and has no event for it, so the worker's pool is watched instead: a job counts as done
 * (`onEnd`) when the DELETE that completes it has returned, i.e. committed.
 */
function watchCompletions(pool: pg.Pool, onEnd: (id: string) => void): void {
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (config: unknown, ...rest: unknown[]) => {
      const result = query(config, ...rest);
      const { name, values } = (config ?? {}) as { name?: string; values?: unknown[] };
      if (name && COMPLETION.test(name) && result instanceof Promise) {
        const ids = ([] as unknown[]).concat(values?.[0] ?? []).map(String);
        result.then(
          () => ids.forEach(onEnd),
          () => undefined,
        );
      }
      return result;
    };
  });
}

export const createConsumer: CreateConsumer = async (config, hooks) => {
  let runner: Runner | undefined;
  const pool = new pg.Pool({ connectionString: config.url as string, max: hooks.concurrency + 2 });
  logPoolErrors(pool, 'graphile-worker');
  watchCompletions(pool, hooks.onEnd);
  return {
    async start() {
      runner = await run({
        pgPool: pool,
        concurrency: hooks.concurrency,
        noHandleSignals: true,
        logger: quietLogger,
        taskList: {
          [QUEUE]: async (payload, helpers) => {
            hooks.onStart(payload as BenchPayload, helpers.job.id);
          },
        },
        preset: {
          worker: {
            localQueue: { size: LOCAL_QUEUE_SIZE },
            completeJobBatchDelay: 0,
            failJobBatchDelay: 0,
            preparedStatements: true,
          },
        },
      });
    },
    async stop() {
      await runner?.stop();
      await pool.end();
    },
  };
};
