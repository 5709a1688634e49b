/**
 * Cron schedules on PostgreSQL (./sql/schedules.ts): definitions read and written as prepared
 * statements, and the tick statement whose primary key makes every tick one job at most.
 */
import type { QueueDefaults } from '../domain/queue.ts';
import type { MissedTickPolicy, OverlapPolicy, ScheduleRecord, TickOutcome } from '../domain/schedule.ts';
import type { StoreDriver } from './driver.ts';
import type { Row, SqlPool } from './sql-pool.ts';
import {
  DELETE_SCHEDULE,
  LIST_SCHEDULES,
  PRUNE_SCHEDULE_TICKS,
  SET_SCHEDULE_PAUSED,
  TICK_SCHEDULE,
  TRIGGER_SCHEDULE,
  UPSERT_SCHEDULE,
} from './sql/schedules.ts';

type ScheduleOperations = Pick<
  StoreDriver,
  'scheduleList' | 'scheduleGet' | 'scheduleUpsert' | 'scheduleSetPaused' | 'scheduleDelete' | 'scheduleTick' | 'scheduleTrigger' | 'scheduleTicksPrune'
>;

export function createScheduleOperations(options: { sql: SqlPool; queueDefaults: QueueDefaults }): ScheduleOperations {
  const { sql, queueDefaults: d } = options;

  async function get(name: string): Promise<ScheduleRecord | null> {
    const [row] = await sql.run(LIST_SCHEDULES, [name, name]);
    return row ? toScheduleRecord(row) : null;
  }

  return {
    async scheduleList() {
      return (await sql.run(LIST_SCHEDULES, [null, null])).map(toScheduleRecord);
    },

    scheduleGet: ({ name }) => get(name),

    async scheduleUpsert({ schedule: s, paused, now }) {
      const [row] = await sql.run(UPSERT_SCHEDULE, [
        s.name,
        s.queue,
        s.payloadJson,
        s.cron,
        s.timeZone,
        s.priority,
        s.maxAttempts,
        s.timeoutMs,
        JSON.stringify(s.labels),
        s.missed,
        s.backfillLimit,
        s.overlap,
        paused ?? null,
        paused ?? null,
        now ?? null,
        d.concurrency,
        d.defaultMaxAttempts,
        d.defaultTimeoutMs,
      ]);
      const schedule = await get(s.name);
      // Deleted by someone else between the two statements: what was written is gone, as after a delete.
      if (!schedule) throw new Error(`schedule "${s.name}" was deleted while it was being written`);
      return { schedule, created: Boolean(row.created) };
    },

    async scheduleSetPaused({ name, paused, now }) {
      const rows = await sql.run(SET_SCHEDULE_PAUSED, [paused, now ?? null, name]);
      return rows.length > 0 ? get(name) : null;
    },

    async scheduleDelete({ name }) {
      return (await sql.run(DELETE_SCHEDULE, [name])).length > 0;
    },

    async scheduleTick({ name, tickAt, now }) {
      const [row] = await sql.run(TICK_SCHEDULE, [name, tickAt, now ?? null, d.defaultMaxAttempts, d.defaultTimeoutMs]);
      if (!row.found) return null;
      return { outcome: (row.outcome ?? 'duplicate') as TickOutcome, jobId: row.job_id ?? null };
    },

    async scheduleTrigger({ name }) {
      const [row] = await sql.run(TRIGGER_SCHEDULE, [d.defaultMaxAttempts, d.defaultTimeoutMs, name]);
      return row ? { jobId: row.job_id } : null;
    },

    async scheduleTicksPrune({ before }) {
      const [row] = await sql.run(PRUNE_SCHEDULE_TICKS, [before]);
      return row.n;
    },
  };
}

function date(value: unknown): Date {
  return value instanceof Date ? value : new Date(value as string);
}

function toScheduleRecord(row: Row): ScheduleRecord {
  return {
    name: row.name,
    queue: row.queue,
    payloadJson: row.payload,
    cron: row.cron,
    timeZone: row.time_zone,
    priority: row.priority,
    maxAttempts: row.max_attempts ?? null,
    timeoutMs: row.timeout_ms === null ? null : Number(row.timeout_ms),
    labels: JSON.parse(row.labels),
    missed: row.missed as MissedTickPolicy,
    backfillLimit: row.backfill_limit,
    overlap: row.overlap as OverlapPolicy,
    paused: row.paused,
    anchorAt: date(row.anchor_at),
    lastTickAt: row.last_tick_at ? date(row.last_tick_at) : null,
    lastJobId: row.last_job_id ?? null,
    lastJobStatus: row.last_job_status ?? null,
    createdAt: date(row.created_at),
    updatedAt: date(row.updated_at),
  };
}
