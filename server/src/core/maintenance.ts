import type { Logger } from '../logger.ts';
import { PROMOTE_BATCH, type StoreDriver } from '../store/driver.ts';
import type { Notifier } from '../store/notifier.ts';
import type { JobObserver } from './observer.ts';

export interface MaintenanceOptions {
  store: Pick<StoreDriver, 'leaderAttemptElect' | 'leaderResign' | 'sessionReapExpired' | 'jobTimeOut' | 'jobPromoteScheduled' | 'jobPrune'>;
  notifier: Notifier;
  logger: Logger;
  leaseTtlMs: number;
  retentionMs: number;
  /** Told how many jobs the reaper and the timeout check took back (metrics). */
  observer?: Pick<JobObserver, 'leasesExpired' | 'timedOut'>;
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
 */
export class Maintenance {
  readonly #options: MaintenanceOptions;
  #leader = false;
  #stopped = true;
  #electionTimer: NodeJS.Timeout | null = null;
  #promoteTimer: NodeJS.Timeout | null = null;
  #promoteAt = Infinity;
  #reapTimer: NodeJS.Timeout | null = null;
  #pruneTimer: NodeJS.Timeout | null = null;
  #running: Promise<unknown> = Promise.resolve();
  readonly #onSchedule = (dueMs: number) => this.#armPromote(dueMs);
  readonly #onLost = (reason: string) => this.#demote(reason);

  constructor(options: MaintenanceOptions) {
    this.#options = options;
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#options.notifier.on('schedule', this.#onSchedule);
    void this.#elect();
  }

  /** Gives up leadership and stops every timer. Safe to call twice. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#options.notifier.off('schedule', this.#onSchedule);
    for (const timer of [this.#electionTimer, this.#promoteTimer, this.#reapTimer, this.#pruneTimer]) if (timer) clearTimeout(timer);
    await this.#running.catch(() => undefined);
    this.#leader = false;
    await this.#options.store.leaderResign();
  }

  /** Runs every duty once, now (used by tests and by a new leader). */
  async runOnce(): Promise<void> {
    const { store, leaseTtlMs, observer } = this.#options;
    observer?.leasesExpired(await store.sessionReapExpired({}));
    observer?.timedOut(await store.jobTimeOut({ graceMs: leaseTtlMs }));
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
        this.#running = this.runOnce().catch((error) => this.#options.logger.warn('maintenance failed', { error }));
        this.#scheduleReap();
        this.#schedulePrune();
        return;
      }
    } catch (error) {
      if (this.#stopped) return;
      this.#options.logger.debug('leader election attempt failed', { error });
    }
    if (this.#electionTimer) clearTimeout(this.#electionTimer);
    this.#electionTimer = setTimeout(() => void this.#elect(), this.#jittered(this.#options.leaseTtlMs / 6));
    this.#electionTimer.unref();
  }

  /** The store lost the leader's connection, and with it the lock. */
  #demote(reason: string): void {
    if (this.#stopped) return;
    if (this.#leader) this.#options.logger.warn('lost leadership', { reason });
    this.#leader = false;
    for (const timer of [this.#promoteTimer, this.#reapTimer, this.#pruneTimer]) if (timer) clearTimeout(timer);
    this.#promoteAt = Infinity;
    if (this.#electionTimer) clearTimeout(this.#electionTimer);
    this.#electionTimer = setTimeout(() => void this.#elect(), this.#jittered(1000));
    this.#electionTimer.unref();
  }

  #jittered(ms: number): number {
    return ms * (0.75 + Math.random() / 2);
  }

  #scheduleReap(): void {
    this.#reapTimer = setTimeout(async () => {
      if (!this.#leader) return;
      const { store, leaseTtlMs, logger } = this.#options;
      try {
        const expired = await store.sessionReapExpired({});
        this.#options.observer?.leasesExpired(expired);
        const timedOut = await store.jobTimeOut({ graceMs: leaseTtlMs });
        this.#options.observer?.timedOut(timedOut);
        if (expired || timedOut) logger.info('released jobs of lost workers', { expired, timedOut });
      } catch (error) {
        logger.warn('reaping failed', { error });
      }
      this.#scheduleReap();
    }, this.#jittered(Math.min(5000, this.#options.leaseTtlMs / 4)));
    this.#reapTimer.unref();
  }

  #schedulePrune(): void {
    if (this.#options.retentionMs <= 0) return;
    this.#pruneTimer = setTimeout(async () => {
      if (!this.#leader) return;
      await this.#options.store.jobPrune({ retentionMs: this.#options.retentionMs }).catch((error) => {
        this.#options.logger.warn('pruning failed', { error });
      });
      this.#schedulePrune();
    }, this.#jittered(600_000));
    this.#pruneTimer.unref();
  }

  async #promote(): Promise<void> {
    if (!this.#leader) return;
    try {
      let result;
      do result = await this.#options.store.jobPromoteScheduled({});
      while (result.promoted >= PROMOTE_BATCH);
      this.#promoteAt = Infinity;
      if (result.nextDueMs !== null) this.#armPromote(result.nextDueMs);
    } catch (error) {
      this.#options.logger.warn('promoting scheduled jobs failed', { error });
      this.#armPromote(Date.now() + 1000);
    }
  }

  /** Sleeps until `dueMs`, unless an earlier wake-up is already armed. Capped so clock drift heals. */
  #armPromote(dueMs: number): void {
    if (!this.#leader || this.#stopped || dueMs >= this.#promoteAt) return;
    this.#promoteAt = dueMs;
    if (this.#promoteTimer) clearTimeout(this.#promoteTimer);
    const delay = Math.min(Math.max(0, dueMs - Date.now()), 60_000);
    this.#promoteTimer = setTimeout(() => {
      this.#promoteAt = Infinity;
      this.#running = this.#promote();
    }, delay);
    this.#promoteTimer.unref();
  }
}
