import type { EventEmitter } from 'node:events';
import type { JobRecord } from '../domain/job.ts';
import { isTerminal, type JobStatus } from '../domain/job-status.ts';
import { type Clock, realClock, type Timer } from '../lib/clock.ts';
import type { Logger } from '../logger.ts';
import type { StoreDriver } from '../store/driver.ts';
import type { JobEvent, NotificationEvents } from '../store/notification-listener.ts';
import { AsyncQueue } from './async-queue.ts';
import { requireJob } from './require-job.ts';

/** A job of a watched queue that entered a status. */
export interface JobChange {
  id: string;
  queue: string;
  status: JobStatus;
}

export interface WatchHubOptions {
  store: Pick<StoreDriver, 'jobGet' | 'queueWatch'>;
  /** The NotificationListener, or any emitter of its events. */
  notifications: EventEmitter<NotificationEvents>;
  logger: Logger;
  /** Arms the renewals of queue marks; the real clock unless a test moves time. */
  clock?: Clock;
  /** How often an open watch renews its queue's mark (which lasts 60 s, see the store's queueWatch). */
  renewMs?: number;
  /** How soon a watch of a queue that does not exist yet tries to mark it again. */
  retryMs?: number;
  /**
   * When a job's watch reads the job again after marking its queue, besides on every announcement:
   * a completion whose statement began before the mark was committed does not see the mark, and so
   * does not announce (completions announce only for watched or limited queues). Such a statement
   * commits within milliseconds; the last re-read repeats while the watch is open, a bound on how
   * late any missed change is shown.
   */
  settleMs?: readonly number[];
}

const RENEW_MS = 20_000;
const RETRY_MS = 1_000;
const SETTLE_MS = [1_000, 5_000, 30_000];

/**
 * The fan-out of the notifications's job events to open Watch streams: one subscription to the
 * notifications while any watch is open, each event handed to the watches of its queue or its jobs.
 * A watch is an async iterable of domain values that ends when its job is finished, when its
 * `signal` aborts, or at `endAll` (shutdown); the api layer turns each value into a message.
 */
export function createWatchHub(options: WatchHubOptions) {
  const { store, notifications, logger } = options;
  const clock = options.clock ?? realClock;
  const renewMs = options.renewMs ?? RENEW_MS;
  const retryMs = options.retryMs ?? RETRY_MS;
  const settleMs = options.settleMs ?? SETTLE_MS;
  const open = new Set<AsyncQueue<unknown>>();
  const byQueue = new Map<string, Set<(event: JobEvent) => void>>();
  /** Re-reads of watched jobs, by job id. */
  const byJob = new Map<string, Set<() => void>>();
  let subscribed = false;

  const onJob = (event: JobEvent) => {
    for (const forward of byQueue.get(event.queue) ?? []) forward(event);
    // One re-read per watch, however often the event names its job.
    const refreshes = new Set<() => void>();
    for (const id of event.ids) for (const refresh of byJob.get(id) ?? []) refreshes.add(refresh);
    for (const refresh of refreshes) refresh();
  };
  // Notifications may have been lost while the LISTEN connection was down: read every watched job again.
  const onReconnected = () => {
    for (const refreshes of byJob.values()) for (const refresh of refreshes) refresh();
  };

  function join<T>(index: Map<string, Set<T>>, key: string, member: T): () => void {
    let members = index.get(key);
    if (!members) index.set(key, (members = new Set()));
    members.add(member);
    if (!subscribed) {
      subscribed = true;
      notifications.on('job', onJob);
      notifications.on('reconnected', onReconnected);
    }
    return () => {
      members.delete(member);
      if (members.size === 0 && index.get(key) === members) index.delete(key);
      if (subscribed && byQueue.size === 0 && byJob.size === 0) {
        subscribed = false;
        notifications.off('job', onJob);
        notifications.off('reconnected', onReconnected);
      }
    };
  }

  /**
   * An open watch's output, ended by its caller's signal or by `endAll`, and the mark that makes
   * claims announce its queue's jobs (renewed while the watch is open).
   */
  function openWatch<T>(signal: AbortSignal) {
    const out = new AsyncQueue<T>();
    open.add(out);
    const stop = () => out.end();
    signal.addEventListener('abort', stop);
    let watching = true;
    let renewal: Timer | undefined;
    const keepMarked = async (queue: string): Promise<void> => {
      const exists = await store.queueWatch({ queue });
      if (!watching) return;
      const renew = () => keepMarked(queue).catch((error) => logger.warn('could not renew a Watch', { queue, error }));
      renewal = clock.setTimer(renew, exists ? renewMs : retryMs, { unref: true });
    };
    const close = () => {
      watching = false;
      renewal?.cancel();
      signal.removeEventListener('abort', stop);
      open.delete(out);
    };
    return { out, keepMarked, close };
  }

  /** Every job of `queue` that enters a status, as the notifications announces it, until the watch ends. */
  async function* followQueue(queue: string, signal: AbortSignal): AsyncIterable<JobChange> {
    const watch = openWatch<JobChange>(signal);
    let leave = () => {};
    try {
      await watch.keepMarked(queue);
      leave = join(byQueue, queue, (event) => {
        for (const id of event.ids) watch.out.push({ id, queue, status: event.status });
      });
      yield* watch.out;
    } finally {
      watch.close();
      leave();
    }
  }

  /**
   * The job as it is now, then again each time its status, attempt or cancel request changes,
   * until it is finished (or gone). Throws NOT_FOUND for a job that does not exist.
   */
  async function* followJob(id: string, signal: AbortSignal): AsyncIterable<JobRecord> {
    const watch = openWatch<JobRecord>(signal);
    let leave = () => {};
    let settling: Timer | undefined;
    try {
      let last = '';
      let chain = Promise.resolve();
      // Re-reads the job and passes it on if anything a watcher cares about changed.
      const refresh = (job?: JobRecord) => {
        chain = chain
          .then(async () => {
            const current = job ?? (await store.jobGet({ id }));
            if (!current) return watch.out.end();
            const signature = `${current.status}/${current.attempt}/${current.cancelRequested}`;
            if (signature !== last) {
              last = signature;
              watch.out.push(current);
            }
            if (isTerminal(current.status)) watch.out.end();
          })
          .catch((error) => watch.out.end(error));
      };
      await watch.keepMarked((await requireJob(store, id)).queue);
      leave = join(byJob, id, () => refresh());
      refresh(); // read after the mark: a change before it is in this read, one after it is announced
      const settle = (step: number): void => {
        settling = clock.setTimer(
          () => {
            refresh();
            settle(Math.min(step + 1, settleMs.length - 1));
          },
          settleMs[step],
          { unref: true },
        );
      };
      if (settleMs.length > 0) settle(0);
      yield* watch.out;
    } finally {
      settling?.cancel();
      watch.close();
      leave();
    }
  }

  /** Ends every open watch (shutdown): their streams end cleanly. */
  function endAll(): void {
    for (const out of open) out.end();
  }

  return { followQueue, followJob, endAll };
}

export type WatchHub = ReturnType<typeof createWatchHub>;
