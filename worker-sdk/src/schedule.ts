// Cron schedules (Admin.UpsertSchedule, ListSchedules, …) as plain objects: policy names instead of
// enums, Dates instead of Timestamps, milliseconds instead of Durations, parsed JSON payloads.

import type { MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs, durationMs, timestampDate } from '@bufbuild/protobuf/wkt';
import { MissedTickPolicy, OverlapPolicy, type ScheduleInfo, type ScheduleSchema } from './gen/baton/v1/admin_pb.ts';
import { JobStatus } from './gen/baton/v1/job_pb.ts';
import type { JobStatusName } from './job.ts';
import { encodeJson, type JsonValue } from './json.ts';

/**
 * Ticks that fell while no broker led: `skip` them, run the latest one once (`run_once`), or run up
 * to `backfillLimit` of the latest ones (`backfill`).
 */
export type MissedTickPolicyName = 'skip' | 'run_once' | 'backfill';

/** A tick while the schedule's previous job is still live: enqueue anyway (`allow`) or `skip` it. */
export type OverlapPolicyName = 'allow' | 'skip';

/** A schedule's definition, as `upsertSchedule` takes it (the whole of it: fields left out get their defaults). */
export interface ScheduleOptions {
  /** The queue its jobs go to (created if new). */
  queue: string;
  /** 5 fields (minute hour day-of-month month day-of-week) or 6 with leading seconds, e.g. "0 3 * * *". */
  cron: string;
  /** IANA time zone the expression is read in, e.g. "Europe/Paris". @defaultValue "UTC" */
  timeZone?: string;
  /** Every job's payload, any JSON value. @defaultValue null */
  payload?: unknown;
  /** -1000..1000. @defaultValue 0 */
  priority?: number;
  /** 1-1000. @defaultValue the queue's default */
  maxAttempts?: number;
  /** Per attempt, in ms. @defaultValue the queue's default */
  timeoutMs?: number;
  /** Labels of every job; the broker adds `baton.schedule` and `baton.tick`. */
  labels?: Record<string, string>;
  /** @defaultValue 'skip' */
  missed?: MissedTickPolicyName;
  /** With `missed: 'backfill'`, how many of the latest missed ticks run (1-1000). @defaultValue 10 */
  backfillLimit?: number;
  /** @defaultValue 'allow' */
  overlap?: OverlapPolicyName;
}

/** A schedule as stored, with what it did and will do. */
export interface Schedule {
  name: string;
  queue: string;
  cron: string;
  timeZone: string;
  payload: JsonValue;
  /** The payload as the exact JSON text the broker stores. */
  payloadJson: string;
  priority: number;
  /** Absent: the queue's default. */
  maxAttempts?: number;
  /** Absent: the queue's default. */
  timeoutMs?: number;
  labels: Record<string, string>;
  missed: MissedTickPolicyName;
  backfillLimit: number;
  overlap: OverlapPolicyName;
  /** A paused schedule does not tick (`pauseSchedule`, `resumeSchedule`). */
  paused: boolean;
  /** The next run times, soonest first (as many as asked of `listSchedules`, else 1); empty while paused. */
  nextRuns: Date[];
  /** The latest tick decided (a job enqueued or skipped). */
  lastTickAt?: Date;
  /** The latest job the schedule made, by a tick or `triggerSchedule`. */
  lastJobId?: string;
  /** That job's status now; absent when there is none or it was pruned. */
  lastJobStatus?: JobStatusName;
  createdAt?: Date;
  updatedAt?: Date;
}

/** The answer of `upsertSchedule`. */
export interface UpsertedSchedule extends Schedule {
  /** True when the schedule was new, false when it replaced one of the same name. */
  created: boolean;
}

/** Filters of `listSchedules`. */
export interface ListSchedulesOptions {
  /** Only this schedule (BatonError NOT_FOUND when it does not exist). */
  name?: string;
  /** How many next run times to compute for each, 1-100. @defaultValue 1 */
  nextRuns?: number;
}

const MISSED: Record<MissedTickPolicyName, MissedTickPolicy> = {
  skip: MissedTickPolicy.SKIP,
  run_once: MissedTickPolicy.RUN_ONCE,
  backfill: MissedTickPolicy.BACKFILL,
};
const OVERLAP: Record<OverlapPolicyName, OverlapPolicy> = { allow: OverlapPolicy.ALLOW, skip: OverlapPolicy.SKIP };

const nameOf = <N extends string>(table: Record<N, number>, value: number, fallback: N): N =>
  (Object.entries(table) as [N, number][]).find(([, v]) => v === value)?.[0] ?? fallback;

/** Builds the wire Schedule; throws a TypeError for a policy name no broker knows. */
export function toScheduleMessage(name: string, o: ScheduleOptions): MessageInitShape<typeof ScheduleSchema> {
  if (o.missed !== undefined && !Object.hasOwn(MISSED, o.missed))
    throw new TypeError(`upsertSchedule: missed must be skip, run_once or backfill, got "${o.missed}"`);
  if (o.overlap !== undefined && !Object.hasOwn(OVERLAP, o.overlap)) throw new TypeError(`upsertSchedule: overlap must be allow or skip, got "${o.overlap}"`);
  return {
    name,
    queue: o.queue,
    cron: o.cron,
    timeZone: o.timeZone ?? '',
    payloadJson: encodeJson(o.payload ?? null),
    priority: o.priority ?? 0,
    maxAttempts: o.maxAttempts ?? 0,
    timeout: o.timeoutMs !== undefined ? durationFromMs(o.timeoutMs) : undefined,
    labels: o.labels ?? {},
    missed: o.missed ? MISSED[o.missed] : MissedTickPolicy.UNSPECIFIED,
    backfillLimit: o.backfillLimit ?? 0,
    overlap: o.overlap ? OVERLAP[o.overlap] : OverlapPolicy.UNSPECIFIED,
  };
}

const utf8 = new TextDecoder();

/** Wire ScheduleInfo → Schedule. */
export function toSchedule(info: ScheduleInfo): Schedule {
  const s = info.schedule!;
  const payloadJson = s.payloadJson.length > 0 ? utf8.decode(s.payloadJson) : 'null';
  // The generated enum is a plain object (no reverse mapping); a status a newer broker added reads
  // as 'unknown', as in toJob.
  const wireName = Object.entries(JobStatus).find(([, value]) => value === info.lastJobStatus)?.[0];
  const status = info.lastJobStatus === JobStatus.UNSPECIFIED ? undefined : ((wireName?.toLowerCase() ?? 'unknown') as JobStatusName);
  return {
    name: s.name,
    queue: s.queue,
    cron: s.cron,
    timeZone: s.timeZone || 'UTC',
    payload: JSON.parse(payloadJson) as JsonValue,
    payloadJson,
    priority: s.priority,
    maxAttempts: s.maxAttempts || undefined,
    timeoutMs: s.timeout ? durationMs(s.timeout) : undefined,
    labels: { ...s.labels },
    // UNSPECIFIED reads as the documented defaults.
    missed: nameOf(MISSED, s.missed, 'skip'),
    backfillLimit: s.backfillLimit,
    overlap: nameOf(OVERLAP, s.overlap, 'allow'),
    paused: s.paused,
    nextRuns: info.nextRuns.map(timestampDate),
    lastTickAt: info.lastTickAt ? timestampDate(info.lastTickAt) : undefined,
    lastJobId: info.lastJobId || undefined,
    lastJobStatus: status,
    createdAt: info.createdAt ? timestampDate(info.createdAt) : undefined,
    updatedAt: info.updatedAt ? timestampDate(info.updatedAt) : undefined,
  };
}
