/**
 * The Admin RPCs on cron schedules (docs/scheduling.md, "Cron schedules"): the wire's Schedule as
 * the domain's, checked once by the domain's rules, and the stored schedule back with its next run
 * times, computed by croner in its time zone.
 */
import { create, fromJson, type JsonValue, toJson } from '@bufbuild/protobuf';
import { ValueSchema, durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import { type Admin, MissedTickPolicy, OverlapPolicy, type Schedule, type ScheduleInfo, ScheduleInfoSchema, ScheduleSchema } from '@baton/worker-sdk/gen/admin';
import { JobStatus } from '@baton/worker-sdk/gen/job';
import { invalidArgument, notFound } from '../domain/errors.ts';
import { parseJsonText } from '../domain/json-text.ts';
import { isQueueName, QUEUE_NAME_RULE } from '../domain/queue.ts';
import type { JobStatus as StoredStatus } from '../domain/job-status.ts';
import { SCHEDULE_DEFAULTS, type ScheduleRecord, type ScheduleSettings, nextTicks, scheduleProblem } from '../domain/schedule.ts';
import type { Logger } from '../logger.ts';
import type { StoreDriver } from '../store/driver.ts';
import { statusToWire } from './job-wire.ts';
import { durationMs, valueJsonText } from './request-checks.ts';

type ScheduleMethods = Pick<
  ServiceImpl<typeof Admin>,
  'upsertSchedule' | 'listSchedules' | 'pauseSchedule' | 'resumeSchedule' | 'deleteSchedule' | 'triggerSchedule'
>;

const MISSED: Record<MissedTickPolicy, ScheduleSettings['missed']> = {
  [MissedTickPolicy.UNSPECIFIED]: 'skip',
  [MissedTickPolicy.SKIP]: 'skip',
  [MissedTickPolicy.RUN_ONCE]: 'run_once',
  [MissedTickPolicy.BACKFILL]: 'backfill',
};
const OVERLAP: Record<OverlapPolicy, ScheduleSettings['overlap']> = {
  [OverlapPolicy.UNSPECIFIED]: 'allow',
  [OverlapPolicy.ALLOW]: 'allow',
  [OverlapPolicy.SKIP]: 'skip',
};

export function createScheduleAdmin(store: StoreDriver, logger?: Logger): ScheduleMethods {
  async function info(record: ScheduleRecord | null, name: string, nextRuns = 1): Promise<ScheduleInfo> {
    if (!record) throw notFound(`schedule "${name}" does not exist; create it with UpsertSchedule (baton schedules set)`);
    return toWireInfo(record, nextRuns);
  }
  // Names follow the queue-name rule (scheduleProblem): one that breaks it can name no schedule, and
  // some (a NUL byte) PostgreSQL cannot even compare.
  const requireName = (name: string) => {
    if (!name) throw invalidArgument('name: give the schedule name');
    if (!isQueueName(name)) throw invalidArgument(`name: "${name.slice(0, 140)}" is not a valid schedule name: use ${QUEUE_NAME_RULE}`);
    return name;
  };

  return {
    async upsertSchedule(request) {
      if (!request.schedule) throw invalidArgument('schedule: give the schedule to create or replace');
      const settings = fromWire(request.schedule);
      const problem = scheduleProblem(settings);
      if (problem) throw invalidArgument(`schedule.${problem}`);
      const { schedule, created } = await store.scheduleUpsert({ schedule: settings });
      logger?.info(created ? 'schedule created' : 'schedule replaced', { schedule: settings.name, cron: settings.cron, timeZone: settings.timeZone });
      return { schedule: toWireInfo(schedule, 1), created };
    },

    async listSchedules(request) {
      if (request.nextRuns < 0 || request.nextRuns > 100) throw invalidArgument(`next_runs must be 0-100, got ${request.nextRuns}`);
      const n = request.nextRuns || 1;
      if (request.name) return { schedules: [await info(await store.scheduleGet({ name: requireName(request.name) }), request.name, n)] };
      return { schedules: (await store.scheduleList()).map((schedule) => toWireInfo(schedule, n)) };
    },

    async pauseSchedule(request) {
      const schedule = await info(await store.scheduleSetPaused({ name: requireName(request.name), paused: true }), request.name);
      logger?.info('schedule paused', { schedule: request.name });
      return { schedule };
    },

    async resumeSchedule(request) {
      const schedule = await info(await store.scheduleSetPaused({ name: requireName(request.name), paused: false }), request.name);
      logger?.info('schedule resumed', { schedule: request.name });
      return { schedule };
    },

    async deleteSchedule(request) {
      if (!(await store.scheduleDelete({ name: requireName(request.name) }))) await info(null, request.name);
      logger?.info('schedule deleted', { schedule: request.name });
      return {};
    },

    async triggerSchedule(request) {
      const triggered = await store.scheduleTrigger({ name: requireName(request.name) });
      if (!triggered) await info(null, request.name);
      logger?.info('schedule triggered', { schedule: request.name, job: triggered!.jobId });
      return { jobId: triggered!.jobId };
    },
  };
}

function fromWire(s: Schedule): ScheduleSettings {
  let payloadJson = 'null';
  if (s.payloadJson.length > 0) {
    const parsed = parseJsonText(s.payloadJson);
    if ('error' in parsed) throw invalidArgument(`schedule.payload_json ${parsed.error}`);
    payloadJson = parsed.text;
  } else if (s.payload) {
    payloadJson = valueJsonText(s.payload, 'schedule.payload');
  }
  if (!(s.missed in MISSED)) throw invalidArgument(`schedule.missed: unknown policy ${s.missed}`);
  if (!(s.overlap in OVERLAP)) throw invalidArgument(`schedule.overlap: unknown policy ${s.overlap}`);
  return {
    name: s.name,
    queue: s.queue,
    payloadJson,
    cron: s.cron.trim(),
    timeZone: s.timeZone || SCHEDULE_DEFAULTS.timeZone,
    priority: s.priority,
    maxAttempts: s.maxAttempts || null,
    timeoutMs: s.timeout ? durationMs(s.timeout, 'schedule.timeout') : null,
    labels: s.labels,
    missed: MISSED[s.missed],
    backfillLimit: s.backfillLimit || SCHEDULE_DEFAULTS.backfillLimit,
    overlap: OVERLAP[s.overlap],
  };
}

function wirePolicy<T extends number>(table: Record<number, string>, value: string): T {
  // The first wire value naming it (UNSPECIFIED is listed first and shares the default's name).
  return Number(Object.entries(table).findLast(([, name]) => name === value)![0]) as T;
}

function toWireInfo(s: ScheduleRecord, nextRuns: number): ScheduleInfo {
  return create(ScheduleInfoSchema, {
    schedule: create(ScheduleSchema, {
      name: s.name,
      queue: s.queue,
      payload: fromJson(ValueSchema, JSON.parse(s.payloadJson) as JsonValue),
      payloadJson: new TextEncoder().encode(s.payloadJson),
      cron: s.cron,
      timeZone: s.timeZone,
      priority: s.priority,
      maxAttempts: s.maxAttempts ?? 0,
      timeout: s.timeoutMs === null ? undefined : durationFromMs(s.timeoutMs),
      labels: s.labels,
      missed: wirePolicy<MissedTickPolicy>(MISSED, s.missed),
      backfillLimit: s.backfillLimit,
      overlap: wirePolicy<OverlapPolicy>(OVERLAP, s.overlap),
      paused: s.paused,
    }),
    nextRuns: s.paused ? [] : nextTicks(s, nextRuns, Date.now()).map(timestampFromDate),
    lastTickAt: s.lastTickAt ? timestampFromDate(s.lastTickAt) : undefined,
    lastJobId: s.lastJobId ?? '',
    lastJobStatus: s.lastJobStatus ? statusToWire(s.lastJobStatus as StoredStatus) : JobStatus.UNSPECIFIED,
    createdAt: timestampFromDate(s.createdAt),
    updatedAt: timestampFromDate(s.updatedAt),
  });
}
