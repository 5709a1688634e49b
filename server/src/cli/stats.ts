import type { Command } from './command.ts';
import { count, json, table } from './format.ts';
import { CONNECTION_HELP, EXIT_OK, helpShown, parse, withClient } from './remote.ts';

const USAGE = `baton stats [--queue QUEUE] [--json]

Per queue: jobs in all and by status, the recent rate, and the queue's state.
  DONE/MIN   jobs COMPLETED in the current clock minute so far (FAILED/MIN: dead-lettered);
             counted by the broker from the jobs' finish times, so it is the cluster's rate, not
             one broker's
  STATE      active or paused, and the concurrency limit when there is one
--json adds completedPerMinute/failedPerMinute for the current minute and the 4 before it
(oldest first).

${CONNECTION_HELP}`;

const MINUTES = 5;

/** `baton stats`: counts by status and the recent rate, per queue. */
export const statsCommand: Command = {
  summary: 'Per-queue counts by status and the recent completion rate',
  usage: USAGE,
  async run(args, io) {
    const { values } = parse(args, { queue: { type: 'string' }, json: { type: 'boolean' } });
    if (helpShown(values, statsCommand, io)) return EXIT_OK;
    return withClient('stats', values, io, async (client) => {
      const stats = await client.queueStats(values.queue ? [values.queue] : [], { throughputMinutes: MINUTES });
      if (values.json) {
        io.stdout(json(stats));
        return EXIT_OK;
      }
      if (stats.length === 0) {
        io.stdout(values.queue ? `no queue "${values.queue}" (queues appear with their first job)\n` : 'no queues yet: they appear with their first job\n');
        return EXIT_OK;
      }
      const header = ['QUEUE', 'TOTAL', 'PENDING', 'SCHEDULED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED', 'DONE/MIN', 'FAILED/MIN', 'STATE'];
      const rows = stats.map((s) => [
        s.queue,
        ...[s.total, s.pending, s.scheduled, s.running, s.completed, s.failed, s.cancelled].map(count),
        count(s.completedPerMinute.at(-1) ?? 0),
        count(s.failedPerMinute.at(-1) ?? 0),
        `${s.settings?.paused ? 'paused' : 'active'}${s.settings?.concurrency ? `, max ${s.settings.concurrency} running` : ''}`,
      ]);
      io.stdout(table(header, rows, { right: [1, 2, 3, 4, 5, 6, 7, 8, 9] }));
      return EXIT_OK;
    });
  },
};
