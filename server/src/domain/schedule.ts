/**
 * Cron schedules (docs/scheduling.md, "Cron schedules"): what a schedule is, the rules every entry
 * point checks (BATON_SCHEDULES, UpsertSchedule, `baton schedules set`), and which of its ticks fall
 * due. Cron expressions, time zones and DST are croner's: a tick is an instant croner finds for the
 * expression in the schedule's time zone, so a 02:30 that DST skips or repeats is croner's to place.
 */
import { Cron } from 'croner';
import { QUEUE_NAME_RULE, isQueueName } from './queue.ts';

/** What happens to ticks that came due while no broker led (docs/scheduling.md). */
export type MissedTickPolicy = 'skip' | 'run_once' | 'backfill';
export const MISSED_TICK_POLICIES: readonly MissedTickPolicy[] = ['skip', 'run_once', 'backfill'];

/** What happens to a tick while the schedule's previous job is still PENDING, SCHEDULED or RUNNING. */
export type OverlapPolicy = 'allow' | 'skip';
export const OVERLAP_POLICIES: readonly OverlapPolicy[] = ['allow', 'skip'];

/** What one tick attempt came to; `duplicate` when the tick had been decided already (by this or another broker). */
export type TickOutcome = 'enqueued' | 'skipped_overlap' | 'duplicate';

/** Labels every scheduled job carries, so List can find a schedule's jobs; a schedule's own labels may not use them. */
export const SCHEDULE_LABEL = 'baton.schedule';
export const TICK_LABEL = 'baton.tick';

/** Most ticks `backfill` runs after an outage. */
export const MAX_BACKFILL = 1000;

/** A schedule as declared: everything an upsert sets. */
export interface ScheduleSettings {
  name: string;
  queue: string;
  /** The jobs' payload, JSON text. */
  payloadJson: string;
  /** 5 fields (minute precision) or 6 (a leading seconds field). */
  cron: string;
  /** An IANA time zone the expression is read in; default UTC. */
  timeZone: string;
  priority: number;
  /** Null for the queue's default. */
  maxAttempts: number | null;
  /** Null for the queue's default. */
  timeoutMs: number | null;
  labels: Record<string, string>;
  missed: MissedTickPolicy;
  /** How many missed ticks `backfill` runs at most (the latest ones). */
  backfillLimit: number;
  overlap: OverlapPolicy;
}

/** A stored schedule. */
export interface ScheduleRecord extends ScheduleSettings {
  paused: boolean;
  /** Ticks count from here: set at creation, on a change of expression or time zone, and on resume. */
  anchorAt: Date;
  /** The latest tick decided (a job enqueued, or skipped for overlap); null before the first. */
  lastTickAt: Date | null;
  /** The latest job the schedule made (a tick's or a trigger's), and its status now. */
  lastJobId: string | null;
  lastJobStatus: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export const SCHEDULE_DEFAULTS = { timeZone: 'UTC', priority: 0, missed: 'skip', backfillLimit: 10, overlap: 'allow' } as const;

/**
 * The expression parsed in its time zone; throws with a message that says what is wrong. The time
 * zone is checked by Intl first: croner only notices a bad one when it computes a date.
 */
export function parseCron(cron: string, timeZone: string): Cron {
  try {
    new Intl.DateTimeFormat('en', { timeZone });
  } catch {
    throw new Error(`unknown time zone "${timeZone.slice(0, 100)}": use an IANA name such as UTC or Europe/Paris`);
  }
  try {
    return new Cron(cron, { timezone: timeZone, mode: '5-or-6-parts', paused: true });
  } catch (error) {
    throw new Error(`invalid cron expression "${cron.slice(0, 200)}": ${(error as Error).message.replace(/^CronPattern: /, '').slice(0, 300)}`);
  }
}

/** What is wrong with a schedule's settings, as `field: problem`, or null when nothing is. */
export function scheduleProblem(s: ScheduleSettings): string | null {
  if (!isQueueName(s.name)) return `name: "${s.name.slice(0, 140)}" is not a valid schedule name: use ${QUEUE_NAME_RULE}`;
  if (!s.queue) return 'queue: a schedule needs the queue its jobs go to';
  if (!isQueueName(s.queue)) return `queue: "${s.queue.slice(0, 140)}" is not a valid queue name: use ${QUEUE_NAME_RULE}`;
  if (!s.cron.trim()) return 'cron: a schedule needs a cron expression, e.g. "0 3 * * *" (5 fields) or "*/10 * * * * *" (6, with seconds)';
  try {
    const cron = parseCron(s.cron, s.timeZone);
    if (cron.nextRun() === null) return `cron: "${s.cron.slice(0, 200)}" never fires`;
  } catch (error) {
    return `${(error as Error).message.startsWith('unknown time zone') ? 'time_zone' : 'cron'}: ${(error as Error).message}`;
  }
  try {
    JSON.parse(s.payloadJson);
  } catch {
    return 'payload: not valid JSON';
  }
  if (!Number.isInteger(s.priority) || s.priority < -1000 || s.priority > 1000) return `priority: must be -1000 to 1000, got ${s.priority}`;
  if (s.maxAttempts !== null && (!Number.isInteger(s.maxAttempts) || s.maxAttempts < 1 || s.maxAttempts > 1000))
    return `max_attempts: must be 1-1000, got ${s.maxAttempts}`;
  if (s.timeoutMs !== null && (!Number.isSafeInteger(s.timeoutMs) || s.timeoutMs < 0)) return `timeout: must be 0 or more milliseconds, got ${s.timeoutMs}`;
  if (!MISSED_TICK_POLICIES.includes(s.missed)) return `missed: must be ${MISSED_TICK_POLICIES.join(', ')}, got "${String(s.missed).slice(0, 40)}"`;
  if (!Number.isInteger(s.backfillLimit) || s.backfillLimit < 1 || s.backfillLimit > MAX_BACKFILL)
    return `backfill_limit: must be 1-${MAX_BACKFILL}, got ${s.backfillLimit}`;
  if (!OVERLAP_POLICIES.includes(s.overlap)) return `overlap: must be ${OVERLAP_POLICIES.join(', ')}, got "${String(s.overlap).slice(0, 40)}"`;
  const keys = Object.keys(s.labels);
  if (keys.length > 30) return `labels: at most 30 (two more are added to each job), got ${keys.length}`;
  for (const key of keys) {
    if (key === SCHEDULE_LABEL || key === TICK_LABEL) return `labels: "${key}" is set by the broker on each job`;
    if (!key || key.includes('\0') || s.labels[key].includes('\0')) return `labels: "${key.slice(0, 70)}" is not a valid label`;
  }
  return null;
}

/** Most ticks one call of `ticksToFire` returns; the rest wait for the next round. */
export const MAX_TICKS_PER_ROUND = 100;

/**
 * The ticks of a schedule to decide now, oldest first. Ticks after `cursorMs` (the later of the
 * latest tick decided and the schedule's anchor) are either on time, due at or after `sinceMs` (when
 * this broker became the leader) and up to `nowMs`, all of which fire; or missed, due before
 * `sinceMs`, while no broker led, of which the policy keeps none (`skip`), the latest (`run_once`)
 * or the latest `backfillLimit` (`backfill`).
 */
export function ticksToFire(
  schedule: Pick<ScheduleSettings, 'cron' | 'timeZone' | 'missed' | 'backfillLimit'>,
  cursorMs: number,
  sinceMs: number,
  nowMs: number,
): Date[] {
  const cron = parseCron(schedule.cron, schedule.timeZone);
  const ticks: Date[] = [];
  if (schedule.missed !== 'skip' && cursorMs < sinceMs) {
    const keep = schedule.missed === 'run_once' ? 1 : schedule.backfillLimit;
    // Croner drops the reference's milliseconds; rounded up, a tick earlier in `sinceMs`'s second counts as missed.
    const before = new Date(Math.ceil(sinceMs / 1000) * 1000);
    ticks.push(
      ...cron
        .previousRuns(keep, before)
        .filter((tick) => tick.getTime() > cursorMs)
        .reverse(),
    );
  }
  // Strictly after `from`: the later of the cursor and the instant before `sinceMs`.
  let from = Math.max(cursorMs, sinceMs - 1);
  while (ticks.length < MAX_TICKS_PER_ROUND) {
    const next = cron.nextRun(new Date(from));
    if (!next || next.getTime() > nowMs) break;
    ticks.push(next);
    from = next.getTime();
  }
  return ticks;
}

/** The next `n` ticks after `afterMs` (for ListSchedules and the ticker's sleep). */
export function nextTicks(schedule: Pick<ScheduleSettings, 'cron' | 'timeZone'>, n: number, afterMs: number): Date[] {
  return parseCron(schedule.cron, schedule.timeZone).nextRuns(n, new Date(afterMs));
}
