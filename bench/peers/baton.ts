/**
 * Baton: the broker in a child process of its own (broker-process.ts), producers on the SDK Client
 * in this process, workers on the SDK Worker in worker processes, all over gRPC on loopback.
 */
import pg from 'pg';
import { Client, Worker } from '@baton/worker-sdk';
import { startBrokerProcess, type BrokerOptions, type BrokerProcess } from '../broker-process.ts';
import { logPoolErrors } from '../pools.ts';
import type { BenchPostgres } from '../postgres.ts';
import { QUEUE, type BenchPayload, type Consumer, type CreateConsumer, type DrainProgress, type Mark, type System, type WorkerSetup } from '../system.ts';

export interface BatonOptions {
  postgres: BenchPostgres;
  /** Passed on to the broker process (profiling, extra environment). */
  broker?: Omit<BrokerOptions, 'databaseUrl'>;
}

export function createBatonSystem(options: BatonOptions): System {
  let url = '';
  let broker: BrokerProcess | undefined;
  let client: Client | undefined;
  let sql: pg.Pool | undefined;

  const start = async () => {
    broker = await startBrokerProcess({ databaseUrl: url, ...options.broker });
    client = new Client({ address: broker.address });
  };
  const stop = async () => {
    client?.close();
    await broker?.stop();
  };
  const completed = async () => Number((await sql!.query(`select count(*) as n from baton_job_history where status = 'completed'`)).rows[0].n);

  return {
    name: 'Baton',
    storage: 'postgres',
    async setup() {
      url = await options.postgres.createDatabase('bench_baton');
      sql = new pg.Pool({ connectionString: url, max: 2 });
      logPoolErrors(sql, 'Baton');
      await start(); // migrates the database
    },
    async reset() {
      await sql!.query('truncate baton_live_jobs, baton_job_history, baton_job_keys, baton_job_counts, baton_job_count_deltas, baton_job_minutes');
    },
    async enqueue(payload) {
      await client!.enqueue(QUEUE, payload);
    },
    async enqueueBatch(payloads) {
      await client!.enqueueBatch(
        payloads.map((payload) => ({ queue: QUEUE, payload })),
        { idsOnly: true },
      );
    },
    async insertBacklog(n) {
      await sql!.query(`insert into baton_queues (name) values ($1) on conflict do nothing`, [QUEUE]);
      await sql!.query(
        `insert into baton_live_jobs (queue, status, payload, max_attempts)
         select $1, 'pending', jsonb_build_object('i', g), 3 from generate_series(1, $2::int) as g`,
        [QUEUE, n],
      );
      // As the broker's own insert would, so that its read-outs count the backlog.
      await sql!.query(`insert into baton_job_count_deltas (queue, status, minute, n) values ($1, 'pending', date_trunc('minute', now()), $2)`, [QUEUE, n]);
      await sql!.query('vacuum analyze baton_live_jobs');
    },
    mark: completed,
    async drained(mark: Mark, n: number, _progress: DrainProgress) {
      return (await completed()) - mark >= n;
    },
    get worker(): WorkerSetup {
      return { peer: 'baton', config: { address: broker!.address } };
    },
    async serverPid() {
      return broker?.pid;
    },
    async restartServer() {
      await stop();
      await start();
    },
    idleWorker(streams) {
      return { peer: 'baton', config: { address: broker!.address, streams, queue: 'bench-idle' } };
    },
    async close() {
      await stop();
      await sql?.end();
    },
  };
}

/**
 * One SDK Worker with the process's whole concurrency; or, for the idle scenario, `streams` Workers
 * of concurrency 1 on an empty queue (each its own Lease stream).
 */
export const createConsumer: CreateConsumer = async (config, hooks) => {
  const address = config.address as string;
  const streams = (config.streams as number | undefined) ?? 0;
  const queue = (config.queue as string | undefined) ?? QUEUE;
  const handler = (payload: BenchPayload, ctx: { id: string }) => {
    hooks.onStart(payload, ctx.id);
    hooks.onEnd(ctx.id);
    return null;
  };
  const workers =
    streams > 0
      ? Array.from({ length: streams }, (_, i) => new Worker({ address, handlers: { [queue]: handler }, concurrency: 1, workerId: `idle-${process.pid}-${i}` }))
      : [new Worker({ address, handlers: { [queue]: handler }, concurrency: hooks.concurrency })];
  const consumer: Consumer = {
    async start() {
      await Promise.all(workers.map((w) => w.start()));
    },
    async stop() {
      await Promise.all(workers.map((w) => w.close({ timeoutMs: 10_000 })));
    },
  };
  return consumer;
};
