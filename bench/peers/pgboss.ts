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
import { PRODUCER_CONNECTIONS, QUEUE, type BenchPayload, type CreateConsumer, type System } from '../system.ts';

/** Jobs per fetch; a process runs `concurrency / BATCH_SIZE` fetch loops (10 × 5 and 25 × 2 were slower here). */
const BATCH_SIZE = 50;

export function createPgBossSystem(postgres: BenchPostgres): System {
  let url = '';
  let sql: pg.Pool | undefined;
  let boss: PgBoss | undefined;
  const completed = async () =>
    Number((await sql!.query(`select count(*) as n from pgboss.job where name = $1 and completed_on is not null`, [QUEUE])).rows[0].n);
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
    async reset() {
      await sql!.query('truncate pgboss.job');
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
    mark: completed,
    async drained(mark, n) {
      return (await completed()) - mark >= n;
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
