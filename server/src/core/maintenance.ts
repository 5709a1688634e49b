import { type Clock, realClock, type Timer } from '../lib/clock.ts';
import type { Logger } from '../logger.ts';
import { PROMOTE_BATCH, type StoreDriver } from '../store/driver.ts';
import type { JobObserver } from './observer.ts';

/** The one event of the NotificationListener the duties listen to, the due time of a newly scheduled job. */
export interface ScheduleEvents {
  on(event: 'schedule', listener: (dueMs: number) => void): unknown;
  off(event: 'schedule', listener: (dueMs: number) => void): unknown;
}

export interface MaintenanceOptions {
  store: Pick<StoreDriver, 'leaderAttemptElect' | 'leaderResign' | 'sessionReapExpired' | 'jobTimeOut' | 'jobPromoteScheduled' | 'jobPrune' | 'historyUpkeep'>;
  /** Where `schedule` notifications (a job scheduled for later) come from: the NotificationListener. */
  notifications: ScheduleEvents;
  logger: Logger;
  leaseTtlMs: number;
  retentionMs: number;
  /** Told how many jobs the reaper and the timeout check took back (metrics). */
  observer?: Pick<JobObserver, 'leasesExpired' | 'timedOut'>;
  /** Time and timers; the real ones unless a test drives them (test/support/fake-clock.ts). */
  clock?: Clock;
  /** The jitter's source, uniform in [0, 1); Math.random unless a test needs exact periods. */
  random?: () => number;
  /** The cron duty (./schedule-ticker.ts), run while this broker leads. */
  schedules?: { lead(sinceMs: number): void; unlead(): Promise<void> };
}

/**
 * The background duties that must run somewhere but only once: promoting scheduled jobs, expiring
 * silent sessions, failing attempts past their timeout, pruning old jobs. Every broker competes for
 * leadership (the store's leader election: a lock held by a connection of its own); the leader does
 * the duties, and when it dies its connection closes, the lock frees and another broker takes over
 * within a few seconds.
 *
 * Promotion sleeps exactly until the next scheduled job is due (re-armed earlier by `baton_schedule`
 * notifications), not on a polling interval.
 *
 * Every timer and every reading of the time goes through `clock`, so that tests move time instead
 * of sleeping (test/maintenance.test.ts). With the real clock the store's operations get no `now`
 * and the database's clock decides.
 */
export class Maintenance {
  readonly #options: MaintenanceOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  #leader = false;
  #stopped = true;
  #electionTimer: Timer | null = null;
  #promoteTimer: Timer | null = null;
  #promoteAt = Infinity;
  #reapTimer: Timer | null = null;
  #pruneTimer: Timer | null = null;
  /** Duties under way; `stop` waits for them, so none touches the store after it returns. */
  readonly #running = new Set<Promise<unknown>>();
  readonly #onSchedule = (dueMs: number) => this.#armPromote(dueMs);
  readonly #onLost = (reason: string) => this.#demote(reason);

  constructor(options: MaintenanceOptions) {
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    this.#random = options.random ?? Math.random;
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#options.notifications.on('schedule', this.#onSchedule);
    void this.#elect();
  }

  /** Gives up leadership and stops every timer. Safe to call twice. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#options.notifications.off('schedule', this.#onSchedule);
    for (const timer of [this.#electionTimer, this.#promoteTimer, this.#reapTimer, this.#pruneTimer]) timer?.cancel();
    await Promise.allSettled([...this.#running]);
    await this.#options.schedules?.unlead();
    this.#leader = false;
    await this.#options.store.leaderResign();
  }

  /** Runs every duty once, now (used by tests and by a new leader). */
  async runOnce(): Promise<void> {
    const { store, leaseTtlMs, observer } = this.#options;
    // Each awaited before `observer?.` is read: an optional call skips its arguments when absent.
    const expired = await store.sessionReapExpired({ now: this.#clock.storeNow() });
    observer?.leasesExpired(expired);
    const timedOut = await store.jobTimeOut({ graceMs: leaseTtlMs, now: this.#clock.storeNow() });
    observer?.timedOut(timedOut);
    await this.#promote();
  }

  async #elect(): Promise<void> {
    if (this.#stopped) return;
    try {
      const won = await this.#options.store.leaderAttemptElect({ onLost: this.#onLost });
      // Stopped while electing: `stop` has resigned already, or does so now.
      if (this.#stopped) return;
      if (won) {
        this.#leader = true;
        this.#options.logger.info('elected to run background duties');
        this.#track(this.runOnce().catch((error) => this.#options.logger.warn('maintenance failed', { error })));
        // Ticks due before this moment were missed (no broker led): the missed-tick policy decides them.
        this.#options.schedules?.lead(this.#clock.now());
        this.#scheduleReap();
        this.#schedulePrune();
        return;
      }
    } catch (error) {
      if (this.#stopped) return;
      this.#options.logger.debug('leader election attempt failed', { error });
    }
    this.#electionTimer?.cancel();
    this.#electionTimer = this.#clock.setTimer(() => void this.#elect(), this.#jittered(this.#options.leaseTtlMs / 6), { unref: true });
  }

  /** The store lost the leader's connection, and with it the lock. */
  #demote(reason: string): void {
    if (this.#stopped) return;
    if (this.#leader) this.#options.logger.warn('lost leadership', { reason });
    this.#leader = false;
    this.#track(this.#options.schedules?.unlead() ?? Promise.resolve());
    for (const timer of [this.#promoteTimer, this.#reapTimer, this.#pruneTimer]) timer?.cancel();
    this.#promoteAt = Infinity;
    this.#electionTimer?.cancel();
    this.#electionTimer = this.#clock.setTimer(() => void this.#elect(), this.#jittered(1000), { unref: true });
  }

  #track(duty: Promise<unknown>): void {
    const settled = duty.then(
      () => undefined,
      () => undefined,
    );
    this.#running.add(settled);
    void settled.then(() => this.#running.delete(settled));
  }

  #jittered(ms: number): number {
    return ms * (0.75 + this.#random() / 2);
  }

  /** Whether a duty that just finished may arm its next round: not once stopped or demoted. */
  get #onDuty(): boolean {
    return this.#leader && !this.#stopped;
  }

  // A round still under way when leadership ends must not arm another: a stopped broker would keep
  // a timer, and one re-elected meanwhile would run two loops. Hence the check after the work too.
  #scheduleReap(): void {
    if (!this.#onDuty) return;
    this.#reapTimer?.cancel();
    this.#reapTimer = this.#clock.setTimer(() => this.#track(this.#reap()), this.#jittered(Math.min(5000, this.#options.leaseTtlMs / 4)), { unref: true });
  }

  async #reap(): Promise<void> {
    if (!this.#onDuty) return;
    const { store, leaseTtlMs, logger } = this.#options;
    try {
      const expired = await store.sessionReapExpired({ now: this.#clock.storeNow() });
      this.#options.observer?.leasesExpired(expired);
      const timedOut = await store.jobTimeOut({ graceMs: leaseTtlMs, now: this.#clock.storeNow() });
      this.#options.observer?.timedOut(timedOut);
      if (expired || timedOut) logger.info('released jobs of lost workers', { expired, timedOut });
    } catch (error) {
      logger.warn('reaping failed', { error });
    }
    // Same round: counters folded every few seconds keep the deltas that every read-out sums short.
    await store.historyUpkeep({ now: this.#clock.storeNow() }).catch((error) => logger.warn('folding counters failed', { error }));
    this.#scheduleReap();
  }

  #schedulePrune(): void {
    if (this.#options.retentionMs <= 0 || !this.#onDuty) return;
    this.#pruneTimer?.cancel();
    this.#pruneTimer = this.#clock.setTimer(() => this.#track(this.#prune()), this.#jittered(600_000), { unref: true });
  }

  async #prune(): Promise<void> {
    if (!this.#onDuty) return;
    await this.#options.store.jobPrune({ retentionMs: this.#options.retentionMs, now: this.#clock.storeNow() }).catch((error) => {
      this.#options.logger.warn('pruning failed', { error });
    });
    this.#schedulePrune();
  }

  async #promote(): Promise<void> {
    if (!this.#leader) return;
    try {
      let result;
      do result = await this.#options.store.jobPromoteScheduled({ now: this.#clock.storeNow() });
      while (result.promoted >= PROMOTE_BATCH);
      this.#promoteAt = Infinity;
      if (result.nextDueMs !== null) this.#armPromote(result.nextDueMs);
    } catch (error) {
      this.#options.logger.warn('promoting scheduled jobs failed', { error });
      this.#armPromote(this.#clock.now() + 1000);
    }
  }

  /** Sleeps until `dueMs`, unless an earlier wake-up is already armed. Capped so clock drift heals. */
  #armPromote(dueMs: number): void {
    if (!this.#leader || this.#stopped || dueMs >= this.#promoteAt) return;
    this.#promoteAt = dueMs;
    this.#promoteTimer?.cancel();
    const delay = Math.min(Math.max(0, dueMs - this.#clock.now()), 60_000);
    this.#promoteTimer = this.#clock.setTimer(
      () => {
        this.#promoteAt = Infinity;
        this.#track(this.#promote());
      },
      delay,
      { unref: true },
    );
  }
}
