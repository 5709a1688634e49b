/**
 * The leader's cron duty (docs/scheduling.md, "Cron schedules"): while this broker leads, it sleeps
 * until the next tick of any schedule, then decides every tick that fell due, one store statement
 * each. The database, not this loop, makes a tick one job at most (the tick table's primary key), so
 * two brokers that both believe they lead for a moment, or a new leader that repeats the ticks its
 * predecessor decided just before dying, cannot double a job.
 *
 * Which ticks fire is `ticksToFire`'s rule: every tick due since the leader took over, and of those
 * missed before it (no broker led), what the schedule's missed-tick policy keeps.
 *
 * Started and stopped by Maintenance with leadership; woken early by `baton_cron` notifications (a
 * schedule created, changed, paused, resumed or deleted on any broker). Time and timers come from the
 * clock, so tests move time instead of waiting.
 */
import { MAX_TICKS_PER_ROUND, type ScheduleRecord, type TickOutcome, nextTicks, ticksToFire } from '../domain/schedule.ts';
import { type Clock, realClock, type Timer } from '../lib/clock.ts';
import type { Logger } from '../logger.ts';
import type { StoreDriver } from '../store/driver.ts';

/** The one event of the NotificationListener the ticker listens to: a schedule changed. */
export interface CronEvents {
  on(event: 'cron', listener: (name: string) => void): unknown;
  off(event: 'cron', listener: (name: string) => void): unknown;
}

export interface ScheduleTickerOptions {
  store: Pick<StoreDriver, 'scheduleList' | 'scheduleTick' | 'scheduleTicksPrune'>;
  notifications: CronEvents;
  logger: Logger;
  /** Decided ticks older than this are forgotten (each schedule's latest is kept). @defaultValue 7 days */
  tickRetentionMs?: number;
  /** Told of every tick decided (metrics). */
  onTick?: (schedule: string, outcome: TickOutcome) => void;
  clock?: Clock;
}

/** The longest sleep: a round at least this often heals a missed notification or a clock jump. */
const MAX_SLEEP_MS = 60_000;
/** After a failed round (the database away), the next try. */
const RETRY_MS = 1000;
/** How often ticks are pruned. */
const PRUNE_EVERY_MS = 600_000;

export class ScheduleTicker {
  readonly #options: ScheduleTickerOptions;
  readonly #clock: Clock;
  #leading = false;
  #sinceMs = 0;
  #timer: Timer | null = null;
  /** The round under way, and whether another was asked for meanwhile (a notification, a timer). */
  #round: Promise<void> | null = null;
  #again = false;
  #lastPruneMs = -Infinity;
  readonly #onCron = () => this.#wake();

  constructor(options: ScheduleTickerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? realClock;
  }

  /** Starts ticking as the leader since `sinceMs`: ticks due before it were missed. */
  lead(sinceMs: number): void {
    if (this.#leading) return;
    this.#leading = true;
    this.#sinceMs = sinceMs;
    this.#options.notifications.on('cron', this.#onCron);
    this.#wake();
  }

  /** Stops ticking (leadership lost or given up); waits for a round under way. Safe to call twice. */
  async unlead(): Promise<void> {
    this.#leading = false;
    this.#options.notifications.off('cron', this.#onCron);
    this.#timer?.cancel();
    this.#timer = null;
    await this.#round;
  }

  /** Runs one round now and waits for it (tests). */
  async runOnce(): Promise<void> {
    this.#wake();
    while (this.#round) await this.#round;
  }

  #wake(): void {
    if (!this.#leading) return;
    if (this.#round) {
      this.#again = true;
      return;
    }
    this.#timer?.cancel();
    this.#timer = null;
    this.#round = this.#tick().finally(() => {
      this.#round = null;
      if (this.#again) {
        this.#again = false;
        this.#wake();
      }
    });
  }

  async #tick(): Promise<void> {
    const { store, logger } = this.#options;
    let sleepMs = MAX_SLEEP_MS;
    try {
      const schedules = await store.scheduleList();
      for (const schedule of schedules) {
        if (!this.#leading) return;
        if (schedule.paused) continue;
        sleepMs = Math.min(sleepMs, await this.#decide(schedule));
      }
      await this.#prune();
    } catch (error) {
      logger.warn('cron round failed; trying again shortly', { error });
      sleepMs = RETRY_MS;
    }
    if (!this.#leading) return;
    this.#timer = this.#clock.setTimer(() => this.#wake(), sleepMs, { unref: true });
  }

  /** Decides the schedule's due ticks; answers how long until its next one. */
  async #decide(schedule: ScheduleRecord): Promise<number> {
    const { store, logger, onTick } = this.#options;
    const cursorMs = Math.max(schedule.anchorAt.getTime(), schedule.lastTickAt?.getTime() ?? -Infinity);
    let nowMs = this.#clock.now();
    const due = ticksToFire(schedule, cursorMs, this.#sinceMs, nowMs);
    for (const tickAt of due) {
      if (!this.#leading) break;
      const decided = await store.scheduleTick({ name: schedule.name, tickAt, now: this.#clock.storeNow() });
      // Paused or deleted since it was read: its notification wakes another round.
      if (!decided) break;
      onTick?.(schedule.name, decided.outcome);
      const fields = { schedule: schedule.name, tick: tickAt.toISOString(), job: decided.jobId ?? undefined };
      if (decided.outcome === 'enqueued') logger.debug('schedule ticked', fields);
      else logger.info(decided.outcome === 'duplicate' ? 'schedule tick was decided already' : 'schedule tick skipped: its previous job is still live', fields);
    }
    // A full round left on-time ticks for the next one: at once.
    if (due.length >= MAX_TICKS_PER_ROUND) return 0;
    nowMs = this.#clock.now();
    const [next] = nextTicks(schedule, 1, nowMs);
    return next ? Math.max(0, next.getTime() - nowMs) : MAX_SLEEP_MS;
  }

  async #prune(): Promise<void> {
    const now = this.#clock.now();
    if (now - this.#lastPruneMs < PRUNE_EVERY_MS) return;
    this.#lastPruneMs = now;
    const before = new Date(now - (this.#options.tickRetentionMs ?? 7 * 24 * 3600_000));
    await this.#options.store.scheduleTicksPrune({ before });
  }
}
