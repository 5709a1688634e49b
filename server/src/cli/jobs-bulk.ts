/**
 * `baton jobs cancel|retry|delete`: a bulk action over every job a filter matches (Admin.BulkAction,
 * docs/scheduling.md "Bulk actions"), batch after batch until the broker's cursor says done, with
 * progress on stderr and the total on stdout. Without --yes it only counts (a dry run) and says how
 * to go on, so that a mistyped filter changes nothing.
 */
import type { BulkActionName, BulkFilter, Client } from '@baton/worker-sdk';
import { BULK_ACTION_STATUSES, BULK_LIMIT_DEFAULT, BULK_LIMIT_MAX } from '../domain/bulk-actions.ts';
import { type CliIo, type Command, UsageError } from './command.ts';
import { count, json } from './format.ts';
import { CONNECTION_HELP, EXIT_FAILURE, EXIT_OK, helpShown, intOption, parse, withClient } from './remote.ts';
import { statuses } from './jobs-filter.ts';

const DONE: Record<BulkActionName, string> = { cancel: 'cancelled', retry: 'retried', delete: 'deleted' };

const USAGE = `baton jobs cancel|retry|delete [filter…] [--dry-run | --yes] [--limit N] [--json]

Acts on every job the filter matches, in batches (oldest job first), and prints how many changed:
  cancel   PENDING and SCHEDULED jobs become CANCELLED; RUNNING ones are asked to stop (their
           worker is told, and they become CANCELLED when it stops)
  retry    FAILED and CANCELLED jobs go back to PENDING with their attempts reset
  delete   COMPLETED, FAILED and CANCELLED jobs are deleted for good (live jobs never are)
Filter (all given must hold; at least one, or --all):
  --queue QUEUE          --status STATUS[,STATUS…] (narrows the statuses the action applies to)
  --label KEY=VALUE      (repeatable: every label must match)
  --key IDEMPOTENCY_KEY  --created-before TIME  --created-after TIME
                         (TIME: an ISO date or time, e.g. 2026-12-01T12:00:00Z, or an age: 30m, 6h, 7d)
  --all                  every job the action applies to
--dry-run   count what would change, change nothing
--yes       do it; without --yes (or --dry-run) the command counts, says what it would do, and
            changes nothing (exit code 1)
--limit N   jobs per batch (default ${BULK_LIMIT_DEFAULT}, at most ${BULK_LIMIT_MAX})
--json      the totals as JSON

${CONNECTION_HELP}`;

export const jobsBulkCommand: Command = {
  summary: 'Cancel, retry or delete every job a filter matches',
  usage: USAGE,
  async run(args, io) {
    const [action, ...rest] = args;
    if (action !== 'cancel' && action !== 'retry' && action !== 'delete') throw new UsageError(`unknown action "${action}" (cancel, retry, delete)`);
    const { values } = parse(rest, {
      queue: { type: 'string' },
      status: { type: 'string' },
      label: { type: 'string', multiple: true },
      key: { type: 'string' },
      'created-before': { type: 'string' },
      'created-after': { type: 'string' },
      all: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      yes: { type: 'boolean' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (helpShown(values, jobsBulkCommand, io)) return EXIT_OK;
    if (values['dry-run'] && values.yes) throw new UsageError('--dry-run and --yes are exclusive: count, or do it');
    const now = Date.now();
    const filter: BulkFilter = {
      queue: values.queue,
      statuses: values.status === undefined ? undefined : statuses(values.status, BULK_ACTION_STATUSES[action]),
      labels: values.label ? labels(values.label) : undefined,
      idempotencyKey: values.key,
      createdBefore: values['created-before'] === undefined ? undefined : time(values['created-before'], '--created-before', now),
      createdAfter: values['created-after'] === undefined ? undefined : time(values['created-after'], '--created-after', now),
      all: values.all,
    };
    const narrowed = Object.entries(filter).some(([name, value]) => name !== 'all' && value !== undefined);
    if (!narrowed && !values.all) {
      throw new UsageError(`say which jobs: --queue, --status, --label, --key, --created-before or --created-after, or --all for every job`);
    }
    const limit = intOption(values.limit, '--limit', 1, BULK_LIMIT_MAX) ?? BULK_LIMIT_DEFAULT;
    const dryRun = !values.yes;
    return withClient(`jobs ${action}`, values, io, async (client) => {
      const total = await runBatches(client, action, filter, { dryRun, limit, io });
      if (values.json) {
        io.stdout(json({ action, dryRun, changed: total.changed, cancelRequested: total.cancelRequested }));
      } else if (dryRun) {
        io.stdout(`${describe(action, total, true)}${values['dry-run'] ? '' : `; run again with --yes to ${action} them`}\n`);
      } else {
        io.stdout(`${describe(action, total, false)}\n`);
      }
      return dryRun && !values['dry-run'] && total.changed > 0 ? EXIT_FAILURE : EXIT_OK;
    });
  },
};

async function runBatches(client: Client, action: BulkActionName, filter: BulkFilter, o: { dryRun: boolean; limit: number; io: CliIo }) {
  let cursor = '';
  const total = { changed: 0, cancelRequested: 0 };
  let batches = 0;
  const tty = Boolean(process.stderr.isTTY);
  do {
    const batch = await client.bulkAction(action, filter, { dryRun: o.dryRun, limit: o.limit, cursor });
    total.changed += batch.changed;
    total.cancelRequested += batch.cancelRequested;
    cursor = batch.cursor;
    batches++;
    // Progress once there is more than one batch: a line per batch, or one line redrawn on a terminal.
    if (cursor || batches > 1) {
      const line = `${o.dryRun ? 'counted' : DONE[action]} ${count(total.changed)} so far (batch ${batches})`;
      o.io.stderr(tty ? `\r${line}${cursor ? '' : '\n'}` : `${line}\n`);
    }
  } while (cursor);
  return total;
}

function describe(action: BulkActionName, total: { changed: number; cancelRequested: number }, dryRun: boolean): string {
  const jobs = `${count(total.changed)} job${total.changed === 1 ? '' : 's'}`;
  const running =
    total.cancelRequested > 0 ? ` (${total.cancelRequested} of them RUNNING: ${dryRun ? 'their workers would be' : 'their workers were'} told to stop)` : '';
  return dryRun ? `would ${action} ${jobs}${running}` : `${DONE[action]} ${jobs}${running}`;
}

function labels(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--label "${pair}": write KEY=VALUE`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

const AGE = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** An ISO date or time, or an age (`6h`: six hours before now). */
function time(text: string, flag: string, now: number): Date {
  const age = AGE.exec(text);
  if (age) return new Date(now - Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS]);
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new UsageError(`${flag} "${text}": give an ISO date or time (2026-12-01, 2026-12-01T12:00:00Z) or an age (30m, 6h, 7d)`);
  return new Date(ms);
}
