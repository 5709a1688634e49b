/**
 * pg-boss, tuned for throughput as its docs describe: batch fetching (`batchSize`, the handler gets
 * an array), several fetch loops per process (`localConcurrency`), no pause between full batches
 * (`burstWhenBatchFull`), and LISTEN/NOTIFY wake-ups (`useListenNotify` plus a `notify` queue) so
 * an idle worker hears of a new job at once instead of at its next poll.
 */
import { PgBoss } from 'pg-boss';
import pg from 'pg';
import { logPoolErrors } from '../pools.ts';
import type { BenchPostgres } from '../postgres.ts';
import { HISTORY_CHUNK, HISTORY_DAYS, PRODUCER_CONNECTIONS, QUEUE, type BenchPayload, type CreateConsumer, type System } from '../system.ts';

/** Jobs per fetch; a process runs `concurrency / BATCH_SIZE` fetch loops (10 × 5 and 25 × 2 were slower here). */
const BATCH_SIZE = 50;

export function createPgBossSystem(postgres: BenchPostgres): System {
  let url = '';
  let sql: pg.Pool | undefined;
  let boss: PgBoss | undefined;
  // Completions since a moment of the database's clock (pg-boss's index on (name, completed_on)), so
  // that the check reads only this drain's jobs, not the finished jobs scenario F keeps.
  const completedSince = async (epoch: number) =>
    Number((await sql!.query(`select count(*) as n from pgboss.job where name = $1 and completed_on > to_timestamp($2)`, [QUEUE, epoch])).rows[0].n);
  return {
    name: 'pg-boss',
    storage: 'postgres',
    async setup() {
      url = await postgres.createDatabase('bench_pgboss');
      // The producer's instance installs the schema; it runs no maintenance or cron during the run.
      boss = new PgBoss({ connectionString: url, max: PRODUCER_CONNECTIONS, supervise: false, schedule: false });
      boss.on('error', (error) => process.stderr.write(`[pg-boss] ${error.message}\n`));
      await boss.start();
      await boss.createQueue(QUEUE, { notify: true });
      sql = new pg.Pool({ connectionString: url, max: 2 });
      logPoolErrors(sql, 'pg-boss');
    },
    async reset(options) {
      if (options?.keepHistory) await sql!.query(`delete from pgboss.job where name = $1 and state <> 'completed'`, [QUEUE]);
      else await sql!.query('truncate pgboss.job');
    },
    async enqueue(payload) {
      await boss!.send(QUEUE, payload);
    },
    async enqueueBatch(payloads) {
      await boss!.insert(
        QUEUE,
        payloads.map((data) => ({ data })),
      );
    },
    async insertBacklog(n) {
      await sql!.query(`insert into pgboss.job (name, data, policy) select $1, jsonb_build_object('i', g), 'standard' from generate_series(1, $2::int) as g`, [
        QUEUE,
        n,
      ]);
      await sql!.query('vacuum analyze pgboss.job_common');
    },
    // pg-boss keeps completed jobs in its job table (state 'completed') until its maintenance deletes
    // them, which no instance here runs (supervise: false).
    async insertHistory(n, onChunk) {
      for (let from = 1; from <= n; from += HISTORY_CHUNK) {
        const to = Math.min(n, from + HISTORY_CHUNK - 1);
        await sql!.query(
          `insert into pgboss.job (name, data, policy, state, start_after, created_on, started_on, completed_on)
           select $1, jsonb_build_object('i', g), 'standard', 'completed', t - interval '5 ms', t - interval '5 ms', t - interval '1 ms', t
           from generate_series($2::int, $3::int) as g, lateral (select now() - ($4::int - g)::float8 / $4::int * $5::int * interval '1 day' as t) as at`,
          [QUEUE, from, to, n, HISTORY_DAYS],
        );
        onChunk(to);
      }
      await sql!.query('vacuum analyze pgboss.job_common');
    },
    // pg-boss's own read-out of a queue's counts (cached in its queue table; recomputed from the job
    // table when the cache is older than its limit).
    async queueStats() {
      await boss!.getQueueStats(QUEUE);
    },
    async mark() {
      return Number((await sql!.query(`select extract(epoch from clock_timestamp())::float8 as t`)).rows[0].t);
    },
    async drained(mark, n) {
      return (await completedSince(mark)) >= n;
    },
    get worker() {
      return { peer: 'pgboss', config: { url } };
    },
    async serverPid() {
      return undefined;
    },
    async close() {
      await boss?.stop({ graceful: false });
      await sql?.end();
    },
  };
}

export const createConsumer: CreateConsumer = async (config, hooks) => {
  const loops = Math.max(1, Math.round(hooks.concurrency / BATCH_SIZE));
  const boss = new PgBoss({
    connectionString: config.url as string,
    max: loops + 2,
    supervise: false,
    schedule: false,
    migrate: false,
    useListenNotify: true,
  });
  boss.on('error', (error) => process.stderr.write(`[pg-boss] ${error.message}\n`));
  return {
    async start() {
      await boss.start();
      await boss.work<BenchPayload>(
        QUEUE,
        { batchSize: BATCH_SIZE, localConcurrency: loops, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
        async (jobs) => {
          for (const job of jobs) hooks.onStart(job.data, job.id);
          for (const job of jobs) hooks.onEnd(job.id);
        },
      );
    },
    async stop() {
      await boss.stop({ graceful: true, timeout: 10_000 });
    },
  };
};
