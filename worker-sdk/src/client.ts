// The producer's and operator's side: enqueue jobs, read and steer them, await results, administer
// queues. Every method returns plain objects (see job.ts) and rejects with BatonError on RPC errors.

import { Admin } from './gen/baton/v1/admin_pb.ts';
import { Broker } from './gen/baton/v1/broker_pb.ts';
import { durationFromMs, durationMs } from '@bufbuild/protobuf/wkt';
import { backoffDelay, sleep } from './backoff.ts';
import { type BulkActionName, type BulkFilter, type BulkOptions, type BulkResult, toBulkRequest } from './bulk.ts';
import type { ConnectionOptions } from './connection.ts';
import { BatonError, JobCancelledError, JobFailedError } from './errors.ts';
import { toEnqueueRequest, type EnqueueItem, type EnqueueOptions } from './enqueue.ts';
import { createEnqueueCoalescer, type EnqueueCall } from './enqueue-coalescer.ts';
import { isTerminal, statusValue, toJob, type Job, type JobStatusName } from './job.ts';
import type { JsonValue } from './json.ts';
import { toQueueSettings, toQueueStats, type QueueSettings, type QueueStats, type RateLimit } from './queue.ts';
import { type ListSchedulesOptions, type Schedule, type ScheduleOptions, toSchedule, toScheduleMessage, type UpsertedSchedule } from './schedule.ts';
import { traceEnqueue } from './tracing.ts';
import { createTransport, type ServiceClient, type Transport } from './transport.ts';
import { SDK_NAME } from './version.ts';

/** Options of a Client: where the brokers are and how to reach them. */
export interface ClientOptions extends ConnectionOptions {
  /**
   * Send `enqueue()` calls made while two are in flight together, as one EnqueueBatch (each call
   * still gets its own job, `duplicate` and error; see the SDK's README). `false` sends one Enqueue
   * per call. @defaultValue true
   */
  coalesceEnqueues?: boolean;
}

/** A job just enqueued. */
export interface EnqueuedJob extends Job {
  /** True when the idempotency key matched an earlier job, which is the one returned. */
  duplicate: boolean;
}

/** Filters and paging of `list`. */
export interface ListOptions {
  /** Only this queue. */
  queue?: string;
  /** Only these statuses. */
  statuses?: JobStatusName[];
  /** 1..1000. @defaultValue 50 */
  pageSize?: number;
  /** `nextPageToken` of the previous page. */
  pageToken?: string;
}

/** One page of `list`, newest first. */
export interface JobPage {
  jobs: Job[];
  /** Pass as `pageToken` for the next page; absent on the last page. */
  nextPageToken?: string;
}

/** What this broker speaks. */
export interface ServerInfo {
  version: string;
  protocolVersion: number;
  capabilities: string[];
  leaseTtlMs?: number;
  maxPayloadBytes: number;
}

/** Something to stop waiting on. */
export interface WaitOptions {
  /** Aborting stops the wait; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Talks to the brokers as a producer or operator. Connects lazily on the first call and reconnects by
 * itself; `close()` when done so the process can exit.
 *
 * @example
 * const client = new Client({ address: "localhost:7700" });
 * const job = await client.enqueue("fibonacci", { n: 303 });
 * console.log(await client.result(job.id));
 */
export class Client {
  readonly #options: ClientOptions;
  #transport: Transport | undefined;
  #broker: ServiceClient<typeof Broker> | undefined;
  #admin: ServiceClient<typeof Admin> | undefined;
  #enqueueCall: EnqueueCall | undefined;

  constructor(options: ClientOptions = {}) {
    this.#options = { ...options };
  }

  /** The Broker RPCs, opening the channel on first use (constructors touch no network). */
  get #rpc(): ServiceClient<typeof Broker> {
    this.#open();
    return this.#broker!;
  }

  /** One job's Enqueue, alone or in the next batch (`coalesceEnqueues`). */
  get #enqueue(): EnqueueCall {
    this.#open();
    return this.#enqueueCall!;
  }

  get #adminRpc(): ServiceClient<typeof Admin> {
    this.#open();
    return this.#admin!;
  }

  #open(): void {
    if (this.#transport) return;
    this.#transport = createTransport(this.#options, SDK_NAME);
    this.#broker = this.#transport.client(Broker);
    this.#admin = this.#transport.client(Admin);
    const broker = this.#broker;
    this.#enqueueCall =
      this.#options.coalesceEnqueues === false
        ? (request) => broker.enqueue(request)
        : createEnqueueCoalescer({
            one: (request) => broker.enqueue(request),
            many: async (jobs) => (await broker.enqueueBatch({ jobs, idsOnly: false })).jobs,
          });
  }

  /**
   * Stores one job (durably) and returns it. `payload` is any JSON value. Traced as a PRODUCER span
   * whose context becomes the job's `traceparent` unless `options.traceparent` is given.
   */
  async enqueue(queue: string, payload: unknown, options?: EnqueueOptions): Promise<EnqueuedJob> {
    const request = toEnqueueRequest(queue, payload, options);
    return traceEnqueue(
      [queue],
      async (traceparent) => {
        const res = await this.#enqueue({ ...request, traceparent: request.traceparent || traceparent || '' });
        return { ...toJob(res.job!), duplicate: res.duplicate };
      },
      (job) => [job.id],
    );
  }

  /**
   * Stores many jobs in one transaction: all or none. With `idsOnly`, the broker returns only ids and
   * statuses (far less to send back for large batches); the other fields are then empty.
   */
  async enqueueBatch(jobs: EnqueueItem[], options: { idsOnly?: boolean } = {}): Promise<EnqueuedJob[]> {
    const requests = jobs.map(({ queue, payload, ...o }) => toEnqueueRequest(queue, payload, o));
    return traceEnqueue(
      jobs.map((job) => job.queue),
      async (traceparent) => {
        const res = await this.#rpc.enqueueBatch({
          jobs: requests.map((r) => ({ ...r, traceparent: r.traceparent || traceparent || '' })),
          idsOnly: options.idsOnly ?? false,
        });
        return res.jobs.map((r) => ({ ...toJob(r.job!), duplicate: r.duplicate }));
      },
      (result) => result.map((job) => job.id),
    );
  }

  /** One job with its result and every attempt's error; BatonError NOT_FOUND if unknown. */
  async get(id: string): Promise<Job> {
    return toJob((await this.#rpc.get({ id })).job!);
  }

  /** Jobs newest first, filtered by queue and status, one page at a time. */
  async list(options: ListOptions = {}): Promise<JobPage> {
    const res = await this.#rpc.list({
      queue: options.queue ?? '',
      statuses: (options.statuses ?? []).map(statusValue),
      pageSize: options.pageSize ?? 0,
      pageToken: options.pageToken ?? '',
    });
    return { jobs: res.jobs.map(toJob), nextPageToken: res.nextPageToken || undefined };
  }

  /**
   * Cancels a job: pending or scheduled jobs are cancelled at once; a running job comes back with
   * `cancelRequested` and becomes cancelled when its handler stops.
   */
  async cancel(id: string): Promise<Job> {
    return toJob((await this.#rpc.cancel({ id })).job!);
  }

  /** Puts a failed or cancelled job back to pending with a fresh set of attempts. */
  async retry(id: string): Promise<Job> {
    return toJob((await this.#rpc.retry({ id })).job!);
  }

  /**
   * The job's current state, then each change, ending after the terminal one.
   *
   * @example
   * for await (const job of client.watch(id)) console.log(job.status);
   */
  async *watch(id: string, options: WaitOptions = {}): AsyncGenerator<Job> {
    for await (const res of this.#rpc.watch({ id }, { signal: options.signal })) {
      if (!res.job) continue;
      const job = toJob(res.job);
      yield job;
      if (isTerminal(job.status)) return;
    }
  }

  /**
   * Changes of a queue's jobs as they happen, until `signal` aborts or the stream breaks (it never
   * ends by itself). Each change carries only the job's id, queue and new status; read the job
   * with `get` for the rest. Meant for dashboards and `baton jobs --watch`: with many changes per
   * second, refresh on a timer rather than per change.
   */
  async *watchQueue(queue: string, options: WaitOptions = {}): AsyncGenerator<Pick<Job, 'id' | 'queue' | 'status'>> {
    for await (const res of this.#rpc.watch({ queue }, { signal: options.signal })) {
      if (!res.job) continue;
      const { id, status } = toJob(res.job);
      yield { id, queue: res.job.queue, status };
    }
  }

  /**
   * Waits for the job to finish and returns its result (parsed JSON). Rejects with JobFailedError
   * or JobCancelledError when it ended otherwise. Survives broker restarts: when the Watch stream
   * breaks (UNAVAILABLE, or it ends before a terminal state) it subscribes again with backoff.
   */
  async result<R = JsonValue>(id: string, options: WaitOptions = {}): Promise<R> {
    const { signal } = options;
    for (let failures = 0; ; failures++) {
      try {
        for await (const job of this.watch(id, { signal })) {
          failures = 0;
          if (job.status === 'completed') {
            // Snapshots should carry the result; fetch the job if this one did not.
            return (job.result !== undefined ? job.result : ((await this.get(id)).result ?? null)) as R;
          }
          if (job.status === 'failed') throw new JobFailedError(job);
          if (job.status === 'cancelled') throw new JobCancelledError(job);
        }
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        if (!(err instanceof BatonError) || err.code !== 'UNAVAILABLE') throw err;
      }
      await sleep(backoffDelay(failures, { initialMs: 100, maxMs: 5_000 }), signal);
      if (signal?.aborted) throw signal.reason;
    }
  }

  /**
   * Counts by status for the named queues, or all of them. With `throughputMinutes` (1-60), each
   * entry also holds the jobs completed and failed in each of the last that many minutes.
   */
  async queueStats(queues: string[] = [], options: { throughputMinutes?: number } = {}): Promise<QueueStats[]> {
    const res = await this.#adminRpc.getQueueStats({ queues, throughputMinutes: options.throughputMinutes ?? 0 });
    return res.queues.map(toQueueStats);
  }

  /** Every queue with its settings. */
  async queues(): Promise<QueueSettings[]> {
    return (await this.#adminRpc.listQueues({})).queues.map(toQueueSettings);
  }

  /** Stops handing out the queue's jobs; running ones finish, enqueue still works. */
  async pauseQueue(queue: string): Promise<QueueSettings> {
    return toQueueSettings((await this.#adminRpc.pauseQueue({ queue })).queue!);
  }

  /** Hands out the queue's jobs again. */
  async resumeQueue(queue: string): Promise<QueueSettings> {
    return toQueueSettings((await this.#adminRpc.resumeQueue({ queue })).queue!);
  }

  /** Sets the most jobs of the queue running at once across all brokers (0 = no limit). */
  /** Replaces an existing queue's rate limits; limits of 0 remove them. */
  async setRateLimit(queue: string, rate: RateLimit): Promise<QueueSettings> {
    const rateLimit = {
      limit: rate.limit,
      interval: durationFromMs(rate.intervalMs ?? 1000),
      keyLimit: rate.keyLimit ?? 0,
      keyInterval: durationFromMs(rate.keyIntervalMs ?? 1000),
    };
    return toQueueSettings((await this.#adminRpc.updateQueue({ queue, rateLimit })).queue!);
  }

  /** Turns fair keys on (with at most `keyConcurrency` RUNNING jobs per key; 0: no limit) or off (null). */
  async setFairKeys(queue: string, fair: { keyConcurrency?: number } | null): Promise<QueueSettings> {
    const change = fair ? { fairKeys: true, keyConcurrency: fair.keyConcurrency ?? 0 } : { fairKeys: false, keyConcurrency: 0 };
    return toQueueSettings((await this.#adminRpc.updateQueue({ queue, ...change })).queue!);
  }

  async setConcurrency(queue: string, concurrency: number): Promise<QueueSettings> {
    return toQueueSettings((await this.#adminRpc.setQueueConcurrency({ queue, concurrency })).queue!);
  }

  /**
   * One batch of a bulk action over the jobs `filter` matches (an admin key's call): at most
   * `options.limit` jobs, oldest first. Call again with the returned `cursor` until it is empty;
   * with `dryRun`, the same batches are counted and nothing changes.
   */
  async bulkAction(action: BulkActionName, filter: BulkFilter, options: BulkOptions = {}): Promise<BulkResult> {
    const res = await this.#adminRpc.bulkAction(toBulkRequest(action, filter, options));
    return { changed: Number(res.changed), cancelRequested: Number(res.cancelRequested), cursor: res.cursor };
  }

  /**
   * Creates the schedule `name`, or replaces its whole definition (an admin key's call). A new
   * schedule starts active; an existing one keeps its paused state. BatonError INVALID_ARGUMENT names
   * the field at fault (an expression croner cannot read, an unknown time zone, a missing queue).
   *
   * @example
   * await client.upsertSchedule("nightly-report", { queue: "reports", cron: "0 3 * * *", timeZone: "Europe/Paris" });
   */
  async upsertSchedule(name: string, options: ScheduleOptions): Promise<UpsertedSchedule> {
    const res = await this.#adminRpc.upsertSchedule({ schedule: toScheduleMessage(name, options) });
    return { ...toSchedule(res.schedule!), created: res.created };
  }

  /** Every schedule by name (or only `options.name`), with its next run times in its time zone. */
  async listSchedules(options: ListSchedulesOptions = {}): Promise<Schedule[]> {
    const res = await this.#adminRpc.listSchedules({ name: options.name ?? '', nextRuns: options.nextRuns ?? 0 });
    return res.schedules.map(toSchedule);
  }

  /** Stops the schedule's ticks; ticks that fall while it is paused never run. NOT_FOUND if unknown. */
  async pauseSchedule(name: string): Promise<Schedule> {
    return toSchedule((await this.#adminRpc.pauseSchedule({ name })).schedule!);
  }

  /** Ticks the schedule again from now on. NOT_FOUND if unknown. */
  async resumeSchedule(name: string): Promise<Schedule> {
    return toSchedule((await this.#adminRpc.resumeSchedule({ name })).schedule!);
  }

  /** Deletes the schedule and its record of ticks; the jobs it made stay. NOT_FOUND if unknown. */
  async deleteSchedule(name: string): Promise<void> {
    await this.#adminRpc.deleteSchedule({ name });
  }

  /**
   * Enqueues one job of the schedule now, tied to no tick (paused or not), and returns its id; it
   * becomes the schedule's latest job for its overlap policy. NOT_FOUND if unknown.
   */
  async triggerSchedule(name: string): Promise<string> {
    return (await this.#adminRpc.triggerSchedule({ name })).jobId;
  }

  /** The broker's version, protocol and capabilities. */
  async serverInfo(): Promise<ServerInfo> {
    const r = await this.#rpc.getServerInfo({});
    return {
      version: r.version,
      protocolVersion: r.protocolVersion,
      capabilities: [...r.capabilities],
      leaseTtlMs: r.leaseTtl ? durationMs(r.leaseTtl) : undefined,
      maxPayloadBytes: Number(r.maxPayloadBytes),
    };
  }

  /** Closes the channel and cancels the calls still open (a Watch ends with CANCELLED). Safe to call twice. */
  close(): void {
    this.#transport?.close();
    this.#transport = undefined;
    this.#broker = undefined;
    this.#admin = undefined;
  }
}
