/**
 * The ceiling PostgreSQL itself allows for a job table, with node-postgres and no library: a table
 * with a partial claim index; enqueue is a prepared INSERT; workers are a
 * few connections, each looping "claim up to 100 with FOR UPDATE SKIP LOCKED, run them, mark them
 * completed" in two short transactions, as every Postgres queue does at its core. Completed rows are
 * kept, as Baton keeps them. No retries, leases, timeouts or history: this is the floor of the cost.
 */
import pg from 'pg';
import { logPoolErrors } from '../pools.ts';
import type { BenchPostgres } from '../postgres.ts';
import { HISTORY_CHUNK, HISTORY_DAYS, PRODUCER_CONNECTIONS, QUEUE, type BenchPayload, type CreateConsumer, type System } from '../system.ts';

/** Jobs one claim takes. */
const CLAIM_BATCH = 100;
/** Claim/complete loops per worker process, each on its own connection. */
const LOOPS = 4;
/** How long an idle loop sleeps when no NOTIFY wakes it first. */
const IDLE_POLL_MS = 1_000;

const SCHEMA = `
create table jobs (
  id bigint generated always as identity primary key,
  queue text not null,
  status text not null default 'pending',
  payload jsonb not null,
  priority smallint not null default 0,
  attempt int not null default 0,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz
);
-- The claim's order (priority, then age) is this index's alone. Ordered by id only, the claim
-- would have a second way in, the primary key, which the planner takes once ANALYZE has seen a
-- table of pending jobs, and which then walks every completed row before the first pending one.
create index jobs_claim on jobs (queue, priority desc, id) where status = 'pending';
create index jobs_running on jobs (id) where status = 'running';`;

/**
 * Enqueue statements. Only latency jobs (those with a `seq`) send a NOTIFY: a transaction that has
 * notified takes a database-wide lock at commit, which serialises committing transactions (pgbench
 * on this machine: 15k single-row inserts/s with 8 clients, 4.4k with a NOTIFY in each), and the
 * ceiling is meant to show what the table alone allows. Every other system here notifies per enqueue.
 */
const INSERT_ONE = `insert into jobs (queue, payload) values ($1, $2)`;
const INSERT_ONE_NOTIFY = `with j as (insert into jobs (queue, payload) values ($1, $2) returning 1) select pg_notify('jobs', $1) from j`;
const INSERT_MANY = `insert into jobs (queue, payload) select $1, p from unnest($2::jsonb[]) as p`;

const CLAIM = `update jobs set status = 'running', attempt = attempt + 1, started_at = now()
  where id in (select id from jobs where queue = $1 and status = 'pending' order by priority desc, id limit ${CLAIM_BATCH} for update skip locked)
  returning id::text as id, payload`;

const COMPLETE = `update jobs set status = 'completed', finished_at = now() where id = any($1::bigint[]) and status = 'running'`;

export function createPlainSqlSystem(postgres: BenchPostgres): System {
  let url = '';
  let sql: pg.Pool | undefined;
  return {
    name: 'plain SQL',
    storage: 'postgres',
    async setup() {
      url = await postgres.createDatabase('bench_plain');
      sql = new pg.Pool({ connectionString: url, max: PRODUCER_CONNECTIONS });
      logPoolErrors(sql, 'plain SQL');
      await sql.query(SCHEMA);
    },
    async reset(options) {
      // Each status by its partial index, not a scan of the kept completed rows.
      if (options?.keepHistory) await sql!.query(`delete from jobs where status = 'pending'; delete from jobs where status = 'running'`);
      else await sql!.query('truncate jobs');
    },
    async enqueue(payload) {
      const [name, text] = payload.seq === undefined ? ['insert-one', INSERT_ONE] : ['insert-one-notify', INSERT_ONE_NOTIFY];
      await sql!.query({ name, text, values: [QUEUE, JSON.stringify(payload)] });
    },
    async enqueueBatch(payloads) {
      await sql!.query({ name: 'insert-many', text: INSERT_MANY, values: [QUEUE, payloads.map((p) => JSON.stringify(p))] });
    },
    async insertBacklog(n) {
      await sql!.query(`insert into jobs (queue, payload) select $1, jsonb_build_object('i', g) from generate_series(1, $2::int) as g`, [QUEUE, n]);
      await sql!.query('vacuum analyze jobs');
    },
    // Completed rows stay in the one table, as Baton kept them before its history table.
    async insertHistory(n, onChunk) {
      for (let from = 1; from <= n; from += HISTORY_CHUNK) {
        const to = Math.min(n, from + HISTORY_CHUNK - 1);
        await sql!.query(
          `insert into jobs (queue, status, payload, attempt, created_at, started_at, finished_at)
           select $1, 'completed', jsonb_build_object('i', g), 1, t - interval '5 ms', t - interval '1 ms', t
           from generate_series($2::int, $3::int) as g, lateral (select now() - ($4::int - g)::float8 / $4::int * $5::int * interval '1 day' as t) as at`,
          [QUEUE, from, to, n, HISTORY_DAYS],
        );
        onChunk(to);
      }
      await sql!.query('vacuum analyze jobs');
    },
    mark: async () => 0,
    // The workers count a job only after its completion committed: handled is durable here.
    async drained(_mark, n, progress) {
      return progress.handled >= n;
    },
    get worker() {
      return { peer: 'plain-sql', config: { url } };
    },
    async serverPid() {
      return undefined;
    },
    async close() {
      await sql?.end();
    },
  };
}

export const createConsumer: CreateConsumer = async (config, hooks) => {
  const url = config.url as string;
  const clients: pg.Client[] = [];
  const listener = new pg.Client({ connectionString: url });
  const sleepers = new Set<() => void>();
  let running = false;
  let loops: Promise<void>[] = [];

  const idle = () =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, IDLE_POLL_MS);
      sleepers.add(wake);
    });

  const loop = async (client: pg.Client) => {
    while (running) {
      const { rows } = await client.query<{ id: string; payload: BenchPayload }>({ name: 'claim', text: CLAIM, values: [QUEUE] });
      if (rows.length === 0) {
        await idle();
        continue;
      }
      for (const row of rows) hooks.onStart(row.payload, row.id);
      await client.query({ name: 'complete', text: COMPLETE, values: [rows.map((r) => r.id)] });
      for (const row of rows) hooks.onEnd(row.id);
    }
  };

  return {
    async start() {
      await listener.connect();
      listener.on('notification', () => {
        for (const wake of [...sleepers]) wake();
      });
      await listener.query('listen jobs');
      for (let i = 0; i < LOOPS; i++) {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        clients.push(client);
      }
      running = true;
      loops = clients.map(loop);
    },
    async stop() {
      running = false;
      for (const wake of [...sleepers]) wake();
      await Promise.all(loops);
      await Promise.all([...clients, listener].map((c) => c.end()));
    },
  };
};
