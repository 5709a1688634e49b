/**
 * Baton: the broker in a child process of its own (broker-process.ts), producers on the SDK Client
 * in this process, workers on the SDK Worker in worker processes, all over gRPC on loopback.
 */
import pg from 'pg';
import { Client, Worker } from '@baton/worker-sdk';
import { startBrokerProcess, type BrokerOptions, type BrokerProcess } from '../broker-process.ts';
import { logPoolErrors } from '../pools.ts';
import type { BenchPostgres } from '../postgres.ts';
import {
  HISTORY_CHUNK,
  HISTORY_DAYS,
  QUEUE,
  type BenchPayload,
  type Consumer,
  type CreateConsumer,
  type DrainProgress,
  type Mark,
  type System,
  type WorkerSetup,
} from '../system.ts';

export interface BatonOptions {
  postgres: BenchPostgres;
  /** Passed on to the broker process (profiling, extra environment). */
  broker?: Omit<BrokerOptions, 'databaseUrl'>;
}

export function createBatonSystem(options: BatonOptions): System {
  let url = '';
  let broker: BrokerProcess | undefined;
  let client: Client | undefined;
  /** One Enqueue RPC per call: the row beside A's single calls that shows the RPC alone. */
  let clientEachAlone: Client | undefined;
  let sql: pg.Pool | undefined;

  const start = async () => {
    broker = await startBrokerProcess({ databaseUrl: url, ...options.broker });
    client = new Client({ address: broker.address });
    clientEachAlone = new Client({ address: broker.address, coalesceEnqueues: false });
  };
  const stop = async () => {
    client?.close();
    clientEachAlone?.close();
    await broker?.stop();
  };
  const completed = async () => Number((await sql!.query(COMPLETED, [QUEUE])).rows[0].n);
  const workerFor = (b: BrokerProcess): WorkerSetup => ({ peer: 'baton', config: { address: b.address } });

  return {
    name: 'Baton',
    storage: 'postgres',
    async setup() {
      url = await options.postgres.createDatabase('bench_baton');
      sql = new pg.Pool({ connectionString: url, max: 2 });
      logPoolErrors(sql, 'Baton');
      await start(); // migrates the database
    },
    async reset(options) {
      if (options?.keepHistory) await sql!.query(EMPTY_LIVE_JOBS);
      else await sql!.query('truncate baton_live_jobs, baton_job_history, baton_job_keys, baton_job_counts, baton_job_count_deltas, baton_job_minutes');
    },
    async enqueue(payload) {
      await client!.enqueue(QUEUE, payload);
    },
    async enqueueEachAlone(payload) {
      await clientEachAlone!.enqueue(QUEUE, payload);
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
    async insertHistory(n, onChunk) {
      await sql!.query(`insert into baton_queues (name) values ($1) on conflict do nothing`, [QUEUE]);
      // A partition for each day the jobs finished on, as the leader would have made them then:
      // without, they would all land in the default partition, which no real broker fills.
      await sql!.query(`select baton_ensure_history_partitions(now() - $1::int * interval '1 day', $1::int + 2)`, [HISTORY_DAYS]);
      const sequence = (await sql!.query(`select pg_get_serial_sequence('baton_live_jobs', 'id') as name`)).rows[0].name as string;
      for (let from = 1; from <= n; from += HISTORY_CHUNK) {
        const to = Math.min(n, from + HISTORY_CHUNK - 1);
        await sql!.query(INSERT_HISTORY, [QUEUE, from, to, n, HISTORY_DAYS, sequence]);
        onChunk(to);
      }
      await sql!.query('vacuum analyze baton_job_history');
    },
    async queueStats() {
      await client!.queueStats([QUEUE]);
    },
    async scrapeMetrics() {
      const response = await fetch(`${broker!.mainUrl}/metrics`);
      if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`);
      await response.text();
    },
    async addServers(count) {
      const extra: BrokerProcess[] = [];
      try {
        for (let i = 0; i < count; i++) extra.push(await startBrokerProcess({ databaseUrl: url, ...options.broker }));
      } catch (error) {
        await Promise.all(extra.map((b) => b.stop()));
        throw error;
      }
      const all = [broker!, ...extra];
      return {
        workers: all.map(workerFor),
        pids: all.map((b) => b.pid),
        async close() {
          await Promise.all(extra.map((b) => b.stop()));
        },
      };
    },
    async setFairKeys(on) {
      await client!.setFairKeys(QUEUE, on ? { keyConcurrency: 0 } : null);
    },
    async enqueueKeyedBatch(jobs) {
      await client!.enqueueBatch(
        jobs.map(({ payload, key }) => ({ queue: QUEUE, payload, concurrencyKey: key })),
        { idsOnly: true },
      );
    },
    mark: completed,
    async drained(mark: Mark, n: number, _progress: DrainProgress) {
      return (await completed()) - mark >= n;
    },
    get worker(): WorkerSetup {
      return workerFor(broker!);
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
 * Completed jobs of a queue, from the counters the broker keeps (totals plus the deltas not folded
 * yet: exact in any snapshot, and written by the statement that completes a job, so a completion is
 * counted once it committed). Counting history rows instead would cost a scan of the 10,000,000
 * finished jobs of scenario F on every check.
 */
const COMPLETED = `
select coalesce(sum(n), 0)::bigint as n from (
  select n from baton_job_counts where queue = $1 and status = 'completed'
  union all
  select n from baton_job_count_deltas where queue = $1 and status = 'completed'
) c`;

/**
 * Empties the live jobs and their counters, keeping the history (scenario F) and its counters, in one
 * transaction. A fold by the leader running at the same time either folded the live deltas first,
 * and their totals go here too, or finds none left.
 */
const EMPTY_LIVE_JOBS = `
truncate baton_live_jobs;
delete from baton_job_count_deltas where status in ('pending', 'scheduled', 'running');
delete from baton_job_counts where status in ('pending', 'scheduled', 'running')`;

/**
 * Completed jobs $2..$3 of $4 into the history, with ids from the job sequence ($6) as the broker
 * would have given them, finished over the last $5 days (oldest first, so that ids grow with time as
 * they do), each with every column a completion writes; and, in the same statement, their count into
 * the counters as the completing statements would have written it. The count is dated to the
 * oldest finish so that the per-minute rollup (last-hour throughput) does not see 10,000,000
 * completions in the current minute.
 */
const INSERT_HISTORY = `
with h as (
  insert into baton_job_history (id, queue, status, payload, priority, run_at, attempt, max_attempts, backoff_initial_ms,
    backoff_max_ms, backoff_multiplier, backoff_jitter, timeout_ms, labels, errors, created_at, started_at, finished_at, cancel_requested)
  select nextval($6::regclass), $1, 'completed', jsonb_build_object('i', g), 0, t - interval '5 ms', 1, 3, 1000,
    600000, 2, 0.2, 0, '{}', '[]', t - interval '5 ms', t - interval '1 ms', t, false
  from generate_series($2::int, $3::int) as g, lateral (select now() - ($4::int - g)::float8 / $4::int * $5::int * interval '1 day' as t) as at
  returning 1
)
insert into baton_job_count_deltas (queue, status, minute, n)
select $1, 'completed', date_trunc('minute', now() - $5::int * interval '1 day'), count(*) from h`;

/**
 * Jobs each drain Worker leases ahead of its handlers: 250 held in all with concurrency 50, as
 * graphile-worker's local queue of 250 (bench/README.md, "The peers and their tuning").
 */
const PREFETCH = 200;

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
      : [
          new Worker({
            address,
            handlers: { [queue]: handler },
            concurrency: hooks.concurrency,
            prefetch: Number(process.env.BENCH_BATON_PREFETCH ?? PREFETCH),
          }),
        ];
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
