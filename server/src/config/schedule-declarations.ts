/**
 * BATON_SCHEDULES: cron schedules declared up front (docs/scheduling.md, "Cron schedules"). The value
 * is a JSON array, or the path of a JSON file holding one; each entry is a schedule with the field
 * names of the Admin API's `Schedule` message in snake_case. Applied at every start, by every broker
 * (an upsert: the same declaration twice changes nothing, and a changed expression counts its ticks
 * from the start that changed it). Schedules created through the API are not touched.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SCHEDULE_DEFAULTS, type ScheduleSettings, scheduleProblem } from '../domain/schedule.ts';
import { ConfigError } from './config-errors.ts';

/** A declared schedule; `paused` only when the declaration says (else an operator's pause survives a restart). */
export interface ScheduleConfig {
  settings: ScheduleSettings;
  paused?: boolean;
}

const FIELDS = [
  'name',
  'queue',
  'cron',
  'time_zone',
  'payload',
  'priority',
  'max_attempts',
  'timeout_ms',
  'labels',
  'missed',
  'backfill_limit',
  'overlap',
  'paused',
] as const;

/** Parses BATON_SCHEDULES (inline JSON when it starts with `[`, else a file path), refusing any entry with a problem. */
export function parseSchedules(spec: string, cwd = process.cwd()): ScheduleConfig[] {
  let text = spec.trim();
  let where = 'BATON_SCHEDULES';
  if (!text.startsWith('[')) {
    const file = path.resolve(cwd, text);
    where = `BATON_SCHEDULES (${file})`;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`${where}: cannot read the file (${(error as Error).message}); give a JSON array or the path of a file holding one`);
    }
  }
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${where}: not valid JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(entries))
    throw new ConfigError(`${where}: must be a JSON array of schedules, e.g. [{"name":"nightly","queue":"reports","cron":"0 3 * * *"}]`);
  const seen = new Set<string>();
  return entries.map((entry, i) => {
    const declared = toSchedule(entry, `${where}[${i}]`);
    if (seen.has(declared.settings.name)) throw new ConfigError(`${where} declares schedule "${declared.settings.name}" twice: keep one entry per schedule`);
    seen.add(declared.settings.name);
    return declared;
  });
}

function toSchedule(entry: unknown, where: string): ScheduleConfig {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ConfigError(`${where}: each schedule must be a JSON object`);
  const e = entry as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (!(FIELDS as readonly string[]).includes(key)) throw new ConfigError(`${where}: unknown field "${key}" (${FIELDS.join(', ')})`);
  }
  const text = (key: string, fallback?: string): string => {
    const value = e[key] ?? fallback;
    if (typeof value !== 'string') throw new ConfigError(`${where}: "${key}" must be a string${fallback === undefined ? ' and is required' : ''}`);
    return value;
  };
  const int = (key: string, fallback: number | null): number | null => {
    const value = e[key] ?? fallback;
    if (value !== null && !Number.isSafeInteger(value)) throw new ConfigError(`${where}: "${key}" must be a whole number, got ${JSON.stringify(value)}`);
    return value as number | null;
  };
  const labels = e.labels ?? {};
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels) || Object.values(labels).some((v) => typeof v !== 'string')) {
    throw new ConfigError(`${where}: "labels" must be an object of strings`);
  }
  if (e.paused !== undefined && typeof e.paused !== 'boolean') throw new ConfigError(`${where}: "paused" must be true or false`);
  const name = text('name');
  const settings: ScheduleSettings = {
    name,
    queue: text('queue'),
    cron: text('cron'),
    timeZone: text('time_zone', SCHEDULE_DEFAULTS.timeZone),
    payloadJson: JSON.stringify(e.payload ?? null),
    priority: int('priority', SCHEDULE_DEFAULTS.priority) as number,
    maxAttempts: int('max_attempts', null),
    timeoutMs: int('timeout_ms', null),
    labels: labels as Record<string, string>,
    missed: text('missed', SCHEDULE_DEFAULTS.missed) as ScheduleSettings['missed'],
    backfillLimit: int('backfill_limit', SCHEDULE_DEFAULTS.backfillLimit) as number,
    overlap: text('overlap', SCHEDULE_DEFAULTS.overlap) as ScheduleSettings['overlap'],
  };
  const problem = scheduleProblem(settings);
  if (problem) throw new ConfigError(`${where} (schedule "${name}"): ${problem}`);
  return { settings, paused: e.paused as boolean | undefined };
}
