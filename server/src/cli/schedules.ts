/**
 * `baton schedules`: the cron schedules of docs/scheduling.md ("Cron schedules") through the Admin
 * RPCs: list them with their next run and latest job, create or replace one (`set`), pause, resume,
 * delete, or run one now (`trigger`).
 */
import type { Client, MissedTickPolicyName, OverlapPolicyName, Schedule, ScheduleOptions } from '@baton/worker-sdk';
import { type CliIo, type Command, UsageError } from './command.ts';
import { duration } from './enqueue.ts';
import { age, json, table } from './format.ts';
import { CONNECTION_HELP, EXIT_OK, helpShown, intOption, parse, withClient } from './remote.ts';

const USAGE = `baton schedules [list] [NAME] [--next N] [--json]
       baton schedules set NAME --queue QUEUE --cron 'EXPRESSION' [options]
       baton schedules pause|resume|delete|trigger NAME

list     every schedule (or the one named): queue, expression, time zone, next run, state and the
         latest job with its status; --next N shows N next run times (1-100); --json prints them all
set      creates the schedule, or replaces its whole definition (options left out get their
         defaults; a paused schedule stays paused):
  --cron 'EXPRESSION'   5 fields (minute hour day-of-month month day-of-week) or 6 with leading
                        seconds, e.g. '0 3 * * *', '*/10 * * * * *', '0 9 * * MON-FRI'
  --tz ZONE             IANA time zone the expression is read in, e.g. Europe/Paris (default UTC)
  --payload JSON        every job's payload, any JSON value (default null)
  --priority N          -1000..1000 (default 0)
  --max-attempts N      1..1000 (default: the queue's)
  --timeout DURATION    per attempt: 30s, 5m, 2h (default: the queue's)
  --label KEY=VALUE     a label of every job (repeatable); the broker adds baton.schedule and baton.tick
  --missed POLICY       ticks missed while no broker led: skip (default), run_once, or backfill:N
                        (the latest N of them, 1-1000; backfill alone means 10)
  --overlap POLICY      a tick while the previous job is still live: allow (default) or skip
  --paused              pause it as well (ticks stop until "baton schedules resume")
pause    stops its ticks; ticks that fall while paused never run
resume   ticks it again from now on
delete   deletes it and its record of ticks; the jobs it made stay
trigger  enqueues one of its jobs now, paused or not, and prints the job's id
Each change prints the schedule (--json: as JSON).

${CONNECTION_HELP}`;

const OPTIONS = {
  json: { type: 'boolean' },
  next: { type: 'string' },
  queue: { type: 'string' },
  cron: { type: 'string' },
  tz: { type: 'string' },
  payload: { type: 'string' },
  priority: { type: 'string' },
  'max-attempts': { type: 'string' },
  timeout: { type: 'string' },
  label: { type: 'string', multiple: true },
  missed: { type: 'string' },
  overlap: { type: 'string' },
  paused: { type: 'boolean' },
} as const;

const SET_ONLY = ['queue', 'cron', 'tz', 'payload', 'priority', 'max-attempts', 'timeout', 'label', 'missed', 'overlap', 'paused'] as const;

/** `baton schedules`: list, set, pause, resume, delete, trigger. */
export const schedulesCommand: Command = {
  summary: 'List cron schedules; set (create or replace), pause, resume, delete or trigger one',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parse(args, OPTIONS, 2);
    if (helpShown(values, schedulesCommand, io)) return EXIT_OK;
    const [action = 'list', name] = positionals;
    if (action !== 'set') {
      const stray = SET_ONLY.find((option) => values[option] !== undefined);
      if (stray) throw new UsageError(`--${stray} belongs to "baton schedules set"`);
    }
    if (action !== 'list' && values.next !== undefined) throw new UsageError('--next belongs to "baton schedules list"');
    const needName = () => {
      if (!name) throw new UsageError(`say which schedule: baton schedules ${action} NAME`);
      return name;
    };
    const show = (schedule: Schedule, what: string) => {
      io.stdout(values.json ? json(schedule) : `${what}: ${describe(schedule)}\n`);
      return EXIT_OK;
    };
    switch (action) {
      case 'list': {
        const nextRuns = intOption(values.next, '--next', 1, 100);
        return withClient('schedules', values, io, async (client) => list(client, io, { name, nextRuns, asJson: Boolean(values.json) }));
      }
      case 'set': {
        const scheduleName = needName();
        const options = setOptions(values);
        return withClient('schedules', values, io, async (client) => {
          const upserted = await client.upsertSchedule(scheduleName, options);
          const schedule = values.paused && !upserted.paused ? await client.pauseSchedule(scheduleName) : upserted;
          return show(schedule, `${upserted.created ? 'created' : 'replaced'} ${scheduleName}`);
        });
      }
      case 'pause': {
        const scheduleName = needName();
        return withClient('schedules', values, io, async (client) =>
          show(await client.pauseSchedule(scheduleName), `paused ${scheduleName} (no ticks until it is resumed)`),
        );
      }
      case 'resume': {
        const scheduleName = needName();
        return withClient('schedules', values, io, async (client) => show(await client.resumeSchedule(scheduleName), `resumed ${scheduleName}`));
      }
      case 'delete': {
        const scheduleName = needName();
        return withClient('schedules', values, io, async (client) => {
          await client.deleteSchedule(scheduleName);
          io.stdout(values.json ? json({ deleted: scheduleName }) : `deleted ${scheduleName} (the jobs it made stay)\n`);
          return EXIT_OK;
        });
      }
      case 'trigger': {
        const scheduleName = needName();
        return withClient('schedules', values, io, async (client) => {
          const jobId = await client.triggerSchedule(scheduleName);
          // The id alone on stdout, as "baton enqueue" prints it, so `id=$(baton schedules trigger x)` works.
          io.stdout(values.json ? json({ jobId }) : `${jobId}\n`);
          return EXIT_OK;
        });
      }
      default:
        throw new UsageError(`unknown action "${action}" (list, set, pause, resume, delete, trigger)`);
    }
  },
};

async function list(client: Client, io: CliIo, o: { name?: string; nextRuns?: number; asJson: boolean }): Promise<number> {
  const schedules = await client.listSchedules({ name: o.name, nextRuns: o.nextRuns });
  if (o.asJson) {
    io.stdout(json(schedules));
    return EXIT_OK;
  }
  if (schedules.length === 0) {
    io.stdout(`no schedules yet: create one with "baton schedules set NAME --queue QUEUE --cron '0 3 * * *'"\n`);
    return EXIT_OK;
  }
  const now = Date.now();
  const rows = schedules.map((s) => [
    s.name,
    s.queue,
    s.cron,
    s.timeZone,
    s.paused ? '-' : s.nextRuns.map((at) => `${iso(at)} (in ${age(new Date(now), at.getTime())})`).join(', ') || '-',
    s.paused ? 'paused' : 'active',
    s.lastJobId ? `${s.lastJobId} ${(s.lastJobStatus ?? 'gone').toUpperCase()}` : '-',
  ]);
  io.stdout(table(['NAME', 'QUEUE', 'CRON', 'TIME ZONE', 'NEXT RUN', 'STATE', 'LAST JOB'], rows, { width: process.stdout.columns }));
  return EXIT_OK;
}

type Values = ReturnType<typeof parse<typeof OPTIONS>>['values'];

/** The flags of `set` as the definition to upsert; usage errors for what no broker would take. */
function setOptions(values: Values): ScheduleOptions {
  if (values.queue === undefined) throw new UsageError('--queue is required: the queue the schedule enqueues into');
  if (values.cron === undefined) throw new UsageError(`--cron is required, e.g. --cron '0 3 * * *' (quote it for the shell)`);
  const missed = missedPolicy(values.missed);
  if (values.overlap !== undefined && values.overlap !== 'allow' && values.overlap !== 'skip') {
    throw new UsageError(`--overlap must be allow or skip, got "${values.overlap}"`);
  }
  return {
    queue: values.queue,
    cron: values.cron,
    timeZone: values.tz,
    payload: values.payload === undefined ? undefined : parsePayload(values.payload),
    priority: intOption(values.priority, '--priority', -1000, 1000),
    maxAttempts: intOption(values['max-attempts'], '--max-attempts', 1, 1000),
    timeoutMs: values.timeout === undefined ? undefined : duration(values.timeout, '--timeout'),
    labels: values.label ? labels(values.label) : undefined,
    missed: missed.policy,
    backfillLimit: missed.backfillLimit,
    overlap: values.overlap as OverlapPolicyName | undefined,
  };
}

/** `skip`, `run_once`, `backfill` or `backfill:N`. */
function missedPolicy(text: string | undefined): { policy?: MissedTickPolicyName; backfillLimit?: number } {
  if (text === undefined) return {};
  if (text === 'skip' || text === 'run_once' || text === 'backfill') return { policy: text };
  const backfill = /^backfill:(.*)$/.exec(text);
  if (backfill) return { policy: 'backfill', backfillLimit: intOption(backfill[1], 'the N of --missed backfill:N', 1, 1000) };
  throw new UsageError(`--missed must be skip, run_once or backfill:N (N from 1 to 1000), got "${text}"`);
}

function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--payload is not valid JSON (${(error as Error).message}); quote it for the shell, e.g. --payload '{"kind": "daily"}'`);
  }
}

function labels(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--label must be KEY=VALUE, got "${pair}"`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

/** A time as UTC to the second: what a cron tick needs, without milliseconds. */
function iso(at: Date): string {
  return at.toISOString().replace(/\.000Z$/, 'Z');
}

/** One line after a change: the expression, where its jobs go, and what happens next. */
function describe(s: Schedule): string {
  const next = s.paused ? 'paused' : s.nextRuns[0] ? `next run ${iso(s.nextRuns[0])}` : 'no next run';
  return `"${s.cron}" (${s.timeZone}) into ${s.queue}, missed ${s.missed}${s.missed === 'backfill' ? `:${s.backfillLimit}` : ''}, overlap ${s.overlap}; ${next}`;
}
