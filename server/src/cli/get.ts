import type { Job } from '@baton/worker-sdk';
import type { Command } from './command.ts';
import { age, json, oneLine } from './format.ts';
import { CONNECTION_HELP, EXIT_OK, helpShown, jobId, parse, withClient } from './remote.ts';

const USAGE = `baton get ID [--json]

One job in full: status, attempts, times, payload, result, progress and every failed attempt's
error (oldest first). --json prints the job as the SDK returns it.

${CONNECTION_HELP}`;

/** `baton get ID`: one job with its payload, result and every attempt's error. */
export const getCommand: Command = {
  summary: "Show one job: payload, result and every attempt's error",
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parse(args, { json: { type: 'boolean' } }, 1);
    if (helpShown(values, getCommand, io)) return EXIT_OK;
    const id = jobId(positionals[0]);
    return withClient('get', values, io, async (client) => {
      const job = await client.get(id);
      io.stdout(values.json ? json(job) : describe(job));
      return EXIT_OK;
    });
  },
};

function when(date: Date | undefined, now: number): string {
  if (!date) return '-';
  const future = date.getTime() > now;
  return `${date.toISOString()} (${future ? `in ${age(new Date(now), date.getTime())}` : `${age(date, now)} ago`})`;
}

function indented(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/^/gm, '  ');
}

/** The human form: a field list, then the JSON parts, then the errors. */
export function describe(job: Job, now = Date.now()): string {
  const status = job.status.toUpperCase() + (job.cancelRequested && job.status === 'running' ? ' (cancel requested)' : '');
  const fields: [string, string][] = [
    ['Queue', job.queue],
    ['Status', status],
    ['Attempt', `${job.attempt} of ${job.maxAttempts}`],
    ['Priority', String(job.priority)],
    ['Created', when(job.createdAt, now)],
    ['Run at', when(job.runAt, now)],
    ['Started', when(job.startedAt, now)],
    ['Finished', when(job.finishedAt, now)],
    ['Worker', job.workerId ?? '-'],
  ];
  if (job.timeoutMs) fields.push(['Timeout', `${job.timeoutMs} ms`]);
  if (job.idempotencyKey) fields.push(['Key', job.idempotencyKey]);
  const labels = Object.entries(job.labels);
  if (labels.length > 0) fields.push(['Labels', labels.map(([k, v]) => `${k}=${v}`).join(', ')]);
  if (job.traceparent) fields.push(['Traceparent', job.traceparent]);
  const width = Math.max(...fields.map(([name]) => name.length)) + 1;
  let out = `Job ${job.id}\n` + fields.map(([name, value]) => `  ${`${name}:`.padEnd(width)}  ${value}`).join('\n') + '\n';
  out += `\nPayload:\n${indented(job.payload)}\n`;
  if (job.result !== undefined) out += `\nResult:\n${indented(job.result)}\n`;
  if (job.progress !== undefined) out += `\nProgress:\n${indented(job.progress)}\n`;
  if (job.errors.length === 0) {
    out += '\nErrors: none\n';
  } else {
    out += `\nErrors (${job.errors.length}, oldest first):\n`;
    for (const e of job.errors) {
      const by = e.workerId ? ` on ${e.workerId}` : '';
      out += `  attempt ${e.attempt}  ${e.at?.toISOString() ?? '-'}${by}\n    ${oneLine(e.message)}\n`;
    }
  }
  return out;
}
