/**
 * The chaos harness: brokers and workers as real processes on loopback, a fault injected while
 * they work, and the same checks after every scenario — every job terminal, none lost, no
 * completion recorded twice, the concurrency limit never exceeded — plus the time from the fault to
 * recovery. Each scenario's figures are appended to test-results/chaos.ndjson for docs/reliability.md.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@baton/worker-sdk';
import { freePort } from '../../server/src/store/embedded-postgres.ts';
import { query } from '../support/database.ts';
import { type Child, type Execution, eventually, maxOverlap, readLog, readyLine, spawnTs } from '../support/processes.ts';

/** The lease TTL every chaos broker runs with. */
export const LEASE_TTL_MS = 2000;

const RESULTS = path.resolve(import.meta.dirname, '../../test-results/chaos.ndjson');

/** Which of a broker's two ports the scenario's workers and producers use: one contract, both tested. */
export type Port = 'main' | 'grpc';

export interface BrokerProcess {
  /** The main port (connect-node). */
  port: number;
  /** The native gRPC port (BATON_GRPC_PORT, grpc-js). */
  grpcPort: number;
  child: Child;
  env: Record<string, string>;
}

export interface Figures {
  scenario: string;
  jobs: number;
  faults: number;
  lost: number;
  /** Jobs whose completion was recorded more than once (must be 0). */
  doubleCompletions: number;
  /** Jobs that ran more than once (allowed: delivery is at least once). */
  reExecuted: number;
  executions: number;
  maxConcurrent: number;
  limit: number | null;
  recoveryMs: number | null;
  elapsedMs: number;
}

/** One scenario's world: a database, brokers, workers and an execution log. */
export class Cluster {
  readonly databaseUrl: string;
  readonly brokers: BrokerProcess[] = [];
  readonly workers: Child[] = [];
  log = '';
  #started = Date.now();

  /** The port that workers and producers talk to. */
  readonly via: Port;

  constructor(databaseUrl: string, via: Port = 'main') {
    this.databaseUrl = databaseUrl;
    this.via = via;
  }

  /** Records every completion (a job written into history as COMPLETED), so that a second one for a job would show. */
  async auditCompletions(): Promise<void> {
    await query(
      this.databaseUrl,
      `create table if not exists chaos_completions (job_id bigint not null, at timestamptz not null default clock_timestamp());
       create or replace function chaos_audit() returns trigger language plpgsql as $$
       begin
         if new.status = 'completed' then
           insert into chaos_completions (job_id) values (new.id);
         end if;
         return new;
       end $$;
       drop trigger if exists chaos_audit on baton_job_history;
       create trigger chaos_audit after insert on baton_job_history for each row execute function chaos_audit();`,
    );
    this.log = path.join(await mkdtemp(path.join(os.tmpdir(), 'baton-chaos-')), 'executions.ndjson');
  }

  async startBroker(env: Record<string, string> = {}, port?: number): Promise<BrokerProcess> {
    const chosen = port ?? (await freePort());
    const grpcPort = await freePort();
    const fullEnv = {
      DATABASE_URL: this.databaseUrl,
      BATON_PORT: String(chosen),
      BATON_GRPC_PORT: String(grpcPort),
      BATON_LEASE_TTL_MS: String(LEASE_TTL_MS),
      BATON_LOG_LEVEL: 'info',
      BATON_DRAIN_MS: '3000',
      ...env,
    };
    const broker = { port: chosen, grpcPort, env: fullEnv, child: spawnTs('server/src/main.ts', fullEnv) };
    this.brokers.push(broker);
    await this.waitReady(broker);
    return broker;
  }

  async waitReady(broker: BrokerProcess): Promise<void> {
    await eventually(() => readyLine(broker.child.output()), 30_000, `broker on ${broker.port}: ${broker.child.output()}`);
  }

  /** Starts the broker again on its port, as a supervisor would after a crash. */
  async restartBroker(broker: BrokerProcess): Promise<void> {
    broker.child = spawnTs('server/src/main.ts', broker.env);
    await this.waitReady(broker);
  }

  /** Where workers and producers reach `broker`: its main or its native gRPC port, as the scenario runs. */
  address(broker: BrokerProcess): string {
    return `127.0.0.1:${this.via === 'grpc' ? broker.grpcPort : broker.port}`;
  }

  addresses(): string {
    return this.brokers.map((b) => this.address(b)).join(',');
  }

  startWorker(queue: string, name: string, concurrency = 4, address = this.addresses()): Child {
    const child = spawnTs('test/fixtures/recording-worker.ts', {
      BATON_ADDRESS: address,
      QUEUE: queue,
      CONCURRENCY: String(concurrency),
      LOG: this.log,
      WORKER_NAME: name,
    });
    child.name = name;
    this.workers.push(child);
    return child;
  }

  /** SIGKILLs a worker and records when, so its unfinished executions end there in the overlap count. */
  async kill(worker: Child): Promise<void> {
    await worker.kill('SIGKILL');
    appendFileSync(this.log, JSON.stringify({ worker: worker.name, pid: worker.process.pid, t: Date.now(), event: 'killed' }) + '\n');
  }

  client(address = this.addresses()): Client {
    return new Client({ address });
  }

  async counts(queue: string): Promise<Record<string, number>> {
    const rows = await query<{ status: string; n: number }>(
      this.databaseUrl,
      `select status, count(*)::int as n from baton_jobs where queue = $1 group by status`,
      [queue],
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async waitAllTerminal(queue: string, timeoutMs = 90_000): Promise<void> {
    await eventually(
      async () => {
        const c = await this.counts(queue).catch(() => ({}) as Record<string, number>);
        return !c.pending && !c.scheduled && !c.running && Object.keys(c).length > 0;
      },
      timeoutMs,
      `every ${queue} job to be terminal`,
    );
  }

  /** Waits for the first completion after `since` (ms epoch), and returns when it happened. */
  async firstCompletionAfter(queue: string, since: number, timeoutMs = 60_000): Promise<number> {
    return eventually(
      async () => {
        const rows = await query<{ at: Date }>(
          this.databaseUrl,
          `select min(c.at) as at from chaos_completions c join baton_jobs j on j.id = c.job_id
           where j.queue = $1 and c.at > to_timestamp($2::float8 / 1000)`,
          [queue, since],
        ).catch(() => []);
        return rows[0]?.at ? new Date(rows[0].at).getTime() : 0;
      },
      timeoutMs,
      'a completion after the fault',
    );
  }

  executions(): Execution[] {
    return readLog(this.log);
  }

  /** The standard checks, as figures; the scenario's test asserts on them. */
  async figures(options: {
    scenario: string;
    queue: string;
    jobs: number;
    faults: number;
    limit?: number;
    recoveryMs?: number | null;
    /** The status every job of the scenario must end in. @defaultValue 'completed' */
    expected?: 'completed' | 'cancelled';
  }): Promise<Figures> {
    const counts = await this.counts(options.queue);
    const [{ doubles }] = await query<{ doubles: number }>(
      this.databaseUrl,
      `select count(*)::int as doubles from (select job_id from chaos_completions group by job_id having count(*) > 1) d`,
    );
    const starts = this.executions().filter((e) => e.event === 'start');
    const perJob = new Map<string, number>();
    for (const start of starts) perJob.set(start.id!, (perJob.get(start.id!) ?? 0) + 1);
    const figures: Figures = {
      scenario: `${options.scenario} [${this.via} port]`,
      jobs: options.jobs,
      faults: options.faults,
      // Every chaos job is meant to complete (they get attempts to spare), or be cancelled in a cancel
      // scenario, so anything else is lost.
      lost: options.jobs - (counts[options.expected ?? 'completed'] ?? 0),
      doubleCompletions: doubles,
      reExecuted: [...perJob.values()].filter((n) => n > 1).length,
      executions: starts.length,
      maxConcurrent: maxOverlap(this.executions()),
      limit: options.limit ?? null,
      recoveryMs: options.recoveryMs ?? null,
      elapsedMs: Date.now() - this.#started,
    };
    mkdirSync(path.dirname(RESULTS), { recursive: true });
    appendFileSync(RESULTS, JSON.stringify({ at: new Date().toISOString(), ...figures }) + '\n');
    return figures;
  }

  async stop(): Promise<void> {
    for (const child of [...this.workers, ...this.brokers.map((b) => b.child)]) {
      child.process.kill('SIGCONT');
      await child.kill();
    }
  }
}
