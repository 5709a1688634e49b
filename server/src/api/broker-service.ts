import { create } from '@bufbuild/protobuf';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import { Broker, type WatchResponse, WatchResponseSchema } from '@baton/worker-sdk/gen/broker';
import { JobSchema } from '@baton/worker-sdk/gen/job';
import type { LeaseResponse } from '@baton/worker-sdk/gen/lease';
import type { BrokerConfig } from '../config.ts';
import { AsyncQueue } from '../core/async-queue.ts';
import type { Dispatcher } from '../core/dispatcher.ts';
import { failedPrecondition, invalidArgument, notFound, resourceExhausted } from '../core/errors.ts';
import { LeaseSession, PROTOCOL_VERSION } from '../core/lease-session.ts';
import { enqueueHandingOff } from '../core/handoff.ts';
import type { JobObserver } from '../core/observer.ts';
import { isBigintText } from '../domain/ids.ts';
import type { Enqueued, JobRecord, JobSummary, NewJob } from '../domain/job.ts';
import { isTerminal } from '../domain/job-status.ts';
import { TRANSITIONS } from '../domain/state-machine.ts';
import { createGroupCommit } from '../lib/group-commit.ts';
import type { Logger } from '../logger.ts';
import type { BrokerMetrics } from '../metrics/broker-metrics.ts';
import type { StoreDriver } from '../store/driver.ts';
import type { JobEvent, Notifier } from '../store/notifier.ts';
import { checkJobId, checkQueueName, describeStatuses, statusesFromWire, statusToWire, toNewJob, toWireJob } from './convert.ts';

export const VERSION = '0.1.0';

export interface BrokerServiceDeps {
  config: BrokerConfig;
  store: StoreDriver;
  dispatcher: Dispatcher;
  notifier: Notifier;
  logger: Logger;
  brokerId: string;
  /** Counters of what this broker's RPCs did (see server/src/metrics). */
  metrics?: Pick<BrokerMetrics, 'enqueued' | 'cancelled' | 'retried'>;
  /** Told as jobs start and finish on this broker's Lease streams. */
  observer?: JobObserver;
}

interface OpenStream {
  session: LeaseSession;
  out: AsyncQueue<LeaseResponse>;
}

/**
 * `baton.v1.Broker`: the producer RPCs, Watch and the Lease stream. Also owns the set of open
 * streams, so that shutdown can drain them.
 */
export function createBrokerService(deps: BrokerServiceDeps) {
  const { config, store, dispatcher, notifier, logger, brokerId, metrics, observer } = deps;
  const limits = { maxPayloadBytes: config.maxPayloadBytes };
  const streams = new Set<OpenStream>();
  const watchers = new Set<AsyncQueue<WatchResponse>>();
  let accepting = true;
  // Concurrent single enqueues share INSERTs (group commit). A job that a waiting stream can take is
  // handed to it by the insert itself; for the others the dispatcher is woken directly rather than
  // by the NOTIFY coming back, so a waiting worker gets the job a round trip sooner.
  const enqueueTogether = createGroupCommit((jobs: NewJob[]) => enqueueHandingOff({ jobs, store, dispatcher }), { maxInFlight: 2, maxItems: 1000 });

  async function requireJob(id: string): Promise<JobRecord> {
    const job = await store.jobGet({ id: checkJobId(id) });
    if (!job) throw notFound(`job ${id} does not exist (it may have been pruned after its retention period)`);
    return job;
  }

  /** Counts and logs a stored job; repeats of an idempotency key were stored earlier. */
  function counted({ job, duplicate }: Enqueued<JobSummary>): void {
    if (duplicate) return;
    metrics?.enqueued.inc({ queue: job.queue });
    logger.debug('job enqueued', { job: job.id, queue: job.queue, status: job.status });
  }

  const impl: ServiceImpl<typeof Broker> = {
    async enqueue(request) {
      const [stored] = await enqueueTogether([toNewJob(request, limits)]);
      if (stored.job.status === 'pending') dispatcher.wake(stored.job.queue);
      counted(stored);
      return { job: toWireJob(stored.job), duplicate: stored.duplicate };
    },

    async enqueueBatch(request) {
      if (request.jobs.length === 0) throw invalidArgument('jobs must hold at least one job');
      if (request.jobs.length > config.maxBatchSize) {
        throw resourceExhausted(`a batch holds at most ${config.maxBatchSize} jobs, got ${request.jobs.length}; split it`);
      }
      const jobs = request.jobs.map((job, index) => toNewJob(job, limits, `jobs[${index}].`));
      // Ids only: the jobs are not read back and decoded, only their ids, queues and statuses.
      const toWire = request.idsOnly
        ? (job: JobSummary) => create(JobSchema, { id: job.id, queue: job.queue, status: statusToWire(job.status) })
        : (job: JobSummary) => toWireJob(job as JobRecord);
      const stored: Enqueued<JobSummary>[] = await (request.idsOnly ? store.jobEnqueueSummaries({ jobs }) : store.jobEnqueue({ jobs }));
      for (const queue of new Set(jobs.map((job) => job.queue))) dispatcher.wake(queue);
      stored.forEach(counted);
      return { jobs: stored.map(({ job, duplicate }) => ({ job: toWire(job), duplicate })) };
    },

    async get(request) {
      return { job: toWireJob(await requireJob(request.id)) };
    },

    async list(request) {
      if (request.pageSize < 0 || request.pageSize > config.maxPageSize) {
        throw invalidArgument(`page_size must be 1-${config.maxPageSize}, or 0 for 50; got ${request.pageSize}`);
      }
      const limit = request.pageSize || 50;
      const queue = request.queue ? checkQueueName(request.queue) : undefined;
      const statuses = statusesFromWire(request.statuses, 'statuses');
      const beforeId = request.pageToken ? decodePageToken(request.pageToken) : undefined;
      const jobs = await store.jobList({ queue, statuses, limit: limit + 1, beforeId });
      const page = jobs.slice(0, limit);
      return {
        jobs: page.map(toWireJob),
        nextPageToken: jobs.length > limit ? encodePageToken(page[page.length - 1].id) : '',
      };
    },

    async cancel(request) {
      const id = checkJobId(request.id);
      const job = await store.jobCancel({ id });
      if (job) {
        if (job.status === 'cancelled') metrics?.cancelled.inc({ queue: job.queue });
        logger.info(job.status === 'cancelled' ? 'job cancelled' : 'job cancel requested: telling its worker', { job: id, queue: job.queue });
        return { job: toWireJob(job) };
      }
      const existing = await requireJob(id);
      throw failedPrecondition(`job ${id} is ${existing.status.toUpperCase()}: only ${describeStatuses(CANCELLABLE)} jobs can be cancelled`);
    },

    async retry(request) {
      const id = checkJobId(request.id);
      const job = await store.jobRetry({ id });
      if (job) {
        metrics?.retried.inc({ queue: job.queue, trigger: 'manual' });
        logger.info('job retried', { job: id, queue: job.queue });
        return { job: toWireJob(job) };
      }
      const existing = await requireJob(id);
      throw failedPrecondition(`job ${id} is ${existing.status.toUpperCase()}: only ${describeStatuses(TRANSITIONS.retry.from)} jobs can be retried`);
    },

    async *watch(request, context) {
      if (Boolean(request.id) === Boolean(request.queue)) throw invalidArgument('give exactly one of id or queue');
      // Checked before anything is registered, and a Watch refused below unregisters in `finally`:
      // refused calls must leave no listener behind.
      const queue = request.queue ? checkQueueName(request.queue) : '';
      const id = queue ? '' : checkJobId(request.id);
      const out = new AsyncQueue<WatchResponse>();
      watchers.add(out);
      const stop = () => out.end();
      context.signal.addEventListener('abort', stop);
      let onEvent: (event: JobEvent) => void = () => {};
      let onReconnected = () => {};
      let watching = true;
      let renewal: NodeJS.Timeout | undefined;
      // Claims announce only jobs of watched queues: mark this one while open.
      const keepWatched = async (name: string) => {
        const exists = await store.queueWatch({ queue: name });
        if (!watching) return;
        renewal = setTimeout(() => keepWatched(name).catch((error) => logger.warn('could not renew a Watch', { queue: name, error })), exists ? WATCH_RENEW_MS : WATCH_RETRY_MS);
        renewal.unref();
      };
      try {
        if (queue) {
          onEvent = (event) => {
            if (event.queue !== queue) return;
            for (const id of event.ids) {
              out.push(create(WatchResponseSchema, { job: { id, queue, status: statusToWire(event.status) } }));
            }
          };
        } else {
          let last = '';
          let chain = Promise.resolve();
          // Re-reads the job and sends it if anything a watcher cares about changed.
          const refresh = (job?: JobRecord) => {
            chain = chain.then(async () => {
              const current = job ?? (await store.jobGet({ id }));
              if (!current) return out.end();
              const signature = `${current.status}/${current.attempt}/${current.cancelRequested}`;
              if (signature !== last) {
                last = signature;
                out.push(create(WatchResponseSchema, { job: toWireJob(current) }));
              }
              if (isTerminal(current.status)) out.end();
            }).catch((error) => out.end(error));
          };
          onEvent = (event) => {
            if (event.ids.includes(id)) refresh();
          };
          onReconnected = () => refresh();
          await keepWatched((await requireJob(id)).queue);
          notifier.on('job', onEvent);
          notifier.on('reconnected', onReconnected);
          refresh(); // read after the mark: a change before it is in this read, one after it is announced
        }
        if (queue) {
          await keepWatched(queue);
          notifier.on('job', onEvent);
        }
        yield* out;
      } finally {
        watching = false;
        clearTimeout(renewal);
        notifier.off('job', onEvent);
        notifier.off('reconnected', onReconnected);
        context.signal.removeEventListener('abort', stop);
        watchers.delete(out);
      }
    },

    async *lease(requests, context) {
      if (!accepting) throw new ConnectError('this broker is shutting down; connect to another broker', Code.Unavailable);
      const out = new AsyncQueue<LeaseResponse>();
      const session = new LeaseSession({
        store,
        dispatcher,
        logger,
        brokerId,
        leaseTtlMs: config.leaseTtlMs,
        heartbeatIntervalMs: config.heartbeatIntervalMs,
        maxPayloadBytes: config.maxPayloadBytes,
        maxCredits: config.maxCreditsPerStream,
        send: (message) => out.push(message),
        observer,
      });
      const stream = { session, out };
      streams.add(stream);
      let reason = 'stream closed by the worker';
      const onAbort = () => {
        reason = 'stream lost';
        out.end();
      };
      context.signal.addEventListener('abort', onAbort);
      void (async () => {
        try {
          for await (const message of requests) await session.receive(message);
          out.end();
        } catch (error) {
          reason = `stream failed: ${error instanceof Error ? error.message : String(error)}`;
          out.end(error);
        }
      })();
      try {
        yield* out;
      } finally {
        context.signal.removeEventListener('abort', onAbort);
        // Streams ended by a drain were ended by the broker, not by the worker.
        const why = accepting ? reason : 'released at broker shutdown: not reported within the drain deadline';
        await session.close(why).catch((error) => logger.warn('could not release a closed session', { error }));
        // Only now: shutdown waits for `streams` to empty before it closes the database pool.
        streams.delete(stream);
      }
    },

    async getServerInfo() {
      return {
        version: VERSION,
        protocolVersion: PROTOCOL_VERSION,
        capabilities: ['batch', 'cancel', 'drain', 'progress', 'heartbeat-fencing', 'retry-after'],
        leaseTtl: durationFromMs(config.leaseTtlMs),
        maxPayloadBytes: BigInt(config.maxPayloadBytes),
      };
    },
  };

  /**
   * Tells every worker to drain, waits until they have reported what they hold (or the deadline
   * passes), then ends their streams; their sessions release whatever is left.
   */
  async function drain(deadlineMs: number): Promise<void> {
    accepting = false;
    for (const { session } of streams) session.drain(deadlineMs);
    const deadline = Date.now() + deadlineMs;
    while ([...streams].some(({ session }) => session.heldCount > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const { out } of streams) out.end();
    for (const watcher of watchers) watcher.end();
    while (streams.size > 0 && Date.now() < deadline + 2000) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  return { impl, drain, streams };
}

/** What Cancel acts on: cancelled at once, or (RUNNING) asked of its holder. */
const CANCELLABLE = [...TRANSITIONS.cancel.from, ...TRANSITIONS.requestCancel.from];

/** How often an open Watch renews its queue's mark (which lasts 60 s, see the store's queueWatch). */
const WATCH_RENEW_MS = 20_000;
/** How soon a Watch on a queue that does not exist yet tries to mark it again. */
const WATCH_RETRY_MS = 1_000;

function encodePageToken(lastId: string): string {
  return Buffer.from(`before:${lastId}`).toString('base64url');
}

function decodePageToken(token: string): string {
  const decoded = Buffer.from(token, 'base64url').toString();
  const match = /^before:(\d+)$/.exec(decoded);
  if (!match || !isBigintText(match[1])) throw invalidArgument('page_token is not one this broker issued; pass next_page_token from the previous page');
  return match[1];
}
