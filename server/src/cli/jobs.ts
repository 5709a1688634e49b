import { setTimeout as sleep } from 'node:timers/promises';
import { BatonError, type Client, type Job, type JobStatusName } from '@baton/worker-sdk';
import { JOB_STATUSES } from '../domain/job-status.ts';
import type { CliIo, Command } from './command.ts';
import { JOB_HEADER, jobRow, json, table } from './format.ts';
import { jobsBulkCommand } from './jobs-bulk.ts';
import { statuses } from './jobs-filter.ts';
import { CONNECTION_HELP, EXIT_OK, describeError, helpShown, intOption, parse, withClient } from './remote.ts';

const USAGE = `baton jobs [--queue QUEUE] [--status STATUS[,STATUS…]] [--limit N] [--watch] [--json]
       baton jobs cancel|retry|delete FILTER… [--dry-run | --yes]   (see baton jobs cancel --help)

The newest jobs first, as a table: ID, QUEUE, STATUS, ATTEMPTS, AGE, LAST ERROR.
  --status STATUS   ${JOB_STATUSES.join(', ')} (comma-separated)
  --limit N         how many jobs (default 20, at most 10000)
  --watch           redraw as jobs change until Ctrl-C: live from the queue's Watch stream with
                    --queue, else every --interval (default 2s)
  --json            the jobs as a JSON array (with --watch, one array per line per refresh)

${CONNECTION_HELP}`;

/** `baton jobs`: a table of the newest jobs, once or kept up to date. */
export const jobsCommand: Command = {
  summary: 'List jobs newest first (--queue, --status, --limit), or follow them (--watch); cancel, retry or delete them by filter',
  usage: USAGE,
  async run(args, io) {
    if (args[0] === 'cancel' || args[0] === 'retry' || args[0] === 'delete') return jobsBulkCommand.run(args, io);
    const { values } = parse(args, {
      queue: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      watch: { type: 'boolean' },
      interval: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (helpShown(values, jobsCommand, io)) return EXIT_OK;
    const filter: Filter = {
      queue: values.queue,
      statuses: values.status === undefined ? [] : statuses(values.status),
      limit: intOption(values.limit, '--limit', 1, 10_000) ?? 20,
    };
    const intervalMs = (intOption(values.interval?.replace(/s$/, ''), '--interval (seconds)', 1, 3600) ?? 2) * 1000;
    return withClient('jobs', values, io, async (client) => {
      if (!values.watch) {
        const { jobs, more } = await listJobs(client, filter);
        io.stdout(values.json ? json(jobs) : render(jobs, filter));
        if (more && !values.json) io.stderr(`(the newest ${filter.limit}; more with --limit N or a narrower --status)\n`);
        return EXIT_OK;
      }
      return watch(client, filter, { json: values.json ?? false, intervalMs, io, title: `baton jobs ${args.filter((a) => a !== '--watch').join(' ')}`.trim() });
    });
  },
};

interface Filter {
  queue?: string;
  statuses: JobStatusName[];
  limit: number;
}

/** Up to `limit` newest jobs, paging through List (at most 1000 a page) as needed. */
async function listJobs(client: Client, filter: Filter): Promise<{ jobs: Job[]; more: boolean }> {
  const jobs: Job[] = [];
  let pageToken: string | undefined;
  do {
    const page = await client.list({ queue: filter.queue, statuses: filter.statuses, pageSize: Math.min(1000, filter.limit - jobs.length), pageToken });
    jobs.push(...page.jobs);
    pageToken = page.nextPageToken;
  } while (pageToken && jobs.length < filter.limit);
  return { jobs, more: Boolean(pageToken) };
}

function render(jobs: Job[], filter: Filter): string {
  if (jobs.length === 0) {
    const what = [filter.queue && `in queue "${filter.queue}"`, filter.statuses.length > 0 && `with status ${filter.statuses.join(' or ')}`]
      .filter(Boolean)
      .join(' ');
    return `no jobs${what ? ` ${what}` : ''}\n`;
  }
  const now = Date.now();
  return table(
    JOB_HEADER,
    jobs.map((job) => jobRow(job, now)),
    { width: process.stdout.isTTY ? process.stdout.columns : undefined },
  );
}

/**
 * Redraws until SIGINT or SIGTERM. With a queue, a change on the queue's Watch stream triggers a
 * redraw (batched over 150 ms, since a busy queue changes thousands of times a second); a slower
 * timer redraws anyway, for the ages and for changes missed while the stream reconnects. A broker
 * that goes away is waited for, not fatal.
 */
async function watch(client: Client, filter: Filter, o: { json: boolean; intervalMs: number; io: CliIo; title: string }): Promise<number> {
  const { io } = o;
  const tty = Boolean(process.stdout.isTTY) && !o.json;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Set while the loop waits: a change on the stream cuts the wait short.
  const waiting: { changed: (() => void) | null } = { changed: null };
  const streaming = filter.queue
    ? (async () => {
        for (let failures = 0; !stop.signal.aborted; failures++) {
          try {
            for await (const _ of client.watchQueue(filter.queue!, { signal: stop.signal })) {
              failures = 0;
              waiting.changed?.();
            }
          } catch (error) {
            if (stop.signal.aborted) return;
            if (!(error instanceof BatonError) || describeError(error, '').code !== 3) throw error;
          }
          await sleep(Math.min(5000, 250 * 2 ** failures), undefined, { signal: stop.signal }).catch(() => undefined);
        }
      })()
    : null;
  let streamError: unknown = null;
  streaming?.catch((error) => {
    streamError = error;
    stop.abort();
  });

  let last = '';
  let problem = '';
  try {
    while (!stop.signal.aborted) {
      try {
        const { jobs } = await listJobs(client, filter);
        problem = '';
        const body = o.json ? JSON.stringify(jobs) + '\n' : render(jobs, filter);
        if (tty) {
          const header = `${o.title}   ${new Date().toLocaleTimeString()}   (Ctrl-C to stop)\n\n`;
          io.stdout(`\x1b[H\x1b[2J${header}${body}`);
        } else if (body !== last) {
          io.stdout(o.json || last === '' ? body : `\n${body}`);
        }
        last = body;
      } catch (error) {
        if (!(error instanceof BatonError)) throw error;
        const described = describeError(error, o.title);
        if (described.code !== 3) throw error;
        if (!problem) io.stderr(`baton jobs: the broker is unreachable (${error.message}); retrying until it is back\n`);
        problem = error.message;
      }
      // Until a change (plus 150 ms to gather its neighbours) or the interval, whichever is first.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, filter.queue ? Math.max(o.intervalMs, 5000) : o.intervalMs);
        const done = () => {
          clearTimeout(timer);
          stop.signal.removeEventListener('abort', done);
          waiting.changed = null;
          resolve();
        };
        waiting.changed = () => {
          waiting.changed = null;
          setTimeout(done, 150);
        };
        stop.signal.addEventListener('abort', done);
      });
    }
  } finally {
    stop.abort();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await streaming?.catch(() => undefined);
  }
  if (streamError) throw streamError;
  return EXIT_OK;
}
