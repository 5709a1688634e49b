import pg from 'pg';
import type { Logger } from '../logger.ts';
import type { JobStore } from '../store/job-store.ts';
import type { Notifier } from '../store/notifier.ts';
import type { JobObserver } from './observer.ts';

/** Key of the session advisory lock whose holder is the leader. */
const LEADER_LOCK = 7433002;

export interface MaintenanceOptions {
  url: string;
  store: JobStore;
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
 * a session advisory lock on a connection of its own; the holder does the duties, and when it dies
 * its connection closes, the lock frees and another broker takes over within a few seconds.
 *
 * Promotion sleeps exactly until the next scheduled job is due (re-armed earlier by `baton_schedule`
 * notifications), not on a polling interval.
 */
export class Maintenance {
  readonly #options: MaintenanceOptions;
  #lockClient: pg.Client | null = null;
  #leader = false;
  #stopped = true;
  #electionTimer: NodeJS.Timeout | null = null;
  #promoteTimer: NodeJS.Timeout | null = null;
  #promoteAt = Infinity;
  #reapTimer: NodeJS.Timeout | null = null;
  #pruneTimer: NodeJS.Timeout | null = null;
  #running: Promise<unknown> = Promise.resolve();
  readonly #onSchedule = (dueMs: number) => this.#armPromote(dueMs);

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
    const client = this.#lockClient;
    this.#lockClient = null;
    await client?.end().catch(() => undefined);
  }

  /** Runs every duty once, now (used by tests and by a new leader). */
  async runOnce(): Promise<void> {
    const { store, leaseTtlMs, observer } = this.#options;
    observer?.leasesExpired(await store.reapExpiredSessions());
    observer?.timedOut(await store.timeOutJobs({ graceMs: leaseTtlMs }));
    await this.#promote();
  }

  async #elect(): Promise<void> {
    if (this.#stopped) return;
    try {
      if (!this.#lockClient) {
        const client = new pg.Client({ connectionString: this.#options.url, keepAlive: true });
        client.on('error', () => this.#demote('the leader connection failed'));
        client.on('end', () => this.#demote('the leader connection ended'));
        await client.connect();
        this.#lockClient = client;
      }
      const { rows } = await this.#lockClient.query('select pg_try_advisory_lock($1) as won', [LEADER_LOCK]);
      if (rows[0].won) {
        this.#leader = true;
        this.#options.logger.info('elected to run background duties');
        this.#running = this.runOnce().catch((error) => this.#options.logger.warn('maintenance failed', { error }));
        this.#scheduleReap();
        this.#schedulePrune();
        return;
      }
    } catch (error) {
      this.#options.logger.debug('leader election attempt failed', { error });
      const client = this.#lockClient;
      this.#lockClient = null;
      client?.end().catch(() => undefined);
    }
    this.#electionTimer = setTimeout(() => void this.#elect(), this.#jittered(this.#options.leaseTtlMs / 6));
    this.#electionTimer.unref();
  }

  #demote(reason: string): void {
    if (this.#stopped) return;
    const client = this.#lockClient;
    this.#lockClient = null;
    client?.end().catch(() => undefined);
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
        const expired = await store.reapExpiredSessions();
        this.#options.observer?.leasesExpired(expired);
        const timedOut = await store.timeOutJobs({ graceMs: leaseTtlMs });
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
      await this.#options.store.pruneFinished({ retentionMs: this.#options.retentionMs }).catch((error) => {
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
      do result = await this.#options.store.promoteScheduled();
      while (result.promoted >= 5000);
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
