/**
 * The seam between the scenarios and the queues they measure. Each system (Baton and every peer)
 * lives in one file under peers/ and exports two things: `create…System`, the producer side that
 * runs in the benchmark process, and `createConsumer`, the worker side that runs in separate worker
 * processes (worker-host.ts), so that every system's workers pay for their own process as Baton's do.
 */

/** The payload of every benchmark job: a number, and for latency jobs a sequence number. */
export interface BenchPayload {
  i: number;
  /** Set on latency (scenario C) jobs: the worker reports when this job's handler starts. */
  seq?: number;
}

/** The queue every scenario uses, in every system. */
export const QUEUE = 'bench';

/** What a worker process needs to consume a system's queue; must survive JSON. */
export interface WorkerSetup {
  /** File name under bench/peers/ whose `createConsumer` the worker host calls. */
  peer: string;
  /** Connection strings and tuning, passed to `createConsumer` as is. */
  config: Record<string, unknown>;
  /** Extra environment of the worker processes. */
  env?: Record<string, string>;
}

/** A baseline taken before a drain, compared with after; opaque to the scenarios. */
export type Mark = number;

export interface DrainProgress {
  /** Handlers finished across all worker processes. */
  handled: number;
  /** Largest numeric job id handled (systems with ordered numeric ids), else NaN. */
  maxId: number;
}

export interface System {
  /** Column title. */
  readonly name: string;
  /** Storage: 'postgres' peers share Baton's database server; 'redis' ones do not. */
  readonly storage: 'postgres' | 'redis';
  /** Creates the database (or key prefix), installs the schema, starts servers. Called once. */
  setup(): Promise<void>;
  /**
   * Empties the queue between repetitions (the backlog scenario does not call it). With
   * `keepHistory` (scenario F) only the live jobs go: the finished jobs `insertHistory` added stay.
   */
  reset(options?: { keepHistory?: boolean }): Promise<void>;
  /** Enqueues one job with the system's ordinary single-job call; resolves once it is stored. */
  enqueue(payload: BenchPayload): Promise<void>;
  /**
   * Enqueues one job with one RPC of its own, where the system's client would otherwise send calls
   * made together in one (Baton's `coalesceEnqueues: false`). Absent elsewhere.
   */
  enqueueEachAlone?(payload: BenchPayload): Promise<void>;
  /** Enqueues many jobs with the system's own batch call (one round trip). */
  enqueueBatch(payloads: BenchPayload[]): Promise<void>;
  /** Adds `n` waiting jobs as fast as the storage allows (SQL INSERT … SELECT generate_series, or bulk). */
  insertBacklog(n: number): Promise<void>;
  /**
   * Adds `n` completed jobs to what the system keeps of finished jobs (scenario F), finished over
   * the last few days, with SQL, calling `onChunk` with the rows so far after each chunk. Absent for
   * systems that keep no finished jobs (graphile-worker deletes them) or where filling is not simple.
   */
  insertHistory?(n: number, onChunk: (done: number) => void): Promise<void>;
  /** The system's own call for the queue's counts by status (Baton's GetQueueStats), if it has one. */
  queueStats?(): Promise<void>;
  /** One scrape of the server's Prometheus endpoint (Baton's `/metrics`), if it has one. */
  scrapeMetrics?(): Promise<void>;
  /**
   * Starts `count` more servers on the same storage (Baton: brokers on the same database) for the
   * scaling drain; absent for systems without servers of their own.
   */
  addServers?(count: number): Promise<ServerGroup>;
  /**
   * Fair keys (scenario G): claims take the jobs' concurrency keys in turn. Absent for systems
   * without them (graphile-worker, pg-boss and BullMQ have no free equivalent; BullMQ Pro's groups
   * are paid).
   */
  setFairKeys?(on: boolean): Promise<void>;
  /** Enqueues a batch whose jobs carry a concurrency key each (scenario G), in one call. */
  enqueueKeyedBatch?(jobs: { payload: BenchPayload; key: string }[]): Promise<void>;
  /** A baseline for `drained`. */
  mark(): Promise<Mark>;
  /** True once at least `n` jobs have been completed durably since `mark`. */
  drained(mark: Mark, n: number, progress: DrainProgress): Promise<boolean>;
  /** What worker processes are given. */
  readonly worker: WorkerSetup;
  /** The server process whose memory and CPU the idle scenario reads (Baton's broker, Redis), if any. */
  serverPid(): Promise<number | undefined>;
  /** Restarts the server process, so that idle readings start from a fresh one (Baton only). */
  restartServer?(): Promise<void>;
  /** Idle-stream setup: the worker config for `streams` idle connections per process, or undefined if not meaningful. */
  idleWorker?(streamsPerProcess: number): WorkerSetup;
  close(): Promise<void>;
}

/** The system's server and the ones `addServers` started, for one scaling step. */
export interface ServerGroup {
  /** One worker setup per server, the system's own first: worker process i connects to server i. */
  workers: WorkerSetup[];
  /** Every server's process id (for CPU readings). */
  pids: number[];
  /** Stops the added servers. */
  close(): Promise<void>;
}

/** What a consumer calls around each job's handler. */
export interface ConsumerHooks {
  /** Jobs this process may run at once. */
  concurrency: number;
  /** The handler started (before doing anything else). `id` is the system's job id. */
  onStart(payload: BenchPayload, id: string): void;
  /** The handler is done (its result not necessarily stored yet). */
  onEnd(id: string): void;
}

export interface Consumer {
  /** Starts consuming; resolves once connected and taking jobs. */
  start(): Promise<void>;
  /** Stops gracefully. */
  stop(): Promise<void>;
}

export type CreateConsumer = (config: Record<string, unknown>, hooks: ConsumerHooks) => Promise<Consumer>;

/**
 * Connections a Postgres peer's producer may open: as many as the calls in flight in the single-call
 * enqueue scenario, so no peer waits on its own pool. (Baton's broker keeps its default pool.)
 */
export const PRODUCER_CONNECTIONS = 50;

/** Scenario F's finished jobs finished over this many days before the run (a day partition each, for Baton). */
export const HISTORY_DAYS = 3;
/** Rows per statement when filling the history: a progress line each, and no transaction of 10,000,000 rows. */
export const HISTORY_CHUNK = 1_000_000;
