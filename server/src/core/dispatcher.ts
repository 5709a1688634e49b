import type { Logger } from '../logger.ts';
import type { Assignment } from '../domain/job.ts';
import { isPlainQueue, type QueueSettings } from '../domain/queue.ts';
import type { StoreDriver } from '../store/driver.ts';
import type { CancelEvent, JobEvent, NotificationListener } from '../store/notification-listener.ts';

/** A Lease stream as the dispatcher sees it: something with credit that takes jobs. */
export interface Consumer {
  readonly sessionId: string;
  readonly workerId: string;
  readonly queues: readonly string[];
  /** Jobs it can take now (credits granted, bounded by capacity and the drain state). */
  credit(): number;
  /**
   * Sets aside up to `wanted` of its credit for a claim from `queue` and returns how much, so that
   * claims of several queues running at once cannot together exceed it. A queue that got nothing
   * only because other claims held the credit is woken again when they hand back what they did not use.
   */
  reserve(wanted: number, queue: string): number;
  /** Hands over claimed jobs against a reservation of `reserved`; the unused rest is returned. */
  deliver(jobs: Assignment[], reserved: number): void;
  /** Tells the holder of `token` to stop; false when this consumer does not hold it. */
  cancel(event: CancelEvent): boolean;
}

/** What the dispatcher asks of the store: queue settings, and claims. */
export type DispatcherStore = Pick<StoreDriver, 'queueGet' | 'jobClaim'>;

/** Largest claim per statement: big enough to amortise the round trip, small enough to share fairly. */
const MAX_CLAIM = 500;

/**
 * How long, and how many, cancels that found no holder are kept in case the holder is a claim of
 * this broker whose answer has not arrived yet (the claim's answer and the cancel's notification
 * come over two connections, in either order). Most belong to other brokers' streams and are
 * dropped unused; the heartbeat passes on any cancel this misses (see server/src/store/sql/heartbeat.ts).
 */
const EARLY_CANCEL_MS = 30_000;
const MAX_EARLY_CANCELS = 10_000;

/**
 * Hands runnable jobs to this broker's Lease streams. One claim loop per queue runs at a time (a
 * wake-up during a round marks the queue for another round instead of starting a second loop).
 * Rounds start on notifications (a job of the queue became runnable, a slot freed, the queue's
 * settings changed), on new credit, and on a jittered fallback poll that covers notifications lost
 * while the LISTEN connection was down. The concurrency limit itself is enforced by the claim
 * statement in the database, not here, so it holds across brokers.
 */
export class Dispatcher {
  readonly #store: DispatcherStore;
  readonly #notifications: NotificationListener;
  readonly #logger: Logger;
  readonly #fallbackPollMs: number;
  readonly #consumers = new Map<string, Set<Consumer>>();
  readonly #settings = new Map<string, QueueSettings>();
  readonly #busy = new Set<string>();
  readonly #again = new Set<string>();
  readonly #rounds = new Set<Promise<void>>();
  /** Cancels no consumer held when they were announced, by lease token (see EARLY_CANCEL_MS). */
  readonly #earlyCancels = new Map<string, { event: CancelEvent; at: number }>();
  /** Per rate-limited queue, the wake-up armed for when its used-up window ends. */
  readonly #rateTimers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #onRateLimited: ((queue: string) => void) | undefined;
  #pollTimer: NodeJS.Timeout | null = null;
  #stopped = true;

  readonly #onJob = (event: JobEvent) => this.#jobEvent(event);
  readonly #onCancel = (event: CancelEvent) => this.#cancelEvent(event);
  readonly #onQueue = (queue: string) => {
    this.#settings.delete(queue);
    this.wake(queue);
  };
  readonly #onReconnected = () => this.wakeAll();

  constructor(options: {
    store: DispatcherStore;
    notifications: NotificationListener;
    logger: Logger;
    fallbackPollMs: number;
    /** Told each time a rate limit held back a claim of `queue` (the baton_rate_limited_total metric). */
    onRateLimited?: (queue: string) => void;
  }) {
    this.#store = options.store;
    this.#onRateLimited = options.onRateLimited;
    this.#notifications = options.notifications;
    this.#logger = options.logger;
    this.#fallbackPollMs = options.fallbackPollMs;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#notifications.on('job', this.#onJob);
    this.#notifications.on('cancel', this.#onCancel);
    this.#notifications.on('queue', this.#onQueue);
    this.#notifications.on('reconnected', this.#onReconnected);
    this.#schedulePoll();
  }

  /** Stops starting rounds and waits for the ones under way. Safe to call twice. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#notifications.off('job', this.#onJob);
    this.#notifications.off('cancel', this.#onCancel);
    this.#notifications.off('queue', this.#onQueue);
    this.#notifications.off('reconnected', this.#onReconnected);
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    this.#pollTimer = null;
    for (const { timer } of this.#rateTimers.values()) clearTimeout(timer);
    this.#rateTimers.clear();
    await Promise.allSettled([...this.#rounds]);
  }

  register(consumer: Consumer): void {
    for (const queue of consumer.queues) {
      let set = this.#consumers.get(queue);
      if (!set) this.#consumers.set(queue, (set = new Set()));
      set.add(consumer);
    }
  }

  unregister(consumer: Consumer): void {
    for (const queue of consumer.queues) {
      const set = this.#consumers.get(queue);
      set?.delete(consumer);
      if (set?.size === 0) this.#consumers.delete(queue);
    }
  }

  /** Rounds under way that may still deliver to `consumer`; a closing stream waits for them. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#rounds]);
  }

  /**
   * Finds streams that could take `count` new jobs of `queue` straight from an enqueue and reserves
   * their credit (a hand-off: the jobs are inserted already assigned, see ./handoff.ts). Only while
   * no claim of the queue is under way: a stream with credit then means the last claim found the
   * queue empty, so handed-off jobs overtake no waiting ones. Only for a queue without a limit whose
   * settings are known and not paused (the insert checks again). Every returned reservation must go
   * back through `consumer.deliver`, with the jobs the insert assigned to it or none; `track` the
   * insert so that a closing stream waits for it.
   */
  offer(queue: string, count: number): { consumer: Consumer; reserved: number }[] {
    const settings = this.#settings.get(queue);
    const consumers = this.#consumers.get(queue);
    if (this.#stopped || this.#busy.has(queue) || !consumers || !settings || settings.paused || !isPlainQueue(settings)) return [];
    const offers: { consumer: Consumer; reserved: number }[] = [];
    let left = count;
    for (const consumer of consumers) {
      if (left === 0) break;
      if (consumer.credit() === 0) continue;
      const reserved = consumer.reserve(left, queue);
      if (reserved > 0) offers.push({ consumer, reserved });
      left -= reserved;
    }
    return offers;
  }

  /**
   * Hands claimed (or handed-off) jobs to `consumer` against its reservation, then passes on any
   * cancel of those jobs that was announced before their claim's answer arrived.
   */
  deliver(consumer: Consumer, jobs: Assignment[], reserved: number): void {
    consumer.deliver(jobs, reserved);
    if (this.#earlyCancels.size === 0) return;
    for (const job of jobs) {
      const early = this.#earlyCancels.get(job.leaseToken);
      if (!early) continue;
      this.#earlyCancels.delete(job.leaseToken);
      consumer.cancel(early.event);
    }
  }

  /** Work that may still deliver to consumers (a hand-off's insert); `settle` and `stop` wait for it. */
  track(work: Promise<unknown>): void {
    const tracked = work.then(
      () => undefined,
      () => undefined,
    );
    this.#rounds.add(tracked);
    void tracked.finally(() => this.#rounds.delete(tracked));
  }

  wake(queue: string): void {
    if (this.#stopped || !this.#consumers.has(queue)) return;
    if (this.#busy.has(queue)) {
      this.#again.add(queue);
      return;
    }
    const round = this.#round(queue).finally(() => this.#rounds.delete(round));
    this.#rounds.add(round);
  }

  wakeAll(): void {
    for (const queue of this.#consumers.keys()) this.wake(queue);
  }

  #schedulePoll(): void {
    if (this.#stopped) return;
    const delay = this.#fallbackPollMs * (0.75 + Math.random() / 2);
    this.#pollTimer = setTimeout(() => {
      for (const [queue, consumers] of this.#consumers) {
        if ([...consumers].some((c) => c.credit() > 0)) this.wake(queue);
      }
      this.#schedulePoll();
    }, delay);
    this.#pollTimer.unref();
  }

  #jobEvent(event: JobEvent): void {
    if (!this.#consumers.has(event.queue)) return;
    if (event.status === 'pending') {
      this.wake(event.queue);
      return;
    }
    // A job leaving RUNNING frees a slot of a limited queue, which other streams may be waiting for.
    const settings = this.#settings.get(event.queue);
    if (event.status !== 'running' && (!settings || settings.concurrency > 0 || (settings.fairKeys?.keyConcurrency ?? 0) > 0)) this.wake(event.queue);
  }

  #cancelEvent(event: CancelEvent): void {
    for (const consumers of this.#consumers.values()) {
      for (const consumer of consumers) if (consumer.cancel(event)) return;
    }
    const now = performance.now();
    // Oldest first (a Map keeps insertion order): drop what has aged out or overflows.
    for (const [token, early] of this.#earlyCancels) {
      if (now - early.at < EARLY_CANCEL_MS && this.#earlyCancels.size < MAX_EARLY_CANCELS) break;
      this.#earlyCancels.delete(token);
    }
    this.#earlyCancels.set(event.token, { event, at: now });
  }

  /**
   * A rate limit held back jobs of `queue` until its window ends at `untilMs` (the database's clock):
   * nothing announces that moment, so a wake-up is armed for it, a few milliseconds late so that the
   * claim falls in the new window. One per queue, the earliest.
   */
  #heldBack(queue: string, untilMs: number): void {
    this.#onRateLimited?.(queue);
    if (this.#stopped) return;
    const armed = this.#rateTimers.get(queue);
    if (armed && armed.at <= untilMs) return;
    if (armed) clearTimeout(armed.timer);
    const timer = setTimeout(
      () => {
        this.#rateTimers.delete(queue);
        this.wake(queue);
      },
      Math.max(5, untilMs - Date.now() + 5),
    );
    timer.unref();
    this.#rateTimers.set(queue, { at: untilMs, timer });
  }

  async #queueSettings(queue: string): Promise<QueueSettings | null> {
    const cached = this.#settings.get(queue);
    if (cached) return cached;
    const loaded = await this.#store.queueGet({ name: queue });
    if (loaded) this.#settings.set(queue, loaded);
    return loaded;
  }

  async #round(queue: string): Promise<void> {
    this.#busy.add(queue);
    try {
      do {
        this.#again.delete(queue);
        const settings = await this.#queueSettings(queue);
        if (!settings || settings.paused) continue;
        await this.#fill(settings);
      } while (this.#again.has(queue) && !this.#stopped);
    } catch (error) {
      // The fallback poll retries; a database outage must not take the broker down.
      this.#logger.warn('claim failed', { queue, error });
      this.#settings.delete(queue);
    } finally {
      this.#busy.delete(queue);
    }
  }

  /** Claims for each consumer with credit in turn until the queue runs dry or credit runs out. */
  async #fill(settings: QueueSettings): Promise<void> {
    for (;;) {
      // Every consumer is asked, even one whose credit looks used up: `reserve` must see the
      // queue to wake it when credit held by another queue's claim comes back unused.
      const consumers = [...(this.#consumers.get(settings.name) ?? [])];
      if (consumers.length === 0 || this.#stopped) return;
      let granted = false;
      // Start from a random consumer so that no stream is always served first.
      const offset = Math.floor(Math.random() * consumers.length);
      for (let i = 0; i < consumers.length; i++) {
        const consumer = consumers[(offset + i) % consumers.length];
        const wanted = consumer.reserve(MAX_CLAIM, settings.name);
        if (wanted <= 0) continue;
        granted = true;
        let jobs: Assignment[] = [];
        try {
          jobs = await this.#store.jobClaim({
            queue: settings,
            limit: wanted,
            sessionId: consumer.sessionId,
            workerId: consumer.workerId,
            onHeldBack: (untilMs) => this.#heldBack(settings.name, untilMs),
          });
        } finally {
          this.deliver(consumer, jobs, wanted);
        }
        if (jobs.length < wanted) return;
      }
      if (!granted) return;
    }
  }
}
